"""The KV-cached rollout samples exactly what re-encoding every step samples, and trains on those very tokens."""
from __future__ import annotations

import pytest
import torch

from medgym.rl import token_logprobs
from medgym.rl.local import ChatFormat, EnvPool, play
from medgym.rl.local.models import load_policy, stop_token_ids
from medgym.rl.local.rollout import DecodeSession
from medgym.runtime.build import Build
from medgym.runtime.evaluate import select_tasks


@pytest.fixture(scope="module")
def policy(tiny_model_dir):
    return load_policy(tiny_model_dir)


def _play(policy, mini_build, kv_cache: bool, seed: int = 3, **kwargs):
    model, tokenizer = policy
    tasks = select_tasks(Build.open(mini_build), None, "train", 2)
    torch.manual_seed(seed)
    return play(model, ChatFormat(tokenizer), EnvPool(mini_build, "composite", 3), tasks, samples=2,
                max_new_tokens=10, context_limit=4096, temperature=0.9, kv_cache=kv_cache, **kwargs)


def test_cached_rollout_samples_the_same_tokens_as_the_uncached_one(policy, mini_build):
    cached, uncached = _play(policy, mini_build, True), _play(policy, mini_build, False)
    assert len(cached) == len(uncached) == 4
    for a, b in zip(cached, uncached):
        assert a.ids == b.ids and a.assistant_mask == b.assistant_mask  # every sampled token, every mask bit
        assert a.conversation.turns == b.conversation.turns and len(a.conversation.turns) == 3
        assert a.reward == b.reward and a.counts == b.counts
    assert len({tuple(t.ids) for t in cached}) > 1  # the rows really differ (padding inside the cache is used)


def test_a_different_seed_samples_differently(policy, mini_build):
    first, other = _play(policy, mini_build, True, seed=3), _play(policy, mini_build, True, seed=4)
    assert [t.ids for t in first] != [t.ids for t in other]


def test_session_logprobs_match_uncached_and_the_training_forward(policy):
    """Three turns of two rows of different lengths; the sampling log-probs equal a fresh full forward's."""
    model, tokenizer = policy
    stop = stop_token_ids(model, tokenizer)
    g = torch.Generator().manual_seed(0)
    prompts = [torch.randint(10, 2000, (n,), generator=g).tolist() for n in (23, 9)]
    found = {}
    for cache in (True, False):
        torch.manual_seed(11)
        session = DecodeSession(model, pad_id=tokenizer.pad_token_id, stop_ids=stop, temperature=0.7, cache=cache)
        rows, logprobs = [list(p) for p in prompts], [[], []]
        for turn in range(3):
            turns = session.generate([0, 1], rows, [6, 8])
            for row, new in enumerate(turns):
                logprobs[row].append(session.logprobs[row])
                rows[row] += new + [7 + turn, 8, 9][: row + 1]  # a "tool result" of a different length per row
        found[cache] = rows, logprobs
    (rows, cached_lp), (rows_u, uncached_lp) = found[True], found[False]
    assert rows == rows_u
    for a, b in zip(cached_lp, uncached_lp):
        for x, y in zip(a, b):
            torch.testing.assert_close(torch.tensor(x), torch.tensor(y), rtol=0, atol=1e-5)
    # the update recomputes log-probs with one forward over the whole sequence: same values
    for row, prompt in enumerate(prompts):
        ids = torch.tensor([rows[row]])
        with torch.no_grad():
            full = token_logprobs(model(input_ids=ids).logits.float() / 0.7, ids)[0]
        position, expected = len(prompt), []
        for turn_lp in cached_lp[row]:
            expected += full[position - 1: position - 1 + len(turn_lp)].tolist()
            position += len(turn_lp) + (row + 1)
        torch.testing.assert_close(torch.tensor([v for t in cached_lp[row] for v in t]), torch.tensor(expected),
                                   rtol=0, atol=1e-4)


def test_greedy_is_the_argmax_continuation(policy):
    model, tokenizer = policy
    stop = stop_token_ids(model, tokenizer)
    prompt = list(range(40, 60))
    session = DecodeSession(model, pad_id=tokenizer.pad_token_id, stop_ids=stop, greedy=True)
    [turn] = session.generate(["a"], [prompt], [5])
    ids = list(prompt)
    with torch.no_grad():
        for _ in range(len(turn)):
            ids.append(int(model(input_ids=torch.tensor([ids])).logits[0, -1].argmax()))
    assert turn == ids[len(prompt):]


def test_a_prompt_that_rewrites_the_cached_prefix_is_refused(policy):
    model, tokenizer = policy
    session = DecodeSession(model, pad_id=tokenizer.pad_token_id, stop_ids=stop_token_ids(model, tokenizer))
    [turn] = session.generate([0], [[50, 51, 52]], [2])
    with pytest.raises(ValueError, match="does not extend"):
        session.generate([0], [[50, 99, 52] + turn], [2])


def test_progress_is_reported_per_round(policy, mini_build):
    seen = []
    _play(policy, mini_build, True, progress=seen.append)
    assert [p["round"] for p in seen] == [1, 2, 3] and seen[0]["live"] == 4
    assert seen[-1]["generated_tokens"] >= seen[0]["generated_tokens"] > 0
