"""Concurrent evaluation against a real OpenAI-compatible endpoint (tests/rl/chat_server.py), killed with
SIGKILL mid-run and resumed: the resumed file holds exactly the episodes of a clean run, none twice."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from chat_server import ChatServer

import medgym.rl.agents  # noqa: F401  (registers openai: with the runtime, as the CLI's make_agent does)
from medgym.runtime.evaluate import evaluate
from medgym.runtime.runlog import read_run

TRIALS, LIMIT = 4, 4


@pytest.fixture(scope="module")
def slow_server(submit_model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(submit_model_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(submit_model_dir)
    server = ChatServer(model, tokenizer, delay=0.4)
    yield server
    server.close()


def _args(server, build, out) -> list[str]:
    return ["eval", "--agent", "openai:" + server.url, "--model", "tiny", "--build", str(build), "--split", "test",
            "--limit", str(LIMIT), "--trials", str(TRIALS), "--concurrency", "3", "--out", str(out)]


def _cli(args: list[str]) -> subprocess.Popen:
    code = "import sys; from medgym.cli import main; sys.argv = ['medgym', *sys.argv[1:]]; main()"
    return subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _by_key(records: list[dict]) -> dict:
    """What an episode's outcome is, per key (the server numbers its tool-call ids per request it served, so
    the raw transcripts of two runs differ in those ids only)."""
    return {(r["task_id"], r["trial"]): (r["reward"], r["components"], r["answer"], r["sampling_seed"],
                                         r["input"]["sha256"], r["turns"]) for r in records}


def test_a_killed_concurrent_run_resumes_to_the_clean_run(slow_server, mini_build, tmp_path):
    clean = tmp_path / "clean.jsonl"
    evaluate(mini_build, "openai:" + slow_server.url, split="test", limit=LIMIT, trials=TRIALS, concurrency=3,
             agent_options={"model": "tiny"}, out=clean)
    expected = _by_key(read_run(clean)[0])
    assert len(expected) == LIMIT * TRIALS

    killed = tmp_path / "killed.jsonl"
    process = _cli(_args(slow_server, mini_build, killed))
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        if killed.exists() and killed.read_bytes().count(b"\n") >= 3:
            break
        time.sleep(0.02)
    assert process.poll() is None, "the run ended before it could be killed: " + process.stderr.read().decode()
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    before = read_run(killed)[0]
    assert 3 <= len(before) < LIMIT * TRIALS
    with killed.open("ab") as raw:  # a line the kill cut in half (it may have cut one itself)
        raw.write(b'{"task_id": "clinic/cap_disposition-v1/0000", "tri')

    resumed = _cli(_args(slow_server, mini_build, killed) + ["--resume", "--json"])
    stdout, stderr = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, stderr.decode()
    lines = killed.read_text().splitlines()
    records = [json.loads(line) for line in lines]  # every line is whole JSON now
    assert len(records) == LIMIT * TRIALS  # nothing rerun twice, nothing lost
    assert _by_key(records) == expected
    assert [r for r in records[: len(before)]] == before  # what was finished was kept, not replayed
    summary = json.loads(stdout)
    assert summary["episodes"] == LIMIT * TRIALS and summary["tokens"]["requests"] >= LIMIT * TRIALS


def test_the_endpoint_agent_retries_an_overloaded_server_and_counts_tokens(submit_model_dir, mini_build):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(submit_model_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(submit_model_dir)
    server = ChatServer(model, tokenizer, failures=2)
    try:
        summary = evaluate(mini_build, "openai:" + server.url, split="test", limit=1,
                           agent_options={"model": "tiny", "backoff": 0.05})
    finally:
        server.close()
    assert summary["episodes"] == 1 and summary["submitted"] == 1.0
    assert summary["tokens"]["requests"] == 1 and summary["tokens"]["prompt_tokens"] > 0
    assert summary["tokens"]["completion_tokens"] > 0
