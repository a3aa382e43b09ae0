"""One export of a day at a time: the lock file ``.export.lock`` in a local day folder.

The lock is an ``flock`` on that file, held for as long as the export writes and publishes. The
kernel drops it when the process ends, however it ends (SIGKILL included), so a lock left by a
dead run is stale by construction and the next run simply takes it: no process-id guessing, no
clock, and a reused pid cannot keep a dead run's lock alive. The file holds the holder's pid, host
and start time, for the message the refused run prints.

The holder removes the file when done, while still holding the lock. A run that opened the file
before the removal and locks it afterwards holds a lock on a file that is no longer in the
folder; it sees that the path now names another file (or none) and starts over.

Holding the lock is also what lets a run remove the temporary files of runs that died
(``publish.Destination.clean_stale_temps``): no other run of the day can be writing.

Object stores have no such lock: there the manifest-last protocol applies, and the export refuses
to publish if the manifest changed while it ran (see ``publish.decide``).
"""

from __future__ import annotations

import fcntl
import json
import os
import socket

from ..folder import LOCK_NAME
from ..errors import LockHeldError, StorageError
from ..manifest import utc_now_iso


class PartitionLock:
    """``with PartitionLock(folder, "2026-01-15"):`` holds the day's lock; LockHeldError if another
    export of that day holds it, StorageError if the lock file cannot be used."""

    def __init__(self, folder: str, day: str) -> None:
        self.path = os.path.join(folder, LOCK_NAME)
        self.day = day
        self._fd: int | None = None

    def acquire(self) -> "PartitionLock":
        try:
            return self._acquire()
        except OSError as exc:
            raise StorageError(f"cannot lock {self.path}: {exc.strerror or exc}; nothing was done", self.path) from exc

    def _acquire(self) -> "PartitionLock":
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_holder(fd)
                os.close(fd)
                raise LockHeldError(
                    f"another export of {self.day} is running ({_describe(holder)}; lock {self.path}); "
                    "this run did nothing", self.path, holder
                ) from None
            except BaseException:
                os.close(fd)
                raise
            if _same_file(fd, self.path):
                break
            os.close(fd)  # the file was removed by the run that held it: lock the new one
        self._fd = fd
        info = {"pid": os.getpid(), "host": socket.gethostname(), "started": utc_now_iso()}
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(info).encode() + b"\n", 0)
        except OSError:
            self.release()
            raise
        return self

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            os.unlink(self.path)  # still locked: nobody can take the file being removed
        except OSError:
            pass  # gone already, or not ours to remove: the lock itself ends with close()
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> "PartitionLock":
        return self if self._fd is not None else self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


class _NoLock:
    """Object stores: no lock (see the module docstring)."""

    held = False

    def release(self) -> None:
        pass

    def __enter__(self) -> "_NoLock":
        return self

    def __exit__(self, *exc) -> None:
        pass


def lock_partition(destination) -> PartitionLock | _NoLock:
    """The lock of a ``publish.Destination``'s day, acquired; release it with ``with`` or
    ``release()``. Raises LockHeldError if another export of the day holds it."""
    if not destination.is_local:
        return _NoLock()
    return PartitionLock(destination.folder, destination.label).acquire()


def _same_file(fd: int, path: str) -> bool:
    try:
        on_disk = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (on_disk.st_dev, on_disk.st_ino) == (held.st_dev, held.st_ino)


def _read_holder(fd: int) -> dict | None:
    """The holder's record, or None while it is still starting (the file is empty or partly written)."""
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"{}")
        return {"pid": info["pid"], "host": info["host"], "started": info["started"]}
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _describe(holder: dict | None) -> str:
    if holder is None:
        return "holder unknown: it is still starting"
    return f"pid {holder['pid']} on {holder['host']}, started {holder['started']}"
