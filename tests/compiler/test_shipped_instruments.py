"""Every shipped instrument cites its source and reproduces at least three published worked examples."""
from pathlib import Path

import pytest

from medgym.compiler.instruments import check_instrument
from medgym.compiler.pipeline import run_example
from medgym.dsl.parser import parse_score_file
from medgym.shipped import shipped_specs

SCORES = sorted((shipped_specs() / "instruments").glob("*.score"))


def _declarations():
    return [d for path in SCORES for d in parse_score_file(path)]


def test_at_least_eight_instruments_ship():
    assert len(_declarations()) >= 8


@pytest.fixture(scope="module")
def functions(tmp_path_factory):
    from medgym.compiler.pipeline import _instrument_context
    from medgym.compiler import codegen

    known, checked, errors = {}, [], []
    for decl in _declarations():
        result = check_instrument(decl, known, errors)
        assert result is not None, [str(e) for e in errors]
        known[result.name] = result.signature
        checked.append(result)
    source = codegen.render("instruments.py.j2", instruments=[_instrument_context(c) for c in checked],
                            files=[p.name for p in SCORES], version="test", spec_hash="0" * 64)
    module = codegen.load_module("shipped_instruments_under_test", source, str(tmp_path_factory.mktemp("i") / "i.py"))
    return {c.name: (c.decl, getattr(module, c.name)) for c in checked}


@pytest.mark.parametrize("decl", _declarations(), ids=lambda d: d.name)
def test_cites_a_source_and_three_examples(decl):
    assert decl.sources and all(len(s) > 15 for s in decl.sources), "cite the publication"
    assert len(decl.examples) >= 3
    assert all(len(e.citation) > 10 for e in decl.examples)


@pytest.mark.parametrize("decl", _declarations(), ids=lambda d: d.name)
def test_worked_examples_reproduce(decl, functions):
    _, function = functions[decl.name]
    for example in decl.examples:
        assert run_example(function, example) == [], example.citation
