"""Change wake-ups for a local archive: Linux inotify through ctypes on libc (no dependency), or
plain sleeping (polling) elsewhere. Either way the follower re-checks its files on every wake-up
and at least every ``safety`` seconds: an event can be missed (a watch added after the write, an
overflowed queue), so polling stays the safety net.

Why inotify: a blocked ``select`` on its descriptor costs nothing at idle, and wakes within a
millisecond of the collector's write (measured in benchmarks/bench_live.py).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import select
import struct
import sys
import time

IN_MODIFY, IN_ATTRIB, IN_CLOSE_WRITE = 0x2, 0x4, 0x8
IN_MOVED_FROM, IN_MOVED_TO, IN_CREATE, IN_DELETE = 0x40, 0x80, 0x100, 0x200
IN_DELETE_SELF, IN_MOVE_SELF, IN_Q_OVERFLOW, IN_IGNORED = 0x400, 0x800, 0x4000, 0x8000
IN_NONBLOCK, IN_CLOEXEC = 0o4000, 0o2000000
_MASK = IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_DELETE_SELF | IN_MOVE_SELF
_EVENT = struct.Struct("iIII")


def _libc():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.inotify_init1, libc.inotify_add_watch  # noqa: B018 - present?
    except (OSError, AttributeError):
        return None
    return libc


class PollWaker:
    """Wakes every ``interval`` seconds."""

    mode = "poll"

    def __init__(self, interval: float):
        self.interval = interval

    def watch(self, path: str) -> None:
        pass

    def wait(self, timeout: float | None = None) -> bool:
        """Sleep; returns False (no event seen)."""
        time.sleep(self.interval if timeout is None else min(timeout, self.interval))
        return False

    def close(self) -> None:
        pass


class InotifyWaker:
    """Wakes on a change in a watched folder, or after ``safety`` seconds."""

    mode = "inotify"

    def __init__(self, safety: float):
        self.safety = safety
        libc = _libc()
        if libc is None:
            raise OSError("inotify is not available on this system")
        self._libc = libc
        fd = libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            raise OSError(ctypes.get_errno(), f"inotify_init1: {os.strerror(ctypes.get_errno())}")
        self.fd = fd
        self._watched: dict[str, int] = {}

    def watch(self, path: str) -> None:
        """Watch the folder ``path`` (its entries' creation, growth, removal); idempotent."""
        if path in self._watched:
            return
        wd = self._libc.inotify_add_watch(self.fd, os.fsencode(path), _MASK)
        if wd >= 0:
            self._watched[path] = wd

    def unwatch_missing(self) -> None:
        for path in [p for p in self._watched if not os.path.isdir(p)]:
            del self._watched[path]

    def wait(self, timeout: float | None = None) -> bool:
        """Block until an event (True) or the timeout (default ``safety``; False). Events that
        arrive together are read at once; a short settle lets a three-write member finish."""
        limit = self.safety if timeout is None else timeout
        ready, _, _ = select.select([self.fd], [], [], max(0.0, limit))
        if not ready:
            return False
        self._drain()
        return True

    def _drain(self) -> None:
        while True:
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                return
            if not data:
                return
            pos = 0
            while pos + _EVENT.size <= len(data):
                wd, mask, _cookie, length = _EVENT.unpack_from(data, pos)
                pos += _EVENT.size + length
                if mask & IN_IGNORED:
                    self._watched = {p: w for p, w in self._watched.items() if w != wd}

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def make_waker(mode: str, interval: float, safety: float, local: bool):
    """``mode``: "auto" (inotify for a local archive on Linux, else polling), "inotify" or "poll"."""
    if mode not in ("auto", "inotify", "poll"):
        raise ValueError(f"mode must be auto, inotify or poll, not {mode!r}")
    if mode == "poll" or not local:
        return PollWaker(interval)
    try:
        return InotifyWaker(safety)
    except OSError:
        if mode == "inotify":
            raise
        return PollWaker(interval)
