"""The typed build (medgym.dsl.build) and the one-place-per-concept tables: tool kinds and reward components.

A tool kind is one unit: its spec value (`ToolKind`), its compiled model (`TOOL_MODELS`), its compile check
(`compiler.tools._KIND_CHECKS`) and its executor handler (`runtime.executor._HANDLERS`); the reward components
are declared once (`dsl.components.COMPONENTS`) and read by the spec weights, the reward engine, the CLI and
the generated env card.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from medgym.compiler.tools import _KIND_CHECKS
from medgym.dsl import build as b
from medgym.dsl.components import COMPONENT_NAMES, COMPONENTS, component_table
from medgym.dsl.models import RewardWeights, ToolKind
from medgym.runtime.build import Build, BuildError
from medgym.runtime.executor import _HANDLERS
from medgym.runtime.rewards import _SCORERS


def test_every_tool_kind_has_a_model_a_compile_check_and_a_handler():
    kinds = [k.value for k in ToolKind]
    assert list(b.TOOL_MODELS) == kinds
    assert sorted(_KIND_CHECKS) == sorted(kinds) and sorted(_HANDLERS) == sorted(kinds)
    for kind, model in b.TOOL_MODELS.items():
        assert model.model_fields["kind"].default == kind
        assert callable(_KIND_CHECKS[kind]) and callable(_HANDLERS[kind])


def test_a_kind_table_out_of_step_fails_naming_the_kind():
    full = {k.value: object() for k in ToolKind}
    assert b.kind_table(full, "t") == full
    with pytest.raises(RuntimeError, match=r"missing \['python'\]"):
        b.kind_table({k: v for k, v in full.items() if k != "python"}, "handlers")
    with pytest.raises(RuntimeError, match=r"unknown \['webhook'\]"):
        b.kind_table({**full, "webhook": object()}, "handlers")


def test_the_reward_components_are_declared_once():
    assert list(_SCORERS) == list(COMPONENT_NAMES)
    weights = RewardWeights()
    assert list(RewardWeights.model_fields) == list(COMPONENT_NAMES)
    assert {c.name: getattr(weights, c.name) for c in COMPONENTS} == {c.name: c.weight for c in COMPONENTS}
    from medgym.cli.evaluate import SHORT

    assert list(SHORT) == list(COMPONENT_NAMES) and len(set(SHORT.values())) == len(SHORT)
    with pytest.raises(RuntimeError, match=r"missing \['assertion'\]"):
        component_table({name: 1 for name in COMPONENT_NAMES if name != "assertion"}, "scorers")


def test_a_rubric_has_one_section_per_component_that_reads_one():
    """The spec's rubric (YAML) and the compiled one (tasks/*.jsonl) have exactly the components' sections."""
    from medgym.dsl.components import RUBRIC_SECTIONS
    from medgym.dsl.models import Rubric as SpecRubric

    assert list(SpecRubric.model_fields) == list(RUBRIC_SECTIONS) == list(b.Rubric.model_fields)


def test_the_env_card_names_every_component(mini_build):
    card = (mini_build / "clinic" / "env.py").read_text()
    assert ", ".join(COMPONENT_NAMES) in card


def test_the_runtime_reads_typed_models(mini_build):
    domain = Build.open(mini_build).domain("clinic")
    assert isinstance(domain.spec, b.Domain) and isinstance(domain.build.manifest, b.Manifest)
    task = domain.tasks("train")[0]
    assert isinstance(task, b.Task) and isinstance(task.rubric, b.Rubric)
    assert all(isinstance(step, b.Step) for step in task.reference)
    for tool in domain.tools.values():
        assert type(tool.spec) is b.TOOL_MODELS[tool.kind]
    assert all(isinstance(t, b.Table) for t in domain.build.tables.values())
    assert all(isinstance(i, b.InstrumentInfo) for i in domain.build.instruments_meta.values())


def test_the_compiler_writes_exactly_the_models(mini_build):
    """Each file holds what its model dumps: nothing the runtime would drop or refuse."""
    for path, model in [("manifest.json", b.Manifest), ("clinic/domain.json", b.Domain)]:
        data = json.loads((mini_build / path).read_text())
        assert model.model_validate(data).model_dump(mode="json") == data
    for line in (mini_build / "clinic" / "tasks" / "train.jsonl").read_text().splitlines():
        assert b.Task.model_validate_json(line).model_dump(mode="json") == json.loads(line)


@pytest.fixture
def copy_of(mini_build, tmp_path) -> Path:
    out = tmp_path / "build"
    shutil.copytree(mini_build, out)
    return out


def _rewrite(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def test_an_old_build_is_refused_naming_the_command(copy_of):
    _rewrite(copy_of / "manifest.json", lambda m: m.update(format_version=1))
    with pytest.raises(BuildError, match=r"build format 1, this medgym reads format 3: recompile with `medgym compile"):
        Build.open(copy_of)


def test_a_damaged_domain_is_refused_naming_file_and_field(copy_of):
    def drop_path(domain):
        lookup = next(t for t in domain["tools"] if t["kind"] == "lookup")
        del lookup["path"]
    _rewrite(copy_of / "clinic" / "domain.json", drop_path)
    with pytest.raises(BuildError, match=r"domain\.json does not match build format 3 \(tools\.\d+\.lookup\.path: "
                                         r"Field required\); recompile with `medgym compile"):
        Build.open(copy_of).domain("clinic")


def test_a_damaged_task_is_refused(copy_of):
    path = copy_of / "clinic" / "tasks" / "train.jsonl"
    lines = path.read_text().splitlines()
    task = json.loads(lines[0])
    task["rubric"]["accuracy"]["curb65"]["match"] = "approximately"
    path.write_text("\n".join([json.dumps(task), *lines[1:]]) + "\n")
    with pytest.raises(BuildError, match=r"train\.jsonl does not match build format 3 \(rubric\.accuracy\.curb65\.match"):
        Build.open(copy_of).domain("clinic").tasks("train")


def test_a_domain_without_a_reward_block_takes_default_weights_that_sum_to_one(tmp_path):
    from medgym.compiler.pipeline import check_specs

    specs = tmp_path / "mini"
    shutil.copytree(Path(__file__).parent / "compiler" / "fixtures" / "mini", specs)
    domain = next(specs.rglob("domain.yaml"))
    text = domain.read_text()
    assert "\nreward:" in text
    domain.write_text("\n".join(line for line in text.splitlines() if not line.startswith("reward:")) + "\n")
    assert [str(e) for e in check_specs(specs)] == []
    core = [c.weight for c in COMPONENTS if not c.optional]
    assert abs(sum(core) - 1.0) < 1e-9
