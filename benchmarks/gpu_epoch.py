"""Time one Deep-MINE training epoch at Pantry scale on a GPU, with mixed precision off and on.

    python benchmarks/gpu_epoch.py                           # CUDA, scale 1.0, amp off and on
    python benchmarks/gpu_epoch.py --device cpu --scale 0.01 # runs anywhere, as a check

The split, triplets and item features are random arrays of the sizes the benchmark generator's
Pantry-scale data has after cleaning (233,246 users, 8,923 items, 379,041 training and 35,177
validation interactions), because the timing depends on the sizes, not on the values. The epoch
goes through deepmine.training.train_model, the code the train stage runs, so the time includes
the validation AUC after the epoch; both are reported.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from deepmine.data import SplitData  # noqa: E402
from deepmine.features import ItemFeatures  # noqa: E402
from deepmine.params import parse_params  # noqa: E402
from deepmine.training import train_model  # noqa: E402

log = logging.getLogger("gpu_epoch")

# Sizes after cleaning of `benchmarks/generate.py --scale 1.0` (reports/data.json of that run).
PANTRY_USERS = 233_246
PANTRY_ITEMS = 8_923
PANTRY_TRAIN = 379_041
PANTRY_HELD_OUT = 35_177  # validation interactions, one per user with at least 3


def random_split(scale: float, rng: np.random.Generator) -> SplitData:
    n_users = max(50, round(PANTRY_USERS * scale))
    n_items = max(300, round(PANTRY_ITEMS * scale))
    n_train = max(200, round(PANTRY_TRAIN * scale))
    n_held_out = max(10, min(n_users, round(PANTRY_HELD_OUT * scale)))
    train = np.stack([rng.integers(0, n_users, n_train), rng.integers(0, n_items, n_train)], axis=1)
    held_out_users = rng.choice(n_users, n_held_out, replace=False)
    validation_items = rng.integers(0, n_items, n_held_out)
    test_items = (validation_items + rng.integers(1, n_items, n_held_out)) % n_items
    validation = np.stack([held_out_users, validation_items], axis=1)
    test = np.stack([held_out_users, test_items], axis=1)
    # Evaluation requires held-out pairs that are not also training pairs.
    held_out_keys = np.concatenate([validation, test]) @ np.array([n_items, 1])
    train = train[~np.isin(train @ np.array([n_items, 1]), held_out_keys)]
    return SplitData(n_users=n_users, n_items=n_items, train=train, validation=validation, test=test)


def random_features(n_items: int, text_dim: int, rng: np.random.Generator) -> ItemFeatures:
    return ItemFeatures(
        images=torch.from_numpy(rng.integers(0, 256, (n_items, 40, 40, 3), dtype=np.uint8)),
        has_image=torch.from_numpy(rng.random(n_items) < 0.97),
        description=torch.from_numpy(rng.normal(size=(n_items, text_dim)).astype(np.float32)),
        has_description=torch.ones(n_items, dtype=torch.bool),
        review=torch.from_numpy(rng.normal(size=(n_items, text_dim)).astype(np.float32)),
        has_review=torch.from_numpy(rng.random(n_items) < 0.95),
    )


def time_epoch(split: SplitData, features: ItemFeatures, device: str, amp: bool, batch_size: int | None,
               seed: int) -> dict:
    raw = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    raw["train"].update(epochs=1, device=device, amp=amp)
    if batch_size:
        raw["train"]["batch_size"] = batch_size
    params = parse_params(raw)
    spec = params.model("deepmine")

    # NOTE: negatives are uniform over all items and may hit a user's positive. That changes the
    # values the model learns, not the work an epoch does.
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(split.train))
    triplets = np.stack([split.train[order, 0], split.train[order, 1],
                         rng.integers(0, split.n_items, len(order))], axis=1)[None].astype(np.int32)

    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
        torch.cuda.synchronize()
    started = time.perf_counter()
    _, summary = train_model("deepmine", spec, params, split, features, triplets, device=device)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    wall = time.perf_counter() - started
    rate = summary["triplets_per_second"]
    result = {
        "device": device, "amp": amp, "batch_size": params.train.batch_size,
        "encode_chunk": params.train.encode_chunk, "triplets_per_epoch": int(triplets.shape[1]),
        "triplets_per_second": rate,
        "train_seconds": triplets.shape[1] / rate if rate else None,
        "epoch_with_validation_seconds": wall,
        "val_auc": summary["best_val_auc"],
    }
    if device.startswith("cuda"):
        result["peak_gpu_memory_gib"] = torch.cuda.max_memory_allocated() / 1024 ** 3
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="sizes relative to cleaned Pantry-scale data")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                        help="torch device (default: cuda when present)")
    parser.add_argument("--amp", choices=("off", "on", "both"), default=None,
                        help="mixed precision (default: both on CUDA, off on CPU)")
    parser.add_argument("--batch-size", type=int, help="train.batch_size (default: params.yaml)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s",
                        stream=sys.stderr)
    on_cuda = args.device.startswith("cuda")
    if on_cuda and not torch.cuda.is_available():
        parser.error("--device cuda requested but torch sees no CUDA device; pass --device cpu")
    amp = args.amp or ("both" if on_cuda else "off")
    modes = {"off": [False], "on": [True], "both": [False, True]}[amp]

    rng = np.random.default_rng(args.seed)
    split = random_split(args.scale, rng)
    features = random_features(split.n_items, 32, rng)
    log.info("%d users, %d items, %d training triplets on %s", split.n_users, split.n_items,
             len(split.train), args.device)
    results = {"scale": args.scale, "torch": torch.__version__,
               "gpu": torch.cuda.get_device_name(0) if on_cuda else None,
               "runs": [time_epoch(split, features, args.device, mode, args.batch_size, args.seed) for mode in modes]}
    for run in results["runs"]:
        print(f"deepmine epoch on {run['device']} (amp {'on' if run['amp'] else 'off'}): "
              f"{run['triplets_per_second']:,.0f} triplets/s, {run['train_seconds']:.1f} s training, "
              f"{run['epoch_with_validation_seconds']:.1f} s with validation")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
