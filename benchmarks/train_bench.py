"""Local-trainer speed on a tiny model: rollout throughput, the env's share of it, and GRPO vs TT-OPD step time.

    nice -n 5 python benchmarks/train_bench.py [--steps 4] [--hidden 64] [--layers 2] [--uncached] [--json out.json]

Builds a tiny random Llama with a tokenizer trained on the shipped specs (nothing is downloaded), compiles the
shipped specs into a temporary build, then runs the local trainer for a few steps with each algorithm on the
same data and seed. The first step of each run is a warm-up and is left out; checkpoint time is left out.
Figures are medians over the remaining steps:

* rollout: generated tokens/s (in ``model.generate``), episodes/s, and the share of rollout time spent in the
  env (reset, step, reward) -- the env's cost next to the model's;
* update: seconds per optimiser step (forward, backward, step; TT-OPD adds the teacher forward on the hinted
  sequences and the EMA update), and TT-OPD's step time over GRPO's;
* CPU seconds (user + sys of all threads) of the same, the figure to compare on a shared machine, and the
  process's peak RSS after each run;
* with ``--uncached``, a third run (TT-OPD, ``rollout.kv_cache: false``) re-encodes every conversation at every
  token: the rollout before the KV cache, same seed, same sampled tokens.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _context import context  # noqa: E402


def _run(algorithm: str, model_dir: Path, build: Path, steps: int, work: Path, prompts: int, group: int,
         kv_cache: bool = True) -> list[dict]:
    from medgym.rl.config import TrainConfig
    from medgym.rl.local import Trainer

    config = TrainConfig.model_validate({
        "model": {"path": str(model_dir)},
        "data": {"build": str(build), "eval_tasks": 0},
        "rollout": {"group_size": group, "prompts_per_step": prompts, "max_turns": 4, "max_new_tokens": 48,
                    "max_length": 256, "context_limit": 8192, "prompt": "card", "kv_cache": kv_cache},
        "algorithm": {"name": algorithm},
        "optim": {"lr": 1e-4, "steps": steps, "micro_batch_size": 4},
        "run": {"save_every": 10_000, "eval_every": 0, "tensorboard": False},
    })
    trainer = Trainer(config, work / f"{algorithm}-{kv_cache}", build)
    rows = []
    while trainer.step < steps - 1:  # the last step would checkpoint; the timing needs none
        rows.append(trainer.train_step())
    trainer.log.close()
    return rows[1:]  # drop the warm-up step


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=5, help="steps per algorithm (the first is a warm-up)")
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--prompts", type=int, default=4, help="prompts per step")
    parser.add_argument("--group", type=int, default=4, help="samples per prompt")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--uncached", action="store_true", help="also time TT-OPD without the KV cache")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)

    import torch

    from medgym.compiler.pipeline import compile_specs
    from medgym.rl.local.tiny import build_tiny_model
    from medgym.shipped import shipped_specs

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        t0 = time.perf_counter()
        build = compile_specs(shipped_specs(), work / "build").out
        model_dir = build_tiny_model(work / "model", hidden=args.hidden, layers=args.layers,
                                     max_positions=8192)
        setup_s = time.perf_counter() - t0
        runs = {name: _run(name, model_dir, build, args.steps, work, args.prompts, args.group)
                for name in ("grpo", "tt_opd")}
        if args.uncached:
            runs["tt_opd_uncached"] = _run("tt_opd", model_dir, build, args.steps, work, args.prompts, args.group,
                                           kv_cache=False)

    def median(rows, key):
        return statistics.median(r[key] for r in rows)

    figures = {"setup_s": round(setup_s, 2), "steps_timed": args.steps - 2, "prompts_per_step": args.prompts,
               "group_size": args.group, "model": {"hidden": args.hidden, "layers": args.layers}}
    for name, rows in runs.items():
        episodes = rows[0]["episodes"]
        figures[name] = {
            "step_s": round(median(rows, "rollout_s") + median(rows, "update_s"), 4),
            "update_s": round(median(rows, "update_s"), 4),
            "rollout_s": round(median(rows, "rollout_s"), 4),
            "rollout_tokens_per_s": round(median(rows, "rollout_tokens_per_s"), 1),
            "rollout_episodes_per_s": round(episodes / median(rows, "rollout_s"), 2),
            "env_share_of_rollout": round(median(rows, "env_share"), 4),
            "train_tokens_per_step": round(median(rows, "train_tokens")),
            "response_length": round(median(rows, "response_length"), 1),
            "step_cpu_s": round(median(rows, "rollout_cpu_s") + median(rows, "update_cpu_s"), 3),
            "rollout_cpu_s": round(median(rows, "rollout_cpu_s"), 3),
            "update_cpu_s": round(median(rows, "update_cpu_s"), 3),
            "rollout_cpu_ms_per_token": round(1000 * median(rows, "rollout_cpu_s")
                                              / max(median(rows, "rollout_tokens_per_s") * median(rows, "generate_s"),
                                                    1), 3),
            "peak_rss_mb_after_run": round(rows[-1]["peak_rss_mb"]),
        }
    figures["tt_opd_over_grpo"] = {
        "update": round(figures["tt_opd"]["update_s"] / figures["grpo"]["update_s"], 3),
        "step": round(figures["tt_opd"]["step_s"] / figures["grpo"]["step_s"], 3),
    }
    result = {"benchmark": "train", "figures": figures, "context": context()}
    for name in runs:
        f = figures[name]
        print(f"{name:15s} step {f['step_s']:.3f} s wall, {f['step_cpu_s']:.3f} s cpu (update {f['update_s']:.3f} s / "
              f"{f['update_cpu_s']:.3f} s cpu, rollout {f['rollout_s']:.3f} s / {f['rollout_cpu_s']:.3f} s cpu)  "
              f"rollout {f['rollout_tokens_per_s']:.0f} tok/s, {f['rollout_cpu_ms_per_token']:.2f} cpu ms/token, "
              f"{f['rollout_episodes_per_s']:.2f} episodes/s, env share {100 * f['env_share_of_rollout']:.2f}%, "
              f"peak RSS {f['peak_rss_mb_after_run']} MB")
    ratio = figures["tt_opd_over_grpo"]
    print(f"TT-OPD / GRPO: update x{ratio['update']:.2f}, whole step x{ratio['step']:.2f}")
    print(json.dumps(result, indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
