"""Training: mini-batch Adam on the objective over precomputed triplets, validation AUC after
every epoch, early stopping with patience, and the best epoch's weights kept.

Epoch e trains on triplets[e] in the stored order (the triplets stage shuffled them), so the
same seed and the same triplets give the same weights on the same device.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from .cli import StageError
from .data import SplitData
from .evaluation import EvaluationInputError, validation_auc
from .features import ItemFeatures
from .io import atomic_path
from .models import Recommender, build_model
from .objective import VIEW_LAMBDAS, Lambdas, objective
from .params import ModelSpec, Params

log = logging.getLogger(__name__)

# The per-epoch curves that DVCLive records for every trained model. Each objective term is
# divided by the epoch's number of triplets; a term a model lacks is logged as 0.
EPOCH_METRICS = ("bpr", "recon_image", "recon_description", "recon_review", "penalty", "val_auc")


def resolve_device(name: str) -> torch.device:
    """Return the torch device for `train.device`: auto (CUDA when present), cpu, cuda or cuda:N."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise StageError(f"train.device is {name!r}, not a device; use auto, cpu, cuda or cuda:N") from err
    if device.type not in ("cpu", "cuda"):
        raise StageError(f"train.device is {name!r}; use auto, cpu, cuda or cuda:N")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise StageError(f"train.device is {name!r} but no CUDA device is available; set it to auto or cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise StageError(
                f"train.device is {name!r} but only {torch.cuda.device_count()} CUDA devices are present"
            )
    return device


class EarlyStopping:
    """Track the best validation AUC; stop after `patience` epochs in a row without a better one.

    Patience 0 never stops early (the best epoch is still the one kept). A NaN AUC never counts
    as better."""

    def __init__(self, patience: int):
        if patience < 0:
            raise StageError(f"train.patience must not be negative, got {patience}")
        self.patience = patience
        self.best_auc: float | None = None
        self.best_epoch: int | None = None
        self.epochs_without_gain = 0

    def update(self, epoch: int, auc: float) -> bool:
        """Record the AUC of `epoch`; True when it is the best so far."""
        if not math.isnan(auc) and (self.best_auc is None or auc > self.best_auc):
            self.best_auc = auc
            self.best_epoch = epoch
            self.epochs_without_gain = 0
            return True
        self.epochs_without_gain += 1
        return False

    @property
    def should_stop(self) -> bool:
        return self.patience > 0 and self.epochs_without_gain >= self.patience


@dataclass(frozen=True)
class _Precision:
    enabled: bool
    dtype: torch.dtype


def _precision(amp: bool, device: torch.device) -> _Precision:
    if not amp:
        return _Precision(False, torch.float32)
    if device.type == "cpu":
        # bfloat16 keeps float32's exponent range, so it needs no gradient scaling. It halved a
        # Deep-MINE step on the benchmark CPU, which has AVX512_BF16. CPUs without native
        # bfloat16 emulate it and may get slower.
        log.info("train.amp: matrix products and convolutions in bfloat16 on the CPU")
        return _Precision(True, torch.bfloat16)
    # NOTE: this CUDA path has only run in CPU tests with autocast disabled, never on a GPU.
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return _Precision(True, dtype)


def _check_triplets(triplets: np.ndarray, epochs: int) -> None:
    if triplets.ndim != 3 or triplets.shape[2] != 3:
        raise StageError(
            f"training triplets must be an (epochs, n, 3) array of (user, positive, negative), "
            f"got shape {triplets.shape}; rerun the triplets stage"
        )
    if not np.issubdtype(triplets.dtype, np.integer):
        raise StageError(f"training triplets must be integers, got {triplets.dtype}; rerun the triplets stage")
    if triplets.shape[0] < epochs:
        raise StageError(
            f"train.epochs is {epochs} but the training triplets cover {triplets.shape[0]} epochs; "
            "rerun the triplets stage (dvc repro triplets)"
        )
    if triplets.shape[1] == 0:
        raise StageError("the training triplets are empty; the split has no training interactions")


def _epoch_triplets(triplets: np.ndarray, epoch: int, split: SplitData, device: torch.device) -> torch.Tensor:
    rows = np.ascontiguousarray(triplets[epoch], dtype=np.int64)  # (n, 3)
    limits = (split.n_users, split.n_items, split.n_items)
    for column, (role, limit) in enumerate(zip(("user", "positive item", "negative item"), limits)):
        low, high = int(rows[:, column].min()), int(rows[:, column].max())
        if low < 0 or high >= limit:
            bad = low if low < 0 else high
            raise StageError(
                f"training triplets of epoch {epoch} contain {role} id {bad}, outside 0..{limit - 1} "
                "of the cleaned split; rerun the triplets stage"
            )
    return torch.from_numpy(rows).to(device)


def _validation_users(split: SplitData, eval_users: int, seed: int) -> np.ndarray | None:
    """Return None (all validation users) or a fixed random subset of `eval_users` of them."""
    if eval_users < 0:
        raise StageError(f"train.eval_users must not be negative, got {eval_users}")
    users = np.unique(split.validation[:, 0])
    if eval_users == 0 or eval_users >= len(users):
        return None
    return np.sort(np.random.default_rng(seed).choice(users, size=eval_users, replace=False))


def _validate(model: Recommender, split: SplitData, device: torch.device, chunk_users: int,
              users: np.ndarray | None, epoch: int) -> float:
    try:
        return validation_auc(model.make_scorer(device), split, chunk_users=chunk_users, users=users)
    except EvaluationInputError as err:
        raise StageError(f"validation after epoch {epoch} failed: {err}") from err


def _train_epoch(model: Recommender, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler,
                 triplets: torch.Tensor, lambdas: Lambdas, batch_size: int, precision: _Precision,
                 epoch: int, max_batches: int = 0) -> tuple[dict[str, float], dict[str, int]]:
    """Run one pass over the epoch's triplets.

    Returns each objective term divided by the number of triplets trained on, and the counts
    {"triplets", "item_encodings"}: the distinct items the batches encoded, against the two per
    triplet that encoding every row would cost. `max_batches` > 0 stops the epoch early (timing
    runs); the shared-weight penalties keep their full-epoch scale.
    """
    model.train()
    n = triplets.shape[0]
    sums = torch.zeros(len(EPOCH_METRICS) - 1, device=triplets.device)  # every metric but val_auc
    starts = range(0, n, batch_size)
    if max_batches > 0:
        starts = starts[:max_batches]
    trained = 0
    encodings = 0
    for start in tqdm(starts, desc=f"epoch {epoch}", unit="batch", leave=False):
        users, positives, negatives = triplets[start:start + batch_size].unbind(1)
        trained += len(users)
        encodings += int(torch.unique(torch.cat([positives, negatives])).numel())
        with torch.autocast(triplets.device.type, dtype=precision.dtype, enabled=precision.enabled):
            terms = model.triplet_terms(users, positives, negatives)
        value = objective(terms, lambdas, shared_scale=len(users) / n)

        optimizer.zero_grad(set_to_none=True)
        scaler.scale(value.total).backward()
        scaler.step(optimizer)
        scaler.update()

        zero = torch.zeros((), device=sums.device)
        parts = [value.bpr] + [value.recon.get(view, zero) for view in VIEW_LAMBDAS] + [value.penalty]
        sums += torch.stack([part.detach().float() for part in parts])

    values = (sums / trained).tolist()
    if not all(math.isfinite(v) for v in values):
        raise StageError(
            f"training diverged in epoch {epoch}: the objective is not finite "
            f"({dict(zip(EPOCH_METRICS, values))}); lower train.lr or raise the lambdas"
        )
    return dict(zip(EPOCH_METRICS[:-1], values)), {"triplets": trained, "item_encodings": encodings}


def train_model(variant: str, spec: ModelSpec, params: Params, split: SplitData,
                features: ItemFeatures | None, triplets: np.ndarray, *, device: torch.device | str,
                live=None) -> tuple[Recommender, dict[str, Any]]:
    """Train the model of `spec` and return it with the best validation AUC's weights.

    `triplets` is the (epochs, n, 3) array of (user, positive, negative) ids; epoch e uses
    triplets[e]. `live` is an optional DVCLive Live object that receives EPOCH_METRICS after
    every epoch. The returned summary contains variant, epochs_run, best_epoch, best_val_auc,
    triplets_per_second and the per-epoch history.
    """
    device = torch.device(device)
    config = params.train
    if config.lr <= 0:
        raise StageError(f"train.lr must be positive, got {config.lr}")
    if config.encode_chunk < 0:
        raise StageError(f"train.encode_chunk must not be negative, got {config.encode_chunk}")

    torch.manual_seed(params.seed)
    model = build_model(spec, params, split.n_users, split.n_items, split.item_train_counts, features)
    model.to(device)
    n_parameters = sum(p.numel() for p in model.parameters())
    log.info("%s: %s model with %d parameters on %s", variant, spec.name, n_parameters, device)

    has_validation = len(split.validation) > 0
    if not has_validation:
        log.warning("the validation split is empty: no early stopping, the last epoch is kept")
    val_users = _validation_users(split, config.eval_users, params.seed) if has_validation else None
    chunk_users = params.evaluate.chunk_users
    summary: dict[str, Any] = {"variant": variant, "epochs_run": 0, "best_epoch": None,
                               "best_val_auc": None, "triplets_per_second": None, "history": []}

    if not model.trainable:
        auc = _validate(model, split, device, chunk_users, val_users, 0) if has_validation else float("nan")
        log.info("%s: nothing to train; validation AUC %.4f", variant, auc)
        if live is not None:
            live.log_metric("val_auc", auc)
            live.next_step()
        summary.update(best_epoch=0, best_val_auc=None if math.isnan(auc) else auc)
        return model, summary

    _check_triplets(triplets, config.epochs)
    lambdas = Lambdas.from_params(params)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    precision = _precision(config.amp, device)
    scaler = torch.amp.GradScaler(device.type, enabled=precision.enabled and precision.dtype == torch.float16)
    stopper = EarlyStopping(config.patience)
    best_state = None
    train_seconds = 0.0
    trained_triplets = 0

    for epoch in range(config.epochs):
        epoch_triplets = _epoch_triplets(triplets, epoch, split, device)
        started = time.perf_counter()
        metrics, counts = _train_epoch(model, optimizer, scaler, epoch_triplets, lambdas, config.batch_size,
                                       precision, epoch, config.max_batches)
        epoch_seconds = time.perf_counter() - started
        train_seconds += epoch_seconds
        trained_triplets += counts["triplets"]
        log.info("%s epoch %d: %d triplets in %.1f s (%.0f triplets/s), %d item encodings (encoding "
                 "both items of every triplet: %d)", variant, epoch, counts["triplets"], epoch_seconds,
                 counts["triplets"] / max(epoch_seconds, 1e-9), counts["item_encodings"], 2 * counts["triplets"])

        auc = _validate(model, split, device, chunk_users, val_users, epoch) if has_validation else float("nan")
        metrics["val_auc"] = auc
        summary["history"].append({"epoch": epoch, **metrics})
        summary["epochs_run"] = epoch + 1
        log.info("%s epoch %d: %s", variant, epoch,
                 ", ".join(f"{name} {value:.4f}" for name, value in metrics.items()))
        if live is not None:
            for name in EPOCH_METRICS:
                live.log_metric(name, metrics[name])
            live.next_step()

        improved = stopper.update(epoch, auc) if has_validation else True
        if improved:
            best_state = {key: value.detach().clone() for key, value in model.state_dict().items()}
            summary["best_epoch"] = epoch
        if stopper.should_stop:
            log.info("%s: no better validation AUC for %d epochs; stopping after epoch %d",
                     variant, config.patience, epoch)
            break

    if best_state is not None:
        model.load_state_dict(best_state)
    summary["best_val_auc"] = stopper.best_auc
    summary["triplets_per_second"] = trained_triplets / train_seconds if train_seconds > 0 else None
    log.info("%s: kept epoch %s (validation AUC %s); %.0f triplets/s in training",
             variant, summary["best_epoch"], stopper.best_auc, summary["triplets_per_second"] or 0.0)
    return model, summary


def save_checkpoint(path: str | Path, model: Recommender, *, variant: str, spec: ModelSpec,
                    params: Params, summary: dict[str, Any], user_ids: list[str],
                    item_ids: list[str]) -> None:
    """Write the model atomically as {"state_dict", "meta"}, loadable with weights_only=True.

    meta: variant, spec, config (model constructor arguments), train and lambdas (the params
    it was trained with), seed, epoch (the kept one), best_val_auc, history, user_ids
    (reviewer_id by user id) and item_ids (asin by item id)."""
    if len(user_ids) != model.n_users or len(item_ids) != model.n_items:
        raise StageError(
            f"the id maps have {len(user_ids)} users and {len(item_ids)} items but the model "
            f"has {model.n_users} and {model.n_items}; rerun the clean stage and retrain"
        )
    meta = {
        "variant": variant,
        "spec": {"name": spec.name, "views": spec.views},
        "config": model.config(),
        "train": dataclasses.asdict(params.train),
        "lambdas": dataclasses.asdict(Lambdas.from_params(params)),
        "seed": params.seed,
        "epoch": summary["best_epoch"],
        "best_val_auc": summary["best_val_auc"],
        "history": summary["history"],
        "user_ids": [str(u) for u in user_ids],
        "item_ids": [str(i) for i in item_ids],
    }
    state_dict = {key: value.detach().cpu() for key, value in model.state_dict().items()}
    with atomic_path(path, suffix=".pt") as tmp:
        torch.save({"state_dict": state_dict, "meta": meta}, tmp)
