"""Render generated Python modules from jinja2 templates, strictly, and load them for compile-time use."""
from __future__ import annotations

import pprint
import types

import jinja2


def _pyrepr(value) -> str:
    return pprint.pformat(value, width=110, sort_dicts=False)


def _docstring(text: str) -> str:
    return str(text).replace("\\", "\\\\").replace('"""', "'''")


_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("medgym.compiler", "templates"),
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
    trim_blocks=True,
    lstrip_blocks=True,
    autoescape=False,
)
_ENV.filters["pyrepr"] = _pyrepr
_ENV.filters["docstring"] = _docstring


def render(template: str, **context) -> str:
    return _ENV.get_template(template).render(**context)


def load_module(name: str, source: str, filename: str, extra: dict | None = None) -> types.ModuleType:
    """Execute generated source (ours, never spec text) as a module, for materialising tasks."""
    module = types.ModuleType(name)
    module.__file__ = filename
    module.__dict__.update(extra or {})
    exec(compile(source, filename, "exec"), module.__dict__)  # noqa: S102 - generated from the typed AST
    return module
