"""Settings that apply to a whole stage process: which modules it may import and how its C heap
hands memory back."""

from __future__ import annotations

import ctypes
import importlib.abc
import logging
import platform
import sys

log = logging.getLogger(__name__)

# mallopt parameters from glibc's malloc.h
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4


class _HiddenModule(importlib.abc.MetaPathFinder):
    def __init__(self, name: str):
        self.name = name

    def find_spec(self, fullname, path, target=None):
        if fullname == self.name or fullname.startswith(self.name + "."):
            raise ModuleNotFoundError(f"{fullname} is hidden in this process", name=fullname)
        return None


def hide_module(name: str) -> None:
    """Make `import name` fail with ModuleNotFoundError in this process, unless it is already
    imported. Libraries with an optional dependency then take their path without it."""
    if name not in sys.modules:
        sys.meta_path.insert(0, _HiddenModule(name))


def keep_freed_memory() -> bool:
    """Let glibc's malloc keep and reuse freed memory instead of returning it to the system.

    glibc serves every allocation above 32 MiB with a fresh mmap and unmaps it on free, so each
    large activation tensor of a training step costs page faults that zero its pages again. In
    Deep-MINE's image autoencoder that was 40% of the CPU time (system time). Without mmap and
    trimming, the heap grows to the peak once and is reused; peak memory rises by about a
    quarter. Returns False, changing nothing, where the C library is not glibc.

    This suits loops that allocate the same shapes again and again, as training and evaluation
    batches do. Where shapes keep growing, as the embed stage's sequence buckets do, the kept
    memory fragments, so embed does not call this.
    """
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    ok = libc.mallopt(_M_MMAP_MAX, 0) == 1 and libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1) == 1
    if not ok:
        log.debug("mallopt rejected the settings; freed memory still goes back to the system")
    return ok
