"""load_yaml reads ASCII text with libyaml when it is there: the values, every mark and every error must be
exactly what the pure-Python parser gives."""
from pathlib import Path

import pytest
import yaml

from medgym.dsl import yamlpos
from medgym.dsl.errors import SpecError

ROOT = Path(__file__).resolve().parents[2]
FILES = sorted(p for folder in ("specs", "tests") for p in (ROOT / folder).rglob("*.y*ml"))
pytestmark = pytest.mark.skipif(not yamlpos._LIBYAML, reason="PyYAML without libyaml")


def both(monkeypatch, path, text=None):
    fast = _load(path, text)
    monkeypatch.setattr(yamlpos, "_LIBYAML", False)
    slow = _load(path, text)
    monkeypatch.setattr(yamlpos, "_LIBYAML", True)
    return fast, slow


def _load(path, text):
    try:
        data, marks = yamlpos.load_yaml(path, text)
    except SpecError as exc:
        return ("error", str(exc))
    return data, _marks(marks.values), _marks(marks.keys)


def _marks(table: dict) -> dict:
    out = {}
    for loc, pos in table.items():
        scalar = pos.scalar
        out[loc] = (pos.line, pos.col, None if scalar is None else
                    (scalar.text, scalar.start, scalar.end, scalar.style, scalar.line, scalar.col))
    return out


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_spec_file_loads_the_same(monkeypatch, path):
    fast, slow = both(monkeypatch, path)
    assert fast == slow


@pytest.mark.parametrize("text", [
    "a: 1\n  b: 2\n",  # bad indentation
    "a: [1, 2\n",  # unclosed flow sequence
    "a: 1\na: 2\n",  # duplicate key
    "a: &x 1\nb: *x\n",  # anchors
    "a: 1\n---\nb: 2\n",  # two documents
    "a: 'it''s'\nb: \"tab\\tend\"\nc: >-\n  folded\n  text\nd: |\n  kept\n  lines\n",
    "key: \"unterminated\n",
])
def test_errors_and_scalar_styles_are_the_same(monkeypatch, tmp_path, text):
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    fast, slow = both(monkeypatch, path)
    assert fast == slow


def test_non_ascii_text_goes_through_the_python_parser(monkeypatch, tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text("title: temperature \u2265 38 \u00b0C\nnote: \"caf\u00e9\"\n", encoding="utf-8")
    calls = []
    real = yaml.parse
    monkeypatch.setattr(yaml, "parse", lambda text, Loader: calls.append(Loader) or real(text, Loader=Loader))
    fast, slow = both(monkeypatch, path)
    assert fast == slow and yaml.CSafeLoader not in calls
