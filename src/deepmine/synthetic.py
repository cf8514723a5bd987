"""Generated datasets in the Amazon Review Data 2018 format, for tests and benchmarks.

Users and items fall into two groups. A user picks most items from their own group, and an
item's description words and image colour identify its group. A model that learns anything
ranks a user's held-out item above items of the other group, so test AUC well above 0.5 is a
planted, checkable outcome.
"""

from __future__ import annotations

import gzip
import io as _io
import json
from pathlib import Path

import numpy as np
from PIL import Image

from .localserver import serve_folder  # noqa: F401 - the tests serve generated images with it

GROUP_WORDS = (
    ["organic", "oat", "snack", "crunchy", "honey", "granola", "almond", "breakfast"],
    ["steel", "cleaning", "detergent", "scrub", "kitchen", "towel", "spray", "wipes"],
)
GROUP_COLOURS = ((200, 40, 30), (30, 60, 200))


def asin(item: int) -> str:
    return f"B{item:09d}"


def reviewer(user: int) -> str:
    return f"AUSER{user:07d}"


def jpeg_bytes(colour: tuple[int, int, int], size: int = 64, seed: int = 0) -> bytes:
    """Encode a JPEG of one colour with mild noise, so images of a group differ a little."""
    rng = np.random.default_rng(seed)
    pixels = np.clip(np.array(colour)[None, None, :] + rng.normal(0, 12, (size, size, 3)), 0, 255)
    out = _io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8), "RGB").save(out, format="JPEG", quality=90)
    return out.getvalue()


def write_dataset(folder: str | Path, *, n_users: int = 60, n_items: int = 40, min_reviews: int = 3,
                  max_reviews: int = 8, own_group_share: float = 0.9, image_base_url: str = "",
                  seed: int = 0) -> dict[str, Path]:
    """Write reviews (gzip JSON lines), metadata (plain JSON lines) and item images (JPEG files).

    Image URLs are `<image_base_url>/<asin>.jpg`; the JPEGs go to `folder/images/`, for a local
    HTTP server or the images stage's folder source. Returns the paths written.
    """
    folder = Path(folder)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    item_group = np.arange(n_items) % 2

    lines = []
    time = 1_400_000_000
    for user in range(n_users):
        group = user % 2
        count = int(rng.integers(min_reviews, max_reviews + 1))
        own = np.flatnonzero(item_group == group)
        other = np.flatnonzero(item_group != group)
        picks: list[int] = []
        while len(picks) < count:
            pool = own if rng.random() < own_group_share else other
            item = int(rng.choice(pool))
            if item not in picks:
                picks.append(item)
        for item in picks:
            time += int(rng.integers(1, 5000))
            words = rng.choice(GROUP_WORDS[item_group[item]], size=6)
            lines.append(json.dumps({
                "overall": float(rng.integers(3, 6)), "verified": True, "reviewTime": "01 1, 2015",
                "reviewerID": reviewer(user), "asin": asin(item), "reviewerName": f"User {user}",
                "reviewText": "I like this " + " ".join(words), "summary": "fine",
                "unixReviewTime": time,
            }))
    reviews = folder / "reviews.json.gz"
    with gzip.open(reviews, "wt", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")

    meta_lines = []
    for item in range(n_items):
        group = int(item_group[item])
        words = " ".join(rng.choice(GROUP_WORDS[group], size=10))
        url = f"{image_base_url}/{asin(item)}.jpg"
        meta_lines.append(json.dumps({
            "asin": asin(item), "title": f"Product {item}", "description": [f"<b>{words}</b>"],
            "imageURL": [url], "imageURLHighRes": [url], "brand": "Acme", "main_cat": "Grocery",
        }))
        (folder / "images" / f"{asin(item)}.jpg").write_bytes(jpeg_bytes(GROUP_COLOURS[group], seed=item))
    meta = folder / "meta.json"
    meta.write_text("\n".join(meta_lines) + "\n", encoding="utf-8")
    return {"reviews": reviews, "meta": meta, "images": folder / "images"}
