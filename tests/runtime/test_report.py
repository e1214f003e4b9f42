"""`medgym report`, `view`, `compare` and `rescore` on the shipped domains, and both pages in a real headless
browser (Chromium from the system packages, driven with its --dump-dom and --screenshot modes)."""
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from medgym.cli import app
from medgym.compiler.pipeline import compile_specs
from medgym.runtime.evaluate import evaluate
from medgym.runtime.rescore import rescore
from medgym.runtime.runlog import read_episodes
from shipped_domains import SHIPPED_DOMAINS

EPISODES = 4 * 2 * len(SHIPPED_DOMAINS)  # the runs below: 4 test tasks per shipped domain, two trials each
MINI = Path(__file__).resolve().parents[1] / "compiler" / "fixtures" / "mini"
BROWSERS = ("chromium", "chromium-browser", "google-chrome")


@pytest.fixture(scope="module")
def runs(shipped_build, tmp_path_factory):
    """Two runs on the shipped domains: the oracle and a probe that gets some of it wrong, two trials each."""
    folder = tmp_path_factory.mktemp("runs")
    paths = {}
    for agent in ("oracle", "lazy"):
        paths[agent] = folder / f"{agent}.jsonl"
        evaluate(shipped_build, agent, split="test", limit=4, trials=2, out=paths[agent])
    return paths


def test_report_holds_every_section_for_two_runs(runs, tmp_path):
    out = tmp_path / "report.html"
    result = CliRunner().invoke(app, ["report", str(runs["oracle"]), str(runs["lazy"]), "--out", str(out)])
    assert result.exit_code == 0, result.output
    page = out.read_text()
    for marker in ('id="run-table"', 'class="domains"', "pass^k over k", "pass@k over k", "Safety violations",
                   'class="safety"', "Tool use", "Never used", 'class="worst"', 'id="comparison"',
                   'class="comparison"', "clinical_diagnosis", "triage", "<svg"):
        assert marker in page, marker
    assert not re.search(r"""(src|href)=["']https?://""", page)  # self-contained: nothing fetched
    lazy = [json.loads(line) for line in runs["lazy"].read_text().splitlines()]
    fired = {rule["category"] for r in lazy for rule in r["rules_fired"]}
    assert fired and all(category in page for category in fired)


def test_compare_prints_the_paired_test_on_shared_tasks(runs):
    result = CliRunner().invoke(app, ["compare", str(runs["oracle"]), str(runs["lazy"]), "--json"])
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    oracle = read_episodes(runs["oracle"])
    lazy = read_episodes(runs["lazy"])
    mean = lambda rs: sum(r["reward"] for r in rs) / len(rs)  # noqa: E731  (same tasks and trials in both)
    assert found["rows"]["all"]["tasks"] == 4 * len(SHIPPED_DOMAINS)
    assert found["rows"]["all"]["difference"] == pytest.approx(mean(lazy) - mean(oracle))
    assert found["rows"]["all"]["difference"] < 0 and found["rows"]["all"]["p_value"] < 0.05


def test_view_writes_a_page_with_every_episode(runs, tmp_path):
    out = tmp_path / "view.html"
    result = CliRunner().invoke(app, ["view", str(runs["lazy"]), "--out", str(out)])
    assert result.exit_code == 0, result.output
    page = out.read_text()
    data = json.loads(re.search(r'<script type="application/json" id="episodes">(.*?)</script>', page, re.S)
                      .group(1).replace("<\\/", "</"))
    assert len(data) == EPISODES and {e["domain"] for e in data} == set(SHIPPED_DOMAINS)
    assert all(e["transcript"] and e["calls"] is not None and "truth" in e for e in data)


def test_a_missing_run_file_is_a_clear_error(tmp_path):
    result = CliRunner().invoke(app, ["report", str(tmp_path / "nope.jsonl")])
    assert result.exit_code == 2 and "no such run file" in result.output


# -- rescoring ---------------------------------------------------------------------------------------------------

def test_rescore_reproduces_the_stored_rewards_of_an_unchanged_build(runs, shipped_build):
    for path in runs.values():
        records = read_episodes(path)
        result = rescore(records, shipped_build)
        assert result["episodes"] == len(records) and result["changed"] == 0 and not result["problems"]
        assert [row["reward"] for row in result["rows"]] == [r["reward"] for r in records]  # exactly


def test_rescore_catches_an_edited_reward(runs, shipped_build, tmp_path):
    lines = runs["lazy"].read_text().splitlines()
    first = json.loads(lines[0])
    first["reward"] = round(first["reward"] + 0.5, 6)
    (tmp_path / "edited.jsonl").write_text("\n".join([json.dumps(first), *lines[1:]]) + "\n")
    result = CliRunner().invoke(app, ["rescore", str(tmp_path / "edited.jsonl"), "--build", str(shipped_build),
                                      "--check"])
    assert result.exit_code == 1 and "1 changed" in result.output and first["task_id"] in result.output


def test_rescore_reports_what_a_rubric_edit_changed(mini_build, tmp_path):
    run = tmp_path / "run.jsonl"
    evaluate(mini_build, "oracle", split="test", limit=3, out=run)
    specs = tmp_path / "specs"
    shutil.copytree(MINI, specs)
    family = specs / "domains" / "clinic" / "tasks" / "cap.yaml"
    text = family.read_text()
    edited = text.replace("  safety:\n", "  safety:\n    - id: never_asked\n      when: not called(\"ask_patient\")\n"
                          "      severity: moderate\n      category: missed_history\n      message: No history.\n", 1)
    assert edited != text
    family.write_text(edited)
    compile_specs(specs, tmp_path / "build")  # no gate: the oracle now misses its threshold on purpose
    result = CliRunner().invoke(app, ["rescore", str(run), "--build", str(tmp_path / "build"), "--json"])
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    assert found["episodes"] == 3 and found["changed"] == 3
    change = found["changes"][0]
    assert change["violations_added"] == ["never_asked"] and change["components"]["safety"] == -0.5
    assert change["reward"] < change["stored"] == 1.0
    assert "3 changed" in result.output


# -- in a real browser -------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser():
    found = next((shutil.which(name) for name in BROWSERS if shutil.which(name)), None)
    if found is None:
        pytest.skip("no Chromium binary on PATH (apt-get install chromium); .ci/run installs it in CI")
    return found


def _load(browser: str, page: Path, shot: Path, fragment: str = "") -> tuple[str, str]:
    """The DOM after the page's scripts ran, and the browser log; a screenshot is written to `shot`."""
    common = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0",
              "--hide-scrollbars", "--window-size=1400,1100", f"--user-data-dir={shot.parent / 'profile'}"]
    url = page.resolve().as_uri() + fragment
    dom = subprocess.run([*common, "--dump-dom", url], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    snap = subprocess.run([*common, f"--screenshot={shot}", url], capture_output=True, text=True, timeout=120)
    assert snap.returncode == 0 and shot.stat().st_size > 10_000, snap.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return dom.stdout, dom.stderr + snap.stderr


def _console(log: str) -> list[str]:
    return [line for line in log.splitlines() if ":CONSOLE" in line]


def test_the_report_loads_in_a_browser_without_console_errors(browser, runs, tmp_path):
    page = tmp_path / "report.html"
    assert CliRunner().invoke(app, ["report", str(runs["oracle"]), str(runs["lazy"]), "--out", str(page)]).exit_code == 0
    dom, log = _load(browser, page, tmp_path / "report.png")
    assert _console(log) == []
    assert 'data-ready="1"' in dom  # the page's script ran to its end
    for marker in ('id="run-table"', 'id="comparison"', 'class="chart"', 'class="worst"'):
        assert marker in dom, marker


def test_the_viewer_shows_an_episode_and_filters_in_a_browser(browser, runs, tmp_path):
    page = tmp_path / "view.html"
    assert CliRunner().invoke(app, ["view", str(runs["lazy"]), "--out", str(page)]).exit_code == 0
    dom, log = _load(browser, page, tmp_path / "view.png")
    assert _console(log) == [] and 'data-ready="1"' in dom
    assert f"{EPISODES} of {EPISODES} shown" in dom and dom.count('class="item') == EPISODES
    for marker in ("Answer against the truth", "Reward breakdown", "Rules that fired", "Process items", "turn 1",
                   'class="said"', 'class="observation"'):
        assert marker in dom, marker
    records = read_episodes(runs["lazy"])
    triage_violating = sum(r["domain"] == "triage" and bool(r["rules_fired"]) for r in records)
    dom, log = _load(browser, page, tmp_path / "view-filtered.png", "#domain=triage&violation=yes")
    assert _console(log) == []
    assert f"{triage_violating} of {EPISODES} shown" in dom and dom.count('class="item') == triage_violating
