"""Stage train: fit one model variant of params.yaml `models` and write its checkpoint and curves.

Usage: python stages/train.py VARIANT
"""

import argparse

import numpy as np
import pandas as pd
from dvclive import Live

from deepmine import paths
from deepmine.cli import StageError, run_stage
from deepmine.data import load_split
from deepmine.features import ItemFeatures
from deepmine.models import uses_content
from deepmine.params import load_params
from deepmine.process import keep_freed_memory
from deepmine.training import resolve_device, save_checkpoint, train_model


def id_map(path, id_column: str, key_column: str) -> list[str]:
    """Return the string id of every row id, after checking that the row ids are 0..n-1 in order."""
    table = pd.read_parquet(path, columns=[key_column, id_column])
    if not (table[key_column].to_numpy() == np.arange(len(table))).all():
        raise StageError(f"{path}: column {key_column!r} is not 0..{len(table) - 1} in row order; rerun the clean stage")
    return table[id_column].astype(str).tolist()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variant", help="a key of `models` in params.yaml, for example deepmine")
    args = parser.parse_args()

    keep_freed_memory()  # large tensors are freed and allocated again every batch
    params = load_params()
    spec = params.model(args.variant)
    for path in (paths.INTERACTIONS, paths.ITEMS, paths.USERS, paths.TRAIN_TRIPLETS):
        if not path.exists():
            raise StageError(f"{path} not found; run the stages before train (dvc repro)")
    split = load_split()
    features = ItemFeatures.load() if uses_content(spec) else None
    triplets = np.load(paths.TRAIN_TRIPLETS, mmap_mode="r")
    user_ids = id_map(paths.USERS, "reviewer_id", "user")
    item_ids = id_map(paths.ITEMS, "asin", "item")
    device = resolve_device(params.train.device)

    # dvcyaml=None: the committed dvc.yaml declares the curves; DVCLive would otherwise rewrite it.
    with Live(dir=str(paths.dvclive_dir(args.variant)), dvcyaml=None, save_dvc_exp=False) as live:
        model, summary = train_model(args.variant, spec, params, split, features, triplets,
                                     device=device, live=live)

    save_checkpoint(paths.checkpoint(args.variant), model, variant=args.variant, spec=spec,
                    params=params, summary=summary, user_ids=user_ids, item_ids=item_ids)


if __name__ == "__main__":
    run_stage(main)
