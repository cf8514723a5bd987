"""The benchmark at a small scale: generator counts and the runner's measurements of every stage."""

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from generate import counts_for_scale, generate  # noqa: E402
from run import (  # noqa: E402
    WORKDIR_MARKER, BenchmarkError, markdown_table, plan_steps, prepare_workdir, select_steps,
    train_throughput_from_log,
)

# 2,358 review lines over 300 products: the smallest catalogue the generator writes.
SCALE = 0.005
STAGES = ["ingest", "ingest_naive_baseline", "clean", "images", "images_rerun", "embed", "embed_rerun",
          "triplets", "train@pop", "train@bpr", "train@vbpr", "train@deepmine",
          "evaluate@pop", "evaluate@bpr", "evaluate@vbpr", "evaluate@deepmine"]


def test_generator_sizes_at_pantry_scale():
    sizes = counts_for_scale(1.0)
    assert sizes == {"reviews": 471_614, "products": 10_812, "users": 236_741,
                     "products_with_description_and_image": 8_941, "meta_duplicate_rows": 1}


def test_generator_writes_planted_counts(tmp_path):
    manifest = generate(tmp_path, scale=SCALE, seed=1, image_base_url="http://127.0.0.1:9")
    counts = manifest["counts"]
    with gzip.open(tmp_path / "Prime_Pantry.json.gz", "rt", encoding="utf-8") as f:
        review_lines = f.read().splitlines()
    with gzip.open(tmp_path / "meta_Prime_Pantry.json.gz", "rt", encoding="utf-8") as f:
        meta_lines = f.read().splitlines()

    assert len(review_lines) == counts["review_lines"] == 2_358
    assert counts["meta_lines"] == len(meta_lines) == 301
    assert counts["meta_products"] == 300
    assert counts["products_with_description_and_image"] == 248
    assert counts["reviewers"] == 1_184
    assert len(set(review_lines)) == len(review_lines) - counts["review_exact_duplicate_lines"]
    parsed = []
    for line in review_lines:
        try:
            parsed.append(json.loads(line))
        except json.JSONDecodeError:
            pass
    assert len(parsed) == counts["review_rows"] + counts["review_exact_duplicate_lines"]
    assert {"overall", "verified", "reviewTime", "reviewerID", "asin", "reviewerName",
            "unixReviewTime"} <= set(parsed[0])
    images = sorted(p.name for p in (tmp_path / "img").iterdir())
    assert len(images) == counts["image_files_ok"] + counts["image_files_broken"]


def test_generator_same_seed_same_files(tmp_path):
    generate(tmp_path / "a", scale=SCALE, seed=4)
    generate(tmp_path / "b", scale=SCALE, seed=4)
    for name in ("Prime_Pantry.json.gz", "meta_Prime_Pantry.json.gz"):
        with gzip.open(tmp_path / "a" / name) as a, gzip.open(tmp_path / "b" / name) as b:
            assert a.read() == b.read()


def test_train_log_parsed_and_extrapolated():
    log_text = (
        "2026-12-04 21:39:40,001 deepmine.training INFO deepmine epoch 0: 12288 triplets in 303.6 s "
        "(40 triplets/s), 12927 item encodings (encoding both items of every triplet: 24576)\n"
        "2026-12-04 21:39:48,469 deepmine.training INFO deepmine: kept epoch 0 (validation AUC 0.5); "
        "40 triplets/s in training\n"
    )
    rate, unit, counts = train_throughput_from_log(log_text, 379_041, 333.2)
    assert rate == 40.0
    assert unit == "triplets/s"
    assert counts == {
        "triplets_per_epoch": 379_041, "trained_triplets": 12_288, "train_seconds": 303.6,
        "item_encodings": 12_927, "naive_item_encodings": 24_576, "extrapolated": True,
        "seconds_per_epoch": 9476.02, "item_encodings_per_epoch": 398_752,
        "naive_item_encodings_per_epoch": 758_082,
    }


def test_full_epoch_not_marked_extrapolated():
    log_text = ("bpr epoch 0: 1000 triplets in 2.0 s (500 triplets/s), 700 item encodings "
                "(encoding both items of every triplet: 2000)\nbpr: kept epoch 0; 500 triplets/s in training\n")
    _, _, counts = train_throughput_from_log(log_text, 1000, 3.0)
    assert counts["extrapolated"] is False
    assert counts["seconds_per_epoch"] == 2.0
    assert counts["item_encodings_per_epoch"] == 700


def test_deepmine_alone_gets_max_batches_and_its_settings():
    steps = {step.name: step for step in plan_steps("python", [], ["bpr", "deepmine"], deepmine_batches=3,
                                                    deepmine_train={"batch_size": 65536, "amp": True})}
    assert steps["train@deepmine"].train == {"epochs": 1, "max_batches": 3, "batch_size": 65536, "amp": True}
    assert steps["train@bpr"].train == {"epochs": 1, "max_batches": 0}
    assert steps["train@deepmine"].needs == ["triplets", "images", "embed"]


def test_random_text_features_replace_embed():
    steps = {step.name: step for step in plan_steps("python", [], ["vbpr"], text_features="random")}
    assert "embed" not in steps
    assert "embed_rerun" not in steps
    assert steps["embed_standin"].needs == ["clean"]
    assert steps["train@vbpr"].needs == ["triplets", "images", "embed_standin"]


def test_stage_group_selects_siblings():
    steps = plan_steps("python", [], ["bpr"])
    chosen = [step.name for step in select_steps(steps, ["ingest", "clean", "images"])]
    assert chosen == ["ingest", "ingest_naive_baseline", "clean", "images", "images_rerun"]
    assert select_steps(steps, None) == steps


def test_unknown_stage_named_with_accepted():
    steps = plan_steps("python", [], ["bpr"])
    with pytest.raises(BenchmarkError, match=r"unknown step ingset; accepted: ingest ingest_naive_baseline clean"):
        select_steps(steps, ["ingset"])


def test_embed_stage_hint_with_random_features():
    steps = plan_steps("python", [], ["bpr"], text_features="random")
    with pytest.raises(BenchmarkError, match=r"unknown step embed \(with --text-features random, embed_standin"):
        select_steps(steps, ["ingest", "clean", "embed"])


def test_stage_without_prerequisites_rejected():
    steps = plan_steps("python", [], ["bpr"])
    with pytest.raises(BenchmarkError, match=r"train@bpr needs images, embed, triplets to run before it"):
        select_steps(steps, ["ingest", "clean", "train@bpr"])
    with pytest.raises(BenchmarkError, match=r"clean needs ingest"):
        select_steps(steps, ["clean", "embed"])


def test_workdir_with_other_files_kept(tmp_path):
    (tmp_path / "stages").mkdir()
    (tmp_path / "stages" / "mine.py").write_text("x = 1\n")

    not_prepared = rf"not empty and was not prepared by benchmarks/run.py \(no {WORKDIR_MARKER}"
    with pytest.raises(BenchmarkError, match=not_prepared):
        prepare_workdir(tmp_path)
    assert (tmp_path / "stages" / "mine.py").read_text() == "x = 1\n"
    with pytest.raises(BenchmarkError, match="is this repository or a folder above it"):
        prepare_workdir(ROOT)
    with pytest.raises(BenchmarkError, match="is this repository or a folder above it"):
        prepare_workdir(ROOT.parent)


def test_prepared_workdir_is_reused(tmp_path):
    workdir = tmp_path / "bench"
    prepare_workdir(workdir)
    (workdir / "data").mkdir()
    (workdir / "data" / "old.npy").write_bytes(b"old")
    prepare_workdir(workdir)

    assert (workdir / WORKDIR_MARKER).exists()
    assert (workdir / "stages" / "ingest.py").exists()
    assert not (workdir / "data").exists()


def test_runner_rejects_repository_as_workdir():
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run.py"), "--scale", "0.005",
                          "--workdir", str(ROOT), "--stages", "ingest"],
                         capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert run.returncode == 2
    assert "is this repository or a folder above it" in run.stderr
    assert "Traceback" not in run.stderr
    assert (ROOT / "stages" / "ingest.py").exists()


def test_item_encodings_shown_for_deepmine_only():
    counts = {"seconds_per_epoch": 0.4, "extrapolated": False, "item_encodings": 246,
              "trained_triplets": 3529, "naive_item_encodings": 7058}
    step = {"status": "ok", "wall_s": 1.0, "cpu_s": 1.0, "peak_rss_bytes": 2 ** 20, "throughput": 8822.5,
            "unit": "triplets/s", "met": None, "target": ""}
    table = markdown_table({"train@bpr": {**step, "counts": counts}, "train@deepmine": {**step, "counts": counts}})
    bpr, deepmine = table.splitlines()[2:]

    assert "| 8,822 triplets/s (0.4 s/epoch) |" in bpr
    assert "item encodings" not in bpr
    assert "(0.4 s/epoch); 246 item encodings for 3,529 triplets (naive 7,058) |" in deepmine


@pytest.mark.slow
def test_runner_measures_every_stage(tmp_path):
    results_path = tmp_path / "results.json"
    run = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--scale", str(SCALE),
         "--workdir", str(tmp_path / "work"), "--results", str(results_path), "--image-workers", "4"],
        capture_output=True, text=True, timeout=900,
    )
    assert run.returncode == 0, run.stdout + run.stderr[-4000:]
    results = json.loads(results_path.read_text())
    steps = results["steps"]
    generated = results["generated"]

    assert list(steps) == STAGES
    assert len(steps["ingest"]["wall_s_runs"]) == 3
    assert steps["ingest"]["wall_s"] == sorted(steps["ingest"]["wall_s_runs"])[1]
    for name, step in steps.items():
        assert step["status"] == "ok", name
        assert step["wall_s"] > 0, name
        assert step["cpu_s"] > 0, name
        assert step["peak_rss_bytes"] > 0, name
        assert step["met"] is None, name  # targets are judged at Pantry scale only

    ingest = steps["ingest"]["counts"]
    assert ingest["reviews_lines_read"] == generated["review_lines"]
    assert ingest["meta_lines_read"] == generated["meta_lines"]
    assert ingest["reviews_rejected_total"] == generated["review_broken_lines"]
    assert ingest["meta_rejected_total"] == generated["meta_broken_lines"]
    assert steps["ingest_naive_baseline"]["counts"]["lines_read"] == generated["review_lines"] + generated["meta_lines"]
    assert steps["clean"]["counts"]["reviews_in"] == ingest["reviews_rows_written"]

    images = steps["images"]["counts"]
    rerun = steps["images_rerun"]["counts"]
    assert images["ok"] > 0
    assert rerun["downloaded"] == 0
    assert rerun["ok"] == images["ok"]
    assert steps["embed"]["counts"]["encoded_now"] > 0
    assert steps["embed_rerun"]["counts"]["encoded_now"] == 0

    triplets = steps["triplets"]["counts"]
    assert triplets["epochs"] == 10
    for model in ("bpr", "vbpr", "deepmine"):
        train = steps[f"train@{model}"]
        assert train["throughput"] > 0, model
        assert train["counts"]["triplets_per_epoch"] == triplets["triplets_per_epoch"]
    assert steps["evaluate@bpr"]["counts"]["test_users"] == steps["clean"]["counts"]["test"]
    assert "| ingest |" in results["table"]
