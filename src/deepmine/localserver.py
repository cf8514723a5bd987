"""A static-file HTTP server on 127.0.0.1 for tests and benchmarks (image URLs of generated data).

It imports only the standard library, so the benchmark runner can use it without loading numpy,
which would raise the peak memory it measures for its child processes.
"""

from __future__ import annotations

import http.server
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class names it `format`
        pass


@contextmanager
def serve_folder(folder: str | Path) -> Iterator[str]:
    """Serve `folder` over HTTP on 127.0.0.1 (a free port) in a thread; yield the base URL."""

    def handler(*args, **kwargs):
        return _QuietHandler(*args, directory=str(folder), **kwargs)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
