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


def test_no_gate_agent_reads_the_ticket(tmp_path):
    """What lets the gate's memo skip replaying a ticket-only edit (compiler/cache.py UNPLAYED_TASK_FIELDS):
    the reference solution and every probe score the same on a build whose tickets all say something else."""
    import json

    from medgym.compiler.cache import UNPLAYED_TASK_FIELDS
    from medgym.runtime.agents import PROBES, OracleAgent, make_agent
    from medgym.runtime.env import make_env
    from medgym.runtime.evaluate import run_episode

    build = compile_specs(MINI, tmp_path / "build").out
    other = tmp_path / "other"
    shutil.copytree(build, other)
    for path in (other / "clinic" / "tasks").glob("*.jsonl"):
        lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        path.write_text("".join(json.dumps({**task, "ticket": f"Unrelated words {i}: chest pain, 90 years old."}) + "\n"
                                for i, task in enumerate(lines)))

    def scores(folder: Path) -> list[float]:
        env = make_env(folder, "clinic")
        tasks = [t for split in ("val", "test") for t in env.domain.tasks(split)][:4]
        assert tasks and all(t.ticket.startswith("Unrelated") == (folder == other) for t in tasks)
        agents = [("oracle", OracleAgent)] + [(p, lambda p=p: make_agent(p)) for p in PROBES]
        return [run_episode(env, make(), task.task_id, name, keep_transcript=False)["reward"]
                for task in tasks for name, make in agents]

    assert set(UNPLAYED_TASK_FIELDS) == {"ticket"}
    assert scores(other) == scores(build)


def test_a_failing_gate_still_fails_after_a_ticket_edit(tmp_path):
    """A memoised pass is only ever a pass: errors are recomputed (their lines may have moved), never skipped."""
    from medgym.dsl.errors import SpecErrors

    specs, cache = two_domains(tmp_path, tight=True), tmp_path / "cache"
    found = []
    for _ in range(2):
        with pytest.raises(SpecErrors) as caught:
            compile_specs(specs, tmp_path / "build", gate=compile_gate, cache=cache)
        found.append([str(e) for e in caught.value.errors])
        for family in (specs / "domains").glob("*/tasks/*.yaml"):
            family.write_text(family.read_text().replace("Patient id", "The patient's id is", 1))
    assert len(found[0]) == 2 and found[0] == found[1]
