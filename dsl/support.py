"""The helpers that compiled spec code calls (generated modules import this as `_rt`).

Kept small and pure: clinical rounding, safe math, instrument input checks, band lookup and the
seeded samplers used when tasks are materialised.
"""
from __future__ import annotations

import importlib.util
import math
import random
import sys
from pathlib import Path
from decimal import ROUND_HALF_UP, Decimal


class InstrumentInputError(ValueError):
    """A bad input to an instrument (out of range, wrong type, missing); shown to the agent as a tool error."""


def round_half_up(value: float, digits: int = 0):
    """Clinical rounding (2.5 -> 3), not Python's banker's rounding; integers for 0 digits."""
    quantum = Decimal(1).scaleb(-int(digits))
    rounded = Decimal(repr(float(value))).quantize(quantum, rounding=ROUND_HALF_UP)
    return int(rounded) if digits == 0 else float(rounded)


def clamp(value, low, high):
    return max(low, min(high, value))


def count(*flags) -> int:
    return sum(1 for f in flags if f)


def ln(x):
    return math.log(x)


def log10(x):
    return math.log10(x)


def exp(x):
    return math.exp(x)


def sqrt(x):
    return math.sqrt(x)


_ORDER = {"<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
          "==": lambda a, b: a == b, "!=": lambda a, b: a != b}


def compare(op: str, left, right) -> bool:
    """A comparison where one side is known only at run time: a missing value compares false."""
    if left is None or right is None:
        return op == "!=" and left is not right
    try:
        return bool(_ORDER[op](left, right))
    except TypeError:
        return False


def field(record, name: str):
    """`record.name` in a rubric predicate: None when the record or the field is absent."""
    return record.get(name) if isinstance(record, dict) else None


def check_inputs(instrument: str, spec: tuple, given: dict) -> tuple:
    """Validate keyword inputs against `spec` = ((name, kind, low, high, values, has_default, default), ...)."""
    names = {item[0] for item in spec}
    unknown = sorted(set(given) - names)
    if unknown:
        raise InstrumentInputError(f"{instrument}: unknown input '{unknown[0]}' (inputs: {', '.join(sorted(names))})")
    return tuple(_check_one(instrument, item, given) for item in spec)


def _check_one(instrument, item, given):
    name, kind, low, high, values, has_default, default = item
    if name not in given or given[name] is None:
        if has_default:
            return default
        raise InstrumentInputError(f"{instrument}: missing input '{name}'")
    value = given[name]
    if kind == "bool":
        if not isinstance(value, bool):
            raise InstrumentInputError(f"{instrument}: input '{name}' must be true or false, got {value!r}")
        return value
    if kind in ("int", "number"):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
            raise InstrumentInputError(f"{instrument}: input '{name}' must be a number, got {value!r}")
        if kind == "int" and not float(value).is_integer():
            raise InstrumentInputError(f"{instrument}: input '{name}' must be a whole number, got {value!r}")
        if (low is not None and value < low) or (high is not None and value > high):
            raise InstrumentInputError(f"{instrument}: input '{name}' = {value} is outside {_span(low, high)}")
        return int(value) if kind == "int" else value
    if kind == "enum":
        if value not in values:
            raise InstrumentInputError(f"{instrument}: input '{name}' must be one of {', '.join(values)}, got {value!r}")
        return value
    return value


def _span(low, high) -> str:
    return f"{'' if low is None else f'{low:g}'}..{'' if high is None else f'{high:g}'}"


def band(value, bands: tuple) -> tuple[str | None, str | None]:
    """The (label, interpretation) of `value`; bands = ((low, high, label, text), ...) sorted by low.

    A value in the gap between two bands (29.95 between ..29.9 and 30..) belongs to the lower one,
    since printed cut-offs are rounded; a value beyond the outermost bands has no band.
    """
    found = None
    for index, (low, high, label, text) in enumerate(bands):
        if low is None or value >= low:
            found = index
    if found is None:
        return None, None
    high, label, text = bands[found][1:]
    if found == len(bands) - 1 and high is not None and value > high:
        return None, None
    return label, text


# ---------------------------------------------------------------- samplers (task materialisation)
def sample_normal(rng: random.Random, mean: float, sd: float) -> float:
    return rng.gauss(mean, sd)


def sample_lognormal(rng: random.Random, mu: float, sigma: float) -> float:
    return rng.lognormvariate(mu, sigma)


def sample_uniform(rng: random.Random, low: float, high: float) -> float:
    return rng.uniform(low, high)


def sample_int(rng: random.Random, low: int, high: int) -> int:
    return rng.randint(int(low), int(high))


def sample_choice(rng: random.Random, values: tuple, weights: tuple | None = None):
    value = rng.choices(values, weights=weights)[0] if weights else values[rng.randrange(len(values))]
    return list(value) if isinstance(value, tuple) else value


def sample_bernoulli(rng: random.Random, p: float) -> bool:
    return rng.random() < p


def finish(value, clip: tuple | None = None, digits: int | None = None, integer: bool = False):
    """Clip a sampled number into its limits and round it the way the record declares."""
    if clip is not None:
        value = clamp(value, clip[0], clip[1])
    if integer:
        return round_half_up(value, 0)
    if digits is not None:
        return round_half_up(value, digits)
    return value


def load_sibling(here: str, relative: str):
    """Import a generated module that sits beside `here` in a build directory (cached by path)."""
    path = (Path(here).parent / relative).resolve()
    # The modification time is part of the name so that a build recompiled in place is imported afresh.
    name = f"_medgym_build_{abs(hash((str(path), path.stat().st_mtime_ns))):x}_{path.stem}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
