"""`medgym run`: play one episode in the terminal, typing tool calls (or watch an agent play it)."""
from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Optional

import typer
from rich import box
from rich.table import Table

from medgym.cli._app import abort, app, build_or_abort, console_err

HELP = """Type a tool call and press enter. Any format a model may use works, or the shorthand
  TOOL key=value key=value      (values are read as JSON when they parse, else as text;
                                 a list parameter takes a,b,c without quotes or brackets)
Commands (none of them costs a turn):
  :tools  the tools with their signatures    :tool NAME  one tool's full schema
  :policy  the domain's policy    :ticket  the ticket again    :reference  the reference solution
  :help  this text    :quit  stop"""


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
    if task is not None and "/" not in task:
        abort(f"no task {task!r}: a task id reads DOMAIN/FAMILY-vN/NNNN (see `medgym list`), "
              "or pick a domain with --domain")
    try:
        name = domain or (task.split("/", 1)[0] if task else Build.open(folder).domain_names[0])
        env = make_env(folder, name, split=split)
        observation, info = env.reset(seed=seed, options={"task_id": task} if task else None)
        player = make_agent(agent) if agent else None
    except (BuildError, UnknownAgent, IndexError) as exc:
        abort(str(exc) or "the build has no domains")
    console_err.rule(f"{info['task_id']}  ({info['split']}, max {env.max_turns} turns)")
    console_err.print(info["ticket"], highlight=False, markup=False)
    if player is None:
        console_err.print("type :help for the commands, :tools for the tools (they cost no turn)", style="dim")
    if player is not None:
        player.start(env, observation, info)
    done = False
    while not done:
        action = player.act(observation, info) if player else _prompt(env, info)
        if action is None:
            return
        if player:
            console_err.print(f"[cyan]> {action}[/]", highlight=False, soft_wrap=True)
        observation, reward, terminated, truncated, info = env.step(action)
        console_err.print(observation, highlight=False, markup=False, soft_wrap=True)
        done = terminated or truncated
    console_err.rule("end" + (" (turn limit)" if truncated else ""))
    _print_outcome(env, info)
    typer.echo(json.dumps({"task_id": env.episode.task.task_id, "reward": reward,
                           "components": info["reward_components"],
                           "violations": [v["id"] for v in info["safety_violations"]]}, indent=1))


def _print_outcome(env, info: dict) -> None:
    """The truth beside the answer, field by field, the process items missed and the rules violated."""
    from medgym.runtime.evaluate import explain

    found = explain(env.domain, env.episode, info["safety_violations"])
    answer = env.episode.answer or {}
    table = Table(title="answer against the truth", box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("field", "submitted", "truth", "score"):
        table.add_column(column, justify="right" if column == "score" else "left")
    for name, score in found["fields"].items():
        table.add_row(name, _text(answer.get(name)), _text(found["truth"].get(name)), f"{score:.2f}",
                      style=None if score >= 1.0 else "red")
    console_err.print(table)
    if not answer:
        console_err.print("no answer was submitted", style="red")
    missed = found["process_missed"]
    console_err.print(f"process items missed ({len(missed)}): {'; '.join(missed) or 'none'}", highlight=False,
                      markup=False)
    for rule in found["rules_fired"]:
        console_err.print(f"violated {rule['id']} ({rule.get('severity')}, {rule.get('category')}): "
                          f"{rule.get('message', '')}", highlight=False, markup=False, style="red")


def _text(value) -> str:
    return "-" if value is None else value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _prompt(env, info: dict):
    """One action typed by the author; None to stop. Commands are answered here and never cost a turn."""
    left = env.max_turns - env.episode.turns
    while True:
        try:
            line = console_err.input(f"[bold]({left} turn{'s' if left != 1 else ''} left) > [/]").strip()
        except (EOFError, KeyboardInterrupt):
            return None
        if not line:
            continue
        if line in (":quit", ":q"):
            return None
        if line.startswith(":"):
            _command(env, info, line)
        else:
            return _shorthand(line, env.domain.tools) or line


def _command(env, info: dict, line: str) -> None:
    from medgym.runtime.prompt import tool_signatures

    word, _, rest = line.partition(" ")
    if word == ":help":
        text = HELP
    elif word == ":tools":
        text = tool_signatures(env.tools)
    elif word == ":tool":
        tool = env.domain.tools.get(rest.strip())
        text = json.dumps(tool.openai(), indent=1) if tool else f"no tool {rest.strip()!r}; :tools lists them"
    elif word == ":policy":
        text = info.get("system") or env.domain.spec.policy
    elif word == ":ticket":
        text = env.episode.task.ticket
    elif word == ":reference":
        text = "\n".join(f"{step.name} {json.dumps(step.arguments, ensure_ascii=False)}"
                         for step in env.episode.task.reference)
    else:
        text = f"unknown command {word}; :help lists them"
    console_err.print(text, markup=False, highlight=False)


def _shorthand(line: str, tools: dict | None = None) -> str | None:
    """`get_vital_signs patient_id=ED-1` -> a Hermes tool call; None when the line is not that shorthand.

    A value that is not JSON is text, or, for a parameter the tool declares as a list, comma-separated items
    (`order_labs tests=cbc,lactate`): nobody should have to type JSON quotes at a prompt."""
    try:
        words = shlex.split(line)
    except ValueError:
        return None
    if not words or not words[0].isidentifier() or not all("=" in w for w in words[1:]):
        return None
    tool = (tools or {}).get(words[0])
    properties = tool.spec.parameters.get("properties", {}) if tool else {}
    arguments = {}
    for word in words[1:]:
        key, _, raw = word.partition("=")
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        if (properties.get(key) or {}).get("type") == "array" and not isinstance(value, list):
            text = raw[1:-1] if raw.startswith("[") and raw.endswith("]") else raw  # shlex ate the quotes
            value = [item.strip() for item in text.split(",") if item.strip()]
        arguments[key] = value
    return "<tool_call>" + json.dumps({"name": words[0], "arguments": arguments}, ensure_ascii=False) + "</tool_call>"
