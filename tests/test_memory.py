"""The runner's allocator settings (memory.py): in effect on Linux with glibc, harmless elsewhere.
Run in child processes: they are process-wide, and would change the pool the other tests use."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

CHECK = """
import pyarrow as pa
from instrumetriq_polars.memory import tune_allocators
took = tune_allocators()
print(took, pa.default_memory_pool().backend_name)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc", reason="glibc only")
@pytest.mark.parametrize("setting, pool", [(None, "system"), ("jemalloc-pinned", "jemalloc"), ("jemalloc", "jemalloc"), ("mimalloc", "mimalloc"),
                                           ("system-pinned", "system"), ("system-arenas", "system"), ("default", "mimalloc")])
def test_each_setting_takes_effect_on_glibc(setting, pool):
    code = CHECK if setting is None else CHECK.replace("tune_allocators()", f"tune_allocators({setting!r})")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", pool]


MMAPPED = """
import ctypes
from instrumetriq_polars.memory import tune_allocators

class Info(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL(None)
libc.mallinfo2.restype, libc.malloc.restype, libc.malloc.argtypes = Info, ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
assert tune_allocators(SETTING)

def mmapped(size):
    before = libc.mallinfo2().hblks
    block = libc.malloc(size)
    after = libc.mallinfo2().hblks
    libc.free(block)
    return after - before

libc.free(libc.malloc(4 << 20))  # unpinned, glibc's threshold now rises to 4 MiB
print(mmapped(256 << 10), mmapped(2 << 20))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc"
                    or tuple(map(int, platform.libc_ver()[1].split(".")[:2])) < (2, 33), reason="glibc 2.33+ (mallinfo2)")
@pytest.mark.parametrize("setting, expected", [("system-pinned", ["1", "1"]), ("jemalloc-pinned", ["0", "1"]),
                                               ("default", ["0", "0"])])
def test_pinned_settings_keep_glibc_mmap_threshold(setting, expected):
    """Whether a 256 KiB and a 2 MiB block are mmap'd (returned to the system when freed) once a
    4 MiB block was freed: unpinned, glibc's threshold has then risen to 4 MiB; pinned, it stays
    at 128 KiB (system-pinned) or 1 MiB (jemalloc-pinned)."""
    done = subprocess.run([sys.executable, "-c", MMAPPED.replace("SETTING", repr(setting))],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == expected


def test_an_unknown_setting_is_refused():
    from instrumetriq_polars.memory import tune_allocators

    with pytest.raises(ValueError, match="unknown allocator setting"):
        tune_allocators("tcmalloc")


def test_runner_starts_with_them_and_runs_as_before(tmp_path):
    """The runner calls it before anything else; a command still runs as before."""
    done = subprocess.run([sys.executable, "-m", "instrumetriq_polars", "schema", "--layout", "flat"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "snapshot_ts" in done.stdout


PROCESS = """
import sys
from instrumetriq_polars import cli
from instrumetriq_polars.memory import SWITCH_INTERVAL
before = sys.getswitchinterval()
try:
    cli.run(sys.argv[1:])
except SystemExit:
    pass
print(before, sys.getswitchinterval(), SWITCH_INTERVAL)
"""


@pytest.mark.parametrize("command, tuned", [("export", True), ("status", False)])
def test_the_runner_sets_the_switch_interval_for_exports_only(tmp_path, command, tuned):
    """An export's process takes the GIL back sooner for the reader thread (memory.SWITCH_INTERVAL);
    the other commands leave Python's default."""
    argv = [command, "--date", "2026-01-15", "--archive-path", str(tmp_path / "none"), "--out-dir", str(tmp_path / "out")]
    done = subprocess.run([sys.executable, "-c", PROCESS, *argv], capture_output=True, text=True, timeout=120)
    before, after, wanted = map(float, done.stdout.split())
    assert before == 0.005
    assert after == (wanted if tuned else before)
