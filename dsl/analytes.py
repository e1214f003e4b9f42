"""The analytes a number can be declared to measure (`number mg/dL of creatinine`), for conversions that cross
dimensions: mass concentration (mg/dL) <-> substance concentration (mmol/L) <-> charge concentration (mEq/L).

Such a conversion depends on the analyte: its molar mass (computed here from its formula and the IUPAC
standard atomic weights) and, for mEq/L, its valence. Each row also carries the SI conversion factor a
published table prints for it; `tests/dsl/test_analytes.py` checks that the molar mass reproduces that factor
to the printed precision, so a typo in a formula cannot pass unnoticed. Conversions use the molar mass.

`substance`: analytes reported on different mass bases share a substance and convert into each other through
moles. Urea and urea nitrogen (BUN) are one substance: 1 mmol of urea is 60.06 mg of urea but 28.01 mg of
urea nitrogen (two N atoms), so BUN 28 mg/dL = urea 10 mmol/L = urea 60 mg/dL. Analytes of different
substances never convert, even within one dimension (LDL cholesterol is not total cholesterol).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

# IUPAC Commission on Isotopic Abundances and Atomic Weights, abridged standard atomic weights (2021),
# Pure Appl Chem 2022;94(5):573-600. Only the elements the table below uses.
ATOMIC_WEIGHTS = {"H": 1.008, "C": 12.011, "N": 14.007, "O": 15.999, "Na": 22.990, "Mg": 24.305, "P": 30.974,
                  "Cl": 35.45, "K": 39.098, "Ca": 40.078}
ATOMIC_WEIGHTS_SOURCE = "IUPAC abridged standard atomic weights 2021 (Pure Appl Chem 2022;94(5):573-600)"

# The published SI conversion factors: Young DS. Implementation of SI units for clinical laboratory data. Style
# specifications and conversion tables. Ann Intern Med 1987;106(1):114-129 - the table the AMA Manual of Style
# and JAMA's instructions for authors reproduce ("conventional unit x factor = SI unit").
YOUNG_1987 = "Young DS, Ann Intern Med 1987;106(1):114-129, SI conversion table"


@dataclass(frozen=True)
class Analyte:
    name: str
    title: str
    formula: str | None  # what the mass unit weighs, per particle of the substance (urea nitrogen: N2)
    valence: int | None  # charges per particle, for mEq/L; None where it is not fixed (phosphate)
    substance: str  # analytes of one substance convert into each other through moles
    published: tuple[float, str, str] | None  # (factor, conventional unit, SI unit) as the source prints it
    source: str

    @property
    def molar_mass(self) -> float | None:
        """Grams per mole of the substance, on the basis the mass unit reports (None: no molar conversion)."""
        return formula_mass(self.formula) if self.formula else None


def formula_mass(formula: str) -> float:
    """The molar mass (g/mol) of a formula such as C4H7N3O."""
    total = 0.0
    for element, count in re.findall(r"([A-Z][a-z]?)(\d*)", formula):
        total += ATOMIC_WEIGHTS[element] * (int(count) if count else 1)
    return total


def _row(name, title, formula, valence, published, note="", substance=None) -> Analyte:
    parts = [f"molar mass of {formula} from {ATOMIC_WEIGHTS_SOURCE}"] if formula else []
    if published:
        factor, conventional, si = published
        parts.append(f"{conventional} x {factor:g} = {si}: {YOUNG_1987}")
    if valence:
        parts.append(f"valence {valence} (1 mmol/L = {valence} mEq/L)")
    if note:
        parts.append(note)
    return Analyte(name, title, formula, valence, substance or name, published, "; ".join(parts))


_ROWS = [
    _row("creatinine", "creatinine", "C4H7N3O", None, (88.4, "mg/dL", "umol/L")),
    _row("urea", "urea", "CH4N2O", None, None,
         "reported as urea (mmol/L, or mg/dL of urea); the same substance as urea_nitrogen", substance="urea"),
    _row("urea_nitrogen", "urea nitrogen (BUN)", "N2", None, (0.357, "mg/dL", "mmol/L"),
         "mass reported as the nitrogen of urea (2 N per molecule), so 1 mmol/L of urea = 2.80 mg/dL BUN",
         substance="urea"),
    _row("glucose", "glucose", "C6H12O6", None, (0.0555, "mg/dL", "mmol/L")),
    _row("calcium", "calcium", "Ca", 2, (0.25, "mg/dL", "mmol/L"), "total or ionised calcium"),
    _row("magnesium", "magnesium", "Mg", 2, (0.4114, "mg/dL", "mmol/L")),
    _row("phosphate", "phosphate (inorganic phosphorus)", "P", None, (0.3229, "mg/dL", "mmol/L"),
         "mass reported as phosphorus; no fixed valence at pH 7.4 (HPO4 2- and H2PO4 -), so no mEq/L"),
    _row("bilirubin", "bilirubin", "C33H36N4O6", None, (17.1, "mg/dL", "umol/L"), "total, direct or indirect"),
    _row("cholesterol", "total cholesterol", "C27H46O", None, (0.0259, "mg/dL", "mmol/L")),
    _row("ldl_cholesterol", "LDL cholesterol", "C27H46O", None, (0.0259, "mg/dL", "mmol/L"),
         "the cholesterol of the LDL fraction; never converts to or from total cholesterol"),
    _row("hdl_cholesterol", "HDL cholesterol", "C27H46O", None, (0.0259, "mg/dL", "mmol/L"),
         "the cholesterol of the HDL fraction; never converts to or from total cholesterol"),
    _row("triglycerides", "triglycerides", "C57H104O6", None, (0.0113, "mg/dL", "mmol/L"),
         "molar mass of triolein, the convention behind the published factor"),
    _row("uric_acid", "uric acid", "C5H4N4O3", None, (59.48, "mg/dL", "umol/L")),
    _row("lactate", "lactate", "C3H6O3", None, (0.111, "mg/dL", "mmol/L")),
    _row("sodium", "sodium", "Na", 1, (1.0, "mEq/L", "mmol/L")),
    _row("potassium", "potassium", "K", 1, (1.0, "mEq/L", "mmol/L")),
    _row("chloride", "chloride", "Cl", 1, (1.0, "mEq/L", "mmol/L")),
    _row("bicarbonate", "bicarbonate", "HCO3", 1, (1.0, "mEq/L", "mmol/L")),
    _row("albumin", "albumin", None, None, (10.0, "g/dL", "g/L"),
         "mass concentration only (g/dL <-> g/L is a change of unit, not of dimension)"),
]

ANALYTES: dict[str, Analyte] = {a.name: a for a in _ROWS}


def lookup(name: str | None) -> Analyte | None:
    return ANALYTES.get(name) if name else None
