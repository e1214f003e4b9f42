"""Hints: choosing the text, inserting the tokens, and realigning the teacher's log-probs to the student.

The realignment is checked against a slow per-row loop that builds each hinted sequence by list
concatenation, runs the teacher on it alone, and reads the log-prob of each response token by hand.
"""
import pytest
import torch

from medgym.rl import (
    DEFAULT_HINTS,
    HintSet,
    drop_hint_positions,
    hint_position_map,
    insert_hint,
    kl_full,
    teacher_logits_for_student,
    teacher_logprobs_for_student,
    token_logprobs,
)

HINTS = [[60, 61, 62], [], [63, 59, 58, 57, 56]]  # per row: a hint, none, a longer one


def slow_insert(ids, prompt_lens, hints, attention, pad_id):
    rows, masks = [], []
    width = ids.shape[1] + max(len(h) for h in hints)
    for row, p, h, att in zip(ids.tolist(), prompt_lens.tolist(), hints, attention.tolist()):
        seq = row[:p] + list(h) + row[p:]
        mask = att[:p] + [1] * len(h) + att[p:]
        rows.append(seq + [pad_id] * (width - len(seq)))
        masks.append(mask + [0] * (width - len(mask)))
    return torch.tensor(rows), torch.tensor(masks)


def slow_teacher_logprobs(teacher, ids, attention, prompt_lens, hints):
    """Per row: run the teacher on prompt + hint + response alone; read log p(response token) by hand."""
    out = torch.full((ids.shape[0], ids.shape[1] - 1), float("nan"))
    for b, (row, p, h) in enumerate(zip(ids.tolist(), prompt_lens.tolist(), hints)):
        n = int(attention[b].sum())
        seq = row[:p] + list(h) + row[:n][p:]
        with torch.no_grad():
            logp = torch.log_softmax(teacher(torch.tensor([seq])).logits[0].float(), dim=-1)
        for j in range(n - 1):  # student column j predicts student token j + 1
            target = j + 1 if j + 1 < p else j + 1 + len(h)  # where that token sits in the hinted sequence
            out[b, j] = logp[target - 1, seq[target]]
    return out


def test_insert_hint_matches_list_concatenation(batch):
    before = {k: v.clone() for k, v in batch.items()}
    hinted = insert_hint(batch["input_ids"], batch["prompt_lens"], HINTS, attention_mask=batch["attention_mask"])
    assert all(torch.equal(before[k], batch[k]) for k in batch)
    ids, mask = slow_insert(batch["input_ids"], batch["prompt_lens"], HINTS, batch["attention_mask"], 0)
    assert torch.equal(hinted.input_ids, ids)
    assert torch.equal(hinted.attention_mask, mask)
    assert hinted.hint_lens.tolist() == [3, 0, 5]


def test_dropping_the_hint_gives_back_the_student_rows(batch):
    ids = batch["input_ids"]
    hinted = insert_hint(ids, batch["prompt_lens"], HINTS, attention_mask=batch["attention_mask"])
    assert torch.equal(drop_hint_positions(hinted.input_ids, batch["prompt_lens"], hinted.hint_lens), ids)
    assert torch.equal(
        drop_hint_positions(hinted.attention_mask, batch["prompt_lens"], hinted.hint_lens), batch["attention_mask"]
    )


def test_position_map_by_hand():
    index = hint_position_map(torch.tensor([2, 3]), torch.tensor([3, 0]), 5)
    assert index.tolist() == [[0, 1, 5, 6, 7], [0, 1, 2, 3, 4]]


def test_empty_hints_leave_the_batch_unchanged(batch):
    hinted = insert_hint(batch["input_ids"], batch["prompt_lens"], [[], [], []], attention_mask=batch["attention_mask"])
    assert torch.equal(hinted.input_ids, batch["input_ids"])
    assert torch.equal(hinted.attention_mask, batch["attention_mask"])
    assert hinted.input_ids.data_ptr() != batch["input_ids"].data_ptr()


def test_realignment_is_exact_when_the_hint_is_empty(batch, tiny_lm):
    teacher = tiny_lm(seed=1)
    ids, att, p = batch["input_ids"], batch["attention_mask"], batch["prompt_lens"]
    hinted = insert_hint(ids, p, [[], [], []], attention_mask=att)
    with torch.no_grad():
        logits = teacher(hinted.input_ids, attention_mask=hinted.attention_mask).logits
        realigned = teacher_logprobs_for_student(logits, hinted.input_ids, p, hinted.hint_lens)
        direct = token_logprobs(teacher(ids, attention_mask=att).logits, ids)
    assert realigned.shape == (3, ids.shape[1] - 1)
    assert torch.equal(realigned, direct)


def test_realignment_skips_exactly_the_hint_tokens(batch, tiny_lm):
    teacher = tiny_lm(seed=1)
    ids, att, p = batch["input_ids"], batch["attention_mask"], batch["prompt_lens"]
    hinted = insert_hint(ids, p, HINTS, attention_mask=att)
    with torch.no_grad():
        logits = teacher(hinted.input_ids, attention_mask=hinted.attention_mask).logits
    realigned = teacher_logprobs_for_student(logits, hinted.input_ids, p, hinted.hint_lens)
    expected = slow_teacher_logprobs(teacher, ids, att, p, HINTS)
    valid = ~torch.isnan(expected)
    assert valid.sum() == int(att.sum()) - 3
    assert torch.allclose(realigned[valid], expected[valid], atol=1e-5)

    # the full-vocabulary path lines up the same way: the log-softmax of the realigned logits at the
    # student's tokens are the realigned log-probs
    full = teacher_logits_for_student(logits, p, hinted.hint_lens)
    picked = torch.log_softmax(full.float(), -1).gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1)
    assert torch.allclose(picked, realigned, atol=1e-6)


def test_a_hint_changes_the_response_but_not_the_prompt(batch, tiny_lm):
    model = tiny_lm(seed=0)
    ids, att, p = batch["input_ids"], batch["attention_mask"], batch["prompt_lens"]
    hinted = insert_hint(ids, p, HINTS, attention_mask=att)
    with torch.no_grad():
        student = token_logprobs(model(ids, attention_mask=att).logits, ids)
        teacher_logits = model(hinted.input_ids, attention_mask=hinted.attention_mask).logits
        teacher = teacher_logprobs_for_student(teacher_logits, hinted.input_ids, p, hinted.hint_lens)
        student_logits = model(ids, attention_mask=att).logits[:, :-1]
        kl = kl_full(student_logits, teacher_logits_for_student(teacher_logits, p, hinted.hint_lens))
    for b, (prompt, hint) in enumerate(zip(p.tolist(), HINTS)):
        n = int(att[b].sum())
        # columns before p - 1 predict prompt tokens: the hint comes later, so nothing changes
        assert torch.allclose(teacher[b, : prompt - 1], student[b, : prompt - 1], atol=1e-5)
        # from column p - 1 (the first response token) on, the teacher has seen the hint
        response = slice(prompt - 1, n - 1)
        if hint:
            assert (kl[b, response] > 1e-4).all()
        else:
            assert torch.allclose(teacher[b, response], student[b, response], atol=1e-6)


def test_hints_may_be_tensors_and_prompt_lens_an_int():
    ids = torch.arange(1, 11).reshape(2, 5)
    hinted = insert_hint(ids, 2, [torch.tensor([90]), torch.tensor([], dtype=torch.long)], pad_id=-1)
    assert hinted.input_ids.tolist() == [[1, 2, 90, 3, 4, 5], [6, 7, 8, 9, 10, -1]]
    assert hinted.attention_mask.tolist() == [[1] * 6, [1] * 5 + [0]]


def test_bad_arguments_raise(batch):
    with pytest.raises(ValueError, match="one hint per row"):
        insert_hint(batch["input_ids"], batch["prompt_lens"], [[1]])
    with pytest.raises(ValueError, match=r"prompt lengths must lie in \[1, 14\]"):
        insert_hint(batch["input_ids"], torch.tensor([0, 1, 2]), HINTS)
    with pytest.raises(ValueError, match="too few"):
        drop_hint_positions(torch.zeros(3, 4), [1, 1, 1], [0, 0, 2], length=4)


def test_hint_choice_follows_the_outcome_and_the_seed():
    hints = HintSet(reinforcing=("good a", "good b"), corrective=("bad a", "bad b", "bad c"), domain="triage")
    assert hints.choose(True, 0) in hints.reinforcing
    assert hints.choose(False, 0) in hints.corrective
    assert hints.choose(None, 0) == ""
    assert [hints.choose(False, s) for s in range(20)] == [hints.choose(False, s) for s in range(20)]
    assert {hints.choose(False, s) for s in range(50)} == set(hints.corrective)


def test_default_hints_are_there_and_validated():
    assert len(DEFAULT_HINTS.reinforcing) >= 2 and len(DEFAULT_HINTS.corrective) >= 2
    assert DEFAULT_HINTS.choose(True, 3) != DEFAULT_HINTS.choose(False, 3)
    with pytest.raises(ValueError, match="corrective must be a non-empty tuple"):
        HintSet(reinforcing=("x",), corrective=())
    with pytest.raises(ValueError, match="reinforcing must be a non-empty tuple"):
        HintSet(reinforcing="just one string", corrective=("y",))
