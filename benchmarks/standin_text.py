"""Write stand-in text views, random vectors, in place of the embed stage's output.

    python benchmarks/standin_text.py [--seed 0]   (run in a workdir after the clean stage)

At Pantry scale the embed stage encodes about 370,000 texts with all-MiniLM-L6-v2, which takes
hours on 2 cores. Training and evaluation cost the same whatever the vector values are, so
`run.py --text-features random` runs this script instead to time them sooner. The vectors are
standard normal, zero where the view is missing. The masks are real: an item has a description
when its cleaned description is not blank, and a review view when at least one of its training
reviews is not blank. Metrics of models trained on these vectors mean nothing.

Writes data/text/features.npz (the embed stage's arrays) and reports/embed.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from deepmine import paths  # noqa: E402
from deepmine.io import save_npz, write_json  # noqa: E402
from deepmine.params import load_params  # noqa: E402


def not_blank(texts: pd.Series) -> np.ndarray:
    return texts.fillna("").str.strip().ne("").to_numpy()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0, help="seed of the random vectors")
    args = parser.parse_args(argv)
    dim = load_params().text.dim

    items = pd.read_parquet(paths.ITEMS, columns=["item", "description"])
    interactions = pd.read_parquet(paths.INTERACTIONS, columns=["item", "review_text", "split"])
    train = interactions[interactions["split"].to_numpy() == "train"]
    has_description = not_blank(items["description"])
    has_review = np.zeros(len(items), dtype=bool)
    has_review[train["item"].to_numpy()[not_blank(train["review_text"])]] = True

    rng = np.random.default_rng(args.seed)
    arrays = {
        "description": np.where(has_description[:, None], rng.normal(size=(len(items), dim)), 0).astype(np.float32),
        "review": np.where(has_review[:, None], rng.normal(size=(len(items), dim)), 0).astype(np.float32),
        "has_description": has_description,
        "has_review": has_review,
    }
    save_npz(paths.TEXT_FEATURES, **arrays)
    report = {"stand_in": "random vectors from benchmarks/standin_text.py", "seed": args.seed, "dim": dim,
              "items": {"total": len(items), "with_description": int(has_description.sum()),
                        "with_training_review": int(has_review.sum())},
              "encoded_now": 0}
    write_json(paths.EMBED_REPORT, report)
    print(json.dumps(report["items"]))


if __name__ == "__main__":
    main()
