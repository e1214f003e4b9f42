"""The per-family compile cache and `medgym validate FILE...`: an unchanged family is taken from the cache,
an edit recompiles exactly the families whose sources list the edited file, a damaged entry is rebuilt, the
build is the same with and without the cache, and validating files checks only what they touch."""
import json
from pathlib import Path

import pytest

from medgym.compiler import pipeline
from medgym.compiler.pipeline import check_specs, compile_specs

from test_reuse import CAP, LIB, reused

CASE = Path("domains") / "clinic" / "cases" / "confused_elder.yaml"


@pytest.fixture
def compiled(monkeypatch) -> list[str]:
    """The families compile_family is called for (a spy: a cache hit never reaches it)."""
    names: list[str] = []
    real = pipeline.compile_family

    def spy(loaded, ctx, errors):
        names.append(loaded.model.family)
        return real(loaded, ctx, errors)

    monkeypatch.setattr(pipeline, "compile_family", spy)
    return names


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, (path, old)
    path.write_text(text.replace(old, new, 1))


def build_files(build: Path) -> dict[str, bytes]:
    return {str(p.relative_to(build)): p.read_bytes() for p in sorted(build.rglob("*")) if p.is_file()
            and "__pycache__" not in p.parts}


def test_a_cache_hit_skips_the_family_compile(tmp_path, compiled):
    specs, cache = reused(tmp_path), tmp_path / "cache"
    first = compile_specs(specs, tmp_path / "a", cache=cache)
    assert sorted(compiled) == ["cap_disposition", "confused_elder"]
    assert first.stages["families"] == {"compiled": 2, "cached": 0, "skipped": 0}
    compiled.clear()
    again = compile_specs(specs, tmp_path / "b", cache=cache, force=True)
    assert compiled == []
    assert again.stages["families"] == {"compiled": 0, "cached": 2, "skipped": 0}


def test_editing_a_family_recompiles_that_family_only(tmp_path, compiled):
    specs, cache = reused(tmp_path), tmp_path / "cache"
    compile_specs(specs, tmp_path / "a", cache=cache)
    compiled.clear()
    edit(specs / CAP, "count: 40", "count: 41")
    result = compile_specs(specs, tmp_path / "b", cache=cache)
    assert compiled == ["cap_disposition"]
    assert result.manifest["domains"]["clinic"]["families"] == 2
    assert sum(1 for line in (tmp_path / "b" / "clinic" / "tasks").glob("*.jsonl")
               for _ in line.read_text().splitlines()) == result.manifest["counts"]["tasks"]


def test_editing_a_shared_lib_file_recompiles_the_families_that_call_it(tmp_path, compiled):
    specs, cache = reused(tmp_path), tmp_path / "cache"
    compile_specs(specs, tmp_path / "a", cache=cache)
    compiled.clear()
    edit(specs / LIB, "Where a CURB-65 total is treated.", "Where a CURB-65 total is managed.")
    compile_specs(specs, tmp_path / "b", cache=cache)
    assert compiled == ["cap_disposition"]  # the static case calls no lib function


def test_a_corrupt_or_foreign_entry_is_rebuilt(tmp_path, compiled):
    specs, cache = reused(tmp_path), tmp_path / "cache"
    compile_specs(specs, tmp_path / "a", cache=cache)
    entries = sorted((cache / "families").rglob("*.json"))
    assert len(entries) == 2
    truncated, foreign = entries
    truncated.write_bytes(truncated.read_bytes()[:-40])
    head, _, body = foreign.read_text().partition("\n")
    foreign.write_text(json.dumps({**json.loads(head), "fingerprint": "another compiler"}) + "\n" + body)
    compiled.clear()
    compile_specs(specs, tmp_path / "b", cache=cache, force=True)
    assert sorted(compiled) == ["cap_disposition", "confused_elder"]
    assert build_files(tmp_path / "a") == build_files(tmp_path / "b")
    compiled.clear()
    compile_specs(specs, tmp_path / "c", cache=cache, force=True)  # rewritten whole: trusted again
    assert compiled == []


def test_a_build_from_the_cache_is_the_build_without_it(tmp_path):
    specs, cache = reused(tmp_path), tmp_path / "cache"
    compile_specs(specs, tmp_path / "plain")
    compile_specs(specs, tmp_path / "filling", cache=cache)
    hit = compile_specs(specs, tmp_path / "cached", cache=cache)
    assert hit.stages["families"]["cached"] == 2
    plain = build_files(tmp_path / "plain")
    assert plain == build_files(tmp_path / "filling") == build_files(tmp_path / "cached")


def test_an_unchanged_family_is_not_gated_again(tmp_path, monkeypatch):
    from medgym.gate import compile_gate
    from medgym.runtime import evaluate

    specs, cache = reused(tmp_path), tmp_path / "cache"
    compile_specs(specs, tmp_path / "a", cache=cache, gate=compile_gate)
    played: list[tuple[str, str]] = []
    real = evaluate.run_episode

    def spy(env, agent, task_id, agent_name=None, keep_transcript=True):
        played.append((agent_name or agent.name, task_id))
        return real(env, agent, task_id, agent_name, keep_transcript)

    monkeypatch.setattr(evaluate, "run_episode", spy)
    compile_specs(specs, tmp_path / "b", cache=cache, gate=compile_gate, force=True)
    assert played == []
    edit(specs / CAP, "count: 40", "count: 41")
    compile_specs(specs, tmp_path / "c", cache=cache, gate=compile_gate)
    oracle = {task for agent, task in played if agent == "oracle"}
    assert oracle and all("/cap_disposition-" in task for task in oracle)


def test_a_ticket_wording_edit_replays_no_gate_episode(tmp_path, monkeypatch):
    """Only the prompt changes, which no gate episode reads: the family recompiles, its episodes come from
    the memo; a change that moves the cases (the count) still replays them."""
    from medgym import gate
    from medgym.gate import compile_gate
    from medgym.runtime import evaluate

    specs, cache = reused(tmp_path), tmp_path / "cache"
    compile_specs(specs, tmp_path / "a", cache=cache, gate=compile_gate)
    played: list[str] = []
    real = evaluate.run_episode

    def spy(env, agent, task_id, agent_name=None, keep_transcript=True):
        played.append(task_id)
        return real(env, agent, task_id, agent_name, keep_transcript)

    monkeypatch.setattr(evaluate, "run_episode", spy)
    envs: list[str] = []
    real_families = gate._gate_families
    monkeypatch.setattr(gate, "_gate_families", lambda build, name, *a: envs.append(name) or real_families(build, name, *a))
    edit(specs / CAP, "with cough and fever", "with a cough and fever")
    result = compile_specs(specs, tmp_path / "b", cache=cache, gate=compile_gate)
    assert result.stages["families"]["compiled"] >= 1
    assert "a cough and fever" in (tmp_path / "b" / "clinic" / "tasks" / "train.jsonl").read_text()
    assert played == [] and envs == []  # the domain passed with these episodes: not even its env is made
    edit(specs / CAP, "count: 40", "count: 41")
    compile_specs(specs, tmp_path / "c", cache=cache, gate=compile_gate)
    assert played and all("/cap_disposition-" in task for task in played)


def test_validate_a_broken_family_file_reports_the_located_error(tmp_path):
    specs, cache = reused(tmp_path), tmp_path / "cache"
    compile_specs(specs, tmp_path / "a", cache=cache)
    edit(specs / CAP, "- submit: {disposition:", "- submit: {dispositon:")
    errors = check_specs(specs, cache=cache, only=[specs / CAP])
    assert errors and all(e.pos.path == str(specs / CAP) and e.pos.line > 0 for e in errors)
    assert any("dispositon" in str(e) for e in errors)
    assert check_specs(specs, cache=cache, only=[specs / CASE]) == []  # an unrelated good file passes


def test_validate_a_family_file_checks_that_family_only(tmp_path, compiled):
    specs = reused(tmp_path)
    assert check_specs(specs, only=[specs / CASE]) == []
    assert compiled == ["confused_elder"]


def test_validate_a_lib_file_checks_the_families_that_call_it(tmp_path, compiled):
    specs, cache = reused(tmp_path), tmp_path / "cache"
    compile_specs(specs, tmp_path / "a", cache=cache)
    compiled.clear()
    edit(specs / LIB, "returns: text", "returns: int")
    errors = check_specs(specs, cache=cache, only=[specs / LIB])
    assert compiled == ["cap_disposition"]
    assert errors and {Path(e.pos.path).name for e in errors} <= {"clinic.yaml", "cap_base.yaml", "cap.yaml"}


def test_validate_cli_takes_files_and_exits_non_zero_on_error(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from medgym.cli import app

    monkeypatch.setenv("MEDGYM_CACHE_DIR", str(tmp_path / "cache"))
    specs = reused(tmp_path)
    runner = CliRunner()
    ok = runner.invoke(app, ["validate", "--no-gate", str(specs / CASE)])
    assert ok.exit_code == 0, ok.output
    edit(specs / CAP, "- submit: {disposition:", "- submit: {dispositon:")
    bad = runner.invoke(app, ["validate", "--no-gate", str(specs / CAP)])
    assert bad.exit_code == 1
    assert f"{specs / CAP}:" in bad.output and "dispositon" in bad.output


def test_validate_files_gates_what_it_checked_and_no_probe_of_a_partial_domain(tmp_path, monkeypatch):
    from medgym.gate import compile_gate
    from medgym.runtime import evaluate

    played, tables = [], []
    real_episode, real_table = evaluate.run_episode, evaluate.probe_table
    monkeypatch.setattr(evaluate, "run_episode", lambda env, agent, task_id, *a, **k: played.append(task_id)
                        or real_episode(env, agent, task_id, *a, **k))
    monkeypatch.setattr(evaluate, "probe_table", lambda *a, **k: tables.append(1) or real_table(*a, **k))
    specs = reused(tmp_path)
    assert check_specs(specs, gate=compile_gate, only=[specs / CASE]) == []  # no cache: cap_disposition left out
    assert played and all("/confused_elder-" in task for task in played)
    assert tables == []  # probe means over part of a domain would mislead


def test_instruments_py_is_run_from_its_stored_code_as_from_its_source(tmp_path):
    """The stored code object of instruments.py runs as the file would: same docstring and functions, line
    numbers and file name those of the file imported now; a damaged stored entry is compiled anew."""
    from medgym.compiler.cache import FamilyCache

    specs, cache = reused(tmp_path), tmp_path / "cache"
    compile_specs(specs, tmp_path / "a", cache=cache)
    assert list((cache / "code").rglob("*.marshal"))
    text = (tmp_path / "a" / "instruments.py").read_text()
    for copy in ("b", "c"):
        (tmp_path / copy).mkdir()
        (tmp_path / copy / "instruments.py").write_text(text)
    scope = pipeline._Scope(FamilyCache(cache, {}), None)
    stored = pipeline._import_instruments(tmp_path / "b" / "instruments.py", scope)
    for entry in (cache / "code").rglob("*.marshal"):
        entry.write_bytes(entry.read_bytes()[:-10])
    fresh = pipeline._import_instruments(tmp_path / "c" / "instruments.py", scope)
    assert stored.__doc__ == fresh.__doc__ and stored.__doc__.startswith("Scoring instruments")
    names = sorted(fresh.FUNCTIONS)
    assert names and sorted(stored.FUNCTIONS) == names
    for name in names:
        a, b = getattr(stored, name).__code__, getattr(fresh, name).__code__
        assert a.co_firstlineno == b.co_firstlineno and a.co_code == b.co_code
        assert a.co_filename == str(tmp_path / "b" / "instruments.py")


def test_a_compile_turns_the_cycle_collector_back_on(tmp_path):
    import gc

    specs = reused(tmp_path)
    compile_specs(specs, tmp_path / "a", cache=tmp_path / "cache")
    assert gc.isenabled()
    (specs / "domains" / "clinic" / "domain.yaml").write_text("not: [a, domain")
    with pytest.raises(Exception):
        compile_specs(specs, tmp_path / "b", cache=tmp_path / "cache")
    assert gc.isenabled()
