"""The objective against the formula, computed by hand and with numpy from a tiny Deep-MINE."""

import dataclasses
import math

import numpy as np
import torch

from deepmine.features import ItemFeatures
from deepmine.models import build_model
from deepmine.objective import Lambdas, TripletTerms, objective
from deepmine.params import ModelSpec, Params


def test_objective_matches_hand_computation():
    terms = TripletTerms(
        x_ij=torch.tensor([1.0, -0.5]),
        x_ik=torch.tensor([0.2, 0.3]),
        u_i=torch.tensor([[1.0, 2.0], [0.0, -1.0]]),
        v_j=torch.tensor([[1.0, 0.0], [0.0, 0.0]]),
        v_k=torch.tensor([[0.0, 1.0], [2.0, 0.0]]),
        beta_j=torch.tensor([0.5, -1.0]),
        beta_k=torch.tensor([2.0, 0.0]),
        theta_i=torch.tensor([[0.5], [1.5]]),
        E=torch.tensor([[1.0, -1.0], [2.0, 0.0]]),
        recon_sq_error={"image": torch.tensor(3.0), "description": torch.tensor(0.5)},
        ae_weights={"image": [torch.tensor([1.0, 2.0]), torch.tensor([[3.0]])],
                    "description": [torch.tensor([0.5])]},
        ae_biases={"image": [torch.tensor([1.0])], "description": [torch.tensor([2.0])]},
    )
    lambdas = Lambdas(lambda_m=0.5, lambda_d=0.25, lambda_r=7.0, lambda_theta=0.1, lambda_beta=0.01,
                      lambda_Wfu=0.2, lambda_w=3.0, lambda_b=0.4, lambda_q=2.0, lambda_c=0.6,
                      lambda_n=9.0, lambda_t=9.0)

    value = objective(terms, lambdas, shared_scale=0.25)

    bpr = -math.log(1 / (1 + math.exp(-(1.0 - 0.2)))) - math.log(1 / (1 + math.exp(-(-0.5 - 0.3))))
    rows = 0.1 / 2 * ((1 + 4 + 0 + 1) + (0.25 + 2.25) + (1 + 0) + (1 + 4))  # |u|^2 |theta|^2 |v_j|^2 |v_k|^2
    biases = 0.01 / 2 * ((0.25 + 1) + (4 + 0))
    shared = (0.2 / 2 * 6                # lambda_Wfu |E|^2
              + 3.0 / 2 * (1 + 4 + 9)    # lambda_w |W_image|^2
              + 0.4 / 2 * 1              # lambda_b |b_image|^2
              + 2.0 / 2 * 0.25           # lambda_q |W_desc|^2
              + 0.6 / 2 * 4)             # lambda_c |b_desc|^2
    recon_image = 0.5 / 2 * 3.0
    recon_description = 0.25 / 2 * 0.5
    assert math.isclose(value.bpr.item(), bpr, rel_tol=1e-6)
    assert math.isclose(value.recon["image"].item(), recon_image, rel_tol=1e-6)
    assert math.isclose(value.recon["description"].item(), recon_description, rel_tol=1e-6)
    assert "review" not in value.recon
    assert math.isclose(value.penalty.item(), rows + biases + 0.25 * shared, rel_tol=1e-6)
    assert math.isclose(value.total.item(), bpr + rows + biases + 0.25 * shared + recon_image + recon_description,
                        rel_tol=1e-6)


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().double().numpy()


def test_deepmine_objective_matches_numpy():
    d_text, hidden, dim_node = 2, 3, 2
    has_description = np.array([True, True, False])
    has_review = np.array([True, False, True])
    counts = np.array([1, 0, 2])  # item 1 is cold
    rng = np.random.default_rng(1)
    features = ItemFeatures(
        images=torch.zeros(3, 40, 40, 3, dtype=torch.uint8),
        has_image=torch.zeros(3, dtype=torch.bool),
        description=torch.from_numpy(rng.normal(size=(3, d_text)).astype(np.float32)),
        has_description=torch.from_numpy(has_description),
        review=torch.from_numpy(rng.normal(size=(3, d_text)).astype(np.float32)),
        has_review=torch.from_numpy(has_review),
    )
    params = Params(dim_u=2, dim_theta=2, dim_node=dim_node, hidden=hidden, lambda_c=0.3, lambda_t=0.7,
                    lambda_d=0.5, lambda_r=0.25)
    torch.manual_seed(3)
    model = build_model(ModelSpec("deepmine", "description,review"), params, 2, 3, counts, features)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.3 * torch.randn_like(parameter))
    users, positives, negatives = np.array([0, 1, 0]), np.array([0, 2, 2]), np.array([1, 1, 0])

    value = objective(model.triplet_terms(torch.from_numpy(users), torch.from_numpy(positives),
                                          torch.from_numpy(negatives)),
                      Lambdas.from_params(params), shared_scale=0.3)

    alpha = _numpy(model.alpha.weight)[:, 0]
    beta = _numpy(model.beta.weight)[:, 0] * (counts > 0)
    u = _numpy(model.u.weight)
    v = _numpy(model.v.weight) * (counts > 0)[:, None]
    theta = _numpy(model.theta.weight)
    a = _numpy(model.cognition.weight)
    E = _numpy(model.E)
    codes, sq_errors, shared_weights, shared_biases = [], [], 0.0, 0.0
    for view, x, has in (("description", features.description, has_description),
                         ("review", features.review, has_review)):
        ae = model.autoencoders[view]
        W1, b1, W2, b2 = (_numpy(ae.hidden.weight), _numpy(ae.hidden.bias), _numpy(ae.code.weight),
                          _numpy(ae.code.bias))
        c1, c2 = _numpy(ae.decode_bias_hidden), _numpy(ae.decode_bias_out)
        x = _numpy(x)
        code = np.tanh(x @ W1.T + b1) @ W2.T + b2
        x_hat = np.tanh(code @ W2 + c1) @ W1 + c2
        codes.append(code * has[:, None])
        sq_errors.append(((x - x_hat) ** 2).sum(1)[has].sum())
        shared_weights += (W1 ** 2).sum() + (W2 ** 2).sum()
        lambda_bias = 0.3 if view == "description" else 0.7
        shared_biases += lambda_bias / 2 * sum((b ** 2).sum() for b in (b1, b2, c1, c2))
    E_d, E_r = E[:dim_node], E[dim_node:]

    def x_score(i, j):
        content = a[i, 0] * theta[i] @ (E_d.T @ codes[0][j]) + a[i, 1] * theta[i] @ (E_r.T @ codes[1][j])
        return alpha[i] + beta[j] + u[i] @ v[j] + content

    bpr = sum(-np.log(1 / (1 + np.exp(-(x_score(i, j) - x_score(i, k)))))
              for i, j, k in zip(users, positives, negatives))
    rows = sum((u[i] ** 2).sum() + (theta[i] ** 2).sum() + (v[j] ** 2).sum() + (v[k] ** 2).sum()
               for i, j, k in zip(users, positives, negatives))
    biases = sum(beta[j] ** 2 + beta[k] ** 2 for j, k in zip(positives, negatives))
    shared = 0.001 / 2 * (E ** 2).sum() + 20.0 / 2 * shared_weights + shared_biases
    expected = (bpr + 0.1 / 2 * rows + 0.001 / 2 * biases + 0.3 * shared
                + 0.5 / 2 * sq_errors[0] + 0.25 / 2 * sq_errors[1])

    assert math.isclose(value.bpr.item(), bpr, rel_tol=1e-5)
    assert math.isclose(value.recon["description"].item(), 0.5 / 2 * sq_errors[0], rel_tol=1e-5)
    assert math.isclose(value.recon["review"].item(), 0.25 / 2 * sq_errors[1], rel_tol=1e-5)
    assert math.isclose(value.total.item(), expected, rel_tol=1e-5)


def test_shared_penalty_grows_with_batch_share():
    terms = TripletTerms(
        x_ij=torch.tensor([0.0]), x_ik=torch.tensor([0.0]), u_i=torch.zeros(1, 1),
        v_j=torch.zeros(1, 1), v_k=torch.zeros(1, 1), beta_j=torch.zeros(1), beta_k=torch.zeros(1),
        E=torch.tensor([[2.0]]), ae_weights={"review": [torch.tensor([1.0])]},
    )
    lambdas = Lambdas(lambda_Wfu=0.5, lambda_n=4.0)

    full = objective(terms, lambdas, shared_scale=1.0)
    share = objective(terms, lambdas, shared_scale=0.01)

    assert math.isclose(full.penalty.item(), 0.5 / 2 * 4 + 4.0 / 2 * 1, rel_tol=1e-6)
    assert math.isclose(share.penalty.item(), 0.01 * (0.5 / 2 * 4 + 4.0 / 2 * 1), rel_tol=1e-6)
    assert math.isclose(full.bpr.item(), math.log(2), rel_tol=1e-6)


def test_lambdas_match_params_keys():
    lambda_keys = {f.name for f in dataclasses.fields(Params) if f.name.startswith("lambda_")}
    assert {f.name for f in dataclasses.fields(Lambdas)} == lambda_keys
    params = Params(lambda_theta=0.05, lambda_t=3.0)
    assert Lambdas.from_params(params) == Lambdas(lambda_theta=0.05, lambda_t=3.0)
    assert Lambdas() == Lambdas.from_params(Params())
