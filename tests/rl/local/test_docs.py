"""docs/training.md documents every key of the training config the local backend reads."""
from __future__ import annotations

from pathlib import Path

from medgym.rl.config import TrainConfig

DOC = Path(__file__).resolve().parents[3] / "docs" / "training.md"


def test_every_config_key_is_in_the_reference():
    text = DOC.read_text(encoding="utf-8")
    missing = [f"{section}.{name}" for section, field in TrainConfig.model_fields.items()
               if section not in ("backend", "openrlhf")  # the OpenRLHF backend documents its own section
               for name in field.annotation.model_fields if f"`{section}.{name}`" not in text]
    assert not missing, f"add these keys to {DOC.name}: {missing}"
