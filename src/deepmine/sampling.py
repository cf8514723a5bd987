"""Negative sampling: BPR training triplets per epoch and the fixed evaluation negatives.

Both draw uniformly from the items a user does not own, without rejection loops: with the user's
owned items sorted as o_0 < o_1 < ..., the r-th free item (0-based) is r + #{k : o_k - k <= r}.
One searchsorted over all users at once maps a uniform r in [0, n_items - owned) to that item, so
the cost does not grow for users who own most of the catalogue.
"""

from __future__ import annotations

import logging

import numpy as np
import scipy.sparse as sp

log = logging.getLogger(__name__)


class FreeItemSampler:
    """Uniform sampler over the items each user does not own (a CSR user x item matrix)."""

    def __init__(self, owned: sp.csr_matrix):
        owned = owned.tocsr()
        owned.sort_indices()
        self.n_items = owned.shape[1]
        self.indptr = owned.indptr.astype(np.int64)
        self.degree = np.diff(self.indptr)
        users = np.repeat(np.arange(owned.shape[0], dtype=np.int64), self.degree)
        rank = np.arange(len(owned.indices), dtype=np.int64) - self.indptr[users]
        # Keys stay sorted because o_k - k is non-decreasing within a user and below n_items + 1.
        self.keys = users * (self.n_items + 1) + owned.indices.astype(np.int64) - rank

    def free_counts(self, users: np.ndarray) -> np.ndarray:
        return self.n_items - self.degree[users]

    def draw(self, users: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One free item per entry of `users`; every user must have at least one free item."""
        free = self.free_counts(users)
        r = (rng.random(len(users)) * free).astype(np.int64)
        np.minimum(r, free - 1, out=r)  # guards the float rounding at the upper edge
        below = np.searchsorted(self.keys, users * (self.n_items + 1) + r, side="right") - self.indptr[users]
        return r + below

    def free_item(self, user: int, r: np.ndarray) -> np.ndarray:
        """Return the r-th free items of one user, for an array of ranks r."""
        start, stop = self.indptr[user], self.indptr[user + 1]
        return r + np.searchsorted(self.keys[start:stop], user * (self.n_items + 1) + r, side="right")


def training_triplets(train: np.ndarray, n_users: int, n_items: int, epochs: int, negatives: int,
                      seed: int) -> tuple[np.ndarray, dict]:
    """Draw (user, positive, negative) triplets for every epoch.

    train: (n, 2) training (user, item) pairs. Returns an int32 array (epochs, n * negatives, 3),
    each epoch in its own random order, and a report. A negative is never one of the user's
    training items. Interactions of users who own every item cannot get a negative and are left
    out (counted in the report).
    """
    owned = sp.csr_matrix((np.ones(len(train), np.int8), (train[:, 0], train[:, 1])), shape=(n_users, n_items))
    owned.sum_duplicates()
    sampler = FreeItemSampler(owned)

    usable = sampler.free_counts(train[:, 0]) > 0
    skipped = int((~usable).sum())
    if skipped:
        log.warning("%d training interactions belong to users who own every item: no negative exists, left out", skipped)
    pairs = np.repeat(train[usable], negatives, axis=0)

    out = np.empty((epochs, len(pairs), 3), dtype=np.int32)
    for epoch in range(epochs):
        rng = np.random.default_rng([seed, epoch])
        order = rng.permutation(len(pairs))
        users = pairs[order, 0]
        out[epoch, :, 0] = users
        out[epoch, :, 1] = pairs[order, 1]
        out[epoch, :, 2] = sampler.draw(users, rng)

    report = {
        "epochs": epochs,
        "negatives_per_positive": negatives,
        "training_interactions": len(train),
        "interactions_without_negative": skipped,
        "triplets_per_epoch": len(pairs),
    }
    return out, report


def evaluation_negatives(owned_all: sp.csr_matrix, users: np.ndarray, count: int, seed: int) -> np.ndarray:
    """Draw `count` distinct negatives per user, outside everything the user interacted with.

    owned_all: user x item matrix of train, validation and test interactions. Returns an int64
    array (len(users), count); users with fewer free items get all of them, padded with -1.
    """
    sampler = FreeItemSampler(owned_all)
    rng = np.random.default_rng([seed, 1_000_003])
    out = np.full((len(users), count), -1, dtype=np.int64)
    for row, user in enumerate(users):
        free = int(sampler.free_counts(np.array([user]))[0])
        take = min(count, free)
        ranks = np.sort(rng.choice(free, size=take, replace=False))
        out[row, :take] = sampler.free_item(int(user), ranks)
    return out
