"""Ranking metrics on hand-built score tensors, checked against values computed by hand."""

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from deepmine.metrics import (
    auc_counts, full_ranks, ndcg_at_k, rank_counts, recall_at_k, sampled_ranks,
)


def _mask(n_rows, n_items, marked):
    mask = torch.zeros(n_rows, n_items, dtype=torch.bool)
    for row, items in enumerate(marked):
        mask[row, items] = True
    return mask


def test_auc_counts_hand_values():
    scores = torch.tensor([
        [0.9, 0.1, 0.5, 0.4, 0.2, 0.4],
        [0.8, 0.6, 0.2, 0.7, 0.1, 0.05],
    ])
    targets = torch.tensor([5, 1])
    # Row 0: items 0..2 and the target are excluded; candidates 3 (tie, not below) and 4 (below).
    # Row 1: items 0, 2, 3 excluded, the target left unmarked; candidates 4 and 5, both below.
    exclude = _mask(2, 6, [[0, 1, 2, 5], [0, 2, 3]])

    below, candidates = auc_counts(scores, targets, exclude)

    assert below.tolist() == [1, 2]
    assert candidates.tolist() == [2, 2]


def test_auc_counts_match_sklearn_without_ties():
    generator = torch.Generator().manual_seed(7)
    n_rows, n_items = 5, 40
    scores = torch.stack([torch.randperm(n_items, generator=generator) for _ in range(n_rows)]).float()
    targets = torch.tensor([3, 17, 0, 39, 21])
    exclude = _mask(n_rows, n_items, [[1, 2], [], [5, 6, 7], [0], [38, 39]])

    below, candidates = auc_counts(scores, targets, exclude)

    for row in range(n_rows):
        keep = ~exclude[row]
        keep[targets[row]] = False
        negatives = scores[row][keep].numpy()
        labels = np.r_[1, np.zeros(len(negatives))]
        expected = roc_auc_score(labels, np.r_[scores[row, targets[row]].item(), negatives])
        assert candidates[row].item() == len(negatives)
        assert below[row].item() / candidates[row].item() == pytest.approx(expected, abs=1e-12)


def test_auc_counts_user_with_every_item_excluded():
    scores = torch.tensor([[0.3, 0.2, 0.1]])
    below, candidates = auc_counts(scores, torch.tensor([1]), _mask(1, 3, [[0, 2]]))
    assert below.tolist() == [0]
    assert candidates.tolist() == [0]


def test_full_ranks_break_ties_by_item_id():
    scores = torch.tensor([
        [0.9, 0.1, 0.5, 0.4, 0.2, 0.4],  # target 5: item 3 ties and has the smaller id
        [0.5, 0.5, 0.9, 0.1, 0.3, 0.5],  # target 1: item 0 ties before, item 5 ties after
        [0.2, 0.8, 0.8, 0.8, 0.0, 0.1],  # target 0: three items above, two of them masked
    ])
    targets = torch.tensor([5, 1, 0])
    mask = _mask(3, 6, [[0, 1, 2], [4], [1, 2]])

    ranks = full_ranks(scores, targets, mask)

    assert ranks.tolist() == [1, 2, 1]


def test_rank_counts_dense_tie_path_matches_definition():
    # Integer scores in 0..2 over 60 items tie about 20 times per row, above the listed-tie limit,
    # so the dense item-id comparison runs. Scores in 0..9999 tie rarely and take the listed path.
    generator = torch.Generator().manual_seed(3)
    for high in (3, 10_000):
        scores = torch.randint(0, high, (8, 60), generator=generator).float()
        targets = torch.randint(0, 60, (8,), generator=generator)
        exclude = torch.rand(8, 60, generator=generator) < 0.2

        counts = rank_counts(scores, targets, *exclude.nonzero(as_tuple=True))

        for row in range(8):
            t = targets[row].item()
            s_t = scores[row, t].item()
            others = [j for j in range(60) if j != t and not exclude[row, j]]
            above = sum(scores[row, j].item() > s_t for j in others)
            tied = sum(scores[row, j].item() == s_t for j in others)
            tied_before = sum(scores[row, j].item() == s_t and j < t for j in others)
            assert counts.above[row].item() == above
            assert counts.tied[row].item() == tied
            assert counts.tied_before[row].item() == tied_before
            assert counts.candidates[row].item() == len(others)
            assert counts.below[row].item() == len(others) - above - tied


def test_rank_counts_ignore_duplicate_exclusions():
    scores = torch.tensor([[0.4, 0.9, 0.1, 0.6]])
    rows = torch.tensor([0, 0, 0])
    items = torch.tensor([1, 1, 2])

    counts = rank_counts(scores, torch.tensor([0]), rows, items)

    assert counts.candidates.tolist() == [1]
    assert counts.above.tolist() == [1]
    assert counts.below.tolist() == [0]


def test_recall_and_ndcg_hand_values():
    ranks = torch.tensor([0, 1, 9, 10, 49])

    assert recall_at_k(ranks, 10).tolist() == [1.0, 1.0, 1.0, 0.0, 0.0]
    assert ndcg_at_k(ranks, 10).tolist() == [1.0, 1 / math.log2(3), 1 / math.log2(11), 0.0, 0.0]
    assert recall_at_k(ranks, 50).tolist() == [1.0, 1.0, 1.0, 1.0, 1.0]
    assert ndcg_at_k(ranks, 50)[4].item() == 1 / math.log2(51)


def test_sampled_ranks_hr_at_10_with_fixed_negatives():
    # Item j scores -j, so every item with a smaller id is ranked before item 12.
    scores = -torch.arange(20, dtype=torch.float32).repeat(2, 1)
    targets = torch.tensor([12, 12])
    negatives = torch.tensor([
        list(range(12)) + [13, 14, 15],  # 12 negatives above the target: rank 12
        [-1, -1, -1] + list(range(3, 12)) + [13, 14, 15],  # padding drops 3 of them: rank 9
    ])

    ranks = sampled_ranks(scores, targets, negatives)

    assert ranks.tolist() == [12, 9]
    assert recall_at_k(ranks, 10).tolist() == [0.0, 1.0]


def test_sampled_ranks_padding_and_ties():
    scores = torch.tensor([
        [0.9, 0.1, 0.5, 0.4, 0.2, 0.4],
        [0.0, 0.9, 0.3, 0.8, 0.3, 0.7],
    ])
    targets = torch.tensor([5, 2])
    # Row 0: item 3 ties with the target and has the smaller id, so it ranks before it.
    # Row 1: item 5 is above, item 4 ties but has the larger id; -1 entries are padding.
    negatives = torch.tensor([[3, 4, -1], [5, 4, -1]])

    assert sampled_ranks(scores, targets, negatives).tolist() == [1, 1]
    assert sampled_ranks(scores, targets, torch.full((2, 3), -1)).tolist() == [0, 0]
