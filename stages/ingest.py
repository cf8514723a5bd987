"""Ingest stage: raw reviews and metadata JSON lines to typed Parquet tables.

Writes data/interim/reviews.parquet, data/interim/products.parquet and reports/ingest.json
(lines read, rows written and malformed lines by reason, with examples, per file).
"""

from deepmine import paths
from deepmine.cli import run_stage
from deepmine.ingest import run_ingest
from deepmine.params import load_params


def main() -> None:
    params = load_params()
    run_ingest(
        params.data.reviews,
        params.data.meta,
        reviews_out=paths.REVIEWS,
        products_out=paths.PRODUCTS,
        report_out=paths.INGEST_REPORT,
        max_bad_share=params.ingest.max_bad_share,
        examples=params.ingest.examples,
    )


if __name__ == "__main__":
    run_stage(main)
