"""The cleaned split as arrays: what training, sampling and evaluation read from data/clean."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from . import paths

SPLITS = ("train", "validation", "test")


@dataclass
class SplitData:
    """Interactions of one split as (user, item) int64 arrays, ids contiguous from 0."""

    n_users: int
    n_items: int
    train: np.ndarray  # (n_train, 2)
    validation: np.ndarray  # (n_validation, 2)
    test: np.ndarray  # (n_test, 2)

    def matrix(self, *splits: str) -> sp.csr_matrix:
        """Binary user x item matrix of the interactions in `splits`."""
        pairs = np.concatenate([getattr(self, s) for s in splits]) if splits else np.zeros((0, 2), np.int64)
        data = np.ones(len(pairs), dtype=np.float32)
        m = sp.csr_matrix((data, (pairs[:, 0], pairs[:, 1])), shape=(self.n_users, self.n_items))
        m.sum_duplicates()
        m.data[:] = 1.0
        return m

    @property
    def item_train_counts(self) -> np.ndarray:
        """Training interactions per item, (n_items,) int64."""
        return np.bincount(self.train[:, 1], minlength=self.n_items)


def load_split(interactions: str | Path = paths.INTERACTIONS, items: str | Path = paths.ITEMS,
               users: str | Path = paths.USERS) -> SplitData:
    df = pd.read_parquet(interactions, columns=["user", "item", "split"])
    n_items = len(pd.read_parquet(items, columns=["item"]))
    n_users = len(pd.read_parquet(users, columns=["user"]))
    arrays = {}
    for name in SPLITS:
        part = df[df["split"] == name]
        arrays[name] = np.stack([part["user"].to_numpy(np.int64), part["item"].to_numpy(np.int64)], axis=1)
    return SplitData(n_users=n_users, n_items=n_items, **arrays)
