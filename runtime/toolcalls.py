"""Tool-call parsing: one assistant turn in, the calls it makes out.

An environment's ``step(action)`` receives whatever the model produced in one turn. ``parse_action`` turns it
into a ``ParsedTurn``: the prose, the tool calls (a name and decoded arguments, not yet schema-validated) and
the malformed calls as ``CallError`` records. It never raises and stays fast on any input (megabytes, deep
nesting, binary garbage): the input is capped, every scan moves forward with ``str.find``, and JSON decoding
errors, recursion included, become ``CallError`` records.

Accepted formats (the ``fmt`` recorded on each call)
----------------------------------------------------
``openai``
    A Mapping shaped like an OpenAI assistant message::

        {"role": "assistant", "content": "..." | None | [{"type": "text", "text": "..."}],
         "tool_calls": [{"id": "call_1", "type": "function",
                         "function": {"name": "x", "arguments": "{\\"a\\": 1}"}}]}

    ``arguments`` may be a JSON string or a Mapping. Also a list of tool_call objects, a single tool_call
    object, a flat ``{"name": ..., "arguments": ...}`` Mapping and the legacy ``function_call`` field. A
    message with a non-empty ``tool_calls`` list keeps its ``content`` as prose; without one, its content is
    parsed as text (servers without a tool parser leave the markup there).
``hermes`` (Hermes, Qwen2.5)
    ``<tool_call>{"name": "x", "arguments": {...}}</tool_call>``. ``parameters`` is a synonym of
    ``arguments``, which may also be a JSON-encoded string; the body may be a JSON list of calls or sit in a
    fenced block. The closing tag may be missing when the JSON object is complete (the turn ends, or the
    next ``<tool_call>`` begins); text after that object is prose.
``qwen_xml`` (Qwen3.5, qwen3_coder)
    ``<tool_call><function=NAME><parameter=K>V</parameter>...</function></tool_call>``. Each V is stripped,
    then JSON-decoded when it is valid JSON, else kept as the string. A ``<function=NAME>`` block without the
    ``<tool_call>`` wrapper is accepted too, as is a JSON object instead of parameter tags (Llama 3.1 style).
``json``
    The turn opens with a JSON object ``{"name": ..., "arguments": ...}`` (or ``"parameters"``, or OpenAI's
    ``{"function": {...}}``), or a JSON list of them. Several objects may follow one another (separated by
    whitespace, ``;`` or ``,``); what comes after them is scanned as usual.
``json_fenced``
    The same JSON inside a fenced code block (```` ```json ... ``` ````), anywhere in the turn.

Formats may be mixed in one turn; calls come back in textual order. JSON without markup (the ``json`` and
``json_fenced`` formats) counts as a call only when it looks like one: an object with ``name`` and
``arguments``/``parameters`` (or ``name`` alone), or with a ``function`` object. Any other JSON, and text with
no markup at all, is prose: no call and no error. A stray ``</tool_call>`` (the opening tag came from the
prompt) is dropped.

``content`` is the text outside the markup: each piece stripped, the pieces joined by newlines, capped at
MAX_CONTENT_CHARS. Code blocks without calls stay in it as written. Reasoning (``<think>...</think>``) gets no
special treatment: a call drafted inside it counts, so strip reasoning first where that matters.

Limits keep every input cheap: MAX_ACTION_CHARS of input (the rest is cut, with an error), MAX_CALLS calls
(one more ends parsing with an error), MAX_ERRORS malformed calls, MAX_FENCES examined code blocks, names of
at most MAX_NAME_CHARS matching ``[A-Za-z_][A-Za-z0-9_.-]*``, arguments nested at most MAX_ARG_DEPTH deep.
Arguments whose text contains the closing tag of their own markup (``</tool_call>`` in a Hermes call,
``</parameter>`` in an XML value, three backticks in a fenced block) cut the call short, as they do in vLLM's
parsers. Line and column numbers in JSON error messages count from the start of the JSON text.

Argument values are cleaned before a ToolCall is made, so no tool handler ever sees a value JSON could not
round-trip strictly: every call's arguments are plain ``dict``/``list``/``str``/``int``/``float``/``bool``/
``None`` (copies, for caller-built objects and subclasses), strings are valid Unicode (no lone surrogates),
numbers are finite and within +-MAX_ARG_NUMBER, and all the text in one call's arguments is at most
MAX_ACTION_CHARS characters. A call breaking any of these is a CallError naming the argument, worded like
the env's schema errors: ``tool call 1: read_passage: invalid arguments: passage_id is not valid Unicode text
(...)`` or ``... bun is out of range: numbers must be finite and within +-9007199254740992`` (``1e400``, and
integers of more digits than that, decode to infinity for this check). An XML parameter whose value decodes
to such JSON keeps its text instead, as a value that is not JSON does.
"""

from __future__ import annotations

import json
import math
import re
import reprlib
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["MAX_ACTION_CHARS", "MAX_ARG_NUMBER", "MAX_CALLS", "CallError", "ParsedTurn", "ToolCall",
           "clean_text", "parse_action"]

MAX_ACTION_CHARS = 200_000  # longer input is cut here before parsing (and an error is recorded)
MAX_CALLS = 32  # calls kept per turn; one more makes an error and ends parsing
MAX_ERRORS = 32  # malformed calls recorded per turn before parsing gives up
MAX_NAME_CHARS = 128
MAX_ARG_DEPTH = 32  # deeper arguments would break recursive schema validators downstream
MAX_CONTENT_CHARS = 20_000
MAX_FENCES = 64  # fenced blocks examined per turn; later backticks are plain prose, so ``` spam stays cheap
SNIPPET_CHARS = 200
# Numbers beyond the exactly representable integers (I-JSON, RFC 7493) are no clinical value; bounding them
# keeps int-to-str conversion, float arithmetic and comparisons in every handler cheap and finite.
MAX_ARG_NUMBER = 2**53

_MAX_ID_CHARS = 256
_MAX_INT_DIGITS = 24  # more digits than MAX_ARG_NUMBER has, fewer than make int() slow
_MAX_WALK_NODES = 100_000  # bounds the depth check on caller-built objects, which may share or cycle

TOOL_OPEN, TOOL_CLOSE = "<tool_call>", "</tool_call>"
FUNCTION_OPEN, FUNCTION_CLOSE = "<function=", "</function>"
PARAM_OPEN, PARAM_CLOSE = "<parameter=", "</parameter>"
FENCE = "```"

# Plain alternations of literals: the engine cannot backtrack over them.
_MARKUP = re.compile(r"<tool_call>|</tool_call>|<function=|```")
_TAGS = re.compile(r"<tool_call>|</tool_call>|<function=")  # once fences are no longer examined
_CALL_TAGS = re.compile(r"<tool_call>|<function=")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
_FENCE_INFO = re.compile(r"[A-Za-z0-9_+.\-]{0,30}")
_SPACE = re.compile(r"\s*")
_SEPARATORS = re.compile(r"[\s;,]*")
_SURROGATE = re.compile("[\ud800-\udfff]")

_JSON_START = frozenset('-0123456789tfn"[{')
_LEADING = frozenset(" \t\r\n{[")
_JSON_KINDS = {dict: "object", list: "array", str: "string", int: "number", float: "number", bool: "boolean",
               type(None): "null"}


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def _parse_int(text: str) -> int | float:
    # An integer too long to be in range becomes infinity, which the argument check reports with its path;
    # int() would refuse it with a message about sys.set_int_max_str_digits, or spend time on it.
    if len(text) > _MAX_INT_DIGITS:
        return -math.inf if text[0] == "-" else math.inf
    return int(text)


# NaN and Infinity are Python's extension to JSON; arguments should survive a strict round trip.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant, parse_int=_parse_int)

_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxdict, _REPR.maxlist, _REPR.maxstring, _REPR.maxother = 3, 6, 6, 120, 60


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One well-formed call: a valid name and a dict of arguments, not yet checked against the tool's schema."""

    name: str
    arguments: dict
    call_id: str | None  # the OpenAI id when given, else None
    fmt: str  # "openai", "hermes", "qwen_xml", "json" or "json_fenced"


@dataclass(frozen=True, slots=True)
class CallError:
    """A malformed call, worded for the agent's next observation."""

    message: str  # e.g. "tool call 2: arguments are not a JSON object (got array)"
    fmt: str  # the format being attempted, or "unknown"
    snippet: str  # up to SNIPPET_CHARS of the offending text


@dataclass(frozen=True, slots=True)
class ParsedTurn:
    """What one assistant turn said and did."""

    content: str  # the prose with tool-call markup removed, stripped, at most MAX_CONTENT_CHARS
    calls: tuple[ToolCall, ...]
    errors: tuple[CallError, ...]


def parse_action(action: str | Mapping | object) -> ParsedTurn:
    """Parse one assistant turn (text, an OpenAI-style message, or tool_call objects) into a ParsedTurn.

    Never raises: input of the wrong type or shape gives a ParsedTurn carrying a CallError.
    """
    turn = _Turn()
    if isinstance(action, str):
        _scan_text(turn, _clip(turn, str.__str__(action)), "json", fences=True)
    elif isinstance(action, (bytes, bytearray, memoryview)):
        _scan_text(turn, _clip(turn, _decode_bytes(action)), "json", fences=True)
    elif isinstance(action, (Mapping, list, tuple)):
        _parse_object(turn, action)
    else:
        hint = "; pass message.model_dump()" if hasattr(action, "model_dump") else ""
        turn.add(CallError(f"unsupported action type {type(action).__name__}: expected a string, an assistant "
                           f"message (a Mapping) or a list of tool calls{hint}", "unknown", _short_repr(action)))
    return turn.result()


class _Turn:
    """Collects calls, errors and prose; stops taking anything once a limit is reached."""

    __slots__ = ("calls", "errors", "prose", "attempts", "full", "fences_left")

    def __init__(self):
        self.calls: list[ToolCall] = []
        self.errors: list[CallError] = []
        self.prose: list[str] = []
        self.attempts = 0
        self.full = False
        self.fences_left = MAX_FENCES

    def number(self) -> int:
        """The 1-based number of the next call attempt, used in error messages."""
        self.attempts += 1
        return self.attempts

    def add(self, item: ToolCall | CallError) -> None:
        if self.full:
            return
        if isinstance(item, ToolCall):
            if len(self.calls) < MAX_CALLS:
                self.calls.append(item)
                return
            message = f"more than {MAX_CALLS} tool calls in one turn; the rest were ignored"
        else:
            if len(self.errors) < MAX_ERRORS:
                self.errors.append(item)
                return
            message = f"more than {MAX_ERRORS} malformed tool calls in one turn; the rest of the turn was ignored"
        self.errors.append(CallError(message, item.fmt, ""))
        self.full = True

    def error(self, message: str, fmt: str, snippet: str) -> None:
        self.add(CallError(message, fmt, snippet))

    def result(self) -> ParsedTurn:
        if len(self.prose) == 1:
            content = self.prose[0].strip()
        else:
            pieces = [piece.strip() for piece in self.prose]
            content = "\n".join(piece for piece in pieces if piece)
        return ParsedTurn(content[:MAX_CONTENT_CHARS], tuple(self.calls), tuple(self.errors))


class _Finder:
    """Next-occurrence lookups in one text; a cached hit stays valid until the scan passes it, so asking
    again and again costs one pass over the text per needle, never a quadratic rescan."""

    __slots__ = ("text", "hits")

    def __init__(self, text: str):
        self.text = text
        self.hits: dict[str, int] = {}

    def next(self, needle: str, pos: int) -> int:
        """Position of the first `needle` at or after `pos`, or len(text) when there is none."""
        hit = self.hits.get(needle, -1)
        if hit < pos:
            hit = self.text.find(needle, pos)
            if hit < 0:
                hit = len(self.text)
            self.hits[needle] = hit
        return hit


# -- input normalisation ---------------------------------------------------------------------------------------

def _decode_bytes(data: bytes | bytearray | memoryview) -> str:
    if isinstance(data, memoryview):
        data = data.tobytes()  # slicing a multi-dimensional view would fail
    # Decoding at most 4 bytes per kept character bounds the work on megabytes of input.
    return bytes(data[: MAX_ACTION_CHARS * 4 + 4]).decode("utf-8", "replace")


def clean_text(text: str) -> str:
    """`text` with each lone surrogate replaced by U+FFFD, so that it always encodes to UTF-8."""
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return _SURROGATE.sub("\ufffd", text)
    return text


def _clip(turn: _Turn, text: str) -> str:
    """Cap the text and replace lone surrogates, which would break any later UTF-8 encoding."""
    if len(text) > MAX_ACTION_CHARS:
        turn.error(f"action is longer than {MAX_ACTION_CHARS} characters; only the first {MAX_ACTION_CHARS} "
                   f"were parsed", "unknown", "")
        text = text[:MAX_ACTION_CHARS]
    return clean_text(text)


def _short_repr(obj: object) -> str:
    try:
        return _REPR.repr(obj)[:SNIPPET_CHARS]
    except Exception:  # a caller's object whose __repr__ fails still gets its error reported
        return f"<{type(obj).__name__}>"


def _kind(value: object) -> str:
    return _JSON_KINDS.get(type(value)) or type(value).__name__


def _json_problem(exc: BaseException) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return str(exc)[:120]


# -- text ----------------------------------------------------------------------------------------------------

def _scan_text(turn: _Turn, text: str, json_fmt: str, fences: bool) -> None:
    """Parse every call in `text`, in order, and keep the prose between them."""
    pos = kept = _leading_json(turn, text, json_fmt)  # text[kept:pos] is prose not yet taken
    finder = _Finder(text)
    end = len(text)
    markup = _MARKUP if fences else _TAGS
    while pos < end and not turn.full:
        found = markup.search(text, pos)
        if found is None:
            break
        start, tag = found.start(), found.group()
        if tag == FENCE:
            if turn.fences_left <= 0:
                markup = _TAGS
                pos = start
                continue
            turn.fences_left -= 1
            pos, inner = _fence(turn, text, finder, start)
            if inner is None:  # an ordinary code block stays in the prose as written
                continue
        if start > kept:
            turn.prose.append(text[kept:start])
        if tag == TOOL_OPEN:
            pos = _tool_call(turn, text, finder, start)
        elif tag == FUNCTION_OPEN:
            pos = _xml_function(turn, text, finder, start, end, wrapped=False)
        elif tag == FENCE:
            turn.prose.extend(inner)
        else:  # a stray </tool_call>: its opening tag was in the prompt
            pos = found.end()
        kept = pos
    if kept < end and not turn.full:
        turn.prose.append(text[kept:])


def _leading_json(turn: _Turn, text: str, fmt: str) -> int:
    """Take the JSON calls the text opens with; return where the rest of the text begins."""
    taken = 0
    if not text or text[0] not in _LEADING:
        return taken
    pos = _SPACE.match(text).end()
    while pos < len(text) and text[pos] in "{[" and not turn.full:
        try:
            obj, stop = _DECODER.raw_decode(text, pos)
        except (ValueError, RecursionError) as exc:
            if text.find('"name"', pos, pos + SNIPPET_CHARS) >= 0:
                turn.error(f"tool call {turn.number()}: invalid JSON: {_json_problem(exc)}", fmt,
                           text[pos:pos + SNIPPET_CHARS])
            break
        if not _looks_like_calls(obj):
            break
        _add_objects(turn, obj, fmt, text[pos:pos + SNIPPET_CHARS], text, stop, pos)
        taken = stop
        pos = _SEPARATORS.match(text, stop).end()
    return taken


def _looks_like_calls(obj: object) -> bool:
    if isinstance(obj, list):
        return any(_looks_like_call(item) for item in obj)
    return _looks_like_call(obj)


def _looks_like_call(obj: object) -> bool:
    if not isinstance(obj, dict):
        return False
    if "name" in obj:
        return "arguments" in obj or "parameters" in obj or len(obj) == 1
    function = obj.get("function")
    return isinstance(function, dict) and "name" in function


def _tool_call(turn: _Turn, text: str, finder: _Finder, start: int) -> int:
    """Parse the <tool_call> at `start`; return where scanning goes on."""
    body_start = start + len(TOOL_OPEN)
    close = finder.next(TOOL_CLOSE, body_start)
    reopen = finder.next(TOOL_OPEN, body_start)
    closed = close < reopen
    body_end = close if closed else reopen
    after = close + len(TOOL_CLOSE) if closed else reopen
    lead = _SPACE.match(text, body_start, body_end).end()
    if text.startswith(FUNCTION_OPEN, lead, body_end):
        _xml_body(turn, text, finder, lead, body_end, closed)
        return after
    snippet = text[start:start + SNIPPET_CHARS]
    body = text[lead:body_end].rstrip()
    if not body:
        problem = "empty <tool_call>" if closed else "unterminated <tool_call> (no JSON and no </tool_call>)"
        turn.error(f"tool call {turn.number()}: {problem}", "hermes", snippet)
        return after
    if body.startswith(FENCE):
        body = _unfence(body)
    try:
        obj, stop = _DECODER.raw_decode(body)
    except (ValueError, RecursionError) as exc:
        where = "<tool_call>" if closed else "unterminated <tool_call>"
        turn.error(f"tool call {turn.number()}: invalid JSON in {where}: {_json_problem(exc)}", "hermes", snippet)
        return after
    rest = body[stop:]
    if closed and rest.strip():
        turn.error(f"tool call {turn.number()}: unexpected text after the JSON in <tool_call>: "
                   f"{rest.strip()[:40]!r}", "hermes", snippet)
        return after
    _add_objects(turn, obj, "hermes", snippet, body, stop)
    if rest:  # the turn went on in prose without closing the tag
        turn.prose.append(rest)
    return after


def _unfence(body: str) -> str:
    """The JSON inside a ```json block that a model put inside its <tool_call>."""
    newline = body.find("\n")
    inner = body[newline + 1:] if newline >= 0 else body[len(FENCE):]
    inner = inner.rstrip()
    if inner.endswith(FENCE):
        inner = inner[:-len(FENCE)]
    return inner.strip()


def _fence(turn: _Turn, text: str, finder: _Finder, start: int) -> tuple[int, list[str] | None]:
    """The fenced block at `start`: where it ends, and the prose left once its calls are taken out, or None
    when it holds no call (it then stays in the prose as written)."""
    info_start = start + len(FENCE)
    close = finder.next(FENCE, info_start)
    after = min(close + len(FENCE), len(text))
    newline = text.find("\n", info_start, min(close, info_start + 32))
    body_start = info_start
    if newline >= 0 and (_FENCE_INFO.fullmatch(text, info_start, newline) is not None
                         or not text[info_start:newline].strip()):
        body_start = newline + 1
    lead = _SPACE.match(text, body_start, close).end()
    if not (lead < close and text[lead] in "{[") and _CALL_TAGS.search(text, body_start, close) is None:
        return after, None
    outer, turn.prose = turn.prose, []
    before = turn.attempts
    _scan_text(turn, text[body_start:close], "json_fenced", fences=False)
    inner, turn.prose = turn.prose, outer
    return after, (inner if turn.attempts > before else None)


def _xml_body(turn: _Turn, text: str, finder: _Finder, pos: int, stop: int, closed: bool) -> None:
    """The functions inside one <tool_call>, which may or may not have been closed."""
    while not turn.full:
        start = finder.next(FUNCTION_OPEN, pos)
        if start >= stop:
            break
        if start > pos:
            turn.prose.append(text[pos:start])
        pos = _xml_function(turn, text, finder, start, stop, wrapped=closed)
    if pos < stop and not turn.full:
        turn.prose.append(text[pos:stop])


def _xml_function(turn: _Turn, text: str, finder: _Finder, start: int, stop: int, wrapped: bool) -> int:
    """Parse the <function=NAME> block at `start`, not past `stop`; return where scanning goes on.

    `wrapped` says the block sits in a closed <tool_call>, which may stand in for a missing </function>.
    """
    n = turn.number()
    snippet = text[start:start + SNIPPET_CHARS]
    name_start = start + len(FUNCTION_OPEN)
    gt = text.find(">", name_start, min(stop, name_start + MAX_NAME_CHARS + 16))
    if gt < 0:
        turn.error(f"tool call {n}: unterminated <function= tag", "qwen_xml", snippet)
        return name_start
    close = finder.next(FUNCTION_CLOSE, gt + 1)
    reopen = finder.next(FUNCTION_OPEN, gt + 1)
    body_end = min(close, reopen, stop)
    closed = close == body_end and close < stop
    after = close + len(FUNCTION_CLOSE) if closed else body_end
    if not (closed or wrapped):
        turn.error(f"tool call {n}: unterminated <function=...> (no </function>)", "qwen_xml", snippet)
        return after
    name = text[name_start:gt]
    problem = _name_problem(name)
    if problem is None:
        arguments, problem = _xml_arguments(text, finder, gt + 1, body_end)
    if problem is None:
        arguments, problem = _clean_arguments(name.strip(), arguments)
    if problem is not None:
        turn.error(f"tool call {n}: {problem}", "qwen_xml", snippet)
    else:
        turn.add(ToolCall(name.strip(), arguments, None, "qwen_xml"))
    return after


def _xml_arguments(text: str, finder: _Finder, pos: int, stop: int) -> tuple[dict, str | None]:
    arguments: dict = {}
    body_start = pos
    while True:
        start = finder.next(PARAM_OPEN, pos)
        if start >= stop:
            break
        key_start = start + len(PARAM_OPEN)
        gt = text.find(">", key_start, min(stop, key_start + MAX_NAME_CHARS + 16))
        if gt < 0:
            return {}, "unterminated <parameter= tag"
        key = text[key_start:gt].strip()
        if not key:
            return {}, "empty parameter name in <parameter=>"
        # A missing </parameter> is common; the next tag or the end of the function closes the value.
        close = finder.next(PARAM_CLOSE, gt + 1)
        value_end = min(close, finder.next(PARAM_OPEN, gt + 1), stop)
        arguments[key] = _xml_value(text[gt + 1:value_end])
        pos = value_end + len(PARAM_CLOSE) if close == value_end and close < stop else value_end
    if arguments:
        return arguments, None
    body = text[body_start:stop].strip()
    if not body:
        return arguments, None
    if body[0] == "{":  # Llama 3.1 writes <function=NAME>{"a": 1}</function>
        return _arguments(body)
    return {}, "the function body is neither <parameter=...> tags nor a JSON object"


def _xml_value(raw: str) -> object:
    value = raw.strip()
    if value and value[0] in _JSON_START:
        try:
            decoded = _DECODER.decode(value)
        except (ValueError, RecursionError):
            return value
        if not (_may_be_deep(value) and _too_deep(decoded, MAX_ARG_DEPTH)) and _is_clean(decoded):
            return decoded
    return value


# -- objects (decoded JSON and caller Mappings) ------------------------------------------------------------

def _add_objects(turn: _Turn, obj: object, fmt: str, snippet: str, source: str, stop: int, start: int = 0) -> None:
    """Turn decoded JSON (one call object, or a list of them), decoded from source[start:stop], into calls
    and errors."""
    items = obj if isinstance(obj, list) else (obj,)
    if not items:
        turn.error(f"tool call {turn.number()}: empty list of tool calls", fmt, snippet)
    deep = _may_be_deep(source, start, stop)
    for item in items:
        if turn.full:
            return
        n = turn.number()
        if deep and _too_deep(item, MAX_ARG_DEPTH + 2):
            turn.error(f"tool call {n}: arguments nested more than {MAX_ARG_DEPTH} levels deep", fmt, snippet)
            continue
        result = _build_call(item, fmt)
        if isinstance(result, str):
            turn.error(f"tool call {n}: {result}", fmt, snippet)
        else:
            turn.add(result)


def _parse_object(turn: _Turn, action: Mapping | list | tuple) -> None:
    # Caller-built objects may misbehave in any method; that is reported, not raised.
    try:
        if isinstance(action, Mapping):
            _parse_mapping(turn, action)
        else:
            _openai_calls(turn, action)
    except Exception as exc:
        turn.error(f"could not read the action: {type(exc).__name__}: {str(exc)[:120]}", "openai",
                   _short_repr(action))


def _parse_mapping(turn: _Turn, message: Mapping) -> None:
    if any(key in message for key in ("tool_calls", "content", "role", "function_call")):
        _parse_message(turn, message)
    elif "function" in message or "name" in message:
        _openai_calls(turn, (message,))
    else:
        turn.error('unrecognised message: expected an assistant message with "content" or "tool_calls", or a tool '
                   'call object with "name" or "function"', "openai", _short_repr(message))


def _parse_message(turn: _Turn, message: Mapping) -> None:
    text = _content_text(message.get("content"))
    if text is None:
        turn.error("message content must be a string, a list of text parts or null", "openai",
                   _short_repr(message.get("content")))
        text = ""
    text = _clip(turn, text)
    tool_calls = message.get("tool_calls")
    if tool_calls is not None and not isinstance(tool_calls, (list, tuple)):
        turn.error(f'"tool_calls" must be a list, got {_kind(tool_calls)}', "openai", _short_repr(tool_calls))
        turn.prose.append(text)
    elif tool_calls:
        _openai_calls(turn, tool_calls)
        turn.prose.append(text)
    elif message.get("function_call") is not None:
        _openai_calls(turn, (message["function_call"],))
        turn.prose.append(text)
    else:
        _scan_text(turn, text, "json", fences=True)


def _content_text(content: object) -> str | None:
    if content is None:
        return ""
    if isinstance(content, str):
        return str.__str__(content)
    if isinstance(content, (list, tuple)):
        parts = [part.get("text") for part in content[:1000] if isinstance(part, Mapping)]
        return "\n".join(part for part in parts if isinstance(part, str))
    return None


def _openai_calls(turn: _Turn, items: list | tuple) -> None:
    for item in items:
        if turn.full:
            return
        n = turn.number()
        if _too_deep(item, MAX_ARG_DEPTH + 3):
            turn.error(f"tool call {n}: nested more than {MAX_ARG_DEPTH} levels deep, or too large", "openai",
                       _short_repr(item))
            continue
        result = _build_call(item, "openai", foreign=True)
        if isinstance(result, str):
            turn.error(f"tool call {n}: {result}", "openai", _short_repr(item))
        else:
            turn.add(result)


def _build_call(obj: object, fmt: str, foreign: bool = False) -> ToolCall | str:
    """A ToolCall from a call object in any of the accepted shapes, or what is wrong with it.

    `foreign` marks objects built by the caller rather than decoded here: their arguments get copied and checked.
    """
    if type(obj) is not dict and not isinstance(obj, Mapping):
        return f'expected an object with "name" and "arguments", got {_kind(obj)}'
    spec = obj
    if "name" not in obj and "function" in obj:
        spec = obj["function"]
        if not isinstance(spec, Mapping):
            return f'"function" must be an object with "name" and "arguments", got {_kind(spec)}'
    name = spec.get("name")
    problem = _name_problem(name)
    if problem is not None:
        return problem
    name = str.__str__(name).strip()
    raw = spec["arguments"] if "arguments" in spec else spec.get("parameters")
    arguments, problem = _arguments(raw, foreign)
    if problem is None:
        arguments, problem = _clean_arguments(name, arguments)
    if problem is not None:
        return problem
    return ToolCall(name, arguments, _call_id(obj.get("id")), fmt)


def _call_id(call_id: object) -> str | None:
    if not isinstance(call_id, str) or len(call_id) > _MAX_ID_CHARS:
        return None
    return clean_text(str.__str__(call_id))  # a plain copy: the id is echoed back in results


def _name_problem(name: object) -> str | None:
    if name is None:
        return "missing tool name"
    if not isinstance(name, str):
        return f"tool name must be a string, got {_kind(name)}"
    name = str.__str__(name).strip()  # a str subclass from a caller could override strip()
    if not name:
        return "empty tool name"
    if len(name) > MAX_NAME_CHARS:
        return f"tool name is longer than {MAX_NAME_CHARS} characters"
    if _NAME.fullmatch(name) is None:
        return (f"invalid tool name {name!r} (use letters, digits, '_', '.' and '-', "
                f"not starting with a digit)")
    return None


def _arguments(raw: object, foreign: bool = False) -> tuple[dict, str | None]:
    """Decoded arguments, or what is wrong with them. A JSON string is decoded (twice when double-encoded)."""
    if type(raw) is dict and not foreign:
        return raw, None
    for attempt in range(2):
        if not isinstance(raw, str):
            break
        text = raw.strip()
        if not text:
            return {}, None
        try:
            raw = _DECODER.decode(text)
        except (ValueError, RecursionError) as exc:
            if attempt:  # the arguments were a JSON string, just not one holding an object
                return {}, "arguments are not a JSON object (got string)"
            return {}, f"arguments are not valid JSON: {_json_problem(exc)}"
        if _may_be_deep(text) and _too_deep(raw, MAX_ARG_DEPTH + 1):
            return {}, f"arguments nested more than {MAX_ARG_DEPTH} levels deep"
        foreign = False
    if raw is None:
        return {}, None
    if type(raw) is dict and not foreign:
        return raw, None
    if not isinstance(raw, Mapping):
        return {}, f"arguments are not a JSON object (got {_kind(raw)})"
    raw = dict(raw)  # a copy, so the caller's object can change without touching the call
    if not all(isinstance(key, str) for key in raw):
        return {}, "argument names must be strings"
    return raw, None


def _may_be_deep(source: str, start: int = 0, stop: int | None = None) -> bool:
    """Cheap pre-check: JSON cannot nest deeper than its count of opening brackets."""
    return source.count("[", start, stop) + source.count("{", start, stop) > MAX_ARG_DEPTH


def _too_deep(value: object, limit: int) -> bool:
    """True when containers nest more than `limit` levels, or there are too many to check (cycles, sharing)."""
    if not isinstance(value, (Mapping, list, tuple)):
        return False
    stack = [(value, 1)]
    visited = 0
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        visited += 1
        if visited > _MAX_WALK_NODES:
            return True
        children = node.values() if isinstance(node, Mapping) else node
        for child in children:
            if isinstance(child, (Mapping, list, tuple)):
                stack.append((child, depth + 1))
    return False


# -- argument values: plain, finite, bounded JSON -------------------------------------------------------------

class _Unclean(ValueError):
    """An argument value no tool may be given; the message names it."""


class _Cleaner:
    """Copies argument values into plain JSON types, or raises _Unclean naming the first bad one.

    Paths in messages are relative to the arguments object ("passage_id", "tests[0]"), as schema errors are.
    """

    __slots__ = ("chars", "nodes")

    def __init__(self):
        self.chars = 0
        self.nodes = 0

    def value(self, value: object, path: str, depth: int) -> object:
        self.nodes += 1
        if self.nodes > _MAX_WALK_NODES:
            raise _Unclean(f"arguments hold more than {_MAX_WALK_NODES} values")
        if value is None or type(value) is bool:
            return value
        if isinstance(value, str):
            return self.text(value, path)
        if isinstance(value, (int, float)):
            return _number(value, path)
        if depth > MAX_ARG_DEPTH + 1:
            raise _Unclean(f"arguments nested more than {MAX_ARG_DEPTH} levels deep")
        if isinstance(value, Mapping):
            return self.mapping(value, path, depth)
        if isinstance(value, (list, tuple)):
            return [self.value(item, f"{path}[{i}]", depth + 1) for i, item in enumerate(value)]
        raise _Unclean(f"{path or 'arguments'} is a {type(value).__name__[:40]} value, which JSON cannot hold")

    def mapping(self, value: Mapping, path: str, depth: int) -> dict:
        clean = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise _Unclean("argument names must be strings")
            key = self.text(key, f"a name in {path or 'arguments'}")
            kind = type(item)
            if kind is str and item.isascii() and self.chars + len(item) <= MAX_ACTION_CHARS:
                self.nodes += 1  # plain ASCII text holds no surrogate: the common case, without building a path
                self.chars += len(item)
                clean[key] = item
                continue
            if kind is int or kind is float:
                self.nodes += 1
                if kind is int and -MAX_ARG_NUMBER <= item <= MAX_ARG_NUMBER or \
                        kind is float and -MAX_ARG_NUMBER <= item <= MAX_ARG_NUMBER:  # NaN fails both
                    clean[key] = item
                    continue
            shown = key[:40] or '""'
            clean[key] = self.value(item, f"{path}.{shown}" if path else shown, depth + 1)
        return clean

    def text(self, value: str, path: str) -> str:
        value = str.__str__(value)  # a plain copy: a str subclass could override any method a handler calls
        self.chars += len(value)
        if self.chars > MAX_ACTION_CHARS:
            raise _Unclean(f"arguments hold more than {MAX_ACTION_CHARS} characters of text")
        if clean_text(value) is not value:
            raise _Unclean(f"{path} is not valid Unicode text (it holds a lone surrogate such as \\ud800; "
                           f"write the characters themselves)")
        return value


def _number(value: int | float, path: str) -> int | float:
    # Plain copies through the base classes: a subclass's own __int__ or __float__ could lie or raise.
    number = int.__int__(value) if isinstance(value, int) else float.__float__(value)
    if (isinstance(number, float) and not math.isfinite(number)) or not -MAX_ARG_NUMBER <= number <= MAX_ARG_NUMBER:
        raise _Unclean(f"{path or 'arguments'} is out of range: numbers must be finite and within "
                       f"+-{MAX_ARG_NUMBER}")
    return number


def _clean_arguments(name: str, arguments: dict) -> tuple[dict, str | None]:
    """Plain copies of `arguments`, or what is wrong with them (worded like the env's schema errors)."""
    try:
        return _Cleaner().mapping(arguments, "", 1), None
    except _Unclean as exc:
        return {}, f"{name}: invalid arguments: {exc}"


def _is_clean(value: object) -> bool:
    try:
        _Cleaner().value(value, "", 2)
    except _Unclean:
        return False
    return True
