"""Chat rendering and rollouts: the assistant mask is exactly the sampled turns, whatever the template."""
from __future__ import annotations

import pytest
import torch

from medgym.rl import turn_spans
from medgym.rl.local import ChatFormat, ChatTemplateError, Conversation, EnvPool, RolloutStats, play, tool_signatures
from medgym.rl.local.models import load_policy, stop_token_ids
from medgym.runtime.build import Build
from medgym.runtime.evaluate import select_tasks

CHATML_NO_TOOLS = (  # SmolLM2-135M-Instruct's template: ChatML that ignores `tools=`
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + "
    "'\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


@pytest.fixture(scope="module")
def policy(tiny_model_dir):
    return load_policy(tiny_model_dir)


@pytest.fixture(scope="module")
def rollouts(policy, mini_build):
    model, tokenizer = policy
    torch.manual_seed(0)
    tasks = select_tasks(Build.open(mini_build), None, "train", 2)
    stats = RolloutStats()
    trajectories = play(model, ChatFormat(tokenizer), EnvPool(mini_build, "composite", 3), tasks, samples=2,
                        max_new_tokens=12, context_limit=4096, stats=stats)
    return tasks, trajectories, stats


def test_trajectories_come_grouped_by_task(rollouts):
    tasks, trajectories, _ = rollouts
    assert [t.task_id for t in trajectories] == [task_id for _, task_id in tasks for _ in range(2)]


def test_assistant_mask_decodes_to_exactly_the_assistant_turns(rollouts, policy):
    _, trajectories, _ = rollouts
    model, tokenizer = policy
    fmt = ChatFormat(tokenizer)
    stop_text = {tokenizer.decode([i]) for i in stop_token_ids(model, tokenizer)}
    for t in trajectories:
        c = t.conversation
        assert len(c.ids) == len(c.mask) and set(c.mask) <= {0, 1}
        assert not any(c.mask[: c.prompt_len])
        assert c.turns and len(c.contents) == len(c.turns)
        for (start, end), content in zip(c.turns, c.contents):
            decoded = fmt.decode(c.ids[start:end])
            assert decoded == content or (decoded[len(content):] in stop_text and decoded.startswith(content))
        masked = [i for i, m in zip(c.ids, c.mask) if m]
        assert masked == [i for start, end in c.turns for i in c.ids[start:end]]
        # every token outside the turns is the template's: system, user, tool results, turn closings
        outside = fmt.decode([i for i, m in zip(c.ids, c.mask) if not m])
        assert outside.startswith("<|im_start|>system\n") and "<tool_response>" in outside


def test_turn_spans_match_the_env_turn_count(rollouts):
    _, trajectories, _ = rollouts
    for t in trajectories:
        spans = turn_spans(torch.tensor([t.assistant_mask]))[0]
        assert spans == t.conversation.turns
        assert len(spans) == t.counts["turns"] == 3  # no submission from a random model: the turn limit ends it


def test_rollout_outcomes_come_from_the_env(rollouts):
    _, trajectories, stats = rollouts
    for t in trajectories:
        assert set(t.components) >= {"accuracy", "process", "safety", "format", "coherence"}
        assert 0.0 <= t.reward <= 1.0 and not t.overflow
        assert t.counts["no_call_turns"] + t.counts["tool_calls"] >= 1
    assert stats.generated_tokens == sum(t.assistant_tokens for t in trajectories)
    assert stats.rounds == 3 and stats.env_s > 0


def test_context_budget_ends_an_episode_as_overflow(policy, mini_build):
    model, tokenizer = policy
    tasks = select_tasks(Build.open(mini_build), None, "train", 1)
    fmt = ChatFormat(tokenizer)
    prompt = play(model, fmt, EnvPool(mini_build, "composite", 3), tasks, samples=1, max_new_tokens=1,
                  context_limit=4096)[0].conversation.prompt_len
    limit = prompt + 20  # room for the first turn only
    [t] = play(model, fmt, EnvPool(mini_build, "composite", 3), tasks, samples=1, max_new_tokens=16,
               context_limit=limit)
    assert t.overflow and len(t.conversation.turns) == 1 and t.assistant_tokens <= 20
    assert t.counts["turns"] == 1 and "accuracy" in t.components


def test_template_without_tool_support_gets_the_tools_in_the_system_prompt(policy, mini_build):
    _, tokenizer = policy
    plain = tokenizer.__class__.from_pretrained(tokenizer.name_or_path)
    plain.chat_template = CHATML_NO_TOOLS
    fmt = ChatFormat(plain)
    assert not fmt.template_tools and ChatFormat(tokenizer).template_tools
    domain = Build.open(mini_build).domain("clinic")
    messages, tools = fmt.opening(domain.spec.policy, "ticket", domain.openai_tools())
    assert tools is None
    system = messages[0]["content"]
    assert system.startswith(domain.spec.policy) and "<tools>" in system and '"name": "submit_answer"' in system
    assert "<tool_call>" in system  # the call convention the env's parser reads


def test_card_prompt_is_short_and_keeps_enum_values(policy, mini_build):
    _, tokenizer = policy
    domain = Build.open(mini_build).domain("clinic")
    full, _ = ChatFormat(tokenizer, "policy").opening(domain.spec.policy, "t", domain.openai_tools(),
                                                      domain.spec.card.model_dump())
    card, tools = ChatFormat(tokenizer, "card").opening(domain.spec.policy, "t", domain.openai_tools(),
                                                        domain.spec.card.model_dump())
    assert tools is None and domain.spec.card.description in card[0]["content"]
    assert 'order_labs(patient_id: string, tests: list of "bun"|"crp")' in card[0]["content"]


def test_tool_signatures():
    tools = [{"type": "function", "function": {
        "name": "dose", "description": "Dose a drug. Uses the table.",
        "parameters": {"type": "object", "required": ["drug"],
                       "properties": {"drug": {"type": "string", "enum": ["a", "b"]}, "kg": {"type": "number"}}}}}]
    assert tool_signatures(tools) == 'dose(drug: "a"|"b", [kg: number]) - Dose a drug'


def test_hint_is_a_rendered_user_message(policy):
    _, tokenizer = policy
    fmt = ChatFormat(tokenizer)
    messages = [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]
    assert fmt.decode(fmt.hint_ids(messages, None, "Check the urea.")) == "<|im_start|>user\nCheck the urea.<|im_end|>\n"
    assert fmt.hint_ids(messages, None, "") == []
    c = Conversation(fmt, messages, None)
    assert fmt.decode(c.ids[c.hint_at:c.prompt_len]) == "<|im_start|>assistant\n"


def test_a_template_that_rewrites_earlier_turns_is_refused(policy):
    _, tokenizer = policy
    odd = tokenizer.__class__.from_pretrained(tokenizer.name_or_path)
    odd.chat_template = "{{ messages | length }}" + CHATML_NO_TOOLS  # the count changes as the chat grows
    fmt = ChatFormat(odd)
    c = Conversation(fmt, [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}], None)
    with pytest.raises(ChatTemplateError, match="prefix-stable"):
        c.add_assistant([5, 6, 7], {tokenizer.eos_token_id})


def test_a_tokenizer_without_template_is_refused(policy):
    _, tokenizer = policy
    bare = tokenizer.__class__.from_pretrained(tokenizer.name_or_path)
    bare.chat_template = None
    with pytest.raises(ChatTemplateError, match="no chat template"):
        ChatFormat(bare)
