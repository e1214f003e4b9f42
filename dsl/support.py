"""The helpers that compiled spec code calls (generated modules import this as `_rt`).

Kept small and pure: clinical rounding, safe math, instrument input checks, band lookup and the
seeded samplers used when tasks are materialised.
"""
from __future__ import annotations

import datetime
import importlib.util
import math
import random
import re
import sys
from pathlib import Path
from decimal import ROUND_HALF_UP, Decimal


class InstrumentInputError(ValueError):
    """Bad inputs to an instrument (missing, unknown, wrong type or unit, out of range); shown to the agent as a
    tool error. `problems` holds one line per problem, each naming its input."""

    def __init__(self, message: str, problems: list[str] | None = None):
        super().__init__(message)
        self.problems = problems if problems is not None else [message]

    @classmethod
    def listing(cls, instrument: str, problems: list[str]) -> "InstrumentInputError":
        if len(problems) == 1:
            return cls(f"{instrument}: {problems[0]}", problems)
        shown = problems[:MAX_PROBLEMS_SHOWN]  # a model may send a hundred made-up inputs: keep the message short
        lines = "".join(f"\n- {p}" for p in shown)
        if len(problems) > len(shown):
            lines += f"\n- and {len(problems) - len(shown)} more"
        return cls(f"{instrument}: {len(problems)} problems with the inputs:{lines}", problems)


MAX_PROBLEMS_SHOWN = 20


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


def comparable(value):
    """The form in which two values are the same when they differ only in case, spacing and number spelling
    (1 and 1.0): an answer against its truth, and two dataset items against each other."""
    if isinstance(value, str):
        return " ".join(value.casefold().split())
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, list):
        return tuple(comparable(v) for v in value)
    return value


def field(record, name: str):
    """`record.name` in a rubric predicate: None when the record or the field is absent."""
    return record.get(name) if isinstance(record, dict) else None


def table_row(table: str, rows: dict, key, lenient: bool = False):
    """The row of a table called as a function in an expression; a key the table lacks is an error (in a
    rubric predicate it reads as missing, like any absent field)."""
    try:
        return rows[key]
    except (KeyError, TypeError):
        if lenient:
            return None
        raise KeyError(f"table {table} has no row {key!r}") from None


def check_inputs(instrument: str, spec: tuple, given: dict) -> tuple:
    """The checked values of the inputs, in `spec` order (see `read_inputs`)."""
    values = read_inputs(instrument, spec, given)
    return tuple(values[_item(item)["name"]] for item in spec)


def read_inputs(instrument: str, spec: tuple, given: dict) -> dict:
    """Every input checked and converted into its declared unit, defaults filled in; all problems are reported
    together in one InstrumentInputError. `spec` holds one dict per input (written by the compiler: name, kind,
    type, unit, low, high, values, has_default, default, accepts = {unit: (scale, shift)})."""
    items = [_item(item) for item in spec]
    names = [item["name"] for item in items]
    problems = [_unknown(key, names) for key in given if key not in names]
    values = {}
    for item in items:
        try:
            values[item["name"]] = _read_one(item, given)
        except _Problem as problem:
            problems.append(str(problem))
    if problems:
        raise InstrumentInputError.listing(instrument, problems)
    return values


class _Problem(Exception):
    pass


_OLD_FIELDS = ("name", "kind", "low", "high", "values", "has_default", "default")


def _item(item) -> dict:
    """An input's spec (a build compiled by an older medgym wrote a 7-tuple without units)."""
    return item if isinstance(item, dict) else dict(zip(_OLD_FIELDS, item))


def _unknown(key, names: list[str]) -> str:
    from medgym.dsl.errors import did_you_mean

    hint = did_you_mean(str(key), names) if isinstance(key, str) and len(key) < 100 else ""
    return f"unknown input {_short(key)} ({hint or 'inputs: ' + ', '.join(names)})"


def _read_one(item: dict, given: dict):
    name, kind = item["name"], item["kind"]
    if name not in given or given[name] is None:
        if item.get("has_default"):
            return item.get("default")
        raise _Problem(f"missing input '{name}' ({_expects(item)})")
    value = given[name]
    if kind == "bool":
        if not isinstance(value, bool):
            raise _Problem(f"input '{name}' must be true or false, got {_short(value)}")
        return value
    if kind in ("int", "number"):
        return _read_number(item, value)
    if kind == "enum":
        return _read_choice(item, value)
    if kind == "date":
        day = _iso_date(value)
        if day is None and isinstance(value, str) and re.fullmatch(r"\s*\d{4}-\d{2}-\d{2}\s*", value):
            raise _Problem(f"input '{name}' = {_short(value)} is not a day of the calendar")
        if day is None:
            raise _Problem(f"input '{name}' must be a date written YYYY-MM-DD (e.g. 2024-03-15), got {_short(value)}")
        return day.isoformat()
    if kind == "list":
        if not isinstance(value, list):
            raise _Problem(f"input '{name}' must be a list, got {_short(value)}")
        return value
    if not isinstance(value, str):
        raise _Problem(f"input '{name}' must be text, got {_short(value)}")
    return value


_QUANTITY = re.compile(r"\s*([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*(.*?)\s*")


def _read_number(item: dict, value):
    """A number in the input's unit: a JSON number as it is, or text such as "183 umol/L" converted."""
    name, unit = item["name"], item.get("unit")
    shown = None  # how the caller wrote it, when it was converted
    if isinstance(value, str):
        value, shown = _quantity(item, value)
    elif isinstance(value, bool) or not isinstance(value, (int, float)) or value != value or math.isinf(value):
        raise _Problem(f"input '{name}' must be a number{_in(unit)}, got {_short(value)}")
    if item["kind"] == "int":
        if not float(round(value, 9)).is_integer():
            raise _Problem(f"input '{name}' must be a whole number{_of(unit)}, got "
                           + (f"{shown} = {value:.4g} {unit}" if shown else _short(value)))
        value = int(round(value, 9))
    low, high = item.get("low"), item.get("high")
    if (low is not None and value < low) or (high is not None and value > high):
        written = f"{shown} ({value:.4g} {unit})" if shown else f"{value:g}{_unit_suffix(unit)}"
        raise _Problem(f"input '{name}' = {written} is outside {_span(low, high)}{_unit_suffix(unit)}")
    return value


def _quantity(item: dict, text: str):
    """(value in the input's unit, the text as given or None) for a number written as text."""
    from medgym.dsl.units import lookup_loose

    name, unit, accepts = item["name"], item.get("unit"), item.get("accepts") or {}
    match = _QUANTITY.fullmatch(text) if len(text) <= 100 else None
    if match is None:
        example = f' or text with its unit such as "2 {unit}"' if unit else ""
        raise _Problem(f"input '{name}' must be a number{_in(unit)}{example}, got {_short(text)}")
    number, written = float(match.group(1)), match.group(2)
    if not written:
        return number, None
    if unit is None:
        raise _Problem(f"input '{name}' takes a plain number without a unit, got {_short(text)}")
    known = lookup_loose(written)
    if known is None or known.name not in accepts:
        what = f"unknown unit {written!r}" if known is None else f"{known.name} does not convert to {unit}"
        raise _Problem(f"input '{name}': {what} in {_short(text)}; units accepted: {', '.join(accepts)}")
    scale, shift = accepts[known.name]
    return converted(number, scale, shift), f"{match.group(1)} {known.name}" if known.name != unit else None


def converted(number: float, scale: float, shift: float) -> float:
    """`number * scale + shift` without the binary noise of the factors: 100.4 degF is 38.0 degC, not
    38.00000000000001, so a criterion `> 38` reads it as the clinician does (12 significant digits are far
    beyond any measurement)."""
    value = number * scale + shift
    return float(f"{value:.12g}") if math.isfinite(value) else value


def _read_choice(item: dict, value):
    values = tuple(item.get("values") or ())
    if isinstance(value, str):
        if value in values:
            return value
        folded = [v for v in values if v.casefold() == value.strip().casefold()]
        if len(folded) == 1:
            return folded[0]
    raise _Problem(f"input '{item['name']}' must be one of {', '.join(values)}, got {_short(value)}")


def _expects(item: dict) -> str:
    text = item.get("type") or item["kind"]
    if item.get("low") is not None or item.get("high") is not None:
        text += f" in {_span(item.get('low'), item.get('high'))}"
    return text


def _in(unit) -> str:
    return f" (in {unit})" if unit else ""


def _of(unit) -> str:
    return f" of {unit}" if unit else ""


def _unit_suffix(unit) -> str:
    return f" {unit}" if unit else ""


def _short(value) -> str:
    """A value quoted for a message: never long (the caller may be a model sending anything)."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _iso_date(value) -> datetime.date | None:
    from medgym.dsl.types import parse_iso_date

    return parse_iso_date(value.strip() if isinstance(value, str) else value)


def raise_problems(instrument: str, problems: list[str]) -> None:
    """Raise the `require` lines a call broke, all of them together."""
    if problems:
        raise InstrumentInputError.listing(instrument, problems)


# ---------------------------------------------------------------- dates (ISO text at run time)
def date_add(iso: str, days) -> str:
    """The date `days` whole days after `iso` (before, when negative)."""
    whole = round(days)
    if abs(days - whole) > 1e-9:
        raise ValueError(f"a date moves by whole days, not {days:g}")
    return (datetime.date.fromisoformat(iso) + datetime.timedelta(days=int(whole))).isoformat()


def date_diff(later: str, earlier: str) -> int:
    """Days from `earlier` to `later` (negative when `later` is earlier)."""
    return (datetime.date.fromisoformat(later) - datetime.date.fromisoformat(earlier)).days


def floor(x) -> int:
    return math.floor(x)


def ceil(x) -> int:
    return math.ceil(x)


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


def load_sibling(here: str, relative: str, code: tuple = ()):
    """Import a generated module that sits beside `here` in a build directory (cached by path). `code`: the
    file's code objects, compiled earlier (the compiler's cache), run in order instead of its source."""
    path = (Path(here).parent / relative).resolve()
    # The modification time is part of the name so that a build recompiled in place is imported afresh.
    name = f"_medgym_build_{abs(hash((str(path), path.stat().st_mtime_ns))):x}_{path.stem}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    if not code:
        spec.loader.exec_module(module)
    for part in code:
        exec(part, module.__dict__)  # noqa: S102 - the compiled form of this very file
    return module


# ---------------------------------------------------------------- series (timestamped rows)
def sample_series(rng: random.Random, params: dict, events: tuple = (), clip: tuple | None = None,
                  digits: int | None = None, integer: bool = False) -> list[dict]:
    """Rows every `every` hours from `start` for `over` hours: baseline + trend per hour + each event's shift
    from its time on + gaussian noise, then clipped and rounded. `events` is ((at, shift), ...)."""
    start, every, over = params["start"], params["every"], params["over"]
    if every <= 0:
        raise ValueError("a series needs `every` above zero")
    rows = []
    steps = int(math.floor(over / every + 1e-9))
    for i in range(steps + 1):
        t = start + i * every
        value = params["baseline"] + params["trend"] * (t - start) + sum(s for at, s in events if at <= t)
        if params["noise"]:
            value += rng.gauss(0.0, params["noise"])
        rows.append({"time": round_half_up(t, 2), "value": finish(value, clip, digits, integer)})
    return rows


def window_rows(rows, hours: float | None) -> list[dict]:
    """The rows of the last `hours` before (and at) the latest row; None: every row; 0: the latest only."""
    if not rows:
        return []
    if hours is None:
        return list(rows)
    end = rows[-1]["time"]
    return [row for row in rows if row["time"] >= end - hours - 1e-9]


def series_last(rows):
    return rows[-1]["value"] if rows else None


def series_min(rows, hours: float):
    shown = window_rows(rows, hours)
    return min(r["value"] for r in shown) if shown else None


def series_max(rows, hours: float):
    shown = window_rows(rows, hours)
    return max(r["value"] for r in shown) if shown else None


def series_mean(rows, hours: float):
    """The mean of the window's values (a CTG baseline heart rate over 10 min)."""
    shown = window_rows(rows, hours)
    return sum(r["value"] for r in shown) / len(shown) if shown else None


def series_delta(rows, hours: float):
    """The latest value minus the earliest one inside the window (KDIGO: a rise within 48 h)."""
    shown = window_rows(rows, hours)
    return shown[-1]["value"] - shown[0]["value"] if shown else None


def series_trend(rows, hours: float):
    """The least-squares slope of the window's values, per hour (0 with fewer than two rows)."""
    shown = window_rows(rows, hours)
    if len(shown) < 2:
        return 0.0 if shown else None
    ts = [r["time"] for r in shown]
    vs = [r["value"] for r in shown]
    mt, mv = sum(ts) / len(ts), sum(vs) / len(vs)
    spread = sum((t - mt) ** 2 for t in ts)
    return sum((t - mt) * (v - mv) for t, v in zip(ts, vs)) / spread if spread else 0.0


def row_at(rows, hours: float) -> dict | None:
    """The last row at or before `hours` since admission (a charted value holds until the next one)."""
    found = None
    for row in rows or ():
        if row["time"] > hours + 1e-9:
            break
        found = row
    return found


def series_at(rows, hours: float, lenient: bool = False):
    """The value at `hours` since admission: the last row's at or before it (SOFA at hour 24). Before the
    first row there is no value: an error (the task cannot be computed), or None in a rubric predicate."""
    found = row_at(rows, hours)
    if found is not None:
        return found["value"]
    if lenient or not rows:
        return None
    raise ValueError(f"value_at(): no row at or before hour {hours:g} (the series starts at hour {rows[0]['time']:g})")


_COUNT_OPS = {"<": lambda v, x: v < x, ">": lambda v, x: v > x, "<=": lambda v, x: v <= x, ">=": lambda v, x: v >= x}


def series_count(rows, hours: float, op: str, threshold):
    """How many rows of the window (see `window_rows`) lie beyond the threshold: `op` is <, >, <= or >=
    (hourly urine outputs below 0.5 mL/kg/h are hours of oliguria)."""
    if threshold is None:
        return None
    return sum(1 for row in window_rows(rows, hours) if _COUNT_OPS[op](row["value"], threshold))


def rows_between(rows, since=None, until=None, last_n=None) -> list[dict]:
    """A windowed lookup's rows: times in [since, until] (hours since admission), then the last `last_n`."""
    shown = [r for r in rows if (since is None or r["time"] >= since) and (until is None or r["time"] <= until)]
    return shown[-int(last_n):] if last_n else shown


# ---------------------------------------------------------------- multi-key tables
def table_match(table: str, rows: tuple, keys: tuple, unordered: bool = False, classes: dict | None = None,
                lenient: bool = False):
    """The row of a multi-key table for `keys` (see `match_row`); none is an error outside rubric predicates."""
    found = match_row(rows, keys, unordered, classes or {})
    if found is None and not lenient:
        raise KeyError(f"table {table} has no row for {' + '.join(map(str, keys))}")
    return None if found is None else found[0]


def match_row(rows, keys, unordered: bool, classes: dict):
    """(row, how) for `keys` among `rows` ((key cells, row), ...): a cell matches its key's value, or names a
    class the value is a member of; with `unordered` the keys also match in the other order. The row with the
    most exact cells wins (a drug-specific row before "any NSAID + any anticoagulant"), then table order."""
    wanted = tuple(_fold(k) for k in keys)
    orders = [wanted] + ([tuple(reversed(wanted))] if unordered and len(wanted) == 2 else [])
    members = {_fold(c): {_fold(v) for v in vs} for c, vs in classes.items()}
    best = None
    for cells, row in rows:
        for order in orders:
            exact = _cells_match(tuple(_fold(c) for c in cells), order, members)
            if exact is not None and (best is None or exact > best[0]):
                best = (exact, row, "exact" if exact == len(order) else "class")
    return None if best is None else (best[1], best[2])


def _cells_match(cells, values, members) -> int | None:
    exact = 0
    for cell, value in zip(cells, values):
        if cell == value:
            exact += 1
        elif value not in members.get(cell, ()):
            return None
    return exact


def _fold(value) -> str:
    return " ".join(str(value).split()).casefold()
