"""Stage clean: filter, deduplicate, assign ids and split by time (see deepmine.split)."""

import pandas as pd

from deepmine import io, paths
from deepmine.cli import StageError, run_stage
from deepmine.params import load_params
from deepmine.split import clean


def main() -> None:
    params = load_params()
    for path in (paths.REVIEWS, paths.PRODUCTS):
        if not path.exists():
            raise StageError(f"clean: {path} not found; run `dvc repro ingest` first")
    reviews = pd.read_parquet(paths.REVIEWS)
    products = pd.read_parquet(paths.PRODUCTS)

    interactions, items, users, report = clean(reviews, products, params.clean)

    io.write_parquet(paths.INTERACTIONS, interactions)
    io.write_parquet(paths.ITEMS, items)
    io.write_parquet(paths.USERS, users)
    io.write_json(paths.DATA_REPORT, report)


if __name__ == "__main__":
    run_stage(main)
