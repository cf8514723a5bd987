"""Item popularity: every user gets the items ranked by their number of training interactions."""

from __future__ import annotations

import numpy as np
import torch

from .base import Recommender, Scorer


class Popularity(Recommender):
    """x_ij = the training interaction count of item j; nothing is trained, the counts are the model."""

    name = "pop"
    trainable = False

    def __init__(self, n_users: int, n_items: int, item_train_counts: np.ndarray):
        super().__init__(n_users, n_items)
        counts = torch.as_tensor(np.asarray(item_train_counts), dtype=torch.float32)
        if counts.shape != (n_items,):
            raise ValueError(f"item_train_counts has shape {tuple(counts.shape)}, expected ({n_items},)")
        self.register_buffer("counts", counts)

    def score(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return self.counts[items]

    def make_scorer(self, device: torch.device | str) -> Scorer:
        self.to(device)
        self.eval()
        counts = self.counts.cpu()

        def scorer(user_ids: np.ndarray) -> torch.Tensor:
            return counts.unsqueeze(0).repeat(len(user_ids), 1)

        return scorer
