"""The tool-call parser: every accepted format, every error message, and no input that raises or hangs."""
import json
import re
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medgym.runtime.toolcalls import (
    MAX_ACTION_CHARS,
    MAX_ARG_NUMBER,
    MAX_CALLS,
    CallError,
    ParsedTurn,
    ToolCall,
    parse_action,
)

FORMATS = {"openai", "hermes", "qwen_xml", "json", "json_fenced"}
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")


def only_call(action) -> ToolCall:
    turn = parse_action(action)
    assert turn.errors == ()
    assert len(turn.calls) == 1
    return turn.calls[0]


def messages(action) -> list[str]:
    return [error.message for error in parse_action(action).errors]


def call(name, fmt, call_id=None, **arguments) -> ToolCall:
    return ToolCall(name, arguments, call_id, fmt)


# -- Hermes / Qwen2.5 ----------------------------------------------------------------------------------------

def test_hermes_call():
    turn = parse_action('<tool_call>\n{"name": "get_vitals", "arguments": {"patient_id": "P1"}}\n</tool_call>')
    assert turn == ParsedTurn("", (call("get_vitals", "hermes", patient_id="P1"),), ())


def test_hermes_calls_with_prose_keep_order():
    turn = parse_action('I will look first.\n<tool_call>{"name": "a", "arguments": {}}</tool_call>\n'
                        'Then the labs.\n<tool_call>{"name": "b", "arguments": {"x": [1, 2]}}</tool_call>\nDone.')
    assert [c.name for c in turn.calls] == ["a", "b"]
    assert turn.calls[1].arguments == {"x": [1, 2]}
    assert turn.content == "I will look first.\nThen the labs.\nDone."
    assert turn.errors == ()


def test_hermes_parameters_synonym_and_string_arguments():
    assert only_call('<tool_call>{"name": "a", "parameters": {"k": 1}}</tool_call>').arguments == {"k": 1}
    assert only_call('<tool_call>{"name": "a", "arguments": "{\\"k\\": 1}"}</tool_call>').arguments == {"k": 1}
    double = json.dumps({"name": "a", "arguments": json.dumps(json.dumps({"k": 1}))})
    assert only_call(f"<tool_call>{double}</tool_call>").arguments == {"k": 1}


def test_hermes_missing_arguments_mean_none():
    assert only_call('<tool_call>{"name": "list_patients"}</tool_call>').arguments == {}
    assert only_call('<tool_call>{"name": "a", "arguments": null}</tool_call>').arguments == {}
    assert only_call('<tool_call>{"name": "a", "arguments": ""}</tool_call>').arguments == {}


def test_hermes_missing_closing_tag_at_end_of_turn():
    assert only_call('<tool_call>{"name": "a", "arguments": {"k": 1}}') == call("a", "hermes", k=1)
    turn = parse_action('<tool_call>{"name": "a", "arguments": {}}\nwaiting for the result')
    assert turn.calls == (call("a", "hermes"),) and turn.content == "waiting for the result"
    turn = parse_action('<tool_call>{"name": "a", "arguments": {}}\n<tool_call>{"name": "b"}</tool_call>')
    assert [c.name for c in turn.calls] == ["a", "b"] and turn.errors == ()


def test_hermes_list_and_fenced_bodies():
    turn = parse_action('<tool_call>[{"name": "a", "arguments": {}}, {"name": "b", "arguments": {}}]</tool_call>')
    assert [c.name for c in turn.calls] == ["a", "b"]
    fenced = '<tool_call>\n```json\n{"name": "a", "arguments": {"k": 2}}\n```\n</tool_call>'
    assert only_call(fenced).arguments == {"k": 2}


def test_hermes_openai_shaped_body_keeps_id():
    body = '{"id": "c7", "type": "function", "function": {"name": "a", "arguments": "{}"}}'
    assert only_call(f"<tool_call>{body}</tool_call>") == call("a", "hermes", "c7")


def test_stray_closing_tag_is_dropped():
    turn = parse_action('{"name": "a", "arguments": {}}</tool_call>')
    assert turn == ParsedTurn("", (call("a", "json"),), ())
    assert parse_action("done </tool_call> here") == ParsedTurn("done\nhere", (), ())


# -- Qwen3.5 / qwen3_coder XML -------------------------------------------------------------------------------

QWEN = """<tool_call>
<function=order_lab>
<parameter=patient_id>
P001
</parameter>
<parameter=tests>
["BUN", "Cr"]
</parameter>
<parameter=urgent>
true
</parameter>
<parameter=count>
3
</parameter>
<parameter=note>
first line
second line
</parameter>
<parameter=limits>
{"max": 2.5, "unit": null}
</parameter>
<parameter=code>
"007"
</parameter>
<parameter=raw>
007
</parameter>
</function>
</tool_call>"""


def test_qwen_xml_values_are_json_decoded_when_valid():
    assert only_call(QWEN) == call("order_lab", "qwen_xml", patient_id="P001", tests=["BUN", "Cr"], urgent=True,
                                   count=3, note="first line\nsecond line", limits={"max": 2.5, "unit": None},
                                   code="007", raw="007")


def test_qwen_xml_tolerates_missing_closing_tags():
    text = "<tool_call><function=f><parameter=a>1<parameter=b>x</function></tool_call>"
    assert only_call(text) == call("f", "qwen_xml", a=1, b="x")
    assert only_call("<tool_call><function=f><parameter=a>1</parameter></tool_call>") == call("f", "qwen_xml", a=1)
    assert only_call("<tool_call><function=f><parameter=a>1</parameter></function>") == call("f", "qwen_xml", a=1)


def test_qwen_xml_without_wrapper_and_without_parameters():
    assert only_call("<function=f>\n<parameter=a>\nhi\n</parameter>\n</function>") == call("f", "qwen_xml", a="hi")
    assert only_call("<tool_call><function=list_beds></function></tool_call>") == call("list_beds", "qwen_xml")
    assert only_call('<function=f>{"a": 1}</function>') == call("f", "qwen_xml", a=1)


def test_qwen_xml_several_functions_keep_prose():
    turn = parse_action("Checking.\n<tool_call>\n<function=a>\n</function>\n</tool_call>\n"
                        "<tool_call>\n<function=b>\n<parameter=k>\nv\n</parameter>\n</function>\n</tool_call>\nOk.")
    assert turn == ParsedTurn("Checking.\nOk.", (call("a", "qwen_xml"), call("b", "qwen_xml", k="v")), ())


# -- bare and fenced JSON ------------------------------------------------------------------------------------

def test_bare_json_object_list_and_chain():
    assert only_call('  {"name": "a", "arguments": {"k": 1}}  ') == call("a", "json", k=1)
    turn = parse_action('[{"name": "a", "arguments": {}}, {"name": "b", "parameters": {"q": "z"}}]')
    assert turn.calls == (call("a", "json"), call("b", "json", q="z"))
    turn = parse_action('{"name": "a", "arguments": {}}; {"name": "b", "arguments": {}}\nThat is all.')
    assert [c.name for c in turn.calls] == ["a", "b"] and turn.content == "That is all."


def test_json_that_is_not_a_call_is_prose():
    for text in ['{"answer": "B", "confidence": 0.9}', '{"name": "John", "age": 40}', "[1, 2, 3]", "{not json"]:
        assert parse_action(text) == ParsedTurn(text, (), ())


def test_fenced_json():
    turn = parse_action('I will call it:\n```json\n{"name": "a", "arguments": {"k": 1}}\n```\nand wait.')
    assert turn == ParsedTurn("I will call it:\nand wait.", (call("a", "json_fenced", k=1),), ())
    assert only_call('```\n[{"name": "a", "arguments": {}}]\n```').fmt == "json_fenced"
    assert only_call('```{"name": "a", "arguments": {}}```').fmt == "json_fenced"


def test_code_blocks_without_calls_stay_in_the_prose():
    text = 'Example:\n```python\nprint({"a": 1})\n```\n```json\n{"answer": "B"}\n```'
    assert parse_action(text) == ParsedTurn(text, (), ())


def test_tool_call_inside_a_fence():
    turn = parse_action('```xml\n<tool_call>{"name": "a", "arguments": {}}</tool_call>\n```\nafter')
    assert turn == ParsedTurn("after", (call("a", "hermes"),), ())


def test_mixed_formats_in_textual_order():
    text = ('{"name": "first", "arguments": {}}\nthen\n'
            '<tool_call>{"name": "second", "arguments": {}}</tool_call>\n'
            '```json\n{"name": "third", "arguments": {}}\n```\n'
            '<tool_call><function=fourth></function></tool_call>\n'
            '<function=fifth></function> end')
    turn = parse_action(text)
    assert [(c.name, c.fmt) for c in turn.calls] == [("first", "json"), ("second", "hermes"), ("third", "json_fenced"),
                                                     ("fourth", "qwen_xml"), ("fifth", "qwen_xml")]
    assert turn.content == "then\nend" and turn.errors == ()


def test_plain_text_is_neither_call_nor_error():
    assert parse_action("  The answer is B.  ") == ParsedTurn("The answer is B.", (), ())
    assert parse_action("") == ParsedTurn("", (), ())


def test_content_is_capped():
    turn = parse_action("x" * 100_000)
    assert turn.errors == () and 0 < len(turn.content) <= 20_000


# -- OpenAI messages -----------------------------------------------------------------------------------------

def tool_call(name="get_vitals", arguments='{"patient_id": "P1"}', call_id="call_1"):
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def test_openai_message():
    message = {"role": "assistant", "content": None, "tool_calls": [tool_call(), tool_call("b", {"k": [1]}, "c2")]}
    assert parse_action(message) == ParsedTurn(
        "", (call("get_vitals", "openai", "call_1", patient_id="P1"), call("b", "openai", "c2", k=[1])), ())


def test_openai_message_content_is_prose_when_it_has_tool_calls():
    message = {"role": "assistant", "content": "  Checking.  ", "tool_calls": [tool_call(arguments="")]}
    assert parse_action(message) == ParsedTurn("Checking.", (call("get_vitals", "openai", "call_1"),), ())


def test_openai_message_without_tool_calls_parses_its_content():
    for empty in (None, []):
        message = {"role": "assistant", "content": 'ok <tool_call>{"name": "a"}</tool_call>', "tool_calls": empty}
        assert parse_action(message) == ParsedTurn("ok", (call("a", "hermes"),), ())
    parts = {"role": "assistant", "content": [{"type": "text", "text": "part one"}, {"type": "image_url"},
                                              {"type": "text", "text": "part two"}]}
    assert parse_action(parts) == ParsedTurn("part one\npart two", (), ())


def test_openai_other_shapes():
    expected = (call("get_vitals", "openai", "call_1", patient_id="P1"),)
    assert parse_action([tool_call()]).calls == expected
    assert parse_action((tool_call(),)).calls == expected
    assert parse_action(tool_call()).calls == expected
    assert only_call({"name": "a", "arguments": {"k": 1}}) == call("a", "openai", k=1)
    legacy = {"role": "assistant", "content": None, "function_call": {"name": "a", "arguments": "{}"}}
    assert only_call(legacy) == call("a", "openai")
    assert parse_action([]) == ParsedTurn("", (), ())


def test_openai_arguments_are_copied():
    arguments = {"k": 1}
    parsed = only_call({"name": "a", "arguments": arguments})
    arguments["k"] = 2
    assert parsed.arguments == {"k": 1}


def test_openai_ignores_a_bad_id():
    assert only_call(tool_call(call_id=5)).call_id is None


# -- errors --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, message", [
    ('<tool_call>{"name": "a", "arguments": {}</tool_call>',
     "tool call 1: invalid JSON in <tool_call>: Expecting ',' delimiter at line 1 column 30"),
    ('<tool_call>{"name": "a", "arguments": {"k": ',
     "tool call 1: invalid JSON in unterminated <tool_call>: Expecting value at line 1 column 33"),
    ("<tool_call>\n", "tool call 1: unterminated <tool_call> (no JSON and no </tool_call>)"),
    ("<tool_call> </tool_call>", "tool call 1: empty <tool_call>"),
    ('<tool_call>{"arguments": {}}</tool_call>', "tool call 1: missing tool name"),
    ('<tool_call>{"name": 7}</tool_call>', "tool call 1: tool name must be a string, got number"),
    ('<tool_call>{"name": " "}</tool_call>', "tool call 1: empty tool name"),
    ('<tool_call>{"name": "get vitals"}</tool_call>',
     "tool call 1: invalid tool name 'get vitals' (use letters, digits, '_', '.' and '-', not starting with a digit)"),
    ('<tool_call>{"name": "9lives"}</tool_call>',
     "tool call 1: invalid tool name '9lives' (use letters, digits, '_', '.' and '-', not starting with a digit)"),
    (f'<tool_call>{{"name": "{"a" * 129}"}}</tool_call>', "tool call 1: tool name is longer than 128 characters"),
    ('<tool_call>{"name": "a", "arguments": [1]}</tool_call>',
     "tool call 1: arguments are not a JSON object (got array)"),
    ('<tool_call>{"name": "a", "arguments": "x=1"}</tool_call>',
     "tool call 1: arguments are not valid JSON: Expecting value at line 1 column 1"),
    ('<tool_call>{"name": "a", "arguments": "\\"text\\""}</tool_call>',
     "tool call 1: arguments are not a JSON object (got string)"),
    ('<tool_call>{"name": "a", "arguments": NaN}</tool_call>',
     "tool call 1: invalid JSON in <tool_call>: NaN is not valid JSON"),
    ('<tool_call>{"name": "a"}}</tool_call>', "tool call 1: unexpected text after the JSON in <tool_call>: '}'"),
    ("<tool_call>42</tool_call>", 'tool call 1: expected an object with "name" and "arguments", got number'),
    ("<tool_call>[]</tool_call>", "tool call 1: empty list of tool calls"),
    ('<tool_call>{"function": "a"}</tool_call>',
     'tool call 1: "function" must be an object with "name" and "arguments", got string'),
    ('{"function": {"name": "a", "arguments": 3}}', "tool call 1: arguments are not a JSON object (got number)"),
    ('{"name": "a", "arguments": {"k": 1}', "tool call 1: invalid JSON: Expecting ',' delimiter at line 1 column 36"),
    ("<function=f><parameter=a>1", "tool call 1: unterminated <function=...> (no </function>)"),
    ("<function=f" + " " * 200, "tool call 1: unterminated <function= tag"),
    ("<function=f><parameter=a</function>", "tool call 1: unterminated <parameter= tag"),
    ("<function=f><parameter= >1</parameter></function>", "tool call 1: empty parameter name in <parameter=>"),
    ("<function=f>some words</function>",
     "tool call 1: the function body is neither <parameter=...> tags nor a JSON object"),
    ("<function=bad name></function>",
     "tool call 1: invalid tool name 'bad name' (use letters, digits, '_', '.' and '-', not starting with a digit)"),
])
def test_error_messages(text, message):
    turn = parse_action(text)
    assert turn.calls == ()
    assert [e.message for e in turn.errors] == [message]
    assert turn.errors[0].snippet and len(turn.errors[0].snippet) <= 200


def test_errors_name_the_format_and_the_call_number():
    turn = parse_action('<tool_call>{"name": "ok"}</tool_call><tool_call>{"name": 1}</tool_call>'
                        "<function=f>x</function>")
    assert [c.name for c in turn.calls] == ["ok"]
    assert [(e.message.split(":")[0], e.fmt) for e in turn.errors] == [("tool call 2", "hermes"),
                                                                       ("tool call 3", "qwen_xml")]


def test_a_bad_call_does_not_stop_the_next():
    turn = parse_action('<tool_call>{"name": </tool_call>\n<tool_call>{"name": "b"}</tool_call>')
    assert [c.name for c in turn.calls] == ["b"] and len(turn.errors) == 1


@pytest.mark.parametrize("action, message", [
    ({"weird": 1}, 'unrecognised message: expected an assistant message with "content" or "tool_calls", or a '
                   'tool call object with "name" or "function"'),
    ({"role": "assistant", "content": None, "tool_calls": "x"}, '"tool_calls" must be a list, got string'),
    ({"role": "assistant", "content": 5}, "message content must be a string, a list of text parts or null"),
    ({"tool_calls": [{"id": "1", "function": "get_vitals"}]},
     'tool call 1: "function" must be an object with "name" and "arguments", got string'),
    ({"tool_calls": [{"function": {"name": "a", "arguments": {1: "x"}}}]},
     "tool call 1: argument names must be strings"),
    ({"tool_calls": [{"function": {"name": "a", "arguments": "{bad"}}]},
     "tool call 1: arguments are not valid JSON: Expecting property name enclosed in double quotes at line 1 column 2"),
    ({"tool_calls": [{"function": {"arguments": "{}"}}]}, "tool call 1: missing tool name"),
    ([1, "x"], 'tool call 1: expected an object with "name" and "arguments", got number'),
    (None, "unsupported action type NoneType: expected a string, an assistant message (a Mapping) or a list of "
           "tool calls"),
    (3.5, "unsupported action type float: expected a string, an assistant message (a Mapping) or a list of "
          "tool calls"),
])
def test_wrong_shapes(action, message):
    turn = parse_action(action)
    assert turn.calls == ()
    assert turn.errors[0].message == message
    assert turn.errors[0].fmt == ("unknown" if action is None or action == 3.5 else "openai")


def test_bytes_are_decoded_with_replacement():
    turn = parse_action(b'\xff<tool_call>{"name": "a"}</tool_call>')
    assert turn == ParsedTurn("\ufffd", (call("a", "hermes"),), ())
    assert parse_action(bytearray(b"hi")) == ParsedTurn("hi", (), ())


def test_lone_surrogates_are_replaced():
    turn = parse_action('\ud800 <tool_call>{"name": "a"}</tool_call>')
    assert turn.content == "\ufffd" and turn.calls == (call("a", "hermes"),)
    turn.content.encode("utf-8")


def test_long_input_is_truncated_with_an_error():
    turn = parse_action('<tool_call>{"name": "a"}</tool_call>' + " " * MAX_ACTION_CHARS)
    assert turn.calls == (call("a", "hermes"),)
    assert [(e.message, e.fmt) for e in turn.errors] == [
        (f"action is longer than {MAX_ACTION_CHARS} characters; only the first {MAX_ACTION_CHARS} were parsed",
         "unknown")]


def test_too_many_calls():
    turn = parse_action('<tool_call>{"name": "a"}</tool_call>' * (MAX_CALLS + 5))
    assert len(turn.calls) == MAX_CALLS
    assert [e.message for e in turn.errors] == [f"more than {MAX_CALLS} tool calls in one turn; the rest were ignored"]


def test_too_many_errors():
    turn = parse_action("<tool_call>{}</tool_call>" * 100)
    assert len(turn.errors) == 33
    assert turn.errors[-1].message == ("more than 32 malformed tool calls in one turn; the rest of the turn was "
                                       "ignored")


def test_deep_arguments_are_refused():
    deep = '{"a": ' * 40 + "1" + "}" * 40
    assert messages(f'<tool_call>{{"name": "f", "arguments": {deep}}}</tool_call>') == [
        "tool call 1: arguments nested more than 32 levels deep"]
    assert messages({"name": "f", "arguments": deep}) == ["tool call 1: arguments nested more than 32 levels deep"]
    assert only_call(f"<function=f><parameter=k>{deep}</parameter></function>").arguments == {"k": deep}


def test_cyclic_and_hostile_objects_are_reported():
    cyclic: dict = {"k": 1}
    cyclic["self"] = cyclic
    assert messages({"name": "f", "arguments": cyclic}) == [
        "tool call 1: nested more than 32 levels deep, or too large"]

    class Hostile(dict):
        def get(self, key, default=None):
            raise KeyError(key)

    assert messages(Hostile(role="assistant")) == ["could not read the action: KeyError: 'content'"]


# -- argument values: plain, finite, bounded JSON ----------------------------------------------------------

SURROGATE = ("passage_id is not valid Unicode text (it holds a lone surrogate such as \\ud800; write the characters "
             "themselves)")
RANGE = f"is out of range: numbers must be finite and within +-{2**53}"


@pytest.mark.parametrize("arguments, problem", [
    ('{"passage_id": "\\ud800"}', SURROGATE),
    ('{"passage_id": "ok \\udfff"}', SURROGATE),
    ('{"passage_id": ["a", {"b": "\\udc80"}]}', "passage_id[1].b is not valid Unicode text"),
    ('{"\\ud800": 1}', "a name in arguments is not valid Unicode text"),
    ('{"bun": 1e400}', f"bun {RANGE}"),
    ('{"bun": -1e400}', f"bun {RANGE}"),
    ('{"bun": 9007199254740993}', f"bun {RANGE}"),
    ('{"bun": ' + "1" * 5000 + "}", f"bun {RANGE}"),  # int() would refuse 5000 digits with a confusing message
    ('{"x": {"y": [' + "9" * 30 + "]}}", f"x.y[0] {RANGE}"),
    ('{"": 1e999}', f'"" {RANGE}'),
])
def test_unclean_argument_values_are_errors_naming_the_value(arguments, problem):
    expected = f"tool call 1: read_passage: invalid arguments: {problem}"
    for action in (f'<tool_call>{{"name": "read_passage", "arguments": {arguments}}}</tool_call>',
                   f'{{"name": "read_passage", "arguments": {arguments}}}',
                   {"role": "assistant",
                    "tool_calls": [{"function": {"name": "read_passage", "arguments": arguments}}]}):
        turn = parse_action(action)
        assert turn.calls == () and len(turn.errors) == 1 and turn.errors[0].message.startswith(expected), turn


def test_valid_surrogate_pairs_and_bounded_numbers_pass():
    text = '{"name": "f", "arguments": {"t": "\\ud83e\\ude7a", "n": 9007199254740992, "x": -1.5e15}}'
    arguments = only_call(text).arguments
    assert arguments == {"t": "\U0001fa7a", "n": 2**53, "x": -1.5e15}


class Text(str):
    def strip(self, *chars):
        raise RuntimeError("a handler must never call this")


class Number(float):
    def __gt__(self, other):
        raise RuntimeError("nor this")


@pytest.mark.parametrize("value, problem", [
    (float("nan"), f"v {RANGE}"), (float("inf"), f"v {RANGE}"), (-(2**60), f"v {RANGE}"),
    pytest.param(10**5000, f"v {RANGE}", id="huge-int"),
    (b"bytes", "v is a bytes value, which JSON cannot hold"), ({1, 2}, "v is a set value, which JSON cannot hold"),
    (object(), "v is a object value, which JSON cannot hold"), ("\ud800", "v is not valid Unicode text"),
    ({"a": [float("nan")]}, f"v.a[0] {RANGE}"), ({1: 2}, "argument names must be strings"),
    ("x" * (MAX_ACTION_CHARS + 1), f"arguments hold more than {MAX_ACTION_CHARS} characters of text"),
])
def test_caller_built_arguments_are_checked(value, problem):
    [message] = messages({"name": "f", "arguments": {"v": value}})
    assert message.startswith(f"tool call 1: f: invalid arguments: {problem}")


def test_caller_built_arguments_become_plain_copies():
    arguments = only_call({"name": Text("f"), "arguments": {Text("k"): [Text("v"), Number(2.5), (1, True)]},
                           "id": Text("call_1")})
    assert arguments == call("f", "openai", "call_1", k=["v", 2.5, [1, True]])
    values = [arguments.name, arguments.call_id, *arguments.arguments, *arguments.arguments["k"]]
    assert [type(v) for v in values] == [str, str, str, str, float, list]


def test_a_surrogate_in_an_id_is_replaced():
    assert only_call('{"name": "f", "id": "c\\ud800", "arguments": {}}').call_id == "c\ufffd"


def test_qwen_xml_values_that_are_not_clean_json_stay_text():
    text = ("<function=f><parameter=a>1e400</parameter><parameter=b>\"\\ud800\"</parameter>"
            "<parameter=c>" + "9" * 40 + "</parameter><parameter=d>2.5</parameter></function>")
    assert only_call(text).arguments == {"a": "1e400", "b": '"\\ud800"', "c": "9" * 40, "d": 2.5}


# -- properties: nothing raises, nothing hangs, results keep their contract ----------------------------------

PIECES = ["<tool_call>", "</tool_call>", "<function=", "</function>", "<parameter=", "</parameter>", "```", "```json\n",
          "{", "}", "[", "]", '"', '"name"', '"arguments"', '"parameters"', '"function"', ":", ",", ">", "<", "\n",
          " ", "get_vitals", "1", "null", "true", "\\", "\\u", "\ud800", "\x00", "\ufffd", "é", "9" * 30]

GUARD = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def check(action) -> ParsedTurn:
    start = time.perf_counter()
    turn = parse_action(action)
    assert time.perf_counter() - start < 1.0  # a hang guard, not a benchmark
    assert type(turn) is ParsedTurn
    assert type(turn.content) is str and len(turn.content) <= 20_000
    turn.content.encode("utf-8")
    assert type(turn.calls) is tuple and len(turn.calls) <= MAX_CALLS
    assert type(turn.errors) is tuple
    for item in turn.calls:
        assert type(item) is ToolCall and item.fmt in FORMATS
        assert type(item.name) is str and len(item.name) <= 128 and NAME.fullmatch(item.name)
        assert type(item.arguments) is dict and all(type(key) is str for key in item.arguments)
        assert item.call_id is None or type(item.call_id) is str
    for error in turn.errors:
        assert type(error) is CallError and error.fmt in FORMATS | {"unknown"}
        assert type(error.message) is str and error.message
        error.message.encode("utf-8")
        assert type(error.snippet) is str and len(error.snippet) <= 200
    return turn


@GUARD
@given(st.text())
def test_random_text(text):
    check(text)


@GUARD
@given(st.lists(st.one_of(st.sampled_from(PIECES), st.text(max_size=8)), max_size=60).map("".join))
def test_random_markup_fragments(text):
    check(text)


@GUARD
@given(st.lists(st.tuples(st.sampled_from(PIECES), st.integers(1, 40_000)), min_size=1, max_size=3))
def test_repeated_pieces(parts):
    check("".join(piece * count for piece, count in parts))


@GUARD
@given(st.binary(max_size=2000))
def test_binary(data):
    check(data)
    check(data.decode("latin-1"))


# Numbers a tool call may carry: finite and within +-MAX_ARG_NUMBER (larger ones are errors, tested above).
NUMBERS = st.integers(-MAX_ARG_NUMBER, MAX_ARG_NUMBER) | st.floats(-MAX_ARG_NUMBER, MAX_ARG_NUMBER)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | NUMBERS | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12)
KEYS = st.sampled_from(["name", "arguments", "parameters", "function", "tool_calls", "content", "role", "id",
                        "type", "function_call"])
OBJECTS = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12) | st.sampled_from(["get_vitals", "{}", "[1]"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS | st.text(max_size=4), inner, max_size=5),
    max_leaves=16)


@GUARD
@given(JSON_VALUES, st.sampled_from(["%s", "<tool_call>%s</tool_call>", "<tool_call>%s", "```json\n%s\n```",
                                     "<function=f><parameter=k>%s</parameter></function>",
                                     '{"name": "f", "arguments": %s}', '<tool_call>{"name": "f", "arguments": %s}',
                                     '[{"name": "f", "parameters": %s}, %s]']))
def test_random_json_in_markup(value, template):
    check(template.replace("%s", json.dumps(value)))


@GUARD
@given(OBJECTS)
def test_random_objects(obj):
    check(obj)
    check({"role": "assistant", "content": None, "tool_calls": [obj]})
    check([obj, obj])


def test_adversarial_inputs():
    for action in ["[" * 100_000, '{"a":' * 100_000, "{" * 300_000, "<tool_call>" * 50_000, "</tool_call>" * 50_000,
                   "```" * 100_000, "```{" * 60_000, "<function=a>" * 30_000, "<function=a>" + "<parameter=b>" * 30_000,
                   '<tool_call>{"name": "' + "x<tool_call>" * 30_000, "\x00" * 1_000_000, "\ud800" * 100_000,
                   '<tool_call>{"name": "a", "arguments": {"n": ' + "9" * 100_000 + "}}</tool_call>",
                   "<tool_call>[" + '{"name": "a"},' * 30_000 + "1]</tool_call>", b"\xff" * 3_000_000,
                   [{"name": "a"}] * 10_000, {"tool_calls": [{"function": {"name": "a", "arguments": "[" * 50_000}}]}]:
        check(action)


# -- round trips: what a model writes in each format comes back unchanged -----------------------------------

NAMES = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.\-]{0,40}", fullmatch=True)
ARGUMENTS = st.dictionaries(st.text(max_size=12), JSON_VALUES, max_size=5)
XML_ARGUMENTS = st.dictionaries(st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,15}", fullmatch=True), JSON_VALUES, max_size=5)


def escaped(value, chars="<") -> str:
    """JSON text with the given characters written as \\u escapes, so no markup can appear inside strings."""
    text = json.dumps(value)
    for char in chars:
        text = text.replace(char, f"\\u{ord(char):04x}")
    return text


def xml_value(value) -> str:
    if isinstance(value, str) and value and value == value.strip() and "<" not in value:
        try:
            json.loads(value)
        except ValueError:
            return value
    return escaped(value)


def renderings(name: str, arguments: dict) -> dict:
    call_object = {"name": name, "arguments": arguments}
    params = "".join(f"<parameter={k}>\n{xml_value(v)}\n</parameter>\n" for k, v in arguments.items())
    return {
        "openai": [
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_0", "type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}]},
            {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": name, "arguments": arguments}}]},
            [{"type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}],
        ],
        "hermes": [
            f"Let me check.\n<tool_call>\n{escaped(call_object)}\n</tool_call>",
            f'<tool_call>{escaped({"name": name, "parameters": json.dumps(arguments)})}</tool_call>',
            f"<tool_call>{escaped(call_object)}",
        ],
        "qwen_xml": [f"<tool_call>\n<function={name}>\n{params}</function>\n</tool_call>"],
        "json": [json.dumps(call_object), json.dumps([call_object])],
        "json_fenced": [f"Calling:\n```json\n{escaped(call_object, '`')}\n```"],
    }


@settings(max_examples=200, deadline=None)
@given(NAMES, ARGUMENTS)
def test_round_trip(name, arguments):
    for fmt, actions in renderings(name, arguments).items():
        if fmt == "qwen_xml":
            continue
        for action in actions:
            turn = check(action)
            assert turn.errors == () and len(turn.calls) == 1, (fmt, action, turn)
            assert (turn.calls[0].name, turn.calls[0].arguments, turn.calls[0].fmt) == (name, arguments, fmt)


@settings(max_examples=200, deadline=None)
@given(NAMES, XML_ARGUMENTS)
def test_round_trip_qwen_xml(name, arguments):
    for action in renderings(name, arguments)["qwen_xml"]:
        turn = check(action)
        assert turn.errors == () and turn.calls == (ToolCall(name, arguments, None, "qwen_xml"),), (action, turn)
