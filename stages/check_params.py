"""Stage check_params: validate params.yaml and record the values every stage will see."""

import dataclasses

from deepmine import io
from deepmine.cli import run_stage
from deepmine.params import load_params


def main() -> None:
    params = load_params()
    io.write_json("reports/params.json", dataclasses.asdict(params))


if __name__ == "__main__":
    run_stage(main)
