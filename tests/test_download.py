"""Download stage: fetch raw files from a local HTTP server, never refetch, fail fast offline."""

from __future__ import annotations

import hashlib
import json
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from deepmine.cli import StageError
from deepmine.download import download_raw, fetch_file, file_sha256
from deepmine.params import DataParams

REPO = Path(__file__).resolve().parents[1]
PAYLOAD = b'{"reviewerID": "U1", "asin": "A1", "unixReviewTime": 1}\n' * 3000  # 168,000 bytes


class RawFileHandler(BaseHTTPRequestHandler):
    """Serves PAYLOAD at /file, half of it under a full Content-Length at /partial, 404 elsewhere."""

    requests_seen: list[str]

    def do_GET(self):
        self.requests_seen.append(self.path)
        if self.path.endswith("/file"):
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            self.wfile.write(PAYLOAD)
        elif self.path.endswith("/partial"):
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            self.wfile.write(PAYLOAD[: len(PAYLOAD) // 2])
            self.wfile.flush()
            self.close_connection = True
        else:
            self.send_error(404)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    """A threaded HTTP server on 127.0.0.1; yields (base URL, list of request paths)."""
    seen: list[str] = []
    handler = type("Handler", (RawFileHandler,), {"requests_seen": seen})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", seen
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_download_streams_to_final_name(server, tmp_path):
    base, seen = server
    dest = tmp_path / "raw" / "Prime_Pantry.json.gz"

    entry = fetch_file(f"{base}/file", dest, timeout=5, param_key="data.reviews")

    assert dest.read_bytes() == PAYLOAD
    assert entry == {
        "path": str(dest),
        "url": f"{base}/file",
        "action": "downloaded",
        "bytes": 168_000,
        "sha256": hashlib.sha256(PAYLOAD).hexdigest(),
    }
    assert leftovers(dest.parent) == ["Prime_Pantry.json.gz"]
    assert seen == ["/file"]


def test_existing_file_is_not_refetched(server, tmp_path):
    base, seen = server
    dest = tmp_path / "meta.json.gz"
    dest.write_bytes(b"copied by hand")

    entry = fetch_file(f"{base}/file", dest, timeout=5, param_key="data.meta")

    assert seen == []
    assert dest.read_bytes() == b"copied by hand"
    assert entry["action"] == "present"
    assert entry["bytes"] == 14
    assert entry["sha256"] == hashlib.sha256(b"copied by hand").hexdigest()


def test_second_run_reports_present(server, tmp_path):
    base, seen = server
    dest = tmp_path / "reviews.json.gz"

    first = fetch_file(f"{base}/file", dest, timeout=5, param_key="data.reviews")
    second = fetch_file(f"{base}/file", dest, timeout=5, param_key="data.reviews")

    assert seen == ["/file"]
    assert first["action"] == "downloaded"
    assert second["action"] == "present"
    assert second["sha256"] == first["sha256"]
    assert second["bytes"] == first["bytes"]


def test_unreachable_url_fails_fast(tmp_path):
    port = closed_port()
    dest = tmp_path / "raw" / "Prime_Pantry.json.gz"
    url = f"http://127.0.0.1:{port}/x"

    started = time.monotonic()
    with pytest.raises(StageError) as caught:
        fetch_file(url, dest, timeout=30, param_key="data.reviews")
    elapsed = time.monotonic() - started

    message = str(caught.value)
    assert message.startswith(f"download of {url} failed (connection failed: ")
    assert f"Put the file at {dest} yourself" in message
    assert "or set data.reviews in params.yaml" in message
    assert elapsed < 5
    assert not dest.exists()


def test_partial_download_leaves_no_file(server, tmp_path):
    base, seen = server
    dest = tmp_path / "Prime_Pantry.json.gz"

    with pytest.raises(StageError, match=r"failed \(the connection closed before the whole file arrived\)"):
        fetch_file(f"{base}/partial", dest, timeout=5, param_key="data.reviews")

    assert seen == ["/partial"]
    assert leftovers(tmp_path) == []


def test_http_error_names_status(server, tmp_path):
    base, _ = server
    dest = tmp_path / "meta.json.gz"

    with pytest.raises(StageError, match=r"failed \(HTTP 404 Not Found\)\. .* set data\.meta in"):
        fetch_file(f"{base}/missing", dest, timeout=5, param_key="data.meta")

    assert leftovers(tmp_path) == []


def test_file_sha256_streams_large_file(tmp_path):
    path = tmp_path / "big.bin"
    path.write_bytes(b"\x00\x01" * 1_500_000)  # 3 MB: several read chunks

    assert file_sha256(path) == hashlib.sha256(b"\x00\x01" * 1_500_000).hexdigest()


def write_params(folder: Path, base: str) -> None:
    (folder / "params.yaml").write_text(
        "data:\n"
        "  reviews: data/raw/reviews.json.gz\n"
        "  meta: data/raw/meta.json.gz\n"
        f"  reviews_url: {base}/reviews/file\n"
        f"  meta_url: {base}/meta/file\n"
        "  download_timeout: 5\n"
    )


def test_stage_script_writes_report(server, tmp_path):
    base, seen = server
    write_params(tmp_path, base)
    (tmp_path / "data" / "raw").mkdir(parents=True)
    (tmp_path / "data" / "raw" / "meta.json.gz").write_bytes(b"meta")

    done = subprocess.run(
        [sys.executable, str(REPO / "stages" / "download.py")], cwd=tmp_path, capture_output=True, text=True
    )

    assert done.returncode == 0, done.stderr
    assert seen == ["/reviews/file"]
    report = json.loads((tmp_path / "reports" / "download.json").read_text())
    assert report == {
        "reviews": {
            "path": "data/raw/reviews.json.gz",
            "url": f"{base}/reviews/file",
            "action": "downloaded",
            "bytes": 168_000,
            "sha256": hashlib.sha256(PAYLOAD).hexdigest(),
        },
        "meta": {
            "path": "data/raw/meta.json.gz",
            "url": f"{base}/meta/file",
            "action": "present",
            "bytes": 4,
            "sha256": hashlib.sha256(b"meta").hexdigest(),
        },
    }


def test_stage_script_offline_exits_with_one_line(tmp_path):
    write_params(tmp_path, f"http://127.0.0.1:{closed_port()}")

    done = subprocess.run(
        [sys.executable, str(REPO / "stages" / "download.py")], cwd=tmp_path, capture_output=True, text=True
    )

    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1
    assert "Put the file at data/raw/reviews.json.gz yourself" in errors[0]
    assert not (tmp_path / "reports" / "download.json").exists()


def test_missing_custom_path_with_default_url_is_not_fetched(tmp_path):
    data = DataParams(reviews=str(tmp_path / "Magazine_Subscription_5.json.gz"), meta=str(tmp_path / "meta.json.gz"))

    with pytest.raises(StageError) as err:
        download_raw(data)

    assert "Magazine_Subscription_5.json.gz not found" in str(err.value)
    assert "data.reviews_url still points at the default category" in str(err.value)
    assert list(tmp_path.iterdir()) == []
