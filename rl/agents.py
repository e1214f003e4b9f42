"""Model-backed agents for `medgym eval`: a local transformers model (``hf:PATH``) and any OpenAI-compatible
chat endpoint (``openai:URL``, e.g. a vLLM server).

Importing this module registers both kinds with ``medgym.runtime.agents.register_agent`` (the runtime never
imports rl or torch); ``medgym.agents.make_agent``, which the CLI uses, imports it on first use of those prefixes.

``HFAgent`` renders the episode with the same ``ChatFormat``/``Conversation`` the trainer uses, so a
checkpoint is evaluated on exactly the token sequences it was trained on. ``OpenAIAgent`` speaks the chat
completions protocol with the standard library only: the domain's tools go in ``tools``, the server's
assistant message (``content`` and/or ``tool_calls``) is returned to the env as is, and the env's parser reads
it. Tool results go back as ``tool`` messages answering each ``tool_call_id``, or as one user message when
the server put its calls in the text.
"""
from __future__ import annotations

import functools
import json
import os
import urllib.error
import urllib.request

from medgym.runtime.agents import register_agent

__all__ = ["EndpointError", "HFAgent", "OpenAIAgent"]


class EndpointError(RuntimeError):
    """The chat endpoint could not be reached or answered with something other than a chat completion."""


# -- a local transformers model ----------------------------------------------------------------------------------

@functools.lru_cache(maxsize=2)
def _load(path: str, dtype: str, device: str):
    """Load once per process: `evaluate` builds a fresh agent for every episode."""
    from medgym.rl.local.models import load_policy, resolve_model_path

    return load_policy(resolve_model_path(path), dtype, device)


class HFAgent:
    """``hf:PATH``: a local Hugging Face causal LM (or ``hf:smollm2-135m-instruct``, the embedded default).

    Options: ``max_new_tokens`` per turn (512), ``temperature`` (0: greedy), ``prompt`` ("policy" or "card"),
    ``context_limit`` (tokens; the episode stops generating past it), ``dtype``, ``device``.
    """

    def __init__(self, name: str, *, max_new_tokens: int = 512, temperature: float = 0.0, prompt: str = "policy",
                 context_limit: int = 32768, dtype: str = "float32", device: str = "auto"):
        from medgym.rl.local.chat import ChatFormat
        from medgym.rl.local.models import pick_device, stop_token_ids

        self.name = name
        self.path = name.split(":", 1)[1]
        if not self.path:
            raise ValueError("hf: needs a model folder, e.g. hf:runs/r1/checkpoints/step-000010/model")
        self.model, self.tokenizer = _load(self.path, dtype, str(pick_device(device)))
        self.fmt = ChatFormat(self.tokenizer, prompt)
        self.stop_ids = stop_token_ids(self.model, self.tokenizer)
        self.max_new_tokens, self.temperature, self.context_limit = max_new_tokens, temperature, context_limit
        self.conversation = None

    def start(self, env, observation: str, info: dict) -> None:
        from medgym.rl.local.chat import Conversation

        messages, tools = self.fmt.opening(info["system"], info["ticket"], info["tools"], env.domain.spec.card.model_dump())
        self.conversation = Conversation(self.fmt, messages, tools)

    def act(self, observation: str, info: dict) -> str:
        from medgym.rl.local.rollout import generate_turns

        conversation = self.conversation
        if conversation.turns:  # the env's answer to the previous turn
            conversation.add_tool(observation)
        limit = min(self.context_limit, getattr(self.model.config, "max_position_embeddings", None) or
                    self.context_limit)
        budget = min(self.max_new_tokens, limit - len(conversation))
        if budget <= 0:  # out of context: an empty turn (the env counts it as a turn without a call)
            return conversation.add_assistant([], self.stop_ids)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else min(self.stop_ids)
        generated = generate_turns(self.model, [conversation.ids], [budget], pad_id=pad, stop_ids=self.stop_ids,
                                   temperature=self.temperature or 1.0, top_p=1.0,
                                   greedy=not self.temperature)[0]
        return conversation.add_assistant(generated, self.stop_ids)


# -- an OpenAI-compatible endpoint --------------------------------------------------------------------------------

class OpenAIAgent:
    """``openai:URL``: chat completions at ``URL`` (the API base, e.g. ``http://localhost:8000/v1``).

    Options: ``model`` (default: the first model the server lists at ``/models``), ``api_key`` (default: the
    ``OPENAI_API_KEY`` variable, else none), ``temperature`` (0), ``max_tokens`` (1024), ``timeout`` (seconds).
    """

    def __init__(self, name: str, *, model: str | None = None, api_key: str | None = None,
                 temperature: float = 0.0, max_tokens: int = 1024, timeout: float = 120.0):
        self.name = name
        base = name.split(":", 1)[1].rstrip("/")
        if not base.startswith(("http://", "https://")):
            raise ValueError(f"openai: needs an http(s) URL, e.g. openai:http://localhost:8000/v1 (got {base!r})")
        self.base = base[: -len("/chat/completions")] if base.endswith("/chat/completions") else base
        self.api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        self.model = model
        self.temperature, self.max_tokens, self.timeout = temperature, max_tokens, timeout
        self.messages: list[dict] = []
        self.tools: list[dict] = []
        self.requests = 0

    def _request(self, path: str, payload: dict | None = None) -> dict:
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        data = json.dumps(payload).encode("utf-8") if payload is not None else None
        request = urllib.request.Request(self.base + path, data=data, headers=headers,
                                         method="POST" if data is not None else "GET")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                body = response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:500].decode("utf-8", "replace")
            raise EndpointError(f"{self.base}{path}: HTTP {exc.code}: {detail}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise EndpointError(f"{self.base}{path}: {getattr(exc, 'reason', exc)}") from None
        try:
            return json.loads(body)
        except ValueError:
            raise EndpointError(f"{self.base}{path}: the answer is not JSON: {body[:200]!r}") from None

    def _model_name(self) -> str:
        if self.model is None:
            listed = self._request("/models").get("data") or []
            if not listed:
                raise EndpointError(f"{self.base}/models lists no model: pass --model NAME")
            self.model = listed[0]["id"]
        return self.model

    def start(self, env, observation: str, info: dict) -> None:
        self.messages = [{"role": "system", "content": info["system"]}, {"role": "user", "content": info["ticket"]}]
        self.tools = list(info["tools"])

    def act(self, observation: str, info: dict) -> dict:
        if len(self.messages) > 2:
            self.messages += _result_messages(self.messages[-1], info.get("tool_results") or [], observation)
        payload = {"model": self._model_name(), "messages": self.messages, "tools": self.tools,
                   "temperature": self.temperature, "max_tokens": self.max_tokens}
        answer = self._request("/chat/completions", payload)
        self.requests += 1
        try:
            message = answer["choices"][0]["message"]
        except (KeyError, IndexError, TypeError):
            raise EndpointError(f"{self.base}/chat/completions: no choices[0].message in {str(answer)[:200]}") from None
        kept = {"role": "assistant", "content": message.get("content") or ""}
        if message.get("tool_calls"):
            kept["tool_calls"] = message["tool_calls"]
        self.messages.append(kept)
        return kept


def _result_messages(assistant: dict, results: list[dict], observation: str) -> list[dict]:
    """The env's answer as chat messages: one ``tool`` message per answered call id, the rest as user text."""
    calls = assistant.get("tool_calls") or []
    by_id = {r.get("call_id"): r for r in results if r.get("call_id")}
    out, answered = [], set()
    for call in calls:
        result = by_id.get(call.get("id"))
        if result is None:
            content = "not run (the call could not be parsed)"
        else:
            answered.add(call.get("id"))
            content = json.dumps(result["content"], ensure_ascii=False, default=str) if result["ok"] \
                else f"error: {result['error']}"
        out.append({"role": "tool", "tool_call_id": call.get("id"), "content": content})
    if not calls or len(answered) < len(results):
        out.append({"role": "user", "content": observation})  # calls written in the text, and parse errors
    return out


register_agent("hf", HFAgent)
register_agent("openai", OpenAIAgent)
