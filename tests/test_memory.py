"""The runner's allocator setting (memory.py): in effect on Linux with glibc, harmless elsewhere."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from instrumetriq_polars.memory import pin_mmap_threshold


@pytest.mark.skipif(not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_threshold_is_pinned_on_glibc():
    assert pin_mmap_threshold() is True


def test_runner_starts_with_it_and_exits_cleanly(tmp_path):
    """The runner calls it before anything else; a command still runs as before."""
    done = subprocess.run([sys.executable, "-m", "instrumetriq_polars", "schema", "--layout", "flat"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "snapshot_ts" in done.stdout
