"""Series lookups and multi-key table lookups through env.step, and rewards monotone in correctness on the
series and pairs fixture domains."""

from medgym.runtime.build import Build
from medgym.runtime.agents.oracle import hermes
from episodes import domain_tasks, result, started


def task_of(build, domain, family, scenario=None):
    return next(t for t in domain_tasks(build, domain)
                if t.family == family and (scenario is None or t.scenario == scenario))


# ---------------------------------------------------------------- series
def test_a_series_lookup_shows_every_row_with_its_time_and_unit(series_build):
    task = task_of(series_build, "ward", "aki_stage", "rising")
    env = started(series_build, "ward", task)
    shown = result(env.step(hermes("get_creatinine", {"patient_id": task.case["id"]}))[0], "get_creatinine")
    series = shown["creatinine"]
    assert series["unit"] == "mg/dL" and series["times"] == "hours since admission"
    assert [r["time_h"] for r in series["rows"]] == [r["time"] for r in task.case["labs"]["creatinine"]]
    assert all(r["flag"] in ("low", "normal", "high") for r in series["rows"])


def test_a_windowed_lookup_shows_only_the_rows_inside_it(series_build):
    task = task_of(series_build, "ward", "resp_last_day")
    env = started(series_build, "ward", task)
    pid = task.case["id"]
    day = result(env.step(hermes("get_vitals", {"patient_id": pid, "signs": ["rr"], "since": 48}))[0], "get_vitals")
    times = [r["time_h"] for r in day["vitals"]["rr"]["rows"]]
    assert times == [48.0, 52.0, 56.0, 60.0, 64.0, 68.0, 72.0] and set(day["vitals"]) == {"rr"}
    span = result(env.step(hermes("get_vitals", {"patient_id": pid, "signs": ["rr", "sbp"], "since": 8, "until": 16}))[0],
                  "get_vitals")
    assert [r["time_h"] for r in span["vitals"]["sbp"]["rows"]] == [8.0, 12.0, 16.0]
    latest = result(env.step(hermes("get_creatinine", {"patient_id": pid, "last_n": 2}))[0], "get_creatinine")
    assert [r["time_h"] for r in latest["creatinine"]["rows"]] == [60.0, 72.0]


def test_an_empty_or_backwards_window_is_an_observation_not_a_crash(series_build):
    task = task_of(series_build, "ward", "resp_last_day")
    env = started(series_build, "ward", task)
    pid = task.case["id"]
    empty = result(env.step(hermes("get_creatinine", {"patient_id": pid, "since": 100}))[0], "get_creatinine")
    assert empty["creatinine"]["rows"] == [] and "no rows" in empty["creatinine"]["note"]
    observation, reward, terminated, *_ = env.step(hermes("get_creatinine", {"patient_id": pid, "since": 50, "until": 10}))
    assert observation.startswith("error") and "since (50) is after until (10)" in observation and not terminated


def submit(build, domain, task, steps, answer):
    env = started(build, domain, task)
    for name, arguments in steps:
        env.step(hermes(name, arguments))
    return env.step(hermes("submit_answer", answer))[1]


def test_the_aki_reward_is_monotone_in_correctness(series_build):
    for task in [t for t in Build.open(series_build).domain("ward").tasks("train") if t.family == "aki_stage"][:6]:
        steps = [(s.name, s.arguments) for s in task.reference[:-1]]
        stage, change = task.truth["aki_stage"], task.truth["change_48h"]
        wrong_stage = (stage + 2) % 4
        rewards = [submit(series_build, "ward", task, steps, answer) for answer in (
            {"aki_stage": wrong_stage, "change_48h": change + 1.0},
            {"aki_stage": stage, "change_48h": change + 1.0},
            {"aki_stage": wrong_stage, "change_48h": change},
            {"aki_stage": stage, "change_48h": change})]
        assert rewards[0] == 0.0
        assert rewards[0] <= rewards[1] <= rewards[2] <= rewards[3], rewards  # change weighs twice the stage
        assert rewards[3] >= 0.95


def test_the_windowed_answer_reward_is_monotone_in_correctness(series_build):
    task = task_of(series_build, "ward", "resp_last_day", "worsening")
    steps = [(s.name, s.arguments) for s in task.reference[:-1]]
    peak, trend = task.truth["max_rr_24h"], task.truth["rr_trend_24h"]
    rewards = [submit(series_build, "ward", task, steps, {"max_rr_24h": peak + off, "rr_trend_24h": way})
               for off, way in ((8, "falling"), (8, trend), (0, "falling"), (0, trend))]
    assert rewards == sorted(rewards) and rewards[0] == 0.0 and rewards[-1] >= 0.95


# ---------------------------------------------------------------- pairs
def test_a_pair_is_found_in_either_order_with_its_source(pairs_build):
    task = task_of(pairs_build, "pharmacy", "interaction_review", "azole_warfarin")
    env = started(pairs_build, "pharmacy", task)
    forward = result(env.step(hermes("check_interaction", {"drug_a": "warfarin", "drug_b": "fluconazole"}))[0],
                     "check_interaction")
    backward = result(env.step(hermes("check_interaction", {"drug_a": "Fluconazole", "drug_b": "warfarin"}))[0],
                      "check_interaction")
    assert forward["found"] and backward["found"] and forward["severity"] == backward["severity"] == "major"
    assert forward["matched"] == "exact" and forward["source"].startswith("Black DJ")  # the row's own source


def test_a_class_row_matches_its_members(pairs_build):
    task = task_of(pairs_build, "pharmacy", "interaction_review", "nsaid_anticoagulant")
    env = started(pairs_build, "pharmacy", task)
    shown = result(env.step(hermes("check_interaction", {"drug_a": "apixaban", "drug_b": "naproxen"}))[0],
                   "check_interaction")
    assert shown["found"] and shown["matched"] == "class" and shown["severity"] == "major"
    assert shown["drug_a"] == "nsaid" and shown["source"].startswith("Stockley")  # the table's source
    none = result(env.step(hermes("check_interaction", {"drug_a": "metformin", "drug_b": "amlodipine"}))[0],
                  "check_interaction")
    assert none["found"] is False and "no entry for metformin + amlodipine" in none["result"]


def test_the_interaction_reward_is_monotone_in_correctness(pairs_build):
    for scenario in ("nsaid_anticoagulant", "statin_macrolide", "potassium"):
        task = task_of(pairs_build, "pharmacy", "interaction_review", scenario)
        steps = [(s.name, s.arguments) for s in task.reference[:-1]]
        pair, severity = task.truth["interacting_pair"], task.truth["severity"]
        others = [m for m in task.case["medications"] if m not in pair]
        wrong = next(s for s in ("minor", "moderate", "major") if s != severity)
        rewards = [submit(pairs_build, "pharmacy", task, steps, {"interacting_pair": p, "severity": s})
                   for p, s in ((others, wrong), ([pair[0], others[0]], wrong), (pair, wrong), ([pair[0], others[0]], severity),
                                (list(reversed(pair)), severity))]
        assert rewards[0] == 0.0 and rewards[-1] >= 0.95
        assert rewards[0] <= rewards[1] <= rewards[2] and rewards[1] <= rewards[3] <= rewards[4], (scenario, rewards)
