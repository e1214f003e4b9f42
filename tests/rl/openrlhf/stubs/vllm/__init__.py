"""Test stand-in for vLLM 0.29.0, which OpenRLHF imports at module level (samples generator, vLLM engine actor).

``SamplingParams`` holds the fields OpenRLHF sets and reads, so the multi-turn executor can be driven by a fake
engine on CPU. Engines raise: the tests bring their own engine object.
"""

from dataclasses import dataclass, field
from typing import Any, Optional

from vllm import inputs, utils  # noqa: F401

__version__ = "0.0.0+medgym.test.stub"
STUB = True


@dataclass
class SamplingParams:
    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = -1
    max_tokens: Optional[int] = 16
    min_tokens: int = 0
    skip_special_tokens: bool = True
    logprobs: Optional[int] = None
    stop: Optional[list] = None
    stop_token_ids: Optional[list] = None
    seed: Optional[int] = None
    include_stop_str_in_output: bool = False
    extra: dict = field(default_factory=dict)

    def clone(self) -> "SamplingParams":
        from copy import deepcopy

        return deepcopy(self)


class _Unavailable:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError(f"vllm.{type(self).__name__} is a test stand-in: install vllm on a GPU machine")

    @classmethod
    def from_engine_args(cls, *args: Any, **kwargs: Any):
        raise NotImplementedError(f"vllm.{cls.__name__} is a test stand-in: install vllm on a GPU machine")


class AsyncEngineArgs(_Unavailable):
    pass


class AsyncLLMEngine(_Unavailable):
    pass


class LLM(_Unavailable):
    pass
