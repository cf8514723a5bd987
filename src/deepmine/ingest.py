"""Read the raw Amazon Review Data (2018) JSON-lines files into typed Parquet tables.

Both files are read as a stream of blocks of whole lines, plain or gzip (recognised by the gzip
magic bytes 1f 8b, not by the file name). The tables are written block by block with a
ParquetWriter, so memory stays flat as the files grow.

Reviews take a fast path: pyarrow parses a whole block against a fixed schema. Lines that cannot
be JSON objects (not "{...}", such as truncated or blank lines) go to a line-by-line parser, which
decides each line's fate. A run of lines that pyarrow still rejects (a Python-literal line, a
required key missing, a value of an unexpected JSON type) is halved until the failing piece is
small enough for the line parser. Both paths apply the same rules, so the output does not depend
on which path a line took. Metadata goes through the line parser only, because its HTML cleaning
is per row anyway.

A malformed line is skipped, never guessed at: it is counted by reason with its line number,
and the first few per reason are quoted in reports/ingest.json. Blank lines are skipped and
counted separately. A value of the wrong type in an optional field becomes null and is counted
under `invalid_values`.

reviews.parquet columns: line (int64, 1-based line in the raw file), reviewer_id, asin,
overall (float32), unix_time (int64), review_text, summary, vote (int32), verified (bool).
Empty or ASCII-whitespace-only review_text and summary are null.

products.parquet columns: line, asin, title, description, brand, main_cat (strings, all but
asin nullable), image_urls_high (list<string>, from imageURLHighRes) and image_urls
(list<string>, from imageURL, else the older `image` key, else the 2014 `imUrl` string).
An absent or empty image list is an empty list, not null. Duplicate asins are kept.
"""

from __future__ import annotations

import ast
import bisect
import gzip
import json
import logging
import math
import queue
import re
import threading
import time
import zlib
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json
import pyarrow.parquet as pq
from tqdm import tqdm

try:  # ISA-L inflates about twice as fast as zlib; the standard library is the fallback
    from isal import igzip as _gzip
    from isal.isal_zlib import error as _InflateError
except ImportError:  # pragma: no cover - isal is in requirements.txt
    _gzip = gzip
    _InflateError = zlib.error

from .cli import StageError
from .io import atomic_path, write_json
from .markup import clean_html, clean_main_cat, clean_title
from .params import ParamsError

log = logging.getLogger(__name__)

GZIP_MAGIC = b"\x1f\x8b"
BLOCK_BYTES = 8 << 20  # decompressed bytes read per block (about 20k review lines)
ROW_GROUP_ROWS = 131_072
MIN_FAST_PATH_LINES = 64  # a failing run of review lines this short goes to the line parser
EXCERPT_CHARS = 120
ASCII_SPACE = " \t\n\r\f\v"
INT32_MAX = 2**31 - 1

REVIEWS_SCHEMA = pa.schema(
    [
        ("line", pa.int64()),
        ("reviewer_id", pa.string()),
        ("asin", pa.string()),
        ("overall", pa.float32()),
        ("unix_time", pa.int64()),
        ("review_text", pa.string()),
        ("summary", pa.string()),
        ("vote", pa.int32()),
        ("verified", pa.bool_()),
    ]
)

PRODUCTS_SCHEMA = pa.schema(
    [
        ("line", pa.int64()),
        ("asin", pa.string()),
        ("title", pa.string()),
        ("description", pa.string()),
        ("brand", pa.string()),
        ("main_cat", pa.string()),
        ("image_urls_high", pa.list_(pa.string())),
        ("image_urls", pa.list_(pa.string())),
    ]
)

# The JSON types the fast path accepts. Any other type in a block sends it to the line parser.
_RAW_REVIEW_SCHEMA = pa.schema(
    [
        ("reviewerID", pa.string()),
        ("asin", pa.string()),
        ("unixReviewTime", pa.int64()),
        ("overall", pa.float64()),
        ("reviewText", pa.string()),
        ("summary", pa.string()),
        ("vote", pa.string()),
        ("verified", pa.bool_()),
    ]
)
_RAW_REVIEW_OPTIONS = pa_json.ParseOptions(
    explicit_schema=_RAW_REVIEW_SCHEMA, unexpected_field_behavior="ignore"
)


class Rejected(Exception):
    """A raw line that cannot become a row. `reason` is the count key in the report."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


class IngestFileError(StageError):
    """A raw file with too many malformed lines or without a valid row.

    `report` is the file's ingest report, written to reports/ingest.json before the stage exits."""

    def __init__(self, message: str, report: dict):
        super().__init__(message)
        self.report = report


class FileTally:
    """Counts of one raw file: lines read, rows written, rejections by reason with examples."""

    def __init__(self, name: str, path: Path, file_format: str, max_examples: int):
        self.name = name
        self.path = path
        self.format = file_format
        self.max_examples = max_examples
        self.lines_read = 0
        self.rows_written = 0
        self.blank_lines = 0
        self.python_literal_lines = 0
        self.rejected: Counter[str] = Counter()
        self.examples: dict[str, list[dict]] = defaultdict(list)
        self.invalid_values: Counter[str] = Counter()

    def reject(self, line: int, raw: bytes, err: Rejected) -> None:
        self.rejected[err.reason] += 1
        # Keep the examples of the first lines, whatever order the parsers met them in.
        examples = self.examples[err.reason]
        if len(examples) == self.max_examples and (not examples or line > examples[-1]["line"]):
            return
        excerpt = raw.rstrip(b"\r").decode("utf-8", "replace")[:EXCERPT_CHARS]
        example = {"line": line, "excerpt": excerpt}
        if err.detail:
            example["detail"] = err.detail
        bisect.insort(examples, example, key=lambda e: e["line"])
        del examples[self.max_examples :]

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    def report(self) -> dict:
        return {
            "path": str(self.path),
            "format": self.format,
            "lines_read": self.lines_read,
            "rows_written": self.rows_written,
            "blank_lines": self.blank_lines,
            "rejected_total": self.rejected_total,
            "rejected": dict(sorted(self.rejected.items())),
            "examples": {reason: self.examples[reason] for reason in sorted(self.examples)},
            "python_literal_lines": self.python_literal_lines,
            "invalid_values": dict(sorted(self.invalid_values.items())),
        }


# ---------------------------------------------------------------------------------------------
# Reading raw files


def detect_format(path: str | Path) -> str:
    """Return "gzip" when the file starts with the gzip magic bytes, else "plain"."""
    with open(path, "rb") as f:
        return "gzip" if f.read(2) == GZIP_MAGIC else "plain"


def _read_blocks(stream, block_bytes: int) -> Iterator[tuple[int, int, bytes]]:
    """Yield (number of the first line, number of lines, bytes of whole lines each ending in a
    newline)."""
    first_line = 1
    rest = b""
    at_start = True
    while True:
        chunk = stream.read(block_bytes)
        if not chunk:
            break
        chunk = rest + chunk
        if at_start:  # drop a UTF-8 byte order mark, which json.loads rejects
            chunk = chunk.removeprefix(b"\xef\xbb\xbf")
            at_start = False
        end = chunk.rfind(b"\n")
        if end < 0:  # a line longer than a block, so keep reading
            rest = chunk
            continue
        block, rest = chunk[: end + 1], chunk[end + 1 :]
        n_lines = block.count(b"\n")
        yield first_line, n_lines, block
        first_line += n_lines
    if rest:  # the last line has no newline
        yield first_line, 1, rest + b"\n"


def _iter_file_blocks(
    path: Path, file_format: str, block_bytes: int, desc: str
) -> Iterator[tuple[int, int, bytes]]:
    """Stream a raw file as blocks of lines, with a progress bar over the bytes on disk.

    A reader thread decompresses and cuts the next blocks while the caller parses this one.
    The inflater and pyarrow both release the GIL, so on two cores the gunzip time mostly
    disappears."""
    size = path.stat().st_size
    with open(path, "rb") as raw, tqdm(total=size, unit="B", unit_scale=True, desc=desc) as bar:
        stream = _gzip.GzipFile(fileobj=raw, mode="rb") if file_format == "gzip" else raw

        def blocks() -> Iterator[tuple[int, int, bytes]]:
            for item in _read_blocks(stream, block_bytes):
                bar.update(raw.tell() - bar.n)
                yield item

        lines_done = 0
        try:
            with closing(_prefetch(blocks(), depth=2)) as prefetched:
                for first_line, n_lines, block in prefetched:
                    yield first_line, n_lines, block
                    lines_done = first_line - 1 + n_lines
        except (EOFError, zlib.error, _InflateError, gzip.BadGzipFile) as err:
            raise StageError(
                f"{path}: corrupt or truncated gzip data after line {lines_done} ({err}); "
                "delete the file and run the download stage again"
            ) from err


_DONE = object()


def _prefetch(items: Iterator, depth: int) -> Iterator:
    """Yield from `items`, which a background thread advances up to `depth` items ahead.

    An exception in the thread is raised here, in the consumer, after the items before it.
    When the consumer stops early, the thread stops at its next item."""
    slots: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(entry) -> bool:
        while not stop.is_set():
            try:
                slots.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((item, None)):
                    return
            put((_DONE, None))
        except BaseException as err:  # handed to the consumer, which raises it
            put((_DONE, err))

    worker = threading.Thread(target=produce, name="ingest-reader", daemon=True)
    worker.start()
    try:
        while True:
            item, err = slots.get()
            if item is _DONE:
                if err is not None:
                    raise err
                return
            yield item
    finally:
        stop.set()
        worker.join()


def _decode_object(raw: bytes, tally: FileTally) -> dict:
    """Parse one line as a JSON object, or as a Python-literal dict (single quotes) when JSON
    fails and the line starts with "{'"."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise Rejected("invalid UTF-8", str(err)) from None
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError) as err:  # ValueError includes JSONDecodeError
        message = getattr(err, "msg", None) or str(err) or type(err).__name__
        if not text.lstrip().startswith("{'"):
            raise Rejected("invalid JSON", message) from None
        try:
            obj = ast.literal_eval(text.strip())
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            raise Rejected("invalid JSON", f"{message}; not a Python literal either") from None
        if isinstance(obj, dict):
            tally.python_literal_lines += 1
    if not isinstance(obj, dict):
        raise Rejected("not a JSON object", f"got a JSON {type(obj).__name__}")
    # json.loads accepts lone surrogate escapes such as "\ud800", which no UTF-8 file can store.
    if "\\ud" in text or "\\uD" in text:
        try:
            json.dumps(obj, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise Rejected("invalid UTF-8", "lone surrogate escape") from None
    return obj


# ---------------------------------------------------------------------------------------------
# Field rules shared by the line parser and (for reviews) the fast path


def _required_str(obj: dict, key: str) -> str:
    value = obj.get(key)
    if value is None or (isinstance(value, str) and not value.strip(ASCII_SPACE)):
        raise Rejected(f"missing {key}")
    if not isinstance(value, str):
        raise Rejected(f"invalid {key}", f"expected a string, got {type(value).__name__}")
    return value


def _required_int(obj: dict, key: str) -> int:
    value = obj.get(key)
    if value is None:
        raise Rejected(f"missing {key}")
    if isinstance(value, bool) or not isinstance(value, int):
        raise Rejected(f"invalid {key}", f"expected an integer, got {value!r}"[:80])
    if not -(2**63) <= value < 2**63:
        raise Rejected(f"invalid {key}", "out of the int64 range")
    return value


def _optional_text(obj: dict, key: str, tally: FileTally) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        tally.invalid_values[key] += 1
        return None
    return value if value.strip(ASCII_SPACE) else None


def _optional_rating(obj: dict, key: str, tally: FileTally) -> float | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        tally.invalid_values[key] += 1
        return None
    try:
        rating = float(value)
    except OverflowError:  # an integer beyond the float range
        rating = math.inf
    if not math.isfinite(rating):
        tally.invalid_values[key] += 1
        return None
    return rating


_VOTE_DIGITS = re.compile(r"[0-9]+")


def _optional_vote(obj: dict, tally: FileTally) -> int | None:
    """Return the helpful-vote count, which the 2018 files store as a string with thousands
    separators ("1,234")."""
    value = obj.get("vote")
    if value is None:
        return None
    if isinstance(value, str):
        digits = value.replace(",", "").strip(ASCII_SPACE)
        if not digits:
            return None
        significant = digits.lstrip("0") or "0"
        if _VOTE_DIGITS.fullmatch(digits) and len(significant) <= 10 and int(significant) <= INT32_MAX:
            return int(significant)
    elif isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= INT32_MAX:
        return value
    tally.invalid_values["vote"] += 1
    return None


def _optional_bool(obj: dict, key: str, tally: FileTally) -> bool | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, bool):
        tally.invalid_values[key] += 1
        return None
    return value


# ---------------------------------------------------------------------------------------------
# Reviews


def _review_columns() -> dict[str, list]:
    return {name: [] for name in REVIEWS_SCHEMA.names}


def _append_review(columns: dict[str, list], line: int, obj: dict, tally: FileTally) -> None:
    reviewer_id = _required_str(obj, "reviewerID")
    asin = _required_str(obj, "asin")
    unix_time = _required_int(obj, "unixReviewTime")

    columns["line"].append(line)
    columns["reviewer_id"].append(reviewer_id)
    columns["asin"].append(asin)
    columns["overall"].append(_optional_rating(obj, "overall", tally))
    columns["unix_time"].append(unix_time)
    columns["review_text"].append(_optional_text(obj, "reviewText", tally))
    columns["summary"].append(_optional_text(obj, "summary", tally))
    columns["vote"].append(_optional_vote(obj, tally))
    columns["verified"].append(_optional_bool(obj, "verified", tally))


def _blank_to_null(column: pa.ChunkedArray) -> pa.ChunkedArray:
    # A regex match stops at the first other character; trimming would copy every review text.
    blank = pc.match_substring_regex(column, r"^[ \t\n\r\f\v]*$")
    return pc.if_else(blank, pa.scalar(None, pa.string()), column)


def _count_nulled(tally: FileTally, key: str, before: pa.ChunkedArray, after: pa.ChunkedArray) -> None:
    nulled = after.null_count - before.null_count
    if nulled:
        tally.invalid_values[key] += nulled


def _reviews_fast(block: bytes, line_numbers: np.ndarray, tally: FileTally) -> pa.Table | None:
    """Parse a block of review lines with pyarrow, or return None to send it to the line parser.

    Every line of the block must start with "{" and end with "}", because pyarrow skips blank
    lines. The block goes to the line parser when any line is not a JSON object with the
    expected types, or when a required key is missing."""
    try:
        raw = pa_json.read_json(pa.BufferReader(block), parse_options=_RAW_REVIEW_OPTIONS)
    except (pa.ArrowException, UnicodeDecodeError):
        return None
    # No line is blank, so a row count equal to the line count maps rows to lines.
    if raw.num_rows != len(line_numbers):
        return None
    for key in ("reviewerID", "asin"):
        column = raw[key]
        if column.null_count or pc.any(pc.equal(pc.ascii_trim(column, ASCII_SPACE), "")).as_py():
            return None
    if raw["unixReviewTime"].null_count:
        return None

    vote_text = pc.ascii_trim(pc.replace_substring(raw["vote"], ",", ""), ASCII_SPACE)
    vote_given = pc.fill_null(pc.not_equal(vote_text, ""), False)
    vote_ok = pc.fill_null(pc.match_substring_regex(vote_text, "^[0-9]+$"), False)
    if pc.any(pc.and_(vote_ok, pc.greater(pc.utf8_length(vote_text), 18))).as_py():
        return None  # let the line parser handle digit strings too long for int64
    vote = pc.cast(pc.if_else(vote_ok, vote_text, pa.scalar(None, pa.string())), pa.int64())
    vote_ok = pc.fill_null(pc.less_equal(vote, INT32_MAX), False)
    invalid_votes = pc.sum(pc.and_(vote_given, pc.invert(vote_ok))).as_py()
    if invalid_votes:
        tally.invalid_values["vote"] += invalid_votes
    vote = pc.cast(pc.if_else(vote_ok, vote, pa.scalar(None, pa.int64())), pa.int32())

    overall_raw = raw["overall"]
    overall = pc.if_else(pc.is_finite(overall_raw), overall_raw, pa.scalar(None, pa.float64()))
    _count_nulled(tally, "overall", overall_raw, overall)

    return pa.table(
        {
            "line": pa.array(line_numbers),
            "reviewer_id": raw["reviewerID"],
            "asin": raw["asin"],
            "overall": pc.cast(overall, pa.float32()),
            "unix_time": raw["unixReviewTime"],
            "review_text": _blank_to_null(raw["reviewText"]),
            "summary": _blank_to_null(raw["summary"]),
            "vote": vote,
            "verified": raw["verified"],
        },
        schema=REVIEWS_SCHEMA,
    )


def _suspect_lines(block: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Find the lines of a block that cannot be clean JSON objects.

    A line that does not start with "{" or does not end with "}" (a truncated line, a blank line)
    is suspect. Return (indices of the suspect lines, start offset of every line, offset of every
    line's newline)."""
    data = np.frombuffer(block, dtype=np.uint8)
    ends = np.flatnonzero(data == ord("\n"))  # (n_lines,)
    starts = np.concatenate(([0], ends[:-1] + 1))
    last = ends - 1
    carriage_return = (last >= starts) & (data[np.maximum(last, 0)] == ord("\r"))
    last = np.where(carriage_return, last - 1, last)
    empty = last < starts
    bad_start = data[np.minimum(starts, len(data) - 1)] != ord("{")
    bad_end = data[np.maximum(last, 0)] != ord("}")
    return np.flatnonzero(empty | bad_start | bad_end), starts, ends


def _parse_review_block(block: bytes, n_lines: int, first_line: int, tally: FileTally) -> list[pa.Table]:
    """Parse a block of review lines, sending only suspect lines to the line parser.

    The suspect lines are cut out and the rest of the block goes through the fast path in one
    piece, because many small pyarrow calls cost about twice one large call. When too many
    lines are suspect for that to pay, the whole block goes to the line parser."""
    suspects, starts, ends = _suspect_lines(block)
    line_numbers = np.arange(first_line, first_line + n_lines, dtype=np.int64)
    if len(suspects) * MIN_FAST_PATH_LINES > n_lines:
        lines = block.split(b"\n")[:-1]
        return [_parse_lines(lines, line_numbers, _append_review, _review_columns(), REVIEWS_SCHEMA, tally)]
    if len(suspects) == 0:
        return _parse_review_run(block, line_numbers, tally)

    suspect_lines = [block[starts[i] : ends[i]] for i in suspects.tolist()]
    from_suspects = _parse_lines(
        suspect_lines, line_numbers[suspects], _append_review, _review_columns(), REVIEWS_SCHEMA, tally
    )
    pieces = []
    run_start = 0  # index of the first line after the previous suspect line
    for index in suspects.tolist():
        pieces.append(block[starts[run_start] : starts[index]])
        run_start = index + 1
    if run_start < n_lines:
        pieces.append(block[starts[run_start] :])
    keep = np.ones(n_lines, dtype=bool)
    keep[suspects] = False
    tables = _parse_review_run(b"".join(pieces), line_numbers[keep], tally) if keep.any() else []
    if from_suspects.num_rows == 0:  # the usual case: suspect lines are truncated or blank
        return tables
    # A suspect line can still be a valid review (leading spaces, say); keep raw line order.
    merged = pa.concat_tables(tables + [from_suspects])
    return [merged.take(pc.sort_indices(merged["line"]))]


def _parse_review_run(block: bytes, line_numbers: np.ndarray, tally: FileTally) -> list[pa.Table]:
    """Parse review lines that all look like JSON objects with the fast path.

    `line_numbers` holds the raw file's line number of each line of `block`. A run that still
    fails (a line with a wrong type, a missing key, invalid JSON inside the braces) is halved,
    and each half is tried again, down to MIN_FAST_PATH_LINES lines, which go to the line
    parser."""
    n_lines = len(line_numbers)
    table = _reviews_fast(block, line_numbers, tally)
    if table is not None:
        return [table]
    if n_lines <= MIN_FAST_PATH_LINES:
        lines = block.split(b"\n")[:-1]
        return [_parse_lines(lines, line_numbers, _append_review, _review_columns(), REVIEWS_SCHEMA, tally)]

    cut = block.find(b"\n", len(block) // 2)
    if cut == len(block) - 1:  # the middle falls in the last line
        cut = block.rfind(b"\n", 0, len(block) // 2)
    head, tail = block[: cut + 1], block[cut + 1 :]
    head_lines = head.count(b"\n")
    return _parse_review_run(head, line_numbers[:head_lines], tally) + _parse_review_run(
        tail, line_numbers[head_lines:], tally
    )


# ---------------------------------------------------------------------------------------------
# Products


def _string_list(value, key: str, tally: FileTally) -> list[str]:
    """Return the strings of a URL list without empty strings. A lone string is a one-item list."""
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        tally.invalid_values[key] += 1
        return []
    strings = [v for v in value if isinstance(v, str)]
    if len(strings) != len(value):
        tally.invalid_values[key] += 1
    return [v for v in strings if v.strip(ASCII_SPACE)]


def _description(obj: dict, tally: FileTally) -> str | None:
    """Join and clean the description, a list of strings in the 2018 files and one string in 2014."""
    value = obj.get("description")
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        tally.invalid_values["description"] += 1
        return None
    parts = [v for v in value if isinstance(v, str)]
    if len(parts) != len(value):
        tally.invalid_values["description"] += 1
    return clean_html(" ".join(p for p in parts if p.strip()))


def _cleaned_str(obj: dict, key: str, clean: Callable[[str], str | None], tally: FileTally) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        tally.invalid_values[key] += 1
        return None
    return clean(value)


def _product_columns() -> dict[str, list]:
    return {name: [] for name in PRODUCTS_SCHEMA.names}


def _append_product(columns: dict[str, list], line: int, obj: dict, tally: FileTally) -> None:
    asin = _required_str(obj, "asin")

    image_urls: list[str] = []
    for key in ("imageURL", "image", "imUrl"):
        image_urls = _string_list(obj.get(key), key, tally)
        if image_urls:
            break

    columns["line"].append(line)
    columns["asin"].append(asin)
    columns["title"].append(_cleaned_str(obj, "title", clean_title, tally))
    columns["description"].append(_description(obj, tally))
    columns["brand"].append(_cleaned_str(obj, "brand", clean_html, tally))
    columns["main_cat"].append(_cleaned_str(obj, "main_cat", clean_main_cat, tally))
    columns["image_urls_high"].append(_string_list(obj.get("imageURLHighRes"), "imageURLHighRes", tally))
    columns["image_urls"].append(image_urls)


# ---------------------------------------------------------------------------------------------
# One file


def _parse_lines(
    lines: list[bytes],
    line_numbers: Sequence[int],
    append_row: Callable[[dict[str, list], int, dict, FileTally], None],
    columns: dict[str, list],
    schema: pa.Schema,
    tally: FileTally,
) -> pa.Table:
    """Parse lines one by one; `line_numbers` gives each line's number in the raw file. Rejected
    lines are counted in `tally` and skipped."""
    for line, raw in zip(map(int, line_numbers), lines):
        if not raw.strip():
            tally.blank_lines += 1
            continue
        try:
            append_row(columns, line, _decode_object(raw, tally), tally)
        except Rejected as err:
            tally.reject(line, raw, err)
    return pa.table(columns, schema=schema)


def _log_rejections(tally: FileTally, report_path: Path) -> None:
    for reason, count in sorted(tally.rejected.items()):
        first = tally.examples[reason][0] if tally.examples[reason] else None
        where = f" line {first['line']}" if first else ""
        detail = f" ({first['detail']})" if first and first.get("detail") else ""
        log.warning(
            "%s%s: %s%s: skipped; %d such lines in %s, see %s",
            tally.name, where, reason, detail, count, tally.path, report_path,
        )


def _check_tally(tally: FileTally, report: dict, max_bad_share: float, report_path: str | Path) -> None:
    """Raise IngestFileError when too many lines are malformed or no row is valid."""
    share = tally.rejected_total / tally.lines_read if tally.lines_read else 0.0
    if share > max_bad_share:
        # A metadata file given as data.reviews fails on every line for want of reviewerID, so
        # name that likelier cause before the generic advice.
        swapped = ""
        if tally.rejected.get("missing reviewerID", 0) > tally.lines_read / 2:
            swapped = " Most lines lack reviewerID: is data.reviews a metadata file?"
        raise IngestFileError(
            f"{tally.path}: {tally.rejected_total:,} of {tally.lines_read:,} lines ({share:.2%}) "
            f"are malformed, more than ingest.max_bad_share = {max_bad_share:.2%}.{swapped} See "
            f"{report_path} for the reasons and examples, then download or repair the file, or "
            "raise ingest.max_bad_share",
            report,
        )
    if tally.rows_written == 0:
        noun = "review" if tally.name == "reviews" else "product"
        raise IngestFileError(
            f"{tally.path}: no valid {noun} rows in {tally.lines_read:,} lines; check that "
            f"data.{tally.name} points at an Amazon Review Data JSON-lines file",
            report,
        )


def ingest_file(
    kind: str,
    src: str | Path,
    dst: str | Path,
    *,
    max_bad_share: float,
    examples: int = 5,
    report_path: str | Path = "reports/ingest.json",
    block_bytes: int = BLOCK_BYTES,
) -> dict:
    """Parse one raw file (`kind` "reviews" or "meta") into Parquet at `dst` and return its report.

    The report contains path, format, lines_read, rows_written, blank_lines, rejected_total,
    rejected {reason: count}, examples {reason: [{line, excerpt, detail}]} (at most `examples`
    per reason), python_literal_lines and invalid_values {field: count}.

    Raises IngestFileError, with the report as its `report` attribute, when more than
    `max_bad_share` of the lines are rejected or when no row is valid. `dst` is then left as it
    was. `report_path` is only named in messages.
    """
    src, dst = Path(src), Path(dst)
    if kind == "reviews":
        append_row, new_columns, schema = _append_review, _review_columns, REVIEWS_SCHEMA
    elif kind == "meta":
        append_row, new_columns, schema = _append_product, _product_columns, PRODUCTS_SCHEMA
    else:
        raise ValueError(f"kind must be 'reviews' or 'meta', got {kind!r}")

    started = time.perf_counter()
    tally = FileTally(kind, src, detect_format(src), examples)
    with atomic_path(dst, suffix=".parquet") as tmp:
        # Dictionary-encode only the id columns: review texts rarely repeat, so building a
        # dictionary for them costs time and saves no space. Min/max statistics of free text
        # help no reader either.
        ids = [name for name in ("reviewer_id", "asin") if name in schema.names]
        text = {"review_text", "summary", "title", "description", "brand", "image_urls_high", "image_urls"}
        stats = [name for name in schema.names if name not in text]
        writer = pq.ParquetWriter(tmp, schema, use_dictionary=ids, write_statistics=stats)
        # Row groups are encoded and compressed on a writer thread (pyarrow releases the GIL)
        # while the next blocks are parsed. At most one row group waits for it.
        write_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-writer")
        writing = None
        pending: list[pa.Table] = []
        pending_rows = 0
        try:
            blocks = _iter_file_blocks(src, tally.format, block_bytes, src.name)
            for first_line, n_lines, block in blocks:
                tally.lines_read += n_lines
                if kind == "reviews":
                    tables = _parse_review_block(block, n_lines, first_line, tally)
                else:
                    lines = block.split(b"\n")[:-1]
                    line_numbers = range(first_line, first_line + n_lines)
                    tables = [_parse_lines(lines, line_numbers, append_row, new_columns(), schema, tally)]
                for table in tables:
                    tally.rows_written += table.num_rows
                    pending.append(table)
                    pending_rows += table.num_rows
                if pending_rows >= ROW_GROUP_ROWS:
                    if writing is not None:
                        writing.result()
                    writing = write_pool.submit(writer.write_table, pa.concat_tables(pending))
                    pending, pending_rows = [], 0
            if writing is not None:
                writing.result()
            if pending_rows:
                writer.write_table(pa.concat_tables(pending))
        finally:
            write_pool.shutdown(wait=True)
            writer.close()

        _log_rejections(tally, Path(report_path))
        report = tally.report()
        _check_tally(tally, report, max_bad_share, report_path)

    log.info(
        "%s: %s lines read, %s rows written, %s rejected, %s blank (%s, %.1f s)",
        kind, f"{tally.lines_read:,}", f"{tally.rows_written:,}", f"{tally.rejected_total:,}",
        f"{tally.blank_lines:,}", tally.format, time.perf_counter() - started,
    )
    return report


def run_ingest(
    reviews: str | Path,
    meta: str | Path,
    *,
    reviews_out: str | Path,
    products_out: str | Path,
    report_out: str | Path,
    max_bad_share: float,
    examples: int,
    block_bytes: int = BLOCK_BYTES,
) -> dict:
    """Ingest the reviews and metadata files and write the report {"reviews": ..., "meta": ...}.

    The report is also written when a file has too many malformed lines, so that the user can
    read its examples. The StageError is raised after that.
    """
    if not 0.0 <= max_bad_share <= 1.0:
        raise ParamsError(f"params.yaml: `ingest.max_bad_share` must be in [0, 1], got {max_bad_share}")
    if examples < 0:
        raise ParamsError(f"params.yaml: `ingest.examples` must not be negative, got {examples}")
    for path, key in ((reviews, "data.reviews"), (meta, "data.meta")):
        if not Path(path).is_file():
            raise StageError(
                f"{path} not found; run the download stage (dvc repro download) to fetch it, "
                f"or set {key} in params.yaml to the path of the file"
            )

    def ingest(kind: str, src: str | Path, dst: str | Path) -> dict:
        return ingest_file(
            kind, src, dst, max_bad_share=max_bad_share, examples=examples,
            report_path=report_out, block_bytes=block_bytes,
        )

    # Metadata is parsed line by line in Python while the reviews spend most of their time in
    # the inflater and pyarrow without the GIL, so the two files overlap well on two cores.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-meta") as pool:
        meta_job = pool.submit(ingest, "meta", meta, products_out)
        outcomes = {}
        try:
            outcomes["reviews"] = ingest("reviews", reviews, reviews_out)
        except IngestFileError as err:
            outcomes["reviews"] = err
        try:
            outcomes["meta"] = meta_job.result()
        except IngestFileError as err:
            outcomes["meta"] = err

    report = {kind: getattr(outcome, "report", outcome) for kind, outcome in outcomes.items()}
    write_json(report_out, report)
    for outcome in outcomes.values():
        if isinstance(outcome, IngestFileError):
            raise outcome
    return report

