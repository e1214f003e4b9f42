"""Instruments: type-check `.score` declarations and generate one pure Python function each."""
from __future__ import annotations

from dataclasses import dataclass, field

from medgym.compiler.pycode import PyGen
from medgym.dsl import nodes as n
from medgym.dsl.checker import Scope, Signature, check
from medgym.dsl.errors import Position, SpecError, did_you_mean
from medgym.dsl import units as u
from medgym.dsl.types import (BOOL, INT, TEXT, BoolT, DateT, EnumT, ListT, NumT, RecordT, Type, from_ref,
                              value_matches)

RESERVED_OUTPUTS = {"total", "band", "interpretation", "points"}


@dataclass
class CheckedInstrument:
    decl: n.Instrument
    input_types: dict[str, Type]
    lets: list[tuple[str, n.Expr]] = field(default_factory=list)
    requires: list[tuple[n.RequireLine, n.Expr]] = field(default_factory=list)
    steps: list[tuple[str, object, n.Expr]] = field(default_factory=list)  # ("let", name, expr) and
    # ("require", line, condition) in file order: the code runs them in that order
    points: list[tuple[n.PointLine, n.Expr, n.Expr]] = field(default_factory=list)
    results: list[tuple[n.ResultLine, n.Expr, Type]] = field(default_factory=list)
    signature: Signature | None = None

    @property
    def name(self) -> str:
        return self.decl.name


def _at(decl: n.Instrument, node: n.Node) -> Position:
    return Position(decl.path, max(node.line, 1), max(node.col, 1))


def check_instrument(decl: n.Instrument, known: dict[str, Signature], errors: list[SpecError]) -> CheckedInstrument | None:
    """Check one instrument; other instruments already checked may be called by name."""
    before = len(errors)
    if not decl.sources:
        errors.append(SpecError(f"instrument '{decl.name}' has no source", _at(decl, decl), 'add: source "citation"'))
    inputs = _check_inputs(decl, errors)
    out = CheckedInstrument(decl, inputs)
    scope = Scope(dict(inputs), dict(known))
    origin = Position(decl.path, 1, 1)
    for line in sorted([*decl.lets, *decl.requires], key=lambda x: (x.line, x.col)):
        if isinstance(line, n.RequireLine):
            _check_require(decl, line, scope, origin, out, errors)
            continue
        typed = _typed(line.value, scope, origin, errors)
        if typed:
            out.lets.append((line.name, typed[0]))
            out.steps.append(("let", line.name, typed[0]))
            scope.names[line.name] = typed[1]
    total_int = True
    for line in decl.points:
        cond = _typed(line.condition, scope, origin, errors)
        pts = _typed(line.points, scope, origin, errors)
        if cond and not isinstance(cond[1], BoolT):
            errors.append(SpecError(f"a points condition must be true/false, not {cond[1].describe()}", _at(decl, line)))
        if pts and not isinstance(pts[1], NumT):
            errors.append(SpecError(f"points must be a number, not {pts[1].describe()}", _at(decl, line.points)))
        if cond and pts:
            out.points.append((line, cond[0], pts[0]))
            total_int = total_int and pts[1].is_int
    outputs: dict[str, Type] = {}
    if decl.points:
        outputs["total"] = NumT("points", total_int)
        scope.names["total"] = NumT(None, total_int)
    for line in decl.results:
        if line.name in RESERVED_OUTPUTS or line.name in inputs:
            errors.append(SpecError(f"result name '{line.name}' is taken", _at(decl, line)))
            continue
        typed = _typed(line.value, scope, origin, errors)
        if not typed:
            continue
        expr, t = typed
        if line.unit is not None:
            if not isinstance(t, NumT):
                errors.append(SpecError("only a number result can have a unit", _at(decl, line)))
                continue
            from medgym.dsl.checker import Checker
            target = NumT(line.unit, t.is_int)
            try:
                expr = Checker(scope, origin).convert(expr, t, target, line.value, f"result {line.name}")
            except SpecError as exc:
                errors.append(exc)
            t = target
        if line.round == 0 and isinstance(t, NumT):
            t = NumT(t.unit, True)
        out.results.append((line, expr, t))
        outputs[line.name] = t
        scope.names[line.name] = t
    _check_bands(decl, outputs, errors)
    if decl.bands:
        outputs["band"] = EnumT(tuple(dict.fromkeys(b.label for b in decl.bands)))
        outputs["interpretation"] = TEXT
    if not outputs:
        errors.append(SpecError(f"instrument '{decl.name}' computes nothing: add points or a result", _at(decl, decl)))
    _check_examples(decl, inputs, outputs, errors)
    if len(errors) > before:
        return None
    required = tuple((d.name, inputs[d.name], not d.has_default) for d in decl.inputs)
    out.signature = Signature(decl.name, required, RecordT(decl.name, tuple(outputs.items())))
    return out


def _check_require(decl, line: n.RequireLine, scope, origin, out: CheckedInstrument, errors):
    """`require CONDITION "message"`: the condition is true/false over the inputs and the lets above it."""
    typed = _typed(line.condition, scope, origin, errors)
    if typed and not isinstance(typed[1], BoolT):
        errors.append(SpecError(f"a require condition must be true/false, not {typed[1].describe()}", _at(decl, line)))
    elif typed:
        out.requires.append((line, typed[0]))
        out.steps.append(("require", line, typed[0]))


def _typed(expr, scope, origin, errors):
    try:
        return check(expr, scope, origin)
    except SpecError as exc:
        errors.append(exc)
        return None


def _check_inputs(decl: n.Instrument, errors) -> dict[str, Type]:
    inputs: dict[str, Type] = {}
    for d in decl.inputs:
        if d.name in inputs:
            errors.append(SpecError(f"input '{d.name}' is declared twice", _at(decl, d)))
            continue
        try:
            t = from_ref(d.type, _at(decl, d.type))
        except SpecError as exc:
            errors.append(exc)
            continue
        if (d.low is not None or d.high is not None) and not isinstance(t, NumT):
            errors.append(SpecError(f"input '{d.name}': only numbers take a range", _at(decl, d)))
        if d.has_default and not value_matches(t, d.default):
            errors.append(SpecError(f"input '{d.name}': default {d.default!r} is not {t.describe()}", _at(decl, d)))
        inputs[d.name] = t
    if not inputs:
        errors.append(SpecError(f"instrument '{decl.name}' declares no inputs", _at(decl, decl)))
    return inputs


def _check_bands(decl: n.Instrument, outputs: dict[str, Type], errors):
    if not decl.bands:
        if decl.band_on:
            errors.append(SpecError("'bands on' without band lines", _at(decl, decl)))
        return
    target = decl.band_on or "total"
    if target not in outputs or not isinstance(outputs[target], NumT):
        errors.append(SpecError(f"bands are on '{target}', which is not a numeric output", _at(decl, decl.bands[0]),
                                did_you_mean(target, outputs)))
    spans = sorted(decl.bands, key=lambda b: float("-inf") if b.low is None else b.low)
    for a, b in zip(spans, spans[1:]):
        if a.high is None or (b.low is not None and b.low <= a.high):
            errors.append(SpecError(f"band '{b.label}' overlaps band '{a.label}'", _at(decl, b)))


def _check_examples(decl: n.Instrument, inputs: dict[str, Type], outputs: dict[str, Type], errors):
    for ex in decl.examples:
        for name, value in ex.given:
            if name not in inputs:
                errors.append(SpecError(f"example gives unknown input '{name}'", _at(decl, ex), did_you_mean(name, inputs)))
            elif not value_matches(inputs[name], value) and not _quantity_text(inputs[name], value):
                errors.append(SpecError(f"example: {name} = {value!r} is not {inputs[name].describe()}", _at(decl, ex)))
        for name, _ in ex.expect:
            if name not in outputs:
                errors.append(SpecError(f"example expects unknown output '{name}'", _at(decl, ex), did_you_mean(name, outputs)))


def _quantity_text(t: Type, value) -> bool:
    """An example may give a number as text with a unit ("183 umol/L"), as a caller may: converted at call time."""
    return isinstance(t, NumT) and t.unit is not None and isinstance(value, str) and any(c.isalpha() or c == "%" for c in value)


# ---------------------------------------------------------------- code generation
def input_spec(checked: CheckedInstrument) -> tuple:
    """What `support.read_inputs` reads: one dict per input, with the units a caller may write it in."""
    out = []
    for d in checked.decl.inputs:
        t = checked.input_types[d.name]
        out.append({"name": d.name, "kind": _kind(t), "type": t.describe(), "unit": getattr(t, "unit", None),
                    "low": d.low, "high": d.high, "values": t.values if isinstance(t, EnumT) else (),
                    "has_default": d.has_default, "default": d.default, "accepts": accepted_units(t)})
    return tuple(out)


def _kind(t: Type) -> str:
    if isinstance(t, NumT):
        return "int" if t.is_int else "number"
    for cls, kind in ((BoolT, "bool"), (EnumT, "enum"), (DateT, "date"), (ListT, "list")):
        if isinstance(t, cls):
            return kind
    return "text"


def accepted_units(t: Type) -> dict[str, tuple[float, float]]:
    """unit -> (scale, shift) into `t`'s unit, for every unit a value of `t` may be given in: the declared unit
    first, then the rest of its dimension, then (for an analyte) the other dimensions its molar mass and
    valence reach. Fixed when the specs compile, so a build keeps the conversions it was checked with."""
    if not isinstance(t, NumT) or t.unit is None:
        return {}
    target = u.lookup(t.unit)
    found = {t.unit: (1.0, 0.0)}
    for unit in sorted(u.UNITS.values(), key=lambda x: x.dimension != target.dimension):
        factors = u.conversion(unit, target, t.analyte, t.analyte)
        if factors is not None and unit.name not in found:
            found[unit.name] = factors
    return found


def function_body(checked: CheckedInstrument) -> list[str]:
    """The statements of the instrument's function (indented by the template)."""
    gen = PyGen(lambda name: f"v_{name}", instrument_prefix="")
    decl = checked.decl
    lines = [f"{', '.join('v_' + d.name for d in decl.inputs)}, = _rt.check_inputs({decl.name!r}, _INPUTS_{decl.name}, inputs)"]
    lines += _lets_and_requires(checked, gen)
    if checked.points:
        lines.append("scored = []")
        for line, cond, pts in checked.points:
            lines.append(f"if {gen(cond)}:  # {decl.path}:{line.line}")
            lines.append(f"    scored.append(({line.text!r}, {gen(pts)}))")
        lines.append("v_total = sum(p for _, p in scored)")
    for line, expr, _ in checked.results:
        value = gen(expr)
        if line.round is not None:
            value = f"_rt.round_half_up({value}, {line.round})"
        lines.append(f"v_{line.name} = {value}  # {decl.path}:{line.line}")
    out = {}
    if checked.points:
        out["total"] = "v_total"
    for line, _, _ in checked.results:
        out[line.name] = f"v_{line.name}"
    lines.append("out = {" + ", ".join(f"{k!r}: {v}" for k, v in out.items()) + "}")
    if decl.bands:
        target = out[decl.band_on or "total"]
        lines.append(f"out['band'], out['interpretation'] = _rt.band({target}, _BANDS_{decl.name})")
    if checked.points:
        lines.append("out['points'] = [{'criterion': c, 'points': p} for c, p in scored if p]")
    lines.append("return out")
    return lines


def _lets_and_requires(checked: CheckedInstrument, gen) -> list[str]:
    """The lets and requires in file order. Every broken require is reported together, before any later let
    computes with the inputs it refused (a let may divide by what a require rules out)."""
    lines = ["problems = []"] if checked.requires else []
    pending = False
    for kind, what, expr in checked.steps:
        if kind == "require":
            lines.append(f"if not {gen(expr)}:  # {checked.decl.path}:{what.line}")
            lines.append(f"    problems.append({what.message!r})")
            pending = True
            continue
        if pending:
            lines.append(f"_rt.raise_problems({checked.name!r}, problems)")
            pending = False
        lines.append(f"v_{what} = {gen(expr)}")
    if pending:
        lines.append(f"_rt.raise_problems({checked.name!r}, problems)")
    return lines


def bands_tuple(decl: n.Instrument) -> tuple:
    ordered = sorted(decl.bands, key=lambda b: float("-inf") if b.low is None else b.low)
    return tuple((b.low, b.high, b.label, b.interpretation) for b in ordered)
