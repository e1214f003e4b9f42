"""The example training configs stay valid as the config model changes."""
from pathlib import Path

import pytest

from medgym.rl.config import load_config

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_config_loads(path):
    config = load_config(path)
    assert config.backend in ("local", "openrlhf")
    assert config.rollout.group_size >= 2  # GRPO needs a group to compare within


def test_the_openrlhf_example_is_the_runbook_config():
    runbook = (Path(__file__).resolve().parents[2] / "docs" / "openrlhf-runbook.md").read_text()
    example = (Path(__file__).resolve().parents[2] / "examples" / "qwen7b-ttopd-openrlhf.yaml").read_text()
    assert example.split("\n", 1)[1] in runbook
