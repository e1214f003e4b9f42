"""Playing compiled tasks by hand in tests: a domain's tasks, an env started on one task, a tool's result read
from its observation, and the reference solution replayed with tools left out or the submission changed."""
import json

from medgym.runtime import make_env
from medgym.runtime.agents.oracle import hermes
from medgym.runtime.build import SPLITS, Build


def domain_tasks(build, domain: str) -> list:
    return [t for split in SPLITS for t in Build.open(build).domain(domain).tasks(split)]


def started(build, domain: str, task):
    env = make_env(build, domain)
    env.reset(options={"task_id": task.task_id})
    return env


def result(observation: str, tool: str) -> dict:
    assert observation.startswith(f"{tool}: "), observation
    return json.loads(observation[len(tool) + 2:])


def replay(build, domain: str, task, answer: dict | None = None, skip: tuple = ()) -> tuple[float, dict]:
    """The task's reference solution without the tools in `skip`, submitting `answer`'s fields in place of the
    reference's: (reward, info) of the turn that ends the episode."""
    env = started(build, domain, task)
    submit = {name for name, tool in env.domain.tools.items() if tool.kind == "submit"}
    for step in task.reference:
        if step.name in skip:
            continue
        arguments = dict(step.arguments, **(answer or {})) if step.name in submit else step.arguments
        _, reward, terminated, _, info = env.step(hermes(step.name, arguments))
        if terminated:
            return reward, info
    raise AssertionError(f"the reference of {task.task_id} did not end the episode")
