"""MedEnv through the Gymnasium API: reset, the action formats, bad calls, limits, determinism, check_env."""
import importlib.util
import json
import time
import warnings
from pathlib import Path

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env

from medgym.runtime import make_env
from medgym.runtime.build import Build
from medgym.runtime.agents.oracle import hermes
from shipped_domains import SHIPPED_DOMAINS


@pytest.fixture
def triage(shipped_build):
    env = make_env(shipped_build, "triage")
    env.reset(seed=0)
    return env


def pid(env):
    return env.episode.case["id"]


def test_reset_gives_policy_ticket_and_openai_tools(shipped_build):
    env = make_env(shipped_build, "triage")
    observation, info = env.reset(seed=3)
    assert info["system"] in observation and info["ticket"] in observation
    assert observation.startswith("# Emergency department triage policy")
    names = [t["function"]["name"] for t in info["tools"]]
    assert "submit_answer" in names and "ask_patient" in names
    assert all(t["type"] == "function" and t["function"]["parameters"]["type"] == "object" for t in info["tools"])
    assert env.observation_space.contains(observation)
    assert type(env).__name__ == "TriageEnv" and "## Action Space" in type(env).__doc__


def test_reset_is_deterministic_and_task_id_selects(shipped_build):
    env = make_env(shipped_build, "triage")
    first = env.reset(seed=11)[1]["task_id"]
    assert env.reset(seed=11)[1]["task_id"] == first
    other = Build.open(shipped_build).domain("triage").tasks("test")[0].task_id
    assert env.reset(options={"task_id": other})[1]["task_id"] == other


@pytest.mark.parametrize("style", ["hermes", "qwen_xml", "openai", "bare_json"])
def test_every_call_format_reaches_the_tool(triage, style):
    args = {"patient_id": pid(triage)}
    action = {
        "hermes": hermes("get_vital_signs", args),
        "qwen_xml": f"<tool_call><function=get_vital_signs><parameter=patient_id>{args['patient_id']}"
                    "</parameter></function></tool_call>",
        "openai": {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "get_vital_signs", "arguments": json.dumps(args)}}]},
        "bare_json": json.dumps({"name": "get_vital_signs", "arguments": args}),
    }[style]
    observation, reward, terminated, truncated, info = triage.step(action)
    assert observation.startswith("get_vital_signs: ")
    hr = triage.episode.case["vitals"]["hr"]
    assert f'"hr": {{"value": {hr}, "unit": "/min"' in observation
    assert info["tool_results"][0]["ok"] and not terminated and reward == 0.0


def test_several_calls_in_one_turn_run_in_order(triage):
    args = {"patient_id": pid(triage)}
    observation, *_ = triage.step(hermes("get_vital_signs", args) + "\n" + hermes("get_allergies", args))
    lines = observation.splitlines()
    assert lines[0].startswith("get_vital_signs:") and lines[1].startswith("get_allergies:")
    assert [c.name for c in triage.episode.calls] == ["get_vital_signs", "get_allergies"]


def test_bad_calls_give_error_observations_and_the_episode_goes_on(triage):
    cases = [
        (hermes("get_vitals", {"patient_id": pid(triage)}), "unknown tool 'get_vitals'; did you mean"),
        (hermes("order_stat_labs", {"patient_id": pid(triage), "tests": ["trop"]}), "tests[0] must be one of"),
        (hermes("get_vital_signs", {}), "must contain ['patient_id'] properties"),
        (hermes("get_vital_signs", {"patient_id": "ED-000000"}), "no patient with id 'ED-000000'"),
        ('<tool_call>{"name": "get_vital_signs", "arguments": {"patient_id": </tool_call>', "error"),
        ("Let me think about this first.", "no tool call found"),
    ]
    for action, expected in cases:
        observation, reward, terminated, truncated, info = triage.step(action)
        assert expected in observation, observation
        assert not terminated and reward == 0.0
    assert triage.episode.invalid_calls == 5 and triage.episode.no_call_turns == 1


def test_instrument_input_errors_are_observations(triage):
    observation, *_ = triage.step(hermes("calculate_gcs", {"eye": 4, "verbal": 5, "motor": 9}))
    assert observation.startswith("error") and "motor" in observation


def test_submission_ends_with_all_components(triage):
    triage.step(hermes("get_vital_signs", {"patient_id": pid(triage)}))
    answer = {"patient_id": pid(triage), "esi_level": 3, "disposition": "urgent_bed", "protocol": "none",
              "reasoning": "vitals"}
    observation, reward, terminated, truncated, info = triage.step(hermes("submit_answer", answer) + hermes(
        "get_allergies", {"patient_id": pid(triage)}))
    assert terminated and not truncated
    assert set(info["reward_components"]) >= {"accuracy", "process", "safety", "format", "coherence"}
    assert reward == info["reward_total"] and 0.0 <= reward <= 1.0
    assert "not run: the episode ended" in observation  # a call after the submission is not executed
    assert info["answer"]["esi_level"] == 3
    with pytest.raises(RuntimeError):
        triage.step("anything")


def test_turn_limit_truncates_without_a_decision(shipped_build):
    env = make_env(shipped_build, "triage", max_turns=2)
    env.reset(seed=1)
    assert env.step("hmm")[3] is False
    observation, reward, terminated, truncated, info = env.step("still thinking")
    assert truncated and not terminated
    assert "no_decision" in [v["id"] for v in info["safety_violations"]]
    assert info["reward_components"]["format"] == 0.0 and reward < 0.1


def test_accuracy_mode_returns_the_accuracy_component(shipped_build):
    env = make_env(shipped_build, "triage", reward_mode="accuracy")
    env.reset(seed=2)
    truth = env.episode.task.truth
    answer = {"patient_id": env.episode.case["id"], "esi_level": truth["esi_level"],
              "disposition": truth["disposition"], "protocol": truth["protocol"], "reasoning": "x"}
    _, reward, terminated, _, info = env.step(hermes("submit_answer", answer))
    assert terminated and reward == 1.0 == info["reward_components"]["accuracy"]
    assert info["reward_total"] < 0.5  # the composite sees the premature closure


@pytest.mark.parametrize("action", [
    "\x00\xff" * 50_000,
    "<tool_call>" + "[" * 100_000 + "</tool_call>",
    "<tool_call>" * 20_000,
    b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 400,
    {"role": "assistant", "tool_calls": [{"function": {"name": "get_vital_signs", "arguments": "{" * 50_000}}]},
    "x" * 5_000_000,
    12345,
])
def test_hostile_actions_do_not_crash_or_hang(triage, action):
    started = time.perf_counter()
    observation, reward, terminated, truncated, info = triage.step(action)
    assert time.perf_counter() - started < 1.0
    assert isinstance(observation, str) and triage.observation_space.contains(observation)
    assert not terminated and triage.episode.valid_calls == 0


def test_unicode_text_spaces(triage):
    for text in ["", "ESI 2 🩺 – ясно, 中文", "\u200d\u0301"]:
        assert triage.action_space.contains(text)
    assert not triage.action_space.contains(b"bytes")
    assert len(triage.action_space.sample()) <= triage.action_space.max_length


def medgym_code_dirs(build_dir) -> list[Path]:
    """The folders holding medgym's code: each stage's package (found without importing it) and the build's
    generated modules. Warnings are matched against these, not against the substring "medgym", which is
    also in the path of every package of a virtualenv made inside a clone named medgym."""
    stages = ["medgym", "medgym.dsl", "medgym.compiler", "medgym.runtime", "medgym.rl"]
    folders = [Path(folder) for name in stages for folder in importlib.util.find_spec(name).submodule_search_locations]
    return [folder.resolve() for folder in folders + [Path(build_dir)]]


def raised_in(warning, folders: list[Path]) -> bool:
    path = Path(warning.filename).resolve()
    return any(path.is_relative_to(folder) for folder in folders)


def test_warning_filter_matches_folders_not_names(tmp_path):
    folders = medgym_code_dirs(tmp_path / "build")
    runtime = Path(importlib.util.find_spec("medgym.runtime").origin)
    ours = warnings.WarningMessage("w", UserWarning, str(runtime), 1)
    beside = warnings.WarningMessage("w", UserWarning, str(tmp_path / "medgym" / ".venv" / "gymnasium" / "x.py"), 1)
    assert raised_in(ours, folders) and not raised_in(beside, folders)


@pytest.mark.parametrize("domain", SHIPPED_DOMAINS)
def test_check_env_passes(shipped_build, domain):
    env = make_env(shipped_build, domain)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env)
    folders = medgym_code_dirs(shipped_build)
    assert not [(w.filename, str(w.message)) for w in caught if raised_in(w, folders)]


def test_gymnasium_registration_uses_a_given_build(shipped_build):
    import medgym  # noqa: F401  (registers the shipped domains)

    assert "medgym/Triage-v1" in gym.registry and "medgym/ClinicalDiagnosis-v1" in gym.registry
    env = gym.make("medgym/ClinicalDiagnosis-v1", build_dir=shipped_build, split="val")
    observation, info = env.reset(seed=0)
    assert info["split"] == "val" and info["domain"] == "clinical_diagnosis"
    assert env.spec.max_episode_steps == env.unwrapped.max_turns
