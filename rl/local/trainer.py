"""The local trainer: one process plays rollouts with a transformers model and updates it with GRPO or TT-OPD.

``train(config, run_dir, build_dir)`` runs ``config.optim.steps`` steps. Each step draws
``rollout.prompts_per_step`` tasks (``TaskOrder``), plays each ``rollout.group_size`` times, updates the policy
(``update.update``), advances the EMA teacher on its schedule, writes one line of metrics and, on
``run.save_every``, a checkpoint. A run directory that already holds a checkpoint is resumed from it: same
weights, teacher, optimiser, schedules, RNG and data cursor, so the continuation matches an uninterrupted run.
"""
from __future__ import annotations

import copy
import json
import statistics
import time
from pathlib import Path
from typing import Callable

import torch
import yaml

from medgym.rl import DEFAULT_HINTS, HintSet, TeacherSchedule
from medgym.rl.config import ConfigError, TrainConfig
from medgym.rl.local.chat import ChatFormat
from medgym.rl.local.checkpoint import latest_checkpoint, load_state, restore_rng, rng_state, save_checkpoint
from medgym.rl.local.data import TaskOrder
from medgym.rl.local.metrics import MetricsLog
from medgym.rl.local.models import load_policy, pick_device, resolve_model_path
from medgym.rl.local.rollout import EnvPool, RolloutStats, Trajectory, play
from medgym.rl.local.update import update
from medgym.runtime.build import Build
from medgym.runtime.evaluate import select_tasks

__all__ = ["TrainError", "Trainer", "train"]

StepCallback = Callable[[dict], None]


class TrainError(RuntimeError):
    """A run that cannot start or continue (the message says why)."""


def _comparable(config: TrainConfig) -> dict:
    data = config.model_dump(mode="json")
    data["optim"].pop("steps")  # a resumed run may be given more steps; nothing else may change
    return data


def domain_hints(build: Build, domains: list[str]) -> dict[str, HintSet]:
    """Each domain's hints from its build (``domain.json`` "hints"), the default set where it declares none."""
    out = {}
    for name in domains:
        declared = build.domain(name).spec.hints
        reinforcing, corrective = tuple(declared.reinforcing), tuple(declared.corrective)
        out[name] = HintSet(reinforcing, corrective, name) if reinforcing and corrective else DEFAULT_HINTS
    return out


class Trainer:
    """A local run in ``run_dir``: set up fresh, or resumed from the newest checkpoint there."""

    def __init__(self, config: TrainConfig, run_dir: Path, build_dir: Path):
        self.config, self.run_dir, self.build_dir = config, Path(run_dir), Path(build_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        build = Build.open(self.build_dir)
        domains = config.data.domains or build.domain_names
        tasks = select_tasks(build, domains, config.data.train_split, config.data.max_tasks)
        if not tasks:
            raise TrainError(f"no tasks in split {config.data.train_split!r} for domains {', '.join(domains)}")
        self.eval_tasks = select_tasks(build, domains, config.data.eval_split, config.data.eval_tasks) \
            if config.data.eval_tasks else []
        self.hints = domain_hints(build, domains)
        self.device = pick_device(config.model.device)
        algorithm = config.algorithm
        try:
            self.schedule = TeacherSchedule(ema_decay=algorithm.ema_decay, ema_every=algorithm.ema_every,
                                            copy_every=algorithm.hard_copy_every, kl_coef=algorithm.kl_coef,
                                            kl_threshold=algorithm.kl_phase_out, coef_floor=algorithm.kl_coef_floor,
                                            phase_out_steps=algorithm.kl_phase_out_steps)
        except ValueError as exc:
            raise ConfigError(f"algorithm: {exc}") from None
        self.distil = algorithm.name == "tt_opd"

        checkpoint = latest_checkpoint(self.run_dir)
        self.step = 0
        state = None
        if checkpoint is not None:
            saved = self.run_dir / "config.yaml"
            if saved.is_file():
                before = TrainConfig.model_validate(yaml.safe_load(saved.read_text(encoding="utf-8")))
                if _comparable(before) != _comparable(config):
                    raise TrainError(f"{self.run_dir} holds a run with a different config ({saved}); resume it "
                                     f"with that config (only optim.steps may change) or use a new --out folder")
            state = load_state(checkpoint)
            model_dir = checkpoint / "model"
        else:
            model_dir = resolve_model_path(config.model.path)
        self.model, self.tokenizer = load_policy(model_dir, config.model.dtype, self.device)
        self.fmt = ChatFormat(self.tokenizer, config.rollout.prompt)
        self.teacher = None
        if self.distil:
            self.teacher = copy.deepcopy(self.model)
            if checkpoint is not None:
                from transformers import AutoModelForCausalLM

                loaded = AutoModelForCausalLM.from_pretrained(checkpoint / "teacher", dtype=self.model.dtype)
                self.teacher.load_state_dict(loaded.state_dict())
            self.teacher.requires_grad_(False).eval()
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=config.optim.lr,
                                           weight_decay=config.optim.weight_decay)
        warmup = config.optim.warmup_steps
        self.lr_schedule = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda done: min(1.0, (done + 1) / warmup) if warmup else 1.0)
        self.order = TaskOrder(tasks, config.optim.seed)
        if state is not None:
            self.optimizer.load_state_dict(state["optimizer"])
            self.lr_schedule.load_state_dict(state["lr_schedule"])
            self.schedule.load_state_dict(state["teacher_schedule"])
            self.order.cursor = int(state["data_cursor"])
            self.step = int(state["step"])
            restore_rng(state["rng"])
        else:
            torch.manual_seed(config.optim.seed)
        self.resumed_from = self.step if checkpoint is not None else None
        (self.run_dir / "config.yaml").write_text(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False),
                                                  encoding="utf-8")
        self.pool = EnvPool(self.build_dir, config.reward.mode, config.rollout.max_turns)
        self.log = MetricsLog(self.run_dir, resume_step=self.step, tensorboard=config.run.tensorboard)

    # -- the loop ------------------------------------------------------------------------------------------------

    def run(self, on_step: StepCallback | None = None, on_progress: StepCallback | None = None) -> dict:
        """Train until ``optim.steps``; returns the last step's metrics (empty if nothing was left to do).

        ``on_step`` gets each step's metrics; ``on_progress`` gets what happens inside a step (``phase``
        rollout, with the generation round, live episodes and tokens so far; then update, eval, save).
        """
        last: dict = {}
        try:
            while self.step < self.config.optim.steps:
                last = self.train_step(on_progress)
                if on_step is not None:
                    on_step(last)
        finally:
            self.log.close()
        return last

    def train_step(self, on_progress: StepCallback | None = None) -> dict:
        config = self.config
        started, cpu_started = time.perf_counter(), time.process_time()
        cursor = self.order.cursor
        tasks = self.order.take(config.rollout.prompts_per_step)
        stats = RolloutStats()
        rollout = config.rollout

        def report(phase: str, **info) -> None:
            if on_progress is not None:
                on_progress({"step": self.step + 1, "phase": phase, **info})

        trajectories = play(self.model, self.fmt, self.pool, tasks, samples=rollout.group_size,
                            max_new_tokens=rollout.max_new_tokens, context_limit=rollout.context_limit,
                            temperature=rollout.temperature, top_p=rollout.top_p, stats=stats,
                            kv_cache=rollout.kv_cache, progress=lambda info: report("rollout", **info))
        if not any(t.assistant_tokens for t in trajectories):
            longest = max(t.conversation.prompt_len for t in trajectories)
            raise TrainError(f"no trajectory generated a token: the opening prompt is up to {longest} tokens, "
                             f"at or past rollout.context_limit={rollout.context_limit} or the model's limit")
        rollout_s, rollout_cpu_s = time.perf_counter() - started, time.process_time() - cpu_started
        kl_coef = self.schedule.kl_coef
        report("update", episodes=len(trajectories), tokens=sum(len(t.ids) for t in trajectories))
        t0, cpu0 = time.perf_counter(), time.process_time()
        result = update(self.model, self.teacher, self.optimizer, trajectories, config, self.fmt, hints=self.hints,
                        kl_coef=kl_coef, hint_seed=config.optim.seed * 1_000_003 + (self.step + 1) * 10_007)
        lr = self.optimizer.param_groups[0]["lr"]
        self.lr_schedule.step()
        teacher_update = "none"
        if self.distil:
            teacher_update = self.schedule.update_teacher_(self.teacher, self.model, kl=result.kl).value
        else:
            self.schedule.step()
        update_s, update_cpu_s = time.perf_counter() - t0, time.process_time() - cpu0
        self.step += 1
        metrics = {"step": self.step, "data_cursor": cursor,
                   **episode_metrics(trajectories), **result.metrics,
                   "lr": lr, "teacher_update": teacher_update, "phased_out": self.schedule.phased_out,
                   "task_ids": [task_id for _, task_id in tasks]}
        if config.run.eval_every and self.step % config.run.eval_every == 0 and self.eval_tasks:
            report("eval", episodes=len(self.eval_tasks))
            metrics.update(self.evaluate())
        metrics.update(rollout_s=rollout_s, update_s=update_s, rollout_cpu_s=rollout_cpu_s, update_cpu_s=update_cpu_s,
                       generate_s=stats.generate_s, env_s=stats.env_s,
                       env_share=stats.env_s / max(rollout_s, 1e-9),
                       rollout_tokens_per_s=stats.generated_tokens / max(stats.generate_s, 1e-9))
        if self.step % config.run.save_every == 0 or self.step == config.optim.steps:
            report("save")
            t1 = time.perf_counter()
            self.save()
            metrics["save_s"] = time.perf_counter() - t1
        metrics["step_s"] = time.perf_counter() - started
        metrics["step_cpu_s"] = time.process_time() - cpu_started  # user + sys of all threads: robust to sharing
        metrics["peak_rss_mb"] = _peak_rss_mb()
        self.log.write(metrics)
        return metrics

    def evaluate(self) -> dict:
        """The eval tasks played once each, greedy (or at ``rollout.eval_temperature``): ``eval/*`` metrics."""
        temperature = self.config.rollout.eval_temperature
        trajectories = play(self.model, self.fmt, self.pool, self.eval_tasks, samples=1,
                            max_new_tokens=self.config.rollout.max_new_tokens,
                            context_limit=self.config.rollout.context_limit, greedy=not temperature,
                            temperature=temperature or 1.0)
        return {f"eval/{key}": value for key, value in episode_metrics(trajectories).items()}

    def save(self) -> Path:
        state = {"step": self.step, "data_cursor": self.order.cursor, "optimizer": self.optimizer.state_dict(),
                 "lr_schedule": self.lr_schedule.state_dict(), "teacher_schedule": self.schedule.state_dict(),
                 "rng": rng_state()}
        return save_checkpoint(self.run_dir, self.step, model=self.model, tokenizer=self.tokenizer,
                               teacher=self.teacher, state=state, keep=self.config.run.keep_checkpoints)


def _peak_rss_mb() -> float | None:
    """The process's peak resident memory so far, in MiB (None where the platform does not say)."""
    try:
        import resource
    except ImportError:  # not on Windows
        return None
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def episode_metrics(trajectories: list[Trajectory]) -> dict:
    """Outcome and behaviour means over a step's episodes: the signals of response explosion and collapse."""
    mean = lambda values: float(statistics.fmean(values)) if values else 0.0  # noqa: E731
    lengths = [t.assistant_tokens for t in trajectories]
    names = sorted({k for t in trajectories for k in t.components})
    out = {
        "episodes": len(trajectories),
        "accuracy": mean([t.components.get("accuracy", 0.0) for t in trajectories]),
        "reward": mean([t.reward for t in trajectories]),
        **{f"reward/{name}": mean([t.components[name] for t in trajectories if name in t.components])
           for name in names},
        "response_length": mean(lengths),
        "response_length_max": max(lengths, default=0),
        "sequence_length": mean([len(t.ids) for t in trajectories]),
        "turns": mean([t.counts.get("turns", 0) for t in trajectories]),
        "tool_calls": mean([t.counts.get("tool_calls", 0) for t in trajectories]),
        "invalid_calls": mean([t.counts.get("invalid_calls", 0) for t in trajectories]),
        "no_call_turns": mean([t.counts.get("no_call_turns", 0) for t in trajectories]),
        "submitted": mean([float(bool(t.counts.get("submitted"))) for t in trajectories]),
        "overflow": mean([float(t.overflow) for t in trajectories]),
        "turn_length": mean([end - start for t in trajectories for start, end in t.conversation.turns]),
        "monologue_rate": mean([float(_monologue(t)) for t in trajectories]),
    }
    for domain in sorted({t.domain for t in trajectories}):
        out[f"domain_reward/{domain}"] = mean([t.reward for t in trajectories if t.domain == domain])
    return out


def _monologue(t: Trajectory) -> bool:
    """Answered in one turn without a tool call (the submission aside): the multi-turn collapse the paper shows."""
    calls = int(t.counts.get("tool_calls", 0)) - int(bool(t.counts.get("submitted")))
    return int(t.counts.get("turns", 0)) <= 1 and calls <= 0


def train(config: TrainConfig, run_dir: Path, build_dir: Path, on_step: StepCallback | None = None,
          on_progress: StepCallback | None = None) -> dict:
    """Run (or resume) a local training run; returns a summary of the run (callbacks: see ``Trainer.run``)."""
    trainer = Trainer(config, run_dir, build_dir)
    started, first = time.perf_counter(), trainer.step
    last = trainer.run(on_step, on_progress)
    summary = {"run_dir": str(run_dir), "steps": trainer.step, "resumed_from": trainer.resumed_from,
               "steps_this_run": trainer.step - first, "seconds": round(time.perf_counter() - started, 2),
               "last": {k: v for k, v in last.items() if k != "task_ids"}}
    (Path(run_dir) / "summary.json").write_text(json.dumps(summary, indent=1, default=str), encoding="utf-8")
    return summary
