"""Ingest: raw JSON lines (plain or gzip) to typed Parquet, with malformed lines counted."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import threading
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from deepmine import ingest
from deepmine.cli import StageError
from deepmine.ingest import IngestFileError, ingest_file, run_ingest
from deepmine.markup import clean_html, clean_title

REPO = Path(__file__).resolve().parents[1]


def review(reviewer: str, asin: str, unix_time: int, **extra) -> dict:
    return {"reviewerID": reviewer, "asin": asin, "unixReviewTime": unix_time, **extra}


def write_lines(path: Path, lines: list[str | dict], *, gzipped: bool = False) -> Path:
    """Write one line per entry (dicts as JSON); gzip the bytes when asked, whatever the name."""
    text = "".join((json.dumps(x) if isinstance(x, dict) else x) + "\n" for x in lines)
    data = gzip.compress(text.encode("utf-8"), mtime=0) if gzipped else text.encode("utf-8")
    path.write_bytes(data)
    return path


def ingest_reviews(src: Path, tmp_path: Path, **kwargs) -> tuple[dict[str, list], dict]:
    """Ingest a reviews file; return its columns as Python lists (nulls as None) and its report."""
    kwargs.setdefault("max_bad_share", 1.0)
    report = ingest_file("reviews", src, tmp_path / "reviews.parquet", **kwargs)
    return pq.read_table(tmp_path / "reviews.parquet").to_pydict(), report


def ingest_products(src: Path, tmp_path: Path, **kwargs) -> tuple[dict[str, list], dict]:
    kwargs.setdefault("max_bad_share", 1.0)
    report = ingest_file("meta", src, tmp_path / "products.parquet", **kwargs)
    return pq.read_table(tmp_path / "products.parquet").to_pydict(), report


THREE_REVIEWS = [
    review("U1", "A1", 1000, overall=5.0, reviewText="great", summary="five", vote="2", verified=True),
    review("U2", "A1", 2000, overall=3.0, reviewText="ok", verified=False),
    review("U1", "A2", 3000, overall=1.0, summary="bad"),
]


# ------------------------------------------------------------------------------------------
# Formats


def test_gzip_named_json_is_read_as_gzip(tmp_path):
    src = write_lines(tmp_path / "reviews.json", THREE_REVIEWS, gzipped=True)

    rows, report = ingest_reviews(src, tmp_path)

    assert report["format"] == "gzip"
    assert report["lines_read"] == 3
    assert report["rows_written"] == 3
    assert rows["reviewer_id"] == ["U1", "U2", "U1"]
    assert rows["asin"] == ["A1", "A1", "A2"]
    assert rows["unix_time"] == [1000, 2000, 3000]


def test_plain_text_named_gz_is_read_as_plain(tmp_path):
    src = write_lines(tmp_path / "reviews.json.gz", THREE_REVIEWS, gzipped=False)

    rows, report = ingest_reviews(src, tmp_path)

    assert report["format"] == "plain"
    assert report["rows_written"] == 3
    assert rows["line"] == [1, 2, 3]
    assert rows["overall"] == [5.0, 3.0, 1.0]


def test_reviews_columns_and_types(tmp_path):
    src = write_lines(tmp_path / "r.json", THREE_REVIEWS)

    ingest_reviews(src, tmp_path)
    table = pq.read_table(tmp_path / "reviews.parquet")

    assert table.schema == ingest.REVIEWS_SCHEMA
    assert table.column("review_text").to_pylist() == ["great", "ok", None]
    assert table.column("summary").to_pylist() == ["five", None, "bad"]
    assert table.column("vote").to_pylist() == [2, None, None]
    assert table.column("verified").to_pylist() == [True, False, None]


def test_crlf_and_missing_final_newline(tmp_path):
    text = "\r\n".join(json.dumps(r) for r in THREE_REVIEWS)  # no newline after the last line
    src = tmp_path / "r.json"
    src.write_bytes(text.encode())

    rows, report = ingest_reviews(src, tmp_path)

    assert report["lines_read"] == 3
    assert report["rejected_total"] == 0
    assert rows["asin"] == ["A1", "A1", "A2"]


def test_line_longer_than_block(tmp_path):
    long_text = "x" * 5000
    lines = [review("U1", "A1", 1), review("U2", "A2", 2, reviewText=long_text), review("U3", "A3", 3)]
    src = write_lines(tmp_path / "r.json", lines)

    rows, report = ingest_reviews(src, tmp_path, block_bytes=64)

    assert report["rows_written"] == 3
    assert rows["line"] == [1, 2, 3]
    assert rows["review_text"] == [None, long_text, None]


# ------------------------------------------------------------------------------------------
# Malformed lines


def test_broken_json_line_in_middle_is_skipped(tmp_path):
    lines = [
        review("U1", "A1", 1),
        review("U2", "A1", 2),
        '{"reviewerID": "U3", "asin": "A1" "unixReviewTime": 3}',
        review("U4", "A2", 4),
        review("U5", "A2", 5),
    ]
    src = write_lines(tmp_path / "r.json", lines)

    rows, report = ingest_reviews(src, tmp_path)

    assert rows["line"] == [1, 2, 4, 5]
    assert rows["reviewer_id"] == ["U1", "U2", "U4", "U5"]
    assert report["lines_read"] == 5
    assert report["rows_written"] == 4
    assert report["rejected"] == {"invalid JSON": 1}
    assert report["examples"] == {
        "invalid JSON": [
            {
                "line": 3,
                "excerpt": '{"reviewerID": "U3", "asin": "A1" "unixReviewTime": 3}',
                "detail": "Expecting ',' delimiter",
            }
        ]
    }


def test_rejections_counted_by_reason(tmp_path):
    lines = [
        review("U1", "A1", 1),
        {"asin": "A1", "unixReviewTime": 2},
        review("U3", "", 3),
        review("U4", "A1", "1393372800"),
        review("U5", "A1", 1.5e9),
        "[1, 2]",
        "   ",
        review("U8", "A8", 8),
    ]
    src = write_lines(tmp_path / "r.json", lines)

    rows, report = ingest_reviews(src, tmp_path)

    assert rows["line"] == [1, 8]
    assert report["rejected"] == {
        "invalid unixReviewTime": 2,
        "missing asin": 1,
        "missing reviewerID": 1,
        "not a JSON object": 1,
    }
    assert report["rejected_total"] == 5
    assert report["blank_lines"] == 1
    assert [e["line"] for e in report["examples"]["invalid unixReviewTime"]] == [4, 5]


def test_invalid_utf8_line_is_skipped(tmp_path):
    good = json.dumps(review("U1", "A1", 1)).encode()
    bad = b'{"reviewerID": "U\xff", "asin": "A1", "unixReviewTime": 2}'
    lone_surrogate = json.dumps(review("U3", "A1", 3)).replace("U3", "U\\ud800").encode()
    src = tmp_path / "r.json"
    src.write_bytes(b"\n".join([good, bad, lone_surrogate, good]) + b"\n")

    rows, report = ingest_reviews(src, tmp_path)

    assert rows["line"] == [1, 4]
    assert report["rejected"] == {"invalid UTF-8": 2}


def test_examples_limited_per_reason(tmp_path):
    lines = [review("U0", "A0", 0)] + ["{broken"] * 4
    src = write_lines(tmp_path / "r.json", lines)

    _, report = ingest_reviews(src, tmp_path, examples=2)

    assert report["rejected"] == {"invalid JSON": 4}
    assert [e["line"] for e in report["examples"]["invalid JSON"]] == [2, 3]


def test_wrong_optional_types_become_null_and_are_counted(tmp_path):
    lines = [
        review("U1", "A1", 1, overall="5", reviewText=7, verified="yes"),
        review("U2", "A1", 2, overall=True, summary=["x"]),
        review("U3", "A1", 3, overall=4.0, reviewText="  \n ", summary=""),
    ]
    src = write_lines(tmp_path / "r.json", lines)

    rows, report = ingest_reviews(src, tmp_path)

    assert rows["overall"] == [None, None, 4.0]
    assert rows["review_text"] == [None, None, None]
    assert rows["summary"] == [None, None, None]
    assert report["rejected_total"] == 0
    assert report["invalid_values"] == {"overall": 2, "reviewText": 1, "summary": 1, "verified": 1}


def test_python_literal_line_is_parsed(tmp_path):
    lines = [
        review("U1", "A1", 1),
        "{'reviewerID': 'U2', 'asin': 'A2', 'unixReviewTime': 2, 'overall': 4.0, "
        "'reviewText': \"it's fine\", 'verified': True}",
        review("U3", "A3", 3),
    ]
    src = write_lines(tmp_path / "r.json", lines)

    rows, report = ingest_reviews(src, tmp_path)

    assert report["python_literal_lines"] == 1
    assert report["rejected_total"] == 0
    assert rows["reviewer_id"] == ["U1", "U2", "U3"]
    assert rows["review_text"][1] == "it's fine"
    assert rows["overall"][1] == 4.0
    assert rows["verified"] == [None, True, None]


def test_vote_with_thousands_separator(tmp_path):
    votes = ["1,234", "3", 7, "12,345,678", "many", "", None, "99999999999"]
    lines = [review(f"U{i}", "A1", i, vote=v) for i, v in enumerate(votes)]
    src = write_lines(tmp_path / "r.json", lines)

    ingest_reviews(src, tmp_path)
    table = pq.read_table(tmp_path / "reviews.parquet")

    assert table.column("vote").to_pylist() == [1234, 3, 7, 12345678, None, None, None, None]


def test_vote_parsing_same_on_both_paths(tmp_path, monkeypatch):
    # All-string votes keep the block on the fast path; the int vote above forces the line parser.
    votes = ["1,234", " 56 ", "many", "", "99999999999", "0"]
    lines = [review(f"U{i}", "A1", i, vote=v) for i, v in enumerate(votes)]
    src = write_lines(tmp_path / "r.json", lines)

    fast, fast_report = ingest_reviews(src, tmp_path)
    monkeypatch.setattr(ingest, "_reviews_fast", lambda *args: None)
    slow, slow_report = ingest_reviews(src, tmp_path)

    assert fast["vote"] == slow["vote"]
    assert pq.read_table(tmp_path / "reviews.parquet").column("vote").to_pylist() == [
        1234, 56, None, None, None, 0,
    ]
    assert fast_report["invalid_values"] == {"vote": 2}
    assert slow_report["invalid_values"] == {"vote": 2}


def test_fast_path_matches_line_parser(tmp_path, monkeypatch):
    lines: list[str | dict] = []
    for i in range(1000):
        extra = {"overall": float(i % 5 + 1), "reviewText": f"text {i}" if i % 7 else "",
                 "summary": f"s{i}", "vote": f"{i},00{i % 10}", "verified": i % 2 == 0}
        lines.append(review(f"U{i % 40}", f"A{i % 13}", 1_000_000 + i, **extra))
    # Suspect lines (not "{...}") go straight to the line parser. The others fail inside pyarrow,
    # so their run is halved until the failing piece is short enough for the line parser.
    lines[150] = '{"reviewerID": "U1", "asin": "A1", "unixRevi'
    lines[151] = ""
    lines[210] = "{'reviewerID': 'U9', 'asin': 'A9', 'unixReviewTime': 9}"
    lines[500] = review("U5", "A5", "500")
    lines[501] = review("U6", "A6", 501, vote=3)
    lines[777] = '{"reviewerID": "U7", "asin": "A7", "unixReviewTime": 7} {"asin": "A8"}'
    src = write_lines(tmp_path / "r.json", lines)

    fast_path_blocks = []
    real_fast = ingest._reviews_fast

    def counting_fast(*args):
        table = real_fast(*args)
        fast_path_blocks.append(table is not None)
        return table

    monkeypatch.setattr(ingest, "_reviews_fast", counting_fast)
    mixed, mixed_report = ingest_reviews(src, tmp_path, block_bytes=64 << 10)
    monkeypatch.setattr(ingest, "_reviews_fast", lambda *args: None)
    slow, slow_report = ingest_reviews(src, tmp_path, block_bytes=64 << 10)

    assert fast_path_blocks.count(True) > 0
    assert fast_path_blocks.count(False) > 0
    assert mixed == slow
    assert mixed_report == slow_report
    assert mixed_report["rows_written"] == 996
    assert mixed_report["blank_lines"] == 1
    assert mixed_report["rejected"] == {"invalid JSON": 2, "invalid unixReviewTime": 1}
    assert mixed_report["invalid_values"] == {}
    assert mixed_report["python_literal_lines"] == 1
    assert mixed["vote"][mixed["line"].index(502)] == 3


# ------------------------------------------------------------------------------------------
# Products


def product(asin: str, **extra) -> dict:
    return {"asin": asin, **extra}


def test_examples_are_the_first_lines_whatever_the_path(tmp_path):
    # Line 151 is cut short, so the line parser meets it first. Line 21 breaks inside the braces
    # and turns up only when the fast path halves its run. The example is still line 21.
    lines: list[str | dict] = [review(f"U{i}", "A1", i) for i in range(300)]
    lines[20] = '{"reviewerID": "U20" "asin": "A1", "unixReviewTime": 20}'
    lines[150] = '{"reviewerID": "U150", "asin": "A1", "unixRev'
    src = write_lines(tmp_path / "r.json", lines)

    _, report = ingest_reviews(src, tmp_path, examples=1)

    assert report["rejected"] == {"invalid JSON": 2}
    assert [e["line"] for e in report["examples"]["invalid JSON"]] == [21]


def test_valid_suspect_line_keeps_its_place(tmp_path):
    # A valid review with leading spaces is a suspect line, parsed apart from its block.
    lines: list[str | dict] = [review(f"U{i}", "A1", i) for i in range(200)]
    lines[100] = "   " + json.dumps(review("U100", "A1", 100))
    src = write_lines(tmp_path / "r.json", lines)

    columns, report = ingest_reviews(src, tmp_path)

    assert report["rows_written"] == 200
    assert columns["line"] == list(range(1, 201))
    assert columns["reviewer_id"][100] == "U100"


def test_prefetch_yields_in_order_then_raises():
    def items():
        yield from range(5)
        raise EOFError("cut")

    seen = []
    with pytest.raises(EOFError, match="cut"):
        for item in ingest._prefetch(items(), depth=2):
            seen.append(item)
    assert seen == [0, 1, 2, 3, 4]


def test_prefetch_stops_its_thread_when_closed_early():
    produced = []

    def items():
        for i in range(1000):
            produced.append(i)
            yield i

    prefetched = ingest._prefetch(items(), depth=2)
    assert [next(prefetched) for _ in range(3)] == [0, 1, 2]
    prefetched.close()

    # The thread produces at most `depth` items beyond those taken, plus the one it was putting.
    assert len(produced) <= 3 + 2 + 1
    assert not any(t.name == "ingest-reader" for t in threading.enumerate())


def test_image_key_variants(tmp_path):
    lines = [
        product("P1", imageURL=["http://x/1s.jpg", "", "http://x/2s.jpg"],
                imageURLHighRes=["http://x/1.jpg", "http://x/2.jpg"]),
        product("P2", image=["http://x/old.jpg"]),
        product("P3", imageURL=[], imageURLHighRes=[]),
        product("P4"),
        product("P5", imageURL=[], image=["http://x/fallback.jpg"]),
        product("P6", imUrl="http://x/2014.jpg"),
    ]
    src = write_lines(tmp_path / "meta.json", lines)

    rows, report = ingest_products(src, tmp_path)

    assert rows["image_urls"] == [
        ["http://x/1s.jpg", "http://x/2s.jpg"],
        ["http://x/old.jpg"],
        [],
        [],
        ["http://x/fallback.jpg"],
        ["http://x/2014.jpg"],
    ]
    assert rows["image_urls_high"] == [
        ["http://x/1.jpg", "http://x/2.jpg"], [], [], [], [], [],
    ]
    assert report["invalid_values"] == {}


def test_duplicate_metadata_rows_are_kept(tmp_path):
    row = product("P1", title="PC World", description=["A magazine."])
    src = write_lines(tmp_path / "meta.json", [row, product("P2"), row])

    rows, report = ingest_products(src, tmp_path)

    assert rows["asin"] == ["P1", "P2", "P1"]
    assert rows["line"] == [1, 2, 3]
    assert rows["title"] == ["PC World", None, "PC World"]
    assert report["rows_written"] == 3


def test_html_in_titles_and_descriptions(tmp_path):
    lines = [
        product("P1", title="Disney &amp; Me",
                description=["<p>Tips &amp; tricks</p>", "", "<i>Maximum PC</i> reviews<br>more"]),
        product("P2", title='<span class="a-size-medium a-color-secondary"', description=[]),
        product("P3", title=' Magazines" />', description=["", "  "]),
        product("P4", title="<b></b>", description="plain &lt;b&gt; text"),
        product("P5", title="  Cond\u00e9   Nast ", description=["<!-- x --><div>a</div><div>b</div>"]),
    ]
    src = write_lines(tmp_path / "meta.json", lines)

    rows, _ = ingest_products(src, tmp_path)

    assert rows["title"] == ["Disney & Me", None, None, None, "Cond\u00e9 Nast"]
    assert rows["description"] == [
        "Tips & tricks Maximum PC reviews more",
        None,
        None,
        "plain <b> text",
        "a b",
    ]


def test_brand_and_main_cat_cleaned(tmp_path):
    img = ('<img src="https://images-na.ssl-images-amazon.com/x.png" class="nav-categ-image" '
           'alt="AMAZON FASHION"/>')
    lines = [
        product("P1", brand="Procter &amp; Gamble", main_cat=img),
        product("P2", brand="", main_cat="Grocery"),
        product("P3", brand=5, title=["not", "a", "string"]),
    ]
    src = write_lines(tmp_path / "meta.json", lines)

    rows, report = ingest_products(src, tmp_path)

    assert rows["brand"] == ["Procter & Gamble", None, None]
    assert rows["main_cat"] == ["AMAZON FASHION", "Grocery", None]
    assert report["invalid_values"] == {"brand": 1, "title": 1}


def test_products_python_literal_and_missing_asin(tmp_path):
    lines = [
        "{'asin': 'P1', 'title': 'Tea', 'imUrl': 'http://x/t.jpg', 'description': 'Green tea.'}",
        product("P2"),
        {"title": "no asin"},
    ]
    src = write_lines(tmp_path / "meta.json", lines)

    rows, report = ingest_products(src, tmp_path)

    assert rows["asin"] == ["P1", "P2"]
    assert rows["description"] == ["Green tea.", None]
    assert report["python_literal_lines"] == 1
    assert report["rejected"] == {"missing asin": 1}


def test_clean_html_and_title_rules():
    assert clean_html("a&nbsp;&nbsp;b\n\tc") == "a b c"
    assert clean_html("Ages 3 < 5 and 7 > 6") == "Ages 3 < 5 and 7 > 6"
    assert clean_html("<br/>") is None
    assert clean_title("<span>PC World</span>") == "PC World"
    assert clean_title('<span class="a-size-large">PC World</span>') is None
    assert clean_title("<div") is None


# ------------------------------------------------------------------------------------------
# Stage-level errors and the report


def test_bad_share_threshold_error_names_file(tmp_path):
    lines = [review(f"U{i}", "A1", i) for i in range(8)] + ["{broken", "not json"]
    reviews = write_lines(tmp_path / "Prime_Pantry.json", lines)
    meta = write_lines(tmp_path / "meta.json", [product("A1")])
    out = tmp_path / "out"

    with pytest.raises(IngestFileError) as caught:
        run_ingest(
            reviews, meta, reviews_out=out / "reviews.parquet", products_out=out / "products.parquet",
            report_out=out / "ingest.json", max_bad_share=0.1, examples=5,
        )

    message = str(caught.value)
    assert str(reviews) in message
    assert "2 of 10 lines (20.00%)" in message
    assert "ingest.max_bad_share = 10.00%" in message
    assert not (out / "reviews.parquet").exists()
    assert list(out.glob(".*")) == []
    report = json.loads((out / "ingest.json").read_text())
    assert report["reviews"]["rejected"] == {"invalid JSON": 2}
    assert [e["line"] for e in report["reviews"]["examples"]["invalid JSON"]] == [9, 10]
    # The metadata file is read at the same time, and its report is kept too.
    assert report["meta"]["rows_written"] == 1


def test_bad_share_at_threshold_passes(tmp_path):
    lines = [review(f"U{i}", "A1", i) for i in range(9)] + ["{broken"]
    src = write_lines(tmp_path / "r.json", lines)

    _, report = ingest_reviews(src, tmp_path, max_bad_share=0.1)

    assert report["rows_written"] == 9


def test_file_without_valid_rows_is_an_error(tmp_path):
    src = write_lines(tmp_path / "r.json", ["", "  "])

    with pytest.raises(StageError, match="no valid review rows in 2 lines"):
        ingest_file("reviews", src, tmp_path / "reviews.parquet", max_bad_share=0.01)
    assert not (tmp_path / "reviews.parquet").exists()


def test_missing_input_names_download_stage(tmp_path):
    meta = write_lines(tmp_path / "meta.json", [product("A1")])
    missing = tmp_path / "raw" / "Prime_Pantry.json.gz"

    with pytest.raises(StageError) as caught:
        run_ingest(
            missing, meta, reviews_out=tmp_path / "r.parquet", products_out=tmp_path / "p.parquet",
            report_out=tmp_path / "ingest.json", max_bad_share=0.01, examples=5,
        )

    assert str(caught.value) == (
        f"{missing} not found; run the download stage (dvc repro download) to fetch it, "
        "or set data.reviews in params.yaml to the path of the file"
    )


def test_truncated_gzip_is_an_error(tmp_path):
    lines = [review(f"U{i}", "A1", i, reviewText="word " * 50) for i in range(200)]
    whole = write_lines(tmp_path / "whole.json.gz", lines, gzipped=True).read_bytes()
    src = tmp_path / "cut.json.gz"
    src.write_bytes(whole[: len(whole) // 2])

    with pytest.raises(StageError, match=r"cut\.json\.gz: corrupt or truncated gzip data after line"):
        ingest_file("reviews", src, tmp_path / "reviews.parquet", max_bad_share=0.01, block_bytes=1024)
    assert not (tmp_path / "reviews.parquet").exists()


def test_run_ingest_writes_both_tables_and_report(tmp_path):
    reviews = write_lines(tmp_path / "reviews.json.gz", THREE_REVIEWS, gzipped=True)
    meta = write_lines(tmp_path / "meta.json", [product("A1", title="Tea"), "{oops", product("A2")])
    out = tmp_path / "out"

    report = run_ingest(
        reviews, meta, reviews_out=out / "reviews.parquet", products_out=out / "products.parquet",
        report_out=out / "ingest.json", max_bad_share=0.5, examples=5,
    )

    assert json.loads((out / "ingest.json").read_text()) == report
    assert report["reviews"]["rows_written"] == 3
    assert report["meta"] == {
        "path": str(meta),
        "format": "plain",
        "lines_read": 3,
        "rows_written": 2,
        "blank_lines": 0,
        "rejected_total": 1,
        "rejected": {"invalid JSON": 1},
        "examples": {
            "invalid JSON": [
                {"line": 2, "excerpt": "{oops", "detail": "Expecting property name enclosed in double quotes"}
            ]
        },
        "python_literal_lines": 0,
        "invalid_values": {},
    }
    assert pq.read_table(out / "products.parquet").schema == ingest.PRODUCTS_SCHEMA


def test_stage_script_runs_and_fails_cleanly(tmp_path):
    raw = tmp_path / "data" / "raw"
    raw.mkdir(parents=True)
    write_lines(raw / "r.json.gz", THREE_REVIEWS, gzipped=True)
    write_lines(raw / "m.json.gz", [product("A1"), product("A2")], gzipped=True)
    params = "data:\n  reviews: data/raw/r.json.gz\n  meta: data/raw/m.json.gz\n"
    (tmp_path / "params.yaml").write_text(params)
    script = str(REPO / "stages" / "ingest.py")

    ok = subprocess.run([sys.executable, script], cwd=tmp_path, capture_output=True, text=True)

    assert ok.returncode == 0, ok.stderr
    assert pq.read_table(tmp_path / "data/interim/reviews.parquet").num_rows == 3
    assert pq.read_table(tmp_path / "data/interim/products.parquet").num_rows == 2
    assert json.loads((tmp_path / "reports/ingest.json").read_text())["meta"]["rows_written"] == 2

    (tmp_path / "params.yaml").write_text(params.replace("m.json.gz", "absent.json.gz"))
    failed = subprocess.run([sys.executable, script], cwd=tmp_path, capture_output=True, text=True)

    assert failed.returncode == 1
    assert "Traceback" not in failed.stderr
    assert "data/raw/absent.json.gz not found; run the download stage" in failed.stderr


def test_byte_order_mark_is_ignored(tmp_path):
    src = tmp_path / "r.json"
    src.write_bytes(b"\xef\xbb\xbf" + "".join(json.dumps(r) + "\n" for r in THREE_REVIEWS).encode())

    rows, report = ingest_reviews(src, tmp_path)

    assert report["rejected_total"] == 0
    assert rows["reviewer_id"] == ["U1", "U2", "U1"]


def test_huge_integer_rating_is_invalid(tmp_path):
    src = write_lines(tmp_path / "r.json", ['{"reviewerID": "U1", "asin": "A1", "unixReviewTime": 1, '
                                            '"overall": 1' + "0" * 400 + "}"])

    rows, report = ingest_reviews(src, tmp_path)

    assert rows["overall"] == [None]
    assert report["invalid_values"] == {"overall": 1}


def test_pathological_lines_are_rejected(tmp_path):
    lines = [
        review("U1", "A1", 1),
        '{"reviewerID": "U2", "asin": "A1", "unixReviewTime": 1' + "0" * 5000 + "}",
        '{"reviewerID": "U3", "asin": "A1", "unixReviewTime": 3, "x": ' + "[" * 100_000 + "]" * 100_000 + "}",
        review("U4", "A1", 4, vote="0" * 30 + "12"),
    ]
    src = write_lines(tmp_path / "r.json", lines)

    rows, report = ingest_reviews(src, tmp_path)

    assert rows["reviewer_id"] == ["U1", "U4"]
    assert rows["vote"] == [None, 12]
    assert report["rejected"] == {"invalid JSON": 2}


def test_warning_per_reason(tmp_path, caplog):
    lines = [review("U1", "A1", 1), "{broken", '{"a": 1 "b": 2}', {"asin": "A1", "unixReviewTime": 4}]
    src = write_lines(tmp_path / "r.json", lines)

    with caplog.at_level("WARNING", logger="deepmine.ingest"):
        ingest_reviews(src, tmp_path, report_path="reports/ingest.json")

    assert caplog.messages == [
        f"reviews line 2: invalid JSON (Expecting property name enclosed in double quotes): "
        f"skipped; 2 such lines in {src}, see reports/ingest.json",
        f"reviews line 4: missing reviewerID: skipped; 1 such lines in {src}, see reports/ingest.json",
    ]


def test_metadata_given_as_reviews_names_likely_swap(tmp_path):
    meta_lines = [json.dumps({"asin": f"B{i:09d}", "title": "A magazine"}) for i in range(5)]
    path = tmp_path / "reviews.json"
    path.write_text("\n".join(meta_lines) + "\n")

    with pytest.raises(StageError) as err:
        ingest_file("reviews", path, tmp_path / "out.parquet", max_bad_share=0.01,
                    report_path=tmp_path / "ingest.json")

    assert "Most lines lack reviewerID: is data.reviews a metadata file?" in str(err.value)
