"""An instrument tool in an episode checks its inputs as `medgym score` does: every problem in one error
observation, numbers as text with a unit converted, and the call recorded with the values the instrument used."""
import json

import pytest

from medgym.runtime import make_env

GOOD = {"confusion": True, "bun": 30, "respiratory_rate": 32, "sbp": 85, "dbp": 50, "age": 80}


def step(env, name, arguments):
    observation, *_rest, info = env.step("<tool_call>" + json.dumps({"name": name, "arguments": arguments}) + "</tool_call>")
    return info["tool_results"][0], observation


@pytest.fixture
def mini(mini_build):
    env = make_env(mini_build, "clinic")
    env.reset(options={"task_id": "clinic/cap_disposition-v1/0013"})
    return env


def test_text_with_a_unit_is_converted_and_the_call_recorded_in_the_instrument_units(mini):
    result, _ = step(mini, "calculate_curb65", {**GOOD, "age": "960 months", "sbp": "11.33 kPa"})
    assert result["ok"] and result["content"]["total"] == 5
    recorded = mini.episode.calls[-1].arguments
    assert recorded["age"] == 80 and type(recorded["age"]) is int
    assert recorded["sbp"] == pytest.approx(85, abs=0.1)
    mini.domain.tools["calculate_curb65"].validate(recorded)  # what was recorded is schema-valid


def test_every_problem_in_one_observation(mini):
    bad = {**GOOD, "age": -3, "bun": "10 mmol/L", "sbp": "high", "confusoin": True}
    del bad["dbp"]
    result, observation = step(mini, "calculate_curb65", bad)
    assert not result["ok"] and mini.episode.invalid_calls == 1
    error = result["error"]
    assert error.startswith("calculate_curb65: 5 problems with the inputs:")
    for expected in ["unknown input 'confusoin' (did you mean 'confusion'?)",
                     "input 'bun': mmol/L does not convert to mg/dL in '10 mmol/L'; units accepted: mg/dL",
                     "input 'sbp' must be a number (in mmHg)",
                     "missing input 'dbp' (number mmHg in 10..200)",
                     "input 'age' = -3 years is outside 0..120 years"]:
        assert expected in error and expected in observation


def test_the_tool_schema_the_model_sees_is_unchanged(mini):
    schema = mini.domain.tools["calculate_curb65"].spec.parameters
    assert schema["properties"]["bun"] == {"type": "number", "description": "blood urea nitrogen (in mg/dL)",
                                           "minimum": 1, "maximum": 300}
