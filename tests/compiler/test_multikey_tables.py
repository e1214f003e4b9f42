"""Multi-key tables: several key columns, unordered pairs, class rows, per-row sources; called as a function
and looked up by a table tool; the misuses the compiler rejects at their line and column."""
from pathlib import Path

import pytest

from medgym.compiler.pipeline import check_specs
from medgym.dsl.models import Table, json_schemas
from medgym.dsl.support import match_row, table_match
from spec_edits import edited_copy

PAIRS = Path(__file__).parent / "fixtures" / "pairs"
TABLE = "domains/pharmacy/tables/interactions.yaml"
TOOLS = "domains/pharmacy/tools.yaml"
REVIEW = "domains/pharmacy/tasks/review.yaml"
CLASSES = {"nsaid": ["ibuprofen", "naproxen"], "anticoagulant": ["warfarin", "apixaban"]}
ROWS = ((("nsaid", "anticoagulant"), {"severity": "major", "by": "class"}),
        (("ibuprofen", "warfarin"), {"severity": "contraindicated", "by": "pair"}),
        (("warfarin", "fluconazole"), {"severity": "major", "by": "azole"}))


def broken(tmp_path: Path, file: str, old: str, new: str) -> Path:
    return edited_copy(PAIRS, tmp_path, file, old, new)


def first_error(tmp_path, file, old, new) -> str:
    errors = check_specs(broken(tmp_path, file, old, new))
    assert errors, "the broken spec compiled"
    return str(errors[0]).replace(str(tmp_path / "specs") + "/", "")


def test_the_fixture_is_valid():
    assert check_specs(PAIRS) == []


def test_the_fixture_passes_the_gate(pairs_build):
    assert (pairs_build / "pharmacy" / "domain.json").exists()


def test_a_pair_matches_in_either_order_when_unordered():
    assert match_row(ROWS, ("fluconazole", "warfarin"), True, CLASSES) == (ROWS[2][1], "exact")
    assert match_row(ROWS, ("fluconazole", "warfarin"), False, CLASSES) is None
    assert match_row(ROWS, (" Warfarin ", "FLUCONAZOLE"), False, CLASSES)[0]["by"] == "azole"  # text is folded


def test_a_class_row_covers_its_members_and_a_named_pair_wins():
    assert match_row(ROWS, ("apixaban", "naproxen"), True, CLASSES) == (ROWS[0][1], "class")
    assert match_row(ROWS, ("warfarin", "ibuprofen"), True, CLASSES) == (ROWS[1][1], "exact")
    assert match_row(ROWS, ("apixaban", "metformin"), True, CLASSES) is None
    assert match_row(ROWS, ("nsaid", "anticoagulant"), False, CLASSES)[1] == "exact"  # a class named outright


def test_a_table_called_as_a_function_without_a_row():
    assert table_match("t", ROWS, ("naproxen", "warfarin"), True, CLASSES)["severity"] == "major"
    with pytest.raises(KeyError, match="no row for metformin \\+ amlodipine"):
        table_match("t", ROWS, ("metformin", "amlodipine"), True, CLASSES)
    assert table_match("t", ROWS, ("metformin", "amlodipine"), True, CLASSES, lenient=True) is None


def test_the_truth_uses_the_table_by_class_and_in_reverse_order(pairs_build):
    import json

    tasks = [json.loads(line) for line in (pairs_build / "pharmacy" / "tasks" / "train.jsonl").read_text().splitlines()]
    expected = {"nsaid_anticoagulant": "major", "ssri_anticoagulant": "moderate", "azole_warfarin": "major",
                "statin_macrolide": "contraindicated", "potassium": "moderate"}
    assert {t["scenario"] for t in tasks} == set(expected)
    for task in tasks:
        assert task["truth"]["severity"] == expected[task["scenario"]]
        assert set(task["truth"]["interacting_pair"]) <= set(task["case"]["medications"])


def test_json_schema_has_the_multi_key_table():
    schemas = json_schemas()
    table = schemas["table"]["properties"]
    assert {"unordered", "classes"} <= set(table)
    assert {"type": "array"} in [{"type": s.get("type")} for s in table["key"]["anyOf"]]
    tool = schemas["tools"]["$defs"]["Tool"]["properties"]["key_param"]
    assert any(s.get("type") == "array" for s in tool["anyOf"])
    model = Table(name="t", source="a source", key=["a", "b"], unordered=True, columns={"a": "text", "b": "text"},
                  rows=[{"a": "x", "b": "y", "source": "row source"}])
    assert model.keys == ["a", "b"]


MISUSES = [
    ("unknown_key_column", TABLE, "key: [drug_a, drug_b]", "key: [drug_a, drug_c]",
     f"{TABLE}:4:15: key 'drug_c' is not a column (did you mean 'drug_b'?)"),
    ("unordered_three_keys", TABLE, "key: [drug_a, drug_b]\nunordered: true", "key: [drug_a, drug_b, severity]\nunordered: true",
     f"{TABLE}:5:12: unordered needs exactly two key columns (a pair)"),
    ("duplicate_pair_reversed", TABLE, "  - drug_a: simvastatin\n    drug_b: clarithromycin",
     "  - drug_a: fluconazole\n    drug_b: warfarin", f"{TABLE}:40:13: duplicate key 'fluconazole + warfarin'"),
    ("key_param_unknown", TOOLS, "key_param: [drug_a, drug_b]", "key_param: [drug_a, drug_c]",
     f"{TOOLS}:10:23: key_param 'drug_c' is not a parameter (did you mean 'drug_b'?)"),
    ("key_param_one_of_two", TOOLS, "key_param: [drug_a, drug_b]", "key_param: drug_a",
     f"{TOOLS}:10:14: table drug_interactions has 2 key columns (drug_a, drug_b): give key_param one param for each"),
    ("call_on_unknown_key", REVIEW, "drug_interactions(drug_b, drug_a)", "drug_interactions(drug_a=drug_b, drug_c=drug_a)",
     f"{REVIEW}:38:55: drug_interactions() has no parameter 'drug_c' (did you mean 'drug_b'?)"),
    ("call_with_one_key", REVIEW, "drug_interactions(drug_b, drug_a)", "drug_interactions(drug_b)",
     f"{REVIEW}:38:15: drug_interactions() needs 'drug_b'"),
    ("classes_on_one_key", TABLE, "key: [drug_a, drug_b]\nunordered: true", "key: drug_a",
     f"{TABLE}:5:1: classes match the key cells of a multi-key table (`key: [a, b]`); a one-key table lists a row "
     "per member"),
    ("row_source_not_text", TABLE, 'source: "MHRA Drug Safety Update, 2012 (simvastatin interactions)"', "source: 2012",
     f"{TABLE}:45:13: a row's source is its provenance, a text"),
]


@pytest.mark.parametrize("name, file, old, new, expected", MISUSES, ids=[m[0] for m in MISUSES])
def test_multi_key_misuse_is_located(tmp_path, name, file, old, new, expected):
    assert first_error(tmp_path, file, old, new).startswith(expected)


def test_the_fixture_files_validate_against_their_json_schemas():
    import jsonschema
    import yaml

    schemas = json_schemas()
    jsonschema.validate(yaml.safe_load((PAIRS / TABLE).read_text()), schemas["table"])
    jsonschema.validate(yaml.safe_load((PAIRS / TOOLS).read_text()), schemas["tools"])
    jsonschema.validate(yaml.safe_load((PAIRS / TOOLS).read_text())[1], schemas["tool"])  # the one-tool schema too
    series = Path(__file__).parent / "fixtures" / "series" / "domains" / "ward"
    jsonschema.validate(yaml.safe_load((series / "record.yaml").read_text()), schemas["record"])
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**yaml.safe_load((PAIRS / TABLE).read_text()), "unordered": "yes"}, schemas["table"])
