"""Reuse between families: the domain's defaults and `extends:` bases, merged into each family before it
is validated, with every value keeping the position of the file that wrote it.

Resolution order (docs/spec-language.md, "Reuse"): the domain's `defaults.yaml`, then each base from the
farthest (`extends:` of `extends:`) to the nearest, then the family itself; a later layer overrides an
earlier one. Mappings (`let`, `case`, `history`, `truth`, `steps`, `scenarios` and each scenario's own
mappings, `rubric`, `rubric.accuracy`, `rubric.process`, `dataset`) merge key by key, and `null` removes an
inherited key; the rule lists (`rubric.safety`, `.coherence`, `.assertions`) merge by rule id (a rule with
an inherited id replaces it in place, new rules follow, `- {drop: id}` removes one); the process lists
(`rubric.process.require`, `.before_answer`, `.order`) add up (inherited entries first, none repeated);
anything else is replaced whole. A reference item
that is a bare name stands for the named step of `steps:` (a step that is a list is a sequence: its steps, in place). `family`, `abstract` and `extends` are never
inherited; an abstract base materialises nothing. `- step_name: {arg: value}` is the named step with these
arguments replacing its own.

The merge is a pure function of the layers, so a per-family cache can key on the files listed in
`Resolved.sources`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from medgym.dsl.errors import Position, SpecError, did_you_mean
from medgym.dsl.yamlpos import Marks

_SCENARIO_MAPS = ("let", "case", "history", "truth")
_NOT_INHERITED = ("family", "abstract", "extends")
_RULE_LISTS = {("rubric", "safety"), ("rubric", "coherence"), ("rubric", "assertions")}
_ADDED_LISTS = {("rubric", "process", "require"), ("rubric", "process", "before_answer"), ("rubric", "process", "order")}
_TYPED = ("let", "truth")  # values whose type an override must keep


def _is_map(loc: tuple) -> bool:
    if loc in ((), ("let",), ("case",), ("history",), ("truth",), ("steps",), ("scenarios",),
               ("rubric",), ("rubric", "accuracy"), ("rubric", "process"), ("dataset",)):
        return True
    return len(loc) in (2, 3) and loc[0] == "scenarios" and (len(loc) == 2 or loc[2] in _SCENARIO_MAPS)


def _typed_value(loc: tuple) -> bool:
    """A let or truth (of the family or of a scenario): an override must not change its type."""
    return (len(loc) == 2 and loc[0] in _TYPED) or (len(loc) == 4 and loc[0] == "scenarios" and loc[2] in _TYPED)


@dataclass
class Layer:
    data: dict
    marks: Marks
    name: str  # "defaults", or the family name, for messages


@dataclass
class MergedMarks(Marks):
    """Positions of a merged family: each value where its layer wrote it (so errors name the right file)."""

    sources: list[str] = field(default_factory=list)  # the family's file, its bases', the domain defaults'
    overridden: dict[tuple, list[tuple]] = field(default_factory=dict)  # loc -> [(raw value, marks, loc)] replaced


@dataclass
class Resolved:
    data: dict
    marks: MergedMarks
    abstract: bool

    @property
    def sources(self) -> list[str]:
        return self.marks.sources


class _Merge:
    """One family's layers merged; `routes[i]` maps a location in layer i to where it lands."""

    def __init__(self, layers: list[Layer], errors: list[SpecError]):
        self.layers = layers
        self.errors = errors
        self.routes: list[dict[tuple, list[tuple[tuple, bool]]]] = [{} for _ in layers]
        self.origin: dict[tuple, tuple[int, tuple]] = {}  # merged loc -> (layer, loc) of a value taken whole
        self.overridden: dict[tuple, list[tuple]] = {}

    def route(self, layer: int, src: tuple, dst: tuple, whole: bool):
        self.routes[layer].setdefault(src, []).append((dst, whole))

    def mapping(self, items: list[tuple[int, dict, tuple]], dst: tuple) -> dict:
        last = len(self.layers) - 1
        found: dict[str, list[tuple[int, object, tuple]]] = {}
        for layer, value, src in items:
            self.route(layer, src, dst, False)
            for key, item in value.items():
                if dst == () and key in _NOT_INHERITED and layer != last:
                    continue
                if item is None and dst not in ((), ("rubric",), ("rubric", "process")):
                    found.pop(key, None)  # `key: null` removes what the layers below set
                    continue
                found.setdefault(key, []).append((layer, item, src + (key,)))
        out = {}
        for key, values in found.items():
            here = dst + (key,)
            if _is_map(here) and all(isinstance(v, dict) for _, v, _ in values):
                out[key] = self.mapping(values, here)
            elif here in _RULE_LISTS and all(isinstance(v, list) for _, v, _ in values):
                out[key] = self.rules(values, here)
            elif here in _ADDED_LISTS and all(isinstance(v, list) for _, v, _ in values):
                out[key] = self.added(values, here)
            else:
                layer, value, src = values[-1]
                self.route(layer, src, here, True)
                self.origin[here] = (layer, src)
                if len(values) > 1 and _typed_value(here):
                    self.overridden[here] = [(v, self.layers[i].marks, s) for i, v, s in values[:-1]]
                out[key] = value
        return out

    def rules(self, values: list[tuple[int, list, tuple]], dst: tuple) -> list:
        merged: list[tuple[int, object, tuple]] = []
        index: dict[str, int] = {}
        for layer, rules, src in values:
            self.route(layer, src, dst, False)
            for k, rule in enumerate(rules):
                if isinstance(rule, dict) and list(rule) == ["drop"]:
                    self.drop(merged, index, rule["drop"], layer, src + (k,))
                    continue
                rule_id = rule.get("id") if isinstance(rule, dict) else None
                if isinstance(rule_id, str) and rule_id in index:
                    merged[index[rule_id]] = (layer, rule, src + (k,))
                    continue
                if isinstance(rule_id, str):
                    index[rule_id] = len(merged)
                merged.append((layer, rule, src + (k,)))
        merged = [item for item in merged if item is not None]
        for j, (layer, _, src) in enumerate(merged):
            self.route(layer, src, dst + (j,), True)
        return [rule for _, rule, _ in merged]

    def added(self, values: list[tuple[int, list, tuple]], dst: tuple) -> list:
        """Process requirements add up: the inherited entries, then each layer's new ones."""
        merged: list[tuple[int, object, tuple]] = []
        for layer, items, src in values:
            self.route(layer, src, dst, False)
            for k, item in enumerate(items):
                if all(item != seen for _, seen, _ in merged):
                    merged.append((layer, item, src + (k,)))
        for j, (layer, _, src) in enumerate(merged):
            self.route(layer, src, dst + (j,), True)
        return [item for _, item, _ in merged]

    def drop(self, merged: list, index: dict, rule_id, layer: int, src: tuple) -> None:
        """`- {drop: rule_id}`: the family does without an inherited rule."""
        if rule_id not in index or merged[index[rule_id]] is None:
            self.errors.append(SpecError(f"no inherited rule '{rule_id}' to drop", self.layers[layer].marks.at(src),
                                         did_you_mean(str(rule_id), [i for i, j in index.items() if merged[j]])))
            return
        merged[index.pop(rule_id)] = None

    def expand_steps(self, data: dict, errors: list[SpecError]) -> None:
        """Reference items that name a step of `steps:` become that step; a step that is a list of steps (a
        sequence) becomes those steps, in place; `steps` itself is dropped."""
        steps = data.pop("steps", None) or {}
        reference = data.get("reference")
        if not isinstance(reference, list):
            return
        reference[:] = self.splice_sequences(reference, steps, errors)
        for index, item in enumerate(reference):
            if isinstance(item, dict):
                self.step_with_arguments(reference, index, item, steps)
                continue
            if not isinstance(item, str):
                continue
            if item not in steps or isinstance(steps[item], list):
                errors.append(SpecError(f"unknown reference step '{item}'", self.position(("reference", index)),
                                        did_you_mean(item, steps) or "name a step declared under steps: (here, in a "
                                                                     "base or in the domain's defaults.yaml)"))
                continue
            reference[index] = steps[item]
            layer, src = self.origin[("steps", item)]
            self.route(layer, src, ("reference", index), True)

    def splice_sequences(self, reference: list, steps: dict, errors: list[SpecError]) -> list:
        """The reference with each item that names a sequence replaced by the sequence's items (step names or
        calls; not sequences, so a sequence never contains itself), each keeping the position it was written at."""
        out: list[tuple[object, int, tuple]] = []
        for index, item in enumerate(reference):
            layer, src = self.source(("reference", index))
            named = item if isinstance(item, str) else None
            if isinstance(item, dict) and any(isinstance(steps.get(k), list) for k in item if k != "when"):
                errors.append(SpecError("a step sequence takes no arguments or when: (name its steps one by one)",
                                        self.layers[layer].marks.at(src)))
                continue
            if named is None or not isinstance(steps.get(named), list):
                out.append((item, layer, src))
                continue
            seq_layer, seq_src = self.origin[("steps", named)]
            for k, part in enumerate(steps[named]):
                if isinstance(part, str) and isinstance(steps.get(part), list):
                    errors.append(SpecError(f"step sequence '{named}' names the sequence '{part}' (list its steps)",
                                            self.layers[seq_layer].marks.at(seq_src + (k,))))
                    continue
                out.append((part, seq_layer, seq_src + (k,)))
        for new, (_, layer, src) in enumerate(out):
            self.origin[("reference", new)] = (layer, src)
            self.route(layer, src, ("reference", new), True)
        return [item for item, _, _ in out]

    def step_with_arguments(self, reference: list, index: int, item: dict, steps: dict) -> None:
        """`- step_name: {arg: value}`: the named step with these arguments replacing its own (and this
        item's `when:`, if any)."""
        names = [k for k in item if k != "when"]
        if len(names) != 1 or names[0] not in steps or not isinstance(item[names[0]], dict):
            return
        name = names[0]
        step = steps[name]
        tools = [k for k in step if k != "when"]
        if len(tools) != 1 or not isinstance(step[tools[0]], dict):
            return  # the model reports the malformed step
        tool = tools[0]
        layer, src = self.origin[("steps", name)]
        here = ("reference", index)
        self.route(layer, src, here, True)  # the step, then this item's own arguments over it
        item_layer, item_src = self.source(here)
        self.route(item_layer, item_src + (name,), here + (tool,), True)
        if "when" in item:
            self.route(item_layer, item_src + ("when",), here + ("when",), True)
        merged = {tool: {**step[tool], **item[name]}}
        if "when" in item or "when" in step:
            merged["when"] = item.get("when", step.get("when"))
        reference[index] = merged

    def source(self, dst: tuple) -> tuple[int, tuple]:
        """The layer and location a merged value came from (through the value it lies in)."""
        for cut in range(len(dst), -1, -1):
            if dst[:cut] in self.origin:
                layer, src = self.origin[dst[:cut]]
                return layer, src + dst[cut:]
        return len(self.layers) - 1, dst

    def position(self, dst: tuple) -> Position:
        layer, src = self.source(dst)
        return self.layers[layer].marks.at(src)

    def marks(self, path: str) -> MergedMarks:
        values: dict = {}
        keys: dict = {}
        for layer, spec in enumerate(self.layers):
            routes = self.routes[layer]
            for table, out in ((spec.marks.values, values), (spec.marks.keys, keys)):
                for loc, pos in table.items():
                    for dst in _destinations(routes, loc):
                        out[dst] = pos
        return MergedMarks(path, values, keys)


def _destinations(routes: dict, loc: tuple) -> list[tuple]:
    for cut in range(len(loc), -1, -1):
        hits = routes.get(loc[:cut])
        if hits is not None:
            return [dst + loc[cut:] for dst, whole in hits if whole or cut == len(loc)]
    return []


def merge(layers: list[Layer], errors: list[SpecError]) -> tuple[dict, MergedMarks]:
    """The last layer with everything it inherits from the ones before it."""
    work = _Merge(layers, errors)
    data = work.mapping([(i, layer.data, ()) for i, layer in enumerate(layers)], ())
    work.expand_steps(data, errors)
    marks = work.marks(layers[-1].marks.path)
    marks.overridden = work.overridden
    marks.sources = list(dict.fromkeys(layer.marks.path for layer in reversed(layers)))
    return data, marks


def resolve(defaults: Layer | None, families: list[Layer], errors: list[SpecError],
            keep_order: bool = False) -> list[Resolved | None]:
    """Every family of a domain merged with its bases and the domain defaults, in file order (with
    `keep_order`, one entry per family, None where its bases could not be resolved)."""
    by_name: dict[str, Layer] = {}
    for layer in families:
        name = layer.data.get("family")
        if isinstance(name, str):
            by_name.setdefault(name, layer)  # a name defined twice is reported by the pipeline
    out = []
    for layer in families:
        chain = _chain(layer, by_name, errors)
        if chain is None:
            if keep_order:
                out.append(None)
            continue
        layers = ([defaults] if defaults is not None else []) + chain
        data, marks = merge(layers, errors)
        out.append(Resolved(data, marks, layer.data.get("abstract") is True))
    return out


def _chain(layer: Layer, by_name: dict[str, Layer], errors, below: tuple = ()) -> list[Layer] | None:
    """The family and its bases, farthest base first; None after an unknown base or a cycle. `extends:` names
    one base or a list of them: the bases of a list apply in its order (a later one overrides an earlier
    one), each after its own bases, and a base reached twice applies once, where it is first reached."""
    base = layer.data.get("extends")
    if base is None:
        return [layer]
    names = base if isinstance(base, list) else [base]
    chain: list[Layer] = []
    for i, name in enumerate(names):
        where = layer.marks.at(("extends", i) if isinstance(base, list) else ("extends",)) \
            or layer.marks.at(("extends",))
        if not isinstance(name, str) or name not in by_name:
            errors.append(SpecError(f"unknown base family '{name}'", where,
                                    did_you_mean(str(name), by_name) or "extends: names a family of the same domain"))
            return None
        if by_name[name] in below or by_name[name] is layer:
            cycle = " -> ".join([str(x.data.get("family")) for x in (*below, layer)] + [name])
            errors.append(SpecError(f"families extend each other in a cycle: {cycle}", where))
            return None
        sub = _chain(by_name[name], by_name, errors, (*below, layer))
        if sub is None:
            return None
        chain += [x for x in sub if x not in chain]
    return chain + [layer]


def defaults_path(folder: Path) -> Path:
    return folder / "defaults.yaml"
