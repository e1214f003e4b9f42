"""Stand-in for ``flash_attn.utils.distributed.all_gather`` (ring attention only)."""

from flash_attn import _unavailable

all_gather = _unavailable("utils.distributed.all_gather")
