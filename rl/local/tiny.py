"""A tiny randomly initialised causal LM with a tokenizer trained on the project's own text.

For tests, benchmarks and smoke runs of the trainer where a real model is too slow: nothing is downloaded. The
tokenizer is a byte-level BPE trained with ``tokenizers`` on the shipped specs (policies, tool and task YAML),
wrapped as a ``PreTrainedTokenizerFast`` with ChatML special tokens and a chat template that renders
``tools=`` the Hermes way (Qwen2.5-style), so the trainer's tool-supporting template path is exercised.
"""
from __future__ import annotations

from pathlib import Path

__all__ = ["CHAT_TEMPLATE", "build_tiny_model", "spec_texts", "train_tokenizer"]

SPECIAL_TOKENS = ["<|pad|>", "<|im_start|>", "<|im_end|>"]

CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{%- if loop.first and tools %}"
    "{{- '<|im_start|>system\\n' + (message.content if message.role == 'system' else '') }}"
    "{{- '\\n\\n# Tools\\n<tools>' }}"
    "{%- for tool in tools %}{{- '\\n' + (tool | tojson) }}{%- endfor %}"
    "{{- '\\n</tools>\\nCall a tool as <tool_call>{\"name\": ..., \"arguments\": {...}}</tool_call><|im_end|>\\n' }}"
    "{%- if message.role != 'system' %}"
    "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- elif message.role == 'tool' %}"
    "{{- '<|im_start|>user\\n<tool_response>\\n' + message.content + '\\n</tool_response><|im_end|>\\n' }}"
    "{%- else %}"
    "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
"""ChatML with Hermes-style tools in the system turn and tool results as ``<tool_response>`` user turns."""


def spec_texts(root: Path | None = None) -> list[str]:
    """The text files of the shipped specs (policies, tools, tasks, records): the tokenizer's corpus."""
    if root is None:
        from medgym.runtime.paths import shipped_specs

        root = shipped_specs()
    files = sorted(p for p in Path(root).rglob("*") if p.suffix in {".md", ".yaml", ".score"} and p.is_file())
    return [p.read_text(encoding="utf-8") for p in files]


def train_tokenizer(texts: list[str], vocab_size: int = 2048):
    """A byte-level BPE ``PreTrainedTokenizerFast`` with ChatML specials and ``CHAT_TEMPLATE``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    core.train_from_iterator(texts, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<|pad|>", eos_token="<|im_end|>",
                                        bos_token="<|im_start|>")
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def build_tiny_model(out: Path, texts: list[str] | None = None, *, vocab_size: int = 2048, hidden: int = 32,
                     layers: int = 2, heads: int = 2, max_positions: int = 4096, seed: int = 0) -> Path:
    """Write a tiny random Llama and its tokenizer to ``out`` (a folder ``from_pretrained`` loads); return it."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = train_tokenizer(texts if texts is not None else spec_texts(), vocab_size)
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden, num_hidden_layers=layers,
                         num_attention_heads=heads, num_key_value_heads=heads, intermediate_size=hidden * 2,
                         max_position_embeddings=max_positions, tie_word_embeddings=True,
                         pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                         bos_token_id=tokenizer.bos_token_id)
    model = LlamaForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    out = Path(out)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
