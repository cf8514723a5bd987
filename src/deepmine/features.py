"""Item content features: the image array of the images stage and the text vectors of the embed
stage, as torch tensors that the content models gather from by item id."""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import torch

from . import paths
from .cli import StageError

log = logging.getLogger(__name__)

IMAGE_SIZE = 40
TEXT_ARRAYS = ("description", "review", "has_description", "has_review")


@dataclass
class ItemFeatures:
    """Content of every item, rows indexed by item id; a `has_*` mask marks the items with a view."""

    images: torch.Tensor  # (n_items, 40, 40, 3) uint8, RGB
    has_image: torch.Tensor  # (n_items,) bool
    description: torch.Tensor  # (n_items, d_text) float32
    has_description: torch.Tensor  # (n_items,) bool
    review: torch.Tensor  # (n_items, d_text) float32, built from training reviews only
    has_review: torch.Tensor  # (n_items,) bool

    def __post_init__(self) -> None:
        n_items = self.images.shape[0]
        if self.images.dtype != torch.uint8 or tuple(self.images.shape[1:]) != (IMAGE_SIZE, IMAGE_SIZE, 3):
            raise ValueError(
                f"images must be uint8 (n_items, {IMAGE_SIZE}, {IMAGE_SIZE}, 3), "
                f"got {self.images.dtype} {tuple(self.images.shape)}"
            )
        if self.description.shape[1] != self.review.shape[1]:
            raise ValueError(
                f"description vectors have {self.description.shape[1]} dims but review vectors "
                f"{self.review.shape[1]}"
            )
        for f in fields(self):
            tensor = getattr(self, f.name)
            if tensor.shape[0] != n_items:
                raise ValueError(f"{f.name} has {tensor.shape[0]} rows but images has {n_items}")
            if f.name.startswith("has_") and tensor.dtype != torch.bool:
                raise ValueError(f"{f.name} must be bool, got {tensor.dtype}")

    @property
    def n_items(self) -> int:
        return self.images.shape[0]

    @property
    def text_dim(self) -> int:
        return self.description.shape[1]

    def has(self, view: str) -> torch.Tensor:
        """Return the (n_items,) bool mask of the items that have `view` (image, description or review)."""
        return getattr(self, f"has_{view}")

    @classmethod
    def load(cls, images_path: str | Path = paths.IMAGES, has_image_path: str | Path = paths.HAS_IMAGE,
             text_path: str | Path = paths.TEXT_FEATURES) -> "ItemFeatures":
        """Read the images and embed stage outputs; raise StageError naming a missing or malformed file."""
        images = _load_array(images_path, "images")
        has_image = _load_array(has_image_path, "images")
        text_path = Path(text_path)
        if not text_path.exists():
            raise StageError(f"{text_path} not found; run the embed stage first (dvc repro embed)")
        with np.load(text_path) as npz:
            missing = [name for name in TEXT_ARRAYS if name not in npz.files]
            if missing:
                raise StageError(
                    f"{text_path} has no array {missing[0]!r} (it has {', '.join(npz.files)}); "
                    "rerun the embed stage"
                )
            text = {name: npz[name] for name in TEXT_ARRAYS}

        try:
            features = cls(
                images=torch.from_numpy(np.ascontiguousarray(images)),
                has_image=torch.from_numpy(has_image.astype(bool)),
                description=torch.from_numpy(text["description"].astype(np.float32)),
                has_description=torch.from_numpy(text["has_description"].astype(bool)),
                review=torch.from_numpy(text["review"].astype(np.float32)),
                has_review=torch.from_numpy(text["has_review"].astype(bool)),
            )
        except ValueError as err:
            raise StageError(
                f"item features in {images_path}, {has_image_path} and {text_path} do not fit "
                f"together ({err}); rerun the images and embed stages"
            ) from err
        log.info(
            "item features: %d items, %d with an image, %d with a description, %d with a review",
            features.n_items, int(features.has_image.sum()), int(features.has_description.sum()),
            int(features.has_review.sum()),
        )
        return features

    def check_items(self, n_items: int) -> None:
        """Raise StageError when the features were built for another item table."""
        if self.n_items != n_items:
            raise StageError(
                f"item features have {self.n_items} items but {paths.ITEMS} has {n_items}; "
                "rerun the images and embed stages (dvc repro)"
            )

    def to(self, device: torch.device | str) -> "ItemFeatures":
        """Return a copy with every tensor on `device`."""
        return ItemFeatures(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})


def image_batch(images: torch.Tensor) -> torch.Tensor:
    """Convert uint8 (b, 40, 40, 3) RGB pixels to the encoder's float (b, 3, 40, 40) in [0, 1]."""
    return images.permute(0, 3, 1, 2).to(torch.float32) / 255.0


def _load_array(path: str | Path, stage: str) -> np.ndarray:
    path = Path(path)
    if not path.exists():
        raise StageError(f"{path} not found; run the {stage} stage first (dvc repro {stage})")
    try:
        return np.load(path)
    except (OSError, ValueError) as err:
        raise StageError(f"{path} is not a readable .npy array ({err}); rerun the {stage} stage") from err
