"""The Deep-MINE training objective (Guan, Wei & Chen, Decision Support Systems 2019).

BPR and VBPR minimise the same function with the terms they lack left out, so all trained models
share `objective`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from .params import Params

VIEW_LAMBDAS = {
    # view: (reconstruction, autoencoder weights, autoencoder biases)
    "image": ("lambda_m", "lambda_w", "lambda_b"),
    "description": ("lambda_d", "lambda_q", "lambda_c"),
    "review": ("lambda_r", "lambda_n", "lambda_t"),
}


_DEFAULTS = Params()


@dataclass(frozen=True)
class Lambdas:
    """The objective's weights, named as the top-level keys of params.yaml.

    The defaults are those of `Params`, so each default value is defined in one place.
    """

    lambda_m: float = _DEFAULTS.lambda_m
    lambda_d: float = _DEFAULTS.lambda_d
    lambda_r: float = _DEFAULTS.lambda_r
    lambda_theta: float = _DEFAULTS.lambda_theta
    lambda_beta: float = _DEFAULTS.lambda_beta
    lambda_Wfu: float = _DEFAULTS.lambda_Wfu
    lambda_w: float = _DEFAULTS.lambda_w
    lambda_b: float = _DEFAULTS.lambda_b
    lambda_q: float = _DEFAULTS.lambda_q
    lambda_c: float = _DEFAULTS.lambda_c
    lambda_n: float = _DEFAULTS.lambda_n
    lambda_t: float = _DEFAULTS.lambda_t

    @classmethod
    def from_params(cls, params: Params) -> "Lambdas":
        return cls(**{name: getattr(params, name) for name in cls.__dataclass_fields__})


@dataclass
class TripletTerms:
    """The quantities of one mini-batch of triplets (i, j, k) that a model's forward pass hands to `objective`.

    Row tensors have one row per triplet. v_j, v_k, beta_j and beta_k are already masked to zero
    for items without training interactions. None marks a term the model does not have.
    """

    x_ij: torch.Tensor  # (batch,)
    x_ik: torch.Tensor  # (batch,)
    u_i: torch.Tensor  # (batch, dim_u)
    v_j: torch.Tensor  # (batch, dim_u)
    v_k: torch.Tensor  # (batch, dim_u)
    beta_j: torch.Tensor  # (batch,)
    beta_k: torch.Tensor  # (batch,)
    theta_i: torch.Tensor | None = None  # (batch, dim_theta)
    E: torch.Tensor | None = None
    # VBPR's visual bias vector beta'; penalised with lambda_beta as a shared weight.
    beta_prime: torch.Tensor | None = None
    # view -> sum over the items the batch encoded that have the view of |x - x_hat|^2
    recon_sq_error: dict[str, torch.Tensor] = field(default_factory=dict)
    # view -> the autoencoder's weight tensors (W_image, W_desc, W_review) and bias tensors
    ae_weights: dict[str, list[torch.Tensor]] = field(default_factory=dict)
    ae_biases: dict[str, list[torch.Tensor]] = field(default_factory=dict)


@dataclass
class ObjectiveValue:
    """The objective of one mini-batch and its parts; `total` is what the optimiser minimises."""

    total: torch.Tensor
    bpr: torch.Tensor
    recon: dict[str, torch.Tensor]  # view -> lambda_v/2 * sum |x - x_hat|^2
    penalty: torch.Tensor  # every lambda/2 |.|^2 term, the shared ones already scaled


def _sq(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.float().pow(2).sum()


def objective(terms: TripletTerms, lambdas: Lambdas, shared_scale: float) -> ObjectiveValue:
    """Deep-MINE objective of one mini-batch of triplets (i, j, k), to be minimised:

        sum over triplets (i, j, k):  -ln sigmoid(x_ij - x_ik)
            + lambda_theta/2 (|u_i|^2 + |theta_i|^2 + |v_j|^2 + |v_k|^2)
            + lambda_beta/2 (beta_j^2 + beta_k^2)
        + lambda_m/2 sum_j |img_j - img_hat_j|^2
        + lambda_d/2 sum_j |desc_j - desc_hat_j|^2
        + lambda_r/2 sum_j |rev_j - rev_hat_j|^2
        + s * ( lambda_Wfu/2 |E|^2
                + lambda_w/2 |W_image|^2  + lambda_b/2 |b_image|^2
                + lambda_q/2 |W_desc|^2   + lambda_c/2 |b_desc|^2
                + lambda_n/2 |W_review|^2 + lambda_t/2 |b_review|^2
                + lambda_beta/2 |beta'|^2 )

    The reconstruction sums run over the distinct items the batch encodes that have the view
    (each item once per batch, however many of its triplets use it). E and the autoencoder
    weights are shared by all triplets: they are terms of the whole-data objective, so one
    mini-batch carries the share s = shared_scale = batch_size / training triplets per epoch.
    beta' is VBPR's visual bias vector (absent from Deep-MINE). |W_image| covers every kernel
    and matrix of the image autoencoder, which its tied decoder reuses; |b_image| covers the
    encoder's and the decoder's own biases; likewise for the text autoencoders.
    """
    bpr = -F.logsigmoid(terms.x_ij.float() - terms.x_ik.float()).sum()

    rows = _sq(terms.u_i) + _sq(terms.v_j) + _sq(terms.v_k)
    if terms.theta_i is not None:
        rows = rows + _sq(terms.theta_i)
    penalty = lambdas.lambda_theta / 2 * rows
    penalty = penalty + lambdas.lambda_beta / 2 * (_sq(terms.beta_j) + _sq(terms.beta_k))

    shared = torch.zeros((), device=bpr.device)
    if terms.E is not None:
        shared = shared + lambdas.lambda_Wfu / 2 * _sq(terms.E)
    if terms.beta_prime is not None:
        shared = shared + lambdas.lambda_beta / 2 * _sq(terms.beta_prime)

    recon = {}
    for view, (recon_name, weight_name, bias_name) in VIEW_LAMBDAS.items():
        if view in terms.recon_sq_error:
            recon[view] = getattr(lambdas, recon_name) / 2 * terms.recon_sq_error[view].float()
        for tensor in terms.ae_weights.get(view, []):
            shared = shared + getattr(lambdas, weight_name) / 2 * _sq(tensor)
        for tensor in terms.ae_biases.get(view, []):
            shared = shared + getattr(lambdas, bias_name) / 2 * _sq(tensor)
    penalty = penalty + shared_scale * shared

    total = bpr + penalty
    for value in recon.values():
        total = total + value
    return ObjectiveValue(total=total, bpr=bpr, recon=recon, penalty=penalty)
