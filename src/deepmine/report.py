"""The comparison of all model variants: a Markdown results table and a bar chart.

Both read the metrics JSON that the evaluate stage writes per variant:
{"test": {...}, "validation": {...}} with the keys of `deepmine.evaluation.evaluate_split`.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Callable, Iterable, Mapping

from . import paths
from .io import atomic_path
from .params import ModelSpec

Metrics = Mapping[str, Mapping[str, float | int | None]]

# The K whose Recall and NDCG the chart shows; the largest K evaluated when 20 is absent.
_PLOT_K = 20


def load_variant_metrics(variants: Iterable[str],
                         metrics_path: Callable[[str], Path] = paths.metrics) -> dict[str, dict]:
    """Read metrics/<variant>.json for every variant, in the given order.

    Raise FileNotFoundError naming the first missing file, and ValueError naming a file that is
    not valid JSON or lacks the test or validation section."""
    loaded = {}
    for variant in variants:
        path = Path(metrics_path(variant))
        if not path.exists():
            raise FileNotFoundError(
                f"{path} not found; evaluate the variant first (dvc repro evaluate@{variant})"
            )
        try:
            metrics = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: invalid JSON ({err}); rerun dvc repro evaluate@{variant}") from err
        for section in ("test", "validation"):
            if not isinstance(metrics, dict) or not isinstance(metrics.get(section), dict):
                raise ValueError(f"{path} has no {section!r} section; rerun dvc repro evaluate@{variant}")
        loaded[variant] = metrics
    return loaded


def results_table(specs: Mapping[str, ModelSpec], metrics: Metrics) -> str:
    """Render one Markdown row per variant of `metrics`, values to 4 decimals.

    Columns: variant, model, views, test AUC, cold AUC (cold cases), Recall@K and NDCG@K for
    every K found in the test metrics, HR@K sampled when present, validation AUC. A value
    that is missing or null (a mean over no case) shows as n/a."""
    ks = _ks(metrics)
    hr_keys = sorted({key for m in metrics.values() for key in m["test"] if _HR_KEY.fullmatch(key)},
                     key=lambda key: int(_HR_KEY.fullmatch(key).group(1)))

    header = ["variant", "model", "views", "test AUC", "cold AUC (cases)"]
    header += [f"Recall@{k}" for k in ks] + [f"NDCG@{k}" for k in ks]
    header += [f"HR@{_HR_KEY.fullmatch(key).group(1)} sampled" for key in hr_keys]
    header += ["validation AUC"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]

    for variant, variant_metrics in metrics.items():
        test = variant_metrics["test"]
        spec = specs.get(variant)
        cold_cases = test.get("cold_cases")
        row = [
            variant,
            spec.name if spec else "n/a",
            spec.views if spec and spec.views else "-",
            _number(test.get("auc")),
            f"{_number(test.get('cold_auc'))} ({cold_cases if cold_cases is not None else 'n/a'})",
        ]
        row += [_number(test.get(f"recall@{k}")) for k in ks]
        row += [_number(test.get(f"ndcg@{k}")) for k in ks]
        row += [_number(test.get(key)) for key in hr_keys]
        row += [_number(variant_metrics["validation"].get("auc"))]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def results_markdown(specs: Mapping[str, ModelSpec], metrics: Metrics) -> str:
    """Return reports/results.md: a heading, what the columns measure, and the results table."""
    return (
        "# Results\n\n"
        "Test split unless marked validation. AUC follows the VBPR protocol (all items the user "
        "never interacted with are candidates); cold AUC covers test items with few training "
        "interactions (cases in brackets); Recall@K and NDCG@K rank all items with the user's "
        "training and validation items masked; HR@K sampled ranks the held-out item against the "
        "fixed sampled negatives only.\n\n"
        + results_table(specs, metrics)
    )


def comparison_plot(metrics: Metrics, path: str | Path) -> None:
    """Write a PNG with grouped bars of test AUC, Recall@20 and NDCG@20 per variant.

    The Agg backend is used, so no display is needed. A null value leaves its bar out."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ks = _ks(metrics)
    k = _PLOT_K if _PLOT_K in ks or not ks else max(ks)
    series = [("test AUC", "auc"), (f"Recall@{k}", f"recall@{k}"), (f"NDCG@{k}", f"ndcg@{k}")]
    variants = list(metrics)
    width = 0.8 / len(series)

    fig, ax = plt.subplots(figsize=(max(6.0, 1.2 * len(variants) + 2), 4.5))
    for i, (label, key) in enumerate(series):
        values = [_plot_value(metrics[v]["test"].get(key)) for v in variants]
        positions = [x + (i - (len(series) - 1) / 2) * width for x in range(len(variants))]
        ax.bar(positions, values, width=width, label=label)
    ax.set_xticks(range(len(variants)))
    ax.set_xticklabels(variants, rotation=30, ha="right")
    ax.set_ylabel("test split")
    ax.set_ylim(0, 1)
    ax.set_title("Model comparison")
    ax.legend()
    fig.tight_layout()

    with atomic_path(path, suffix=".png") as tmp:
        # No software-version metadata, so equal metrics give an identical file.
        fig.savefig(tmp, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)


_RECALL_KEY = re.compile(r"recall@(\d+)")
_HR_KEY = re.compile(r"hr@(\d+)_sampled")


def _ks(metrics: Metrics) -> list[int]:
    found = {int(match.group(1)) for m in metrics.values() for key in m["test"]
             if (match := _RECALL_KEY.fullmatch(key))}
    return sorted(found)


def _number(value: float | int | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.4f}"


def _plot_value(value: float | int | None) -> float:
    return math.nan if value is None else float(value)
