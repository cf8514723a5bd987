"""End to end: `dvc repro`, `dvc exp run` and `dvc metrics diff` on a generated dataset in a
temporary git repository, with images served by a local HTTP server on 127.0.0.1."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from deepmine.synthetic import serve_folder, write_dataset

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def run(cmd, cwd, env, check=True):
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture(scope="module")
def pipeline_repo(tmp_path_factory):
    repo = tmp_path_factory.mktemp("repo")
    for name in ("dvc.yaml", "params.yaml", ".gitignore", ".dvcignore", "pyproject.toml"):
        shutil.copy(ROOT / name, repo / name)
    for folder in ("stages", "src"):
        shutil.copytree(ROOT / folder, repo / folder, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))

    env = dict(os.environ)
    env.update({
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}",
        "DVC_NO_ANALYTICS": "1", "GIT_AUTHOR_NAME": "test", "GIT_AUTHOR_EMAIL": "test@example.com",
        "GIT_COMMITTER_NAME": "test", "GIT_COMMITTER_EMAIL": "test@example.com",
    })
    raw = repo / "data" / "raw"
    (raw / "images").mkdir(parents=True)
    with serve_folder(raw / "images") as base_url:
        files = write_dataset(raw, n_users=60, n_items=40, image_base_url=base_url, seed=3)

        params = yaml.safe_load((repo / "params.yaml").read_text())
        params["data"].update(reviews=str(files["reviews"].relative_to(repo)), meta=str(files["meta"].relative_to(repo)))
        params["images"].update(workers=4, cache_dir="data/cache/images")
        params["text"].update(dim=8)
        params["train"].update(epochs=3, batch_size=128)
        params["models"] = {k: params["models"][k] for k in ("pop", "bpr", "vbpr", "deepmine")}
        (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))

        run(["git", "init", "-q"], repo, env)
        run(["dvc", "init", "-q"], repo, env)
        run(["dvc", "config", "core.analytics", "false"], repo, env)
        run(["git", "add", "-A"], repo, env)
        run(["git", "commit", "-qm", "pipeline"], repo, env)
        run(["dvc", "repro"], repo, env)
        yield repo, env


def test_repro_writes_metrics_for_every_model(pipeline_repo):
    repo, env = pipeline_repo
    data = json.loads((repo / "reports" / "data.json").read_text())
    assert data["users"] == 60
    assert data["items"] == 40
    assert data["validation"] == 60
    assert data["test"] == 60
    images = json.loads((repo / "reports" / "images.json").read_text())
    assert images["ok"] == 40
    for variant in ("pop", "bpr", "vbpr", "deepmine"):
        metrics = json.loads((repo / "metrics" / f"{variant}.json").read_text())
        assert metrics["test"]["users"] == 60
        assert 0.0 <= metrics["test"]["auc"] <= 1.0
    shown = json.loads(run(["dvc", "metrics", "show", "--json"], repo, env).stdout)
    shown_files = {f for entry in shown.values() for f in entry["data"]}
    assert {"metrics/pop.json", "metrics/deepmine.json", "reports/data.json"} <= shown_files
    assert (repo / "reports" / "results.md").read_text().count("\n| deepmine | deepmine |") == 1


def test_rerun_with_same_seed_gives_identical_metrics(pipeline_repo):
    repo, env = pipeline_repo
    before = {v: (repo / "metrics" / f"{v}.json").read_bytes() for v in ("bpr", "deepmine")}
    for variant in ("bpr", "deepmine"):
        run(["dvc", "repro", "--force", "--single-item", f"train@{variant}"], repo, env)
        run(["dvc", "repro", "--force", "--single-item", f"evaluate@{variant}"], repo, env)
    after = {v: (repo / "metrics" / f"{v}.json").read_bytes() for v in ("bpr", "deepmine")}
    assert after == before


def test_exp_run_changes_metrics_and_rejects_unknown_key(pipeline_repo):
    repo, env = pipeline_repo
    run(["git", "add", "-A"], repo, env)
    run(["git", "commit", "-qm", "baseline results"], repo, env)

    run(["dvc", "exp", "run", "-S", "lambda_theta=0.05"], repo, env)
    diff = json.loads(run(["dvc", "metrics", "diff", "--json"], repo, env).stdout)
    changed = {(path, key) for path, values in diff.items() for key in values}
    assert ("metrics/bpr.json", "test.auc") in changed or ("metrics/bpr.json", "validation.auc") in changed
    assert not any(path == "metrics/pop.json" for path, _ in changed)

    typo = run(["dvc", "exp", "run", "-S", "lambda_thetaa=0.05"], repo, env, check=False)
    assert typo.returncode != 0
    assert "lambda_thetaa" in typo.stdout + typo.stderr

    added = run(["dvc", "exp", "run", "-S", "+lambda_thetaa=0.05"], repo, env, check=False)
    assert added.returncode != 0
    assert "unknown key `lambda_thetaa`" in added.stdout + added.stderr
