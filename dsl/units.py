"""Clinical units: each unit has a dimension, a factor to the dimension's base unit and an offset.

Clinical conversions between dimensions (mg/dL of urea vs mmol/L) depend on the analyte, so they are
never automatic: only units of the same dimension convert.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Unit:
    name: str
    dimension: str
    factor: float = 1.0  # value_in_base = value * factor + offset
    offset: float = 0.0

    def to_base(self, value: float) -> float:
        return value * self.factor + self.offset


_TABLE: list[tuple[str, str, float, float]] = [
    ("years", "time", 365.25 * 86400, 0), ("months", "time", 30.4375 * 86400, 0),
    ("weeks", "time", 7 * 86400, 0), ("days", "time", 86400, 0), ("h", "time", 3600, 0),
    ("min", "time", 60, 0), ("s", "time", 1, 0),
    ("/min", "rate", 1 / 60, 0), ("/h", "rate", 1 / 3600, 0),
    ("mmHg", "pressure", 133.322, 0), ("kPa", "pressure", 1000, 0), ("cmH2O", "pressure", 98.0665, 0),
    ("degC", "temperature", 1, 0), ("degF", "temperature", 5 / 9, -32 * 5 / 9),
    ("mg", "mass", 1e-3, 0), ("g", "mass", 1, 0), ("kg", "mass", 1e3, 0), ("lb", "mass", 453.59237, 0),
    ("mm", "length", 1e-3, 0), ("cm", "length", 1e-2, 0), ("m", "length", 1, 0),
    ("mL", "volume", 1e-3, 0), ("L", "volume", 1, 0),
    ("ng/L", "mass_concentration", 1e-9, 0), ("ng/mL", "mass_concentration", 1e-6, 0),
    ("ug/L", "mass_concentration", 1e-6, 0), ("mg/L", "mass_concentration", 1e-3, 0),
    ("mg/dL", "mass_concentration", 1e-2, 0), ("g/L", "mass_concentration", 1, 0),
    ("g/dL", "mass_concentration", 10, 0), ("pg/mL", "mass_concentration", 1e-9, 0),
    ("nmol/L", "substance_concentration", 1e-9, 0), ("umol/L", "substance_concentration", 1e-6, 0),
    ("mmol/L", "substance_concentration", 1e-3, 0), ("mol/L", "substance_concentration", 1, 0),
    ("mEq/L", "charge_concentration", 1, 0),
    ("x10^9/L", "cell_count", 1e9, 0), ("x10^3/uL", "cell_count", 1e9, 0), ("/uL", "cell_count", 1e6, 0),
    ("x10^12/L", "cell_count", 1e12, 0),
    ("U/L", "enzyme_activity", 1, 0),
    ("mL/min", "flow", 1e-3, 0), ("L/min", "flow", 1, 0),
    ("mL/min/1.73m2", "normalised_flow", 1, 0),
    ("kg/m2", "body_mass_index", 1, 0),
    ("%", "fraction", 0.01, 0),
    ("points", "points", 1, 0),
]
_ALIASES = {"bpm": "/min", "µmol/L": "umol/L", "μmol/L": "umol/L", "°C": "degC", "°F": "degF",
            "year": "years", "hours": "h", "hour": "h", "minutes": "min", "x10^9/l": "x10^9/L",
            "IU/L": "U/L", "mmol/l": "mmol/L", "mg/dl": "mg/dL", "g/dl": "g/dL", "mcg/L": "ug/L"}

UNITS: dict[str, Unit] = {name: Unit(name, dim, f, o) for name, dim, f, o in _TABLE}


def lookup(name: str) -> Unit | None:
    """The unit called `name` (or an accepted alias), else None."""
    return UNITS.get(_ALIASES.get(name, name))


def conversion(src: Unit, dst: Unit) -> tuple[float, float] | None:
    """(scale, shift) such that value_in_dst = value_in_src * scale + shift; None across dimensions."""
    if src.dimension != dst.dimension:
        return None
    scale = src.factor / dst.factor
    shift = (src.offset - dst.offset) / dst.factor
    return scale, shift


def describe(unit: Unit) -> str:
    return f"{unit.name} ({unit.dimension.replace('_', ' ')})"
