"""Spec texts (tickets, history answers): jinja2 templates compiled and checked when the specs compile.

A template that does not parse, that holds a broken tag (`{g/dL else %}` is plain text to jinja, so the
patient would say it), or that renders empty for some task is a located error, not a silent bad answer.
Rendering runs in jinja's sandbox with sizes bounded, so no template can fill memory or loop for hours.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from jinja2 import StrictUndefined, Template, TemplateError, TemplateSyntaxError, nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment

from medgym.dsl.errors import Position, SpecError

MAX_TEXT_CHARS = 20_000  # a rendered ticket or answer; real ones are under 2,000
MAX_ARGUMENT = 10_000  # an integer passed to a call or filter (widths, counts, range bounds)
_DELIMITERS = ("{%", "%}", "{{", "}}", "{#", "#}")
_TAG = re.compile(r"\{%.*?%\}|\{\{.*?\}\}|\{#.*?#\}", re.S)
_PRINTF_WIDTH = re.compile(r"%[-+ #0]*(\d*)(?:\.(\d+))?")  # `%10.2f`
_FORMAT_WIDTH = re.compile(r"\{[^{}:]*:(?:[^{}]?[<>=^])?[-+ ]?z?#?0?(\d*)[,_]?(?:\.(\d+))?")  # `{:>10}`, `{0:*^8.2f}`


def _check_int(value):
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_ARGUMENT:
        raise SecurityError(f"{value} is too large for a spec text (at most {MAX_ARGUMENT})")


def _bounded(function):
    """A filter whose extra integer arguments are bounded (`center(10**9)` would build a gigabyte string);
    the value filtered is not checked (a platelet count is a large number)."""
    skip = 2 if hasattr(function, "jinja_pass_arg") else 1  # (context or environment,) value, arguments...

    @functools.wraps(function)
    def call(*args, **kwargs):
        for value in (*args[skip:], *kwargs.values()):
            _check_int(value)
        return function(*args, **kwargs)
    return call


class _Sandbox(SandboxedEnvironment):
    """jinja's sandbox, with the size of what a template can build bounded too."""

    intercepted_binops = frozenset({"*", "**", "%"})

    def call_binop(self, context, operator, left, right):
        if operator == "*" and _repeats(left, right):
            raise SecurityError("repeating a text or list that many times is not allowed in a spec text")
        if operator == "**" and isinstance(right, (int, float)) and abs(right) > 100:
            raise SecurityError("exponents above 100 are not allowed in a spec text")
        if operator == "%" and isinstance(left, str):
            _check_widths(left, _PRINTF_WIDTH)
        return super().call_binop(context, operator, left, right)

    def call(__self, __context, __obj, *args, **kwargs):  # noqa: N805 (jinja's own signature)
        owner = getattr(__obj, "__self__", None)
        if __obj is _JINJA_RANGE or (isinstance(owner, str) and getattr(__obj, "__name__", "") in _WIDTH_METHODS):
            for value in (*args, *kwargs.values()):
                _check_int(value)
        return super().call(__context, __obj, *args, **kwargs)

    def wrap_str_format(self, value):
        wrapped = super().wrap_str_format(value)
        if wrapped is not None:  # `'{:>999999999}'.format(x)`: the format string sets the width
            _check_widths(value.__self__, _FORMAT_WIDTH)
        return wrapped


_WIDTH_METHODS = {"center", "ljust", "rjust", "zfill", "expandtabs"}


def _check_widths(fmt: str, pattern: re.Pattern):
    for width, precision in pattern.findall(fmt):
        _check_int(int(width or 0))
        _check_int(int(precision or 0))


def _bounded_format(function):
    """The `format` filter, whose format string (the value filtered) sets the widths."""
    @functools.wraps(function)
    def call(value, *args, **kwargs):
        _check_widths(str(value), _PRINTF_WIDTH)
        return function(value, *args, **kwargs)
    return call


def _repeats(left, right) -> bool:
    for seq, count in ((left, right), (right, left)):
        if isinstance(seq, (str, list, tuple)) and isinstance(count, int) and len(seq) * count > MAX_TEXT_CHARS:
            return True
    return False


def _sandbox(loader=None) -> _Sandbox:
    env = _Sandbox(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False, loader=loader)
    env.filters = {name: _bounded(f) for name, f in env.filters.items()}
    env.filters["format"] = _bounded_format(env.filters["format"])
    return env


_JINJA = _sandbox()
_JINJA_RANGE = _JINJA.globals["range"]


@dataclass
class Text:
    """One compiled spec text and where it is written."""

    template: Template
    pos: Position
    what: str  # "the ticket", "history answer 'onset'"


def compile_text(text: str, pos: Position, what: str, errors: list[SpecError], env: "TextEnv | None" = None) -> Text | None:
    """The compiled template, or None after recording a located error."""
    jinja = env.jinja if env is not None else _JINJA
    # a text that compiled cleanly in this sandbox compiles to the same template (inherited history
    # answers and tickets recur across scenarios and families); failures are not kept (they carry `pos`)
    compiled = jinja.__dict__.setdefault("medgym_templates", {})
    if text in compiled:
        return Text(compiled[text], pos.offset(0), what)
    try:
        tree = jinja.parse(text)
        template = jinja.from_string(tree)
    except TemplateSyntaxError as exc:
        errors.append(SpecError(f"template error in {what}: {exc.message}", pos.shifted(exc.lineno or 1, 1)))
        return None
    except TemplateError as exc:
        errors.append(SpecError(f"template error in {what}: {exc}", pos))
        return None
    problem = _stray_delimiter(text, pos) or _unbounded(tree, pos) or _missing_template(tree, env, pos)
    if problem is not None:
        errors.append(SpecError(f"template error in {what}: {problem[0]}", problem[1]))
        return None
    if len(compiled) < _COMPILED_MAX:
        compiled[text] = template
    return Text(template, pos.offset(0), what)  # runtime errors point at the text, not at its key


_COMPILED_MAX = 20_000  # templates kept per sandbox


def _missing_template(tree: nodes.Template, env: "TextEnv | None", pos: Position):
    known = env.sources if env is not None else {}
    for node in tree.find_all((nodes.Import, nodes.FromImport, nodes.Include)):
        name = node.template.value if isinstance(node.template, nodes.Const) else None
        if not isinstance(node, nodes.Include) and node.with_context:
            return ("import macros without context and pass them the values they need (what a text shows must "
                    "be read in the text)", pos.shifted(node.lineno, 1))
        if name not in known:
            from medgym.dsl.errors import did_you_mean

            hint = did_you_mean(str(name), known) or "shared macros live in specs/lib/*.j2, partials in defaults.yaml"
            return f"unknown template {name!r} ({hint})" if name else "import a template by its quoted name", \
                pos.shifted(node.lineno, 1)
    return None


class TextEnv:
    """The jinja sandbox of one domain: the shared macro files (`lib/*.j2`, imported by file name) and the
    domain's named partials (`defaults.yaml` partials, included by name), served by a loader that reads
    only these texts, never the file system.

    What runs in a spec text stays bounded: a macro file holds only macros; a macro and a partial hold no
    loop, no macro call, no import or include (so a text reaches at most one level of them and no loop
    nests inside another)."""

    def __init__(self, macros: dict[str, tuple[str, Position]], partials: dict[str, tuple[str, Position]],
                 errors: list[SpecError]):
        from jinja2 import DictLoader

        self.sources = {name: text for name, (text, _) in {**macros, **partials}.items()}
        self.partials = set(partials)
        self._referenced: dict[str, list[str]] = {}
        self.where = {name: pos for name, (_, pos) in {**macros, **partials}.items()}
        self.jinja = _sandbox(DictLoader(self.sources))
        self.ok = True
        for name, (text, pos) in macros.items():
            self.ok &= self._check(name, text, pos, errors, macro_file=True)
        for name, (text, pos) in partials.items():
            self.ok &= self._check(name, text, pos, errors, macro_file=False)

    def _check(self, name: str, text: str, pos: Position, errors, macro_file: bool) -> bool:
        what = f"macro file {name}" if macro_file else f"partial '{name}'"
        try:
            tree = self.jinja.parse(text)
        except TemplateSyntaxError as exc:
            errors.append(SpecError(f"template error in {what}: {exc.message}", pos.shifted(exc.lineno or 1, 1)))
            return False
        problem = _stray_delimiter(text, pos) or _library_problem(tree, pos, macro_file)
        if problem is not None:
            errors.append(SpecError(f"template error in {what}: {problem[0]}", problem[1]))
            return False
        return True

    def referenced(self, text: str) -> list[str]:
        """The shared texts a template imports or includes (they are one level deep)."""
        from jinja2 import meta

        if "import" not in text and "include" not in text:
            return []  # most texts: no need to parse them again
        if text not in self._referenced:
            try:
                found = meta.find_referenced_templates(self.jinja.parse(text))
                self._referenced[text] = sorted(n for n in found if n in self.sources)
            except TemplateError:
                self._referenced[text] = []
        return self._referenced[text]

    def analysis_text(self, text: str) -> str:
        """The template followed by the partials it includes: what it can read (for the information-flow
        check). Macros see only their arguments (imports carry no context), which the text itself reads."""
        used = [n for n in self.referenced(text) if n in self.partials]
        return text if not used else "\n".join([text, *(self.sources[n] for n in used)])


def _library_problem(tree: nodes.Template, pos: Position, macro_file: bool):
    macros = {m.name for m in tree.find_all(nodes.Macro)}
    if macro_file:
        for node in tree.body:
            if not isinstance(node, nodes.Macro) and not (isinstance(node, nodes.Output) and all(
                    isinstance(d, nodes.TemplateData) and not d.data.strip() for d in node.nodes)):
                return "a macro file holds only {% macro %} blocks", pos.shifted(node.lineno, 1)
    for node in tree.find_all((nodes.For, nodes.CallBlock, nodes.Import, nodes.FromImport, nodes.Include)):
        kind = "loops" if isinstance(node, nodes.For) else "call blocks, imports and includes"
        return f"{kind} are not allowed in shared macros and partials", pos.shifted(node.lineno, 1)
    for body in tree.find_all(nodes.Macro):
        if any(True for _ in body.find_all(nodes.Macro)):
            return "a macro inside a macro is not allowed", pos.shifted(body.lineno, 1)
        for call in body.find_all(nodes.Call):
            if isinstance(call.node, nodes.Name) and call.node.name in macros:
                return "a macro may not call a macro (so no text can call itself)", pos.shifted(call.lineno, 1)
    if not macro_file and macros:
        return "macros belong in a macro file (specs/lib/*.j2), not in a partial", pos
    return None


def _stray_delimiter(text: str, pos: Position):
    """A `%}`, `}}` or `#}` outside any tag: a broken tag that jinja would print as text."""
    outside = _TAG.sub(lambda m: " " * len(m.group()), text)  # same length, so indexes still match `text`
    found = [(outside.find(d), d) for d in _DELIMITERS if d in outside]
    if not found:
        return None
    index, delimiter = min(found)
    return f"'{delimiter}' outside a template tag (is a '{{%', '{{{{' or '{{#' mistyped?)", pos.offset(index)


def _unbounded(tree: nodes.Template, pos: Position):
    """Constructs whose running time a sandbox cannot bound: macros, call blocks, recursive or nested loops."""
    for node in tree.find_all((nodes.Macro, nodes.CallBlock, nodes.For)):
        if not isinstance(node, nodes.For):
            return "macros and call blocks are not allowed in spec texts", pos.shifted(node.lineno, 1)
        if node.recursive or any(True for _ in node.find_all(nodes.For)):
            return "loops inside loops are not allowed in spec texts", pos.shifted(node.lineno, 1)
    return None


def render_text(text: Text, context: dict, where: str) -> str:
    """The rendered text, stripped; a located SpecError when it cannot render, renders empty, still holds
    template syntax, or is too long."""
    try:
        out = text.template.render(context).strip()
    except RecursionError:
        raise SpecError(f"{text.what} recurses without end for {where}", text.pos) from None
    except Exception as exc:  # noqa: BLE001 - any failure of a spec's template is the spec's error, located
        raise SpecError(f"{text.what} cannot be rendered for {where}: {type(exc).__name__}: {exc}", text.pos) from None
    if not out:
        raise SpecError(f"{text.what} renders empty for {where}", text.pos)
    left = next((d for d in _DELIMITERS if d in out), None)
    if left is not None:
        raise SpecError(f"{text.what} still holds template syntax '{left}' after rendering for {where}", text.pos)
    if len(out) > MAX_TEXT_CHARS:
        raise SpecError(f"{text.what} renders longer than {MAX_TEXT_CHARS} characters for {where}", text.pos)
    return out
