"""The JSON Schema (`medgym schema`) covers the checklist grader and dataset-backed families: the fixture
families validate, and each construct's required keys are required."""
from pathlib import Path

import jsonschema
import pytest
import yaml

from medgym.dsl.models import json_schemas

FIXTURES = Path(__file__).resolve().parents[1] / "compiler" / "fixtures"
FILM = FIXTURES / "report" / "domains" / "cxr" / "tasks" / "chest_film.yaml"
BANK = FIXTURES / "qa" / "domains" / "quiz" / "tasks" / "bank.yaml"


@pytest.fixture(scope="module")
def family_schema():
    return jsonschema.Draft202012Validator(json_schemas()["task_family"])


def messages(validator, data) -> list[str]:
    """Every error message, those inside anyOf branches (an optional block) included."""
    out, stack = [], list(validator.iter_errors(data))
    while stack:
        error = stack.pop()
        out.append(error.message)
        stack.extend(error.context or [])
    return out


def load(path: Path) -> dict:
    data = yaml.safe_load(path.read_text())
    data.setdefault("domain", path.parents[1].name)
    return data


@pytest.mark.parametrize("path", [FILM, BANK], ids=["checklist", "dataset"])
def test_the_fixture_families_validate(family_schema, path):
    assert list(family_schema.iter_errors(load(path))) == []


def test_a_checklist_item_needs_its_truth(family_schema):
    data = load(FILM)
    del data["rubric"]["accuracy"]["report"]["items"][0]["present"]
    found = messages(family_schema, data)
    assert any("'present' is a required property" in m for m in found), found


def test_a_dataset_needs_licence_and_source(family_schema):
    data = load(BANK)
    del data["dataset"]["licence"]
    data["dataset"]["split_map"] = {"dev": "training"}
    found = messages(family_schema, data)
    assert any("'licence' is a required property" in m for m in found), found
    assert any("'training' is not one of" in m for m in found), found
