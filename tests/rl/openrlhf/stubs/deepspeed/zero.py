"""``deepspeed.zero.GatheredParameters``: a no-op context, as it is for parameters ZeRO-3 does not partition."""

import contextlib


@contextlib.contextmanager
def GatheredParameters(params, modifier_rank=None, fwd_module=None, enabled=True):  # noqa: N802 (DeepSpeed's name)
    yield


Init = contextlib.nullcontext
