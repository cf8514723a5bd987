"""The data stages on the real Magazine Subscriptions files (Amazon Review Data 2018), when the
shared data folder sits beside the repository. Expected counts come from the files' documentation
and from reading the files: 2,375 reviews with 42 exact duplicates, 3,385 metadata rows with 1,065
exact duplicates, and 151 of the 157 reviewed items with metadata."""

from pathlib import Path

import pandas as pd
import pytest

from deepmine.ingest import run_ingest
from deepmine.params import CleanParams
from deepmine.split import clean

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "magazine_subscriptions_2018"
pytestmark = pytest.mark.skipif(not DATA.exists(), reason=f"{DATA} not present")


@pytest.fixture(scope="module")
def ingested(tmp_path_factory):
    out = tmp_path_factory.mktemp("ingest")
    report = run_ingest(
        DATA / "Magazine_Subscriptions_5.json.gz", DATA / "meta_Magazine_Subscriptions.json.gz",
        reviews_out=out / "reviews.parquet", products_out=out / "products.parquet",
        report_out=out / "ingest.json", max_bad_share=0.01, examples=5,
    )
    return report, pd.read_parquet(out / "reviews.parquet"), pd.read_parquet(out / "products.parquet")


def test_ingest_reads_every_line(ingested):
    report, reviews, products = ingested
    assert len(reviews) == 2375
    assert len(products) == 3385
    assert reviews["review_text"].notna().sum() == 2374
    assert products["description"].notna().sum() == 2909


def test_clean_default_keeps_items_with_description_and_image(ingested):
    _, reviews, products = ingested
    interactions, items, users, report = clean(reviews, products, CleanParams())
    assert report["steps"]["reviews_exact_duplicates"]["removed"] == 42
    assert report["steps"]["products_exact_duplicates"]["removed"] == 1065
    assert report["item_coverage"] == {
        "reviewed_items": 157, "reviewed_items_with_metadata": 151, "reviewed_items_without_metadata": 6,
        "with_description": 145, "with_image_url": 130, "with_description_and_image_url": 124,
    }
    assert (len(users), len(items), len(interactions)) == (348, 124, 1907)


def test_clean_without_view_requirements_matches_reference_split(ingested):
    _, reviews, products = ingested
    interactions, items, users, report = clean(
        reviews, products, CleanParams(require_description=False, require_image=False)
    )
    assert (len(users), len(items), len(interactions)) == (348, 151, 2241)
    assert (report["train"], report["validation"], report["test"]) == (1547, 347, 347)
    assert report["items_without_training_interactions"] == 5
