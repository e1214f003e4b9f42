"""The shipped specs: data only. This marker lets them install as the package data `medgym.specs`."""
