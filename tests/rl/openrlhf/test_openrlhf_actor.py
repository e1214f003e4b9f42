"""OpenRLHF's ``Actor`` on a tiny random model feeding medgym's TT-OPD: log-prob layout, the teacher's hinted
and realigned log-probs, OpenRLHF's ``training_step`` with the KL term added, and the EMA teacher."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

REASON = "openrlhf is not importable: pip install --no-deps openrlhf==0.11.2 && pip install -e '.[openrlhf-cpu]'"
torch = pytest.importorskip("torch")
pytest.importorskip("openrlhf.models", reason=REASON)
ttopd = pytest.importorskip("medgym.rl.openrlhf.ttopd", reason=REASON)

from openrlhf.models import PolicyLoss  # noqa: E402
from openrlhf.trainer.ppo_utils.experience import Experience  # noqa: E402

from medgym.rl import TeacherUpdate, token_logprobs, tt_opd_loss, turn_spans  # noqa: E402
from medgym.rl.openrlhf.dataset import TaskLabel  # noqa: E402

HINTS = {"reinforcing": ["The urea was measured before scoring."], "corrective": ["Measure the urea first."]}


def _label(seed: int = 3) -> str:
    return TaskLabel(task_id="clinic/x/0", domain="clinic", split="train", seed=1, build="/nowhere", build_hash="",
                     max_turns=None, hints=HINTS, hint_seed=seed).to_json()


def _batch(tokenizer, feedback: int = 3):
    """Two right-padded trajectories the way OpenRLHF stores them: a chat opening ending in the generation
    prompt, assistant turns separated by environment tokens, an action_mask shifted by one."""
    opening = tokenizer.apply_chat_template([{"role": "system", "content": "Triage."},
                                             {"role": "user", "content": "Chest pain."}],
                                            tokenize=False, add_generation_prompt=True)
    prompt = tokenizer(opening, add_special_tokens=False)["input_ids"]
    g = torch.Generator().manual_seed(5)
    rows, ranges = [], []
    for turns in ([5, 4], [6, 2, 3]):
        ids, spans = list(prompt), []
        for n, length in enumerate(turns):
            if n:
                ids += torch.randint(10, 200, (feedback,), generator=g).tolist()
            spans.append((len(ids), len(ids) + length))
            ids += torch.randint(10, 200, (length,), generator=g).tolist()
        rows.append(ids)
        ranges.append(spans)
    width = max(map(len, rows))
    sequences = torch.full((2, width), tokenizer.pad_token_id)
    attention = torch.zeros(2, width, dtype=torch.long)
    action = torch.zeros(2, width, dtype=torch.long)
    for b, (ids, spans) in enumerate(zip(rows, ranges)):
        sequences[b, : len(ids)] = torch.tensor(ids)
        attention[b, : len(ids)] = 1
        for start, end in spans:
            action[b, start:end] = 1
    return sequences, attention, action[:, 1:], ranges, len(prompt)


def test_actor_logprobs_feed_our_loss_and_backpropagate(tiny_actor, tokenizer):
    actor = tiny_actor()
    sequences, attention, action_mask, ranges, _ = _batch(tokenizer)
    logprobs = actor(sequences, action_mask, attention_mask=attention)
    assert logprobs.shape == action_mask.shape == (2, sequences.shape[1] - 1)
    with torch.no_grad():
        positions = attention.cumsum(-1) - 1
        positions.masked_fill_(attention == 0, 1)
        logits = actor.model(sequences, attention_mask=attention, position_ids=positions).logits
    ours = token_logprobs(logits, sequences) * action_mask
    assert torch.allclose(logprobs, ours, atol=1e-5)  # OpenRLHF's next-token layout is medgym's
    assert turn_spans(ttopd.assistant_mask(action_mask)) == ranges  # spans rebuilt from the shifted mask

    teacher = tiny_actor(seed=1)
    with torch.no_grad():
        teacher_lp = teacher(sequences, action_mask, attention_mask=attention)
    from medgym.rl import kl_k3

    loss, metrics = tt_opd_loss(logprobs, logprobs.detach(), torch.tensor([1.0, -1.0]), action_mask,
                                kl_k3(logprobs, teacher_lp), action_mask, kl_coef=4.0)
    loss.backward()
    grad = actor.model.model.embed_tokens.weight.grad
    assert grad is not None and grad.abs().sum() > 0
    assert metrics["kl"] > 0
    assert all(p.grad is None for p in teacher.model.parameters())


def test_teacher_logprobs_with_hint_inserted_and_removed(tiny_actor, tokenizer):
    student, teacher = tiny_actor(), tiny_actor(seed=2)
    sequences, attention, action_mask, _, prompt_len = _batch(tokenizer)
    hints = ttopd.HintTokens(tokenizer)
    assert tokenizer.decode(hints.generation_prompt_ids) == "<|im_start|>assistant\n"
    boundaries = ttopd.hint_boundaries(sequences, action_mask, attention, hints.generation_prompt_ids)
    assert boundaries.tolist() == [prompt_len - len(hints.generation_prompt_ids)] * 2

    # no hint, teacher == student: exactly the student's own action log-probs
    empty, lens = ttopd.teacher_action_logprobs(student, sequences, action_mask, attention, boundaries, [[], []],
                                                pad_id=tokenizer.pad_token_id)
    with torch.no_grad():
        own = student(sequences, action_mask, attention_mask=attention)
    assert lens.tolist() == [0, 0]
    assert torch.allclose(empty, own, atol=1e-5)

    # a hint per row: each student token is scored by the teacher on prompt | hint | response, brute force
    hint_ids = [hints.ids(_label(), True), hints.ids(_label(), False)]
    assert tokenizer.decode(hint_ids[0]) == "<|im_start|>user\nThe urea was measured before scoring.<|im_end|>\n"
    aligned, lens = ttopd.teacher_action_logprobs(teacher, sequences, action_mask, attention, boundaries, hint_ids,
                                                  pad_id=tokenizer.pad_token_id)
    assert lens.tolist() == [len(h) for h in hint_ids]
    for b in range(2):
        n, p = int(attention[b].sum()), int(boundaries[b])
        row = sequences[b, :n].tolist()
        hinted = torch.tensor([row[:p] + hint_ids[b] + row[p:]])
        with torch.no_grad():
            logits = teacher.model(hinted).logits[0].float().log_softmax(-1)
        h = len(hint_ids[b])
        for t in range(prompt_len, n):  # student token t sits at teacher position t + h
            if action_mask[b, t - 1]:
                assert aligned[b, t - 1] == pytest.approx(float(logits[t + h - 1, row[t]]), abs=1e-4)
            else:
                assert aligned[b, t - 1] == 0


def test_training_step_adds_lambda_kl_over_kept_turns(tiny_actor, tokenizer, make_trainer):
    actor, teacher = tiny_actor(), tiny_actor(seed=3)
    sequences, attention, action_mask, _, _ = _batch(tokenizer)
    labels, scores = [_label(), _label(4)], torch.tensor([1.0, 0.0])
    hints = ttopd.HintTokens(tokenizer)
    boundaries = ttopd.hint_boundaries(sequences, action_mask, attention, hints.generation_prompt_ids)
    teacher_lp, hint_lens = ttopd.teacher_action_logprobs(teacher, sequences, action_mask, attention, boundaries,
                                                          hints.batch(labels, scores))
    with torch.no_grad():
        old = actor(sequences, action_mask, attention_mask=attention)
    advantages = torch.tensor([[1.0], [-1.0]]).expand_as(old).clone() * action_mask

    def experience():
        return Experience(sequences=sequences, attention_mask=attention, action_mask=action_mask,
                          action_log_probs=old, base_action_log_probs=teacher_lp, advantages=advantages,
                          labels=list(labels), scores=scores.clone(), info={})

    # the context limit cuts row 1's last turn (its end plus the hint passes it): that turn adds no KL
    limit = int(attention[1].sum()) + int(hint_lens[1]) - 1
    trainer = make_trainer(actor, context_limit=limit)
    info = {"dp_size": 1, "batch_num_tokens": action_mask.sum().float(), "global_batch_size": torch.tensor(2.0)}
    exp = experience()
    status = trainer.training_step(exp, kl_ctl=0.0, step=0, loss_batch_info=dict(info))
    kept = ttopd.kept_turn_mask(action_mask, hint_lens, context_limit=limit, max_turns=None)
    assert kept[0].sum() == action_mask[0].sum() and 0 < kept[1].sum() < action_mask[1].sum()
    policy, *_ = PolicyLoss()(old, old, advantages, action_mask=action_mask, **info)
    term, kl_mean = ttopd.distillation_loss(old, teacher_lp, kept, loss_batch_info=info)
    assert trainer.strategy.losses[0] == pytest.approx(float(policy + 4.0 * term), rel=1e-5)
    assert status["metrics"]["tt_opd/kl"] == pytest.approx(float(kl_mean), rel=1e-5)
    assert status["metrics"]["tt_opd/kl_coef"] == 4.0
    assert 0 < status["metrics"]["tt_opd/kept_token_frac"] < 1
    assert trainer.actor_loss_fn.__class__ is PolicyLoss  # the wrapper is gone after the step
    with torch.no_grad():
        moved = actor(sequences, action_mask, attention_mask=attention)
    assert not torch.allclose(moved, old)  # the optimiser stepped on the combined loss

    # lambda 0 is plain GRPO: no teacher needed, no KL in the loss
    grpo = make_trainer(tiny_actor(), kl_coef=0.0)
    exp = experience()
    exp.base_action_log_probs = None
    grpo.training_step(exp, kl_ctl=0.0, step=0, loss_batch_info=dict(info))
    assert grpo.strategy.losses[0] == pytest.approx(float(policy), rel=1e-5)

    # lambda > 0 without teacher log-probs is an error, never a silent GRPO step
    exp = experience()
    exp.base_action_log_probs = None
    with pytest.raises(RuntimeError, match="no teacher log-probs"):
        make_trainer(tiny_actor()).training_step(exp, 0.0, 0, dict(info))


def test_ema_teacher_follows_schedule_and_keeps_an_fp32_master(tiny_actor):
    student = tiny_actor(seed=7).model
    bf16 = tiny_actor()
    bf16.model.to(torch.bfloat16)
    plain = ttopd.EmaTeacher.from_student(bf16, fp32_master=False)
    bf16_b = tiny_actor()
    bf16_b.model.to(torch.bfloat16)
    mastered = ttopd.EmaTeacher.from_student(bf16_b)
    assert mastered.master is not None and next(mastered.master.parameters()).dtype == torch.float32
    start = {n: p.detach().float().clone() for n, p in tiny_actor().model.named_parameters()}
    target = {n: p.detach().float() for n, p in student.named_parameters()}
    for _ in range(20):
        plain.apply(TeacherUpdate.EMA, student, 0.995)
        mastered.apply(TeacherUpdate.EMA, student, 0.995)
    # closed form after k EMA updates: a^k * t0 + (1 - a^k) * s
    name = "model.layers.0.mlp.up_proj.weight"
    expected = 0.995 ** 20 * start[name] + (1 - 0.995 ** 20) * target[name]
    got = dict(mastered.master.named_parameters())[name]
    assert torch.allclose(got, expected, atol=1e-5)
    moved_master = (dict(mastered.model.named_parameters())[name].float() - start[name]).abs().mean()
    moved_plain = (dict(plain.model.named_parameters())[name].float() - start[name]).abs().mean()
    assert moved_master > 3 * moved_plain  # a bf16 EMA at 0.995 mostly rounds back: the stale teacher
    mastered.apply(TeacherUpdate.COPY, student, 0.995)
    assert torch.equal(dict(mastered.master.named_parameters())[name], target[name])


def test_schedule_runs_at_the_end_of_fit_before_the_broadcast(monkeypatch):
    """The actor's ``fit`` is OpenRLHF's followed by the teacher update; ``broadcast_to_vllm`` comes after
    ``fit`` returns (``BasePPOTrainer.train_step``), so vLLM never sees a step the teacher has not."""
    calls = []
    base = ttopd._ppo_actor.PolicyModelActor.__ray_actor_class__
    monkeypatch.setattr(base, "fit", lambda self, kl_ctl=0: calls.append("optimiser steps") or {"tt_opd/kl": 0.5})
    actor = object.__new__(ttopd._TTOPDPolicyModelActor)
    settings = ttopd.TTOPDSettings(ema_every=2, copy_every=3, kl_threshold=1.0)
    actor.tt_schedule = settings.schedule()
    actor.teacher = SimpleNamespace(apply=lambda update, student, decay: calls.append(update))
    actor.actor = SimpleNamespace(model=SimpleNamespace(module="student"))
    codes = [actor.fit(0.0)["tt_opd/teacher_update"] for _ in range(6)]
    assert codes == [0.0, 1.0, 2.0, 1.0, 0.0, 2.0]  # EMA every 2, a hard copy wins at 3 and 6
    assert calls[:2] == ["optimiser steps", TeacherUpdate.NONE]
    status = actor.fit(0.0)
    assert status["tt_opd/next_kl_coef"] == 4.0 and status["tt_opd/phased_out"] == 0.0
    monkeypatch.setattr(base, "fit", lambda self, kl_ctl=0: {"tt_opd/kl": 2.5})
    status = actor.fit(0.0)
    assert status["tt_opd/phased_out"] == 1.0 and status["tt_opd/next_kl_coef"] == 0.0  # phase-out, for good
