"""medgym.compiler"""
