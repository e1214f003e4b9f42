"""Stand-ins for the padding helpers ``openrlhf/models/ring_attn_utils.py`` imports (packing only)."""

from flash_attn import _unavailable

index_first_axis = _unavailable("bert_padding.index_first_axis")
pad_input = _unavailable("bert_padding.pad_input")
unpad_input = _unavailable("bert_padding.unpad_input")
rearrange = _unavailable("bert_padding.rearrange")
