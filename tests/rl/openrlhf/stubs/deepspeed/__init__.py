"""Test stand-in for DeepSpeed 0.19.6, which OpenRLHF imports at module level.

Only what OpenRLHF touches at import time exists, plus ``zero.GatheredParameters`` as the no-op it is for
parameters that are not ZeRO-3 partitioned (what the CPU tests use). Engines, optimisers and distributed
initialisation raise. No package metadata exists for this folder, so transformers'
``is_deepspeed_available()`` stays False.
"""

from deepspeed import module_inject, runtime, utils, zero  # noqa: F401

__version__ = "0.0.0+medgym.test.stub"
version = __version__
STUB = True


class DeepSpeedEngine:  # isinstance checks only
    pass


def _unavailable(name):
    def call(*args, **kwargs):
        raise NotImplementedError(f"deepspeed.{name} is a test stand-in: install deepspeed on a GPU machine")

    call.__name__ = name
    return call


initialize = _unavailable("initialize")
init_distributed = _unavailable("init_distributed")
tp_model_init = _unavailable("tp_model_init")
