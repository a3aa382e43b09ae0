"""The runner's process-wide settings (the library leaves a caller's process alone): the allocators,
and the GIL's switch interval (``tune_process``).

``tune_allocators(setting)`` picks where Arrow's buffers come from, and how glibc's malloc (Python's
objects, the hour's text) hands memory back. The settings, measured with benchmarks/bench_peers.py
(``--allocators``; figures in benchmarks/RESULTS.md):

- ``system-pinned`` (the default): Arrow on the system allocator, and glibc's mmap threshold pinned
  at 128 KiB, so every large block is mmap'd and returned when freed. Chosen again by measurement
  (benchmarks/RESULTS.md, 2026-12-07 SPEED2): the lowest and steadiest peak of all the settings
  on the real-shaped day and the 20x-hour day (~295 and ~311 MB, against ~304/322 for
  ``jemalloc-pinned`` and ~324/339 for ``jemalloc``), paid for by ~0.05-0.15 s more system time
  (~280k page faults on the 20x-hour day against ~150k for ``jemalloc``).
- ``jemalloc-pinned``: Arrow's jemalloc pool (decay time 0, as below), and glibc's mmap threshold
  pinned at 1 MiB: only the multi-MB blocks (the hour's text) are mmap'd; fewer faults, ~10 MB
  more peak.
- ``jemalloc``: Arrow's jemalloc pool, its freed pages returned at once (decay time 0: measured,
  17 MB lower peak than jemalloc's default decay and 0.15 s less CPU); glibc as it is (its
  threshold then grows with the largest block freed, up to 32 MiB): the least system time, the
  highest peak (~20-30 MB above ``system-pinned``).
- ``mimalloc``: Arrow's default pool (mimalloc); glibc as it is.
- ``system-arenas``: Arrow on the system allocator, glibc with at most two arenas (one per core:
  fewer pools of freed pages kept per thread), its threshold as it is.
- ``default``: nothing changed.

Elsewhere than glibc (musl, macOS, Windows) the glibc parts do nothing.
"""

from __future__ import annotations

import ctypes
import sys

import pyarrow as pa

_M_MMAP_THRESHOLD = -3  # mallopt's parameter numbers in glibc's malloc.h
_M_ARENA_MAX = -8
MMAP_THRESHOLD = 128 * 1024  # system-pinned
LARGE_BLOCK = 1 << 20  # jemalloc-pinned: measured against 128 KiB and 4 MiB (benchmarks/RESULTS.md)
SETTINGS = ("system-pinned", "jemalloc-pinned", "jemalloc", "mimalloc", "system-arenas", "default")
#: The setting the runner applies (chosen by measurement: benchmarks/RESULTS.md).
DEFAULT_SETTING = "system-pinned"


#: The GIL's switch interval the runner sets (Python's default is 5 ms). The reader thread hands the
#: GIL back for each inflate and each native parse and must take it again after; the building
#: thread, which holds it for its Python work, kept it up to the whole interval each time
#: (chosen by measurement: benchmarks/RESULTS.md).
SWITCH_INTERVAL = 0.0005


def tune_process(setting: str = DEFAULT_SETTING) -> bool:
    """What the runner sets in its own process and in its worker processes: the allocators
    (``tune_allocators(setting)``, whose result it returns) and the GIL's switch interval
    (``SWITCH_INTERVAL``)."""
    sys.setswitchinterval(SWITCH_INTERVAL)
    return tune_allocators(setting)


def tune_allocators(setting: str = DEFAULT_SETTING) -> bool:
    """Apply ``setting`` (see above); True when it took effect whole (an allocator this build of
    pyarrow lacks, or a glibc setting off glibc, leaves things as they were and gives False)."""
    if setting not in SETTINGS:
        raise ValueError(f"unknown allocator setting {setting!r}; choose from {', '.join(SETTINGS)}")
    try:
        if setting.startswith("jemalloc"):
            pa.set_memory_pool(pa.jemalloc_memory_pool())
            pa.jemalloc_set_decay_ms(0)
        elif setting == "mimalloc":
            pa.set_memory_pool(pa.mimalloc_memory_pool())
        elif setting.startswith("system"):
            pa.set_memory_pool(pa.system_memory_pool())
    except NotImplementedError:  # pyarrow built without that allocator
        return False
    if setting == "system-pinned":
        return _mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    if setting == "jemalloc-pinned":
        return _mallopt(_M_MMAP_THRESHOLD, LARGE_BLOCK)
    if setting == "system-arenas":
        return _mallopt(_M_ARENA_MAX, 2)
    return True


def _mallopt(parameter: int, value: int) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return mallopt(parameter, value) == 1
