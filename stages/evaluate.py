"""Stage evaluate <variant>: score the trained model on the validation and test splits.

Writes metrics/<variant>.json ({"test": {...}, "validation": {...}}), which dvc.yaml declares as
DVC metrics, so `dvc metrics show` compares the variants."""

import argparse
import logging
import time

from deepmine import io, paths
from deepmine.cli import StageError, run_stage
from deepmine.data import load_split
from deepmine.evaluation import EvaluationInputError, evaluate_model, load_eval_negatives
from deepmine.features import ItemFeatures
from deepmine.models import load_model, uses_content
from deepmine.params import load_params
from deepmine.process import keep_freed_memory
from deepmine.training import resolve_device

log = logging.getLogger("deepmine.stages.evaluate")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variant", help="a model variant under `models` in params.yaml")
    variant = parser.parse_args().variant

    keep_freed_memory()  # large tensors are freed and allocated again every batch
    params = load_params()
    spec = params.model(variant)
    split = load_split()
    features = ItemFeatures.load() if uses_content(spec) else None
    device = resolve_device(params.train.device)
    model, _ = load_model(paths.checkpoint(variant), features, device)
    try:
        negatives = load_eval_negatives(paths.EVAL_NEGATIVES, split.n_items)
    except FileNotFoundError as err:
        raise StageError(str(err)) from err

    started = time.perf_counter()
    score_fn = model.make_scorer(device)
    try:
        results = evaluate_model(score_fn, split, negatives, params.evaluate)
    except EvaluationInputError as err:
        raise StageError(f"evaluate@{variant}: {err}") from err
    seconds = time.perf_counter() - started

    io.write_json(paths.metrics(variant), results)
    test, validation = results["test"], results["validation"]
    log.info(
        "%s: %d test users, test AUC %s, cold AUC %s (%d cases), recall@%d %s, validation AUC %s; "
        "scored on %s in %.1f s",
        variant, test["users"], _fmt(test["auc"]), _fmt(test["cold_auc"]), test["cold_cases"],
        max(params.evaluate.ks), _fmt(test[f"recall@{max(params.evaluate.ks)}"]),
        _fmt(validation["auc"]), device, seconds,
    )


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.4f}"


if __name__ == "__main__":
    run_stage(main)
