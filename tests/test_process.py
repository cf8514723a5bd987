"""Process settings: a hidden module stays unimported, and freed memory is kept for reuse."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import sys
from deepmine.process import hide_module
hide_module("pandas")
import pyarrow as pa
table = pa.table({"line": pa.array([1, 2, 3])})
try:
    import pandas
except ModuleNotFoundError as err:
    print("hidden:", err)
print(table.num_rows, "pandas" in sys.modules)
"""


def test_hidden_module_is_not_imported_by_pyarrow():
    out = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, check=True)

    assert out.stdout.splitlines() == ["hidden: pandas is hidden in this process", "3 False"]


def test_hide_module_leaves_imported_module():
    code = "import json\nfrom deepmine.process import hide_module\nhide_module('json')\nimport json\nprint('ok')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)

    assert out.stdout == "ok\n"


def test_freed_memory_is_kept_on_glibc():
    code = (
        "import platform\nfrom deepmine.process import keep_freed_memory\n"
        "print(keep_freed_memory(), platform.libc_ver()[0] == 'glibc')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)

    settings_applied, is_glibc = out.stdout.split()
    assert settings_applied == is_glibc
