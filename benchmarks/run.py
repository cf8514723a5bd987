"""Run the pipeline stage by stage on a generated category and measure every stage.

    python benchmarks/run.py --scale 1.0 --workdir /tmp/bench

The runner starts an image server on 127.0.0.1 (a free port), generates the data with
benchmarks/generate.py into WORKDIR/raw, writes WORKDIR/params.yaml pointing at it and runs each
stage script (`python stages/<stage>.py [variant]`) in WORKDIR as a child process. For each
step it records wall time, CPU time (user + system of the child and its descendants, from
os.wait4) and peak resident memory (ru_maxrss of the child). It reads the stage's report for its
counts and computes the throughput that matters for the stage. It also times the naive ingest
baseline (benchmarks/naive_ingest.py) the same way, reruns images and embed (which should hit
their caches) and trains every model for one epoch. Deep-MINE trains only the first
--deepmine-batches batches of that epoch (train.max_batches), because a full epoch at the default
batch size takes half an hour on 2 cores; its seconds per epoch are extrapolated from the
measured triplets/s. --deepmine-train sets other train settings for that step alone.

The results go to benchmarks/results/<name>.json (or --results), and a Markdown table goes to
stdout. The stage logs are in WORKDIR/logs/. dvc is not used, so no git repository is needed.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import yaml

from deepmine.localserver import serve_folder

# NOTE: this process imports no numpy, torch or PIL, and the generator runs as a child. On Linux a
# child's ru_maxrss starts from the RSS of the process that spawned it (the memory is shared until
# exec), so a large runner would set a floor under every stage's measured peak memory.

ROOT = Path(__file__).resolve().parents[1]

log = logging.getLogger("benchmark")

GIB = 1024 ** 3
MODELS = ("pop", "bpr", "vbpr", "deepmine")
# Peak memory allowed for any stage, from the benchmark targets.
MAX_RSS_BYTES = 8 * GIB
# Epochs of triplets sampled, because the triplets target is for 10 epochs. Training then runs one.
TRIPLET_EPOCHS = 10
# Batches (of train.batch_size) that the deepmine variant trains in its timed epoch.
DEEPMINE_BATCHES = 3


@dataclass
class Step:
    """One measured child process: a stage script or the naive ingest baseline."""

    name: str
    argv: list[str]
    report: str | None = None  # path of the stage's report JSON, relative to the workdir
    throughput: Callable[[dict, float], tuple[float | None, str, dict]] | None = None
    max_wall: float | None = None  # target in seconds at Pantry scale on 2 cores
    max_rss: float = MAX_RSS_BYTES
    train: dict | None = None  # settings written to params.yaml `train:` before the step
    needs: list[str] = field(default_factory=list)  # steps that must have succeeded first
    repeats: int = 1  # runs of the step; the result is the run with the median wall time


def read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}


# --- throughput of each stage: (value, unit, extra counts) from the stage's report --------------

def ingest_throughput(report: dict, wall: float):
    lines = sum(report.get(kind, {}).get("lines_read", 0) for kind in ("reviews", "meta"))
    extra = {f"{kind}_{key}": report.get(kind, {}).get(key)
             for kind in ("reviews", "meta") for key in ("lines_read", "rows_written", "rejected_total")}
    return lines / wall, "lines/s", extra


def baseline_throughput(report: dict, wall: float):
    return report.get("lines_read", 0) / wall, "lines/s", {"lines_read": report.get("lines_read")}


def clean_throughput(report: dict, wall: float):
    keys = ("reviews_in", "products_in", "users", "items", "interactions", "train", "validation", "test")
    return report.get("reviews_in", 0) / wall, "reviews/s", {k: report.get(k) for k in keys}


def images_throughput(report: dict, wall: float):
    keys = ("items", "attempted", "ok", "cached", "downloaded", "requests", "by_status")
    return report.get("attempted", 0) / wall, "images/s", {k: report.get(k) for k in keys}


def embed_throughput(report: dict, wall: float):
    keys = ("texts", "unique_texts", "cache_hits", "encoded_now", "encoder_texts_per_second")
    encoded = report.get("encoded_now", 0)
    return encoded / wall, "texts/s", {k: report.get(k) for k in keys}


def triplets_throughput(report: dict, wall: float):
    total = report.get("epochs", 0) * report.get("triplets_per_epoch", 0)
    keys = ("epochs", "triplets_per_epoch", "training_interactions")
    return total / wall, "triplets/s", {k: report.get(k) for k in keys}


def evaluate_throughput(report: dict, wall: float):
    test = report.get("test", {}) if isinstance(report.get("test"), dict) else {}
    users = test.get("users") or 0
    return users / wall, "users/s", {"test_users": users, "test_auc": test.get("auc")}


TRAIN_RATE = re.compile(r"([0-9.]+) triplets/s in training")
# The per-epoch line of deepmine.training.train_model.
EPOCH_LINE = re.compile(r"epoch (\d+): (\d+) triplets in ([0-9.]+) s \([0-9.]+ triplets/s\), (\d+) item "
                        r"encodings \(encoding both items of every triplet: (\d+)\)")


def train_throughput_from_log(log_text: str, triplets_per_epoch: int | None, wall: float):
    """Triplets per second of the training loop and seconds per epoch, from the stage's log.

    The counts also hold the first epoch's trained triplets and item encodings. When that epoch
    stopped early (train.max_batches), seconds_per_epoch and item_encodings_per_epoch are
    extrapolated to the full epoch at the measured rate and encodings per triplet, and
    `extrapolated` is True.
    """
    rates = TRAIN_RATE.findall(log_text)
    rate = float(rates[-1]) if rates else None
    extra = {"triplets_per_epoch": triplets_per_epoch}
    epochs = EPOCH_LINE.findall(log_text)
    trained = None
    if epochs:
        _, trained, seconds, encodings, naive = epochs[0]
        trained = int(trained)
        extra.update(trained_triplets=trained, train_seconds=float(seconds), item_encodings=int(encodings),
                     naive_item_encodings=int(naive))
    extrapolated = bool(trained and triplets_per_epoch and trained < triplets_per_epoch)
    extra["extrapolated"] = extrapolated
    if rate and triplets_per_epoch:
        extra["seconds_per_epoch"] = round(triplets_per_epoch / rate, 2)
    if trained and triplets_per_epoch:
        extra["item_encodings_per_epoch"] = round(extra["item_encodings"] * triplets_per_epoch / trained)
        extra["naive_item_encodings_per_epoch"] = 2 * triplets_per_epoch
    return rate, "triplets/s", extra


# --- the child process ------------------------------------------------------------------------

def run_child(argv: list[str], cwd: Path, env: dict, log_path: Path) -> dict:
    """Run argv to completion; return its exit status, wall and CPU seconds and peak RSS in bytes."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as out:
        started = time.perf_counter()
        child = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    return {
        "returncode": child.returncode,
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        # Linux reports ru_maxrss in KiB.
        "peak_rss_bytes": usage.ru_maxrss * 1024,
    }


def machine(python: str) -> dict:
    """Cores, memory, CPU model and GPU of this machine."""
    info = {"cores": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()}
    try:
        meminfo = Path("/proc/meminfo").read_text()
        info["memory_gib"] = round(int(re.search(r"MemTotal:\s+(\d+)", meminfo).group(1)) / 1024 ** 2, 1)
        cpuinfo = Path("/proc/cpuinfo").read_text()
        model = re.search(r"model name\s*:\s*(.+)", cpuinfo)
        info["cpu"] = model.group(1).strip() if model else platform.processor()
    except (OSError, AttributeError):
        pass
    # torch is asked in a child process so that this one stays small.
    probe = ("import json, torch; print(json.dumps({'torch': torch.__version__, 'gpu': "
             "torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}))")
    answer = subprocess.run([python, "-c", probe], capture_output=True, text=True)
    info.update(json.loads(answer.stdout) if answer.returncode == 0 else {"gpu": None})
    return info


# --- the benchmark ----------------------------------------------------------------------------

def plan_steps(python: str, raw_files: list[str], variants: list[str],
               deepmine_batches: int = DEEPMINE_BATCHES, text_features: str = "embed",
               ingest_repeats: int = 1, deepmine_train: dict | None = None) -> list[Step]:
    def stage(name: str, *args: str) -> list[str]:
        return [python, f"stages/{name}.py", *args]

    steps = [
        Step("ingest", stage("ingest"), "reports/ingest.json", ingest_throughput, max_wall=60, max_rss=2 * GIB,
             repeats=ingest_repeats),
        Step("ingest_naive_baseline", [python, str(ROOT / "benchmarks" / "naive_ingest.py"),
                                       "reports/naive_ingest.json", *raw_files],
             "reports/naive_ingest.json", baseline_throughput, repeats=ingest_repeats),
        Step("clean", stage("clean"), "reports/data.json", clean_throughput, max_wall=30, needs=["ingest"]),
        Step("images", stage("images"), "reports/images.json", images_throughput, max_wall=120, needs=["clean"]),
        Step("images_rerun", stage("images"), "reports/images.json", images_throughput, max_wall=10,
             needs=["images"]),
    ]
    if text_features == "random":
        steps.append(Step("embed_standin", [python, str(ROOT / "benchmarks" / "standin_text.py")], needs=["clean"]))
    else:
        steps += [
            Step("embed", stage("embed"), "reports/embed.json", embed_throughput, needs=["clean"]),
            Step("embed_rerun", stage("embed"), "reports/embed.json", embed_throughput, needs=["embed"]),
        ]
    steps += [
        Step("triplets", stage("triplets"), "reports/triplets.json", triplets_throughput, max_wall=30,
             train={"epochs": TRIPLET_EPOCHS}, needs=["clean"]),
    ]
    for variant in variants:
        # The targets: one BPR or VBPR epoch under a minute; Deep-MINE at 100x the 25 triplets/s
        # of a per-sample pandas loader is 2,500 triplets/s, about 3 minutes per Pantry epoch.
        limit = {"bpr": 60, "vbpr": 60}.get(variant)
        train = {"epochs": 1, "max_batches": 0}
        if variant == "deepmine":
            train.update(max_batches=deepmine_batches, **(deepmine_train or {}))
        steps.append(Step(f"train@{variant}", stage("train", variant), None, None, max_wall=limit, train=train,
                          needs=["triplets", "images", "embed_standin" if text_features == "random" else "embed"]))
    for variant in variants:
        steps.append(Step(f"evaluate@{variant}", stage("evaluate", variant), f"metrics/{variant}.json",
                          evaluate_throughput, max_wall=120, needs=[f"train@{variant}"]))
    return steps


# Minimum throughput targets at Pantry scale (unit as in the table).
MIN_RATE = {"train@vbpr": 24_000, "train@deepmine": 2_500}


def write_params(workdir: Path, raw: dict[str, Path], image_workers: int, train: dict) -> None:
    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    params["data"].update(reviews=str(raw["reviews"]), meta=str(raw["meta"]))
    params["images"].update(workers=image_workers, cache_dir="data/cache/images")
    params["text"].update(cache_dir="data/cache/text")
    params["train"].update(train)
    params["models"] = {name: params["models"][name] for name in MODELS}
    (workdir / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")


class BenchmarkError(Exception):
    """An invalid argument of the runner, reported as one line before anything is deleted or run."""


# Written into every workdir that the runner prepares. A non-empty folder without it is not reused,
# because preparing a workdir deletes its stages/, data/, models/ ... folders.
WORKDIR_MARKER = ".deepmine-benchmark"
WORKDIR_FOLDERS = ("stages", "data", "reports", "models", "metrics", "dvclive", "logs", "raw")


def check_workdir(workdir: Path) -> None:
    """Raise BenchmarkError unless the workdir is new, empty or prepared by an earlier run."""
    workdir = workdir.resolve()
    if workdir == ROOT or workdir in ROOT.parents:
        raise BenchmarkError(f"--workdir {workdir} is this repository or a folder above it, and the runner deletes "
                             "the stages and data folders of its workdir; choose a new folder such as /tmp/bench")
    if workdir.exists() and not workdir.is_dir():
        raise BenchmarkError(f"--workdir {workdir} is a file; choose a new folder such as /tmp/bench")
    if workdir.is_dir() and any(workdir.iterdir()) and not (workdir / WORKDIR_MARKER).exists():
        raise BenchmarkError(f"--workdir {workdir} is not empty and was not prepared by benchmarks/run.py "
                             f"(no {WORKDIR_MARKER} file); the runner deletes the {', '.join(WORKDIR_FOLDERS)} "
                             "folders of its workdir, so choose a new or empty folder")


def prepare_workdir(workdir: Path) -> None:
    """Copy stages/ into a fresh workdir; generated data and outputs from a previous run are removed."""
    check_workdir(workdir)
    if workdir.exists():
        for name in WORKDIR_FOLDERS:
            shutil.rmtree(workdir / name, ignore_errors=True)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / WORKDIR_MARKER).write_text("a workdir of benchmarks/run.py; its outputs are rewritten by each run\n",
                                          encoding="utf-8")
    shutil.copytree(ROOT / "stages", workdir / "stages", ignore=shutil.ignore_patterns("__pycache__"))


def step_group(name: str) -> str:
    """Return the name that selects a step together with its siblings: train@bpr -> train, images_rerun -> images."""
    return name.split("@")[0].removesuffix("_rerun").removesuffix("_naive_baseline")


def select_steps(steps: list[Step], only: list[str] | None) -> list[Step]:
    """Return the steps that `only` names, by step name or group name (all when `only` is empty).

    Every workdir starts empty, so a chosen step whose prerequisite is not chosen could only fail.
    An unknown name or a missing prerequisite raises BenchmarkError.
    """
    if not only:
        return steps
    accepted = list(dict.fromkeys(name for step in steps for name in (step_group(step.name), step.name)))
    unknown = [name for name in only if name not in accepted]
    if unknown:
        hint = ""
        if "embed_standin" in accepted and any(step_group(name) == "embed" for name in unknown):
            hint = " (with --text-features random, embed_standin runs in place of embed)"
        raise BenchmarkError(f"--stages: unknown step {', '.join(unknown)}{hint}; accepted: {' '.join(accepted)}")
    chosen = [step for step in steps if step.name in only or step_group(step.name) in only]
    names = {step.name for step in chosen}
    needs = {step.name: step.needs for step in steps}
    for step in chosen:
        # Name every missing step down the chain at once, in the order of the plan.
        required, pending = set(), list(step.needs)
        while pending:
            name = pending.pop()
            if name not in required:
                required.add(name)
                pending.extend(needs.get(name, []))
        missing = [other.name for other in steps if other.name in required and other.name not in names]
        if missing:
            raise BenchmarkError(f"--stages: {step.name} needs {', '.join(missing)} to run before it in the same "
                                 f"workdir, which starts empty; add {' '.join(missing)} to --stages")
    return chosen


def measure_step(step: Step, workdir: Path, env: dict, manifest_raw: dict, image_workers: int) -> dict:
    if step.train is not None:
        write_params(workdir, manifest_raw, image_workers, step.train)
    log.info("running %s: %s", step.name, " ".join(step.argv))
    log_path = workdir / "logs" / f"{step.name.replace('@', '_')}.log"
    result = {"name": step.name, "command": " ".join(step.argv[1:]), **run_child(step.argv, workdir, env, log_path)}
    result["log"] = str(log_path)
    wall = result["wall_s"]

    rate, unit, counts = None, "", {}
    if result["returncode"] == 0:
        if step.name.startswith("train@"):
            triplets = read_json(workdir / "reports" / "triplets.json").get("triplets_per_epoch")
            rate, unit, counts = train_throughput_from_log(log_path.read_text(errors="replace"), triplets, wall)
        elif step.report and step.throughput:
            rate, unit, counts = step.throughput(read_json(workdir / step.report), wall)
    else:
        tail = log_path.read_text(errors="replace").strip().splitlines()[-1:]
        result["error"] = tail[0] if tail else f"exit status {result['returncode']}"
        log.error("%s failed (exit %d): %s; log in %s", step.name, result["returncode"], result["error"], log_path)
    result.update(throughput=rate, unit=unit, counts=counts)
    return result


def check_targets(results: dict[str, dict], scale: float) -> None:
    """Add to each result its targets as text and whether the measured numbers meet them.

    The targets are for Pantry scale, so `met` is None (not judged) at any other scale."""
    for name, result in results.items():
        if result.get("status") != "ok":
            result.update(target="", met=None)
            continue
        checks = []
        limit = result.pop("_max_wall", None)
        if limit is not None:
            checks.append((f"< {limit:g} s", result["wall_s"] < limit))
        min_rate = MIN_RATE.get(name)
        if min_rate is not None:
            checks.append((f">= {min_rate:,} triplets/s", (result["throughput"] or 0) >= min_rate))
        if name == "ingest" and results.get("ingest_naive_baseline", {}).get("status") == "ok":
            speedup = results["ingest_naive_baseline"]["wall_s"] / result["wall_s"]
            result["speedup_over_naive"] = round(speedup, 2)
            checks.append((">= 3x naive", speedup >= 3))
        if name == "embed_rerun":
            checks.append(("encodes 0", result["counts"].get("encoded_now") == 0))
        if name == "images_rerun":
            counts = result["counts"]
            checks.append(("no downloads", counts.get("downloaded") == 0))
        max_rss = result.pop("_max_rss")
        checks.append((f"RSS < {max_rss / GIB:g} GiB", result["peak_rss_bytes"] < max_rss))
        result["target"] = ", ".join(text for text, _ in checks)
        result["met"] = all(ok for _, ok in checks) if scale == 1.0 else None


def markdown_table(results: dict[str, dict]) -> str:
    lines = ["| stage | wall s | CPU s | peak RSS MiB | throughput | target | met? |",
             "|---|---:|---:|---:|---:|---|---|"]
    for name, r in results.items():
        if r.get("status") != "ok":
            lines.append(f"| {name} | | | | | | {r.get('status')}: {r.get('error', '')} |")
            continue
        rate = f"{r['throughput']:,.0f} {r['unit']}" if r.get("throughput") is not None else ""
        counts = r["counts"]
        if counts.get("seconds_per_epoch") is not None:
            label = "extrapolated " if counts.get("extrapolated") else ""
            seconds = counts["seconds_per_epoch"]
            rate += f" ({label}{seconds:,.0f} s/epoch)" if seconds >= 10 else f" ({label}{seconds:.2g} s/epoch)"
        # Only Deep-MINE encodes items. The other models' logs count them the same way, but the
        # count means nothing for them.
        if counts.get("item_encodings") is not None and name.startswith("train@deepmine"):
            rate += (f"; {counts['item_encodings']:,} item encodings for {counts['trained_triplets']:,} "
                     f"triplets (naive {counts['naive_item_encodings']:,})")
        if "speedup_over_naive" in r:
            rate += f" ({r['speedup_over_naive']:g}x naive)"
        met = {True: "yes", False: "**no**", None: "n/a"}[r.get("met")]
        lines.append(f"| {name} | {r['wall_s']:.1f} | {r['cpu_s']:.1f} | {r['peak_rss_bytes'] / 2 ** 20:,.0f} "
                     f"| {rate} | {r.get('target', '')} | {met} |")
    return "\n".join(lines)


def run_benchmark(scale: float, workdir: Path, results_path: Path, only: list[str] | None = None,
                  seed: int = 0, image_workers: int = 16, variants: list[str] | None = None,
                  deepmine_batches: int = DEEPMINE_BATCHES, text_features: str = "embed",
                  ingest_repeats: int = 1, deepmine_train: dict | None = None) -> dict:
    """Generate the data, run the steps and write the results JSON; return the results."""
    workdir = workdir.resolve()
    variants = list(variants or MODELS)
    # Check the arguments on a plan without data files, before the workdir is emptied.
    select_steps(plan_steps(sys.executable, [], variants, deepmine_batches, text_features), only)
    prepare_workdir(workdir)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT / "src"), env.get("PYTHONPATH")) if p)
    env.update(DVC_NO_ANALYTICS="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")

    raw_dir = workdir / "raw"
    raw_dir.mkdir()
    output: dict = {"scale": scale, "seed": seed, "deepmine_batches": deepmine_batches,
                    "deepmine_train": deepmine_train or {}, "text_features": text_features,
                    "ingest_repeats": ingest_repeats, "steps": {}}
    with serve_folder(raw_dir) as base_url:
        generator = [sys.executable, str(ROOT / "benchmarks" / "generate.py"), "--scale", str(scale),
                     "--out", str(raw_dir), "--seed", str(seed), "--image-base-url", base_url]
        generated = run_child(generator, workdir, env, workdir / "logs" / "generate.log")
        if generated["returncode"] != 0:
            raise SystemExit(f"the generator failed (exit {generated['returncode']}); see {workdir / 'logs' / 'generate.log'}")
        manifest = read_json(raw_dir / "manifest.json")
        output["generate"] = {k: generated[k] for k in ("wall_s", "cpu_s", "peak_rss_bytes")}
        output["generated"] = manifest["counts"]
        raw = {"reviews": Path(manifest["files"]["reviews"]), "meta": Path(manifest["files"]["meta"])}
        write_params(workdir, raw, image_workers, {"epochs": TRIPLET_EPOCHS})

        steps = plan_steps(sys.executable, [str(raw["reviews"]), str(raw["meta"])], variants, deepmine_batches,
                           text_features, ingest_repeats, deepmine_train)
        for step in select_steps(steps, only):
            script = step.argv[1]
            if script.startswith("stages/") and not (workdir / script).exists():
                output["steps"][step.name] = {"name": step.name, "status": "missing", "error": f"{script} not found"}
                log.warning("%s: %s not found; skipped", step.name, script)
                continue
            failed = [n for n in step.needs if output["steps"].get(n, {}).get("status") not in (None, "ok")]
            if failed:
                output["steps"][step.name] = {"name": step.name, "status": "skipped",
                                              "error": f"needs {', '.join(failed)}"}
                continue
            runs = [measure_step(step, workdir, env, raw, image_workers) for _ in range(step.repeats)]
            failed_runs = [run for run in runs if run["returncode"] != 0]
            result = failed_runs[0] if failed_runs else sorted(runs, key=lambda r: r["wall_s"])[len(runs) // 2]
            if step.repeats > 1:
                result["wall_s_runs"] = [run["wall_s"] for run in runs]
            result["status"] = "ok" if result["returncode"] == 0 else "failed"
            result["_max_wall"], result["_max_rss"] = step.max_wall, step.max_rss
            output["steps"][step.name] = result
            results_path.parent.mkdir(parents=True, exist_ok=True)

    output["machine"] = machine(sys.executable)
    check_targets(output["steps"], scale)
    for result in output["steps"].values():
        result.pop("_max_wall", None)
        result.pop("_max_rss", None)
    output["table"] = markdown_table(output["steps"])
    results_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = results_path.with_name(f".{results_path.name}.tmp")
    tmp.write_text(json.dumps(output, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, results_path)
    return output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="size relative to Prime Pantry (1.0: 471,614 reviews)")
    parser.add_argument("--workdir", required=True, type=Path,
                        help="new or empty folder for the generated data, params.yaml, stage outputs and logs; "
                             "a folder from an earlier run is reused and its outputs deleted first")
    parser.add_argument("--stages", nargs="+", metavar="STAGE",
                        help="run only these steps, with the steps they need (e.g. ingest clean embed); a group "
                             "name such as ingest, images or train selects its siblings too")
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS),
                        help="model variants to train and evaluate")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated data")
    parser.add_argument("--deepmine-batches", type=int, default=DEEPMINE_BATCHES,
                        help="train.max_batches of the deepmine variant's timed epoch; 0 trains the whole epoch")
    parser.add_argument("--deepmine-train", nargs="+", default=[], metavar="KEY=VALUE",
                        help="train settings of the deepmine step only, e.g. batch_size=65536 amp=true")
    parser.add_argument("--text-features", choices=("embed", "random"), default="embed",
                        help="embed: run the embed stage twice; random: write stand-in vectors "
                             "(benchmarks/standin_text.py) so that train and evaluate are timed without "
                             "45 to 47 minutes of encoding at Pantry scale on 2 cores")
    parser.add_argument("--ingest-repeats", type=int, default=3,
                        help="runs of ingest and of the naive baseline; each is judged by its median wall time")
    parser.add_argument("--image-workers", type=int, default=16, help="images.workers: parallel downloads")
    parser.add_argument("--name", help="results name (default: scale<S>); written to benchmarks/results/<name>.json")
    parser.add_argument("--results", type=Path, help="results JSON path (overrides --name)")
    args = parser.parse_args(argv)
    if args.scale <= 0:
        parser.error(f"--scale must be positive, got {args.scale}")
    deepmine_train = {}
    for setting in args.deepmine_train:
        key, sep, value = setting.partition("=")
        if not sep or not key:
            parser.error(f"--deepmine-train takes KEY=VALUE settings, got {setting!r}")
        deepmine_train[key] = yaml.safe_load(value)
    if args.ingest_repeats < 1:
        parser.error(f"--ingest-repeats must be at least 1, got {args.ingest_repeats}")
    if args.deepmine_batches < 0:
        parser.error(f"--deepmine-batches must not be negative, got {args.deepmine_batches}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s",
                        stream=sys.stderr)
    results_path = args.results or ROOT / "benchmarks" / "results" / f"{args.name or f'scale{args.scale:g}'}.json"
    try:
        output = run_benchmark(args.scale, args.workdir, results_path, args.stages, args.seed,
                               args.image_workers, args.models, args.deepmine_batches, args.text_features,
                               args.ingest_repeats, deepmine_train)
    except BenchmarkError as err:
        parser.error(str(err))
    print(output["table"])
    print(f"\nresults: {results_path}")
    return 0 if all(r.get("status") == "ok" for r in output["steps"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
