"""Stand-in for the one name ``openrlhf/utils/deepspeed/deepspeed_utils.py`` imports at module level."""

import enum


class ZeroParamStatus(enum.Enum):
    AVAILABLE = 1
    NOT_AVAILABLE = 2
    INFLIGHT = 3
