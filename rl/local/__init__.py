"""medgym.rl.local: the single-process trainer (transformers models, CPU or one GPU).

``train(config, run_dir, build_dir)`` runs or resumes a run; the pieces it is made of are public too:
``ChatFormat``/``Conversation`` (chat rendering with an assistant mask), ``play`` (batched multi-turn rollouts
on compiled envs), ``update`` (one GRPO / TT-OPD step from ``medgym.rl``'s math), ``TaskOrder`` (the data
order a checkpoint can replay) and the model loaders (``resolve_model_path``, ``load_policy``).
"""
from medgym.rl.local.chat import ChatFormat, ChatTemplateError, Conversation, tool_signatures
from medgym.rl.local.data import TaskOrder
from medgym.rl.local.metrics import MetricsLog, read_metrics
from medgym.rl.local.models import ModelError, embedded_model_dir, load_policy, resolve_model_path
from medgym.rl.local.rollout import EnvPool, RolloutStats, Trajectory, play
from medgym.rl.local.trainer import Trainer, TrainError, episode_metrics, train
from medgym.rl.local.update import make_batch, shaped_rewards, update

__all__ = [
    "ChatFormat", "ChatTemplateError", "Conversation", "EnvPool", "MetricsLog", "ModelError", "RolloutStats",
    "TaskOrder", "TrainError", "Trainer", "Trajectory", "embedded_model_dir", "episode_metrics", "load_policy",
    "make_batch", "play", "read_metrics", "resolve_model_path", "shaped_rewards", "tool_signatures", "train",
    "update",
]
