"""Stand-in package for deepspeed.runtime.zero."""
