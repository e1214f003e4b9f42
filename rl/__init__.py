"""medgym.rl"""
