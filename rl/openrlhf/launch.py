"""``medgym train --backend openrlhf``: a training config in, an OpenRLHF 0.11.x ``train_ppo_ray`` run out.

``command(config, out)`` is the ``python -m openrlhf.cli.train_ppo_ray ...`` command (0.11.x dotted flags) and
``runtime_env(config, out)`` the Ray runtime env that makes every process of the run load medgym's agent and
TT-OPD classes: ``PYTHONPATH`` gains ``medgym/rl/openrlhf/bootstrap`` (a ``sitecustomize`` that installs
``medgym.rl.openrlhf.patches``) and ``MEDGYM_OPENRLHF_CONFIG`` names the resolved config. ``launch`` writes the
datasets and the resolved config into the run folder and starts the command: on this node (OpenRLHF starts
Ray itself) or, with ``openrlhf.ray_address`` set, through ``ray job submit`` with the runtime env as JSON.
With ``dry_run`` it writes and starts nothing and prints the plan as JSON: the command, a shell line, the
runtime env.

How the config maps onto OpenRLHF (``docs/openrlhf-runbook.md`` has the whole picture):

* GRPO is ``--algo.advantage.estimator group_norm`` (``dr_grpo`` for ``advantage: dr_grpo``) with
  ``--rollout.n_samples_per_prompt`` = group size and no reference model (``--algo.kl.init_coef 0``): TT-OPD's
  KL is medgym's own term, not OpenRLHF's reference KL.
* One optimiser step per training step: ``--train.batch_size`` = prompts x group size, and the prompt file holds
  exactly ``steps x prompts_per_step`` rows (tasks in a seeded shuffled order), read once.
* ``--data.max_len`` = ``rollout.context_limit``: the whole multi-turn sequence's budget. OpenRLHF has no
  per-turn cap, so ``rollout.max_new_tokens`` does not apply here.
* Runs resume: ``--ckpt.load_enable`` with checkpoints under ``OUT/ckpt`` (the teacher and its schedule too).

The openrlhf package is not needed to build the command (only to run it).
"""
from __future__ import annotations

import importlib.metadata
import json
import os
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from medgym.rl.openrlhf import CONFIG_ENV

__all__ = ["LaunchError", "RunPlan", "agent_path", "bootstrap_dir", "command", "launch", "plan", "runtime_env"]

PROMPTS = "prompts.jsonl"
EVAL_PROMPTS = "eval_prompts.jsonl"
RESOLVED_CONFIG = "medgym-openrlhf.json"
_ESTIMATORS = {"grpo": "group_norm", "dr_grpo": "dr_grpo"}


class LaunchError(ValueError):
    """The config cannot run on OpenRLHF as it stands; the message names the setting and the fix."""


def agent_path() -> Path:
    """The agent file for ``--train.agent_func_path`` (it imports ``medgym.rl.openrlhf.agent.AgentExecutor``)."""
    return Path(__file__).resolve().parent / "agent_func.py"


def bootstrap_dir() -> Path:
    """The folder whose ``sitecustomize.py`` installs medgym's patches in every process of a run."""
    return Path(__file__).resolve().parent / "bootstrap"


def _pretrain(config) -> str:
    from medgym.rl.config import DEFAULT_MODEL

    path = config.openrlhf.pretrain or config.model.path
    if path == DEFAULT_MODEL:
        raise LaunchError(f"openrlhf.pretrain: set it (or model.path) to a Hugging Face model folder that every "
                          f"node can read; the embedded {DEFAULT_MODEL} is for the local backend")
    return path


def validate(config) -> None:
    """Refuse settings OpenRLHF or TT-OPD-on-OpenRLHF cannot run, before anything starts."""
    o, r, a = config.openrlhf, config.rollout, config.algorithm
    _pretrain(config)
    distil = a.kl_coef > 0
    if distil and a.kl_estimator == "full":
        raise LaunchError("algorithm.kl_estimator: 'full' (the full-vocabulary KL) needs the teacher's logits in the "
                          "training step; on OpenRLHF use k1 or k3 (or the local backend)")
    if distil and o.zero_stage == 3:
        raise LaunchError("openrlhf.zero_stage: TT-OPD keeps its EMA teacher beside each ZeRO-1/2 replica of the "
                          "policy; ZeRO-3 partitions the weights. Use 2")
    if r.group_size < 2:
        raise LaunchError(f"rollout.group_size: GRPO's group baseline needs at least 2 samples per prompt, got "
                          f"{r.group_size}")
    actors = o.num_nodes * o.gpus_per_node
    if o.colocate and actors != o.vllm_engines * o.vllm_tensor_parallel:
        raise LaunchError(f"openrlhf.vllm_engines: colocated, the vLLM engines must cover the policy's GPUs exactly: "
                          f"{o.vllm_engines} engines x {o.vllm_tensor_parallel} GPUs != {o.num_nodes} nodes x "
                          f"{o.gpus_per_node} GPUs")
    samples = r.prompts_per_step * r.group_size
    if samples // o.micro_rollout_batch_size < actors:
        raise LaunchError(f"rollout.prompts_per_step: {r.prompts_per_step} prompts x {r.group_size} samples / "
                          f"micro-batch {o.micro_rollout_batch_size} must give every one of the {actors} policy GPUs "
                          f"at least one micro-batch")
    if samples % (o.micro_train_batch_size * actors):
        raise LaunchError(f"rollout.prompts_per_step: a step's {samples} samples must split evenly into micro-batches "
                          f"of {o.micro_train_batch_size} on {actors} GPUs")
    if distil and any(arg.split("=")[0] == "--train.async_enable" for arg in o.extra_args):
        raise LaunchError("openrlhf.extra_args: --train.async_enable is not supported with TT-OPD (the teacher "
                          "forward runs in the synchronous trainer)")


@dataclass
class RunPlan:
    """What ``launch`` does: files to write, the command and the environment it runs in."""

    out: Path
    build: Path
    command: list[str]
    runtime_env: dict
    prompt_rows: int
    eval_rows: int
    files: dict = field(default_factory=dict)

    def shell(self) -> str:
        """One line to run it by hand (local) or submit it (``ray job submit``)."""
        if self.command[:3] == ["ray", "job", "submit"]:
            return shlex.join(self.command)
        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in self.runtime_env["env_vars"].items())
        return f"cd {shlex.quote(str(self.out))} && {env} {shlex.join(self.command)}"

    def as_json(self) -> dict:
        return {"backend": "openrlhf", "run_dir": str(self.out), "build": str(self.build), "command": self.command,
                "shell": self.shell(), "runtime_env": self.runtime_env, "prompt_rows": self.prompt_rows,
                "eval_rows": self.eval_rows, "files": {k: str(v) for k, v in self.files.items()}}


def _flags(config, out: Path) -> list[str]:
    o, r, a, opt, run = config.openrlhf, config.rollout, config.algorithm, config.optim, config.run
    samples = r.prompts_per_step * r.group_size
    flags = {
        "--actor.model_name_or_path": _pretrain(config),
        "--train.agent_func_path": str(agent_path()),
        "--data.prompt_dataset": str(out / PROMPTS),
        "--data.input_key": "input",
        "--data.label_key": "label",
        "--data.apply_chat_template": True,
        "--data.max_len": r.context_limit,
        "--data.max_samples": opt.steps * r.prompts_per_step,
        "--rollout.batch_size": r.prompts_per_step,
        "--rollout.n_samples_per_prompt": r.group_size,
        "--rollout.micro_batch_size": o.micro_rollout_batch_size,
        "--rollout.temperature": r.temperature,
        "--rollout.top_p": r.top_p,
        "--train.batch_size": samples,
        "--train.micro_batch_size": o.micro_train_batch_size,
        "--train.max_epochs": 1,
        "--train.num_episodes": 1,
        "--train.seed": opt.seed,
        "--algo.advantage.estimator": _ESTIMATORS[a.advantage],
        "--algo.kl.init_coef": 0,
        "--actor.eps_clip": a.clip_eps,
        "--actor.loss_agg_mode": "token-mean",
        "--actor.adam.lr": opt.lr,
        "--actor.adam.weight_decay": opt.weight_decay,
        "--actor.max_norm": opt.grad_clip,
        "--actor.lr_scheduler": "constant_with_warmup",
        "--actor.lr_warmup_ratio": round(opt.warmup_steps / opt.steps, 6),
        "--actor.num_nodes": o.num_nodes,
        "--actor.num_gpus_per_node": o.gpus_per_node,
        "--ref.num_nodes": o.num_nodes,
        "--ref.num_gpus_per_node": o.gpus_per_node,
        "--actor.gradient_checkpointing_enable": o.gradient_checkpointing,
        "--vllm.num_engines": o.vllm_engines,
        "--vllm.tensor_parallel_size": o.vllm_tensor_parallel,
        "--vllm.gpu_memory_utilization": o.vllm_gpu_memory_utilization,
        "--vllm.enable_sleep": o.colocate,
        "--train.colocate_all": o.colocate,
        "--ds.enable_sleep": o.colocate,
        "--ds.zero_stage": o.zero_stage,
        "--ds.param_dtype": "fp16" if config.model.dtype == "float16" else "bf16",
        "--ds.attn_implementation": o.attn_implementation,
        "--ckpt.path": str(out / "ckpt"),
        "--ckpt.output_dir": o.save_path or str(out / "model"),
        "--ckpt.save_steps": run.save_every,
        "--ckpt.load_enable": True,
        "--logger.logging_steps": 1,
    }
    if run.tensorboard:
        flags["--logger.tensorboard_dir"] = str(out / "tensorboard")
    if run.eval_every and config.data.eval_tasks:
        flags.update({"--eval.dataset": str(out / EVAL_PROMPTS), "--eval.steps": run.eval_every,
                      "--eval.n_samples_per_prompt": 1,
                      # the local evaluation's: greedy unless rollout.eval_temperature says otherwise
                      "--eval.temperature": r.eval_temperature or 0.0})
    args: list[str] = []
    for flag, value in flags.items():
        if value is True:
            args.append(flag)
        elif value is not False and value is not None:
            args += [flag, str(value)]
    return args + list(o.extra_args)


def command(config, out: Path) -> list[str]:
    """The ``python -m openrlhf.cli.train_ppo_ray`` command for ``config``, run in the run folder ``out``."""
    validate(config)
    python = "python3" if config.openrlhf.ray_address else sys.executable
    return [python, "-m", "openrlhf.cli.train_ppo_ray", *_flags(config, Path(out).resolve())]


def runtime_env(config, out: Path) -> dict:
    """The Ray runtime env of the run: medgym's bootstrap on ``PYTHONPATH`` and the resolved config's path."""
    out = Path(out).resolve()
    if config.openrlhf.ray_address:
        pythonpath = f"{bootstrap_dir()}:${{PYTHONPATH}}"  # Ray expands ${VAR} from each node's environment
    else:
        pythonpath = os.pathsep.join(p for p in (str(bootstrap_dir()), os.environ.get("PYTHONPATH")) if p)
    return {"env_vars": {"PYTHONPATH": pythonpath, CONFIG_ENV: str(out / RESOLVED_CONFIG)}}


def _build(config) -> Path:
    """The compiled build the run trains on. `medgym train` fills `data.build` with the shipped specs' build
    when the config names none (compiling is the CLI's job: rl depends on the runtime only)."""
    if not config.data.build:
        raise LaunchError("data.build: no build folder named; name one, or launch through `medgym train`, which "
                          "compiles the shipped specs")
    build = Path(config.data.build).resolve()
    if not (build / "manifest.json").is_file():
        raise LaunchError(f"data.build: {build} is not a medgym build (no manifest.json); run "
                          f"`medgym compile SPECS --out {build}`")
    return build


def _rows(config, build: Path) -> tuple[int, int]:
    from medgym.runtime.build import Build

    compiled = Build.open(build)
    domains = config.data.domains or compiled.domain_names
    missing = sorted(set(domains) - set(compiled.domain_names))
    if missing:
        raise LaunchError(f"data.domains: no domain {', '.join(missing)} in {build} (domains: "
                          f"{', '.join(compiled.domain_names)})")
    train = sum(len(compiled.domain(d).tasks(config.data.train_split)[: config.data.max_tasks]) for d in domains)
    if not train:
        raise LaunchError(f"data.train_split: no {config.data.train_split} tasks for {', '.join(domains)}")
    evaluate = 0
    if config.run.eval_every and config.data.eval_tasks:
        evaluate = sum(len(compiled.domain(d).tasks(config.data.eval_split)[: config.data.eval_tasks]) for d in domains)
    return train, evaluate


def plan(config, out: Path) -> RunPlan:
    """Everything ``launch`` would do, without doing it."""
    out = Path(out).resolve()
    cmd = command(config, out)
    env = runtime_env(config, out)
    build = _build(config)
    _, evaluate = _rows(config, build)
    files = {"prompts": out / PROMPTS, "config": out / RESOLVED_CONFIG}
    if config.run.eval_every and config.data.eval_tasks:
        if not evaluate:
            raise LaunchError(f"run.eval_every: no {config.data.eval_split} tasks to evaluate on; set "
                              f"run.eval_every or data.eval_tasks to 0")
        files["eval_prompts"] = out / EVAL_PROMPTS
    if config.openrlhf.ray_address:  # the run folder and the build must be on storage every node mounts
        cmd = ["ray", "job", "submit", "--address", config.openrlhf.ray_address,
               "--runtime-env-json", json.dumps(env, sort_keys=True), "--", *cmd]
    return RunPlan(out, build, cmd, env, config.optim.steps * config.rollout.prompts_per_step, evaluate, files)


def write_inputs(config, run: RunPlan) -> None:
    """The run folder's inputs: the prompt files and the resolved config the workers read."""
    from medgym.rl.openrlhf.dataset import export_prompts

    run.out.mkdir(parents=True, exist_ok=True)
    domains = config.data.domains or None
    export_prompts(run.build, run.files["prompts"], split=config.data.train_split, domains=domains,
                   limit=config.data.max_tasks, config=config, rows=run.prompt_rows, seed=config.optim.seed)
    if "eval_prompts" in run.files:
        export_prompts(run.build, run.files["eval_prompts"], split=config.data.eval_split, domains=domains,
                       limit=config.data.eval_tasks, config=config)
    resolved = config.model_dump(mode="json")
    resolved["data"]["build"] = str(run.build)
    tmp = run.files["config"].with_suffix(".tmp")
    tmp.write_text(json.dumps(resolved, indent=1), encoding="utf-8")
    tmp.replace(run.files["config"])


def _installed(distribution: str) -> bool:
    """Whether a package is really installed (a stand-in on ``sys.path`` has no distribution metadata)."""
    try:
        importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def launch(config, out: Path, dry_run: bool) -> int:
    """Run ``config`` on OpenRLHF in the run folder ``out``; return the command's exit status.

    ``dry_run``: print the plan (command, shell line, runtime env) as JSON on stdout, write and start nothing.
    Raises ``LaunchError`` for settings that cannot run.
    """
    run = plan(config, out)
    on_this_node = not config.openrlhf.ray_address  # else the cluster's nodes hold the stack and the model
    if on_this_node and not dry_run:
        missing = [name for name in ("openrlhf", "vllm", "deepspeed", "flash-attn", "ray") if not _installed(name)]
        if missing:
            raise LaunchError(f"this node lacks {', '.join(missing)}: install the GPU stack with "
                              "`pip install -r requirements-openrlhf-gpu.txt` (see docs/openrlhf-runbook.md)")
    if on_this_node:  # the dry run too: a plan that names a missing model would only fail later
        pretrain = _pretrain(config)
        if not (Path(pretrain) / "config.json").is_file():
            raise LaunchError(f"openrlhf.pretrain: {pretrain} is not a Hugging Face model folder on this node "
                              f"(no config.json)")
    if dry_run:
        print(json.dumps(run.as_json(), indent=1))
        return 0
    write_inputs(config, run)
    env = dict(os.environ)
    if not config.openrlhf.ray_address:
        env.update(run.runtime_env["env_vars"])
    print(run.shell(), file=sys.stderr, flush=True)
    return subprocess.call(run.command, cwd=run.out, env=env)
