"""What the update tests share: a small TT-OPD/GRPO config and real rollouts of the tiny model on the mini build."""
from __future__ import annotations

import torch

from medgym.rl.config import TrainConfig
from medgym.rl.local import ChatFormat, EnvPool, play
from medgym.rl.local.models import load_policy
from medgym.rl.local.trainer import domain_hints
from medgym.runtime.build import Build
from medgym.runtime.evaluate import select_tasks


def update_config(max_new_tokens: int, **algorithm) -> TrainConfig:
    return TrainConfig.model_validate({
        "rollout": {"group_size": 2, "prompts_per_step": 2, "max_turns": 3, "max_new_tokens": max_new_tokens,
                    "max_length": 64, "context_limit": 4096},
        "optim": {"micro_batch_size": 4},
        "algorithm": algorithm,
    })


def played(model_dir, build, *, seed: int, max_new_tokens: int):
    """(model, chat format, 4 trajectories of 2 tasks x 2 samples, domain hints); the two groups are given
    different outcomes so the advantages are not all zero."""
    model, tokenizer = load_policy(model_dir)
    fmt = ChatFormat(tokenizer)
    torch.manual_seed(seed)
    tasks = select_tasks(Build.open(build), None, "train", 2)
    trajectories = play(model, fmt, EnvPool(build, "composite", 3), tasks, samples=2, max_new_tokens=max_new_tokens,
                        context_limit=4096)
    trajectories[0].reward, trajectories[2].reward = 0.9, 0.8
    return model, fmt, trajectories, domain_hints(Build.open(build), ["clinic"])
