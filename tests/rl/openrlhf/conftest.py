"""Fixtures for the OpenRLHF adapter tests: test-only GPU stand-ins, a compiled build, a tiny model and tokenizer.

CI installs ``openrlhf==0.11.2`` with ``--no-deps`` plus ``medgym[openrlhf-cpu]``; the GPU-only packages it
imports at module level (``flash_attn``, ``deepspeed``, ``vllm``) are replaced by ``stubs/`` for whichever of
them is not installed. Each test module skips, with the install line, when OpenRLHF cannot be imported.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
STUBS = HERE / "stubs"
ROOT = HERE.parents[2]
MINI = ROOT / "tests" / "compiler" / "fixtures" / "mini"

_missing = [name for name in ("flash_attn", "deepspeed", "vllm") if importlib.util.find_spec(name) is None]
if _missing and str(STUBS) not in sys.path:
    sys.path.append(str(STUBS))  # after site-packages: a real install always wins

CHAT_TEMPLATE = (
    "{%- if tools %}"
    "{{- '<|im_start|>system\\n' }}"
    "{%- if messages[0].role == 'system' %}{{- messages[0].content + '\\n\\n' }}{%- endif %}"
    "{{- '# Tools\\n\\n<tools>' }}"
    "{%- for tool in tools %}{{- '\\n' + (tool | tojson) }}{%- endfor %}"
    "{{- '\\n</tools>\\n\\nCall a tool as <tool_call>{\"name\": ..., \"arguments\": {...}}</tool_call><|im_end|>\\n' }}"
    "{%- elif messages[0].role == 'system' %}"
    "{{- '<|im_start|>system\\n' + messages[0].content + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- for message in messages %}"
    "{%- if message.role == 'system' %}"
    "{%- elif message.role == 'tool' %}"
    "{%- if loop.index0 == 0 or messages[loop.index0 - 1].role != 'tool' %}{{- '<|im_start|>user' }}{%- endif %}"
    "{{- '\\n<tool_response>\\n' + message.content + '\\n</tool_response>' }}"
    "{%- if loop.last or messages[loop.index0 + 1].role != 'tool' %}{{- '<|im_end|>\\n' }}{%- endif %}"
    "{%- else %}"
    "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
"""A Qwen2.5-style ChatML template: Hermes tools in the system turn, tool results as <tool_response> user turns."""


def _corpus() -> list[str]:
    texts = [p.read_text(encoding="utf-8") for p in sorted(MINI.rglob("*")) if p.suffix in {".md", ".yaml", ".score"}]
    return texts + ['<tool_call>{"name": "submit_answer", "arguments": {"patient_id": "P-1"}}</tool_call>'] * 4


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory) -> Path:
    """A tiny random Llama (hidden 32, 2 layers) and a byte-level BPE tokenizer with a chat template, on disk."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=1024, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    core.train_from_iterator(_corpus(), trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    tokenizer.chat_template = CHAT_TEMPLATE
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         num_key_value_heads=2, intermediate_size=64, max_position_embeddings=8192,
                         initializer_range=0.3, pad_token_id=tokenizer.pad_token_id,
                         eos_token_id=tokenizer.eos_token_id, tie_word_embeddings=False)
    out = tmp_path_factory.mktemp("tiny") / "model"
    LlamaForCausalLM(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tokenizer(tiny_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_dir)


@pytest.fixture
def tiny_actor(tiny_dir):
    """Factory: an OpenRLHF ``Actor`` loading the tiny model from disk, in float32 (``seed`` perturbs it)."""

    def make(seed: int | None = None):
        import torch
        from openrlhf.models import Actor

        actor = Actor(str(tiny_dir), attn_implementation="sdpa", param_dtype="bf16")
        actor.model.float()
        if seed is not None:
            g = torch.Generator().manual_seed(seed)
            with torch.no_grad():
                for p in actor.model.parameters():
                    p.add_(torch.randn(p.shape, generator=g) * 0.05)
        return actor

    return make


@pytest.fixture
def train_config():
    """Factory: a ``TrainConfig`` for the OpenRLHF backend, with overrides per section."""

    def make(**sections):
        from medgym.rl.config import TrainConfig

        data = {"backend": "openrlhf", "openrlhf": {"pretrain": "/models/Qwen2.5-7B-Instruct"}}
        for name, values in sections.items():
            data.setdefault(name, {}).update(values)
        return TrainConfig.model_validate(data)

    return make


class CpuStrategy:
    """The parts of OpenRLHF's ``DeepspeedStrategy`` that ``ActorPPOTrainer.training_step`` calls, on CPU."""

    ring_attn_group = None

    def __init__(self):
        self.losses = []

    def backward(self, loss, model, optimizer):
        self.losses.append(loss.detach())
        loss.backward()

    def optimizer_step(self, optimizer, model, scheduler, name="model"):
        optimizer.step()
        optimizer.zero_grad()

    def get_grad_norm(self, model):
        return 0.0


@pytest.fixture
def make_trainer(tokenizer):
    """Factory: medgym's ``TTOPDActorTrainer`` around an OpenRLHF ``Actor``, built without DeepSpeed or a GPU."""

    def make(actor, *, kl_coef: float = 4.0, context_limit: int | None = None, max_turns: int | None = None):
        from types import SimpleNamespace

        import torch
        from openrlhf.models import PolicyLoss

        from medgym.rl.openrlhf import ttopd

        args = SimpleNamespace(actor=SimpleNamespace(entropy_coef=None, aux_loss_coef=0),
                               algo=SimpleNamespace(kl=SimpleNamespace(use_loss=False, init_coef=0)),
                               train=SimpleNamespace(dynamic_batch_enable=False))
        trainer = object.__new__(ttopd.TTOPDActorTrainer)
        trainer.__dict__.update(actor=actor, args=args, strategy=CpuStrategy(), ema_model=None, aux_loss=False,
                                actor_optim=torch.optim.SGD(actor.parameters(), lr=0.1),
                                actor_scheduler=SimpleNamespace(get_last_lr=lambda: [0.1]),
                                actor_loss_fn=PolicyLoss(), replay_buffer=None)
        settings = ttopd.TTOPDSettings(kl_coef=kl_coef, context_limit=context_limit, max_turns=max_turns)
        trainer.attach_tt_opd(settings, settings.schedule(), ttopd.HintTokens(tokenizer) if kl_coef else None)
        return trainer

    return make
