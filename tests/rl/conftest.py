"""Shared pieces for the RL math tests: a tiny random causal LM built from a config, and a right-padded batch.

The rl extra (torch, transformers) is optional; without it these tests are not collected.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

if importlib.util.find_spec("torch") is None or importlib.util.find_spec("transformers") is None:
    collect_ignore_glob = ["test_*.py"]  # pip install 'medgym[rl]' to run them

VOCAB = 64


def _tiny_lm(seed: int = 0, init: float = 0.3):
    """A 2-layer Llama with a 64-token vocabulary, weights drawn from a fixed seed.

    ``init`` (the initializer range) is larger than a real model's 0.02 so the next-token distributions are
    peaked and two seeds give measurably different models.
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        initializer_range=init,
        attn_implementation="eager",
    )
    return LlamaForCausalLM(config).eval()


@pytest.fixture
def tiny_lm():
    """Factory: ``tiny_lm(seed=0)`` builds a fresh tiny causal LM."""
    return _tiny_lm


@pytest.fixture(scope="session", autouse=True)
def _few_threads():
    """Tiny models run fastest on few threads; keeps the suite quick on small CI machines."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(min(before, 2))
    yield
    torch.set_num_threads(before)


@pytest.fixture
def batch():
    """A right-padded batch of 3 multi-turn trajectories: ids, attention mask, assistant mask, prompt lengths.

    Row 0: prompt 3 | assistant 4 | tool 2 | assistant 3 | pad 2
    Row 1: prompt 5 | assistant 2 | tool 3 | assistant 2 | tool 1 | assistant 1 | pad 0
    Row 2: prompt 2 | assistant 6 | pad 6
    """
    import torch

    g = torch.Generator().manual_seed(1234)
    layout = [
        [("p", 3), ("a", 4), ("t", 2), ("a", 3), ("x", 2)],
        [("p", 5), ("a", 2), ("t", 3), ("a", 2), ("t", 1), ("a", 1)],
        [("p", 2), ("a", 6), ("x", 6)],
    ]
    length = 14
    ids = torch.randint(1, VOCAB, (3, length), generator=g)
    attention = torch.ones(3, length, dtype=torch.long)
    assistant = torch.zeros(3, length, dtype=torch.long)
    prompt_lens = torch.tensor([3, 5, 2])
    for row, parts in enumerate(layout):
        col = 0
        for kind, n in parts:
            if kind == "a":
                assistant[row, col : col + n] = 1
            if kind == "x":
                ids[row, col : col + n] = 0
                attention[row, col : col + n] = 0
            col += n
        assert col == length
    return {"input_ids": ids, "attention_mask": attention, "assistant_mask": assistant, "prompt_lens": prompt_lens}


# -- the local trainer and model-backed agents (tests/rl/local, tests/rl/test_agents.py) --------------------------

SUBMIT = '<tool_call>{"name": "submit_answer", "arguments": {"curb65": 1, "disposition": "home"}}</tool_call>'
"""What the taught model (``submit_model_dir``) answers to any mini-domain ticket."""


@pytest.fixture(scope="session")
def submit_call() -> str:
    """``SUBMIT``, for test modules (which cannot import this conftest by name)."""
    return SUBMIT


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A 2-layer, 32-wide random Llama and a 2k-token BPE trained on the shipped specs, saved as a model folder."""
    from medgym.rl.local.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="session")
def submit_model_dir(tmp_path_factory, mini_build, tiny_model_dir) -> Path:
    """The tiny model trained until its greedy answer to a mini-domain episode's opening is ``SUBMIT``.

    Trained on the openings exactly as the chat template renders them with the domain's tools, so both a
    server applying the template itself and the trainer's own rendering reach the same prompt tokens.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from medgym.runtime.build import Build

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    domain = Build.open(mini_build).domain("clinic")
    target = tokenizer(SUBMIT + "<|im_end|>", add_special_tokens=False)["input_ids"]
    rows = []
    for task in domain.tasks("train")[:1] + domain.tasks("test")[:2]:  # the tasks the agent tests play
        messages = [{"role": "system", "content": domain.spec.policy}, {"role": "user", "content": task.ticket}]
        text = tokenizer.apply_chat_template(messages, tools=domain.openai_tools(), tokenize=False,
                                             add_generation_prompt=True)
        prompt = tokenizer(text, add_special_tokens=False)["input_ids"]
        rows.append((prompt, target))
    torch.manual_seed(0)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(200):
        for prompt, answer in rows:
            ids = torch.tensor([prompt + answer])
            labels = torch.tensor([[-100] * len(prompt) + answer])
            loss = model(input_ids=ids, labels=labels).loss
            loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if loss.item() < 0.01:
            break
    model.eval()
    out = tmp_path_factory.mktemp("submit") / "model"
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
