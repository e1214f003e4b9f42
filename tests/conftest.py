"""Builds shared by every test folder, compiled once per session through the reference gate: the shipped
specs and the fixture domains."""
from pathlib import Path

import pytest

from medgym.compiler.pipeline import compile_specs
from medgym.gate import compile_gate

ROOT = Path(__file__).resolve().parents[1]
MINI = ROOT / "tests" / "compiler" / "fixtures" / "mini"


FIXTURES = ROOT / "tests" / "compiler" / "fixtures"
SERIES, PAIRS, PHASED, QA, REPORT = (FIXTURES / name for name in ("series", "pairs", "phased", "qa", "report"))


def gated_build(tmp_path_factory, specs: Path, name: str) -> Path:
    out = tmp_path_factory.mktemp(name) / "build"
    compile_specs(specs, out, gate=compile_gate)
    return out


@pytest.fixture(scope="session")
def shipped_build(tmp_path_factory) -> Path:
    return gated_build(tmp_path_factory, ROOT / "specs", "shipped")


@pytest.fixture(scope="session")
def mini_build(tmp_path_factory) -> Path:
    return gated_build(tmp_path_factory, MINI, "mini")


@pytest.fixture(scope="session")
def series_build(tmp_path_factory) -> Path:
    return gated_build(tmp_path_factory, SERIES, "series")


@pytest.fixture(scope="session")
def pairs_build(tmp_path_factory) -> Path:
    return gated_build(tmp_path_factory, PAIRS, "pairs")


@pytest.fixture(scope="session")
def phased_build(tmp_path_factory) -> Path:
    return gated_build(tmp_path_factory, PHASED, "phased")


@pytest.fixture(scope="session")
def qa_build(tmp_path_factory) -> Path:
    return gated_build(tmp_path_factory, QA, "qa")


@pytest.fixture(scope="session")
def report_build(tmp_path_factory) -> Path:
    return gated_build(tmp_path_factory, REPORT, "report")
