"""VBPR (He & McAuley, AAAI 2016) on fixed content features:

    x_ij = alpha_i + beta_j + u_i . v_j + theta_i . (E^T f_j) + beta'^T f_j

f_j concatenates the item's views in the order image, description, review: the flattened
40x40x3 image scaled to [0, 1] and the text vectors. A missing view is a block of zeros.
E is penalised with lambda_Wfu and beta' with lambda_beta, both as shared weights.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn as nn

from ..features import IMAGE_SIZE, ItemFeatures
from ..objective import TripletTerms
from .base import FACTOR_INIT_STD, FactorModel, register_item_features

# Items whose content features are projected at once when scoring every item.
PROJECT_CHUNK = 4096


class VBPR(FactorModel):
    name = "vbpr"
    uses_content = True

    def __init__(self, n_users: int, n_items: int, item_train_counts: np.ndarray, dim_u: int,
                 dim_theta: int, views: list[str], features: ItemFeatures):
        super().__init__(n_users, n_items, item_train_counts, dim_u)
        if not views:
            raise ValueError("vbpr needs at least one view (image, description or review)")
        self.views = list(views)
        self.dim_theta = dim_theta
        self.text_dim = features.text_dim
        widths = {"image": IMAGE_SIZE * IMAGE_SIZE * 3, "description": self.text_dim, "review": self.text_dim}
        self.feature_dim = sum(widths[view] for view in self.views)

        self.theta = nn.Embedding(n_users, dim_theta)
        nn.init.normal_(self.theta.weight, std=FACTOR_INIT_STD)
        # Scaled so that E^T f_j starts with entries of order one whatever the feature width.
        self.E = nn.Parameter(torch.randn(self.feature_dim, dim_theta) / self.feature_dim ** 0.5)
        self.beta_prime = nn.Parameter(torch.zeros(self.feature_dim))
        register_item_features(self, features, self.views)

    def config(self) -> dict[str, Any]:
        return {**super().config(), "dim_theta": self.dim_theta, "views": self.views,
                "text_dim": self.text_dim}

    def content_features(self, items: torch.Tensor) -> torch.Tensor:
        """f_j of `items`, (len(items), feature_dim)."""
        blocks = []
        for view in self.views:
            has = getattr(self, f"has_{view}")[items].unsqueeze(1)
            stored = getattr(self, f"content_{view}")[items]
            if view == "image":
                stored = stored.reshape(len(items), -1).float() / 255.0
            blocks.append(stored * has)
        return torch.cat(blocks, dim=1)

    def item_side(self, items: torch.Tensor, reconstruct: bool, progress: bool = False) -> Any:
        projections, visual_biases = [], []
        for start in range(0, len(items), PROJECT_CHUNK):
            f = self.content_features(items[start:start + PROJECT_CHUNK])
            projections.append(f @ self.E)  # (chunk, dim_theta)
            visual_biases.append(f @ self.beta_prime)  # (chunk,)
        return torch.cat(projections), torch.cat(visual_biases)

    def content_score(self, users: torch.Tensor, rows: torch.Tensor, side: Any) -> torch.Tensor:
        projection, visual_bias = side
        return (self.theta(users) * projection[rows]).sum(1) + visual_bias[rows]

    def content_terms(self, terms: TripletTerms, users: torch.Tensor, side: Any) -> None:
        terms.theta_i = self.theta(users)
        terms.E = self.E
        terms.beta_prime = self.beta_prime

    def content_matrix(self, users: torch.Tensor, side: Any) -> torch.Tensor:
        projection, visual_bias = side
        return self.theta(users) @ projection.T + visual_bias.unsqueeze(0)
