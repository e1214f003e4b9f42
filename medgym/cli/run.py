"""`medgym run`: play one episode in the terminal, typing tool calls (or watch an agent play it)."""
from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Optional

import typer

from medgym.cli._app import abort, app, build_or_abort, console_err

HELP = """Type a tool call and press enter. Any format a model may use works, or the shorthand
  TOOL key=value key=value      (values are read as JSON when they parse, else as text)
Commands: :tools  list the tools    :tool NAME  show one tool's parameters
          :reference  show the task's reference solution    :quit  stop"""


@app.command("run")
def run_command(
    domain: Optional[str] = typer.Option(None, "--domain", help="domain to play (default: the first)"),
    task: Optional[str] = typer.Option(None, "--task", help="a task id (default: drawn by --seed from --split)"),
    split: str = typer.Option("train", "--split", help="train, val or test"),
    seed: int = typer.Option(0, "--seed", help="seed for drawing the task"),
    agent: Optional[str] = typer.Option(None, "--agent", help="let an agent play (oracle, noop, ...) instead of you"),
    build: Optional[Path] = typer.Option(None, "--build", help="a build folder (default: the shipped specs)"),
) -> None:
    """Play one episode: the policy and ticket are shown, each tool call's result is printed."""
    from medgym.agents import UnknownAgent, make_agent
    from medgym.runtime.build import Build, BuildError
    from medgym.runtime.env import make_env

    folder = build_or_abort(build)
    try:
        name = domain or (task.split("/", 1)[0] if task else Build.open(folder).domain_names[0])
        env = make_env(folder, name, split=split)
        observation, info = env.reset(seed=seed, options={"task_id": task} if task else None)
        player = make_agent(agent) if agent else None
    except (BuildError, UnknownAgent, IndexError) as exc:
        abort(str(exc) or "the build has no domains")
    console_err.rule(f"{info['task_id']}  ({info['split']}, max {env.max_turns} turns)")
    console_err.print(info["ticket"], highlight=False, markup=False)
    if player is not None:
        player.start(env, observation, info)
    done = False
    while not done:
        action = player.act(observation, info) if player else _prompt(env)
        if action is None:
            return
        if player:
            console_err.print(f"[cyan]> {action}[/]", highlight=False, soft_wrap=True)
        observation, reward, terminated, truncated, info = env.step(action)
        console_err.print(observation, highlight=False, markup=False, soft_wrap=True)
        done = terminated or truncated
    console_err.rule("end" + (" (turn limit)" if truncated else ""))
    typer.echo(json.dumps({"task_id": env.episode.task.task_id, "reward": reward,
                           "components": info["reward_components"],
                           "violations": [v["id"] for v in info["safety_violations"]]}, indent=1))


def _prompt(env):
    """One action typed by the author; None to stop."""
    while True:
        try:
            line = console_err.input("[bold]> [/]").strip()
        except (EOFError, KeyboardInterrupt):
            return None
        if not line:
            continue
        if line in (":quit", ":q"):
            return None
        if line == ":help":
            console_err.print(HELP, markup=False)
        elif line == ":tools":
            console_err.print(", ".join(env.domain.tools), markup=False)
        elif line.startswith(":tool "):
            tool = env.domain.tools.get(line.split(maxsplit=1)[1])
            console_err.print(json.dumps(tool.openai(), indent=1) if tool else "no such tool", markup=False)
        elif line == ":reference":
            for step in env.episode.task.reference:
                console_err.print(f"{step.name} {json.dumps(step.arguments, ensure_ascii=False)}", markup=False)
        else:
            return _shorthand(line) or line


def _shorthand(line: str) -> str | None:
    """`get_vital_signs patient_id=ED-1` -> a Hermes tool call; None when the line is not that shorthand."""
    try:
        words = shlex.split(line)
    except ValueError:
        return None
    if not words or not words[0].isidentifier() or not all("=" in w for w in words[1:]):
        return None
    arguments = {}
    for word in words[1:]:
        key, _, raw = word.partition("=")
        try:
            arguments[key] = json.loads(raw)
        except ValueError:
            arguments[key] = raw
    return "<tool_call>" + json.dumps({"name": words[0], "arguments": arguments}, ensure_ascii=False) + "</tool_call>"
