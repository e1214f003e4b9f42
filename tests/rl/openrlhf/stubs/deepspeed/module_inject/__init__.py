"""Stand-in package for deepspeed.module_inject (tensor-parallel weight gathering)."""
