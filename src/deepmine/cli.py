"""Shared entry point of the stage scripts: logging set-up and clean exits on expected errors."""

from __future__ import annotations

import logging
import sys
from typing import Callable

log = logging.getLogger("deepmine")


class StageError(RuntimeError):
    """An expected failure (bad input, no network, too many bad rows) with a message for the user.

    Stage scripts print it without a traceback and exit with status 1."""


def run_stage(main: Callable[[], None]) -> None:
    """Run a stage's main function; turn expected errors into one clear line and exit code 1."""
    from .params import ParamsError

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s", stream=sys.stderr
    )
    try:
        main()
    except (StageError, ParamsError) as err:
        log.error("%s", err)
        sys.exit(1)
    except KeyboardInterrupt:
        log.error("interrupted; outputs already written are complete, rerun to continue")
        sys.exit(130)
