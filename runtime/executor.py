"""Executing one validated tool call against the episode: one small handler per tool kind.

A handler returns the result dict shown to the agent, or raises ToolError with a message for the agent;
either way the episode goes on. Handlers record what they revealed and showed in the Episode.
"""
from __future__ import annotations

import functools
import importlib
import random
import zlib

from medgym.dsl.build import kind_table
from medgym.dsl.support import InstrumentInputError, match_row, read_inputs, rows_between
from medgym.runtime.build import Domain, Tool
from medgym.runtime.episode import Episode


class ToolError(Exception):
    """A call that was well-formed but could not be carried out (the message goes to the agent)."""


def execute(domain: Domain, episode: Episode, tool: Tool, arguments: dict) -> tuple[dict, str | None]:
    """Run the call; returns (result, resolved simulator topic or None)."""
    _check_ids(episode, tool, arguments)
    return _HANDLERS[tool.kind](domain, episode, tool, arguments)


def _check_ids(episode: Episode, tool: Tool, arguments: dict) -> None:
    case_id = episode.case.get("id")  # case records are the domain's own JSON
    for param in tool.id_params:
        given = arguments.get(param)
        if case_id is not None and given is not None and str(given).strip().casefold() != str(case_id).casefold():
            raise ToolError(f"no {param.replace('_id', '')} with id {str(given)[:60]!r} here "
                            f"(the ticket names the id to use)")


# -- lookup -------------------------------------------------------------------------------------------------

def _lookup(domain: Domain, episode: Episode, tool: Tool, arguments: dict):
    spec = tool.spec
    prefix = ".".join(spec.path)
    value = _subtree(episode.case, spec.path)
    if value is None:
        return {"result": "not recorded for this patient"}, None
    if isinstance(value, dict):
        value = _selected(value, arguments.get(spec.select) if spec.select else None)
        if spec.revealed_only:
            value = _ready(domain, episode, prefix, value)
    if spec.window:
        value = _windowed(value, spec.window, arguments)
    episode.observe(prefix, value)
    return {prefix.rsplit(".", 1)[-1]: _present(domain, prefix, value, spec.flags)}, None


def _subtree(case: dict, path: tuple[str, ...]):
    node = case
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _selected(value: dict, wanted) -> dict:
    if wanted is None:
        return value
    names = wanted if isinstance(wanted, list) else [wanted]
    return {k: value[k] for k in names if k in value}


def _windowed(value, window: dict[str, float], arguments: dict):
    """Only the series rows inside the call's window (since/until in hours since admission, last_n rows)."""
    bounds = {k: arguments.get(k) for k in window}
    if all(v is None for v in bounds.values()):
        return value
    since, until = (None if bounds.get(k) is None else float(bounds[k]) * window[k] for k in ("since", "until"))
    if since is not None and until is not None and since > until:
        raise ToolError(f"since ({bounds['since']}) is after until ({bounds['until']})")
    return _map_series(value, lambda rows: rows_between(rows, since, until, bounds.get("last_n")))


def _map_series(value, function):
    if isinstance(value, dict):
        return {k: _map_series(v, function) for k, v in value.items()}
    if isinstance(value, list) and all(isinstance(r, dict) and "time" in r for r in value):
        return function(value)
    return value


def _ready(domain: Domain, episode: Episode, prefix: str, value: dict) -> dict:
    if prefix in episode.revealed:  # the whole group was ordered
        return value
    ready = {k: v for k, v in value.items() if episode.revealed.get(f"{prefix}.{k}", float("inf")) <= episode.clock}
    if not ready:
        orderers = " or ".join(domain.revealed_by.get(prefix, [])) or "the ordering tool"
        raise ToolError(f"no {prefix} results yet: nothing has been ordered (order them with {orderers})")
    return ready


def _present(domain: Domain, prefix: str, value, flags: bool):
    """Numbers with a declared unit carry it, and a flag against the reference/critical range when asked."""
    if isinstance(value, dict):
        return {k: _present(domain, f"{prefix}.{k}", v, flags) for k, v in value.items()}
    meta = domain.spec.fields.get(prefix)
    if meta is not None and meta.type.startswith("series(") and isinstance(value, list):
        return _present_series(value, meta, flags)
    if meta is None or isinstance(value, bool) or not isinstance(value, (int, float)) or not meta.unit:
        return value
    shown = {"value": value, "unit": meta.unit}
    if flags:
        flag = _flag(value, meta.reference, meta.critical)
        if flag:
            shown["flag"] = flag
    return shown


def _present_series(rows: list, meta, flags: bool) -> dict:
    """A series as the agent sees it: its unit once, then each row's time (hours since admission) and value."""
    shown = []
    for row in rows:
        item = {"time_h": row["time"], "value": row["value"]}
        flag = _flag(row["value"], meta.reference, meta.critical) if flags else None
        if flag:
            item["flag"] = flag
        shown.append(item)
    out = {"unit": meta.unit, "times": "hours since admission", "rows": shown} if meta.unit else {"rows": shown}
    return out if rows else dict(out, note="no rows in this window")


def _flag(value: float, reference, critical) -> str | None:
    low_crit, high_crit = critical if critical else (None, None)
    if low_crit is not None and value < low_crit:
        return "critical_low"
    if high_crit is not None and value > high_crit:
        return "critical_high"
    if not reference:
        return None
    low, high = reference
    if low is not None and value < low:
        return "low"
    if high is not None and value > high:
        return "high"
    return "normal"


# -- action ---------------------------------------------------------------------------------------------------

def _action(domain: Domain, episode: Episode, tool: Tool, arguments: dict):
    spec = tool.spec
    ready_at = episode.clock + tool.minutes
    result = {"status": "done", "tool": tool.name}
    result.update({k: v for k, v in arguments.items() if k not in tool.id_params})
    if spec.reveals:
        prefix = ".".join(spec.reveals)
        select = spec.select
        if select:
            names = arguments.get(select)
            for name in names if isinstance(names, list) else [names]:
                episode.revealed.setdefault(f"{prefix}.{name}", ready_at)
        else:
            episode.revealed.setdefault(prefix, ready_at)
        result["status"] = "ordered"
        result["results_ready_at_min"] = round(ready_at, 1)
        if prefix in domain.read_by:
            result["read_with"] = domain.read_by[prefix]
    return result, None


# -- instrument, table ----------------------------------------------------------------------------------------

def _instrument(domain: Domain, episode: Episode, tool: Tool, arguments: dict):
    """Check every input at once (the env leaves instrument tools to this), converting numbers given as text
    with a unit ("183 umol/L") into the instrument's units; the call is then recorded with the values used."""
    function = domain.build.instruments[tool.spec.instrument]
    inputs = {k: v for k, v in arguments.items() if k not in tool.id_params}
    spec = getattr(function, "input_spec", None)  # absent in builds compiled by an older medgym
    try:
        if spec is not None:
            checked = read_inputs(tool.name, spec, inputs)
            arguments.update({k: checked[k] for k in inputs})
            inputs = checked
        return function(**inputs), None
    except InstrumentInputError as exc:
        raise ToolError(str(exc)) from None
    except TypeError as exc:  # an argument the instrument does not take (schemas normally stop this first)
        raise ToolError(f"{tool.name}: {exc}") from None


def _table(domain: Domain, episode: Episode, tool: Tool, arguments: dict):
    table = domain.build.tables[tool.spec.table]
    key_param = tool.spec.key_param
    if key_param is None:
        return {"table": table.name, "source": table.source, "rows": table.rows}, None
    if not isinstance(key_param, str):
        return _table_pair(table, key_param, arguments), None
    wanted = str(arguments.get(key_param, "")).strip().casefold()
    for row in table.rows:  # rows are the table's own columns (plain JSON)
        if str(row.get(table.key, "")).casefold() == wanted:
            return dict(row, source=table.source), None
    keys = ", ".join(str(r.get(table.key)) for r in table.rows[:40])
    raise ToolError(f"no entry {arguments.get(key_param)!r} in {table.name}; entries: {keys}")


def _table_pair(table, key_params: tuple, arguments: dict) -> dict:
    """A multi-key row: the keys in either order when the table is unordered, a class row for members of the
    class; no row is an answer too (no listed interaction), not an error."""
    values = tuple(str(arguments.get(p, "")).strip() for p in key_params)
    rows = tuple((tuple(row.get(k) for k in table.keys), row) for row in table.rows)
    found = match_row(rows, values, table.unordered, table.classes)
    asked = dict(zip(table.keys, values))
    if found is None:
        return {"table": table.name, **asked, "found": False, "result": f"no entry for {' + '.join(values)} in {table.name}",
                "source": table.source}
    row, how = found
    shown = {k: v for k, v in row.items() if k != "source"}
    return {"table": table.name, "asked": asked, "found": True, "matched": how, **shown,
            "source": row.get("source") or table.source}


# -- simulator -------------------------------------------------------------------------------------------------

def _simulator(domain: Domain, episode: Episode, tool: Tool, arguments: dict):
    question = str(arguments.get(tool.spec.question_param, ""))
    topic = domain.topic_matcher.match(question)
    entity = domain.spec.entity
    if topic is None:
        topics = "; ".join(t.description or name for name, t in domain.spec.history_topics.items())
        raise ToolError(f"the {entity} does not understand the question; ask about one thing at a time, e.g. "
                        f"{topics[:600]}")
    variants = episode.task.history.get(topic)
    times = episode.asked.get(topic, 0)
    episode.asked[topic] = times + 1
    if not variants:
        return {"answer": _NOTHING_TO_ADD[_pick(episode, topic, times, len(_NOTHING_TO_ADD))], "topic": topic}, topic
    episode.observed.add(f"history.{topic}")
    return {"answer": variants[_pick(episode, topic, times, len(variants))], "topic": topic}, topic


_NOTHING_TO_ADD = ("I don't think so, no.", "Nothing I've noticed.", "No, nothing like that.")


def _pick(episode: Episode, topic: str, times: int, n: int) -> int:
    """Deterministic per task and topic: the first answer is seeded, a repeated question gets the next wording."""
    seed = zlib.crc32(f"{episode.task.task_id}|{episode.task.seed}|{topic}".encode())
    return (random.Random(seed).randrange(n) + times) % n


# -- knowledge base, submit, python --------------------------------------------------------------------------------

def _kb_search(domain: Domain, episode: Episode, tool: Tool, arguments: dict):
    from medgym.runtime.kb import KBError
    from medgym.runtime.kb.tools import read_passage, search_knowledge

    try:
        kb = _knowledge_base()
    except KBError as exc:
        raise ToolError(f"the knowledge base is not available: {exc}") from None
    if tool.spec.op == "read":
        result = read_passage(kb, arguments.get("passage_id"))
    else:
        result = search_knowledge(kb, arguments.get("query"), arguments.get("k", 5), arguments.get("source"))
    if "error" in result:
        raise ToolError(result["error"])
    for hit in result.get("results", []):
        episode.retrieved.add(str(hit.get("id")))
    return result, None


@functools.lru_cache(maxsize=1)
def _knowledge_base():
    """Opened once per process: an index is read-only while episodes run (a failed open is not cached)."""
    from medgym.runtime.kb import KnowledgeBase

    return KnowledgeBase.open(None)


def _submit(domain: Domain, episode: Episode, tool: Tool, arguments: dict):
    answer = {k: v for k, v in arguments.items() if k not in tool.id_params}
    phase = episode.current_phase
    if phase is not None:
        episode.phase_answers[phase.name] = answer
        if episode.phase + 1 < len(episode.task.phases):  # the phase ends, the episode goes on
            episode.next_phase()
            after = episode.current_phase
            handed = {k: answer[k] for k in phase.hand_forward if k in answer}
            return {"status": "submitted", "phase": phase.name, "next_phase": after.name,
                    "handed_forward": handed, "tools": list(after.tools)}, None
    episode.answer = answer
    episode.done = True
    return {"status": "submitted"}, None


def _python(domain: Domain, episode: Episode, tool: Tool, arguments: dict):
    module_name, _, attr = tool.spec.function.partition(":")
    function = getattr(importlib.import_module(module_name), attr)
    try:
        result = function(case=episode.case, state=episode, **arguments)
    except (ValueError, KeyError, TypeError, LookupError) as exc:
        raise ToolError(f"{tool.name}: {exc}") from None
    return (result if isinstance(result, dict) else {"result": result}), None


_HANDLERS = kind_table({"lookup": _lookup, "action": _action, "instrument": _instrument, "table": _table,
                        "simulator": _simulator, "kb_search": _kb_search, "submit": _submit, "python": _python},
                       "medgym.runtime.executor._HANDLERS")
