"""A Gymnasium Text space for model output and observations: any Unicode string up to a length."""
from __future__ import annotations

from typing import Any

from gymnasium import spaces

# What `sample()` draws from: ASCII plus accented, Greek, Cyrillic, Hebrew, Arabic, CJK, emoji, a combining
# mark, a zero-width joiner and markup characters, so sampled actions exercise the parser's odd corners.
SAMPLE_CHARSET = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 \n\t.,:;!?'\"{}[]()<>/\\=_-+*#@&%$`~|^"
    "éüñçøßµ°±×÷αβγΔλπΩжДשאمع中文字医疗日本語한국어🙂🩺💊\u0301\u200d\u00a0"
)


class UnicodeText(spaces.Text):
    """Contains every `str` whose length is within bounds, whatever its characters."""

    def __init__(self, max_length: int, *, min_length: int = 0, seed=None):
        super().__init__(max_length, min_length=min_length, charset=SAMPLE_CHARSET, seed=seed)

    def contains(self, x: Any) -> bool:
        return isinstance(x, str) and self.min_length <= len(x) <= self.max_length

    def __repr__(self) -> str:
        return f"UnicodeText({self.min_length}, {self.max_length})"

    def __eq__(self, other: Any) -> bool:
        return (isinstance(other, UnicodeText) and self.min_length == other.min_length
                and self.max_length == other.max_length)
