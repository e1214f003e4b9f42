"""Test stand-in for flash-attn 2.8.3 (CUDA-only, sdist-only on PyPI): OpenRLHF imports it at module level.

``openrlhf/models/ring_attn_utils.py`` (pulled in by ``openrlhf.models``) imports names from
``flash_attn.bert_padding`` and ``flash_attn.utils.distributed``; they are only called with packed samples
(``--ds.packing_samples``), which the CPU tests never use. No package metadata exists for this folder, so
transformers' ``is_flash_attn_2_available()`` stays False.
"""

__version__ = "0.0.0+medgym.test.stub"
STUB = True


def _unavailable(name):
    def call(*args, **kwargs):
        raise NotImplementedError(f"flash_attn.{name} is a test stand-in: install flash-attn on a CUDA machine")

    call.__name__ = name
    return call
