"""Stand-in package for flash_attn.utils."""
