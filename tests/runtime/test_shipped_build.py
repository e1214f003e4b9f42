"""The shipped specs as a whole: the counts the spine asks for and valid OpenAI tool lists."""
import json

import jsonschema
from jsonschema.validators import Draft202012Validator

OPENAI_TOOL_LIST = {
    "type": "array", "minItems": 1,
    "items": {"type": "object", "required": ["type", "function"], "additionalProperties": False,
              "properties": {"type": {"const": "function"},
                             "function": {"type": "object", "required": ["name", "description", "parameters"],
                                          "additionalProperties": False,
                                          "properties": {"name": {"type": "string", "pattern": "^[a-zA-Z0-9_-]{1,64}$"},
                                                         "description": {"type": "string", "minLength": 1},
                                                         "parameters": {"type": "object"}}}}},
}


def test_manifest_counts(shipped_build):
    manifest = json.loads((shipped_build / "manifest.json").read_text())
    counts = manifest["counts"]
    assert counts["domains"] >= 2 and counts["tools"] >= 24 and counts["instruments"] >= 8 and counts["tasks"] >= 400
    for name, domain in manifest["domains"].items():
        assert domain["tools"] >= 12, name
        assert sum(domain["splits"].values()) == domain["tasks"]


def test_every_tools_json_is_a_valid_openai_tool_list(shipped_build):
    for folder in (p for p in shipped_build.iterdir() if (p / "tools.json").exists()):
        tools = json.loads((folder / "tools.json").read_text())
        jsonschema.validate(tools, OPENAI_TOOL_LIST)
        for tool in tools:
            parameters = tool["function"]["parameters"]
            Draft202012Validator.check_schema(parameters)
            assert parameters["type"] == "object" and set(parameters.get("required", [])) <= set(parameters["properties"])


def test_python_tools_are_at_most_a_tenth(shipped_build):
    kinds = [t["kind"] for d in ("triage", "clinical_diagnosis")
             for t in json.loads((shipped_build / d / "domain.json").read_text())["tools"]]
    assert kinds.count("python") <= len(kinds) / 10
    assert {"lookup", "action", "instrument", "table", "simulator", "kb_search", "submit"} <= set(kinds)
