"""Properties every shipped instrument has, whatever it computes: any valid input (every input within its
declared range, type and choices) gives a result without an error, every number in it is finite, and a
banded output always falls in one of its declared bands (the bands cover everything the inputs can reach).

Per-instrument properties (monotone where the source says so, agreement with independent implementations)
live beside each group's tests in tests/compiler/instruments/.
"""
import datetime as dt
import json
import math
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medgym.runtime.build import Build

ENUM = re.compile(r"^enum\((.*)\)$")


@pytest.fixture(scope="module")
def library(shipped_build):
    build = Build.open(shipped_build)
    return json.loads((shipped_build / "instruments.json").read_text()), build.instruments


def value_strategy(spec: dict):
    kind = spec["type"]
    if kind == "bool":
        return st.booleans()
    found = ENUM.match(kind)
    if found:
        return st.sampled_from([v.strip() for v in found.group(1).split(",")])
    if kind.startswith("int"):
        return st.integers(int(math.ceil(spec["min"])), int(math.floor(spec["max"])))
    if kind.startswith("number"):
        return st.floats(spec["min"], spec["max"], allow_nan=False, allow_infinity=False)
    if kind.startswith("date"):
        return st.dates(dt.date(2000, 1, 1), dt.date(2040, 12, 31)).map(lambda d: d.isoformat())
    raise AssertionError(f"no strategy for input type {kind!r}: extend this test with the new type")


def test_every_numeric_input_declares_its_range(library):
    meta, _ = library
    for name, spec in meta.items():
        for param, info in spec["inputs"].items():
            if info["type"].startswith(("int", "number")):
                assert info["min"] is not None and info["max"] is not None, f"{name}.{param} has no range"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_valid_input_gives_a_finite_result_in_a_declared_band(library, data):
    meta, functions = library
    name = data.draw(st.sampled_from(sorted(meta)), label="instrument")
    spec = meta[name]
    inputs = {param: data.draw(value_strategy(info), label=param) for param, info in spec["inputs"].items()
              if info["required"] or data.draw(st.booleans(), label=f"give {param}")}
    result = functions[name](**inputs)
    for key, value in result.items():
        if isinstance(value, float):
            assert math.isfinite(value), (name, key, inputs)
    for key, info in spec["outputs"].items():
        found = ENUM.match(info["type"])
        if key == "band" and found:
            assert result["band"] in [v.strip() for v in found.group(1).split(",")], (name, inputs, result)
            assert result.get("interpretation"), (name, inputs)


def test_every_instrument_is_sampled(library):
    """The property above draws instruments at random; this pins that each one runs on its range's edges."""
    meta, functions = library
    for name, spec in meta.items():
        for edge in ("min", "max"):
            inputs = {}
            for param, info in spec["inputs"].items():
                if not info["required"]:
                    continue
                kind = info["type"]
                if kind == "bool":
                    inputs[param] = edge == "max"
                elif ENUM.match(kind):
                    values = [v.strip() for v in ENUM.match(kind).group(1).split(",")]
                    inputs[param] = values[0] if edge == "min" else values[-1]
                elif kind.startswith(("int", "number")):
                    bound = info[edge]
                    inputs[param] = int(bound) if kind.startswith("int") else float(bound)
                elif kind.startswith("date"):
                    inputs[param] = "2026-01-01" if edge == "min" else "2026-12-31"
            result = functions[name](**inputs)
            assert isinstance(result, dict) and result, (name, inputs)
