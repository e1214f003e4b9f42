"""Model-backed agents for `medgym eval`: a local transformers model (``hf:PATH``) and any OpenAI-compatible
chat endpoint (``openai:URL``, e.g. a vLLM server).

Importing this module registers both kinds with ``medgym.runtime.agents.register_agent`` (the runtime never
imports rl or torch); ``medgym.agents.make_agent``, which the CLI uses, imports it on first use of those prefixes.

``HFAgent`` opens the episode with ``open_conversation``, the function the trainer's rollouts use, and takes
its prompt form and sampling settings from the checkpoint's run, so a checkpoint is evaluated on exactly the
token sequences it was trained on. ``OpenAIAgent`` speaks the chat
completions protocol with the standard library only: the domain's tools go in ``tools``, the server's
assistant message (``content`` and/or ``tool_calls``) is returned to the env as is, and the env's parser reads
it. Tool results go back as ``tool`` messages answering each ``tool_call_id``, or as one user message when
the server put its calls in the text.
"""
from __future__ import annotations

import functools
import json
import os
import time
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


SAMPLING_KEYS = ("prompt", "max_new_tokens", "max_turns", "temperature", "top_p", "context_limit")
"""The rollout settings a checkpoint's training run fixes and its evaluation inherits."""


def trained_settings(path: str) -> dict:
    """The rollout settings of the run a checkpoint came from (RUN/config.yaml beside RUN/checkpoints/), or {}.

    A checkpoint at RUN/checkpoints/step-N/model was trained on prompts rendered with RUN's ``rollout``
    section; evaluating it with other settings would score a different task than the one it learned.
    """
    from pathlib import Path

    import yaml

    folder = Path(path)
    if folder.parent.parent.name != "checkpoints":
        return {}
    config = folder.parent.parent.parent / "config.yaml"
    try:
        rollout = (yaml.safe_load(config.read_text(encoding="utf-8")) or {}).get("rollout") or {}
    except (OSError, yaml.YAMLError, AttributeError):
        return {}
    return {k: rollout[k] for k in SAMPLING_KEYS if k in rollout}


class HFAgent:
    """``hf:PATH``: a local Hugging Face causal LM (or ``hf:smollm2-135m-instruct``, the embedded default).

    Options: ``max_new_tokens`` per turn (512), ``temperature`` (0: greedy), ``top_p`` (1), ``prompt``
    ("policy" or "card"), ``context_limit`` (tokens; the episode stops generating past it), ``seed`` (the
    sampling seed), ``dtype``, ``device``. For a checkpoint of a local training run, the options not given
    default to that run's rollout settings (``trained_settings``), so it sees the prompt it was trained on.
    """

    def __init__(self, name: str, *, max_new_tokens: int | None = None, temperature: float | None = None,
                 top_p: float | None = None, prompt: str | None = None, context_limit: int | None = None,
                 seed: int | None = None, dtype: str = "float32", device: str = "auto"):
        from medgym.rl.local.chat import ChatFormat
        from medgym.rl.local.models import pick_device, stop_token_ids

        self.name = name
        self.path = name.split(":", 1)[1]
        if not self.path:
            raise ValueError("hf: needs a model folder, e.g. hf:runs/r1/checkpoints/step-000010/model")
        given = {"max_new_tokens": max_new_tokens, "temperature": temperature, "top_p": top_p, "prompt": prompt,
                 "context_limit": context_limit}
        settings = {"max_new_tokens": 512, "temperature": 0.0, "top_p": 1.0, "prompt": "policy",
                    "context_limit": 32768, **trained_settings(self.path)}
        settings.update({k: v for k, v in given.items() if v is not None})
        self.settings = {k: settings[k] for k in given}
        self.model, self.tokenizer = _load(self.path, dtype, str(pick_device(device)))
        self.fmt = ChatFormat(self.tokenizer, self.settings["prompt"])
        self.stop_ids = stop_token_ids(self.model, self.tokenizer)
        self.max_new_tokens, self.temperature = self.settings["max_new_tokens"], self.settings["temperature"]
        self.top_p, self.context_limit = self.settings["top_p"], self.settings["context_limit"]
        self.seed, self.model_id = seed, self.path
        self.conversation = None
        self.input: dict = {}
        self.usage = {"prompt_tokens": 0, "completion_tokens": 0, "requests": 0}

    def start(self, env, observation: str, info: dict) -> None:
        import hashlib

        import torch

        from medgym.rl.local.chat import open_conversation

        if self.seed is not None:
            torch.manual_seed(self.seed)  # the trial's sampling seed: a rerun of the trial samples the same
        self.conversation = open_conversation(self.fmt, env, info)
        text = self.conversation.text
        self.input = {"prompt": self.fmt.prompt, "text": text, "tokens": len(self.conversation),
                      "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
                      "messages": self.conversation.opening_messages()}

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
        self.usage["prompt_tokens"] += len(conversation)
        generated = generate_turns(self.model, [conversation.ids], [budget], pad_id=pad, stop_ids=self.stop_ids,
                                   temperature=self.temperature or 1.0, top_p=self.top_p,
                                   greedy=not self.temperature)[0]
        self.usage["completion_tokens"] += len(generated)
        self.usage["requests"] += 1
        return conversation.add_assistant(generated, self.stop_ids)


# -- an OpenAI-compatible endpoint --------------------------------------------------------------------------------

RETRY_STATUS = (408, 409, 429, 500, 502, 503, 504)


class OpenAIAgent:
    """``openai:URL``: chat completions at ``URL`` (the API base, e.g. ``http://localhost:8000/v1``).

    Options: ``model`` (default: the first model the server lists at ``/models``), ``api_key`` (default: the
    ``OPENAI_API_KEY`` variable, else none), ``temperature`` (0), ``top_p`` (1), ``max_new_tokens`` (1024,
    sent as ``max_tokens``), ``prompt`` ("policy": the policy with the tools in ``tools``; "card": the card
    with one-line signatures in the system message), ``seed`` (sent as ``seed``), ``timeout`` (seconds per
    request), ``retries`` (3: a refused connection, a timeout or HTTP 408/409/429/5xx is retried after
    ``backoff`` x 1, 2, 4... seconds).
    """

    def __init__(self, name: str, *, model: str | None = None, api_key: str | None = None,
                 temperature: float | None = None, top_p: float | None = None, max_new_tokens: int | None = None,
                 prompt: str | None = None, seed: int | None = None, timeout: float = 120.0, retries: int = 3,
                 backoff: float = 0.5, context_limit: int | None = None):
        self.name = name
        base = name.split(":", 1)[1].rstrip("/")
        if not base.startswith(("http://", "https://")):
            raise ValueError(f"openai: needs an http(s) URL, e.g. openai:http://localhost:8000/v1 (got {base!r})")
        if prompt not in (None, "policy", "card"):
            raise ValueError(f"prompt must be 'policy' or 'card', got {prompt!r}")
        self.base = base[: -len("/chat/completions")] if base.endswith("/chat/completions") else base
        self.api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        self.model = model
        self.temperature = 0.0 if temperature is None else temperature
        self.top_p = 1.0 if top_p is None else top_p
        self.max_tokens = max_new_tokens or 1024
        self.prompt, self.seed = prompt or "policy", seed
        self.timeout, self.retries, self.backoff = timeout, retries, backoff
        self.messages: list[dict] = []
        self.tools: list[dict] | None = []
        self.requests = 0
        self.input: dict = {}
        self.usage = {"prompt_tokens": 0, "completion_tokens": 0, "requests": 0, "retries": 0}

    @property
    def model_id(self) -> str | None:
        return self.model

    def _request(self, path: str, payload: dict | None = None) -> dict:
        """One request, retried with exponential backoff on failures a server recovers from."""
        for attempt in range(self.retries + 1):
            try:
                return self._request_once(path, payload)
            except _Retryable as exc:
                if attempt == self.retries:
                    raise EndpointError(f"{exc} (after {self.retries + 1} attempts)") from None
                self.usage["retries"] += 1
                time.sleep(self.backoff * 2 ** attempt)
        raise AssertionError("unreachable")

    def _request_once(self, path: str, payload: dict | None) -> dict:
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
            error = _Retryable if exc.code in RETRY_STATUS else EndpointError
            raise error(f"{self.base}{path}: HTTP {exc.code}: {detail}") from None
        except (urllib.error.URLError, OSError) as exc:  # refused, reset, timed out: worth another try
            raise _Retryable(f"{self.base}{path}: {getattr(exc, 'reason', exc)}") from None
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
        import hashlib

        from medgym.runtime.prompt import message_text, opening_messages

        # The server applies the chat template and renders `tools` itself (template_tools=True); a multimodal
        # env's images go to the server as OpenAI image content parts.
        self.messages, self.tools = opening_messages(self.prompt, info["system"], info["ticket"], info["tools"],
                                                     env.domain.spec.card.model_dump(), True, info.get("images"))
        sent = json.dumps({"messages": self.messages, "tools": self.tools}, ensure_ascii=False, sort_keys=True)
        self.input = {"prompt": self.prompt, "messages": [dict(m) for m in self.messages],
                      "tools": [t["function"]["name"] for t in self.tools or []],
                      "sha256": hashlib.sha256(sent.encode("utf-8")).hexdigest(),
                      "text": "\n\n".join(message_text(m["content"]) for m in self.messages)}

    def act(self, observation: str, info: dict) -> dict:
        if len(self.messages) > 2:
            self.messages += _result_messages(self.messages[-1], info.get("tool_results") or [], observation)
        payload = {"model": self._model_name(), "messages": self.messages, "temperature": self.temperature,
                   "top_p": self.top_p, "max_tokens": self.max_tokens}
        if self.tools:
            payload["tools"] = self.tools
        if self.seed is not None:
            payload["seed"] = self.seed
        answer = self._request("/chat/completions", payload)
        self.requests += 1
        usage = answer.get("usage") if isinstance(answer, dict) else None
        self.usage["requests"] += 1
        if isinstance(usage, dict):
            for key in ("prompt_tokens", "completion_tokens"):
                self.usage[key] += int(usage.get(key) or 0)
        try:
            message = answer["choices"][0]["message"]
        except (KeyError, IndexError, TypeError):
            raise EndpointError(f"{self.base}/chat/completions: no choices[0].message in {str(answer)[:200]}") from None
        kept = {"role": "assistant", "content": message.get("content") or ""}
        if message.get("tool_calls"):
            kept["tool_calls"] = message["tool_calls"]
        self.messages.append(kept)
        return kept


class _Retryable(EndpointError):
    """A failure worth retrying (connection, timeout, 408/409/429/5xx)."""


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
