"""The compiler end to end: the mini fixture (artifacts, determinism, split stability, caching) and the shipped specs."""
import json
import shutil
from pathlib import Path

import jsonschema
import pytest

from medgym.compiler.materialize import split_of
from medgym.compiler.pipeline import compile_specs

MINI = Path(__file__).parent / "fixtures" / "mini"

# What an OpenAI function-calling tool list must look like.
OPENAI_TOOLS = {
    "type": "array", "minItems": 1,
    "items": {"type": "object", "required": ["type", "function"], "additionalProperties": False,
              "properties": {"type": {"const": "function"},
                             "function": {"type": "object", "required": ["name", "description", "parameters"],
                                          "additionalProperties": False,
                                          "properties": {"name": {"type": "string", "pattern": "^[a-zA-Z0-9_-]{1,64}$"},
                                                         "description": {"type": "string", "minLength": 1},
                                                         "parameters": {"type": "object", "required": ["type", "properties"],
                                                                        "properties": {"type": {"const": "object"}}}}}}},
}


@pytest.fixture(scope="module")
def build(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("b") / "build"
    compile_specs(MINI, out, gate=None)
    return out


def tasks(build: Path) -> list[dict]:
    return [json.loads(line) for split in ("train", "val", "test")
            for line in (build / "clinic" / "tasks" / f"{split}.jsonl").read_text().splitlines() if line]


def test_manifest_counts(build):
    manifest = json.loads((build / "manifest.json").read_text())
    assert manifest["format_version"] == 3 and len(manifest["spec_hash"]) == 64
    assert manifest["counts"] == {"domains": 1, "tools": 7, "instruments": 2, "tasks": 41}
    clinic = manifest["domains"]["clinic"]
    assert clinic["env_id"] == "medgym/Clinic-v0" and sum(clinic["splits"].values()) == 41


def test_tools_json_is_an_openai_tool_list(build):
    tools = json.loads((build / "clinic" / "tools.json").read_text())
    jsonschema.validate(tools, OPENAI_TOOLS)
    by_name = {t["function"]["name"]: t["function"]["parameters"] for t in tools}
    for params in by_name.values():
        jsonschema.Draft202012Validator.check_schema(params)
    order = by_name["order_labs"]["properties"]["tests"]
    assert order == {"type": "array", "items": {"type": "string", "enum": ["bun", "crp"]}, "minItems": 1}
    curb = by_name["calculate_curb65"]
    assert curb["properties"]["bun"]["description"] == "blood urea nitrogen (in mg/dL)"
    assert curb["properties"]["bun"]["minimum"] == 1 and curb["properties"]["bun"]["maximum"] == 300
    assert set(curb["required"]) == {"confusion", "bun", "respiratory_rate", "sbp", "dbp", "age"}
    assert by_name["submit_answer"]["required"] == ["curb65", "disposition"]


def test_tasks_are_complete_and_consistent(build):
    for task in tasks(build):
        case = task["case"]
        assert case["id"].startswith("CL-") and case["id"] in task["ticket"]
        assert 50 <= case["vitals"]["sbp"] <= 240 and isinstance(case["vitals"]["rr"], int)
        assert task["reference"][-1]["name"] == "submit_answer"
        assert task["reference"][-1]["arguments"]["curb65"] == task["truth"]["curb65"]
        expected = "home" if task["truth"]["curb65"] <= 1 else "ward" if task["truth"]["curb65"] == 2 else "icu"
        assert task["truth"]["disposition"] == expected
        if task["scenario"] == "severe":
            assert case["age"] >= 66 and task["truth"]["curb65"] >= 2


def test_generated_instruments_match_the_declaration(build):
    from medgym.dsl.support import load_sibling

    module = load_sibling(str(build / "manifest.json"), "instruments.py")
    result = module.FUNCTIONS["curb65"](confusion=False, bun=19, respiratory_rate=30, sbp=90, dbp=61, age=64)
    assert result["total"] == 1 and result["band"] == "low"  # bun > 19 is strict; rr >= 30 counts
    assert result["points"] == [{"criterion": "respiratory_rate >= 30", "points": 1}]


def test_deterministic_output(tmp_path, build):
    again = tmp_path / "again"
    compile_specs(MINI, again, gate=None)
    for name in ("manifest.json", "instruments.py", "clinic/env.py", "clinic/tasks/train.jsonl", "clinic/tools.json"):
        assert (again / name).read_text() == (build / name).read_text(), name


def test_adding_tasks_never_moves_old_ones(tmp_path, build):
    specs = tmp_path / "specs"
    shutil.copytree(MINI, specs)
    family = specs / "domains/clinic/tasks/cap.yaml"
    family.write_text(family.read_text().replace("count: 40", "count: 60"))
    out = tmp_path / "more"
    compile_specs(specs, out, gate=None)
    old = {t["task_id"]: t for t in tasks(build)}
    new = {t["task_id"]: t for t in tasks(out)}
    assert len(new) == 61
    for task_id, task in old.items():
        assert new[task_id]["split"] == task["split"] and new[task_id]["case"] == task["case"]
    assert split_of("cap_disposition", 3, 7) == split_of("cap_disposition", 3, 7)


def test_recompiling_unchanged_specs_is_cached(tmp_path):
    out = tmp_path / "b"
    first = compile_specs(MINI, out, gate=None)
    second = compile_specs(MINI, out, gate=None)
    assert not first.cached and second.cached and second.manifest == first.manifest


def test_static_case_is_compiled(build):
    (case,) = [t for t in tasks(build) if t["family"] == "confused_elder"]
    assert case["truth"] == {"curb65": 2, "disposition": "ward"}
    assert case["rubric"]["process"]["require"][0] == {"tool": "ask_patient", "args": {"topic": "confusion"}}


# -- the shipped specs as a whole -----------------------------------------------------------------------------------

def test_shipped_manifest_counts(shipped_build):
    counts = json.loads((shipped_build / "manifest.json").read_text())["counts"]
    assert counts["domains"] >= 2 and counts["tools"] >= 24 and counts["instruments"] >= 8 and counts["tasks"] >= 400
    for name, domain in json.loads((shipped_build / "manifest.json").read_text())["domains"].items():
        assert domain["tools"] >= 12, name
        assert sum(domain["splits"].values()) == domain["tasks"]


def test_every_shipped_tools_json_is_an_openai_tool_list(shipped_build):
    for folder in (p for p in shipped_build.iterdir() if (p / "tools.json").exists()):
        tools = json.loads((folder / "tools.json").read_text())
        jsonschema.validate(tools, OPENAI_TOOLS)
        for tool in tools:
            parameters = tool["function"]["parameters"]
            jsonschema.Draft202012Validator.check_schema(parameters)
            assert set(parameters.get("required", [])) <= set(parameters["properties"])


def test_shipped_python_tools_are_at_most_a_tenth(shipped_build):
    kinds = [t["kind"] for d in ("triage", "clinical_diagnosis")
             for t in json.loads((shipped_build / d / "domain.json").read_text())["tools"]]
    assert kinds.count("python") <= len(kinds) / 10
    assert {"lookup", "action", "instrument", "table", "simulator", "kb_search", "submit"} <= set(kinds)
