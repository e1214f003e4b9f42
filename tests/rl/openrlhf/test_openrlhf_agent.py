"""OpenRLHF's multi-turn agent loop end to end over a compiled medgym env, with fake vLLM engines.

The agent file is loaded the way each vLLM engine actor loads it (``_load_agent_executor`` on the path the
launcher passes); the engines take token ids and return token ids (the stop token in the ids, not in the text,
as vLLM does). The result goes through OpenRLHF's ``_process_response_into_experience`` like a real rollout.
"""
from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace

import pytest

REASON = "openrlhf is not importable: pip install --no-deps openrlhf==0.11.2 && pip install -e '.[openrlhf-cpu]'"
torch = pytest.importorskip("torch")
vllm_engine = pytest.importorskip("openrlhf.trainer.ray.vllm_engine", reason=REASON)
samples_generator = pytest.importorskip("openrlhf.trainer.ppo_utils.samples_generator", reason=REASON)
ttopd = pytest.importorskip("medgym.rl.openrlhf.ttopd", reason=REASON)

from vllm import SamplingParams  # noqa: E402  (the stand-in, or vLLM itself where installed)

from medgym.rl import cosine_length_reward, turn_spans  # noqa: E402
from medgym.rl.config import TrainConfig  # noqa: E402
from medgym.rl.openrlhf.dataset import TaskLabel, prompt_rows  # noqa: E402
from medgym.rl.openrlhf.launch import agent_path  # noqa: E402
from medgym.runtime.agents.oracle import hermes  # noqa: E402
from medgym.runtime.build import Build  # noqa: E402
from medgym.runtime.env import make_env  # noqa: E402

MAX_LEN = 4096


def _completion(tokenizer, ids, max_tokens, stop_id):
    """What vLLM returns: ids cut at max_tokens (finish "length") or ending in the stop id (finish "stop"),
    and the text without the stop token."""
    ids = list(ids)[:max_tokens]
    stopped = bool(ids) and ids[-1] == stop_id
    text = tokenizer.decode(ids[:-1] if stopped else ids, skip_special_tokens=False)
    out = SimpleNamespace(token_ids=ids, text=text, finish_reason="stop" if stopped else "length", logprobs=None)
    return SimpleNamespace(outputs=[out])


class OracleEngine:
    """Plays the task's reference solution, one call per turn; the turn index is read from the prompt ids."""

    def __init__(self, tokenizer, reference, *, wrong: bool = False):
        self.tokenizer, self.reference, self.wrong = tokenizer, reference, wrong
        self.calls = []  # (prompt ids, returned ids)
        self.header = tokenizer("<|im_start|>assistant\n", add_special_tokens=False)["input_ids"]

    async def generate(self, prompt_token_ids, sampling_params, multi_modal_data=None):
        prompt = list(prompt_token_ids)
        assert prompt[-len(self.header):] == self.header, "every turn starts after the generation prompt"
        turn = sum(prompt[i:i + len(self.header)] == self.header for i in range(len(prompt)))
        step = dict(self.reference[turn - 1])
        if self.wrong and step["name"] == "submit_answer":
            step["arguments"] = {**step["arguments"], "disposition": "icu"}
        ids = self.tokenizer(hermes(step["name"], step["arguments"]), add_special_tokens=False)["input_ids"]
        await asyncio.sleep(0)  # let concurrent samples interleave, as on a real engine
        output = _completion(self.tokenizer, ids + [self.tokenizer.eos_token_id], sampling_params.max_tokens,
                             self.tokenizer.eos_token_id)
        self.calls.append((prompt, list(output.outputs[0].token_ids)))
        return output


class TinyModelEngine:
    """Samples from the tiny random model (it never says anything useful, and rarely stops)."""

    def __init__(self, tokenizer, model):
        self.tokenizer, self.model = tokenizer, model

    async def generate(self, prompt_token_ids, sampling_params, multi_modal_data=None):
        torch.manual_seed(0)
        with torch.no_grad():
            out = self.model.generate(torch.tensor([list(prompt_token_ids)]), do_sample=True,
                                      max_new_tokens=sampling_params.max_tokens, pad_token_id=0,
                                      eos_token_id=self.tokenizer.eos_token_id)
        return _completion(self.tokenizer, out[0, len(prompt_token_ids):].tolist(), sampling_params.max_tokens,
                           self.tokenizer.eos_token_id)


@pytest.fixture
def task(mini_build):
    # "correct" means a near-perfect composite: a wrong disposition alone still scores well on process and safety
    config = TrainConfig.model_validate({"rollout": {"max_turns": 8, "max_length": 2048},
                                         "reward": {"correct_threshold": 0.95}})
    row = prompt_rows(mini_build, split="train", limit=1, config=config)[0]
    label = TaskLabel.parse(row["label"])
    reference = Build.open(mini_build).domain("clinic").task(label.task_id).reference
    reference = [step.model_dump() for step in reference]  # the fake engine replays plain calls
    return row, label, reference


def _run(executor, tokenizer, row, engine, *, max_length=MAX_LEN, samples=1):
    prompt = tokenizer.apply_chat_template(row["input"], tokenize=False, add_generation_prompt=True)

    async def many():
        return await asyncio.gather(*(executor.execute(prompt, row["label"], SamplingParams(max_tokens=None),
                                                       max_length, tokenizer, engine) for _ in range(samples)))

    return asyncio.run(many())


def _observations(build, label, reference):
    env = make_env(build, label.domain, max_turns=label.max_turns)
    env.reset(options={"task_id": label.task_id})
    return [env.step(hermes(s["name"], s["arguments"]))[0] for s in reference]


def test_oracle_episode_end_to_end(mini_build, tokenizer, task):
    row, label, reference = task
    executor = vllm_engine._load_agent_executor(str(agent_path()))  # exactly how a vLLM engine actor loads it
    engine = OracleEngine(tokenizer, reference)
    result = _run(executor, tokenizer, row, engine)[0]
    tokens, ranges = result["observation_tokens"], result["action_ranges"]

    # token ids in and out: each turn's prompt is the sequence so far, its ids are kept verbatim
    assert len(ranges) == len(reference) == len(engine.calls)
    for (start, end), (prompt, ids) in zip(ranges, engine.calls):
        assert tokens[:start] == prompt and tokens[start:end] == ids
        assert tokens[end - 1] == tokenizer.eos_token_id and tokens[end:end + 1] != [tokenizer.eos_token_id]

    # the token sequence is the chat template's rendering of the whole conversation, tools included
    messages = list(row["input"])
    for step, observation in zip(reference, _observations(mini_build, label, reference)):
        messages.append({"role": "assistant", "content": hermes(step["name"], step["arguments"])})
        messages.append({"role": "tool", "content": observation})
    tools = Build.open(mini_build).domain("clinic").openai_tools()
    expected = tokenizer.apply_chat_template(messages[:-1], tools=tools, tokenize=False)
    assert tokenizer.decode(tokens, skip_special_tokens=False) == expected
    assert "<tools>" in tokenizer.decode(tokens[: ranges[0][0]])

    # reward: the cosine length reward of a correct episode, counted in generated tokens; every log is there
    generated = sum(end - start for start, end in ranges)
    shaped = float(cosine_length_reward(torch.tensor([True]), 2048, lengths=torch.tensor([generated]))[0])
    assert result["reward"] == pytest.approx(shaped) and 0.7 < shaped < 1.1
    assert result["scores"] == 1.0
    logs = result["extra_logs"]
    assert logs["env/accuracy"] == 1.0 and logs["env/reward"] == pytest.approx(1.0)
    assert logs["env/turns"] == 5 and logs["env/tool_calls"] == 5 and logs["env/invalid_calls"] == 0
    assert logs["env/submitted"] == 1.0 and logs["env/overflow"] == 0.0
    assert logs["env/assistant_tokens"] == generated

    # through OpenRLHF's own conversion: environment tokens masked, turn spans equal to medgym's
    generator = object.__new__(samples_generator.SamplesGenerator)
    experience = generator._process_response_into_experience(result, max_len=MAX_LEN)
    action_mask = experience.action_mask
    assert action_mask.shape == (1, len(tokens) - 1) and int(action_mask.sum()) == generated
    assert turn_spans(ttopd.assistant_mask(action_mask)) == [ranges]
    for (_, end), (start, _) in zip(ranges, ranges[1:]):
        assert action_mask[0, end - 1:start - 1].sum() == 0  # the tool results between turns
    assert experience.rewards.item() == pytest.approx(shaped) and experience.scores.item() == 1.0
    assert experience.info["env/accuracy"].item() == 1.0


def test_wrong_answers_and_concurrent_samples_are_independent(mini_build, tokenizer, task):
    row, label, reference = task
    executor = vllm_engine._load_agent_executor(str(agent_path()))
    right = _run(executor, tokenizer, row, OracleEngine(tokenizer, reference), samples=3)
    wrong = _run(executor, tokenizer, row, OracleEngine(tokenizer, reference, wrong=True), samples=2)
    assert [r["scores"] for r in right] == [1.0, 1.0, 1.0]
    assert len({r["reward"] for r in right}) == 1 and all(r["extra_logs"]["env/turns"] == 5 for r in right)
    assert [r["scores"] for r in wrong] == [0.0, 0.0]
    assert all(r["extra_logs"]["env/accuracy"] < 1.0 and -0.3 <= r["reward"] < 0.0 for r in wrong)
    # batched by OpenRLHF with the same keys for every sample
    generator = object.__new__(samples_generator.SamplesGenerator)
    experiences = [generator._process_response_into_experience(r, max_len=MAX_LEN) for r in right + wrong]
    from openrlhf.trainer.ppo_utils.experience import Experience

    batch = Experience.concat_experiences(experiences, tokenizer.pad_token_id)
    assert batch.scores.tolist() == [1.0, 1.0, 1.0, 0.0, 0.0]
    assert [TaskLabel.parse(x).task_id for x in batch.labels] == [label.task_id] * 5
    assert batch.info["env/turns"].tolist() == [5.0] * 5


def test_episode_cut_by_the_token_budget_is_scored_as_over_length(mini_build, tokenizer, task, tiny_actor):
    row, label, _ = task
    executor = vllm_engine._load_agent_executor(str(agent_path()))
    tools = Build.open(mini_build).domain("clinic").openai_tools()
    opening = len(tokenizer.apply_chat_template(row["input"], tools=tools, tokenize=True, add_generation_prompt=True,
                                                return_dict=True)["input_ids"])
    engine = TinyModelEngine(tokenizer, tiny_actor().model)
    result = _run(executor, tokenizer, row, engine, max_length=opening + 40)[0]
    assert result["action_ranges"][0] == (opening, opening + 40)  # the whole budget went into one turn
    assert result["truncated"]  # finish_reason "length"
    logs = result["extra_logs"]
    assert logs["env/done"] == 1.0 and logs["env/overflow"] == 1.0 and logs["env/assistant_tokens"] == 40
    assert logs["env/turns"] == 1 and logs["env/submitted"] == 0.0
    assert result["reward"] == pytest.approx(-0.5)  # cut short: the cosine reward's exceed value
    assert result["scores"] == 0.0


def test_bad_label_and_changed_build_fail_loudly(mini_build, tokenizer, task):
    row, label, reference = task
    executor = vllm_engine._load_agent_executor(str(agent_path()))
    engine = OracleEngine(tokenizer, reference)
    with pytest.raises(RuntimeError, match="not a medgym OpenRLHF label"):
        _run(executor, tokenizer, {**row, "label": json.dumps({"answer": 42})}, engine)
    moved = json.loads(row["label"])
    moved["build_hash"] = "0" * 64
    with pytest.raises(RuntimeError, match="re-export the dataset"):
        _run(executor, tokenizer, {**row, "label": json.dumps(moved)}, engine)


class _PolicyGroup:
    """OpenRLHF's ``RayActorGroup.async_run_method_batch`` in-process, over one policy actor: the student's
    ``forward`` and medgym's ``teacher_forward`` called once per micro-batch, as ``execute_batch`` does."""

    duplicate_actors = 1

    def __init__(self, student, policy):
        self.methods = {"forward": lambda sequences, action_mask, attention_mask, **_: student(
            sequences, action_mask, attention_mask=attention_mask).detach(), "teacher_forward": policy.teacher_forward}

    def async_run_method_batch(self, method_name, **kwargs):
        count = len(next(iter(kwargs.values())))
        method = self.methods[method_name]
        return [[method(**{key: value[i] for key, value in kwargs.items()}) for i in range(count)]]


def test_teacher_logprobs_survive_openrlhf_batching_into_the_loss(mini_build, tokenizer, task, tiny_actor,
                                                                  make_trainer, monkeypatch):
    from openrlhf.trainer.ppo_utils import experience_maker
    from openrlhf.trainer.ppo_utils.experience import (
        make_experience_batch,
        remove_padding_in_sequences,
        split_experience_batch,
    )

    row, label, reference = task
    row = {**row, "label": json.dumps({**json.loads(row["label"]), "prompt": "card"})}  # short openings: fast forwards
    executor = vllm_engine._load_agent_executor(str(agent_path()))
    responses = (_run(executor, tokenizer, row, OracleEngine(tokenizer, reference), samples=2)
                 + _run(executor, tokenizer, row, OracleEngine(tokenizer, reference, wrong=True)))
    opening = responses[0]["action_ranges"][0][0]
    assert "CURB-65" in tokenizer.decode(responses[0]["observation_tokens"][:opening])  # the card's tool list
    responses += _run(executor, tokenizer, row, TinyModelEngine(tokenizer, tiny_actor().model),
                      max_length=opening + 12)  # a short, cut-off sample: padding in its micro-batch
    generator = object.__new__(samples_generator.SamplesGenerator)
    rollouts = [generator._process_response_into_experience(r, max_len=MAX_LEN) for r in responses]

    student, teacher = tiny_actor(), tiny_actor(seed=4)
    policy = object.__new__(ttopd._TTOPDPolicyModelActor)  # the policy actor's methods, without Ray or a GPU
    policy.__dict__.update(teacher=ttopd.EmaTeacher(teacher), tokenizer=tokenizer,
                           trainer=SimpleNamespace(tt_hints=ttopd.HintTokens(tokenizer)))
    args = SimpleNamespace(ds=SimpleNamespace(ring_attn_size=1, tensor_parallel_size=1),
                           train=SimpleNamespace(colocate_all=False, colocate_actor_ref=False,
                                                 dynamic_batch_enable=False),
                           algo=SimpleNamespace(kl=SimpleNamespace(use_loss=False, estimator="k1")),
                           rollout=SimpleNamespace(micro_batch_size=2))
    maker = object.__new__(ttopd.TTOPDExperienceMaker)
    maker.__dict__.update(strategy=SimpleNamespace(args=args), args=args,
                          actor_model_group=_PolicyGroup(student, policy), critic_model_group=None,
                          reward_model_group=None, initial_model_group=None, tokenizer=tokenizer)
    maker.attach_tt_opd(ttopd.TTOPDSettings())
    monkeypatch.setattr(experience_maker, "ray", SimpleNamespace(put=lambda x: x, get=lambda x: x))
    micro_batches = maker.make_experience(maker.split_rollout_samples(rollouts))
    assert [len(m.sequences) for m in micro_batches] == [2, 2]

    hints = ttopd.HintTokens(tokenizer)

    def direct(sample):  # the teacher on this sample alone, no padding, no batching
        hint = hints.batch(sample.labels, sample.scores)
        boundary = ttopd.hint_boundaries(sample.sequences, sample.action_mask, sample.attention_mask,
                                         hints.generation_prompt_ids)
        return ttopd.teacher_action_logprobs(teacher, sample.sequences, sample.action_mask, sample.attention_mask,
                                             boundary, hint)[0][0]

    expected = {tuple(r.sequences[0].tolist()): direct(r) for r in rollouts}
    assert len(expected) == 3  # the two right answers are the same ids
    items = remove_padding_in_sequences([i for m in micro_batches for i in split_experience_batch(m)])
    batch = make_experience_batch(items[::-1])  # another order and another padding, as the replay buffer does
    for b in range(len(batch.sequences)):
        n = int(batch.attention_mask[b].sum())
        want = expected[tuple(batch.sequences[b, :n].tolist())]
        assert torch.allclose(batch.base_action_log_probs[b, : n - 1], want, atol=1e-5)
        assert batch.base_action_log_probs[b, n - 1:].abs().sum() == 0

    batch.advantages = torch.tensor([1.0, -1.0, 1.0, -1.0])[:, None] * batch.action_mask
    info = {"dp_size": 1, "batch_num_tokens": batch.action_mask.sum().float(), "global_batch_size": torch.tensor(4.0)}
    status = make_trainer(student).training_step(batch, 0.0, 0, info)
    assert status["metrics"]["tt_opd/kl"] > 0 and torch.isfinite(status["metrics"]["policy_loss"])
