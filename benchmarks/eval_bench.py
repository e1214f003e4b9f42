"""Concurrent evaluation throughput against an OpenAI-compatible endpoint with a fixed latency.

    python benchmarks/eval_bench.py [--build BUILD] [--episodes 48] [--latency 0.05] [--turns 3] [--json]

A stdlib HTTP server answers every chat completion after `--latency` seconds with a turn that calls no tool,
so each episode is `--turns` requests. The figures are episodes per second and the speedup over one episode
at a time, for each `--concurrency`, with wall and CPU (user+sys) time: what `--concurrency` buys when the
endpoint, not medgym, is the bottleneck.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _context import context  # noqa: E402


def serve(latency: float) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            time.sleep(latency)
            body = json.dumps({"choices": [{"message": {"role": "assistant", "content": "Let me think."}}],
                               "usage": {"prompt_tokens": 100, "completion_tokens": 4}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def measure(build: Path, url: str, episodes: int, turns: int, concurrency: int) -> dict:
    from medgym.agents import load_agent_kind
    from medgym.runtime.build import Build
    from medgym.runtime.evaluate import evaluate

    load_agent_kind("openai:" + url)  # registers the model-backed agents with the runtime
    domain = Build.open(build).domain_names[0]
    trials = max(1, episodes // 8)
    with tempfile.TemporaryDirectory() as folder:
        started, cpu = time.perf_counter(), os.times()
        summary = evaluate(build, "openai:" + url, domains=[domain], split="train", limit=episodes // trials,
                           trials=trials, concurrency=concurrency, max_turns=turns, out=Path(folder) / "run.jsonl",
                           agent_options={"model": "bench"})
        wall, after = time.perf_counter() - started, os.times()
    return {"concurrency": concurrency, "episodes": summary["episodes"], "wall_s": round(wall, 3),
            "cpu_s": round((after.user - cpu.user) + (after.system - cpu.system), 3),
            "episodes_per_s": round(summary["episodes"] / wall, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", type=Path)
    parser.add_argument("--episodes", type=int, default=48)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--turns", type=int, default=3)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from medgym.shipped import ensure_build

    build = ensure_build(args.build)
    server = serve(args.latency)
    url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    measure(build, url, 8, 1, 1)  # warm-up: the build, the envs and the agent module load once, unmeasured
    rows = [measure(build, url, args.episodes, args.turns, n) for n in args.concurrency]
    server.shutdown()
    base = rows[0]["episodes_per_s"]
    for row in rows:
        row["speedup"] = round(row["episodes_per_s"] / base, 2)
        print(f"concurrency {row['concurrency']:>3}: {row['episodes']} episodes in {row['wall_s']:.2f} s wall "
              f"({row['cpu_s']:.2f} s CPU), {row['episodes_per_s']:.1f} episodes/s, x{row['speedup']:.2f}")
    if args.json:
        print(json.dumps({"context": context(), "latency_s": args.latency, "turns": args.turns, "rows": rows},
                         indent=1))


if __name__ == "__main__":
    main()
