"""Builds shared by every test folder, compiled once per session: the shipped specs and the mini fixture
(both through the reference gate)."""
from pathlib import Path

import pytest

from medgym.compiler.pipeline import compile_specs
from medgym.gate import compile_gate

ROOT = Path(__file__).resolve().parents[1]
MINI = ROOT / "tests" / "compiler" / "fixtures" / "mini"


@pytest.fixture(scope="session")
def shipped_build(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("shipped") / "build"
    compile_specs(ROOT / "specs", out, gate=compile_gate)
    return out


@pytest.fixture(scope="session")
def mini_build(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("mini") / "build"
    compile_specs(MINI, out, gate=compile_gate)
    return out


SERIES = ROOT / "tests" / "compiler" / "fixtures" / "series"
PAIRS = ROOT / "tests" / "compiler" / "fixtures" / "pairs"


@pytest.fixture(scope="session")
def series_build(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("series") / "build"
    compile_specs(SERIES, out, gate=compile_gate)
    return out


@pytest.fixture(scope="session")
def pairs_build(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pairs") / "build"
    compile_specs(PAIRS, out, gate=compile_gate)
    return out
