"""The recommenders compared by the pipeline, chosen by `models.<variant>.name` in params.yaml:
pop, bpr, vbpr and deepmine (with `views` restricting Deep-MINE for the single-view ablation)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..cli import StageError
from ..features import ItemFeatures
from ..params import ModelSpec, Params
from .base import FactorModel, Recommender
from .bpr import BPR
from .deepmine import DeepMINE
from .pop import Popularity
from .vbpr import VBPR

__all__ = ["BPR", "DeepMINE", "FactorModel", "Popularity", "Recommender", "VBPR",
           "build_model", "load_model", "uses_content"]


def uses_content(spec: ModelSpec) -> bool:
    """Return whether the model reads item features (images and text vectors)."""
    return spec.name in ("vbpr", "deepmine")


def build_model(spec: ModelSpec, params: Params, n_users: int, n_items: int,
                item_train_counts: np.ndarray, features: ItemFeatures | None) -> Recommender:
    """Build a freshly initialised model for `spec`. The caller seeds torch for reproducible weights."""
    if uses_content(spec):
        if features is None:
            raise ValueError(f"{spec.name} reads item features, but none were given")
        features.check_items(n_items)
    return _construct({
        "name": spec.name, "n_users": n_users, "n_items": n_items, "dim_u": params.dim_u,
        "dim_theta": params.dim_theta, "dim_node": params.dim_node, "hidden": params.hidden,
        "views": spec.view_list, "encode_chunk": params.train.encode_chunk,
    }, item_train_counts, features)


def _construct(config: dict[str, Any], item_train_counts: np.ndarray,
               features: ItemFeatures | None) -> Recommender:
    name = config["name"]
    n_users, n_items = config["n_users"], config["n_items"]
    if name == "pop":
        return Popularity(n_users, n_items, item_train_counts)
    if name == "bpr":
        return BPR(n_users, n_items, item_train_counts, config["dim_u"])
    if name == "vbpr":
        return VBPR(n_users, n_items, item_train_counts, config["dim_u"], config["dim_theta"],
                    config["views"], features)
    if name == "deepmine":
        return DeepMINE(n_users, n_items, item_train_counts, config["dim_u"], config["dim_theta"],
                        config["dim_node"], config["hidden"], config["views"], features,
                        encode_chunk=config["encode_chunk"])
    raise ValueError(f"unknown model name {name!r}")


def load_model(path: str | Path, features: ItemFeatures | None,
               device: torch.device | str) -> tuple[Recommender, dict[str, Any]]:
    """Rebuild a trained model from a checkpoint written by `training.save_checkpoint`.

    Returns the model on `device` in eval mode and the checkpoint's metadata: variant, spec,
    config, epoch, best_val_auc, user_ids (reviewer_id by user id) and item_ids (asin by item id).
    """
    path = Path(path)
    if not path.exists():
        raise StageError(f"{path} not found; run the train stage for this variant first")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for a truncated or foreign file
        raise StageError(f"{path} is not a readable checkpoint ({err}); rerun the train stage") from err

    meta = checkpoint["meta"]
    config = meta["config"]
    if config["name"] in ("vbpr", "deepmine"):
        if features is None:
            raise ValueError(f"{path} is a {config['name']} model, which needs the item features")
        if features.n_items != config["n_items"] or features.text_dim != config["text_dim"]:
            raise StageError(
                f"{path} was trained on {config['n_items']} items with {config['text_dim']}-d text "
                f"vectors, but the item features have {features.n_items} items and "
                f"{features.text_dim}-d vectors; rerun the train stage"
            )
    placeholder_counts = np.zeros(config["n_items"], dtype=np.int64)  # the state dict restores them
    model = _construct({"encode_chunk": 0, **config}, placeholder_counts, features)
    model.load_state_dict(checkpoint["state_dict"])
    model.to(device)
    model.eval()
    return model, meta
