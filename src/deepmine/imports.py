"""Keep a stage process from importing a module that it does not need."""

from __future__ import annotations

import importlib.abc
import sys


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
