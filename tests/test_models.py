"""The recommenders: per-row scoring, tied autoencoder weights, the image layout, cold items and
missing views."""

import numpy as np
import pytest
import torch

from deepmine.features import ItemFeatures, image_batch
from deepmine.models import DeepMINE, build_model
from deepmine.models.autoencoders import ImageAutoencoder, TextAutoencoder, run_autoencoder
from deepmine.params import ModelSpec, Params, TrainParams

N_USERS, N_ITEMS, D_TEXT = 5, 6, 4
TRAIN_COUNTS = np.array([3, 2, 0, 1, 4, 0])  # items 2 and 5 have no training interactions
VARIANTS = [
    ("pop", ""),
    ("bpr", ""),
    ("vbpr", "image,description,review"),
    ("deepmine", "image,description,review"),
    ("deepmine", "image"),
]


def make_features(has_image=None, has_description=None, has_review=None, seed=0) -> ItemFeatures:
    rng = np.random.default_rng(seed)
    every = np.ones(N_ITEMS, dtype=bool)
    return ItemFeatures(
        images=torch.from_numpy(rng.integers(0, 256, (N_ITEMS, 40, 40, 3), dtype=np.uint8)),
        has_image=torch.from_numpy(every if has_image is None else np.array(has_image)),
        description=torch.from_numpy(rng.normal(size=(N_ITEMS, D_TEXT)).astype(np.float32)),
        has_description=torch.from_numpy(every if has_description is None else np.array(has_description)),
        review=torch.from_numpy(rng.normal(size=(N_ITEMS, D_TEXT)).astype(np.float32)),
        has_review=torch.from_numpy(every if has_review is None else np.array(has_review)),
    )


def make_model(name: str, views: str, features: ItemFeatures | None = None, encode_chunk: int = 0):
    """A small model whose parameters are all moved away from their initial values, so that
    zero-initialised biases and unit cognition scalars take part in the scores."""
    params = Params(dim_u=3, dim_theta=2, dim_node=4, hidden=5, train=TrainParams(encode_chunk=encode_chunk))
    torch.manual_seed(0)
    model = build_model(ModelSpec(name, views), params, N_USERS, N_ITEMS, TRAIN_COUNTS,
                        features if features is not None else make_features())
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    return model.eval()


def test_image_batch_keeps_red_channel(tmp_path):
    red = np.zeros((2, 40, 40, 3), dtype=np.uint8)
    red[..., 0] = 255
    np.save(tmp_path / "images.npy", red)
    np.save(tmp_path / "has_image.npy", np.ones(2, dtype=bool))
    np.savez(tmp_path / "features.npz", description=np.zeros((2, D_TEXT), np.float32),
             review=np.zeros((2, D_TEXT), np.float32), has_description=np.ones(2, bool),
             has_review=np.ones(2, bool))
    features = ItemFeatures.load(tmp_path / "images.npy", tmp_path / "has_image.npy", tmp_path / "features.npz")

    batch = image_batch(features.images)

    assert batch.shape == (2, 3, 40, 40)
    assert batch.dtype == torch.float32
    assert torch.all(batch[:, 0] == 1.0)
    assert torch.all(batch[:, 1:] == 0.0)


def test_image_encoder_receives_red_channel_first(monkeypatch):
    features = make_features()
    features.images[:] = 0
    features.images[..., 0] = 255
    model = make_model("deepmine", "image", features)
    autoencoder = model.autoencoders["image"]
    seen = []
    original_encode = autoencoder.encode

    def recording_encode(x):
        seen.append(x.detach().clone())
        return original_encode(x)

    monkeypatch.setattr(autoencoder, "encode", recording_encode)
    model.encode_view("image", torch.tensor([0, 3]))

    assert seen[0].shape == (2, 3, 40, 40)
    assert torch.all(seen[0][:, 0] == 1.0)
    assert torch.all(seen[0][:, 1:] == 0.0)


@pytest.mark.parametrize("name,views", VARIANTS)
def test_score_ignores_other_rows(name, views):
    model = make_model(name, views)
    alone = model.score(torch.tensor([1]), torch.tensor([2]))

    users = torch.tensor([0, 1, 3, 1, 4, 2])
    items = torch.tensor([5, 2, 2, 0, 1, 2])
    batched = model.score(users, items)

    assert batched.shape == (6,)
    torch.testing.assert_close(batched[1], alone[0], rtol=1e-5, atol=1e-6)
    # The same pair in another row with other users and items around it.
    reordered = model.score(torch.tensor([4, 4, 1]), torch.tensor([3, 4, 2]))
    torch.testing.assert_close(reordered[2], alone[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name,views", VARIANTS)
def test_scorer_matches_score(name, views):
    model = make_model(name, views)
    users = np.array([0, 3, 4], dtype=np.int64)

    matrix = model.make_scorer("cpu")(users)

    assert matrix.shape == (3, N_ITEMS)
    assert matrix.dtype == torch.float32
    pairs_users = torch.from_numpy(users).repeat_interleave(N_ITEMS)
    pairs_items = torch.arange(N_ITEMS).repeat(3)
    expected = model.score(pairs_users, pairs_items).reshape(3, N_ITEMS)
    torch.testing.assert_close(matrix, expected, rtol=1e-5, atol=1e-5)


def test_pop_scores_training_counts():
    model = make_model("pop", "")

    scores = model.make_scorer("cpu")(np.array([0, 4]))

    assert scores.tolist() == [[3.0, 2.0, 0.0, 1.0, 4.0, 0.0]] * 2


def test_image_decoder_uses_encoder_weights():
    torch.manual_seed(0)
    autoencoder = ImageAutoencoder(dim_node=4)
    names = [name for name, _ in autoencoder.named_parameters()]

    code = torch.randn(2, 4)
    autoencoder.decode(code).sum().backward()

    # The decoder owns biases only; its kernels and matrix are the encoder's tensors.
    assert sorted(names) == ["code.bias", "code.weight", "conv1.bias", "conv1.weight", "conv2.bias",
                             "conv2.weight", "decode_bias_code", "decode_bias_conv1", "decode_bias_conv2"]
    assert autoencoder.conv1.weight.grad.abs().sum() > 0
    assert autoencoder.conv2.weight.grad.abs().sum() > 0
    assert autoencoder.code.weight.grad.abs().sum() > 0
    assert autoencoder.conv1.bias.grad is None  # the encoder's biases are not on the decoder path


def test_text_decoder_uses_encoder_weights():
    torch.manual_seed(0)
    autoencoder = TextAutoencoder(d_text=3, hidden=5, dim_node=2)
    names = [name for name, _ in autoencoder.named_parameters()]

    autoencoder.decode(torch.randn(4, 2)).sum().backward()

    assert sorted(names) == ["code.bias", "code.weight", "decode_bias_hidden", "decode_bias_out",
                             "hidden.bias", "hidden.weight"]
    assert autoencoder.hidden.weight.grad.abs().sum() > 0
    assert autoencoder.code.weight.grad.abs().sum() > 0
    assert autoencoder.hidden.bias.grad is None


def test_tied_weight_has_one_optimiser_entry():
    model = make_model("deepmine", "image,description,review")
    parameters = list(model.parameters())
    optimizer = torch.optim.Adam(parameters)

    storages = {p.data_ptr() for p in parameters}
    image_ae = 64 * 3 * 9 + 64 + 64 * 64 * 9 + 64 + 25600 * 4 + 4 + 25600 + 64 + 3
    text_ae = D_TEXT * 5 + 5 + 5 * 4 + 4 + 5 + D_TEXT
    factors = N_USERS * (1 + 3 + 2 + 3) + N_ITEMS * (1 + 3)  # alpha, u, theta, a_iv; beta, v
    assert len(storages) == len(parameters)
    assert len(optimizer.param_groups[0]["params"]) == len(parameters)
    assert sum(p.numel() for p in parameters) == image_ae + 2 * text_ae + factors + 3 * 4 * 2


def test_cold_item_scored_from_content():
    model = make_model("deepmine", "image,description,review")
    users = torch.tensor([0, 3])
    cold = torch.tensor([2, 5])
    before = model.score(users, cold)

    with torch.no_grad():
        model.v.weight[[2, 5]] = 7.0
        model.beta.weight[[2, 5]] = -3.0
    after = model.score(users, cold)
    v_j, beta_j = model.item_factors(cold)

    assert torch.isfinite(before).all()
    assert torch.equal(before, after)
    assert torch.equal(v_j, torch.zeros(2, 3))
    assert torch.equal(beta_j, torch.zeros(2))
    alpha = model.alpha(users).squeeze(1)
    assert (before - alpha).abs().min() > 1e-4  # the content term is what ranks them
    matrix = model.make_scorer("cpu")(np.array([0, 3]))
    torch.testing.assert_close(matrix[0, 2], after[0])
    torch.testing.assert_close(matrix[1, 5], after[1])


def test_cold_item_gets_no_factor_gradient():
    model = make_model("deepmine", "description")
    model.train()
    users, positives, negatives = torch.tensor([0, 1]), torch.tensor([0, 1]), torch.tensor([2, 5])

    terms = model.triplet_terms(users, positives, negatives)
    (terms.x_ij - terms.x_ik).sum().backward()

    assert torch.equal(model.v.weight.grad[[2, 5]], torch.zeros(2, 3))
    assert torch.equal(model.beta.weight.grad[[2, 5]], torch.zeros(2, 1))
    assert model.v.weight.grad[[0, 1]].abs().sum() > 0


def test_bpr_scores_cold_item_with_user_bias():
    model = make_model("bpr", "")
    users = torch.tensor([0, 1, 4])

    scores = model.score(users, torch.tensor([2, 5, 2]))

    assert torch.equal(scores, model.alpha(users).squeeze(1))


def test_missing_image_gives_zero_code():
    features = make_features(has_image=[True, False, True, True, False, True])
    model = make_model("deepmine", "image,description,review", features)
    autoencoder = model.autoencoders["image"]
    items = torch.tensor([0, 1, 2])

    with torch.no_grad():
        codes, error = model.encode_view("image", items, reconstruct=True)
        blank_code = autoencoder.encode(torch.zeros(1, 3, 40, 40))
        x = image_batch(features.images[[0, 2]])
        expected_error = (x - autoencoder.decode(autoencoder.encode(x))).pow(2).sum()

    assert torch.equal(codes[1], torch.zeros(4))
    assert blank_code.abs().sum() > 0  # so the zero code is not the code of a blank image
    assert codes[0].abs().sum() > 0
    torch.testing.assert_close(error, expected_error)


def test_missing_view_content_does_not_reach_score():
    features = make_features(has_description=[True, True, False, True, True, True])
    model = make_model("deepmine", "description", features)
    before = model.score(torch.tensor([1, 1]), torch.tensor([2, 3]))

    model.content_description[2] = 100.0  # the stored vector of an item without a description
    after = model.score(torch.tensor([1, 1]), torch.tensor([2, 3]))

    assert torch.equal(before, after)


def test_chunked_encoding_matches_whole_batch():
    torch.manual_seed(0)
    autoencoder = ImageAutoencoder(dim_node=4)
    raw = torch.randint(0, 256, (5, 40, 40, 3), dtype=torch.uint8)

    whole_codes, whole_error = run_autoencoder(autoencoder, raw, prepare=image_batch, reconstruct=True, chunk=0)
    whole_error.backward()
    whole_grad = autoencoder.conv2.weight.grad.clone()
    autoencoder.zero_grad()
    chunk_codes, chunk_error = run_autoencoder(autoencoder, raw, prepare=image_batch, reconstruct=True, chunk=2)
    chunk_error.backward()

    torch.testing.assert_close(chunk_codes, whole_codes, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(chunk_error, whole_error, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(autoencoder.conv2.weight.grad, whole_grad, rtol=1e-4, atol=1e-5)


def test_deepmine_orders_views_canonically():
    model = make_model("deepmine", "review,image")

    assert isinstance(model, DeepMINE)
    assert model.views == ["image", "review"]
    assert model.E.shape == (8, 2)
    assert model.cognition.weight.shape == (N_USERS, 2)
