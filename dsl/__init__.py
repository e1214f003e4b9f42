"""medgym.dsl"""
