"""The OpenRLHF agent: one compiled medgym env per sample, played by a vLLM engine over several turns.

OpenRLHF gets ``--train.agent_func_path .../medgym/rl/openrlhf/agent_func.py``, which imports ``AgentExecutor``
from here. Each vLLM engine actor loads that file by path and builds ``AgentExecutor()`` once; OpenRLHF's
``MultiTurnAgentExecutor`` loop then runs every sample with a fresh ``MedAgentInstance`` (never shared,
synchronous constructor):

``reset``  opens the task named by the label in a compiled env and renders the opening with the model's chat
           template and the domain's tools (``medgym.rl.local.chat.ChatFormat``, as the local backend does).
``step``   reads the assistant turn, passes its text to the env (whose parser reads the tool calls) and
           returns the template text that closes the turn plus the tool results and the next generation prompt
           as ``environment_feedback``; OpenRLHF tokenizes it on its own and masks it out of the loss.
end        the reward is the env's (composite or accuracy), or the cosine length reward of it when the label
           says so, counted in the assistant's own generated tokens; ``scores`` is 1.0 for a correct episode,
           0.0 otherwise (the trainer picks the teacher's hint from it, and dynamic filtering uses it); the
           extra logs hold every reward component, turns, tool calls, invalid calls and lengths.

Token-in, token-out: ``AgentExecutor`` hands the loop a thin engine wrapper that remembers each turn's sampled
ids, so a turn that ended with the template's end-of-turn token is not closed a second time (vLLM leaves the
stop token out of the text but keeps it in the ids), and an episode cut short by the token budget is scored
on its state as it stands, flagged as over length, exactly as in the local backend. The label format is in
``medgym.rl.openrlhf.dataset``.
"""
from __future__ import annotations

import contextvars
from dataclasses import dataclass, field

import torch
from openrlhf.utils.agent import AgentInstanceBase, MultiTurnAgentExecutor

from medgym.rl.length_reward import CosineLengthReward, cosine_length_reward
from medgym.rl.local.chat import ChatFormat
from medgym.rl.openrlhf.dataset import TaskLabel
from medgym.runtime.build import Build
from medgym.runtime.env import make_env
from medgym.runtime.rewards import COMPONENTS, score_episode

__all__ = ["AgentExecutor", "EpisodeOutcome", "MedAgentInstance", "outcome_logs"]

_SENTINEL = "\u2063MEDGYM-OPENRLHF-TURN\u2063"


class AgentError(RuntimeError):
    """A sample the agent cannot run (a bad label, a build that moved or changed, a template it cannot use)."""


@dataclass
class _Call:
    """What one ``AgentExecutor.execute`` call shares with the instance OpenRLHF builds inside it."""

    tokenizer: object
    instance: "MedAgentInstance | None" = None
    outputs: list = field(default_factory=list)
    """The vLLM completion of each turn (``RequestOutput.outputs[0]``), in order."""


_CALL: contextvars.ContextVar[_Call | None] = contextvars.ContextVar("medgym_openrlhf_call", default=None)


@dataclass
class EpisodeOutcome:
    """How an episode ended, and what it is worth."""

    reward: float
    """The env's reward: the composite, or accuracy in ``accuracy`` mode."""
    correct: bool
    components: dict
    counts: dict
    overflow: bool = False
    """Cut short by the token budget before the env ended it (scored as it stood; over length for cosine)."""


def outcome_logs(outcome: EpisodeOutcome | None, *, assistant_tokens: int = 0, shaped: float | None = None) -> dict:
    """The extra logs of a sample: the same keys for every sample and every turn (OpenRLHF batches them)."""
    logs = {f"env/{name}": 0.0 for name in COMPONENTS}
    logs.update({"env/reward": 0.0, "env/correct": 0.0, "env/turns": 0.0, "env/tool_calls": 0.0,
                 "env/valid_calls": 0.0, "env/invalid_calls": 0.0, "env/no_call_turns": 0.0, "env/submitted": 0.0,
                 "env/overflow": 0.0, "env/done": 0.0, "env/assistant_tokens": float(assistant_tokens),
                 "env/reward_shaped": 0.0})
    if outcome is None:
        return logs
    for name, value in outcome.components.items():
        logs[f"env/{name}"] = float(value)
    for name in ("turns", "tool_calls", "valid_calls", "invalid_calls", "no_call_turns", "submitted"):
        logs[f"env/{name}"] = float(outcome.counts.get(name, 0))
    logs.update({"env/reward": float(outcome.reward), "env/correct": float(outcome.correct),
                 "env/overflow": float(outcome.overflow), "env/done": 1.0,
                 "env/reward_shaped": float(outcome.reward if shaped is None else shaped)})
    return logs


class MedAgentInstance(AgentInstanceBase):
    """One sample's episode. OpenRLHF builds it with no arguments inside ``AgentExecutor.execute``."""

    def __init__(self, *args, **kwargs):
        call = _CALL.get()
        if call is None:
            raise AgentError("MedAgentInstance runs under medgym's AgentExecutor (this file's AgentExecutor), "
                             "which gives it the tokenizer")
        call.instance = self
        self.call = call
        self.tokenizer = call.tokenizer
        self.label: TaskLabel | None = None
        self.env = None
        self.fmt: ChatFormat | None = None
        self.messages: list[dict] = []
        self.tools: list | None = None
        self.outcome: EpisodeOutcome | None = None

    async def reset(self, states: dict, **kwargs) -> dict:
        try:
            self.label = label = TaskLabel.parse(states["label"])
        except ValueError as exc:
            raise AgentError(str(exc)) from None
        manifest_hash = Build.open(label.build).manifest.spec_hash
        if label.build_hash and manifest_hash != label.build_hash:
            raise AgentError(f"the build at {label.build} has spec hash {manifest_hash[:12]}, the dataset was "
                             f"exported from {label.build_hash[:12]}: re-export the dataset or restore the build")
        self.env = make_env(label.build, label.domain, split=label.split, reward_mode=label.reward_mode,
                            max_turns=label.max_turns)
        _, info = self.env.reset(options={"task_id": label.task_id})
        self.fmt = ChatFormat(self.tokenizer, label.prompt)
        self.messages, self.tools = self.fmt.opening(info["system"], info["ticket"], info["tools"],
                                                      self.env.domain.spec.card.model_dump())
        return {"observation": self.fmt.render(self.messages, self.tools, True)}

    async def step(self, states: dict, **kwargs) -> dict:
        content, closing = self._read_turn(states["action_text"])
        observation, reward, terminated, truncated, info = self.env.step(content)
        self.messages.append({"role": "assistant", "content": content})
        if terminated or truncated:
            components = dict(info.get("reward_components") or {})
            self.outcome = EpisodeOutcome(float(reward), float(reward) >= self.label.correct_threshold, components,
                                          dict(info.get("episode") or self.env.summary()))
            return {"rewards": torch.tensor(float(reward)), "scores": float(self.outcome.correct),
                    "environment_feedback": closing, "done": True, "extra_logs": outcome_logs(self.outcome)}
        before = self.fmt.render(self.messages, self.tools, False)
        self.messages.append(self.fmt.tool_message(observation))
        after = self.fmt.render(self.messages, self.tools, True)
        if not after.startswith(before):
            raise AgentError("the chat template is not prefix-stable: adding a tool message rewrote earlier turns")
        return {"rewards": torch.tensor(0.0), "scores": 0.0, "environment_feedback": closing + after[len(before):],
                "done": False, "extra_logs": outcome_logs(None)}

    def _read_turn(self, action_text: str) -> tuple[str, str]:
        """The turn's content (what the env reads) and the template text that must follow it.

        With the sampled ids at hand, a final special token that begins the template's closing text (ChatML's
        ``<|im_end|>``) is the model's own end of turn: it is not in the content and not repeated.
        """
        head, _, closing = self.fmt.render(self.messages + [{"role": "assistant", "content": _SENTINEL}],
                                           self.tools, False).partition(_SENTINEL)
        ids = list(self.call.outputs[-1].token_ids) if self.call.outputs else []
        special = set(getattr(self.tokenizer, "all_special_ids", []) or [])
        if ids and ids[-1] in special:
            stop_text = self.tokenizer.decode(ids[-1:], skip_special_tokens=False)
            content = self.tokenizer.decode(ids[:-1], skip_special_tokens=False)
            if closing.startswith(stop_text):
                closing = closing[len(stop_text):]
            return content, closing
        if ids:
            return self.tokenizer.decode(ids, skip_special_tokens=False), closing
        eos = getattr(self.tokenizer, "eos_token", None)  # no ids (a plain engine): read the text alone
        if eos and action_text.endswith(eos) and closing.startswith(eos):
            return action_text[: -len(eos)], closing[len(eos):]
        return action_text, closing

    def finish(self) -> EpisodeOutcome:
        """The outcome; an episode the token budget cut short is scored on its state as it stands."""
        if self.outcome is None:
            result = score_episode(self.env.domain, self.env.episode)
            reward = result.components["accuracy"] if self.env.reward_mode == "accuracy" else result.total
            self.outcome = EpisodeOutcome(float(reward), float(reward) >= self.label.correct_threshold,
                                          dict(result.components), self.env.summary(), overflow=True)
        return self.outcome


class _RecordingEngine:
    """The vLLM engine as the executor sees it, remembering each turn's completion for the instance."""

    def __init__(self, engine, call: _Call):
        self.engine, self.call = engine, call

    async def generate(self, prompt_token_ids, sampling_params, multi_modal_data=None):
        output = await self.engine.generate(prompt_token_ids, sampling_params, multi_modal_data=multi_modal_data)
        self.call.outputs.append(output.outputs[0])
        return output

    def __getattr__(self, name):
        return getattr(self.engine, name)


def shaped_reward(outcome: EpisodeOutcome, label: TaskLabel, assistant_tokens: int) -> float:
    """The trajectory reward: the env's, or its cosine length reward when the label asks for one."""
    if not label.cosine:
        return outcome.reward
    c = label.cosine
    constants = CosineLengthReward(correct_start=c["correct"][0], correct_end=c["correct"][1],
                                   wrong_start=c["wrong"][0], wrong_end=c["wrong"][1], exceed=c["exceed"])
    value = cosine_length_reward(torch.tensor([outcome.correct]), int(c["max_length"]),
                                 lengths=torch.tensor([assistant_tokens]), truncated=torch.tensor([outcome.overflow]),
                                 constants=constants)
    return float(value[0])


class AgentExecutor(MultiTurnAgentExecutor):
    """OpenRLHF's multi-turn loop over ``MedAgentInstance``, finishing each sample's reward and logs.

    The loop itself is OpenRLHF's (``MultiTurnAgentExecutor.execute``): token ids in, the engine's ids out
    verbatim, feedback tokenized separately and masked. Around it this class gives the instance the tokenizer
    and the sampled ids, and afterwards scores an episode the budget cut short and applies cosine shaping
    with the exact number of generated tokens (the ``action_ranges``).
    """

    def __init__(self):
        super().__init__(MedAgentInstance)

    async def execute(self, prompt, label, sampling_params, max_length: int, hf_tokenizer, llm_engine, images=None):
        call = _Call(hf_tokenizer)
        token = _CALL.set(call)
        try:
            result = await super().execute(prompt, label, sampling_params, max_length, hf_tokenizer,
                                           _RecordingEngine(llm_engine, call), images=images)
        finally:
            _CALL.reset(token)
        instance = call.instance
        outcome = instance.finish()
        assistant_tokens = sum(end - start for start, end in result["action_ranges"])
        shaped = shaped_reward(outcome, instance.label, assistant_tokens)
        result["reward"] = shaped
        result["scores"] = float(outcome.correct)
        result["extra_logs"] = outcome_logs(outcome, assistant_tokens=assistant_tokens, shaped=shaped)
        return result
