"""Env reset latency, tool-step throughput and memory per live episode, on one core.

    python benchmarks/runtime_bench.py [--build BUILD] [--domain triage] [--steps 20000] [--json]

Steps are full `env.step(text)` calls: parsing the model's text, validating the arguments against the tool's
schema, executing, and rendering the observation. Targets on the 2-core reference machine: reset <= 1 ms
median, >= 20,000 lookup/instrument steps per second, <= 2 MB per live episode.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _context import context  # noqa: E402


def call(name: str, arguments: dict) -> str:
    return "<tool_call>" + json.dumps({"name": name, "arguments": arguments}) + "</tool_call>"


def reset_latency(env, n: int) -> list[float]:
    times = []
    for seed in range(n):
        started = time.perf_counter()
        env.reset(seed=seed)
        times.append(time.perf_counter() - started)
    return times


def step_rate(env, action_for, n: int) -> tuple[float, float]:
    """Steps per second of wall time and per second of CPU time (user + sys) for one kind of call; the CPU
    figure is the steadier one on a shared machine."""
    env.reset(seed=0)
    action = action_for(env)
    done, started, cpu = 0, time.perf_counter(), time.process_time()
    while done < n:
        env.episode.turns = 0  # keep the episode open: measure steps, not resets
        env.step(action)
        done += 1
    return n / (time.perf_counter() - started), n / (time.process_time() - cpu)


def memory_per_episode(build: Path, domain: str, episodes: int) -> float:
    """Bytes per live env with an episode played to the end by the oracle (transcript kept)."""
    from medgym.runtime import make_env
    from medgym.runtime.agents import OracleAgent

    make_env(build, domain).reset(seed=0)  # load the build and generated modules outside the measurement
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    live = []
    for seed in range(episodes):
        env = make_env(build, domain)
        observation, info = env.reset(seed=seed)
        agent = OracleAgent()
        agent.start(env, observation, info)
        done = False
        while not done:
            observation, _, terminated, truncated, info = env.step(agent.act(observation, info))
            done = terminated or truncated
        live.append(env)
    gc.collect()
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return used / episodes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", type=Path, default=None, help="default: the shipped specs' build")
    parser.add_argument("--domain", default="triage")
    parser.add_argument("--steps", type=int, default=20000)
    parser.add_argument("--resets", type=int, default=2000)
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core, as the target says

    from medgym.runtime import make_env
    from medgym.shipped import ensure_build

    build = ensure_build(args.build)
    env = make_env(build, args.domain)
    env.reset(seed=0)
    lookups = [t for t in env.domain.tools.values() if t.kind == "lookup" and not t.spec.revealed_only]
    lookup = sorted(lookups, key=lambda t: not t.spec.flags)[0]  # flagged values: the costlier lookup
    instrument = next(t for t in env.domain.tools.values() if t.kind == "instrument")
    reference = {}
    for task in env.domain.tasks("train"):
        for step in task.reference:
            reference.setdefault(step.name, step.arguments)
    resets = reset_latency(env, args.resets)
    lookup_rate = step_rate(env, lambda e: call(lookup.name, {"patient_id": e.episode.case["id"]}), args.steps)
    instrument_rate = step_rate(env, lambda e: call(instrument.name, reference[instrument.name]), args.steps)
    figures = {
        "build": str(build), "domain": args.domain,
        "reset_ms_median": statistics.median(resets) * 1000, "reset_ms_p95": sorted(resets)[int(0.95 * len(resets))] * 1000,
        "lookup_tool": lookup.name,
        "lookup_steps_per_s": lookup_rate[0], "lookup_steps_per_cpu_s": lookup_rate[1],
        "instrument_tool": instrument.name,
        "instrument_steps_per_s": instrument_rate[0], "instrument_steps_per_cpu_s": instrument_rate[1],
        "bytes_per_live_episode": memory_per_episode(build, args.domain, args.episodes),
        "context": context(),
    }
    if args.json:
        print(json.dumps(figures, indent=1))
        return
    print(f"build {build}, domain {args.domain}")
    print(f"reset            median {figures['reset_ms_median']:.3f} ms  p95 {figures['reset_ms_p95']:.3f} ms  (target <= 1 ms)")
    print(f"lookup steps     {figures['lookup_steps_per_s']:,.0f} /s, {figures['lookup_steps_per_cpu_s']:,.0f} per CPU s  "
          f"({lookup.name}; target >= 20,000)")
    print(f"instrument steps {figures['instrument_steps_per_s']:,.0f} /s, {figures['instrument_steps_per_cpu_s']:,.0f} per CPU s  "
          f"({instrument.name}; target >= 20,000)")
    print(f"memory           {figures['bytes_per_live_episode'] / 1e6:.3f} MB per live episode  (target <= 2 MB)")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
