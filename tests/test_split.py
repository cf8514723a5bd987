import numpy as np
import pandas as pd
import pytest

from deepmine.cli import StageError
from deepmine.params import CleanParams
from deepmine.split import clean, k_core


def make_reviews(rows):
    """rows: (reviewer_id, asin, unix_time[, review_text])."""
    records = []
    for line, row in enumerate(rows, start=1):
        user, asin, time = row[:3]
        text = row[3] if len(row) > 3 else f"review of {asin} by {user}"
        records.append({
            "line": line, "reviewer_id": user, "asin": asin, "overall": 5.0, "unix_time": time,
            "review_text": text, "summary": None, "vote": None, "verified": True,
        })
    return pd.DataFrame(records)


def make_products(asins, description="a product", urls=("http://img/x.jpg",)):
    return pd.DataFrame([
        {"line": i + 1, "asin": a, "title": None, "description": description, "brand": None,
         "main_cat": None, "image_urls_high": list(urls), "image_urls": []}
        for i, a in enumerate(asins)
    ])


def splits_by_user(interactions, users, items):
    merged = interactions.merge(users, on="user").merge(items[["item", "asin"]], on="item")
    return {
        uid: list(zip(part["asin"], part["split"]))
        for uid, part in merged.sort_values(["user", "timestamp", "item"]).groupby("reviewer_id")
    }


def test_split_by_user_activity():
    rows = [("u1", "A", 10)]
    rows += [("u2", "A", 10), ("u2", "B", 20)]
    rows += [("u3", "A", 10), ("u3", "B", 30), ("u3", "C", 20)]
    rows += [("u5", a, t) for a, t in [("A", 5), ("B", 4), ("C", 3), ("D", 2), ("E", 1)]]
    inter, items, users, report = clean(make_reviews(rows), make_products("ABCDE"), CleanParams())
    got = splits_by_user(inter, users, items)
    assert got["u1"] == [("A", "train")]
    assert got["u2"] == [("A", "train"), ("B", "train")]
    assert got["u3"] == [("A", "train"), ("C", "validation"), ("B", "test")]
    assert got["u5"] == [("E", "train"), ("D", "train"), ("C", "train"), ("B", "validation"), ("A", "test")]
    assert report["train"] == 1 + 2 + 1 + 3
    assert report["validation"] == 2
    assert report["test"] == 2
    assert report["users_with_held_out_items"] == 2
    assert report["users_train_only"] == 2


def test_split_breaks_time_ties_by_item_id():
    rows = [("u", "C", 7), ("u", "A", 7), ("u", "B", 7)]
    inter, items, users, _ = clean(make_reviews(rows), make_products("ABC"), CleanParams())
    assert splits_by_user(inter, users, items)["u"] == [("A", "train"), ("B", "validation"), ("C", "test")]


def test_duplicate_user_item_collapses_to_earliest():
    rows = [("u", "A", 50, "late"), ("u", "A", 20, "early"), ("u", "A", 20, "early, later line")]
    inter, _, _, report = clean(make_reviews(rows), make_products("A"), CleanParams())
    assert len(inter) == 1
    assert inter.loc[0, "timestamp"] == 20
    assert inter.loc[0, "review_text"] == "early"
    assert report["steps"]["duplicate_user_item_pairs"]["removed"] == 2


def test_exact_duplicate_reviews_and_products_removed():
    reviews = make_reviews([("u", "A", 1, "t"), ("u", "A", 1, "t"), ("v", "B", 2, "t")])
    products = pd.concat([make_products("AB"), make_products("A")], ignore_index=True)
    products["line"] = range(1, len(products) + 1)
    inter, items, _, report = clean(reviews, products, CleanParams())
    assert report["steps"]["reviews_exact_duplicates"] == {"in": 3, "out": 2, "removed": 1}
    assert report["steps"]["products_exact_duplicates"] == {"in": 3, "out": 2, "removed": 1}
    assert list(items["asin"]) == ["A", "B"]
    assert len(inter) == 2


def test_repeated_asin_keeps_first_product_row():
    products = pd.concat([make_products("A", description="first"), make_products("A", description="second")],
                         ignore_index=True)
    products["line"] = [1, 2]
    _, items, _, report = clean(make_reviews([("u", "A", 1)]), products, CleanParams())
    assert items.loc[0, "description"] == "first"
    assert report["steps"]["products_repeated_asin"]["removed"] == 1


def test_required_views_filter_items_and_their_reviews():
    products = pd.concat([
        make_products("A"),
        make_products("B", description=None),
        make_products("C", urls=()),
    ], ignore_index=True)
    products["line"] = [1, 2, 3]
    reviews = make_reviews([("u", "A", 1), ("u", "B", 2), ("u", "C", 3), ("u", "D", 4)])
    _, items, _, report = clean(reviews, products, CleanParams())
    assert list(items["asin"]) == ["A"]
    assert report["item_coverage"] == {
        "reviewed_items": 4, "reviewed_items_with_metadata": 3, "reviewed_items_without_metadata": 1,
        "with_description": 2, "with_image_url": 2, "with_description_and_image_url": 1,
    }
    _, items, _, _ = clean(reviews, products, CleanParams(require_description=False, require_image=False))
    assert list(items["asin"]) == ["A", "B", "C"]


def test_reviews_without_text_or_user_are_dropped():
    reviews = make_reviews([("u", "A", 1, ""), ("u", "B", 2, "   "), (None, "A", 3), ("v", "A", 4, None), ("w", "A", 5)])
    inter, _, users, report = clean(reviews, make_products("AB"), CleanParams())
    assert list(users["reviewer_id"]) == ["w"]
    assert report["steps"]["reviews_missing_user_item_or_text"]["removed"] == 4


def test_ids_are_contiguous_and_independent_of_row_order():
    rows = [("u9", "Z", 1), ("u1", "M", 2), ("u5", "A", 3), ("u1", "Z", 4), ("u5", "M", 5)]
    reviews = make_reviews(rows)
    first = clean(reviews, make_products("AMZ"), CleanParams())
    shuffled = reviews.sample(frac=1.0, random_state=3).reset_index(drop=True)
    second = clean(shuffled, make_products("ZMA"), CleanParams())
    pd.testing.assert_frame_equal(first[0], second[0])
    assert list(first[1]["asin"]) == ["A", "M", "Z"]
    assert list(first[1]["item"]) == [0, 1, 2]
    assert list(first[2]["reviewer_id"]) == ["u1", "u5", "u9"]
    assert list(first[1]["n_train"]) == [1, 2, 2]


def test_k_core_removes_until_stable():
    df = make_reviews([("a", "X", 1), ("a", "Y", 2), ("b", "X", 3), ("b", "Y", 4), ("c", "X", 5), ("c", "Z", 6)])
    kept = k_core(df, 2, 2)
    # Z has one interaction, so c drops to one and goes too; X and Y keep two each.
    assert sorted(zip(kept["reviewer_id"], kept["asin"])) == [("a", "X"), ("a", "Y"), ("b", "X"), ("b", "Y")]


def test_items_without_training_interactions_are_counted():
    rows = [("u", "A", 1), ("u", "B", 2), ("u", "C", 3)]
    _, items, _, report = clean(make_reviews(rows), make_products("ABC"), CleanParams())
    assert list(items["n_train"]) == [1, 0, 0]
    assert report["items_without_training_interactions"] == 2


def test_clean_with_nothing_left_raises_stage_error():
    with pytest.raises(StageError, match="no interactions are left"):
        clean(make_reviews([("u", "A", 1)]), make_products("B"), CleanParams())
