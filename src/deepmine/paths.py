"""Artifact paths shared by the stage scripts; dvc.yaml names the same files."""

from pathlib import Path

RAW_REPORT = Path("reports/download.json")

INGEST_DIR = Path("data/interim")
REVIEWS = INGEST_DIR / "reviews.parquet"
PRODUCTS = INGEST_DIR / "products.parquet"
INGEST_REPORT = Path("reports/ingest.json")

CLEAN_DIR = Path("data/clean")
INTERACTIONS = CLEAN_DIR / "interactions.parquet"
ITEMS = CLEAN_DIR / "items.parquet"
USERS = CLEAN_DIR / "users.parquet"
DATA_REPORT = Path("reports/data.json")

IMAGES_DIR = Path("data/images")
IMAGES = IMAGES_DIR / "images.npy"
HAS_IMAGE = IMAGES_DIR / "has_image.npy"
IMAGE_STATUS = IMAGES_DIR / "status.parquet"
IMAGES_REPORT = Path("reports/images.json")

TEXT_DIR = Path("data/text")
TEXT_FEATURES = TEXT_DIR / "features.npz"
EMBED_REPORT = Path("reports/embed.json")

TRIPLETS_DIR = Path("data/triplets")
TRAIN_TRIPLETS = TRIPLETS_DIR / "train.npy"
EVAL_NEGATIVES = TRIPLETS_DIR / "eval_negatives.npz"
TRIPLETS_REPORT = Path("reports/triplets.json")


def checkpoint(variant: str) -> Path:
    return Path("models") / variant / "model.pt"


def dvclive_dir(variant: str) -> Path:
    return Path("dvclive") / variant


def metrics(variant: str) -> Path:
    return Path("metrics") / f"{variant}.json"


RESULTS_TABLE = Path("reports/results.md")
RESULTS_PLOT = Path("reports/comparison.png")
