"""The evaluation driver, the results report and the compare stage on small hand-built splits."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from deepmine.data import SplitData
from deepmine.evaluation import (
    EvaluationInputError, evaluate_model, evaluate_split, json_metrics, load_eval_negatives,
    validation_auc,
)
from deepmine.params import EvaluateParams, ModelSpec
from deepmine.report import comparison_plot, load_variant_metrics, results_table

REPO = Path(__file__).resolve().parents[1]

# Four users, six items. User 2 has no training item. Items 4 and 5 have no training interaction;
# items 2 and 3 have one, so with cold_max_train=1 the cold items are 2, 3, 4 and 5.
SPLIT = SplitData(
    n_users=4,
    n_items=6,
    train=np.array([[0, 0], [0, 1], [1, 0], [1, 2], [3, 1], [3, 3]]),
    validation=np.array([[0, 2], [1, 3], [2, 4], [3, 0]]),
    test=np.array([[0, 5], [1, 1], [2, 0], [3, 2]]),
)
SCORES = torch.tensor([
    [0.9, 0.1, 0.5, 0.4, 0.2, 0.4],
    [0.8, 0.6, 0.2, 0.7, 0.1, 0.05],
    [0.5, 0.5, 0.9, 0.1, 0.3, 0.2],
    [0.0, 0.9, 0.3, 0.8, 0.3, 0.7],
])
# Test cases by hand (t: held-out item; candidates: items the user never interacted with):
#   user 0, t=5 (cold, 0.4): candidates 3 (tie), 4 (below): AUC 1/2. Ranked items 3, 4: item 3
#           ties with a smaller id, rank 1.
#   user 1, t=1 (warm, 0.6): candidates 4, 5 both below: AUC 1. Ranked 4, 5: rank 0.
#   user 2, t=0 (warm, 0.5): candidates 1 (tie), 2 (above), 3, 5 (below): AUC 2/4. Ranked 1, 2,
#           3, 5 (item 4 is its validation item): item 2 above, item 1 ties with a larger id, rank 1.
#   user 3, t=2 (cold, 0.3): candidates 4 (tie), 5 (above): AUC 0. Ranked 4, 5: rank 1.
TEST_AUC = (0.5 + 1.0 + 0.5 + 0.0) / 4
TEST_COLD_AUC = (0.5 + 0.0) / 2
TEST_RANKS = [1, 0, 1, 1]
# Validation cases: user 0, t=2: AUC 1, rank 0; user 1, t=3: AUC 1, rank 0; user 2, t=4: AUC 2/4,
# rank 2; user 3, t=0: AUC 0, rank 2.
VALIDATION_AUC = (1.0 + 1.0 + 0.5 + 0.0) / 4
# Fixed negatives; user 2 has only padding and is skipped. User 0 ranks its target 1 (item 3
# ties before it), user 1 ranks it 0, user 3 ranks it 1 (item 5 above).
NEGATIVES = (np.array([0, 1, 2, 3]), np.array([[3, 4, -1], [4, -1, -1], [-1, -1, -1], [5, 4, -1]]))


def score_table(scores):
    def score_fn(users):
        return scores[torch.as_tensor(users)].clone()
    return score_fn


def evaluate(which="test", scores=SCORES, split=SPLIT, negatives=NEGATIVES, chunk_users=2, ks=(1, 2)):
    return evaluate_split(score_table(scores), split, which, ks=ks, hr_k=1, negatives=negatives,
                          cold_max_train=1, chunk_users=chunk_users)


def test_evaluate_split_test_hand_values():
    result = evaluate()

    assert list(result) == ["users", "auc", "auc_skipped_users", "cold_auc", "cold_cases",
                            "recall@1", "ndcg@1", "recall@2", "ndcg@2", "hr@1_sampled", "hr_skipped_users"]
    assert result["users"] == 4
    assert result["auc"] == TEST_AUC
    assert result["auc_skipped_users"] == 0
    assert result["cold_auc"] == TEST_COLD_AUC
    assert result["cold_cases"] == 2
    assert result["recall@1"] == 0.25
    assert result["ndcg@1"] == 0.25
    assert result["recall@2"] == 1.0
    assert result["ndcg@2"] == pytest.approx((1.0 + 3 / math.log2(3)) / 4, abs=1e-15)
    assert result["hr@1_sampled"] == pytest.approx(1 / 3, abs=1e-15)
    assert result["hr_skipped_users"] == 1


def test_evaluate_split_validation_hand_values():
    result = evaluate("validation")

    assert result["auc"] == VALIDATION_AUC
    assert result["recall@1"] == 0.5
    assert result["recall@2"] == 0.5
    assert result["ndcg@2"] == 0.5


def test_user_without_training_items_is_evaluated():
    split = SplitData(n_users=1, n_items=4, train=np.zeros((0, 2), np.int64),
                      validation=np.array([[0, 3]]), test=np.array([[0, 1]]))
    scores = torch.tensor([[0.1, 0.5, 0.7, 0.2]])

    result = evaluate(scores=scores, split=split, negatives=None)

    # Candidates 0 (below) and 2 (above): AUC 1/2. Ranked items 0, 2: rank 1.
    assert result["users"] == 1
    assert result["auc"] == 0.5
    assert result["recall@1"] == 0.0
    assert result["recall@2"] == 1.0
    # Validation item 3 (0.2): candidate 0 below, candidate 2 above.
    assert validation_auc(score_table(scores), split, chunk_users=4) == 0.5


def test_cold_item_without_training_is_a_candidate():
    # Item 4 has no training interaction. Raising its score for user 1 above the held-out item
    # must lower that user's AUC from 1 to 1/2, so it is scored and kept as a candidate.
    scores = SCORES.clone()
    scores[1, 4] = 0.95

    result = evaluate(scores=scores)

    assert result["auc"] == (0.5 + 0.5 + 0.5 + 0.0) / 4
    assert result["users"] == 4


def test_cold_cases_include_items_without_training():
    # Test item 5 of user 0 has no training interaction; item 2 of user 3 has one.
    assert evaluate()["cold_cases"] == 2
    result = evaluate_split(score_table(SCORES), SPLIT, "test", ks=[1], hr_k=1, negatives=None,
                            cold_max_train=0, chunk_users=4)
    assert result["cold_cases"] == 1
    assert result["cold_auc"] == 0.5


def test_no_cold_case_gives_nan_and_null():
    # The only test item, 1, has one training interaction (by user 1), above cold_max_train=0.
    split = SplitData(n_users=2, n_items=3, train=np.array([[0, 0], [1, 1], [1, 2]]),
                      validation=np.array([[0, 2]]), test=np.array([[0, 1]]))
    result = evaluate_split(score_table(SCORES[:2, :3]), split, "test", ks=[1], hr_k=1, negatives=None,
                            cold_max_train=0, chunk_users=4)
    assert result["cold_cases"] == 0
    assert math.isnan(result["cold_auc"])
    assert json_metrics(result)["cold_auc"] is None


def test_chunk_size_does_not_change_metrics():
    rng = np.random.default_rng(5)
    n_users, n_items = 40, 30
    items = np.stack([rng.choice(n_items, 4, replace=False) for _ in range(n_users)])
    users = np.arange(n_users)
    split = SplitData(n_users, n_items,
                      train=np.stack([np.repeat(users, 2), items[:, :2].ravel()], 1),
                      validation=np.stack([users, items[:, 2]], 1),
                      test=np.stack([users, items[:, 3]], 1))
    negatives = np.full((n_users, 8), -1)
    for u in users:
        free = np.setdiff1d(np.arange(n_items), items[u])
        negatives[u, : 4 + u % 5] = rng.choice(free, 4 + u % 5, replace=False)
    # Integer scores tie often, so both tie-counting paths of rank_counts run.
    scores = torch.from_numpy(rng.integers(0, 4, (n_users, n_items))).float()

    results = [
        evaluate_split(score_table(scores), split, "test", ks=[1, 5, 10], hr_k=3, negatives=(users, negatives),
                       cold_max_train=1, chunk_users=chunk)
        for chunk in (1, 7, 1000)
    ]

    assert results[0] == results[1] == results[2]
    assert validation_auc(score_table(scores), split, chunk_users=1) == \
        validation_auc(score_table(scores), split, chunk_users=1000)


def test_validation_auc_on_user_subset():
    assert validation_auc(score_table(SCORES), SPLIT, chunk_users=3) == VALIDATION_AUC
    assert validation_auc(score_table(SCORES), SPLIT, chunk_users=3, users=np.array([2, 0])) == 0.75


def test_validation_auc_rejects_user_without_validation_item():
    with pytest.raises(EvaluationInputError, match="user 9 has no validation interaction"):
        validation_auc(score_table(SCORES), SPLIT, chunk_users=3, users=np.array([0, 9]))


def test_non_finite_scores_are_rejected():
    scores = SCORES.clone()
    scores[2, 3] = float("nan")
    with pytest.raises(EvaluationInputError, match="scored user 2 with NaN or infinite values"):
        evaluate(scores=scores)


def test_second_held_out_item_is_rejected():
    split = SplitData(SPLIT.n_users, SPLIT.n_items, SPLIT.train, SPLIT.validation,
                      np.concatenate([SPLIT.test, [[1, 4]]]))
    with pytest.raises(EvaluationInputError, match="user 1 has more than one test interaction"):
        evaluate(split=split)


def test_negatives_missing_a_user_are_rejected():
    negatives = (np.array([0, 1, 3]), NEGATIVES[1][[0, 1, 3]])
    with pytest.raises(EvaluationInputError, match="test user 2 has no row in the evaluation negatives"):
        evaluate(negatives=negatives)


def test_negative_among_user_items_is_rejected():
    bad = NEGATIVES[1].copy()
    bad[1, 1] = 2  # item 2 is a training item of user 1
    with pytest.raises(EvaluationInputError, match="negative item 2 of user 1 is one of the user's"):
        evaluate(negatives=(NEGATIVES[0], bad))


def test_load_eval_negatives_checks_file(tmp_path):
    path = tmp_path / "eval_negatives.npz"
    np.savez(path, users=np.array([0, 2]), negatives=np.array([[1, -1], [3, 0]], dtype=np.int32))
    users, negatives = load_eval_negatives(path, n_items=4)
    assert users.dtype == np.int64
    assert users.tolist() == [0, 2]
    assert negatives.dtype == np.int64
    assert negatives.tolist() == [[1, -1], [3, 0]]

    with pytest.raises(EvaluationInputError, match="negative item 7 is outside 0..3"):
        np.savez(path, users=np.array([0]), negatives=np.array([[7]]))
        load_eval_negatives(path, n_items=4)
    with pytest.raises(EvaluationInputError, match="array 'negatives' is missing"):
        np.savez(path, users=np.array([0]))
        load_eval_negatives(path, n_items=4)
    with pytest.raises(FileNotFoundError, match="run the triplets stage"):
        load_eval_negatives(tmp_path / "absent.npz", n_items=4)


def test_evaluate_model_writes_both_splits():
    config = EvaluateParams(ks=[1, 2], hr_k=1, cold_max_train=0, chunk_users=2)

    results = evaluate_model(score_table(SCORES), SPLIT, NEGATIVES, config)

    assert list(results) == ["test", "validation"]
    assert results["test"]["auc"] == TEST_AUC
    assert results["validation"]["auc"] == VALIDATION_AUC
    # With cold_max_train=0 the cold cases are user 0 in test (item 5) and user 2 in validation
    # (item 4), each with AUC 1/2.
    assert results["test"]["cold_auc"] == 0.5
    assert results["validation"]["cold_auc"] == 0.5


# Results report -------------------------------------------------------------------------------

SPECS = {"bpr": ModelSpec("bpr", ""), "deepmine_image": ModelSpec("deepmine", "image")}
REPORT_METRICS = {
    "bpr": {
        "test": {"users": 10, "auc": 0.71234, "auc_skipped_users": 0, "cold_auc": 0.6, "cold_cases": 4,
                 "recall@10": 0.1, "ndcg@10": 0.05, "recall@20": 0.2, "ndcg@20": 0.0812345,
                 "hr@10_sampled": 0.5, "hr_skipped_users": 0},
        "validation": {"auc": 0.70005},
    },
    "deepmine_image": {
        "test": {"users": 10, "auc": 0.8, "auc_skipped_users": 0, "cold_auc": None, "cold_cases": 0,
                 "recall@10": 0.3, "ndcg@10": 0.15, "recall@20": 0.4, "ndcg@20": 0.2,
                 "hr@10_sampled": 0.9, "hr_skipped_users": 0},
        "validation": {"auc": 0.79996},
    },
}


def test_results_table_text():
    assert results_table(SPECS, REPORT_METRICS) == (
        "| variant | model | views | test AUC | cold AUC (cases) | Recall@10 | Recall@20 | NDCG@10 | "
        "NDCG@20 | HR@10 sampled | validation AUC |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|\n"
        "| bpr | bpr | - | 0.7123 | 0.6000 (4) | 0.1000 | 0.2000 | 0.0500 | 0.0812 | 0.5000 | 0.7000 |\n"
        "| deepmine_image | deepmine | image | 0.8000 | n/a (0) | 0.3000 | 0.4000 | 0.1500 | 0.2000 | "
        "0.9000 | 0.8000 |\n"
    )


def test_comparison_plot_is_png(tmp_path):
    path = tmp_path / "reports" / "comparison.png"
    comparison_plot(REPORT_METRICS, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in path.parent.iterdir()] == ["comparison.png"]


def test_load_variant_metrics_names_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"absent\.json not found; .*dvc repro evaluate@absent"):
        load_variant_metrics(["absent"], metrics_path=lambda v: tmp_path / f"{v}.json")


def _run_compare(workdir):
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    return subprocess.run([sys.executable, str(REPO / "stages" / "compare.py")], cwd=workdir, env=env,
                          capture_output=True, text=True, timeout=120)


def test_compare_stage_writes_table_and_plot(tmp_path):
    (tmp_path / "params.yaml").write_text(
        "models:\n  bpr: {name: bpr, views: ''}\n  deepmine_image: {name: deepmine, views: image}\n"
    )
    (tmp_path / "metrics").mkdir()
    for variant, metrics in REPORT_METRICS.items():
        (tmp_path / "metrics" / f"{variant}.json").write_text(json.dumps(metrics))

    completed = _run_compare(tmp_path)

    assert completed.returncode == 0, completed.stderr
    markdown = (tmp_path / "reports" / "results.md").read_text()
    assert markdown.endswith(results_table(SPECS, REPORT_METRICS))
    assert (tmp_path / "reports" / "comparison.png").read_bytes()[:4] == b"\x89PNG"


def test_compare_stage_missing_metrics_exits_with_message(tmp_path):
    (tmp_path / "params.yaml").write_text("models:\n  bpr: {name: bpr, views: ''}\n")

    completed = _run_compare(tmp_path)

    assert completed.returncode == 1
    assert "metrics/bpr.json not found" in completed.stderr
    assert "Traceback" not in completed.stderr
    assert not (tmp_path / "reports").exists()


# Evaluate stage --------------------------------------------------------------------------------

EVALUATE_PARAMS = """\
train: {device: cpu}
evaluate: {ks: [1, 2], hr_k: 1, cold_max_train: 1, chunk_users: 3}
models:
  pop: {name: pop, views: ''}
"""


def _write_clean_split(root):
    """Write SPLIT as the clean stage's Parquet tables under root/data/clean."""
    import pandas as pd

    clean = root / "data" / "clean"
    clean.mkdir(parents=True)
    rows = [(u, i, 1000 + n, f"review {n}", name) for name in ("train", "validation", "test")
            for n, (u, i) in enumerate(getattr(SPLIT, name))]
    interactions = pd.DataFrame(rows, columns=["user", "item", "timestamp", "review_text", "split"])
    interactions = interactions.astype({"user": "int32", "item": "int32", "timestamp": "int64"})
    interactions.to_parquet(clean / "interactions.parquet", index=False)
    pd.DataFrame({"item": np.arange(SPLIT.n_items, dtype=np.int32),
                  "asin": [f"B{i:09d}" for i in range(SPLIT.n_items)]}).to_parquet(clean / "items.parquet", index=False)
    pd.DataFrame({"user": np.arange(SPLIT.n_users, dtype=np.int32),
                  "reviewer_id": [f"U{u}" for u in range(SPLIT.n_users)]}).to_parquet(clean / "users.parquet", index=False)


def _write_pop_project(root):
    """Write params.yaml, the clean split and a popularity checkpoint under root."""
    from deepmine.models import build_model
    from deepmine.params import parse_params
    from deepmine.training import save_checkpoint

    (root / "params.yaml").write_text(EVALUATE_PARAMS)
    _write_clean_split(root)
    params = parse_params({"models": {"pop": {"name": "pop", "views": ""}}})
    spec = params.model("pop")
    model = build_model(spec, params, SPLIT.n_users, SPLIT.n_items, SPLIT.item_train_counts, None)
    save_checkpoint(root / "models" / "pop" / "model.pt", model, variant="pop", spec=spec, params=params,
                    summary={"best_epoch": 0, "best_val_auc": None, "history": []},
                    user_ids=[f"U{u}" for u in range(4)], item_ids=[f"B{i:09d}" for i in range(6)])


def _run_evaluate(root, variant):
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    return subprocess.run([sys.executable, str(REPO / "stages" / "evaluate.py"), variant], cwd=root,
                          env=env, capture_output=True, text=True, timeout=300)


def test_evaluate_stage_popularity_hand_values(tmp_path):
    _write_pop_project(tmp_path)
    (tmp_path / "data" / "triplets").mkdir()
    np.savez(tmp_path / "data" / "triplets" / "eval_negatives.npz", users=NEGATIVES[0], negatives=NEGATIVES[1])
    completed = _run_evaluate(tmp_path, "pop")

    assert completed.returncode == 0, completed.stderr
    # Every user scores the items by training count: [2, 2, 1, 1, 0, 0]. Test cases: user 0,
    # t=5: AUC 0 (item 3 above, item 4 ties), rank 2 (item 4 ties with a smaller id); user 1, t=1:
    # AUC 1, rank 0; user 2, t=0: AUC 3/4 (item 1 ties), rank 0; user 3, t=2: AUC 1, rank 0.
    # Sampled: user 0 ranks its target 2 (miss), users 1 and 3 rank it 0, user 2 is skipped.
    metrics = json.loads((tmp_path / "metrics" / "pop.json").read_text())
    assert metrics["test"] == {
        "users": 4, "auc": 0.6875, "auc_skipped_users": 0, "cold_auc": 0.5, "cold_cases": 2,
        "recall@1": 0.75, "ndcg@1": 0.75, "recall@2": 0.75, "ndcg@2": 0.75,
        "hr@1_sampled": pytest.approx(2 / 3, abs=1e-15), "hr_skipped_users": 1,
    }
    # Validation: user 0, t=2: AUC 1/2; user 1, t=3: 1; user 2, t=4: 0 and rank 3; user 3, t=0: 1.
    assert metrics["validation"]["auc"] == 0.625
    assert metrics["validation"]["recall@2"] == 0.75
    assert metrics["validation"]["hr@1_sampled"] == 1.0
    assert "pop: 4 test users, test AUC 0.6875" in completed.stderr


def test_evaluate_stage_missing_negatives_exits_with_message(tmp_path):
    _write_pop_project(tmp_path)
    completed = _run_evaluate(tmp_path, "pop")

    assert completed.returncode == 1
    assert "data/triplets/eval_negatives.npz not found" in completed.stderr
    assert "Traceback" not in completed.stderr
    assert not (tmp_path / "metrics").exists()
