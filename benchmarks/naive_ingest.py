"""The ingest baseline: a per-line json.loads loop into a pandas DataFrame.

This is what a straightforward reader of the 2018 files does, and the ingest stage is measured
against it in the same benchmark run. Lines that are not JSON get one ast.literal_eval try (the
metadata files have Python-literal lines); lines that fail both are counted and skipped.

    python benchmarks/naive_ingest.py REPORT.json FILE [FILE ...]
"""

from __future__ import annotations

import ast
import gzip
import json
import sys

import pandas as pd


def read_lines_naively(path: str) -> tuple[pd.DataFrame, int, int]:
    """Return (table, lines read, lines skipped) for one gzip or plain JSON-lines file."""
    with open(path, "rb") as f:
        gzipped = f.read(2) == b"\x1f\x8b"
    rows = []
    lines = skipped = 0
    with (gzip.open(path, "rt", encoding="utf-8") if gzipped else open(path, encoding="utf-8")) as f:
        for line in f:
            lines += 1
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                try:
                    rows.append(ast.literal_eval(line))
                except (ValueError, SyntaxError):
                    skipped += 1
    return pd.DataFrame(rows), lines, skipped


def main(argv: list[str]) -> None:
    if len(argv) < 2:
        sys.exit("usage: naive_ingest.py REPORT.json FILE [FILE ...]")
    report = {"files": []}
    for path in argv[1:]:
        table, lines, skipped = read_lines_naively(path)
        report["files"].append({"path": path, "lines_read": lines, "rows": len(table), "skipped": skipped})
    report["lines_read"] = sum(f["lines_read"] for f in report["files"])
    with open(argv[0], "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2)


if __name__ == "__main__":
    main(sys.argv[1:])
