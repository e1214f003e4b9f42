"""Hostile tool-call arguments against every shipped tool, in every call format: `env.step` never raises.

Each example draws schema-valid arguments for every tool of a domain (from the tool's JSON schema) and then
mutates some of them the ways model output goes wrong: lone surrogates, numbers JSON can write but no tool
can use (1e400, 5000-digit integers, NaN, Infinity), deep nesting, objects where text is expected, very long
text, wrong types, unknown or odd argument names, missing arguments, and for caller-built messages Python
objects JSON cannot hold. Every call is sent in one of the accepted formats. After each step: the 5-tuple,
an observation that encodes to UTF-8, a finite reward, the info keys, an episode that ends only through a
valid submission, and, for every call that ran, arguments that were plain, finite, bounded and schema-valid.

The knowledge-base tools run both without a knowledge base and with a small one built here.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from medgym.runtime import executor, make_env
from medgym.runtime.kb import KnowledgeBase, Passage
from medgym.runtime.toolcalls import MAX_ARG_NUMBER
from shipped_domains import SHIPPED_DOMAINS

DOMAINS = SHIPPED_DOMAINS
EXAMPLES = 50  # per domain and knowledge-base state; each example calls every tool of the domain once
INFO_KEYS = {"tool_results", "turn", "clock_min"}
END_KEYS = {"reward_components", "reward_total", "safety_violations", "answer", "episode"}
PASSAGE_IDS = ["guide:sepsis-lactate", "drugs:warfarin", "hpo:fever"]


# -- a knowledge base, or none ---------------------------------------------------------------------------

def tiny_corpus() -> list[Passage]:
    facts = [("guide:sepsis-lactate", "Lactate in sepsis", "Measure serum lactate in suspected sepsis.", "guide"),
             ("drugs:warfarin", "Warfarin", "Warfarin is a vitamin K antagonist; amiodarone raises the INR.", "drugs"),
             ("hpo:fever", "Fever", "Body temperature elevated above the normal range; pyrexia.", "hpo")]
    passages = [Passage(pid, title, text, source) for pid, title, text, source in facts]
    return passages + [Passage(f"filler:{i}", f"Filler {i}", f"renal hepatic dose number {i}", "filler")
                       for i in range(20)]


@pytest.fixture(scope="module")
def built_kb_cache(tmp_path_factory):
    cache = tmp_path_factory.mktemp("hostile-kb")
    KnowledgeBase.build(tiny_corpus(), cache / "kb", threads=1).close()
    return cache


@pytest.fixture(params=["no knowledge base", "knowledge base"])
def kb_cache(request, tmp_path, monkeypatch):
    """MEDGYM_CACHE_DIR pointing at no knowledge base, or at a small built one; the executor's cached open is
    cleared on both sides so no other test sees this one."""
    cache = request.getfixturevalue("built_kb_cache") if request.param == "knowledge base" else tmp_path
    monkeypatch.setenv("MEDGYM_CACHE_DIR", str(cache))
    executor._knowledge_base.cache_clear()
    yield request.param
    executor._knowledge_base.cache_clear()


@pytest.fixture(scope="module")
def envs(shipped_build):
    # No truncation inside an example: an example makes one call per tool; truncation is checked below.
    return {domain: make_env(shipped_build, domain, max_turns=10_000) for domain in DOMAINS}


# -- hostile values -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Raw:
    """A JSON token written as is in text formats (json.dumps cannot write 5000 digits) and its Python value
    for caller-built messages."""

    text: str
    value: object


@dataclass(frozen=True)
class PythonOnly:
    """A value only a caller-built message can hold; text formats write `text` instead."""

    value: object
    text: str


class Text(str):
    def strip(self, *chars):
        raise RuntimeError("a handler called a method of a caller's str subclass")


class Number(float):
    def __lt__(self, other):
        raise RuntimeError("a handler compared a caller's float subclass")


FIVE_THOUSAND_ONES = Raw("1" * 5000, math.inf)  # int("1" * 5000) itself is refused by Python's digit limit
NUMBERS = st.sampled_from([
    Raw("1e400", math.inf), Raw("-1e400", -math.inf), FIVE_THOUSAND_ONES, Raw("-" + "9" * 4500, -math.inf),
    Raw("NaN", math.nan), Raw("Infinity", math.inf), Raw("-Infinity", -math.inf),
    Raw(str(MAX_ARG_NUMBER + 1), MAX_ARG_NUMBER + 1), Raw("1e308", 1e308), Raw("-0.0", -0.0), Raw("1e-400", 0.0),
    Raw("4.0", 4.0), Raw("0", 0), Raw("-1", -1), Raw("99999", 99999),
])
ANY_CHARS = st.text(st.characters(codec=None, categories=["Cs", "Cc", "L", "N", "P", "S", "Z"]), max_size=8)
SURROGATE_TEXT = st.tuples(ANY_CHARS, st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), ANY_CHARS).map("".join)
ODD_TEXT = st.sampled_from([
    "\ud800", "a\udfffb", "\udc80\ud800", "\x00", "", " ", "x" * 100_000, "<tool_call>", "</parameter>", "```",
    '"', "\\", "\\ud800", "🩺 ясно 中文", "\u200d\u0301", "NaN", "1e400", "{}", "[1]", "null",
])
CONTAINERS = st.sampled_from([
    {"a": "b"}, {"": None}, [["x"]], [], {}, {"text": {"text": {"text": "deep"}}},
    [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["forty"]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]],
])
WRONG_TYPES = st.sampled_from([True, False, None, 0, 1, -5, 2.5, "5", "true"])
PYTHON_ONLY = st.sampled_from([
    PythonOnly(math.nan, '"nan"'), PythonOnly(math.inf, '"inf"'), PythonOnly(10**5000, '"big"'),
    PythonOnly(b"bytes", '"bytes"'), PythonOnly({1, 2}, "[1, 2]"), PythonOnly(object(), '"object"'),
    PythonOnly((1, "a"), '[1, "a"]'), PythonOnly(Text("text"), '"text"'), PythonOnly(Number(1.5), "1.5"),
    PythonOnly({1: "int key"}, "{}"), PythonOnly(complex(1, 2), '"1+2j"'),
])
HOSTILE = SURROGATE_TEXT | ODD_TEXT | NUMBERS | CONTAINERS | WRONG_TYPES | PYTHON_ONLY
ODD_NAMES = st.sampled_from(["\ud800", "", " ", "123", "a b", "a>b", "x" * 300, "patient_id ", "__proto__"])


def valid(schema: dict, name: str, case_id: str):
    """A strategy for values the schema accepts (the case's own id for id parameters)."""
    if name == "patient_id":
        return st.sampled_from([case_id, f" {case_id.lower()} "])
    if name == "passage_id":
        return st.sampled_from(PASSAGE_IDS) | st.text(max_size=20)
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    low, high = schema.get("minimum"), schema.get("maximum")
    if kind == "integer":
        return st.integers(int(math.ceil(low)) if low is not None else -1000,
                           int(math.floor(high)) if high is not None else 1000)
    if kind == "number":
        return st.floats(low if low is not None else -1000, high if high is not None else 1000)
    if kind == "boolean":
        return st.booleans()
    if kind == "array":
        return st.lists(valid(schema.get("items", {}), "", case_id), min_size=schema.get("minItems", 0),
                        max_size=4)
    return st.text(max_size=min(schema.get("maxLength", 60), 60))


@st.composite
def hostile_arguments(draw, tool, case_id: str) -> dict:
    properties = tool.spec.parameters.get("properties", {})
    arguments = {name: draw(valid(schema, name, case_id)) for name, schema in properties.items()}
    for name in list(arguments):
        mutation = draw(st.sampled_from(["keep", "keep", "keep", "hostile", "drop"]))
        if mutation == "hostile":
            arguments[name] = draw(HOSTILE)
        elif mutation == "drop":
            del arguments[name]
    if draw(st.integers(0, 4)) == 0:
        arguments[draw(ODD_NAMES)] = draw(HOSTILE)
    return arguments


# -- the call formats ------------------------------------------------------------------------------------

def dump(value, ascii_only: bool = True) -> str:
    """JSON text for a value holding Raw tokens; ascii_only=False writes lone surrogates as raw characters."""
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, PythonOnly):
        return value.text
    if isinstance(value, dict):
        return "{" + ", ".join(f"{dump(str(k), ascii_only)}: {dump(v, ascii_only)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(dump(v, ascii_only) for v in value) + "]"
    return json.dumps(value, ensure_ascii=ascii_only)


def native(value):
    """The Python value a caller-built message would carry."""
    if isinstance(value, (Raw, PythonOnly)):
        return value.value
    if isinstance(value, dict):
        return {k: native(v) for k, v in value.items()}
    if isinstance(value, list):
        return [native(v) for v in value]
    return value


def xml_value(value) -> str:
    return value if isinstance(value, str) else dump(value)


def render(fmt: str, name: str, arguments: dict):
    body = dump(arguments)
    if fmt == "hermes":
        return f'<tool_call>{{"name": "{name}", "arguments": {body}}}</tool_call>'
    if fmt == "hermes_raw_text":  # lone surrogates as characters of the action, not as JSON escapes
        return f'<tool_call>{{"name": "{name}", "arguments": {dump(arguments, ascii_only=False)}}}</tool_call>'
    if fmt == "hermes_string_arguments":
        return f'<tool_call>{{"name": "{name}", "parameters": {json.dumps(body)}}}</tool_call>'
    if fmt == "qwen_xml":
        params = "".join(f"<parameter={key}>\n{xml_value(value)}\n</parameter>\n" for key, value in arguments.items())
        return f"<tool_call>\n<function={name}>\n{params}</function>\n</tool_call>"
    if fmt == "json":
        return f'{{"name": "{name}", "arguments": {body}}}'
    if fmt == "json_fenced":
        return f'Calling it.\n```json\n{{"name": "{name}", "arguments": {body}}}\n```'
    if fmt == "openai":
        return {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": name, "arguments": body}}]}
    if fmt == "openai_objects":
        return {"role": "assistant", "content": [{"type": "text", "text": "\ud800 checking"}], "tool_calls": [
            {"id": Text("call_\ud800"), "type": "function",
             "function": {"name": name, "arguments": native(arguments)}}]}
    assert fmt == "flat_object"
    return {"name": name, "arguments": native(arguments)}


FORMATS = ["hermes", "hermes_raw_text", "hermes_string_arguments", "qwen_xml", "json", "json_fenced", "openai",
           "openai_objects", "flat_object"]


# -- what must hold after every step ---------------------------------------------------------------------

def assert_plain(value, path="arguments") -> None:
    """What the parser promises handlers: plain JSON types, valid text, finite bounded numbers."""
    if value is None or type(value) is bool:
        return
    if type(value) is str:
        value.encode("utf-8")
    elif type(value) in (int, float):
        assert math.isfinite(value) and abs(value) <= MAX_ARG_NUMBER, path
    elif type(value) is list:
        for i, item in enumerate(value):
            assert_plain(item, f"{path}[{i}]")
    else:
        assert type(value) is dict, f"{path} is a {type(value).__name__}"
        for key, item in value.items():
            assert type(key) is str
            key.encode("utf-8")
            assert_plain(item, f"{path}.{key}")


def check_step(env, action, calls_before: int):
    out = env.step(action)
    assert type(out) is tuple and len(out) == 5
    observation, reward, terminated, truncated, info = out
    assert type(observation) is str and env.observation_space.contains(observation)
    observation.encode("utf-8")
    assert isinstance(reward, float) and math.isfinite(reward)
    assert INFO_KEYS <= set(info)
    results = info["tool_results"]
    assert results and all({"name", "call_id", "ok"} <= set(r) for r in results)
    json.dumps(results, ensure_ascii=False, default=str).encode("utf-8")
    json.dumps(env.transcript[-2:], ensure_ascii=False).encode("utf-8")
    submit = env.domain.spec.submit_tool
    assert terminated == any(r["ok"] and r["name"] == submit for r in results), observation[:300]
    assert truncated == (not terminated and env.episode.turns >= env.max_turns)
    if terminated or truncated:
        assert END_KEYS <= set(info)
        assert all(math.isfinite(v) for v in info["reward_components"].values())
        json.dumps(info["answer"], ensure_ascii=False).encode("utf-8")
    for record in env.episode.calls[calls_before:]:
        assert_plain(record.arguments)
        if record.ok:
            env.domain.tools[record.name].validate(record.arguments)
    return out


def fresh(env) -> str:
    env.reset(seed=0)
    return env.episode.case["id"]


# -- the properties --------------------------------------------------------------------------------------

@pytest.mark.parametrize("domain", DOMAINS)
@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(data=st.data())
def test_every_tool_survives_hostile_arguments_in_every_format(envs, kb_cache, domain, data):
    env = envs[domain]
    case_id = fresh(env)
    for tool in env.domain.tools.values():
        arguments = data.draw(hostile_arguments(tool, case_id), label=tool.name)
        fmt = data.draw(st.sampled_from(FORMATS), label="format")
        note(f"{tool.name} in {fmt}")
        check_step(env, render(fmt, tool.name, arguments), len(env.episode.calls))
        if env.episode.done:
            case_id = fresh(env)


@st.composite
def hostile_turns(draw, env, case_id: str) -> str:
    """Several hostile calls in text formats, one assistant turn."""
    tools = list(env.domain.tools.values())
    pieces = []
    for tool in draw(st.lists(st.sampled_from(tools), min_size=1, max_size=4)):
        fmt = draw(st.sampled_from(["hermes", "hermes_raw_text", "hermes_string_arguments", "qwen_xml", "json_fenced"]))
        pieces.append(render(fmt, tool.name, draw(hostile_arguments(tool, case_id))))
    return "\nThen:\n".join(pieces)


@pytest.mark.parametrize("domain", DOMAINS)
@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(data=st.data())
def test_turns_of_several_hostile_calls_until_the_turn_limit(shipped_build, kb_cache, domain, data):
    env = make_env(shipped_build, domain, max_turns=3)
    case_id = fresh(env)
    for _ in range(env.max_turns):
        check_step(env, data.draw(hostile_turns(env, case_id), label="turn"), len(env.episode.calls))
        if env.episode.done or env.episode.turns >= env.max_turns:
            break


# -- the cases named in the issue, as plain examples ------------------------------------------------------

READ_SURROGATE = '<tool_call>{"name": "read_passage", "arguments": {"passage_id": "\\ud800"}}</tool_call>'


@pytest.mark.parametrize("action", [
    READ_SURROGATE,
    '<tool_call>{"name": "read_passage", "arguments": {"passage_id": "\ud800"}}</tool_call>',
    '<tool_call><function=read_passage><parameter=passage_id>"\\ud800"</parameter></function></tool_call>',
    {"role": "assistant",
     "tool_calls": [{"function": {"name": "read_passage", "arguments": {"passage_id": "\ud800"}}}]},
    '<tool_call>{"name": "search_knowledge", "arguments": {"query": "sepsis", "source": "\\ud800"}}</tool_call>',
    '<tool_call>{"name": "search_knowledge", "arguments": {"query": "sepsis", "k": 1e400}}</tool_call>',
    {"name": "search_knowledge", "arguments": {"query": "sepsis", "k": float("nan")}},
])
def test_kb_tools_with_hostile_text_give_error_observations(shipped_build, kb_cache, action):
    env = make_env(shipped_build, "clinical_diagnosis")
    fresh(env)
    observation, reward, terminated, truncated, info = check_step(env, action, 0)
    assert observation.startswith("error") and "damaged" not in observation and not terminated
    assert env.episode.valid_calls == 0
    follow_up = '<tool_call>{"name": "read_passage", "arguments": {"passage_id": "drugs:warfarin"}}</tool_call>'
    observation = check_step(env, follow_up, len(env.episode.calls))[0]  # the episode goes on
    if kb_cache == "knowledge base":
        assert observation.startswith("read_passage: ") and "vitamin K antagonist" in observation


def test_raw_surrogates_in_the_action_are_replaced_where_they_are_echoed(shipped_build):
    env = make_env(shipped_build, "triage")
    case_id = fresh(env)
    action = '<tool_call>{"name": "order_ecg", "arguments": {"patient_id": "%s", "\ud800": 1}}</tool_call>' % case_id
    observation = check_step(env, action, 0)[0]
    assert "must not contain {'\ufffd'} properties" in observation


def test_text_a_tool_returns_is_made_valid_before_the_model_sees_it(shipped_build, monkeypatch):
    # No shipped tool returns a lone surrogate (the parser and the knowledge-base build refuse them), so a
    # stand-in handler does: the observation, the results and the transcript still carry only valid text.
    monkeypatch.setitem(executor._HANDLERS, "lookup", lambda *args: ({"note": "bad \ud800 text"}, None))
    env = make_env(shipped_build, "triage")
    case_id = fresh(env)
    observation = check_step(env, hermes_call("get_vital_signs", {"patient_id": case_id}), 0)[0]
    assert observation == 'get_vital_signs: {"note": "bad \ufffd text"}'

    def failing(*args):
        raise executor.ToolError("cannot read \udfff")

    monkeypatch.setitem(executor._HANDLERS, "lookup", failing)
    observation, _, _, _, info = check_step(env, hermes_call("get_vital_signs", {"patient_id": case_id}), 1)
    assert observation == "error (get_vital_signs): cannot read \ufffd"
    assert info["tool_results"][0]["error"] == "cannot read \ufffd"


def hermes_call(name: str, arguments: dict) -> str:
    return "<tool_call>" + json.dumps({"name": name, "arguments": arguments}) + "</tool_call>"
