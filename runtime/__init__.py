"""medgym.runtime"""
