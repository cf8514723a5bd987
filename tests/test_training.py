"""Training: determinism, learning a planted preference, early stopping, the checkpoint and the
train stage run as a script."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from deepmine.cli import StageError
from deepmine.data import SplitData
from deepmine.features import ItemFeatures
from deepmine.models import build_model, load_model
from deepmine.params import ModelSpec, Params, TrainParams
from deepmine.sampling import training_triplets
from deepmine.training import EarlyStopping, resolve_device, save_checkpoint, train_model

REPO = Path(__file__).resolve().parents[1]
D_TEXT = 8
# A model that ranks by group alone puts a user's held-out item above the 20 items of the other
# group and, on average, above half of the 6 unseen items of its own group: AUC (20 + 3) / 26
# = 0.88. Chance is 0.5, so 0.75 is clearly above chance and reachable by a model that learned
# the groups.
LEARNED_AUC = 0.75


def planted_problem(n_users: int = 40, n_items: int = 40, per_user: int = 12, n_cold: int = 0, seed: int = 0):
    """Users and items in two groups (by parity); each user interacts with own-group items only.

    The last `n_cold` items have no interactions at all. The description and review vectors carry
    the group in their first coordinate, and the images are red or blue. Only one item in five has
    an image, which keeps the image autoencoder cheap."""
    rng = np.random.default_rng(seed)
    item_group = np.arange(n_items) % 2
    warm = np.arange(n_items) < n_items - n_cold
    train, validation, test = [], [], []
    for user in range(n_users):
        own = np.flatnonzero((item_group == user % 2) & warm)
        picks = rng.choice(own, per_user + 2, replace=False)
        train += [(user, item) for item in picks[:per_user]]
        validation.append((user, picks[per_user]))
        test.append((user, picks[per_user + 1]))
    split = SplitData(n_users, n_items, np.array(train), np.array(validation), np.array(test))

    sign = np.where(item_group == 0, 1.0, -1.0)
    description = rng.normal(0, 0.3, (n_items, D_TEXT)).astype(np.float32)
    description[:, 0] += sign
    review = rng.normal(0, 0.3, (n_items, D_TEXT)).astype(np.float32)
    review[:, 0] += sign
    images = np.zeros((n_items, 40, 40, 3), dtype=np.uint8)
    images[item_group == 0, :, :, 0] = 220
    images[item_group == 1, :, :, 2] = 220
    features = ItemFeatures(
        images=torch.from_numpy(images),
        has_image=torch.from_numpy(np.arange(n_items) % 5 == 0),
        description=torch.from_numpy(description),
        has_description=torch.ones(n_items, dtype=torch.bool),
        review=torch.from_numpy(review),
        has_review=torch.ones(n_items, dtype=torch.bool),
    )
    return split, features


def small_params(**train) -> Params:
    settings = {"epochs": 12, "batch_size": 256, "lr": 0.05, "patience": 3, "encode_chunk": 0, **train}
    return Params(dim_u=8, dim_theta=8, dim_node=8, hidden=16, train=TrainParams(**settings))


def test_auc(model, split: SplitData) -> float:
    """Mean over test users of the share of never-interacted items scored strictly below the test item."""
    users, items = split.test[:, 0], split.test[:, 1]
    scores = model.make_scorer("cpu")(users).numpy()
    seen = split.matrix("train", "validation", "test").toarray().astype(bool)
    target = scores[np.arange(len(users)), items][:, None]
    candidates = ~seen[users]
    return float((((scores < target) & candidates).sum(1) / candidates.sum(1)).mean())


test_auc.__test__ = False  # a helper, not a test


@pytest.mark.parametrize("name,views", [("bpr", ""), ("deepmine", "image,description,review")])
def test_training_learns_planted_groups(name, views):
    split, features = planted_problem()
    params = small_params(epochs=8)
    triplets, _ = training_triplets(split.train, split.n_users, split.n_items, 8, 1, seed=0)
    spec = ModelSpec(name, views)

    model, summary = train_model(name, spec, params, split, features, triplets, device="cpu")

    assert test_auc(model, split) >= LEARNED_AUC
    assert summary["best_val_auc"] >= LEARNED_AUC
    assert summary["history"][summary["best_epoch"]]["val_auc"] == summary["best_val_auc"]


def test_bfloat16_on_cpu_still_learns(caplog):
    split, features = planted_problem()
    triplets, _ = training_triplets(split.train, split.n_users, split.n_items, 8, 1, seed=0)
    spec = ModelSpec("deepmine", "image,description,review")

    with caplog.at_level("INFO", logger="deepmine.training"):
        mixed, _ = train_model("amp", spec, small_params(epochs=8, amp=True), split, features, triplets,
                               device="cpu")
    full, _ = train_model("fp32", spec, small_params(epochs=8), split, features, triplets, device="cpu")

    assert "bfloat16 on the CPU" in caplog.text
    assert not torch.equal(mixed.state_dict()["E"], full.state_dict()["E"])  # autocast was on
    assert mixed.state_dict()["E"].dtype == torch.float32  # the weights stay float32
    assert test_auc(mixed, split) >= LEARNED_AUC


def test_deepmine_ranks_cold_items_by_content():
    split, features = planted_problem(n_cold=8)
    cold = np.arange(32, 40)
    params = small_params(epochs=8)
    triplets, _ = training_triplets(split.train, split.n_users, split.n_items, 8, 1, seed=0)

    model, _ = train_model("text", ModelSpec("deepmine", "description,review"), params, split, features,
                           triplets, device="cpu")
    scores = model.make_scorer("cpu")(np.arange(split.n_users)).numpy()

    # Share of (own-group cold item, other-group cold item) pairs that each user orders correctly:
    # only the content term can tell these items apart. Observed 1.0; chance is 0.5.
    shares = []
    for user in range(split.n_users):
        own = scores[user, cold[cold % 2 == user % 2]]
        other = scores[user, cold[cold % 2 != user % 2]]
        shares.append((own[:, None] > other[None, :]).mean())
    assert split.item_train_counts[cold].sum() == 0
    assert np.isfinite(scores).all()
    assert np.mean(shares) >= 0.9


def test_same_seed_same_weights():
    split, features = planted_problem(n_users=12, n_items=10, per_user=3)
    params = small_params(epochs=2, batch_size=16, encode_chunk=2)
    triplets, _ = training_triplets(split.train, split.n_users, split.n_items, 2, 1, seed=0)
    spec = ModelSpec("deepmine", "image,description")

    first, _ = train_model("a", spec, params, split, features, triplets, device="cpu")
    second, _ = train_model("b", spec, params, split, features, triplets, device="cpu")

    first_state, second_state = first.state_dict(), second.state_dict()
    assert first_state.keys() == second_state.keys()
    for key in first_state:
        assert torch.equal(first_state[key], second_state[key]), key
    torch.manual_seed(params.seed)
    fresh = build_model(spec, params, split.n_users, split.n_items, split.item_train_counts, features)
    assert not torch.equal(first_state["E"], fresh.E)  # training moved the weights


def test_pop_trains_nothing_and_keeps_counts():
    split, _ = planted_problem(n_users=6, n_items=8, per_user=2)
    triplets = np.zeros((0, 0, 3), dtype=np.int64)  # pop never reads them

    model, summary = train_model("pop", ModelSpec("pop", ""), small_params(), split, None, triplets, device="cpu")

    assert model.counts.tolist() == split.item_train_counts.tolist()
    assert summary["epochs_run"] == 0
    assert 0.0 <= summary["best_val_auc"] <= 1.0


def test_early_stopping_keeps_best_epoch():
    stopper = EarlyStopping(patience=2)

    improved = [stopper.update(epoch, auc) for epoch, auc in enumerate([0.6, 0.7, 0.69, 0.7, 0.65])]

    assert improved == [True, True, False, False, False]
    assert stopper.best_epoch == 1
    assert stopper.best_auc == 0.7
    assert stopper.should_stop


def test_early_stopping_patience_zero_never_stops():
    stopper = EarlyStopping(patience=0)

    for epoch, auc in enumerate([0.6, 0.5, 0.4, float("nan")]):
        stopper.update(epoch, auc)

    assert not stopper.should_stop
    assert stopper.best_epoch == 0


def test_training_stops_after_patience():
    split, features = planted_problem(n_users=12, n_items=10, per_user=3)
    # A learning rate of zero leaves the weights, and so the validation AUC, unchanged.
    params = small_params(epochs=6, lr=1e-30, patience=2)
    triplets, _ = training_triplets(split.train, split.n_users, split.n_items, 6, 1, seed=0)

    _, summary = train_model("bpr", ModelSpec("bpr", ""), params, split, features, triplets, device="cpu")

    assert summary["epochs_run"] == 3
    assert summary["best_epoch"] == 0


def test_too_few_triplet_epochs_fail():
    split, features = planted_problem(n_users=6, n_items=8, per_user=2)
    triplets, _ = training_triplets(split.train, split.n_users, split.n_items, 2, 1, seed=0)

    with pytest.raises(StageError, match="train.epochs is 12 but the training triplets cover 2 epochs"):
        train_model("bpr", ModelSpec("bpr", ""), small_params(), split, features, triplets, device="cpu")


def test_triplet_with_unknown_item_fails():
    split, features = planted_problem(n_users=6, n_items=8, per_user=2)
    triplets, _ = training_triplets(split.train, split.n_users, split.n_items, 1, 1, seed=0)
    triplets[0, 3, 2] = 8

    with pytest.raises(StageError, match="epoch 0 contain negative item id 8, outside 0..7"):
        train_model("bpr", ModelSpec("bpr", ""), small_params(epochs=1), split, features, triplets, device="cpu")


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    expected_auto = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected_auto
    with pytest.raises(StageError, match="use auto, cpu, cuda or cuda:N"):
        resolve_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(StageError, match="no CUDA device is available"):
            resolve_device("cuda")


@pytest.mark.parametrize("name,views", [("pop", ""), ("vbpr", "image,review"), ("deepmine", "description,image")])
def test_checkpoint_round_trip(tmp_path, name, views):
    split, features = planted_problem(n_users=6, n_items=10, per_user=3)
    params = small_params(epochs=1)
    triplets, _ = training_triplets(split.train, split.n_users, split.n_items, 1, 1, seed=0)
    spec = ModelSpec(name, views)
    model, summary = train_model(name, spec, params, split, features, triplets, device="cpu")
    users = [f"U{u}" for u in range(6)]
    items = [f"B{i:03d}" for i in range(10)]

    save_checkpoint(tmp_path / "model.pt", model, variant=name, spec=spec, params=params, summary=summary,
                    user_ids=users, item_ids=items)
    loaded, meta = load_model(tmp_path / "model.pt", features, "cpu")

    all_users = np.arange(6)
    assert torch.equal(loaded.make_scorer("cpu")(all_users), model.make_scorer("cpu")(all_users))
    assert meta["variant"] == name
    assert meta["spec"] == {"name": name, "views": views}
    assert meta["user_ids"] == users
    assert meta["item_ids"] == items
    assert meta["epoch"] == summary["best_epoch"]
    assert meta["best_val_auc"] == summary["best_val_auc"]
    assert meta["config"]["name"] == name
    assert torch.load(tmp_path / "model.pt", weights_only=True)["state_dict"].keys() == model.state_dict().keys()


def test_load_model_missing_file(tmp_path):
    with pytest.raises(StageError, match="model.pt not found; run the train stage"):
        load_model(tmp_path / "model.pt", None, "cpu")


def write_stage_inputs(root: Path, split: SplitData, features: ItemFeatures, epochs: int) -> None:
    """The cleaned split, features and triplets in the layout the train stage reads."""
    rows = [(u, i, name) for name in ("train", "validation", "test") for u, i in getattr(split, name)]
    (root / "data/clean").mkdir(parents=True)
    pd.DataFrame({
        "user": np.array([r[0] for r in rows], np.int32), "item": np.array([r[1] for r in rows], np.int32),
        "timestamp": np.arange(len(rows), dtype=np.int64), "review_text": ["fine"] * len(rows),
        "split": [r[2] for r in rows],
    }).to_parquet(root / "data/clean/interactions.parquet", index=False)
    pd.DataFrame({"item": np.arange(split.n_items, dtype=np.int32),
                  "asin": [f"B{i:09d}" for i in range(split.n_items)]}).to_parquet(
        root / "data/clean/items.parquet", index=False)
    pd.DataFrame({"user": np.arange(split.n_users, dtype=np.int32),
                  "reviewer_id": [f"AUSER{u:07d}" for u in range(split.n_users)]}).to_parquet(
        root / "data/clean/users.parquet", index=False)

    (root / "data/images").mkdir(parents=True)
    np.save(root / "data/images/images.npy", features.images.numpy())
    np.save(root / "data/images/has_image.npy", features.has_image.numpy())
    (root / "data/text").mkdir(parents=True)
    np.savez(root / "data/text/features.npz", description=features.description.numpy(),
             review=features.review.numpy(), has_description=features.has_description.numpy(),
             has_review=features.has_review.numpy())
    (root / "data/triplets").mkdir(parents=True)
    triplets, _ = training_triplets(split.train, split.n_users, split.n_items, epochs, 1, seed=0)
    np.save(root / "data/triplets/train.npy", triplets)


def test_train_stage_writes_checkpoint_and_curves(tmp_path):
    split, features = planted_problem(n_users=10, n_items=12, per_user=3)
    write_stage_inputs(tmp_path, split, features, epochs=3)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params.update(dim_u=4, dim_theta=4, dim_node=4, hidden=8)
    params["train"].update(epochs=3, batch_size=8, patience=5, device="cpu")
    params["models"] = {"text": {"name": "deepmine", "views": "description,review"}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))

    result = subprocess.run([sys.executable, str(REPO / "stages/train.py"), "text"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300)

    assert result.returncode == 0, result.stderr
    checkpoint = torch.load(tmp_path / "models/text/model.pt", weights_only=True)
    assert checkpoint["meta"]["item_ids"][:2] == ["B000000000", "B000000001"]
    assert checkpoint["meta"]["user_ids"][9] == "AUSER0000009"
    assert len(checkpoint["meta"]["history"]) == 3
    metrics = json.loads((tmp_path / "dvclive/text/metrics.json").read_text())
    assert set(metrics) >= {"bpr", "recon_image", "recon_description", "recon_review", "penalty", "val_auc", "step"}
    assert metrics["step"] == 2
    assert metrics["recon_image"] == 0
    curve = pd.read_csv(tmp_path / "dvclive/text/plots/metrics/val_auc.tsv", sep="\t")
    assert curve["step"].tolist() == [0, 1, 2]
    assert not (tmp_path / "dvc.yaml").exists()


def test_train_stage_unknown_variant_fails(tmp_path):
    (tmp_path / "params.yaml").write_text((REPO / "params.yaml").read_text())

    result = subprocess.run([sys.executable, str(REPO / "stages/train.py"), "nope"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)

    assert result.returncode == 1
    assert "model variant 'nope' is not under `models`" in result.stderr
    assert "Traceback" not in result.stderr
