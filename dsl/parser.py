"""Parse expressions, types and `.score` files with the one Lark grammar into `nodes`.

Syntax errors become `SpecError`s located in the spec file: callers pass the position where the text
starts (a YAML scalar's mark, or line 1 of a `.score` file).
"""
from __future__ import annotations

import functools
import math
import re
from dataclasses import fields
from pathlib import Path

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError

from medgym.dsl import nodes as n
from medgym.dsl.errors import Position, SpecError, read_spec_text, within

_LINE_BREAKS = re.compile("[\r\x85\u2028\u2029]")
MAX_INT = 10**300  # beyond this an int mixed with floats overflows in the generated code
MAX_EXPRESSION_CHARS = 4000  # a spec expression longer than this is a mistake, and parsing stays fast
MAX_EXPRESSION_DEPTH = 50  # nodes inside nodes; real expressions stay under 15


@functools.lru_cache(maxsize=None)
def _parser(start: str) -> Lark:
    return Lark.open_from_package(
        "medgym.dsl", "medgym.lark", start=start, parser="lalr", lexer="contextual",
        propagate_positions=True, maybe_placeholders=True, strict=False,
        cache=True,  # the LALR tables, kept by lark in the temp folder under a hash of grammar and options
    )


def _pos(meta_or_token) -> dict:
    return {"line": getattr(meta_or_token, "line", 0) or 0, "col": getattr(meta_or_token, "column", 0) or 0}


def _unquote(token: str) -> str:
    body = token[1:-1]
    return body.encode("utf-8", "surrogatepass").decode("unicode_escape", "replace") if "\\" in body else body


def _number(token: str) -> tuple[float, bool]:
    is_int = not any(c in token for c in ".eE")
    value = int(token) if is_int else float(token)
    if not math.isfinite(value):  # 1e999 reads as inf, which the generated Python cannot even spell
        raise ValueError(f"{token[:40]} is not a finite number")
    if is_int and abs(value) > MAX_INT:
        raise ValueError(f"{token[:40]}... is too large a number")
    return value, is_int


def _range(token: str) -> tuple[float | None, float | None]:
    low, _, high = token.partition("..")
    return (_number(low)[0] if low else None), (_number(high)[0] if high else None)


@v_args(meta=True)
class _ToNodes(Transformer):
    """lark tree -> frozen nodes (bottom-up is fine here: nothing is evaluated)."""

    def __init__(self, text: str):
        super().__init__()
        self._text = text

    def expr_start(self, meta, items):
        return items[0]

    def type_start(self, meta, items):
        return items[0]

    def if_expr(self, meta, items):
        cond, then, *rest = items
        orelse = rest.pop()
        return n.If(((cond, then), *rest), orelse, **_pos(meta))

    def elif_branch(self, meta, items):
        return (items[0], items[1])

    def or_(self, meta, items):
        return n.BoolOp("or", items[0], items[1], **_pos(meta))

    def and_(self, meta, items):
        return n.BoolOp("and", items[0], items[1], **_pos(meta))

    def not_(self, meta, items):
        return n.Unary("not", items[0], **_pos(meta))

    def compare(self, meta, items):
        return n.Compare(str(items[1]), items[0], items[2], **_pos(meta))

    def in_(self, meta, items):
        return n.Compare("in", items[0], items[1], **_pos(meta))

    def not_in(self, meta, items):
        return n.Compare("notin", items[0], items[1], **_pos(meta))

    def binop(self, meta, items):
        return n.BinOp(str(items[1]), items[0], items[2], **_pos(meta))

    def neg(self, meta, items):
        return n.Unary("-", items[0], **_pos(meta))

    def pow(self, meta, items):
        return n.BinOp("^", items[0], items[1], **_pos(meta))

    def attr(self, meta, items):
        return n.Attr(items[0], str(items[1]), **_pos(meta))

    def call(self, meta, items):
        name, arguments = items
        args, kwargs = [], []
        for arg in arguments or ():
            if isinstance(arg, tuple):
                kwargs.append(arg)
            else:
                args.append(arg)
        return n.Call(str(name), tuple(args), tuple(kwargs), **_pos(meta))

    def arguments(self, meta, items):
        return items

    def kwarg(self, meta, items):
        return (str(items[0]), items[1])

    def number(self, meta, items):
        value, is_int = _number(str(items[0]))
        unit = str(items[1]) if len(items) > 1 and items[1] is not None else None
        return n.Num(value, unit, is_int, **_pos(meta))

    def neg_number(self, meta, items):
        value, is_int = _number(str(items[0]))
        return n.Num(-value, None, is_int, **_pos(meta))

    def string(self, meta, items):
        return n.Str(_unquote(str(items[0])), **_pos(meta))

    def true(self, meta, items):
        return n.Bool(True, **_pos(meta))

    def false(self, meta, items):
        return n.Bool(False, **_pos(meta))

    def name(self, meta, items):
        return n.Name(str(items[0]), **_pos(meta))

    def list_(self, meta, items):
        return n.ListLit(tuple(i for i in items if i is not None), **_pos(meta))

    # ---- types
    def t_bool(self, meta, items):
        return n.TypeRef("bool", **_pos(meta))

    def t_text(self, meta, items):
        return n.TypeRef("text", **_pos(meta))

    def t_date(self, meta, items):
        return n.TypeRef("date", **_pos(meta))

    def t_int(self, meta, items):
        return self._numeric("int", meta, items)

    def t_number(self, meta, items):
        return self._numeric("number", meta, items)

    @staticmethod
    def _numeric(kind, meta, items):
        unit, analyte = (list(items) + [None, None])[:2]
        return n.TypeRef(kind, str(unit) if unit is not None else None, analyte=analyte, **_pos(meta))

    def analyte(self, meta, items):
        return str(items[0])

    def t_enum(self, meta, items):
        return n.TypeRef("enum", values=tuple(str(i) for i in items), **_pos(meta))

    def t_list(self, meta, items):
        return n.TypeRef("list", item=items[0], **_pos(meta))

    def t_series(self, meta, items):
        return n.TypeRef("series", item=items[0], **_pos(meta))

    # ---- instruments
    def score_file(self, meta, items):
        return [i for i in items if isinstance(i, n.Instrument)]

    def instrument(self, meta, items):
        name, title, *sections = items
        parts: dict[str, list] = {"source": [], "inputs": [], "let": [], "require": [], "points": [], "result": [],
                                  "bands": [], "band_on": [], "example": []}
        for section in sections:
            for kind, value in section if isinstance(section, list) else [section]:
                if isinstance(value, list):
                    parts[kind].extend(value)
                else:
                    parts[kind].append(value)
        return n.Instrument(
            str(name), _unquote(str(title)), "", tuple(parts["source"]), tuple(parts["inputs"]),
            tuple(parts["let"]), tuple(parts["points"]), tuple(parts["result"]), tuple(parts["bands"]),
            parts["band_on"][0] if parts["band_on"] else None, tuple(parts["example"]), tuple(parts["require"]),
            **_pos(meta))

    def source(self, meta, items):
        return ("source", _unquote(str(items[0])))

    def inputs(self, meta, items):
        return ("inputs", list(items))

    def input_decl(self, meta, items):
        name, type_, rng, default, desc = items
        low, high = rng if rng else (None, None)
        return n.InputDecl(str(name), type_, low, high, default[0] if default else None, default is not None,
                           _unquote(str(desc)) if desc is not None else "", **_pos(meta))

    def input_range(self, meta, items):
        return _range(str(items[0]))

    def input_default(self, meta, items):
        return (_literal(items[0]),)

    def let_line(self, meta, items):
        return ("let", n.LetLine(str(items[0]), items[1], **_pos(meta)))

    def require_line(self, meta, items):
        return ("require", n.RequireLine(items[0], _unquote(str(items[1])), **_pos(meta)))

    def points(self, meta, items):
        return ("points", list(items))

    def point_line(self, meta, items):
        text = self._text[meta.start_pos:meta.end_pos].split("=>")[0].strip()
        return n.PointLine(items[0], items[1], text, **_pos(meta))

    def result_line(self, meta, items):
        name, value, unit, rnd = items
        return ("result", n.ResultLine(str(name), value, unit, int(rnd) if rnd is not None else None, **_pos(meta)))

    def result_unit(self, meta, items):
        return str(items[0])

    def result_round(self, meta, items):
        return str(items[0])

    def bands(self, meta, items):
        band_on, *lines = items
        return ([("band_on", band_on)] if band_on else []) + [("bands", lines)]

    def band_on(self, meta, items):
        return str(items[0])

    def band_line(self, meta, items):
        bound, label, text = items
        low, high = _range(str(bound)) if bound.type == "RANGE" else (_number(str(bound))[0],) * 2
        return n.Band(low, high, str(label), _unquote(str(text)), **_pos(meta))

    def example(self, meta, items):
        citation, given, expect, within = items
        return ("example", n.Example(_unquote(str(citation)), tuple(given), tuple(expect),
                                     within if within is not None else 0.05, **_pos(meta)))

    def within(self, meta, items):
        return _number(str(items[0]))[0]

    def assignments(self, meta, items):
        return list(items)

    def assignment(self, meta, items):
        return (str(items[0]), _literal(items[1]))


def _literal(node):
    """A literal node (number, string, bool or bare enum name) as a Python value."""
    if isinstance(node, n.Num):
        return node.value
    if isinstance(node, (n.Str, n.Bool)):
        return node.value
    if isinstance(node, n.Name):
        return node.id
    return node


def _syntax_error(exc: UnexpectedInput, text: str, origin: Position) -> SpecError:
    line, col = exc.line, exc.column
    at_end = isinstance(exc, UnexpectedToken) and exc.token.type == "$END"
    if isinstance(exc, UnexpectedEOF) or at_end or line is None or line < 0:
        lines = text.splitlines() or [""]
        line, col = len(lines), len(lines[-1]) + 1
    if isinstance(exc, UnexpectedToken):
        found = "end of line" if exc.token.type == "_NL" else ("end of input" if exc.token.type == "$END" else repr(str(exc.token)))
        expected = sorted({_pretty(t) for t in exc.accepts or exc.expected})[:10]
        message = f"unexpected {found}; expected {', '.join(expected)}"
    elif isinstance(exc, UnexpectedCharacters):
        message = f"unexpected character {text[exc.pos_in_stream]!r}" if 0 <= exc.pos_in_stream < len(text) else "unexpected character"
    else:
        message = "unexpected end of input"
    return SpecError(message, origin.shifted(line, col))


_TERMINAL_NAMES = {"NAME": "a name", "NUMBER": "a number", "STRING": "a string", "UNIT": "a unit", "RANGE": "a range like 0..3",
                   "_NL": "end of line", "COMP_OP": "a comparison", "ADD_OP": "'+' or '-'", "MUL_OP": "'*' or '/'",
                   "LPAR": "'('", "RPAR": "')'", "COMMA": "','", "LSQB": "'['", "RSQB": "']'", "EQUAL": "'='", "COLON": "':'"}


def _pretty(terminal: str) -> str:
    if terminal in _TERMINAL_NAMES:
        return _TERMINAL_NAMES[terminal]
    try:
        pattern = _parser("score_file").get_terminal(terminal).pattern
    except KeyError:
        return terminal
    return f"'{pattern.value}'" if pattern.type == "str" else terminal


# (start rule, text) -> nodes. Node positions are relative to the text and nodes are frozen, so one text
# parses once per process (a compile parses the same few hundred expressions thousands of times).
_PARSED: dict[tuple[str, str], object] = {}
_PARSED_MAX = 50_000


def _parse(text: str, start: str, origin: Position):
    memo = start != "score_file"
    if memo and (start, text) in _PARSED:
        return _PARSED[start, text]
    result = _parse_now(text, start, origin)
    if memo and len(_PARSED) < _PARSED_MAX:
        _PARSED[start, text] = result
    return result


def parsed_texts() -> dict[tuple[str, str], object]:
    """The texts parsed so far with their nodes (a compile cache keeps them for the next process)."""
    return dict(_PARSED)


def remember_parsed(parsed: dict) -> None:
    """Take back what parsed_texts() gave (from the same grammar and code: the caller checks)."""
    for key, nodes in parsed.items():
        if len(_PARSED) >= _PARSED_MAX:
            break
        _PARSED.setdefault(key, nodes)


def _parse_now(text: str, start: str, origin: Position):
    try:
        tree = _parser(start).parse(text)
        result = _ToNodes(text).transform(tree)
    except UnexpectedInput as exc:
        raise _syntax_error(exc, text, origin) from None
    except VisitError as exc:  # a bug in a transformer method must still point at the spec
        meta = getattr(exc.obj, "meta", None)
        raise SpecError(str(exc.orig_exc), origin.shifted(getattr(meta, "line", 1), getattr(meta, "column", 1))) from None
    except RecursionError:
        raise SpecError("expression is nested too deeply", origin) from None
    deep = _too_deep(result)
    if deep is not None:
        raise SpecError(f"expression is nested more than {MAX_EXPRESSION_DEPTH} levels deep",
                        origin.shifted(max(deep.line, 1), max(deep.col, 1)))
    return result


def _too_deep(root) -> n.Node | None:
    """The first node nested deeper than MAX_EXPRESSION_DEPTH, found without recursion (the checker and the
    code generator recurse, and Python refuses generated code nested 200 parentheses deep)."""
    stack = [(root, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (list, tuple)):
            stack.extend((x, depth) for x in item)
        elif isinstance(item, n.Node):
            if depth > MAX_EXPRESSION_DEPTH:
                return item
            stack.extend((getattr(item, f.name), depth + 1) for f in fields(item) if f.name not in ("line", "col"))
    return None


def parse_expression(text: str, origin: Position = Position("<expr>", 1, 1)) -> n.Expr:
    """Parse one expression; positions in the result are relative to `text` (line 1 = first line)."""
    if len(text) > MAX_EXPRESSION_CHARS:
        raise SpecError(f"expression is longer than {MAX_EXPRESSION_CHARS} characters", origin)
    if not text.strip():
        raise SpecError("empty expression", origin)
    return _parse(text.replace("\r", " ").replace("\n", " "), "expr_start", origin)


def parse_type(text: str, origin: Position = Position("<type>", 1, 1)) -> n.TypeRef:
    if len(text) > MAX_EXPRESSION_CHARS:
        raise SpecError("type is too long", origin)
    return _parse(text, "type_start", origin)


def parse_score_file(path: Path | str, text: str | None = None) -> list[n.Instrument]:
    """All instruments of a `.score` file, with `path` recorded on each."""
    path = str(path)
    if text is None:
        text = read_spec_text(path)
    # lark counts lines at \n only; YAML and our positions also break at \r, NEL, LS and PS (same length)
    text = _LINE_BREAKS.sub("\n", text.replace("\r\n", "\n"))
    if not text.endswith("\n"):
        text += "\n"
    try:
        instruments = _parse(text, "score_file", Position(path, 1, 1))
    except SpecError as exc:  # "unexpected end of line" points past the line: show it on its last character
        raise SpecError(exc.message, within(text, exc.pos), exc.hint) from None
    return [_with_path(i, path) for i in instruments]


def _with_path(instrument: n.Instrument, path: str) -> n.Instrument:
    from dataclasses import replace

    return replace(instrument, path=path)
