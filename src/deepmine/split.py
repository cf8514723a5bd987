"""The clean stage: filter reviews and products, assign contiguous ids, split by time.

Rules, in order (each step's rows in and out go to reports/data.json):

1. Exact duplicate review rows (every ingested field but the line number equal) are removed.
2. Reviews without a reviewer, an item or a review text are removed.
3. Exact duplicate product rows are removed, then later rows of an ASIN seen before.
4. Products that lack what the enabled views need (a description, an image URL) are removed, and
   with them the reviews of those items and of items without metadata.
5. Duplicate (user, item) pairs collapse to the earliest interaction.
6. Optional k-core: users and items below the minimum interaction counts are removed repeatedly
   until every remaining user and item meets them.
7. Ids: items by ascending ASIN, users by ascending reviewer id, both from 0.
8. Split per user, interactions sorted by time with ties broken by item id: the last goes to test,
   the second-last to validation, the rest to training. Users with fewer than 3 interactions keep
   everything in training.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from .cli import StageError
from .params import CleanParams

log = logging.getLogger(__name__)

REVIEW_FIELDS = ["reviewer_id", "asin", "overall", "unix_time", "review_text", "summary", "vote", "verified"]
PRODUCT_FIELDS = ["asin", "title", "description", "brand", "main_cat", "image_urls_high", "image_urls"]


def _present(text: pd.Series) -> pd.Series:
    return text.notna() & (text.astype("string").str.strip().str.len() > 0)


def _drop_exact_duplicates(df: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Drop rows equal to an earlier row on `columns`; list cells are compared by value."""
    key = df[columns].copy()
    for col in columns:
        if key[col].map(lambda v: isinstance(v, (list, np.ndarray))).any():
            key[col] = key[col].map(lambda v: None if v is None else "\x1f".join(map(str, v)))
    return df[~key.duplicated(keep="first")]


def _has_urls(lists: pd.Series) -> pd.Series:
    return lists.map(lambda v: v is not None and len(v) > 0).astype(bool)


def k_core(df: pd.DataFrame, min_user: int, min_item: int) -> pd.DataFrame:
    """Remove users and items with fewer interactions than the minimums until none is left."""
    if min_user <= 1 and min_item <= 1:
        return df
    while True:
        user_counts = df["reviewer_id"].map(df["reviewer_id"].value_counts())
        item_counts = df["asin"].map(df["asin"].value_counts())
        keep = (user_counts >= min_user) & (item_counts >= min_item)
        if keep.all():
            return df
        df = df[keep]


def assign_split(df: pd.DataFrame) -> pd.Series:
    """Label each interaction train, validation or test; `df` has user, item and timestamp columns.

    Per user, interactions are ordered by (timestamp, item): the last is test, the second-last
    validation, the rest train. Users with fewer than 3 interactions keep all in train.
    """
    order = df.sort_values(["user", "timestamp", "item"], kind="stable")
    count = order.groupby("user", sort=False)["item"].transform("size").to_numpy()
    position_from_end = order.groupby("user", sort=False).cumcount(ascending=False).to_numpy()
    labels = np.full(len(order), "train", dtype=object)
    eligible = count >= 3
    labels[eligible & (position_from_end == 0)] = "test"
    labels[eligible & (position_from_end == 1)] = "validation"
    return pd.Series(labels, index=order.index).reindex(df.index)


def clean(reviews: pd.DataFrame, products: pd.DataFrame, params: CleanParams):
    """Return (interactions, items, users, report) from the ingested tables.

    interactions: user, item, timestamp, review_text, split (one row per user and item, sorted by
    user and time); items: item, asin, title, description, image_urls_high, image_urls, n_train;
    users: user, reviewer_id.
    """
    steps: dict[str, dict[str, int]] = {}

    def record(name: str, before: int, after: int) -> None:
        steps[name] = {"in": int(before), "out": int(after), "removed": int(before - after)}
        log.info("%s: %d -> %d rows (%d removed)", name, before, after, before - after)

    # Reviews: exact duplicates, then the fields every interaction needs.
    reviews = reviews.sort_values("line", kind="stable")
    n = len(reviews)
    reviews = _drop_exact_duplicates(reviews, [c for c in REVIEW_FIELDS if c in reviews.columns])
    record("reviews_exact_duplicates", n, len(reviews))
    n = len(reviews)
    reviews = reviews[_present(reviews["reviewer_id"]) & _present(reviews["asin"]) & _present(reviews["review_text"])]
    record("reviews_missing_user_item_or_text", n, len(reviews))

    # Products: exact duplicates, repeated ASINs, then what the views need.
    products = products.sort_values("line", kind="stable")
    n = len(products)
    products = _drop_exact_duplicates(products, [c for c in PRODUCT_FIELDS if c in products.columns])
    record("products_exact_duplicates", n, len(products))
    n = len(products)
    products = products[_present(products["asin"])].drop_duplicates("asin", keep="first")
    record("products_repeated_asin", n, len(products))

    reviewed = set(reviews["asin"])
    with_meta = products[products["asin"].isin(reviewed)]
    has_description = _present(with_meta["description"])
    has_image = _has_urls(with_meta["image_urls_high"]) | _has_urls(with_meta["image_urls"])
    coverage = {
        "reviewed_items": len(reviewed),
        "reviewed_items_with_metadata": len(with_meta),
        "reviewed_items_without_metadata": len(reviewed) - len(with_meta),
        "with_description": int(has_description.sum()),
        "with_image_url": int(has_image.sum()),
        "with_description_and_image_url": int((has_description & has_image).sum()),
    }

    n = len(products)
    keep = pd.Series(True, index=products.index)
    if params.require_description:
        keep &= _present(products["description"])
    if params.require_image:
        keep &= _has_urls(products["image_urls_high"]) | _has_urls(products["image_urls"])
    products = products[keep]
    record("products_missing_required_views", n, len(products))

    n = len(reviews)
    reviews = reviews[reviews["asin"].isin(set(products["asin"]))]
    record("reviews_of_items_without_required_metadata", n, len(reviews))

    # One interaction per (user, item): the earliest, ties by file order.
    n = len(reviews)
    reviews = reviews.sort_values(["reviewer_id", "asin", "unix_time", "line"], kind="stable")
    reviews = reviews.drop_duplicates(["reviewer_id", "asin"], keep="first")
    record("duplicate_user_item_pairs", n, len(reviews))

    n = len(reviews)
    reviews = k_core(reviews, params.min_user_interactions, params.min_item_interactions)
    record("k_core", n, len(reviews))
    if reviews.empty:
        raise StageError(
            "clean: no interactions are left after filtering; check reports/ingest.json and the "
            "clean parameters (require_description, require_image, min_user_interactions, "
            "min_item_interactions)"
        )

    # Contiguous ids in a fixed order so the same input always gives the same ids.
    item_asins = np.sort(reviews["asin"].unique())
    user_ids = np.sort(reviews["reviewer_id"].unique())
    interactions = pd.DataFrame({
        "user": np.searchsorted(user_ids, reviews["reviewer_id"].to_numpy()).astype(np.int32),
        "item": np.searchsorted(item_asins, reviews["asin"].to_numpy()).astype(np.int32),
        "timestamp": reviews["unix_time"].to_numpy(np.int64),
        "review_text": reviews["review_text"].astype("string").to_numpy(),
    })
    interactions["split"] = assign_split(interactions)
    interactions = interactions.sort_values(["user", "timestamp", "item"], kind="stable").reset_index(drop=True)

    n_train = np.bincount(interactions.loc[interactions["split"] == "train", "item"], minlength=len(item_asins))
    items = products.set_index("asin").loc[item_asins].reset_index()
    items = pd.DataFrame({
        "item": np.arange(len(item_asins), dtype=np.int32),
        "asin": items["asin"].astype("string"),
        "title": items["title"].astype("string"),
        "description": items["description"].astype("string"),
        "image_urls_high": items["image_urls_high"],
        "image_urls": items["image_urls"],
        "n_train": n_train.astype(np.int32),
    })
    users = pd.DataFrame({"user": np.arange(len(user_ids), dtype=np.int32),
                          "reviewer_id": pd.array(user_ids, dtype="string")})

    split_counts = interactions["split"].value_counts()
    per_user = interactions.groupby("user").size()
    report = {
        "reviews_in": int(steps["reviews_exact_duplicates"]["in"]),
        "products_in": int(steps["products_exact_duplicates"]["in"]),
        "steps": steps,
        "item_coverage": coverage,
        "users": len(users),
        "items": len(items),
        "interactions": len(interactions),
        "train": int(split_counts.get("train", 0)),
        "validation": int(split_counts.get("validation", 0)),
        "test": int(split_counts.get("test", 0)),
        "users_with_held_out_items": int((per_user >= 3).sum()),
        "users_train_only": int((per_user < 3).sum()),
        "items_without_training_interactions": int((n_train == 0).sum()),
        "items_with_description": int(_present(items["description"]).sum()),
        "items_with_image_url": int((_has_urls(items["image_urls_high"]) | _has_urls(items["image_urls"])).sum()),
    }
    log.info(
        "split: %d users, %d items, train %d, validation %d, test %d; %d items without training interactions",
        report["users"], report["items"], report["train"], report["validation"], report["test"],
        report["items_without_training_interactions"],
    )
    return interactions, items, users, report
