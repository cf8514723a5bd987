"""BPR-MF (Rendle et al., UAI 2009): x_ij = alpha_i + beta_j + u_i . v_j."""

from __future__ import annotations

import numpy as np

from .base import FactorModel


class BPR(FactorModel):
    """Matrix factorisation with biases trained on the BPR criterion; no content, so items
    without training interactions all score alpha_i."""

    name = "bpr"

    def __init__(self, n_users: int, n_items: int, item_train_counts: np.ndarray, dim_u: int):
        super().__init__(n_users, n_items, item_train_counts, dim_u)
