"""Stage triplets: training triplets for every epoch and the fixed evaluation negatives."""

import numpy as np

from deepmine import io, paths
from deepmine.data import load_split
from deepmine.params import load_params
from deepmine.cli import run_stage
from deepmine.sampling import evaluation_negatives, training_triplets


def main() -> None:
    params = load_params()
    split = load_split()

    triplets, report = training_triplets(
        split.train, split.n_users, split.n_items, params.train.epochs, params.triplets.negatives, params.seed
    )
    evaluated = np.unique(np.concatenate([split.validation[:, 0], split.test[:, 0]]))
    negatives = evaluation_negatives(
        split.matrix("train", "validation", "test"), evaluated, params.triplets.eval_negatives, params.seed
    )
    report["evaluated_users"] = len(evaluated)
    report["evaluation_negatives_per_user"] = params.triplets.eval_negatives
    report["evaluated_users_with_fewer_negatives"] = int((negatives[:, -1] < 0).sum()) if len(negatives) else 0

    io.save_npy(paths.TRAIN_TRIPLETS, triplets)
    io.save_npz(paths.EVAL_NEGATIVES, users=evaluated.astype(np.int64), negatives=negatives)
    io.write_json(paths.TRIPLETS_REPORT, report)


if __name__ == "__main__":
    run_stage(main)
