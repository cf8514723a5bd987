"""Item images for the image view of Deep-MINE.

Each item's first image URL is downloaded (or its file read from a local folder), converted to
RGB, padded to a square on white and resized to size x size. The stage writes one uint8 array in
item-id order, a has-image mask and a status table with one of these statuses per item:

    ok, no url, invalid url (not http or https), http <code> (for example "http 404"), timeout,
    connection error, name resolution (DNS failure, usually no network), too large,
    not an image, missing file, disabled (images.source is none).

Downloaded originals are cached in images.cache_dir under the sha256 hex digest of their URL, next
to their converted pixels (see ImageCache). Only images that decode are cached, so failures are
retried on the next run, and a rerun or an interrupted run fetches only the URLs whose file is
missing.
"""

from __future__ import annotations

import email.utils
import hashlib
import inspect
import io
import logging
import os
import socket
import struct
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Sequence
from urllib.parse import urlsplit

import numpy as np
import pandas as pd
import PIL
import pyarrow.parquet as pq
import requests
import urllib3.exceptions
from PIL import Image, ImageOps
from requests.adapters import HTTPAdapter
from tqdm import tqdm

from . import paths
from .cli import StageError
from .io import atomic_path, save_npy
from .params import ImagesParams

log = logging.getLogger(__name__)

OK = "ok"
NO_URL = "no url"
INVALID_URL = "invalid url"
TIMEOUT = "timeout"
CONNECTION_ERROR = "connection error"
NAME_RESOLUTION = "name resolution"
TOO_LARGE = "too large"
NOT_AN_IMAGE = "not an image"
MISSING_FILE = "missing file"
DISABLED = "disabled"

# Preference order when a folder holds several files for one ASIN.
IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "gif", "webp", "bmp")
URL_COLUMNS = {"imageURLHighRes": "image_urls_high", "imageURL": "image_urls"}
WHITE = (255, 255, 255)
MAX_RETRY_AFTER = 5.0  # seconds; a longer Retry-After would stall a worker for every item
CHUNK_BYTES = 64 * 1024
# A body that stops arriving; requests raises connect timeouts as Timeout already. urllib3 2.x
# derives NewConnectionError (refused, unreachable) from ConnectTimeoutError, so that one is
# deliberately not listed.
_TIMEOUT_CAUSES = (urllib3.exceptions.ReadTimeoutError, TimeoutError)
_NAME_RESOLUTION_CAUSES = (urllib3.exceptions.NameResolutionError, socket.gaierror)
# Exceptions Pillow raises on corrupt, truncated or unsupported data (DecompressionBombError aside).
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, struct.error)


class ImageError(Exception):
    """Image data that cannot be used; `status` is "not an image" or "too large"."""

    def __init__(self, status: str, detail: str):
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail


# ---------------------------------------------------------------------------------------------
# Decoding


def load_image_rgb(source: str | Path | bytes, size: int) -> np.ndarray:
    """Decode an image file or its bytes into a (size, size, 3) uint8 RGB array.

    EXIF orientation is applied, transparent areas become white, 16-bit grayscale is scaled to
    8 bits, and the image is resized with LANCZOS to fit size x size, keeping its aspect ratio,
    then centred on a white square. Padding keeps the product's shape, and white matches the
    background of most product photos. Raises ImageError when the data is not a decodable image,
    and FileNotFoundError when `source` is a path that does not exist.
    """
    data = bytes(source) if isinstance(source, (bytes, bytearray, memoryview)) else Path(source).read_bytes()
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.format == "JPEG":
                # libjpeg scales down by up to 8 while decoding, staying at or above size x size.
                # This makes large photos several times faster to decode.
                img.draft(None, (size, size))
            img.load()
            rgb = _to_rgb(ImageOps.exif_transpose(img))
    except Image.DecompressionBombError as err:
        raise ImageError(TOO_LARGE, str(err)) from err
    except Image.UnidentifiedImageError as err:
        raise ImageError(NOT_AN_IMAGE, f"unknown image format (data starts with {data[:16]!r})") from err
    except _DECODE_ERRORS as err:
        raise ImageError(NOT_AN_IMAGE, f"{type(err).__name__}: {err}") from err

    square = ImageOps.pad(rgb, (size, size), method=Image.Resampling.LANCZOS, color=WHITE)
    return np.asarray(square, dtype=np.uint8).reshape(size, size, 3)


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode in ("I", "F") or img.mode.startswith("I;16"):
        img = _high_depth_to_8bit(img)
    if img.has_transparency_data:
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, WHITE + (255,))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def _high_depth_to_8bit(img: Image.Image) -> Image.Image:
    """Scale 16-bit (and 32-bit integer) grayscale to L; Pillow 13's convert("L") clips at 255."""
    samples = np.asarray(img)
    if img.mode == "F":
        # NOTE: float images have no fixed range; values are assumed to be 0..255 already.
        gray = np.clip(np.rint(samples), 0, 255).astype(np.uint8)
    else:
        # NOTE: mode I (32-bit integer) is scaled as if it contained 16-bit samples, because
        # older Pillow versions decoded 16-bit PNGs to it. Values above 65535 saturate.
        gray = np.rint(np.clip(samples.astype(np.float64), 0, 65535) / 257).astype(np.uint8)
    out = Image.fromarray(gray, "L")
    transparent = img.info.get("transparency")
    if isinstance(transparent, int):
        alpha = np.where(samples == transparent, 0, 255).astype(np.uint8)
        out = Image.merge("LA", (out, Image.fromarray(alpha, "L")))
    return out


# ---------------------------------------------------------------------------------------------
# URLs


def first_url(urls) -> str | None:
    """Return the first non-empty string of a URL list (a list, an array or None)."""
    if isinstance(urls, str):
        return urls.strip() or None
    if urls is None or isinstance(urls, float):  # a null list read back as None or NaN
        return None
    for url in urls:
        if isinstance(url, str) and url.strip():
            return url.strip()
    return None


def item_image_urls(items: pd.DataFrame, prefer: str) -> list[str | None]:
    """Return each item's first image URL from the preferred list (imageURLHighRes or imageURL),
    falling back to the other list when the preferred one is empty."""
    preferred = URL_COLUMNS[prefer]
    (fallback,) = [column for column in URL_COLUMNS.values() if column != preferred]
    urls = []
    for main, other in zip(items[preferred], items[fallback]):
        url = first_url(main)
        urls.append(url if url is not None else first_url(other))
    return urls


def url_problem(url: str) -> str | None:
    """Return why `url` cannot be downloaded (not http or https, no host), or None."""
    try:
        parts = urlsplit(url)
    except ValueError as err:
        return f"malformed URL ({err})"
    if parts.scheme.lower() not in ("http", "https"):
        return f"scheme {parts.scheme or '(none)'!r} is not http or https"
    if not parts.hostname:
        return "no host name"
    return None


# ---------------------------------------------------------------------------------------------
# Downloading


@dataclass
class Fetched:
    """The outcome of downloading one URL; `body` is set when the server sent the image bytes."""

    status: str
    detail: str = ""
    body: bytes | None = None
    retryable: bool = False
    retry_after: float | None = None  # seconds the server asked to wait (Retry-After)
    attempts: int = 0


class Downloader:
    """Download URLs with one shared requests.Session, retrying a 429, a 5xx or a connection
    error with exponential backoff. Timeouts and DNS failures are not retried: a slow host would
    stall a worker for several timeouts, and a missing network does not come back within seconds.
    """

    def __init__(self, params: ImagesParams, session: requests.Session | None = None):
        self.params = params
        self.session = session or requests.Session()
        adapter = HTTPAdapter(pool_connections=params.workers, pool_maxsize=params.workers, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers["User-Agent"] = "deepmine-images/0.1 (+requests)"
        self.requests_sent = 0
        self._lock = threading.Lock()

    def close(self) -> None:
        self.session.close()

    def fetch(self, url: str) -> Fetched:
        """Download `url`, retrying up to images.retries extra times, waiting images.backoff
        seconds before the first retry and twice as long before each next one."""
        delay = self.params.backoff
        attempt = 0
        while True:
            attempt += 1
            outcome = self._attempt(url)
            if not outcome.retryable or attempt > self.params.retries:
                outcome.attempts = attempt
                if attempt > 1:
                    outcome.detail = f"{outcome.detail} (after {attempt} attempts)".strip()
                return outcome
            wait = delay if outcome.retry_after is None else min(outcome.retry_after, MAX_RETRY_AFTER)
            log.debug("%s: %s %s, retry %d in %.2f s", url, outcome.status, outcome.detail, attempt, wait)
            time.sleep(wait)
            delay *= 2

    def _attempt(self, url: str) -> Fetched:
        with self._lock:
            self.requests_sent += 1
        timeout = self.params.timeout
        try:
            with self.session.get(url, stream=True, timeout=timeout) as response:
                return self._read(response)
        except requests.exceptions.Timeout:
            return Fetched(TIMEOUT, f"no response within {timeout:g} s")
        except (requests.exceptions.InvalidSchema, requests.exceptions.InvalidURL,
                requests.exceptions.MissingSchema) as err:
            # Also reached when a server redirects to a non-http URL.
            return Fetched(INVALID_URL, str(err))
        except requests.exceptions.TooManyRedirects as err:
            return Fetched(CONNECTION_ERROR, f"too many redirects ({err})")
        except requests.exceptions.ConnectionError as err:
            if _caused_by(err, _NAME_RESOLUTION_CAUSES):
                return Fetched(NAME_RESOLUTION, f"cannot resolve host {urlsplit(url).hostname}")
            if not _caused_by(err, (urllib3.exceptions.NewConnectionError,)) and _caused_by(err, _TIMEOUT_CAUSES):
                # requests reports a read timeout in the middle of the body as a ConnectionError.
                return Fetched(TIMEOUT, f"no data within {timeout:g} s")
            return Fetched(CONNECTION_ERROR, _short(err), retryable=True)
        except requests.exceptions.RequestException as err:
            # ChunkedEncodingError (connection dropped mid-body) and ContentDecodingError.
            return Fetched(CONNECTION_ERROR, _short(err), retryable=True)

    def _read(self, response: requests.Response) -> Fetched:
        code = response.status_code
        if not 200 <= code < 300:
            retryable = code == 429 or code >= 500
            retry_after = _retry_after_seconds(response.headers.get("Retry-After")) if retryable else None
            return Fetched(f"http {code}", response.reason or "", retryable=retryable, retry_after=retry_after)

        limit = self.params.max_bytes
        length = response.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > limit:
            return Fetched(TOO_LARGE, f"Content-Length {int(length)} bytes exceeds images.max_bytes {limit}")
        chunks = []
        received = 0
        for chunk in response.iter_content(CHUNK_BYTES):
            received += len(chunk)
            if received > limit:
                return Fetched(TOO_LARGE, f"more than images.max_bytes {limit} bytes")
            chunks.append(chunk)
        return Fetched(OK, body=b"".join(chunks))


def _caused_by(err: BaseException, types: tuple[type, ...]) -> bool:
    """Return whether `err` or an exception it wraps (args, reason, cause, context) is one of `types`."""
    pending: list[object] = [err]
    seen: set[int] = set()
    while pending:
        current = pending.pop()
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, types):
            return True
        pending.extend([getattr(current, "reason", None), current.__cause__, current.__context__])
        pending.extend(current.args)
    return False


def _retry_after_seconds(value: str | None) -> float | None:
    """Parse a Retry-After header, given in seconds or as an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def _short(err: BaseException, limit: int = 200) -> str:
    text = f"{type(err).__name__}: {err}"
    return text if len(text) <= limit else text[: limit - 3] + "..."


class ImageCache:
    """Downloaded originals, one file per URL named by the sha256 hex digest of the URL, and
    their converted pixels under pixels-<key>/<digest>.npy.

    Decoding a large JPEG takes milliseconds, so a rerun over thousands of cached originals would
    take most of a minute. With the pixel files it takes seconds. The key hashes the image size,
    the Pillow version and the source of the conversion functions, so changing any of them starts
    a new pixel folder instead of reusing pixels converted the old way.
    """

    def __init__(self, folder: str | Path, size: int):
        self.folder = Path(folder)
        self.size = size
        self.pixel_folder = self.folder / f"pixels-{conversion_key(size)}"

    def path(self, url: str) -> Path:
        return self.folder / _url_digest(url)

    def pixel_path(self, url: str) -> Path:
        return self.pixel_folder / f"{_url_digest(url)}.npy"

    def store(self, url: str, body: bytes, pixels: np.ndarray) -> None:
        with atomic_path(self.path(url)) as tmp:
            tmp.write_bytes(body)
        save_npy(self.pixel_path(url), pixels)

    def load(self, url: str) -> np.ndarray | None:
        """Return the cached pixels of `url`, converting the cached original when they are
        missing; None when neither is usable."""
        pixel_path = self.pixel_path(url)
        try:
            pixels = np.load(pixel_path, allow_pickle=False)
            if pixels.shape == (self.size, self.size, 3) and pixels.dtype == np.uint8:
                return pixels
            log.warning("cached pixels %s have shape %s %s: converting the original again",
                        pixel_path, pixels.shape, pixels.dtype)
        except FileNotFoundError:
            pass
        except (OSError, ValueError, EOFError) as err:
            log.warning("cached pixels %s cannot be read (%s): converting the original again", pixel_path, err)

        original = self.path(url)
        try:
            pixels = load_image_rgb(original, self.size)
        except FileNotFoundError:
            return None
        except ImageError as err:
            log.warning("cached file %s of %s cannot be decoded (%s): downloading it again", original, url, err)
            original.unlink(missing_ok=True)
            return None
        save_npy(pixel_path, pixels)
        return pixels


def _url_digest(url: str) -> str:
    return hashlib.sha256(url.encode("utf-8")).hexdigest()


def conversion_key(size: int) -> str:
    """Return a short hash of everything that determines the pixels of a given original."""
    source = "".join(inspect.getsource(function) for function in (load_image_rgb, _to_rgb, _high_depth_to_8bit))
    text = f"{size}|Pillow {PIL.__version__}|{source}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


# ---------------------------------------------------------------------------------------------
# Per-item results


@dataclass
class ItemImage:
    """Outcome for one item: `pixels` is (size, size, 3) uint8 when status is ok, and `origin` is
    "cache", "download" or "file" for an ok image."""

    status: str
    detail: str = ""
    pixels: np.ndarray | None = None
    origin: str = ""


def image_from_url(url: str, downloader: Downloader, cache: ImageCache) -> ItemImage:
    """Return the image of `url` from the cache, or download, convert and cache it."""
    pixels = cache.load(url)
    if pixels is not None:
        return ItemImage(OK, "from cache", pixels, origin="cache")

    fetched = downloader.fetch(url)
    if fetched.body is None:
        return ItemImage(fetched.status, fetched.detail)
    try:
        pixels = load_image_rgb(fetched.body, cache.size)
    except ImageError as err:
        return ItemImage(err.status, err.detail)
    cache.store(url, fetched.body, pixels)
    return ItemImage(OK, "downloaded", pixels, origin="download")


def image_from_file(path: Path, size: int, max_bytes: int) -> ItemImage:
    try:
        n_bytes = path.stat().st_size
        if n_bytes > max_bytes:
            return ItemImage(TOO_LARGE, f"{n_bytes} bytes exceeds images.max_bytes {max_bytes}")
        return ItemImage(OK, "read from file", load_image_rgb(path, size), origin="file")
    except FileNotFoundError:
        return ItemImage(MISSING_FILE, f"{path} was removed while the stage ran")
    except ImageError as err:
        return ItemImage(err.status, err.detail)


def _run_parallel(tasks: dict[str, Callable[[], ItemImage]], workers: int, desc: str) -> dict[str, ItemImage]:
    """Run each task in a thread pool with a progress bar; return the results by task key."""
    results: dict[str, ItemImage] = {}
    pool = ThreadPoolExecutor(max_workers=max(1, workers))
    try:
        futures: dict[Future, str] = {pool.submit(task): key for key, task in tasks.items()}
        for future in tqdm(as_completed(futures), total=len(futures), desc=desc, unit="image"):
            results[futures[future]] = future.result()
    except BaseException:
        # On Ctrl-C, drop queued tasks instead of waiting for every download. Running ones end
        # within their timeout, and the files they cache are complete because writes are atomic.
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    return results


def download_images(urls: Sequence[str | None], params: ImagesParams) -> tuple[list[ItemImage], int]:
    """Get the image of each URL (None means the item has none); return one result per URL and
    the number of HTTP requests sent. Each distinct URL is fetched once."""
    results: list[ItemImage | None] = [None] * len(urls)
    positions: dict[str, list[int]] = {}
    for i, url in enumerate(urls):
        if url is None:
            results[i] = ItemImage(NO_URL, "no URL in image_urls_high or image_urls")
        elif (problem := url_problem(url)) is not None:
            results[i] = ItemImage(INVALID_URL, problem)
        else:
            positions.setdefault(url, []).append(i)

    downloader = Downloader(params)
    cache = ImageCache(params.cache_dir, params.size)
    try:
        tasks = {
            url: (lambda url=url: image_from_url(url, downloader, cache)) for url in positions
        }
        by_url = _run_parallel(tasks, params.workers, "images")
    finally:
        downloader.close()
    for url, indices in positions.items():
        for i in indices:
            results[i] = by_url[url]
    return results, downloader.requests_sent


def index_folder(folder: str | Path) -> dict[str, Path]:
    """Map each ASIN to its image file <asin>.<ext> in `folder` (extension case ignored); when
    several extensions exist, the first of IMAGE_EXTENSIONS wins."""
    rank = {ext: i for i, ext in enumerate(IMAGE_EXTENSIONS)}
    found: dict[str, tuple[int, Path]] = {}
    with os.scandir(folder) as entries:
        for entry in entries:
            stem, dot, ext = entry.name.rpartition(".")
            if not dot or ext.lower() not in rank or not entry.is_file():
                continue
            candidate = (rank[ext.lower()], Path(entry.path))
            if stem not in found or candidate < found[stem]:
                found[stem] = candidate
    return {stem: path for stem, (_, path) in found.items()}


def read_folder_images(asins: Sequence[str], params: ImagesParams) -> tuple[list[ItemImage], list[str | None]]:
    """Read each item's image from images.folder/<asin>.<ext>; return the results and file paths."""
    folder = Path(params.folder)
    if not folder.is_dir():
        raise StageError(
            f"images: images.folder {folder} is not a folder; set images.folder to a folder of "
            f"<asin>.<{'|'.join(IMAGE_EXTENSIONS)}> files, or images.source to http or none"
        )
    index = index_folder(folder)
    files = [index.get(asin) for asin in asins]
    results: list[ItemImage | None] = [None] * len(asins)
    tasks = {}
    for i, (asin, path) in enumerate(zip(asins, files)):
        if path is None:
            results[i] = ItemImage(MISSING_FILE, f"no {asin}.<{'|'.join(IMAGE_EXTENSIONS)}> in {folder}")
        else:
            tasks[str(i)] = lambda path=path: image_from_file(path, params.size, params.max_bytes)
    for key, result in _run_parallel(tasks, params.workers, "image files").items():
        results[int(key)] = result
    return results, [None if path is None else str(path) for path in files]


# ---------------------------------------------------------------------------------------------
# The stage


@dataclass
class ImageSet:
    """The stage's outputs before they are written."""

    images: np.ndarray  # (n_items, size, size, 3) uint8, zeros where has_image is False
    has_image: np.ndarray  # (n_items,) bool
    status: pd.DataFrame  # item, asin, url, status, detail
    report: dict


def read_items(path: str | Path = paths.ITEMS) -> pd.DataFrame:
    """Read item, asin and the two image URL lists from the cleaned items table."""
    path = Path(path)
    if not path.exists():
        raise StageError(f"images: {path} not found; run the clean stage first (`dvc repro clean`)")
    needed = ["item", "asin", *URL_COLUMNS.values()]
    missing = [name for name in needed if name not in pq.read_schema(path).names]
    if missing:
        raise StageError(f"images: {path} has no column {', '.join(missing)}; rerun the clean stage")
    items = pd.read_parquet(path, columns=needed)
    if not np.array_equal(items["item"].to_numpy(), np.arange(len(items))):
        raise StageError(f"images: {path}: column item must equal the row position 0..n-1; rerun the clean stage")
    return items


def check_params(params: ImagesParams) -> None:
    """Raise StageError for images settings that cannot work (params.py checks source and prefer)."""
    problems = []
    for key in ("size", "workers", "max_bytes"):
        if getattr(params, key) < 1:
            problems.append(f"images.{key} must be at least 1, got {getattr(params, key)}")
    if params.timeout <= 0:
        problems.append(f"images.timeout must be positive, got {params.timeout}")
    if params.retries < 0 or params.backoff < 0:
        problems.append(f"images.retries and images.backoff must not be negative, got {params.retries} and {params.backoff}")
    if not 0 <= params.min_success_share <= 1:
        problems.append(f"images.min_success_share must be between 0 and 1, got {params.min_success_share}")
    if problems:
        raise StageError("params.yaml: " + "; ".join(problems))


def build_image_set(items: pd.DataFrame, params: ImagesParams) -> ImageSet:
    """Get every item's image from images.source (http, folder or none) and count the outcomes."""
    check_params(params)
    n_items = len(items)
    asins = items["asin"].astype(str).tolist()
    requests_sent = 0
    if params.source == "none":
        results = [ItemImage(DISABLED, "images.source is none")] * n_items
        sources: list[str | None] = [None] * n_items
        attempted = 0
    elif params.source == "folder":
        results, sources = read_folder_images(asins, params)
        attempted = n_items
    else:
        sources = item_image_urls(items, params.prefer)
        results, requests_sent = download_images(sources, params)
        attempted = sum(url is not None for url in sources)

    images = np.zeros((n_items, params.size, params.size, 3), dtype=np.uint8)
    has_image = np.zeros(n_items, dtype=bool)
    for i, result in enumerate(results):
        if result.status == OK:
            images[i] = result.pixels
            has_image[i] = True

    status = pd.DataFrame({
        "item": np.arange(n_items, dtype=np.int32),
        "asin": pd.Series(asins, dtype="string"),
        "url": pd.Series(sources, dtype="string"),
        "status": pd.Series([r.status for r in results], dtype="string"),
        "detail": pd.Series([r.detail for r in results], dtype="string"),
    })
    counts = status["status"].value_counts()
    by_status = {str(s): int(c) for s, c in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))}
    origins = [r.origin for r in results]
    report = {
        "source": params.source,
        "items": n_items,
        "attempted": attempted,
        "ok": int(has_image.sum()),
        "cached": origins.count("cache"),
        "downloaded": origins.count("download"),
        "requests": requests_sent,
        "by_status": by_status,
    }
    log.info(
        "images: %d of %d items have an image (%d from the cache, %d downloaded, %d HTTP requests); "
        "by status: %s", report["ok"], n_items, report["cached"], report["downloaded"], requests_sent,
        ", ".join(f"{s} {c}" for s, c in by_status.items()),
    )
    return ImageSet(images=images, has_image=has_image, status=status, report=report)


_FAILURE_HINTS = {
    NAME_RESOLUTION: "this machine cannot resolve the image hosts (no network or no DNS)",
    CONNECTION_ERROR: "the image hosts refused or dropped the connections",
    TIMEOUT: "the image hosts did not answer within images.timeout; a larger timeout may help",
    TOO_LARGE: "the images exceed images.max_bytes; raise it",
    NOT_AN_IMAGE: "the responses were not images (a proxy or login page?)",
    INVALID_URL: "the URLs are not http or https",
    MISSING_FILE: "images.folder has no <asin>.<ext> file for these items",
    "http 429": "the image hosts rate-limit this machine; lower images.workers",
}


def check_success_share(report: dict, params: ImagesParams) -> None:
    """Raise StageError when fewer than images.min_success_share of the attempted items got an image."""
    attempted, ok = report["attempted"], report["ok"]
    if attempted == 0 or ok / attempted >= params.min_success_share:
        return
    failures = [(s, c) for s, c in report["by_status"].items() if s not in (OK, NO_URL)]
    top = failures[0][0] if failures else ""
    hint = _FAILURE_HINTS.get(top, "the image URLs may be stale" if top.startswith("http 4") else "")
    listed = ", ".join(f"{s} ({c})" for s, c in failures[:3])
    raise StageError(
        f"images: only {ok} of {attempted} items got an image (min_success_share "
        f"{params.min_success_share:g}); most failures: {listed}{': ' + hint if hint else ''}. "
        f"To go on without images, run `dvc exp run -S images.source=none` or set images.source: none "
        f"in params.yaml (Deep-MINE then uses the description and review views only), or put files "
        f"named <asin>.jpg in a folder and set images.source=folder images.folder=PATH. "
        f"Every item's status is in {paths.IMAGE_STATUS}."
    )
