"""Turn segmentation and turn-level truncation: hand-written masks, and random masks against a slow loop."""
import pytest
import torch

from medgym.rl import truncate_turns, turn_index, turn_spans

#              0  1  2  3  4  5  6  7  8  9 10 11 12 13
ROW = torch.tensor([0, 0, 1, 1, 0, 0, 1, 1, 1, 0, 1, 1, 0, 0])
# turns: (2, 4), (6, 9), (10, 12)


def slow_spans(row):
    spans, start = [], None
    for t, v in enumerate(row.tolist() + [0]):
        if v and start is None:
            start = t
        elif not v and start is not None:
            spans.append((start, t))
            start = None
    return spans


def slow_truncate(row, context_limit, max_turns, hint_len):
    keep = [0] * len(row)
    for k, (start, end) in enumerate(slow_spans(row)):
        inside = context_limit is None or end + hint_len <= context_limit
        early = max_turns is None or k < max_turns
        if inside and early:
            keep[start:end] = [1] * (end - start)
    return keep


def test_spans_and_index_of_a_hand_written_row():
    assert turn_spans(ROW.unsqueeze(0)) == [[(2, 4), (6, 9), (10, 12)]]
    assert turn_index(ROW.unsqueeze(0)).tolist() == [[-1, -1, 0, 0, -1, -1, 1, 1, 1, -1, 2, 2, -1, -1]]


def test_edges_first_and_last_token_and_empty_rows():
    mask = torch.tensor([[1, 1, 0, 1], [0, 0, 0, 0], [1, 1, 1, 1]])
    assert turn_spans(mask) == [[(0, 2), (3, 4)], [], [(0, 4)]]
    assert truncate_turns(mask, context_limit=3).tolist() == [[1, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]


@pytest.mark.parametrize(
    ("context_limit", "max_turns", "kept"),
    [
        (None, None, [(2, 4), (6, 9), (10, 12)]),
        (14, None, [(2, 4), (6, 9), (10, 12)]),
        (12, None, [(2, 4), (6, 9), (10, 12)]),  # the last turn ends exactly at the limit: kept
        (11, None, [(2, 4), (6, 9)]),  # the last turn straddles the limit: dropped whole
        (8, None, [(2, 4)]),
        (3, None, []),
        (None, 1, [(2, 4)]),
        (None, 2, [(2, 4), (6, 9)]),
        (12, 1, [(2, 4)]),
    ],
)
def test_truncation_drops_exactly_the_right_turns(context_limit, max_turns, kept):
    out = truncate_turns(ROW.unsqueeze(0), context_limit=context_limit, max_turns=max_turns)
    expected = torch.zeros_like(ROW)
    for start, end in kept:
        expected[start:end] = 1
    assert out.tolist() == [expected.tolist()]


def test_hint_length_counts_against_the_context_limit():
    rows = ROW.expand(3, -1)
    out = truncate_turns(rows, context_limit=12, hint_lens=torch.tensor([0, 1, 4]))
    assert turn_spans(out) == [[(2, 4), (6, 9), (10, 12)], [(2, 4), (6, 9)], [(2, 4)]]


@pytest.mark.parametrize("seed", range(5))
def test_random_masks_match_the_loop(seed):
    g = torch.Generator().manual_seed(seed)
    mask = (torch.rand(6, 40, generator=g) < 0.5).long()
    hints = torch.randint(0, 6, (6,), generator=g)
    assert turn_spans(mask) == [slow_spans(row) for row in mask]
    for context_limit, max_turns in [(None, None), (25, None), (None, 3), (30, 2), (0, None)]:
        out = truncate_turns(mask, context_limit=context_limit, max_turns=max_turns, hint_lens=hints)
        expected = [slow_truncate(row, context_limit, max_turns, int(h)) for row, h in zip(mask, hints)]
        assert out.tolist() == expected


def test_output_keeps_dtype_and_the_input_is_untouched():
    for dtype in (torch.bool, torch.long, torch.float32):
        mask = ROW.unsqueeze(0).to(dtype)
        before = mask.clone()
        out = truncate_turns(mask, context_limit=9)
        assert out.dtype == dtype and torch.equal(mask, before)
        assert out.data_ptr() != mask.data_ptr()


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="max_turns must be >= 1"):
        truncate_turns(ROW.unsqueeze(0), max_turns=0)
    with pytest.raises(ValueError, match=r"\(batch, tokens\)"):
        turn_spans(ROW)
    with pytest.raises(ValueError, match="hint_lens must be"):
        truncate_turns(ROW.unsqueeze(0), context_limit=5, hint_lens=torch.tensor([1, 2]))
