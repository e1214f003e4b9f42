"""Chat rendering for multi-turn episodes: token ids and an assistant mask built turn by turn.

A causal LM plays an episode as a chat: system (the domain's policy and tools), user (the ticket), then
assistant turns alternating with tool results. Training needs the whole conversation as one token sequence
with a mask that is 1 exactly on the tokens the model generated. Re-tokenising the finished transcript would
not do: decoding and re-encoding a sampled turn can give different ids (BPE is not one-to-one), and the
policy gradient must use the ids that were sampled. So ``Conversation`` grows the sequence incrementally:

* non-assistant segments (the prompt, the template's turn closings, tool results, the next generation prompt)
  are the *text difference* between two renderings of the chat template, tokenised on their own;
* assistant segments are the sampled ids themselves, stop token included.

That needs a prefix-stable template: rendering more messages must only append text. ChatML templates
(SmolLM2, Qwen2.5) are; a template that rewrites earlier turns once later ones follow is refused with a
clear error rather than silently misaligned.

Tools reach the model through the template's own tool support (``tools=``) when it has one; otherwise the
tool list goes into the system prompt with the Hermes ``<tool_call>`` convention, which the env's parser
reads.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from medgym.runtime.prompt import opening_messages, tool_signatures

__all__ = ["ChatFormat", "ChatTemplateError", "Conversation", "open_conversation", "opening_messages", "tool_signatures"]

_SENTINEL = "\u2063MEDGYM-ASSISTANT-CONTENT\u2063"  # invisible separator: never produced by a template itself

class ChatTemplateError(ValueError):
    """The tokenizer's chat template cannot be used for incremental rendering (the message says why)."""


def open_conversation(fmt: "ChatFormat", env, info: dict) -> "Conversation":
    """The conversation an episode starts from: what the trainer's rollouts and the ``hf:`` agent both feed the
    model (one function, so a checkpoint is evaluated on exactly the prompt it was trained on)."""
    messages, tools = fmt.opening(info["system"], info["ticket"], info["tools"], env.domain.spec.card.model_dump())
    return Conversation(fmt, messages, tools)


@dataclass
class ChatFormat:
    """How one tokenizer renders medgym episodes.

    ``prompt`` is ``"policy"`` (the domain policy and full tool schemas) or ``"card"`` (the domain card and
    one-line tool signatures; see ``medgym.rl.config.RolloutConfig.prompt``).
    """

    tokenizer: object
    prompt: str = "policy"
    template_tools: bool = field(init=False)
    """Whether the chat template renders ``tools=`` itself."""
    tool_role: str = field(init=False)
    """"tool" when the template accepts tool messages, else "user" (results are then labelled in the text)."""

    def __post_init__(self) -> None:
        if self.prompt not in ("policy", "card"):
            raise ValueError(f"prompt must be 'policy' or 'card', got {self.prompt!r}")
        if not getattr(self.tokenizer, "chat_template", None):
            raise ChatTemplateError("the tokenizer has no chat template: medgym renders episodes as chats "
                                    "(set tokenizer.chat_template, e.g. a ChatML template)")
        probe = [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]
        dummy = [{"type": "function", "function": {"name": "probe_tool_x", "description": "d",
                                                   "parameters": {"type": "object", "properties": {}}}}]
        self.template_tools = self._render(probe, dummy, True) != self._render(probe, None, True)
        try:
            self._render(probe + [{"role": "assistant", "content": "a"}, {"role": "tool", "content": "t"}], None, True)
            self.tool_role = "tool"
        except Exception:  # the template rejects the role (jinja raise_exception): send results as user text
            self.tool_role = "user"

    # -- messages ----------------------------------------------------------------------------------------------

    def opening(self, system: str, ticket: str, tools: Sequence[dict], card: dict | None = None) -> tuple[list[dict], list | None]:
        """The first two messages and the ``tools=`` argument for the template (None when in the system prompt)."""
        return opening_messages(self.prompt, system, ticket, tools, card, self.template_tools)

    def tool_message(self, observation: str) -> dict:
        if self.tool_role == "tool":
            return {"role": "tool", "content": observation}
        return {"role": "user", "content": f"Tool results:\n{observation}"}

    def hint_message(self, hint: str) -> dict:
        """The message that carries a privileged hint into the teacher's input (a user message)."""
        return {"role": "user", "content": hint}

    # -- rendering ---------------------------------------------------------------------------------------------

    def _render(self, messages: list[dict], tools: list | None, generation_prompt: bool) -> str:
        kwargs = {"tools": tools} if tools else {}
        return self.tokenizer.apply_chat_template(messages, tokenize=False,
                                                  add_generation_prompt=generation_prompt, **kwargs)

    def render(self, messages: list[dict], tools: list | None, generation_prompt: bool) -> str:
        try:
            return self._render(messages, tools, generation_prompt)
        except Exception as exc:  # jinja errors from the template: say which message shape it refused
            roles = ", ".join(m["role"] for m in messages)
            raise ChatTemplateError(f"the chat template refused the messages ({roles}): {exc}") from exc

    def encode(self, text: str) -> list[int]:
        # The rendered text already holds the template's special tokens (BOS included, where it has one).
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"]) if text else []

    def decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=False)

    def hint_ids(self, messages: list[dict], tools: list | None, hint: str) -> list[int]:
        """Token ids of the hint message inserted after ``messages`` (the system and user turns)."""
        if not hint:
            return []
        before = self.render(messages, tools, False)
        try:
            after = self._render(messages + [self.hint_message(hint)], tools, False)
        except Exception:  # e.g. a template enforcing strict role alternation: plain text then
            return self.encode(f"\n\nHint: {hint}\n\n")
        if not after.startswith(before):
            raise ChatTemplateError("the chat template is not prefix-stable: adding a message rewrote earlier ones")
        return self.encode(after[len(before):])


class Conversation:
    """One episode's chat as token ids plus an assistant mask, grown one turn at a time.

    ``ids[:prompt_len]`` is the opening (system, user, the first generation prompt); ``hint_at`` is where
    the opening's messages end and the first generation prompt begins: the prompt/response boundary at
    which TT-OPD's hint message goes into the teacher's input.
    """

    def __init__(self, fmt: ChatFormat, messages: list[dict], tools: list | None):
        self.fmt, self.tools = fmt, tools
        self.messages = list(messages)
        closed = fmt.render(self.messages, tools, False)
        self.text = fmt.render(self.messages, tools, True)
        if not self.text.startswith(closed):
            raise ChatTemplateError("the chat template's generation prompt does not extend the rendered messages")
        self.ids = fmt.encode(closed)
        self.hint_at = len(self.ids)
        self.ids += fmt.encode(self.text[len(closed):])
        self.mask = [0] * len(self.ids)
        self.prompt_len = len(self.ids)
        self.turns: list[tuple[int, int]] = []
        """Token spans ``[start, end)`` of the assistant turns."""
        self.contents: list[str] = []
        """The decoded text of each assistant turn (stop token excluded): the actions sent to the env."""

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def assistant_tokens(self) -> int:
        return sum(self.mask)

    def add_assistant(self, generated: Sequence[int], stop_ids: set[int]) -> str:
        """Append one sampled turn (ids as generated, stop token last if the model stopped); return its text."""
        generated = list(generated)
        stopped = bool(generated) and generated[-1] in stop_ids
        content = self.fmt.decode(generated[:-1] if stopped else generated)
        message = {"role": "assistant", "content": content}
        head, _, tail = self.fmt.render(self.messages + [{"role": "assistant", "content": _SENTINEL}],
                                        self.tools, False).partition(_SENTINEL)
        if head != self.text:
            raise ChatTemplateError("the chat template renders an assistant turn differently from its generation "
                                    "prompt; the local trainer needs a prefix-stable (ChatML-style) template")
        closing = tail
        if stopped:  # the model already produced the template's end-of-turn token: don't add it twice
            stop_text = self.fmt.decode(generated[-1:])
            if closing.startswith(stop_text):
                closing = closing[len(stop_text):]
        start = len(self.ids)
        self.ids += generated
        self.mask += [1] * len(generated)
        self.turns.append((start, len(self.ids)))
        closing_ids = self.fmt.encode(closing)
        self.ids += closing_ids
        self.mask += [0] * len(closing_ids)
        self.messages.append(message)
        self.text = self.fmt.render(self.messages, self.tools, False)
        self.contents.append(content)
        return content

    def add_tool(self, observation: str) -> None:
        """Append the tool results and the next generation prompt (none of it is the model's)."""
        self.messages.append(self.fmt.tool_message(observation))
        text = self.fmt.render(self.messages, self.tools, True)
        if not text.startswith(self.text):
            raise ChatTemplateError("the chat template is not prefix-stable: adding a tool message rewrote "
                                    "earlier turns; the local trainer needs a ChatML-style template")
        delta = self.fmt.encode(text[len(self.text):])
        self.ids += delta
        self.mask += [0] * len(delta)
        self.text = text

    def opening_messages(self) -> list[dict]:
        return self.messages[:2]
