"""Does training learn? GRPO and TT-OPD for a fixed number of steps on a small curriculum, over seeds.

    nice -n 5 python benchmarks/learn_bench.py [--steps 100] [--seeds 0 1] [--out DIR] [--json out.json]
    nice -n 5 python benchmarks/learn_bench.py --model embedded --steps 6 --seeds 0   # SmolLM2-135M (slow)

The curriculum is the mini fixture domain (``tests/compiler/fixtures/mini``: one pneumonia family, a vitals
lookup, labs, a CURB-65 calculator and a submission), scored on accuracy (the mean of the CURB-65 total and the
disposition, each exact). Its ticket carries what the answer mostly depends on: mild cases are 18-60 years old
(CURB-65 0, home), severe ones 66-95 with abnormal vitals and labs (mostly ICU).

The default model is the tests' tiny random Llama (2 layers, 64 wide, a BPE trained on the specs), first taught
the *format* only: a few hundred supervised steps on the episode openings with a well-formed ``submit_answer``
call whose values are drawn uniformly at random each time, so it starts with a spread of answers and no
knowledge of which is right. Reinforcement learning then has to find the content. ``--model embedded`` trains
SmolLM2-135M-Instruct instead, as shipped (expect ~1 min per step on a shared 2-core machine).

Per step it prints reward, correct rate, turns, tool calls, response length and the monologue rate, writes
``metrics.jsonl`` and the plots of every run under ``--out``, and ends with each arm's reward over its first and
last steps (mean and spread over seeds) and whether it rose. Wall and CPU (user+sys) seconds are reported per arm.
"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _context import context  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MINI = ROOT / "tests" / "compiler" / "fixtures" / "mini"
WINDOW = 3  # steps averaged at each end of a run for the before/after figure


def _config(model_dir: Path, build: Path, algorithm: str, steps: int, seed: int, embedded: bool,
            lr: float | None = None) -> dict:
    # max_new_tokens must hold the whole submission: with the tiny BPE `<tool_call>{...}</tool_call><|im_end|>`
    # is 47-48 tokens, and a cut call never parses (40 made every episode score 0).
    return {
        "model": {"path": str(model_dir)},
        "data": {"build": str(build), "eval_tasks": 4},
        "rollout": {"group_size": 6, "prompts_per_step": 2, "max_turns": 1, "max_new_tokens": 64,
                    "max_length": 128, "context_limit": 2048, "temperature": 1.0, "prompt": "card"},
        "reward": {"mode": "accuracy"},
        "algorithm": {"name": algorithm, "kl_coef": 1.0 if algorithm == "tt_opd" else 0.0, "ema_every": 2,
                      "hard_copy_every": 10},
        "optim": {"lr": lr or (1e-5 if embedded else 2e-4), "steps": steps, "seed": seed,
                  "micro_batch_size": 2 if embedded else 8},
        "run": {"eval_every": steps, "save_every": 10_000, "tensorboard": False},  # eval once, at the end
    }


def warm_start(model_dir: Path, build: Path, out: Path, sft_steps: int, seed: int) -> Path:
    """Teach the tiny model the call format with random answers (values uniform, fresh at every step)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from medgym.rl.local.chat import ChatFormat, open_conversation
    from medgym.runtime.env import make_env
    from medgym.runtime.evaluate import select_tasks
    from medgym.runtime.build import Build

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    fmt = ChatFormat(tokenizer, "card")
    env = make_env(build, "clinic")
    openings = []
    for _, task_id in select_tasks(Build.open(build), ["clinic"], "train", None):
        _, info = env.reset(options={"task_id": task_id})
        openings.append(open_conversation(fmt, env, info).ids)
    rng = random.Random(seed)
    torch.manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(sft_steps):
        loss = 0.0
        for prompt in rng.sample(openings, min(8, len(openings))):
            call = {"name": "submit_answer", "arguments": {"curb65": rng.randint(0, 5),
                                                          "disposition": rng.choice(["home", "ward", "icu"])}}
            answer = tokenizer(f"<tool_call>{json.dumps(call)}</tool_call><|im_end|>",
                               add_special_tokens=False)["input_ids"]
            ids = torch.tensor([prompt + answer])
            labels = torch.tensor([[-100] * len(prompt) + answer])
            loss = model(input_ids=ids, labels=labels).loss
            loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def run_arm(model_dir: Path, build: Path, run_dir: Path, algorithm: str, steps: int, seed: int,
            embedded: bool, lr: float | None = None) -> dict:
    from medgym.cli.plot import plot_run
    from medgym.rl.config import TrainConfig
    from medgym.rl.local import Trainer

    config = TrainConfig.model_validate(_config(model_dir, build, algorithm, steps, seed, embedded, lr))
    trainer = Trainer(config, run_dir, build)
    wall, cpu = time.perf_counter(), time.process_time()
    rows = []
    while trainer.step < steps:
        m = trainer.train_step()
        rows.append(m)
        held_out = f"  eval reward {m['eval/reward']:.3f}" if "eval/reward" in m else ""
        print(f"{algorithm:6s} seed {seed} step {m['step']:3d}  reward {m['reward']:.3f}  correct "
              f"{m['correct_rate']:.2f}  turns {m['turns']:.2f}  calls {m['tool_calls']:.2f}  len "
              f"{m['response_length']:5.1f}  monologue {m['monologue_rate']:.2f}{held_out}  {m['step_s']:.1f}s",
              flush=True)
    trainer.log.close()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    plot_run(run_dir)
    evals = [r["eval/reward"] for r in rows if "eval/reward" in r]
    return {"rewards": [r["reward"] for r in rows], "correct": [r["correct_rate"] for r in rows],
            "eval_rewards": evals, "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
            "before": statistics.fmean(r["reward"] for r in rows[:WINDOW]),
            "after": statistics.fmean(r["reward"] for r in rows[-WINDOW:])}


def summarise(runs: dict[str, list[dict]]) -> dict:
    out = {}
    for algorithm, seeds in runs.items():
        before = [s["before"] for s in seeds]
        after = [s["after"] for s in seeds]
        gains = [a - b for a, b in zip(after, before)]
        out[algorithm] = {
            "before_mean": round(statistics.fmean(before), 4), "after_mean": round(statistics.fmean(after), 4),
            "gain_mean": round(statistics.fmean(gains), 4),
            "gain_spread": round(statistics.pstdev(gains), 4) if len(gains) > 1 else 0.0,
            "gains": [round(g, 4) for g in gains],
            "rose": all(g > 0 for g in gains),
            "wall_s": [s["wall_s"] for s in seeds], "cpu_s": [s["cpu_s"] for s in seeds],
            "eval_rewards": [s["eval_rewards"] for s in seeds],
        }
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--arms", nargs="+", default=["grpo", "tt_opd"], choices=["grpo", "tt_opd"])
    parser.add_argument("--model", default="tiny", help="tiny (format-warmed tiny Llama) or embedded (SmolLM2-135M)")
    parser.add_argument("--sft-steps", type=int, default=150, help="format warm-up steps of the tiny model")
    parser.add_argument("--lr", type=float, default=None, help="learning rate (default 2e-4 tiny: 2e-3 collapses responses in 3 steps; 1e-5 embedded)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--out", type=Path, default=None, help="keep the runs (metrics, plots) here")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)

    import torch

    from medgym.compiler.pipeline import compile_specs
    from medgym.rl.local.models import embedded_model_dir
    from medgym.rl.local.tiny import build_tiny_model

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        work = args.out or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        build = compile_specs(MINI, work / "build").out
        t0 = time.perf_counter()
        if args.model == "embedded":
            model_dir = embedded_model_dir()
        else:
            raw = build_tiny_model(work / "tiny", hidden=64, layers=2, max_positions=2048)
            model_dir = warm_start(raw, build, work / "warm", args.sft_steps, seed=0)
        setup_s = time.perf_counter() - t0
        runs = {arm: [run_arm(model_dir, build, work / f"{arm}-seed{seed}", arm, args.steps, seed,
                              args.model == "embedded", args.lr) for seed in args.seeds] for arm in args.arms}
    figures = {"model": args.model, "steps": args.steps, "seeds": args.seeds, "window": WINDOW,
               "setup_s": round(setup_s, 1), "arms": summarise(runs),
               "per_step_reward": {arm: [s["rewards"] for s in seeds] for arm, seeds in runs.items()}}
    for arm, f in figures["arms"].items():
        print(f"{arm:6s} reward first {WINDOW} steps {f['before_mean']:.3f} -> last {WINDOW} {f['after_mean']:.3f}  "
              f"gain {f['gain_mean']:+.3f} (spread {f['gain_spread']:.3f} over {len(args.seeds)} seeds: "
              f"{f['gains']})  rose on every seed: {f['rose']}  wall {f['wall_s']} s, cpu {f['cpu_s']} s")
    result = {"benchmark": "learn", "figures": figures, "context": context()}
    print(json.dumps(result, indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
