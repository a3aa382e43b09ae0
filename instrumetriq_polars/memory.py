"""The runner's process-wide memory settings (the library leaves the process's allocators alone).

Measured on the real-shaped day (2,400 entries, 224 MB of JSON; 2 cores; whole process,
``/usr/bin/time``), peak RSS went ~500 MB -> ~380 MB -> ~300 MB with the two settings below, at
the cost of ~0.5-1.0 s more system CPU (page faults of mmap'd blocks). The day whose hour 05 holds
20x the entries: ~410 -> ~320 MB. Measured again with the columnar lane (``export_day``
in-process, 3-5 interleaved runs): 1.9-2.2 s and 373-395 MB without them, 2.5-2.9 s and
281-309 MB with them: ~0.5 s of wall for ~100 MB (README "Against the peers").

- glibc's malloc serves a block of 128 KiB or more by mmap, and returns it to the system when it
  is freed, until one such block is freed: the threshold then rises to that block's size (up to
  32 MiB), and later blocks of the export's sizes (an hour's ~9 MB of text, the columnar lane's
  buffers, Polars' columns) come from heap arenas, one per thread that allocates, which keep the
  freed pages. The threshold is pinned at its initial 128 KiB.
- pyarrow's default pool (mimalloc) keeps freed pages per thread too; the system allocator,
  pinned as above, returns them.

Elsewhere than glibc (musl, macOS, Windows) the first does nothing.
"""

from __future__ import annotations

import ctypes
import sys

import pyarrow as pa

_M_MMAP_THRESHOLD = -3  # mallopt's parameter number in glibc's malloc.h
MMAP_THRESHOLD = 128 * 1024


def tune_allocators() -> bool:
    """Apply both settings (see above); True when glibc's threshold took effect."""
    pa.set_memory_pool(pa.system_memory_pool())
    return _pin_mmap_threshold()


def _pin_mmap_threshold() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
