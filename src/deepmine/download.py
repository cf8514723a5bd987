"""Fetch the raw reviews and metadata files when they are absent.

A file already at its path is never fetched again, so a user who copied the files by hand (or
who works offline) keeps them. A download streams into a temporary file in the destination
folder and is renamed only after every byte arrived, so an interrupted or truncated transfer
never leaves a file under the final name.
"""

from __future__ import annotations

import hashlib
import logging
import re
from pathlib import Path

import requests
from tqdm import tqdm

from .cli import StageError
from .io import atomic_path
from .params import DataParams

log = logging.getLogger(__name__)

CHUNK_BYTES = 1 << 20


def file_sha256(path: str | Path) -> str:
    """Return the hex SHA-256 of a file, read in 1 MiB chunks so memory stays flat."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _failure_reason(err: requests.exceptions.RequestException, timeout: float) -> str:
    """Shorten a requests exception to the part a user acts on."""
    if isinstance(err, requests.exceptions.HTTPError) and err.response is not None:
        return f"HTTP {err.response.status_code} {err.response.reason}"
    if isinstance(err, requests.exceptions.Timeout):
        return f"timed out after {timeout:g} s (data.download_timeout)"
    if isinstance(err, requests.exceptions.ChunkedEncodingError):
        return "the connection closed before the whole file arrived"
    errno_text = re.search(r"\[Errno -?\d+\] ([^'\")]+)", str(err))
    if errno_text:
        return f"connection failed: {errno_text.group(1).strip()}"
    return f"{type(err).__name__}: {err}"


def _no_download_message(url: str, dest: Path, param_key: str, reason: str) -> str:
    return (
        f"download of {url} failed ({reason}). Put the file at {dest} yourself (copied from a "
        f"machine with network access), or set {param_key} in params.yaml to the path of a "
        "local copy (any category of Amazon Review Data 2018 in the same format works)"
    )


def fetch_file(url: str, dest: str | Path, timeout: float, param_key: str) -> dict:
    """Download `url` to `dest` unless `dest` exists; return the file's report entry.

    The entry contains path, url, action ("present" or "downloaded"), bytes and sha256.
    `timeout` bounds both the connection and the wait for each chunk, in seconds.
    `param_key` (data.reviews or data.meta) is named in the error so the user knows which
    setting points at the file. Raises StageError when the server cannot be reached, returns
    an HTTP error status, or closes the connection early.
    """
    dest = Path(dest)
    if dest.exists():
        log.info("%s present (%s bytes), not fetched", dest, f"{dest.stat().st_size:,}")
        return {
            "path": str(dest),
            "url": url,
            "action": "present",
            "bytes": dest.stat().st_size,
            "sha256": file_sha256(dest),
        }

    log.info("downloading %s to %s", url, dest)
    digest = hashlib.sha256()
    received = 0
    try:
        with requests.get(url, stream=True, timeout=(timeout, timeout)) as response:
            response.raise_for_status()
            # Content-Length counts encoded bytes, so it bounds the file only without an encoding.
            declared = response.headers.get("Content-Length")
            expected = int(declared) if declared and not response.headers.get("Content-Encoding") else None
            with atomic_path(dest) as tmp:
                with open(tmp, "wb") as out, tqdm(
                    total=expected, unit="B", unit_scale=True, desc=dest.name
                ) as bar:
                    for chunk in response.iter_content(CHUNK_BYTES):
                        out.write(chunk)
                        digest.update(chunk)
                        received += len(chunk)
                        bar.update(len(chunk))
                if expected is not None and received != expected:
                    raise StageError(
                        _no_download_message(
                            url, dest, param_key, f"received {received:,} of {expected:,} bytes"
                        )
                    )
    except requests.exceptions.RequestException as err:
        raise StageError(_no_download_message(url, dest, param_key, _failure_reason(err, timeout))) from err

    log.info("downloaded %s (%s bytes)", dest, f"{received:,}")
    return {
        "path": str(dest),
        "url": url,
        "action": "downloaded",
        "bytes": received,
        "sha256": digest.hexdigest(),
    }


def download_raw(data: DataParams) -> dict:
    """Fetch the reviews and metadata files named in params.yaml when absent.

    Return the download report: {"reviews": entry, "meta": entry}, each entry as `fetch_file`
    returns it."""
    # A mistyped path to another category's file must not fetch the default category under it.
    defaults = DataParams()
    for key in ("reviews", "meta"):
        path, url = getattr(data, key), getattr(data, f"{key}_url")
        if path != getattr(defaults, key) and url == getattr(defaults, f"{key}_url") and not Path(path).exists():
            raise StageError(
                f"data.{key}: {path} not found. data.{key}_url still points at the default "
                f"category ({url}), so it is not downloaded in its place; check the path, or set "
                f"data.{key}_url to the address of that file"
            )
    return {
        "reviews": fetch_file(data.reviews_url, data.reviews, data.download_timeout, "data.reviews"),
        "meta": fetch_file(data.meta_url, data.meta, data.download_timeout, "data.meta"),
    }
