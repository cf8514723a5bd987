"""Stage compare: the results table (reports/results.md) and chart (reports/comparison.png) of
every model variant in params.yaml, from the metrics the evaluate stage wrote."""

import logging

from deepmine import io, paths
from deepmine.cli import StageError, run_stage
from deepmine.params import load_params
from deepmine.report import comparison_plot, load_variant_metrics, results_markdown

log = logging.getLogger("deepmine.stages.compare")


def main() -> None:
    params = load_params()
    try:
        metrics = load_variant_metrics(params.models)
    except (FileNotFoundError, ValueError) as err:
        raise StageError(str(err)) from err

    io.write_text(paths.RESULTS_TABLE, results_markdown(params.models, metrics))
    comparison_plot(metrics, paths.RESULTS_PLOT)
    log.info("compared %d variants: wrote %s and %s", len(metrics), paths.RESULTS_TABLE, paths.RESULTS_PLOT)


if __name__ == "__main__":
    run_stage(main)
