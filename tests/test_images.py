"""Tests of the images stage against a local HTTP server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import io
import json
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from deepmine.cli import StageError
from deepmine.images import (
    ImageError,
    build_image_set,
    check_success_share,
    item_image_urls,
    load_image_rgb,
    read_items,
)
from deepmine.params import ImagesParams

REPO = Path(__file__).resolve().parents[1]
MAX_BYTES = 50_000
GREEN = (10, 200, 30)


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def red_jpeg() -> bytes:
    return encode(Image.new("RGB", (100, 80), (255, 0, 0)), "JPEG", quality=95)


def green_png() -> bytes:
    return encode(Image.new("RGB", (80, 80), GREEN), "PNG")


def half_transparent_png() -> bytes:
    """60x60 RGBA: left half fully transparent black, right half opaque blue."""
    image = Image.new("RGBA", (60, 60), (0, 0, 255, 255))
    image.paste((0, 0, 0, 0), (0, 0, 30, 60))
    return encode(image, "PNG")


def palette_png() -> bytes:
    """40x40 palette image: top half index 1 (transparent), bottom half index 0 (green)."""
    image = Image.new("P", (40, 40), 0)
    image.putpalette([0, 255, 0, 0, 0, 0] + [0] * 762)
    image.paste(1, (0, 0, 40, 20))
    return encode(image, "PNG", transparency=1)


def cmyk_jpeg() -> bytes:
    return encode(Image.new("CMYK", (64, 64), (0, 255, 255, 0)), "JPEG", quality=95)


def gray16_png() -> bytes:
    """40x40 16-bit grayscale: left half 32896 (128 * 257), right half 65535."""
    samples = np.full((40, 40), 32896, dtype=np.uint16)
    samples[:, 20:] = 65535
    return encode(Image.fromarray(samples), "PNG")


def gray_png() -> bytes:
    return encode(Image.new("L", (40, 40), 77), "PNG")


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict = field(default_factory=dict)
    delay: float = 0.0
    content_length: bool = True


class ImageServer:
    """http.server on 127.0.0.1 with a free port. Each path sends its list of replies in turn,
    repeating the last one, and the server counts the requests per path."""

    def __init__(self):
        self.routes: dict[str, list[Reply]] = {}
        self.counts: dict[str, int] = {}
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                with server.lock:
                    n = server.counts.get(self.path, 0)
                    server.counts[self.path] = n + 1
                replies = server.routes.get(self.path, [Reply(404, b"not found")])
                reply = replies[min(n, len(replies) - 1)]
                time.sleep(reply.delay)
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                if reply.content_length:
                    self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            def log_message(self, *args):
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            block_on_close = False

            def handle_error(self, request, client_address):
                pass  # the client gave up on a slow reply; nothing to report

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def total(self) -> int:
        return sum(self.counts.values())

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def server():
    instance = ImageServer()
    yield instance
    instance.close()


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_items(high: list[list[str]], low: list[list[str]] | None = None) -> pd.DataFrame:
    low = low if low is not None else [[] for _ in high]
    return pd.DataFrame({
        "item": np.arange(len(high), dtype=np.int32),
        "asin": [f"A{i:03d}" for i in range(len(high))],
        "image_urls_high": high,
        "image_urls": low,
    })


def make_params(tmp_path: Path, **overrides) -> ImagesParams:
    values = dict(source="http", workers=4, timeout=0.5, retries=2, backoff=0.01, max_bytes=MAX_BYTES,
                  min_success_share=0.0, cache_dir=str(tmp_path / "cache"))
    values.update(overrides)
    return ImagesParams(**values)


def cache_file(tmp_path: Path, url: str) -> Path:
    return tmp_path / "cache" / hashlib.sha256(url.encode("utf-8")).hexdigest()


GOOD = {
    "/red.jpg": red_jpeg,
    "/green.png": green_png,
    "/rgba.png": half_transparent_png,
    "/palette.png": palette_png,
    "/cmyk.jpg": cmyk_jpeg,
    "/gray16.png": gray16_png,
    "/gray.png": gray_png,
}


def serve_good(server: ImageServer) -> list[str]:
    for path, make in GOOD.items():
        server.routes[path] = [Reply(body=make())]
    return [server.url(path) for path in GOOD]


# ---------------------------------------------------------------------------------------------
# Decoding


def test_red_jpeg_is_padded_on_white():
    pixels = load_image_rgb(red_jpeg(), 40)

    assert pixels.shape == (40, 40, 3)
    assert pixels.dtype == np.uint8
    # 100x80 scales to 40x32, centred: rows 4..35 are the image, 4 white rows above and below.
    band = pixels[4:36].reshape(-1, 3).astype(int)
    assert np.abs(band - [255, 0, 0]).max() <= 2
    assert (pixels[:4] == 255).all()
    assert (pixels[36:] == 255).all()


def test_png_keeps_exact_colours():
    pixels = load_image_rgb(green_png(), 40)

    assert (pixels == GREEN).all()


def test_transparent_area_becomes_white():
    pixels = load_image_rgb(half_transparent_png(), 40)

    # LANCZOS rings within 3 columns of the edge at column 20.
    assert (pixels[:, :17] == 255).all()
    assert (pixels[:, 23:] == (0, 0, 255)).all()


def test_palette_transparency_becomes_white():
    pixels = load_image_rgb(palette_png(), 40)

    assert (pixels[:20] == 255).all()
    assert (pixels[20:] == (0, 255, 0)).all()


def test_cmyk_converts_to_rgb():
    pixels = load_image_rgb(cmyk_jpeg(), 40).reshape(-1, 3).astype(int)

    assert np.abs(pixels - [255, 0, 0]).max() <= 2


def test_16bit_grayscale_is_scaled_not_clipped():
    pixels = load_image_rgb(gray16_png(), 40)

    assert (pixels[:, :20] == 128).all()
    assert (pixels[:, 20:] == 255).all()


def test_grayscale_becomes_three_equal_channels():
    pixels = load_image_rgb(gray_png(), 40)

    assert (pixels == 77).all()


def test_exif_orientation_is_applied():
    # Stored 60x40, red left and blue right; orientation 6 means "rotate 90 degrees clockwise
    # to display", so the displayed 40x60 image is red on top and blue below.
    image = Image.new("RGB", (60, 40), (255, 0, 0))
    image.paste((0, 0, 255), (30, 0, 60, 40))
    exif = Image.Exif()
    exif[0x0112] = 6

    pixels = load_image_rgb(encode(image, "PNG", exif=exif), 40)

    assert (pixels[2:17, 10:30] == (255, 0, 0)).all()
    assert (pixels[23:38, 10:30] == (0, 0, 255)).all()
    assert (pixels[:, :6] == 255).all()  # 40x60 scales to 27x40, centred at column 6
    assert (pixels[:, 33:] == 255).all()


def test_load_image_rgb_reads_a_path(tmp_path):
    path = tmp_path / "green.png"
    path.write_bytes(green_png())

    assert (load_image_rgb(path, 16) == GREEN).all()
    assert load_image_rgb(str(path), 16).shape == (16, 16, 3)


def test_truncated_jpeg_is_not_an_image():
    data = red_jpeg()

    with pytest.raises(ImageError) as caught:
        load_image_rgb(data[: len(data) // 2], 40)

    assert caught.value.status == "not an image"


def test_html_is_not_an_image():
    with pytest.raises(ImageError) as caught:
        load_image_rgb(b"<!DOCTYPE html><html></html>", 40)

    assert caught.value.status == "not an image"
    assert caught.value.detail == "unknown image format (data starts with b'<!DOCTYPE html><')"


def test_decompression_bomb_is_too_large(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)

    with pytest.raises(ImageError) as caught:
        load_image_rgb(green_png(), 40)

    assert caught.value.status == "too large"


# ---------------------------------------------------------------------------------------------
# URL choice


def test_preferred_list_first_then_fallback():
    items = make_items(
        high=[["http://h/0.jpg", "http://h/0b.jpg"], [], ["", "http://h/2.jpg"], []],
        low=[["http://l/0.jpg"], ["http://l/1.jpg"], [], None],
    )

    assert item_image_urls(items, "imageURLHighRes") == ["http://h/0.jpg", "http://l/1.jpg", "http://h/2.jpg", None]
    assert item_image_urls(items, "imageURL") == ["http://l/0.jpg", "http://l/1.jpg", "http://h/2.jpg", None]


# ---------------------------------------------------------------------------------------------
# Downloading


def test_every_status_from_local_server(server, tmp_path):
    good = serve_good(server)
    data = red_jpeg()
    server.routes.update({
        "/truncated.jpg": [Reply(body=data[: len(data) // 2])],
        "/page.html": [Reply(body=b"<html><body>Sign in</body></html>", headers={"Content-Type": "text/html"})],
        "/flaky.png": [Reply(500, b"oops"), Reply(body=green_png())],
        "/limited.png": [Reply(429, b"slow down", headers={"Retry-After": "0"}), Reply(body=gray_png())],
        "/broken.png": [Reply(503, b"down")],
        "/slow.jpg": [Reply(body=red_jpeg(), delay=1.5)],
        "/huge.bin": [Reply(body=b"\0" * (MAX_BYTES + 1))],
        "/huge-stream.bin": [Reply(body=b"\0" * (MAX_BYTES + 1), content_length=False)],
    })
    others = [
        server.url("/truncated.jpg"), server.url("/page.html"), server.url("/missing.jpg"),
        server.url("/flaky.png"), server.url("/limited.png"), server.url("/broken.png"),
        server.url("/slow.jpg"), server.url("/huge.bin"), server.url("/huge-stream.bin"),
        "ftp://127.0.0.1/red.jpg", "file:///tmp/red.jpg", "http://nonexistent.invalid/x.jpg",
        f"http://127.0.0.1:{closed_port()}/x.jpg",
    ]
    items = make_items([[url] for url in good + others] + [[]])

    result = build_image_set(items, make_params(tmp_path))

    assert result.status["status"].tolist() == [
        "ok", "ok", "ok", "ok", "ok", "ok", "ok",
        "not an image", "not an image", "http 404", "ok", "ok", "http 503", "timeout", "too large",
        "too large", "invalid url", "invalid url", "name resolution", "connection error", "no url",
    ]
    details = dict(zip(result.status["url"].fillna(""), result.status["detail"]))
    assert details[server.url("/broken.png")] == "Service Unavailable (after 3 attempts)"
    assert details[server.url("/slow.jpg")] == "no response within 0.5 s"
    assert details[server.url("/huge.bin")] == f"Content-Length {MAX_BYTES + 1} bytes exceeds images.max_bytes {MAX_BYTES}"
    assert details[server.url("/huge-stream.bin")] == f"more than images.max_bytes {MAX_BYTES} bytes"
    assert details["ftp://127.0.0.1/red.jpg"] == "scheme 'ftp' is not http or https"
    assert details["file:///tmp/red.jpg"] == "scheme 'file' is not http or https"
    assert details["http://nonexistent.invalid/x.jpg"] == "cannot resolve host nonexistent.invalid"
    assert result.status["item"].tolist() == list(range(21))
    assert result.status["asin"].tolist() == [f"A{i:03d}" for i in range(21)]
    assert pd.isna(result.status["url"].iloc[20])

    assert result.has_image.tolist() == [True] * 7 + [False, False, False, True, True] + [False] * 9
    assert result.images.shape == (21, 40, 40, 3)
    assert (result.images[~result.has_image] == 0).all()
    assert (result.images[1] == GREEN).all()
    assert (result.images[10] == GREEN).all()
    assert (result.images[11] == 77).all()

    # One request per URL, plus the retries: flaky 2, limited 2, broken 3 (retries=2).
    assert server.counts == {
        **{path: 1 for path in GOOD},
        "/truncated.jpg": 1, "/page.html": 1, "/missing.jpg": 1, "/flaky.png": 2, "/limited.png": 2,
        "/broken.png": 3, "/slow.jpg": 1, "/huge.bin": 1, "/huge-stream.bin": 1,
    }
    assert result.report == {
        "source": "http",
        "items": 21,
        "attempted": 20,
        "ok": 9,
        "cached": 0,
        "downloaded": 9,
        # Server requests, plus one for the .invalid host and 3 attempts at the closed port.
        "requests": 20 + 1 + 3,
        "by_status": {
            "ok": 9, "invalid url": 2, "not an image": 2, "too large": 2, "connection error": 1,
            "http 404": 1, "http 503": 1, "name resolution": 1, "no url": 1, "timeout": 1,
        },
    }


def test_rerun_fetches_only_failures(server, tmp_path):
    good = serve_good(server)
    items = make_items([[url] for url in good] + [[server.url("/missing.jpg")]])
    params = make_params(tmp_path)
    first = build_image_set(items, params)

    second = build_image_set(items, params)

    assert server.counts == {**{path: 1 for path in GOOD}, "/missing.jpg": 2}
    assert second.report["cached"] == 7
    assert second.report["downloaded"] == 0
    assert second.report["requests"] == 1
    assert second.status["detail"].tolist()[:7] == ["from cache"] * 7
    assert np.array_equal(first.images, second.images)
    assert np.array_equal(first.has_image, second.has_image)


def test_cache_holds_originals_named_by_url_hash(server, tmp_path):
    good = serve_good(server)
    build_image_set(make_items([[url] for url in good]), make_params(tmp_path))

    for path, url in zip(GOOD, good):
        assert cache_file(tmp_path, url).read_bytes() == server.routes[path][0].body
    originals = [p.name for p in (tmp_path / "cache").iterdir() if p.is_file()]
    assert sorted(originals) == sorted(hashlib.sha256(url.encode()).hexdigest() for url in good)


def test_pixel_cache_serves_without_originals(server, tmp_path):
    good = serve_good(server)
    items = make_items([[url] for url in good])
    params = make_params(tmp_path)
    first = build_image_set(items, params)
    for url in good:
        cache_file(tmp_path, url).unlink()

    second = build_image_set(items, params)

    assert server.total() == 7
    assert second.report["cached"] == 7
    assert np.array_equal(first.images, second.images)


def test_new_size_converts_cached_originals(server, tmp_path):
    good = serve_good(server)
    items = make_items([[url] for url in good])
    build_image_set(items, make_params(tmp_path))

    result = build_image_set(items, make_params(tmp_path, size=8))

    assert server.total() == 7
    assert result.report["cached"] == 7
    assert result.images.shape == (7, 8, 8, 3)
    assert (result.images[1] == GREEN).all()
    assert len([p for p in (tmp_path / "cache").iterdir() if p.is_dir()]) == 2


def test_unreadable_pixel_file_is_converted_again(server, tmp_path):
    good = serve_good(server)
    items = make_items([[good[1]]])
    params = make_params(tmp_path)
    build_image_set(items, params)
    (pixel_file,) = (tmp_path / "cache").glob("pixels-*/*.npy")
    pixel_file.write_bytes(b"not an npy file")

    result = build_image_set(items, params)

    assert server.total() == 1
    assert result.report["cached"] == 1
    assert (result.images[0] == GREEN).all()
    assert np.load(pixel_file).shape == (40, 40, 3)


def test_cache_serves_images_when_server_fails(server, tmp_path):
    good = serve_good(server)
    items = make_items([[url] for url in good])
    params = make_params(tmp_path)
    first = build_image_set(items, params)
    server.routes.clear()  # every path now returns 404

    second = build_image_set(items, params)

    assert server.total() == 7
    assert second.report["ok"] == 7
    assert second.report["cached"] == 7
    assert np.array_equal(first.images, second.images)


def test_interrupted_run_resumes(server, tmp_path):
    good = serve_good(server)
    params = make_params(tmp_path)
    build_image_set(make_items([[url] for url in good[:3]]), params)

    result = build_image_set(make_items([[url] for url in good]), params)

    assert server.counts == {path: 1 for path in GOOD}
    assert result.report["cached"] == 3
    assert result.report["downloaded"] == 4


def test_undecodable_cache_file_is_downloaded_again(server, tmp_path):
    good = serve_good(server)
    items = make_items([[good[1]]])
    params = make_params(tmp_path)
    cached = cache_file(tmp_path, good[1])
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"half a file")

    result = build_image_set(items, params)

    assert result.status["status"].tolist() == ["ok"]
    assert result.report["downloaded"] == 1
    assert server.counts == {"/green.png": 1}
    assert cached.read_bytes() == green_png()


def test_failures_are_not_cached(server, tmp_path):
    server.routes["/page.html"] = [Reply(body=b"<html></html>")]
    url = server.url("/page.html")

    build_image_set(make_items([[url]]), make_params(tmp_path))

    assert not cache_file(tmp_path, url).exists()


def test_shared_url_is_fetched_once(server, tmp_path):
    good = serve_good(server)
    items = make_items([[good[0]], [good[0]], [good[1]]])

    result = build_image_set(items, make_params(tmp_path))

    assert server.counts == {"/red.jpg": 1, "/green.png": 1}
    assert result.has_image.tolist() == [True, True, True]
    assert np.array_equal(result.images[0], result.images[1])


def test_non_http_urls_are_rejected_without_request(server, tmp_path):
    items = make_items([["ftp://127.0.0.1/a.jpg"], ["file:///etc/hostname"], ["http:///a.jpg"], ["a.jpg"]])

    result = build_image_set(items, make_params(tmp_path))

    assert result.status["status"].tolist() == ["invalid url"] * 4
    assert result.status["detail"].tolist() == [
        "scheme 'ftp' is not http or https", "scheme 'file' is not http or https", "no host name",
        "scheme '(none)' is not http or https",
    ]
    assert result.report["requests"] == 0
    assert server.total() == 0


def test_prefer_image_url_takes_low_res_list(server, tmp_path):
    good = serve_good(server)
    items = make_items(high=[[good[0]]], low=[[good[1]]])

    result = build_image_set(items, make_params(tmp_path, prefer="imageURL"))

    assert server.counts == {"/green.png": 1}
    assert (result.images[0] == GREEN).all()


# ---------------------------------------------------------------------------------------------
# Failure threshold, folder and none


def test_min_success_share_message(tmp_path):
    items = make_items([["http://nonexistent.invalid/a.jpg"], ["http://nonexistent.invalid/b.jpg"],
                        ["ftp://example.invalid/c.jpg"], []])
    params = make_params(tmp_path, min_success_share=0.5)
    result = build_image_set(items, params)

    with pytest.raises(StageError) as caught:
        check_success_share(result.report, params)

    assert str(caught.value) == (
        "images: only 0 of 3 items got an image (min_success_share 0.5); most failures: "
        "name resolution (2), invalid url (1): this machine cannot resolve the image hosts "
        "(no network or no DNS). To go on without images, run `dvc exp run -S images.source=none` "
        "or set images.source: none in params.yaml (Deep-MINE then uses the description and review "
        "views only), or put files named <asin>.jpg in a folder and set images.source=folder "
        "images.folder=PATH. Every item's status is in data/images/status.parquet."
    )


def test_min_success_share_met_passes(server, tmp_path):
    good = serve_good(server)
    items = make_items([[good[0]], ["http://nonexistent.invalid/b.jpg"]])
    params = make_params(tmp_path, min_success_share=0.5)
    result = build_image_set(items, params)

    check_success_share(result.report, params)

    assert result.report["ok"] == 1
    assert result.report["attempted"] == 2


def test_folder_source_reads_asin_files(tmp_path):
    folder = tmp_path / "pictures"
    folder.mkdir()
    (folder / "A000.png").write_bytes(green_png())
    (folder / "A001.JPG").write_bytes(red_jpeg())
    (folder / "A003.txt").write_bytes(green_png())
    (folder / "A004.jpg").write_bytes(red_jpeg()[:300])
    (folder / "A005.jpg").write_bytes(gray_png())  # .jpg comes before .png in the preference order
    (folder / "A005.png").write_bytes(green_png())
    items = make_items([[] for _ in range(6)])

    result = build_image_set(items, make_params(tmp_path, source="folder", folder=str(folder)))

    assert result.status["status"].tolist() == ["ok", "ok", "missing file", "missing file", "not an image", "ok"]
    assert result.status["url"].tolist()[:2] == [str(folder / "A000.png"), str(folder / "A001.JPG")]
    assert result.status["detail"].iloc[2] == f"no A002.<jpg|jpeg|png|gif|webp|bmp> in {folder}"
    assert result.has_image.tolist() == [True, True, False, False, False, True]
    assert (result.images[0] == GREEN).all()
    assert (result.images[5] == 77).all()
    assert result.report["attempted"] == 6
    assert result.report["ok"] == 3
    assert result.report["requests"] == 0


def test_folder_source_missing_folder(tmp_path):
    params = make_params(tmp_path, source="folder", folder=str(tmp_path / "nowhere"))

    with pytest.raises(StageError, match="is not a folder"):
        build_image_set(make_items([[]]), params)


def test_source_none_disables_images(server, tmp_path):
    good = serve_good(server)
    params = make_params(tmp_path, source="none", min_success_share=1.0)

    result = build_image_set(make_items([[good[0]], []]), params)
    check_success_share(result.report, params)

    assert result.status["status"].tolist() == ["disabled", "disabled"]
    assert result.has_image.tolist() == [False, False]
    assert not result.images.any()
    assert result.report["attempted"] == 0
    assert server.total() == 0


# ---------------------------------------------------------------------------------------------
# Items table and the stage script


def test_read_items_missing_file(tmp_path):
    with pytest.raises(StageError, match="not found; run the clean stage first"):
        read_items(tmp_path / "items.parquet")


def test_read_items_rejects_gapped_ids(tmp_path):
    path = tmp_path / "items.parquet"
    items = make_items([[], []])
    items["item"] = np.array([0, 2], dtype=np.int32)
    items.to_parquet(path, index=False)

    with pytest.raises(StageError, match="column item must equal the row position"):
        read_items(path)


def run_stage_script(workdir: Path, items: pd.DataFrame, images_params: dict) -> subprocess.CompletedProcess:
    (workdir / "data" / "clean").mkdir(parents=True)
    items.to_parquet(workdir / "data" / "clean" / "items.parquet", index=False)
    (workdir / "params.yaml").write_text(json.dumps({"images": images_params}), encoding="utf-8")
    return subprocess.run(
        [sys.executable, str(REPO / "stages" / "images.py")], cwd=workdir, capture_output=True, text=True,
        timeout=120,
    )


def test_stage_writes_outputs(server, tmp_path):
    good = serve_good(server)
    items = make_items([[good[0]], [good[1]], []])

    done = run_stage_script(tmp_path, items, {"workers": 2, "timeout": 2.0, "cache_dir": "cache"})

    assert done.returncode == 0, done.stderr
    images = np.load(tmp_path / "data" / "images" / "images.npy")
    assert images.shape == (3, 40, 40, 3)
    assert images.dtype == np.uint8
    assert (images[1] == GREEN).all()
    assert np.load(tmp_path / "data" / "images" / "has_image.npy").tolist() == [True, True, False]
    status = pd.read_parquet(tmp_path / "data" / "images" / "status.parquet")
    assert status.columns.tolist() == ["item", "asin", "url", "status", "detail"]
    assert status["status"].tolist() == ["ok", "ok", "no url"]
    report = json.loads((tmp_path / "reports" / "images.json").read_text())
    assert report["ok"] == 2
    assert report["by_status"] == {"ok": 2, "no url": 1}


def test_stage_stops_without_network(tmp_path):
    items = make_items([["http://nonexistent.invalid/a.jpg"], ["http://nonexistent.invalid/b.jpg"]])

    done = run_stage_script(tmp_path, items, {"cache_dir": "cache", "min_success_share": 0.5})

    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "images: only 0 of 2 items got an image (min_success_share 0.5); most failures: name resolution (2)" in done.stderr
    assert not (tmp_path / "data" / "images" / "images.npy").exists()
    assert not (tmp_path / "data" / "images" / "has_image.npy").exists()
    status = pd.read_parquet(tmp_path / "data" / "images" / "status.parquet")
    assert status["status"].tolist() == ["name resolution", "name resolution"]
    report = json.loads((tmp_path / "reports" / "images.json").read_text())
    assert report["by_status"] == {"name resolution": 2}


def test_invalid_settings_are_rejected(tmp_path):
    params = make_params(tmp_path, workers=0, min_success_share=1.5)

    with pytest.raises(StageError) as caught:
        build_image_set(make_items([[]]), params)

    assert str(caught.value) == (
        "params.yaml: images.workers must be at least 1, got 0; "
        "images.min_success_share must be between 0 and 1, got 1.5"
    )
