"""The text of an episode's opening, as a model is shown it: one rendering for training and evaluation.

``opening_messages`` builds the system and user messages from the domain's policy (``prompt: policy``) or its
card with one-line tool signatures (``prompt: card``); the trainer's chat rendering (medgym.rl.local.chat),
the ``hf:`` and ``openai:`` agents and ``medgym run`` all take it from here. Nothing here needs a tokenizer.
"""
from __future__ import annotations

import json
from collections.abc import Sequence

__all__ = ["CALL_FORMAT", "PROMPTS", "message_text", "opening_messages", "tool_signatures"]

PROMPTS = ("policy", "card")

CALL_FORMAT = (
    'For each function call, return a JSON object with the function name and arguments within '
    '<tool_call></tool_call> XML tags:\n<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n'
    '</tool_call>'
)


def tool_signatures(tools: Sequence[dict]) -> str:
    """One line per tool: ``name(param: type, choice: "a"|"b", [optional: type]) - first sentence``.

    The short form of the tool list for ``prompt: card``: enum values stay (a call with a wrong value fails
    validation), parameter descriptions go.
    """
    lines = []
    for tool in tools:
        function = tool.get("function", tool)
        schema = function.get("parameters") or {}
        required = set(schema.get("required") or [])
        params = []
        for name, spec in (schema.get("properties") or {}).items():
            text = f"{name}: {_type_text(spec)}"
            params.append(text if name in required else f"[{text}]")
        description = (function.get("description") or "").split(". ")[0].rstrip(".")
        lines.append(f"{function['name']}({', '.join(params)}) - {description}")
    return "\n".join(lines)


def _type_text(spec: dict) -> str:
    if "enum" in spec:
        return "|".join(json.dumps(v) for v in spec["enum"])
    if spec.get("type") == "array":
        return f"list of {_type_text(spec.get('items') or {})}"
    kind = spec.get("type", "any")
    return "/".join(kind) if isinstance(kind, list) else str(kind)


def opening_messages(prompt: str, system: str, ticket: str, tools: Sequence[dict], card: dict | None,
                     template_tools: bool, images: Sequence[dict] | None = None) -> tuple[list[dict], list | None]:
    """The episode's opening as messages plus the ``tools`` to hand the template (None when the tool list is in
    the system prompt). The one rendering of the prompt that training, ``hf:`` and ``openai:`` evaluation share:
    ``template_tools`` says whether whoever applies the chat template (the tokenizer here, the server for an
    endpoint) renders ``tools`` itself. ``images`` (a multimodal env's ``info["images"]``, OpenAI image content
    parts) make the user message a list of parts: the ticket's text, then the images."""
    messages, listed = _opening(prompt, system, ticket, tools, card, template_tools)
    if images:
        messages[1] = {"role": "user", "content": [{"type": "text", "text": ticket}, *images]}
    return messages, listed


def message_text(content) -> str:
    """A message's text, whether its content is a string or a list of content parts (images left out)."""
    if isinstance(content, str):
        return content
    return "\n".join(part.get("text", "") for part in content or [] if isinstance(part, dict) and part.get("type") == "text")


def _opening(prompt: str, system: str, ticket: str, tools: Sequence[dict], card: dict | None,
             template_tools: bool) -> tuple[list[dict], list | None]:
    if prompt == "card" and card:
        text = "\n\n".join(part for part in (card.get("description"), card.get("task")) if part)
        text += "\n\nTools:\n" + tool_signatures(tools) + "\n\n" + CALL_FORMAT
        return [{"role": "system", "content": text}, {"role": "user", "content": ticket}], None
    if template_tools:
        return [{"role": "system", "content": system}, {"role": "user", "content": ticket}], list(tools)
    listing = "\n".join(json.dumps(t, ensure_ascii=False) for t in tools)
    text = (f"{system}\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
            f"You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n{listing}\n"
            f"</tools>\n\n{CALL_FORMAT}")
    return [{"role": "system", "content": text}, {"role": "user", "content": ticket}], None


