"""medgym: a gymnasium for medical AI agents, compiled from declarative specs."""
