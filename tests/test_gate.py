"""The compile gate gives the same errors, in the same order, whether domains are gated in one process or in
parallel (MEDGYM_GATE_WORKERS)."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from medgym.compiler.pipeline import compile_specs
from medgym.gate import compile_gate, gate_workers

MINI = Path(__file__).resolve().parent / "compiler" / "fixtures" / "mini"


def two_domains(tmp_path: Path, tight: bool) -> Path:
    """The mini specs with their domain twice (clinic, clinic_b; tables are global, so one copy of them);
    `tight` gives both a blind-probe ceiling its probe exceeds, so each domain has a gate error."""
    specs = tmp_path / "specs"
    shutil.copytree(MINI, specs)
    first = specs / "domains" / "clinic"
    second = specs / "domains" / "clinic_b"
    shutil.copytree(first, second, ignore=shutil.ignore_patterns("tables"))
    for folder, name in ((first, "clinic"), (second, "clinic_b")):
        domain = folder / "domain.yaml"
        text = domain.read_text().replace("name: clinic", f"name: {name}", 1)
        domain.write_text(text.replace("probes:\n", "probes:\n  blind: 0.1\n", 1) if tight else text)
    for family in [*second.glob("tasks/*.yaml"), *second.glob("cases/*.yaml")]:
        family.write_text(family.read_text().replace("domain: clinic", "domain: clinic_b", 1))
    return specs


@pytest.mark.parametrize("workers", ["1", "2"])
def test_the_gate_passes_a_two_domain_build(tmp_path, monkeypatch, workers):
    monkeypatch.setenv("MEDGYM_GATE_WORKERS", workers)
    assert gate_workers() == int(workers)
    result = compile_specs(two_domains(tmp_path, tight=False), tmp_path / "build", gate=compile_gate)
    assert sorted(result.manifest["domains"]) == ["clinic", "clinic_b"]


def test_parallel_and_serial_gates_agree(tmp_path, monkeypatch):
    compile_specs(two_domains(tmp_path, tight=True), tmp_path / "build")  # no gate: it would refuse the build
    found = {}
    for workers in ("1", "2"):
        monkeypatch.setenv("MEDGYM_GATE_WORKERS", workers)
        found[workers] = [str(e) for e in compile_gate(tmp_path / "build")]
    assert len(found["1"]) == 2 and all("probe 'blind'" in e for e in found["1"])
    assert "/clinic/domain.yaml" in found["1"][0] and "/clinic_b/domain.yaml" in found["1"][1]
    assert found["1"] == found["2"]


def test_gate_workers_ignores_nonsense(monkeypatch):
    for value in ("", "0", "-2", "many"):
        monkeypatch.setenv("MEDGYM_GATE_WORKERS", value)
        assert gate_workers() == 1
