"""The tool kinds as an agent meets them: lookups with flags, orders and the clock, the patient simulator,
instruments, tables and the knowledge base."""
import json

import pytest

from medgym.dsl.topics import TopicMatcher
from medgym.runtime import executor, make_env
from medgym.runtime.episode import EpisodeView
from medgym.runtime.rewards import score_episode
from medgym.runtime.kb import build_kb
from medgym.runtime.kb.passages import Passage, Source


def call(env, name, **arguments):
    if "patient_id" in env.domain.tools[name].spec.parameters["properties"]:
        arguments.setdefault("patient_id", env.episode.case["id"])
    text = "<tool_call>" + json.dumps({"name": name, "arguments": arguments}) + "</tool_call>"
    observation, reward, terminated, truncated, info = env.step(text)
    return info["tool_results"][0], observation


@pytest.fixture
def mini(mini_build):
    env = make_env(mini_build, "clinic")
    env.reset(options={"task_id": "clinic/cap_disposition-v1/0013"})  # a severe case (val split)
    return env


def test_lookup_shows_units_and_flags(mini):
    result, _ = call(mini, "get_vital_signs")
    vitals = result["content"]["vitals"]
    sbp = mini.episode.case["vitals"]["sbp"]
    assert vitals["sbp"]["value"] == sbp and vitals["sbp"]["unit"] == "mmHg"
    assert vitals["sbp"]["flag"] in ("low", "critical_low")  # severe CAP: SBP < 100
    assert {"vitals.sbp", "vitals.rr"} <= mini.episode.observed


def test_results_exist_only_after_ordering_and_only_what_was_ordered(mini):
    result, observation = call(mini, "get_lab_results")
    assert not result["ok"] and "nothing has been ordered (order them with order_labs)" in observation
    ordered, _ = call(mini, "order_labs", tests=["bun"])
    assert ordered["content"]["status"] == "ordered" and ordered["content"]["read_with"] == "get_lab_results"
    assert mini.episode.clock == 45  # order_labs takes 45 simulated minutes
    result, _ = call(mini, "get_lab_results")
    assert list(result["content"]["labs"]) == ["bun"]
    assert result["content"]["labs"]["bun"]["value"] == mini.episode.case["labs"]["bun"]


def test_instrument_computes_from_the_arguments_given(mini):
    result, _ = call(mini, "calculate_curb65", confusion=True, bun=30, respiratory_rate=32, sbp=85, dbp=50, age=80)
    assert result["content"]["total"] == 5 and result["content"]["band"] == "high"
    bad, observation = call(mini, "calculate_curb65", confusion=True, bun=30, respiratory_rate=32, sbp=85, dbp=50,
                            age=-3)
    assert not bad["ok"] and "age" in observation


def test_table_rows_by_key(mini):
    result, _ = call(mini, "lookup_antibiotics", severity="high")
    assert result["ok"] and result["content"]["severity"] == "high" and result["content"]["source"]


def test_simulator_answers_only_from_the_case_and_deterministically(mini):
    first, _ = call(mini, "ask_patient", question="When did the cough start?")
    assert first["content"]["topic"] == "onset"
    assert first["content"]["answer"] in mini.episode.task.history["onset"]
    again, _ = call(mini, "ask_patient", question="How long have you had it?")
    assert again["content"]["answer"] != first["content"]["answer"]  # a repeat gets the other wording
    muddled, _ = call(mini, "ask_patient", question="Have you been confused?")
    assert muddled["content"]["answer"] == "My daughter says I have been muddled."
    unknown, observation = call(mini, "ask_patient", question="What is your favourite colour?")
    assert not unknown["ok"] and "does not understand" in observation and "when the cough began" in observation
    replay = make_env(mini.domain.build.path, "clinic")
    replay.reset(options={"task_id": "clinic/cap_disposition-v1/0013"})
    assert call(replay, "ask_patient", question="When did the cough start?")[0]["content"] == first["content"]


def test_topic_matcher_counts_each_word_once():
    matcher = TopicMatcher({"onset": {"ask": ["when", "start", "started"]},
                            "exposure": {"ask": ["eat", "stung"]},
                            "last_known_well": {"ask": ["last known well", "well"]}})
    assert matcher.match("What did you eat, or were you stung, just before this started?") == "exposure"
    assert matcher.match("When was she last known well?") == "last_known_well"
    assert matcher.match("Tell me a joke") is None


@pytest.fixture
def tiny_kb(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDGYM_CACHE_DIR", str(tmp_path))
    executor._knowledge_base.cache_clear()
    passages = [Passage(id="pm:curb65", title="CURB-65", source="guidelines",
                        text="CURB-65 scores confusion, urea, respiratory rate, blood pressure and age 65 or over "
                             "to decide admission in community-acquired pneumonia."),
                Passage(id="pm:sepsis", title="Sepsis", source="guidelines",
                        text="Lactate of 2 mmol/L or more with suspected infection suggests sepsis.")]
    passages += [Passage(id=f"f:{i}", title=f"Filler {i}", source="filler", text=f"unrelated filler text {i}")
                 for i in range(20)]
    build_kb([Source("guidelines", lambda: iter(passages), license="CC0-1.0")], tmp_path / "kb")
    yield
    executor._knowledge_base.cache_clear()


def test_knowledge_search_through_the_env_is_grounded(shipped_build, tiny_kb):
    env = make_env(shipped_build, "clinical_diagnosis")
    env.reset(seed=0)
    result, _ = call(env, "search_knowledge", query="CURB-65 pneumonia admission", k=3)
    hits = result["content"]["results"]
    assert hits[0]["id"] == "pm:curb65" and "pm:curb65" in env.episode.retrieved
    passage, _ = call(env, "read_passage", passage_id="pm:curb65")
    assert "community-acquired pneumonia" in passage["content"]["text"]
    hostile, observation = call(env, "search_knowledge", query='"unbalanced AND (title:', k=3)
    assert hostile["ok"] or "error" in observation
    view = EpisodeView(env.episode)
    assert view.cites_passages("CURB-65 of 3 [pm:curb65]") and not view.cites_passages("CURB-65 of 3 (ratio 1:2)")
    assert view.cites_retrieved("CURB-65 of 3 [ pm:curb65 ]") and view.cites_retrieved("no citation")
    assert not view.cites_retrieved("as [pm:curb65] and [pm:made up/passage#2] say")


def test_citing_an_unretrieved_passage_breaks_coherence(shipped_build, tiny_kb):
    env = make_env(shipped_build, "clinical_diagnosis")
    env.reset(seed=0)
    reference = env.episode.task.reference
    for step in reference[:-1]:
        call(env, step.name, **step.arguments)
    call(env, "search_knowledge", query="CURB-65 pneumonia", k=2)
    answer = dict(reference[-1].arguments, reasoning="See [guidelines:made_up_passage].")
    _, observation = call(env, "submit_answer", **answer)
    assert env.episode.done
    cheated = score_episode(env.domain, env.episode).components["coherence"]
    env.episode.answer["reasoning"] = "See [pm:curb65]."
    honest = score_episode(env.domain, env.episode).components["coherence"]
    assert honest == 1.0 > cheated


def test_missing_knowledge_base_is_an_error_observation(shipped_build, tmp_path, monkeypatch):
    monkeypatch.setenv("MEDGYM_CACHE_DIR", str(tmp_path / "empty"))
    executor._knowledge_base.cache_clear()
    env = make_env(shipped_build, "clinical_diagnosis")
    env.reset(seed=0)
    result, observation = call(env, "search_knowledge", query="sepsis lactate")
    assert not result["ok"] and "knowledge base is not available" in observation and "medgym kb build" in observation
    executor._knowledge_base.cache_clear()


def test_flags_with_one_sided_limits():
    from medgym.runtime.executor import _flag

    assert _flag(150, [60, 100], [None, 130]) == "critical_high"
    assert _flag(30, [60, 100], [None, 130]) == "low"
    assert _flag(0.02, [None, 0.04], None) == "normal" and _flag(0.09, [None, 0.04], None) == "high"
    assert _flag(7, None, None) is None
