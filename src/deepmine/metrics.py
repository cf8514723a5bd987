"""Ranking metrics over one chunk of users: pure functions of a score tensor.

Every function takes `scores`, a (users, n_items) floating tensor whose row r contains one user's
scores for all items, and `target_items`, the (users,) held-out item of each row. Scores must be
finite; `deepmine.evaluation` checks that before calling these functions. The functions run on
the device of `scores` and never loop over items in Python.

Tie rule (one rule for every metric): an item j ranks before the held-out item t when
s_j > s_t, or when s_j == s_t and j < t. This is a stable sort by descending score and then by
ascending item id, so equal scores cannot give an optimistic or random rank.

- AUC (VBPR protocol, He & McAuley 2016): candidates are the items the user never interacted
  with, AUC_u = #{j in candidates: s_j < s_t} / #candidates. Ties count as not below.
- Full-ranking rank: rank_u = #{unmasked j != t: s_j > s_t} + #{unmasked j != t: s_j == s_t,
  j < t}; rank 0 is the top of the list.
- Recall@K = 1[rank < K] and NDCG@K = 1[rank < K] / log2(rank + 2), with one held-out item per
  user, so the ideal DCG is 1.
- Sampled rank: the same rank, taken over the user's fixed negatives instead of all items.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

# Above this many exact ties per row on average, the tie order is counted with a dense
# item-id comparison instead of listing the tied positions (popularity scores tie a lot).
_MAX_LISTED_TIES_PER_ROW = 16


@dataclass(frozen=True)
class RankCounts:
    """Per-row comparisons of the held-out item's score with the candidates' scores.

    Candidates are the items of the row that are neither excluded nor the held-out item. All
    fields are (users,) int64 tensors on the device of the scores."""

    above: torch.Tensor  # candidates with s_j > s_t
    tied: torch.Tensor  # candidates with s_j == s_t
    tied_before: torch.Tensor  # tied candidates with j < t (zeros when tie_order=False)
    candidates: torch.Tensor  # number of candidates

    @property
    def below(self) -> torch.Tensor:
        """Candidates with s_j < s_t: the numerator of AUC_u."""
        return self.candidates - self.above - self.tied

    @property
    def ranks(self) -> torch.Tensor:
        """0-based position of the held-out item among itself and the candidates."""
        return self.above + self.tied_before


def rank_counts(scores: torch.Tensor, target_items: torch.Tensor, excluded_rows: torch.Tensor,
                excluded_items: torch.Tensor, *, tie_order: bool = True) -> RankCounts:
    """Count, per row, the candidates scoring above, equal to and below the held-out item.

    `excluded_rows` and `excluded_items` are the coordinates (row in this chunk, item id) of the
    items that are not candidates, such as the user's interactions. Duplicates are allowed. The
    held-out item is never a candidate of its own row, whether or not it is listed.

    Every item is compared once in a dense pass, then the excluded coordinates, which are few,
    are subtracted, so no dense mask is built. `tie_order=False` skips `tied_before`, which only
    ranks need. Cost: a few passes over (users, n_items) plus one bool buffer of that size.
    """
    n_rows, n_items = scores.shape
    device = scores.device
    targets = target_items.to(device=device, dtype=torch.long)
    target_scores = scores.gather(1, targets[:, None])  # (users, 1)

    # Coordinates to remove from the dense counts: the excluded items plus each row's target.
    rows = torch.cat([excluded_rows.to(device=device, dtype=torch.long),
                      torch.arange(n_rows, device=device)])
    items = torch.cat([excluded_items.to(device=device, dtype=torch.long), targets])
    keys = torch.unique(rows * n_items + items)
    rows = keys // n_items
    items = keys % n_items
    removed_scores = scores[rows, items]
    removed_targets = target_scores[rows, 0]
    removed_tied = removed_scores == removed_targets

    buffer = torch.empty(scores.shape, dtype=torch.bool, device=device)
    torch.gt(scores, target_scores, out=buffer)
    above = buffer.sum(1, dtype=torch.int64)
    above -= torch.bincount(rows[removed_scores > removed_targets], minlength=n_rows)

    torch.eq(scores, target_scores, out=buffer)
    tied_before = torch.zeros(n_rows, dtype=torch.int64, device=device)
    if tie_order and int(torch.count_nonzero(buffer)) <= _MAX_LISTED_TIES_PER_ROW * n_rows:
        tie_rows, tie_items = buffer.nonzero(as_tuple=True)
        tied = torch.bincount(tie_rows, minlength=n_rows)
        tied_before = torch.bincount(tie_rows[tie_items < targets[tie_rows]], minlength=n_rows)
    else:
        tied = buffer.sum(1, dtype=torch.int64)
        if tie_order:
            buffer &= torch.arange(n_items, device=device)[None, :] < targets[:, None]
            tied_before = buffer.sum(1, dtype=torch.int64)
    tied -= torch.bincount(rows[removed_tied], minlength=n_rows)
    if tie_order:
        tied_before -= torch.bincount(rows[removed_tied & (items < targets[rows])], minlength=n_rows)

    candidates = n_items - torch.bincount(rows, minlength=n_rows)
    return RankCounts(above=above, tied=tied, tied_before=tied_before, candidates=candidates)


def auc_counts(scores: torch.Tensor, target_items: torch.Tensor,
               exclude_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (below, candidates) per row for AUC_u = below / candidates (VBPR protocol).

    `exclude_mask` is a (users, n_items) bool tensor, True for every item the user interacted
    with in any split. The held-out item is excluded whether or not it is marked. A row with
    0 candidates has no AUC_u, so the caller skips it."""
    rows, items = exclude_mask.nonzero(as_tuple=True)
    counts = rank_counts(scores, target_items, rows, items, tie_order=False)
    return counts.below, counts.candidates


def full_ranks(scores: torch.Tensor, target_items: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Return the 0-based full-ranking position of each row's held-out item, (users,) int64.

    `mask` is a (users, n_items) bool tensor, True for items left out of the ranking (for the
    test split: the user's training and validation items). Ties follow the module's tie rule."""
    rows, items = mask.nonzero(as_tuple=True)
    return rank_counts(scores, target_items, rows, items).ranks


def sampled_ranks(scores: torch.Tensor, target_items: torch.Tensor,
                  negatives: torch.Tensor) -> torch.Tensor:
    """Return each held-out item's 0-based rank among itself and its sampled negatives.

    `negatives` is (users, n_negatives) int64 padded with -1, and the padding is ignored. A
    negative listed twice counts twice, and a negative equal to the held-out item counts as
    not before it. A row with no valid negative gets rank 0."""
    targets = target_items.to(device=scores.device, dtype=torch.long)
    negatives = negatives.to(device=scores.device, dtype=torch.long)
    valid = negatives >= 0

    target_scores = scores.gather(1, targets[:, None])  # (users, 1)
    negative_scores = scores.gather(1, negatives.clamp(min=0))  # (users, n_negatives)
    before = (negative_scores > target_scores) | (
        (negative_scores == target_scores) & (negatives < targets[:, None])
    )
    return (before & valid).sum(1, dtype=torch.int64)


def recall_at_k(ranks: torch.Tensor, k: int) -> torch.Tensor:
    """Return Recall@K per user, 1.0 when rank < K else 0.0 (one held-out item per user)."""
    return (ranks < k).to(torch.float64)


def ndcg_at_k(ranks: torch.Tensor, k: int) -> torch.Tensor:
    """Return NDCG@K per user, 1 / log2(rank + 2) when rank < K else 0.0.

    With one relevant item the ideal DCG is 1, so DCG equals NDCG."""
    gains = 1.0 / torch.log2(ranks.to(torch.float64) + 2.0)
    return torch.where(ranks < k, gains, torch.zeros_like(gains))
