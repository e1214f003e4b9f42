"""Collapse metrics from a step's episodes: turns, calls, turn length, monologue rate, reward per domain."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from medgym.rl.local import Trajectory, episode_metrics


def _episode(domain, reward, turns, calls, submitted, turn_lengths):
    ids, mask, spans = [0] * 5, [0] * 5, []
    for n in turn_lengths:
        spans.append((len(ids), len(ids) + n))
        ids += [1] * n + [0, 0]
        mask += [1] * n + [0, 0]
    conversation = SimpleNamespace(ids=ids, mask=mask, turns=spans, assistant_tokens=sum(turn_lengths))
    counts = {"turns": turns, "tool_calls": calls, "invalid_calls": 0, "no_call_turns": 0, "submitted": submitted}
    return Trajectory(domain, "t", conversation, reward=reward, counts=counts)


def test_monologue_turn_length_and_domain_reward():
    episodes = [
        _episode("triage", 1.0, 1, 1, True, [30]),          # one turn, only the submission: a monologue
        _episode("triage", 0.0, 1, 0, False, [10]),         # one turn, no call at all: a monologue
        _episode("triage", 0.5, 3, 3, True, [4, 6, 8]),      # looked things up first
        _episode("diagnosis", 0.2, 1, 2, True, [12]),       # one turn, but a lookup before the answer
    ]
    m = episode_metrics(episodes)
    assert m["monologue_rate"] == pytest.approx(0.5)
    assert m["turn_length"] == pytest.approx((30 + 10 + 4 + 6 + 8 + 12) / 6)
    assert m["turns"] == pytest.approx(1.5) and m["tool_calls"] == pytest.approx(1.5)
    assert m["domain_reward/triage"] == pytest.approx(0.5) and m["domain_reward/diagnosis"] == pytest.approx(0.2)
    assert m["response_length"] == pytest.approx((30 + 10 + 18 + 12) / 4)
