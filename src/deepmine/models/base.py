"""The interface every recommender offers, and the collaborative part that BPR, VBPR and Deep-MINE
share: x_ij = alpha_i + beta_j + u_i . v_j (+ a model's content term)."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
import torch.nn as nn

from ..objective import TripletTerms

# Initial spread of the user and item factors; the biases start at zero.
FACTOR_INIT_STD = 0.1

Scorer = Callable[[np.ndarray], torch.Tensor]


class Recommender(nn.Module):
    """A model that scores (user, item) pairs.

    `score` is the per-row score function x_ij that evaluation and recommendation reuse.
    `make_scorer` scores users against every item at once. `triplet_terms` is the forward pass
    that the training objective reads (trainable models only).
    """

    name = ""
    trainable = True
    uses_content = False

    def __init__(self, n_users: int, n_items: int):
        super().__init__()
        self.n_users = n_users
        self.n_items = n_items

    def score(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """x_ij for each row (users[r], items[r]), shape (batch,). Rows never influence each other."""
        raise NotImplementedError

    def triplet_terms(self, users: torch.Tensor, positives: torch.Tensor,
                      negatives: torch.Tensor) -> TripletTerms:
        raise NotImplementedError(f"{self.name} is not trained with the objective")

    def make_scorer(self, device: torch.device | str) -> Scorer:
        """Move the model to `device`, precompute the item side once (eval mode, no autograd) and
        return a function mapping int64 user ids to their (len(users), n_items) float32 CPU scores."""
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        """The constructor arguments that rebuild this model from a checkpoint."""
        return {"name": self.name, "n_users": self.n_users, "n_items": self.n_items}


class FactorModel(Recommender):
    """alpha_i + beta_j + u_i . v_j, the collaborative part (Rendle et al. 2009), plus a content
    term that subclasses define over an item side computed once per distinct item.

    v_j and beta_j are multiplied by a mask that is 0 for items without training interactions,
    in training and in scoring, so such cold items are ranked by their content alone (and a plain
    BPR model gives them alpha_i).
    """

    def __init__(self, n_users: int, n_items: int, item_train_counts: np.ndarray, dim_u: int):
        super().__init__(n_users, n_items)
        self.dim_u = dim_u
        self.alpha = nn.Embedding(n_users, 1)
        self.beta = nn.Embedding(n_items, 1)
        self.u = nn.Embedding(n_users, dim_u)
        self.v = nn.Embedding(n_items, dim_u)
        nn.init.zeros_(self.alpha.weight)
        nn.init.zeros_(self.beta.weight)
        nn.init.normal_(self.u.weight, std=FACTOR_INIT_STD)
        nn.init.normal_(self.v.weight, std=FACTOR_INIT_STD)
        counts = torch.as_tensor(np.asarray(item_train_counts), dtype=torch.long)
        if counts.shape != (n_items,):
            raise ValueError(f"item_train_counts has shape {tuple(counts.shape)}, expected ({n_items},)")
        self.register_buffer("warm", counts > 0)  # (n_items,) bool

    def config(self) -> dict[str, Any]:
        return {**super().config(), "dim_u": self.dim_u}

    def item_factors(self, items: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Masked v_j (batch, dim_u) and beta_j (batch,) of `items`."""
        mask = self.warm[items].to(self.v.weight.dtype)
        return self.v(items) * mask.unsqueeze(1), self.beta(items).squeeze(1) * mask

    # Content hooks; the defaults are those of plain BPR (no content).

    def item_side(self, items: torch.Tensor, reconstruct: bool, progress: bool = False) -> Any:
        """Per-item content quantities for the distinct `items`, computed once per batch."""
        return None

    def content_score(self, users: torch.Tensor, rows: torch.Tensor, side: Any) -> torch.Tensor:
        """Compute the content term of each row. `rows` indexes the row's item in the item side."""
        return torch.zeros(users.shape[0], device=users.device)

    def content_terms(self, terms: TripletTerms, users: torch.Tensor, side: Any) -> None:
        """Add the content model's parameters and reconstruction errors to `terms`."""

    def content_matrix(self, users: torch.Tensor, side: Any) -> torch.Tensor | float:
        """Compute the content term of `users` against every item, (len(users), n_items)."""
        return 0.0

    # Shared scoring and training passes.

    def score(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        unique, rows = torch.unique(items, return_inverse=True)
        side = self.item_side(unique, reconstruct=False)
        v_j, beta_j = self.item_factors(items)
        collaborative = self.alpha(users).squeeze(1) + beta_j + (self.u(users) * v_j).sum(1)
        return collaborative + self.content_score(users, rows, side)

    def triplet_terms(self, users: torch.Tensor, positives: torch.Tensor,
                      negatives: torch.Tensor) -> TripletTerms:
        # Each distinct item of the batch goes through the content model once, whether it is
        # a positive, a negative or both, and however many triplets use it.
        n = positives.shape[0]
        unique, rows = torch.unique(torch.cat([positives, negatives]), return_inverse=True)
        side = self.item_side(unique, reconstruct=True)

        alpha_i = self.alpha(users).squeeze(1)
        u_i = self.u(users)
        v_j, beta_j = self.item_factors(positives)
        v_k, beta_k = self.item_factors(negatives)
        x_ij = alpha_i + beta_j + (u_i * v_j).sum(1) + self.content_score(users, rows[:n], side)
        x_ik = alpha_i + beta_k + (u_i * v_k).sum(1) + self.content_score(users, rows[n:], side)

        terms = TripletTerms(x_ij=x_ij, x_ik=x_ik, u_i=u_i, v_j=v_j, v_k=v_k, beta_j=beta_j, beta_k=beta_k)
        self.content_terms(terms, users, side)
        return terms

    def item_side_all(self, progress: bool = False) -> Any:
        all_items = torch.arange(self.n_items, device=self.warm.device)
        return self.item_side(all_items, reconstruct=False, progress=progress)

    def make_scorer(self, device: torch.device | str) -> Scorer:
        self.to(device)
        self.eval()
        with torch.no_grad():
            all_items = torch.arange(self.n_items, device=device)
            v_all, beta_all = self.item_factors(all_items)  # (n_items, dim_u), (n_items,)
            side = self.item_side_all(progress=True)

        def scorer(user_ids: np.ndarray) -> torch.Tensor:
            users = torch.as_tensor(np.asarray(user_ids), dtype=torch.long, device=device)
            with torch.no_grad():
                scores = self.alpha(users) + beta_all.unsqueeze(0) + self.u(users) @ v_all.T
                scores = scores + self.content_matrix(users, side)
            return scores.float().cpu()

        return scorer


def register_item_features(module: nn.Module, features: Any, views: list[str]) -> None:
    """Attach the content of `views` as non-persistent buffers: they follow the model to its
    device but stay out of the state dict, so a checkpoint contains parameters only."""
    for view in views:
        stored = features.images if view == "image" else getattr(features, view)
        module.register_buffer(f"content_{view}", stored, persistent=False)
        module.register_buffer(f"has_{view}", features.has(view), persistent=False)
