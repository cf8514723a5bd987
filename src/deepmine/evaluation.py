"""Evaluation driver: score users against every item in chunks and summarise the metrics.

Evaluated users of a split S (validation or test) are the users with an interaction in S. The
split puts exactly one interaction per user in S, and this module raises when it finds more.

For each evaluated user u with held-out item t (definitions and the tie rule in
`deepmine.metrics`):
- AUC: candidates are the items u never interacted with in any split. AUC_u is the share of
  candidates scoring strictly below t, averaged over users. Users with 0 candidates are
  skipped and counted in `auc_skipped_users`.
- Cold-start AUC: the same mean over the cases whose item has at most `cold_max_train`
  training interactions, items with none included. `cold_cases` counts the cases in that mean.
- Recall@K and NDCG@K: full ranking over every item except u's items in the other splits (for
  test: training and validation items; for validation: training and test items). Mean over
  all evaluated users.
- HR@K sampled (`hr@K_sampled`): 1[rank < K] with t ranked among itself and u's fixed
  negatives, padding -1 ignored. Users whose row has no valid negative are skipped and counted
  in `hr_skipped_users`.

Items with no training interactions stay candidates and are scored by the model from content,
because the model masks their v_j and beta_j to zero. Users with no training items are evaluated
like any other user.

`score_fn` maps an int64 array of user ids to a (len(users), n_items) floating tensor. It is
called once per chunk of `chunk_users` users, so memory is bounded by chunk_users x n_items
scores plus one bool buffer of that size. Per-user counts are integers and the means are taken
once over all users in float64, so the chunk size does not change any result.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch
from tqdm import tqdm

from .data import SPLITS, SplitData
from .metrics import ndcg_at_k, rank_counts, recall_at_k, sampled_ranks
from .params import EvaluateParams

log = logging.getLogger(__name__)

ScoreFn = Callable[[np.ndarray], torch.Tensor]


class EvaluationInputError(ValueError):
    """Input the evaluation cannot use: a malformed split, negatives file or score tensor."""


def held_out_cases(split: SplitData, which: str) -> tuple[np.ndarray, np.ndarray]:
    """Return (users, items) of split `which`, sorted by user, one held-out item per user.

    Raise EvaluationInputError when a user has two interactions in the split or when a held-out
    pair also appears in another split."""
    if which not in ("validation", "test"):
        raise EvaluationInputError(f"split must be 'validation' or 'test', got {which!r}")
    pairs = np.asarray(getattr(split, which), dtype=np.int64).reshape(-1, 2)
    order = np.argsort(pairs[:, 0], kind="stable")
    users = pairs[order, 0]
    items = pairs[order, 1]

    repeated = users[1:][users[1:] == users[:-1]]
    if len(repeated):
        raise EvaluationInputError(
            f"user {repeated[0]} has more than one {which} interaction ({len(repeated)} such users); "
            "the evaluation expects exactly one held-out item per user, so rerun the clean stage"
        )

    others = [s for s in SPLITS if s != which]
    other_keys = _interaction_keys(split, *others)
    leaked = np.isin(users * split.n_items + items, other_keys)
    if leaked.any():
        first = int(np.flatnonzero(leaked)[0])
        raise EvaluationInputError(
            f"the {which} pair (user {users[first]}, item {items[first]}) also appears in "
            f"{' or '.join(others)} ({int(leaked.sum())} such pairs); rerun the clean stage"
        )
    return users, items


def load_eval_negatives(path: str | Path, n_items: int) -> tuple[np.ndarray, np.ndarray]:
    """Read the fixed evaluation negatives: (users (n,) int64 sorted, negatives (n, m) int64).

    Raise FileNotFoundError when the file is missing and EvaluationInputError, naming the file,
    when its arrays are malformed or an item id is outside -1..n_items-1."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} not found; run the triplets stage (dvc repro triplets)")
    with np.load(path) as archive:
        missing = [key for key in ("users", "negatives") if key not in archive.files]
        if missing:
            raise EvaluationInputError(
                f"{path}: array {missing[0]!r} is missing (found: {', '.join(archive.files)}); "
                "rerun the triplets stage"
            )
        users = archive["users"]
        negatives = archive["negatives"]

    if not np.issubdtype(users.dtype, np.integer) or not np.issubdtype(negatives.dtype, np.integer):
        raise EvaluationInputError(
            f"{path}: users and negatives must be integer arrays, got {users.dtype} and {negatives.dtype}"
        )
    if users.ndim != 1 or negatives.ndim != 2 or len(users) != len(negatives):
        raise EvaluationInputError(
            f"{path}: expected users (n,) and negatives (n, m), got shapes {users.shape} and "
            f"{negatives.shape}; rerun the triplets stage"
        )
    users = users.astype(np.int64)
    negatives = negatives.astype(np.int64)
    if len(users) > 1 and not (np.diff(users) > 0).all():
        raise EvaluationInputError(f"{path}: users must be sorted and unique; rerun the triplets stage")
    if negatives.size and (negatives.min() < -1 or negatives.max() >= n_items):
        bad = negatives[(negatives < -1) | (negatives >= n_items)][0]
        raise EvaluationInputError(
            f"{path}: negative item {bad} is outside 0..{n_items - 1} (and -1 for padding); "
            "the negatives were drawn for another split, so rerun the triplets stage"
        )
    return users, negatives


def validation_auc(score_fn: ScoreFn, split: SplitData, *, chunk_users: int,
                   users: np.ndarray | None = None) -> float:
    """Return the mean validation AUC (VBPR protocol), the early-stopping criterion.

    `users` restricts the evaluation to a subset of the validation users; every id in it must
    have a validation interaction. Users with 0 candidates are skipped. Raise
    EvaluationInputError when no validation user is left to evaluate."""
    case_users, case_items = held_out_cases(split, "validation")
    if users is not None:
        requested = np.unique(np.asarray(users, dtype=np.int64))
        keep = np.isin(case_users, requested)
        if keep.sum() != len(requested):
            stray = requested[~np.isin(requested, case_users)]
            raise EvaluationInputError(
                f"user {stray[0]} has no validation interaction ({len(stray)} such users requested)"
            )
        case_users, case_items = case_users[keep], case_items[keep]
    if len(case_users) == 0:
        raise EvaluationInputError("no validation users to evaluate: the validation split is empty")

    counts = _score_cases(score_fn, split, case_users, case_items, chunk_users=chunk_users,
                          tie_order=False, negatives=None, desc="validation AUC")
    auc, _ = _mean_auc(counts["below"], counts["candidates"])
    return auc


def evaluate_split(score_fn: ScoreFn, split: SplitData, which: str, *, ks: Iterable[int], hr_k: int,
                   negatives: tuple[np.ndarray, np.ndarray] | None, cold_max_train: int,
                   chunk_users: int) -> dict[str, float]:
    """Evaluate every user of split `which` and return its metrics.

    Keys, in order: users, auc, auc_skipped_users, cold_auc, cold_cases, then recall@K and
    ndcg@K for each K in `ks`, then hr@{hr_k}_sampled and hr_skipped_users when `negatives`
    (users, negatives) from `load_eval_negatives` is given. A mean over no case (cold_auc
    with 0 cold cases) is NaN. Counts are ints and metrics floats."""
    ks = [int(k) for k in ks]
    if not ks or min(ks) < 1 or hr_k < 1:
        raise EvaluationInputError(f"evaluate.ks and evaluate.hr_k must be at least 1, got {ks} and {hr_k}")
    users, items = held_out_cases(split, which)
    if len(users) == 0:
        raise EvaluationInputError(f"no {which} users to evaluate: the {which} split is empty")

    negative_rows = None
    if negatives is not None:
        negative_rows = _negative_rows(negatives, users, which)
    counts = _score_cases(score_fn, split, users, items, chunk_users=chunk_users, tie_order=True,
                          negatives=negative_rows, desc=f"{which} metrics")

    auc, auc_users = _mean_auc(counts["below"], counts["candidates"])
    cold = split.item_train_counts[items] <= cold_max_train
    cold_auc, cold_cases = _mean_auc(counts["below"][cold], counts["candidates"][cold])
    result: dict[str, float] = {
        "users": len(users),
        "auc": auc,
        "auc_skipped_users": len(users) - auc_users,
        "cold_auc": cold_auc,
        "cold_cases": cold_cases,
    }

    ranks = torch.from_numpy(counts["ranks"])
    for k in ks:
        result[f"recall@{k}"] = float(recall_at_k(ranks, k).mean())
        result[f"ndcg@{k}"] = float(ndcg_at_k(ranks, k).mean())

    if negative_rows is not None:
        has_negatives = counts["n_negatives"] > 0
        sampled = torch.from_numpy(counts["sampled_ranks"][has_negatives])
        result[f"hr@{hr_k}_sampled"] = float(recall_at_k(sampled, hr_k).mean()) if len(sampled) else math.nan
        result["hr_skipped_users"] = int((~has_negatives).sum())
    return result


def json_metrics(metrics: dict[str, float]) -> dict[str, float | int | None]:
    """Replace NaN by None, so the JSON contains null where a mean had no case (JSON has no NaN)."""
    return {key: None if isinstance(value, float) and math.isnan(value) else value
            for key, value in metrics.items()}


def _interaction_keys(split: SplitData, *splits: str) -> np.ndarray:
    """Sorted unique user * n_items + item keys of the interactions in `splits`."""
    pairs = [np.asarray(getattr(split, s), dtype=np.int64).reshape(-1, 2) for s in splits]
    pairs = np.concatenate(pairs) if pairs else np.zeros((0, 2), np.int64)
    return np.unique(pairs[:, 0] * split.n_items + pairs[:, 1])


def _negative_rows(negatives: tuple[np.ndarray, np.ndarray], users: np.ndarray, which: str) -> np.ndarray:
    """Return the negatives of each evaluated user, (len(users), m), in the order of `users`."""
    negative_users, negative_items = negatives
    position = np.searchsorted(negative_users, users)
    position = np.minimum(position, max(len(negative_users) - 1, 0))
    found = (negative_users[position] == users) if len(negative_users) else np.zeros(len(users), bool)
    if not found.all():
        missing = users[~found]
        raise EvaluationInputError(
            f"{which} user {missing[0]} has no row in the evaluation negatives ({len(missing)} such "
            "users); the negatives were drawn for another split, so rerun the triplets stage"
        )
    return negative_items[position]


def _mean_auc(below: np.ndarray, candidates: np.ndarray) -> tuple[float, int]:
    """Return (mean AUC_u over rows with candidates, number of such rows); NaN when none."""
    has_candidates = candidates > 0
    n = int(has_candidates.sum())
    if n == 0:
        return math.nan, 0
    return float(np.mean(below[has_candidates] / candidates[has_candidates])), n


def _check_scores(scores: torch.Tensor, users: np.ndarray, n_items: int) -> None:
    if scores.shape != (len(users), n_items) or not scores.is_floating_point():
        raise EvaluationInputError(
            f"score_fn returned a {tuple(scores.shape)} {scores.dtype} tensor for {len(users)} users; "
            f"expected ({len(users)}, {n_items}) floating point"
        )
    # One cheap reduction first; the element-wise check runs only when the sum is not finite.
    if not torch.isfinite(scores.sum()):
        bad_rows = (~torch.isfinite(scores)).any(1).nonzero().flatten().cpu().numpy()
        if len(bad_rows):
            raise EvaluationInputError(
                f"the model scored user {users[bad_rows[0]]} with NaN or infinite values "
                f"({len(bad_rows)} such users in this chunk); the checkpoint is unusable, retrain it"
            )


def _score_cases(score_fn: ScoreFn, split: SplitData, users: np.ndarray, items: np.ndarray, *,
                 chunk_users: int, tie_order: bool, negatives: np.ndarray | None,
                 desc: str) -> dict[str, np.ndarray]:
    """Score the cases chunk by chunk and return per-case int64 count arrays.

    Keys: below, candidates, ranks, and with `negatives` also sampled_ranks and n_negatives."""
    if chunk_users < 1:
        raise EvaluationInputError(f"evaluate.chunk_users must be at least 1, got {chunk_users}")
    n_items = split.n_items
    interacted = split.matrix(*SPLITS)  # CSR: every (user, item) pair is excluded from candidates
    interaction_keys = _interaction_keys(split, *SPLITS) if negatives is not None else None

    out: dict[str, list[np.ndarray]] = {"below": [], "candidates": [], "ranks": []}
    if negatives is not None:
        out["sampled_ranks"] = []
        out["n_negatives"] = []

    starts = range(0, len(users), chunk_users)
    for start in tqdm(starts, desc=desc, unit="chunk", leave=False):
        user_ids = users[start:start + chunk_users]
        held_out_items = items[start:start + chunk_users]
        with torch.no_grad():
            scores = score_fn(user_ids)
        _check_scores(scores, user_ids, n_items)

        rows_csr = interacted[user_ids]
        excluded_rows = np.repeat(np.arange(len(user_ids)), np.diff(rows_csr.indptr))
        targets = torch.from_numpy(held_out_items)
        counts = rank_counts(scores, targets, torch.from_numpy(excluded_rows),
                             torch.from_numpy(rows_csr.indices.astype(np.int64)), tie_order=tie_order)
        out["below"].append(counts.below.cpu().numpy())
        out["candidates"].append(counts.candidates.cpu().numpy())
        out["ranks"].append(counts.ranks.cpu().numpy())

        if negatives is not None:
            chunk_negatives = negatives[start:start + chunk_users]
            _check_negatives(chunk_negatives, user_ids, interaction_keys, n_items)
            ranks = sampled_ranks(scores, targets, torch.from_numpy(chunk_negatives))
            out["sampled_ranks"].append(ranks.cpu().numpy())
            out["n_negatives"].append((chunk_negatives >= 0).sum(1))

    return {key: np.concatenate(parts).astype(np.int64) for key, parts in out.items()}


def _check_negatives(negatives: np.ndarray, users: np.ndarray, interaction_keys: np.ndarray,
                     n_items: int) -> None:
    """Raise when a fixed negative is one of the user's own items, which would bias HR@K."""
    rows, cols = np.nonzero(negatives >= 0)
    keys = users[rows] * n_items + negatives[rows, cols]
    position = np.minimum(np.searchsorted(interaction_keys, keys), max(len(interaction_keys) - 1, 0))
    hits = interaction_keys[position] == keys if len(interaction_keys) else np.zeros(len(keys), bool)
    if hits.any():
        first = int(np.flatnonzero(hits)[0])
        raise EvaluationInputError(
            f"evaluation negative item {negatives[rows[first], cols[first]]} of user "
            f"{users[rows[first]]} is one of the user's interactions; rerun the triplets stage"
        )


def evaluate_model(score_fn: ScoreFn, split: SplitData, negatives: tuple[np.ndarray, np.ndarray] | None,
                   config: EvaluateParams) -> dict[str, dict[str, float | int | None]]:
    """Evaluate the test and validation splits with the `evaluate` params.

    Returns {"test": {...}, "validation": {...}} ready for JSON (NaN written as None)."""
    results = {}
    for which in ("test", "validation"):
        metrics = evaluate_split(score_fn, split, which, ks=config.ks, hr_k=config.hr_k, negatives=negatives,
                                 cold_max_train=config.cold_max_train, chunk_users=config.chunk_users)
        results[which] = json_metrics(metrics)
    return results
