"""Clinical units: each unit has a dimension, a factor to the dimension's base unit and an offset.

Units of the same dimension convert. Conversions between dimensions (mg/dL vs mmol/L vs mEq/L) depend on the
analyte, so they happen only when both sides name the same analyte (`number mg/dL of creatinine`, see
`medgym.dsl.analytes`); different analytes never convert, and unrelated dimensions never do.
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
    ("min", "time", 60, 0), ("s", "time", 1, 0), ("ms", "time", 1e-3, 0),
    ("/min", "rate", 1 / 60, 0), ("/h", "rate", 1 / 3600, 0),
    ("mmHg", "pressure", 133.322, 0), ("kPa", "pressure", 1000, 0), ("cmH2O", "pressure", 98.0665, 0),
    ("degC", "temperature", 1, 0), ("degF", "temperature", 5 / 9, -32 * 5 / 9),
    ("mg", "mass", 1e-3, 0), ("g", "mass", 1, 0), ("kg", "mass", 1e3, 0), ("lb", "mass", 453.59237, 0),
    ("mm", "length", 1e-3, 0), ("cm", "length", 1e-2, 0), ("m", "length", 1, 0),
    ("mL", "volume", 1e-3, 0), ("L", "volume", 1, 0),
    ("ng/L", "mass_concentration", 1e-9, 0), ("ng/mL", "mass_concentration", 1e-6, 0),
    ("ug/L", "mass_concentration", 1e-6, 0), ("mg/L", "mass_concentration", 1e-3, 0),
    ("ug/dL", "mass_concentration", 1e-5, 0),
    ("mg/dL", "mass_concentration", 1e-2, 0), ("g/L", "mass_concentration", 1, 0),
    ("g/dL", "mass_concentration", 10, 0), ("pg/mL", "mass_concentration", 1e-9, 0),
    ("pmol/L", "substance_concentration", 1e-12, 0), ("nmol/L", "substance_concentration", 1e-9, 0), ("umol/L", "substance_concentration", 1e-6, 0),
    ("mmol/L", "substance_concentration", 1e-3, 0), ("mol/L", "substance_concentration", 1, 0),
    ("mEq/L", "charge_concentration", 1e-3, 0),  # base Eq/L, so valence x mol/L = Eq/L
    ("mIU/L", "international_units_concentration", 1, 0),
    ("mOsm/kg", "osmolality", 1, 0),
    ("x10^9/L", "cell_count", 1e9, 0), ("x10^3/uL", "cell_count", 1e9, 0), ("/uL", "cell_count", 1e6, 0),
    ("x10^12/L", "cell_count", 1e12, 0),
    ("U/L", "enzyme_activity", 1, 0),
    ("mL/h", "flow", 1e-3 / 60, 0), ("mL/min", "flow", 1e-3, 0), ("L/min", "flow", 1, 0),
    ("mL/min/1.73m2", "normalised_flow", 1, 0),
    ("kg/m2", "body_mass_index", 1, 0),
    ("%", "fraction", 0.01, 0),
    ("points", "points", 1, 0),
]
_ALIASES = {"bpm": "/min", "µmol/L": "umol/L", "μmol/L": "umol/L", "°C": "degC", "°F": "degF",
            "year": "years", "hours": "h", "hour": "h", "minutes": "min", "x10^9/l": "x10^9/L",
            "IU/L": "U/L", "mmol/l": "mmol/L", "mg/dl": "mg/dL", "g/dl": "g/dL", "mcg/L": "ug/L",
            "mcg/dL": "ug/dL", "µg/dL": "ug/dL", "µg/L": "ug/L", "uIU/mL": "mIU/L", "µIU/mL": "mIU/L",
            "mU/L": "mIU/L", "uU/mL": "mIU/L", "mEq/l": "mEq/L", "umol/l": "umol/L", "msec": "ms"}

UNITS: dict[str, Unit] = {name: Unit(name, dim, f, o) for name, dim, f, o in _TABLE}


_FOLDED = {name.casefold(): name for name in [*UNITS, *_ALIASES]}
# The dimensions an analyte's molar mass and valence connect, and how a value in the base unit of each
# (g/L, mol/L, Eq/L) becomes mol/L of the substance.
MOLAR_DIMENSIONS = {"mass_concentration", "substance_concentration", "charge_concentration"}


def lookup(name: str) -> Unit | None:
    """The unit called `name` (or an accepted alias), else None."""
    return UNITS.get(_ALIASES.get(name, name))


def lookup_loose(name: str) -> Unit | None:
    """`lookup`, also ignoring case (`MG/DL`, `Umol/l`): for values people type, never for spec text."""
    unit = lookup(name)
    if unit is None and name.casefold() in _FOLDED:
        unit = lookup(_FOLDED[name.casefold()])
    return unit


def conversion(src: Unit, dst: Unit, src_analyte: str | None = None, dst_analyte: str | None = None):
    """(scale, shift) such that value_in_dst = value_in_src * scale + shift, or None when they do not convert.

    Same dimension: converts unless both sides name analytes of different substances. Across dimensions:
    only when both name the same analyte (or analytes of one substance) whose molar mass, or valence for
    mEq/L, the table knows. `conversion_problem` says why not.
    """
    return _convert(src, dst, src_analyte, dst_analyte)[0]


def conversion_problem(src: Unit, dst: Unit, src_analyte: str | None = None, dst_analyte: str | None = None) -> str:
    """Why `conversion` returned None, in words for a message ("" when it converts)."""
    return _convert(src, dst, src_analyte, dst_analyte)[1]


def _convert(src: Unit, dst: Unit, src_analyte, dst_analyte):
    from medgym.dsl.analytes import lookup as analyte

    a, b = analyte(src_analyte), analyte(dst_analyte)
    if a is not None and b is not None and a.substance != b.substance:
        return None, f"{a.title} is not {b.title}"
    if src.dimension == dst.dimension and (a is None or b is None or a.name == b.name):
        return (src.factor / dst.factor, (src.offset - dst.offset) / dst.factor), ""
    if src.dimension != dst.dimension and (a is None or b is None):
        if {src.dimension, dst.dimension} <= MOLAR_DIMENSIONS:
            return None, "the conversion depends on the analyte, and only one side (or neither) names it"
        return None, "unrelated dimensions never convert"
    if not {src.dimension, dst.dimension} <= MOLAR_DIMENSIONS:
        return None, "unrelated dimensions never convert"
    per_mol = []  # base-unit value per mol/L of the substance, for each side
    for unit, row in ((src, a), (dst, b)):
        if unit.dimension == "mass_concentration" and row.molar_mass is None:
            return None, f"the analyte table has no molar mass for {row.title}"
        if unit.dimension == "charge_concentration" and not row.valence:
            return None, f"{row.title} has no fixed valence, so it has no mEq/L"
        per_mol.append({"mass_concentration": row.molar_mass, "charge_concentration": row.valence}.get(unit.dimension, 1.0))
    # src value -> base units (factor) -> mol/L (/ per_mol) -> dst base units (* per_mol) -> dst unit (/ factor)
    return (src.factor / per_mol[0] * per_mol[1] / dst.factor, 0.0), ""


def units_of(dimension: str) -> list[Unit]:
    return [unit for unit in UNITS.values() if unit.dimension == dimension]


def describe(unit: Unit) -> str:
    return f"{unit.name} ({unit.dimension.replace('_', ' ')})"
