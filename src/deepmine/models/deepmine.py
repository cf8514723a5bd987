"""Deep-MINE (Guan, Wei & Chen, Decision Support Systems 2019):

    x_ij = alpha_i + beta_j + u_i . v_j + theta_i . f_ij
    f_ij = E^T [a_i1 m_j ; a_i2 d_j ; a_i3 r_j]

m_j, d_j and r_j are the codes of the item's image, description and review autoencoders, and
a_i1..a_i3 the user's cognition scalars. Every term of a row uses only that row's user and item.
The content term factorises per view,

    theta_i . f_ij = sum_v a_iv (theta_i . E_v^T code_vj),

so the item side of a batch is P_v = codes_v @ E_v (one row per distinct item and view), and
scoring users against every item is one matrix product per view.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn as nn

from ..features import ItemFeatures, image_batch
from ..objective import TripletTerms
from ..params import VIEWS
from .autoencoders import ImageAutoencoder, TextAutoencoder, run_autoencoder
from .base import FACTOR_INIT_STD, FactorModel, register_item_features

# Initial value of every cognition scalar a_iv: each view starts with the same weight for every
# user, and training moves the weights apart.
COGNITION_INIT = 1.0


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


class DeepMINE(FactorModel):
    """Deep-MINE over a subset of the views (all three, or fewer for the single-view ablation).

    The cognition scalars and the row blocks of E exist for the enabled views only, in the
    order image, description, review. A view an item lacks (no image, no description, no
    training review) gives a zero code, not the code of an all-zero input, and no reconstruction
    term. The cognition scalars are not penalised, as the objective has no term for them.
    """

    name = "deepmine"
    uses_content = True

    def __init__(self, n_users: int, n_items: int, item_train_counts: np.ndarray, dim_u: int,
                 dim_theta: int, dim_node: int, hidden: int, views: list[str],
                 features: ItemFeatures, encode_chunk: int = 0):
        super().__init__(n_users, n_items, item_train_counts, dim_u)
        unknown = [v for v in views if v not in VIEWS]
        if unknown or not views:
            raise ValueError(f"deepmine views must be a non-empty subset of {VIEWS}, got {views}")
        self.views = [v for v in VIEWS if v in views]
        self.dim_theta = dim_theta
        self.dim_node = dim_node
        self.hidden = hidden
        self.text_dim = features.text_dim
        self.encode_chunk = encode_chunk

        self.theta = nn.Embedding(n_users, dim_theta)
        nn.init.normal_(self.theta.weight, std=FACTOR_INIT_STD)
        self.cognition = nn.Embedding(n_users, len(self.views))  # a_iv
        nn.init.constant_(self.cognition.weight, COGNITION_INIT)
        rows = len(self.views) * dim_node
        self.E = nn.Parameter(torch.randn(rows, dim_theta) / rows ** 0.5)  # (n_views * dim_node, dim_theta)
        self.autoencoders = nn.ModuleDict({
            view: ImageAutoencoder(dim_node) if view == "image" else TextAutoencoder(self.text_dim, hidden, dim_node)
            for view in self.views
        })
        register_item_features(self, features, self.views)

    def config(self) -> dict[str, Any]:
        return {**super().config(), "dim_theta": self.dim_theta, "dim_node": self.dim_node,
                "hidden": self.hidden, "views": self.views, "text_dim": self.text_dim,
                "encode_chunk": self.encode_chunk}

    def E_view(self, view: str) -> torch.Tensor:
        """E_v, the rows of E that read the codes of `view`, (dim_node, dim_theta)."""
        start = self.views.index(view) * self.dim_node
        return self.E[start:start + self.dim_node]

    def encode_view(self, view: str, items: torch.Tensor, reconstruct: bool = False,
                    progress: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Codes of `view` for `items` (len(items), dim_node), zero rows for items without the
        view, and the summed squared reconstruction error of the items that have it."""
        has = getattr(self, f"has_{view}")[items]
        present = has.nonzero().squeeze(1)
        if present.numel() == 0:
            codes = torch.zeros(len(items), self.dim_node, device=items.device)
            return codes, torch.zeros((), device=items.device)

        raw = getattr(self, f"content_{view}")[items[present]]
        prepare = image_batch if view == "image" else _identity
        chunk = self.encode_chunk if view == "image" else 0
        present_codes, error = run_autoencoder(self.autoencoders[view], raw, prepare=prepare,
                                               reconstruct=reconstruct, chunk=chunk, progress=progress)
        codes = torch.zeros(len(items), self.dim_node, device=items.device, dtype=present_codes.dtype)
        return codes.index_copy(0, present, present_codes), error

    def item_side(self, items: torch.Tensor, reconstruct: bool, progress: bool = False) -> Any:
        """P_v = codes_v @ E_v for every view, each (len(items), dim_theta), and the squared
        reconstruction errors by view."""
        projections, errors = [], {}
        for view in self.views:
            codes, error = self.encode_view(view, items, reconstruct=reconstruct, progress=progress)
            projections.append(codes @ self.E_view(view).to(codes.dtype))
            errors[view] = error
        return projections, errors

    def content_score(self, users: torch.Tensor, rows: torch.Tensor, side: Any) -> torch.Tensor:
        projections, _ = side
        theta_i = self.theta(users)  # (batch, dim_theta)
        a_i = self.cognition(users)  # (batch, n_views)
        score = torch.zeros(users.shape[0], device=users.device)
        for index, projection in enumerate(projections):
            score = score + a_i[:, index] * (theta_i * projection[rows]).sum(1)
        return score

    def content_terms(self, terms: TripletTerms, users: torch.Tensor, side: Any) -> None:
        _, errors = side
        terms.theta_i = self.theta(users)
        terms.E = self.E
        terms.recon_sq_error = errors
        terms.ae_weights = {view: ae.weights() for view, ae in self.autoencoders.items()}
        terms.ae_biases = {view: ae.biases() for view, ae in self.autoencoders.items()}

    def content_matrix(self, users: torch.Tensor, side: Any) -> torch.Tensor:
        projections, _ = side
        theta_i = self.theta(users)
        a_i = self.cognition(users)
        scores = 0.0
        for index, projection in enumerate(projections):
            scores = scores + (a_i[:, index:index + 1] * theta_i) @ projection.float().T
        return scores
