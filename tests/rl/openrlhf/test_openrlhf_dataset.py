"""The exported prompt dataset, read back by OpenRLHF's own loader (``blending_datasets``) and ``PromptDataset``."""
from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

REASON = "openrlhf is not importable: pip install --no-deps openrlhf==0.11.2 && pip install -e '.[openrlhf-cpu]'"
pytest.importorskip("torch")
datasets_utils = pytest.importorskip("openrlhf.datasets.utils", reason=REASON)
prompts_dataset = pytest.importorskip("openrlhf.datasets.prompts_dataset", reason=REASON)

from medgym.rl.config import TrainConfig  # noqa: E402
from medgym.rl.openrlhf.dataset import LABEL_FORMAT, LabelError, TaskLabel, export_prompts  # noqa: E402
from medgym.runtime.build import Build  # noqa: E402


class _Strategy:
    """What OpenRLHF's loaders read from a DeepspeedStrategy."""

    def __init__(self, **data):
        self.args = SimpleNamespace(use_ms=False, data=SimpleNamespace(**data))

    def print(self, *args):
        pass

    def is_rank_0(self):
        return True


@pytest.fixture
def hf_cache(tmp_path, monkeypatch):
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-datasets")


def test_openrlhf_reads_the_exported_dataset(mini_build, tokenizer, tmp_path, hf_cache):
    out = tmp_path / "prompts.jsonl"
    config = TrainConfig.model_validate({"reward": {"mode": "accuracy", "cosine": False}, "rollout": {"max_turns": 6}})
    tasks = Build.open(mini_build).domain("clinic").tasks("train")
    assert export_prompts(mini_build, out, split="train", config=config) == len(tasks)

    strategy = _Strategy(input_key="input", label_key="label", apply_chat_template=True)
    data = datasets_utils.blending_datasets(str(out), None, strategy)  # OpenRLHF's --data.prompt_dataset loader
    dataset = prompts_dataset.PromptDataset(data, tokenizer, strategy)
    assert len(dataset) == len(tasks)
    datasource, prompt, label, images = dataset[0]
    assert datasource == "clinic" and images is None
    assert prompt.startswith("<|im_start|>system\n") and prompt.endswith("<|im_start|>assistant\n")
    assert tasks[0].ticket in prompt
    parsed = TaskLabel.parse(label)
    assert parsed.task_id == tasks[0].task_id and parsed.domain == "clinic" and parsed.split == "train"
    assert parsed.seed == tasks[0].seed and parsed.build == str(mini_build.resolve())
    assert parsed.build_hash == Build.open(mini_build).manifest.spec_hash
    assert (parsed.reward_mode, parsed.cosine, parsed.max_turns) == ("accuracy", None, 6)
    assert parsed.hint_set().corrective == ("Measure the urea before scoring CURB-65.",)
    datasources, prompts, labels, _ = dataset.collate_fn([dataset[i] for i in range(3)])
    assert len({TaskLabel.parse(x).task_id for x in labels}) == 3 and datasources == ["clinic"] * 3


def test_rows_mode_repeats_tasks_in_a_seeded_order(mini_build, tmp_path):
    tasks = len(Build.open(mini_build).domain("clinic").tasks("train"))
    a, b, c = (tmp_path / f"{n}.jsonl" for n in "abc")
    assert export_prompts(mini_build, a, rows=tasks + 5, seed=1) == tasks + 5
    export_prompts(mini_build, b, rows=tasks + 5, seed=1)
    export_prompts(mini_build, c, rows=tasks + 5, seed=2)
    ids = [TaskLabel.parse(json.loads(line)["label"]).task_id for line in a.read_text().splitlines()]
    assert a.read_text() == b.read_text() != c.read_text()
    assert len(set(ids[:tasks])) == tasks  # every task once before any repeats
    with pytest.raises(ValueError, match="no tasks in split 'train'"):
        export_prompts(mini_build, a, limit=0)


def test_labels_refuse_other_formats():
    with pytest.raises(LabelError, match="not a medgym OpenRLHF label"):
        TaskLabel.parse('{"answer": "42"}')
    with pytest.raises(LabelError, match="not JSON"):
        TaskLabel.parse("{broken")
    with pytest.raises(LabelError, match="unknown keys"):
        TaskLabel.parse({"format": LABEL_FORMAT, "task_id": "t", "extra": 1})


def test_export_command(mini_build, tmp_path):
    from typer.testing import CliRunner

    import medgym.cli.export  # noqa: F401  (registers `medgym export`)
    from medgym.cli._app import app

    out = tmp_path / "val.jsonl"
    result = CliRunner().invoke(app, ["export", "openrlhf", "--split", "val", "--out", str(out), "--build",
                                      str(mini_build), "--domain", "clinic"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    tasks = Build.open(mini_build).domain("clinic").tasks("val")
    assert summary["rows"] == len(out.read_text().splitlines()) == len(tasks)
    bad = CliRunner().invoke(app, ["export", "openrlhf", "--out", str(out), "--build", str(mini_build),
                                   "--domain", "nosuch"])
    assert bad.exit_code == 2 and "no domain 'nosuch'" in bad.output
