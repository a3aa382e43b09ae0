"""The runner's one process-wide memory setting (the library leaves the process's allocator alone).

glibc's malloc serves a block of 128 KiB or more by mmap, and returns it to the system when it is
freed, until one such block is freed: the threshold then rises to that block's size (up to 32
MiB), and later blocks of the export's sizes (an hour's ~9 MB of text, its ~95 KB lines, the
columnar lane's buffers, Polars' and pyarrow's columns) come from heap arenas, one per thread that
allocates, which keep freed pages. Measured on the real-shaped day (2 cores, whole process,
``/usr/bin/time``): 526-546 MB of peak RSS, 366-372 MB with the threshold pinned at its initial
128 KiB; no change in speed beyond the noise. Elsewhere (musl, macOS, Windows) this does nothing.
"""

from __future__ import annotations

import ctypes
import sys

_M_MMAP_THRESHOLD = -3  # mallopt's parameter number in glibc's malloc.h
MMAP_THRESHOLD = 128 * 1024


def pin_mmap_threshold() -> bool:
    """Keep glibc from raising its mmap threshold (see above); True when it took effect."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
