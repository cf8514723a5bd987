"""Download stage: fetch the raw reviews and metadata files named in params.yaml when absent.

Writes reports/download.json with the path, URL, action ("present" or "downloaded"), size and
SHA-256 of each file.
"""

from deepmine import paths
from deepmine.cli import run_stage
from deepmine.download import download_raw
from deepmine.io import write_json
from deepmine.params import load_params


def main() -> None:
    params = load_params()
    report = download_raw(params.data)
    write_json(paths.RAW_REPORT, report)


if __name__ == "__main__":
    run_stage(main)
