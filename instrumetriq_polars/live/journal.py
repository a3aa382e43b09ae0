"""The follower's durable state in its state folder: the journal, the checkpoint, the cursors, the lock.

- ``journal.log``: append-only, one record a line: ``CRC32(json) as 8 hex digits``, a space, the
  record's JSON, ``\\n``. A record is an entry (``"k": "e"``, with its ``seq``) or a system event
  (``"k": "v"``, no ``seq``). Records are fsynced before anything is handed out, so whatever a
  consumer saw is on disk. A last record that is torn (no newline, or its check fails: the
  process died while writing it) is dropped and cut off by the next follower; nothing was
  delivered from it. A bad record before the last one is damage of the state folder itself
  (``LiveError``): it is never skipped.
- ``checkpoint.json``: the follower's file offsets, written atomically (temp file, fsync, rename),
  with the journal size it covers; the journal records after it are replayed on start, so a
  checkpoint older than the journal (a kill between the two) loses nothing. A checkpoint that
  cannot be read is ignored and rebuilt from the journal alone.
- ``cursors/NAME.json``: the last ``seq`` a named consumer acknowledged (atomic writes).
- ``follower.lock``: an ``flock`` held by the one follower of the folder (released by the kernel
  however the process ends).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import socket
import time
import zlib
from collections.abc import Iterator

import orjson

from ..errors import LiveError

JOURNAL, CHECKPOINT, LOCK, CURSORS = "journal.log", "checkpoint.json", "follower.lock", "cursors"
_CONSUMER = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def record_line(record: dict) -> bytes:
    body = orjson.dumps(record)
    return b"%08x %s\n" % (zlib.crc32(body), body)


def _parse(line: bytes) -> dict | None:
    """The record of one journal line (without its newline), or None if its check fails."""
    if len(line) < 10 or line[8:9] != b" ":
        return None
    body = line[9:]
    try:
        if int(line[:8], 16) != zlib.crc32(body):
            return None
        record = orjson.loads(body)
    except (ValueError, orjson.JSONDecodeError):
        return None
    return record if type(record) is dict else None


def atomic_write(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` so a reader sees the old file or the new one, never a part."""
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(os.path.dirname(path) or ".")


def fsync_dir(folder: str) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_records(state_dir: str, start: int = 0, repair: bool = False) -> Iterator[tuple[int, dict]]:
    """Each intact record of the journal from byte ``start``, with the byte offset after it. A torn
    last record ends the iteration (``repair``: it is cut off the file). ``LiveError`` for a bad
    record followed by others."""
    path = os.path.join(state_dir, JOURNAL)
    try:
        f = open(path, "r+b" if repair else "rb")
    except FileNotFoundError:
        return
    with f:
        f.seek(start)
        offset = start
        for line in f:
            record = _parse(line[:-1]) if line.endswith(b"\n") else None
            if record is None:
                if f.read(1):
                    raise LiveError(f"{path}: the journal record at byte {offset} is damaged and others follow it; "
                                    "the state folder cannot be trusted: move it aside and start a new one")
                if repair:
                    f.truncate(offset)
                    os.fsync(f.fileno())
                return
            offset += len(line)
            yield offset, record


class Journal:
    """The append side of the journal (the follower's). ``append`` buffers records; ``commit``
    writes and fsyncs them: call it before handing out anything appended."""

    def __init__(self, state_dir: str):
        self.path = os.path.join(state_dir, JOURNAL)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        self.size = os.fstat(self._fd).st_size
        if not self.size:
            fsync_dir(state_dir)  # the new file's name is durable too
        self._pending: list[bytes] = []

    def append(self, record: dict) -> None:
        self._pending.append(record_line(record))

    def commit(self) -> None:
        if not self._pending:
            return
        data = b"".join(self._pending)
        self._pending.clear()
        written = 0
        while written < len(data):
            written += os.write(self._fd, data[written:])
        os.fsync(self._fd)
        self.size += len(data)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def load_checkpoint(state_dir: str) -> dict | None:
    """The checkpoint, or None when there is none or it cannot be read (rebuilt from the journal)."""
    try:
        with open(os.path.join(state_dir, CHECKPOINT), "rb") as f:
            value = orjson.loads(f.read())
    except (OSError, orjson.JSONDecodeError):
        return None
    if type(value) is not dict or type(value.get("journal_bytes")) is not int or type(value.get("files")) is not dict:
        return None
    return value


def save_checkpoint(state_dir: str, checkpoint: dict) -> None:
    atomic_write(os.path.join(state_dir, CHECKPOINT), orjson.dumps(checkpoint))


def check_consumer(name: str) -> str:
    if not isinstance(name, str) or not _CONSUMER.fullmatch(name):
        raise LiveError(f"invalid consumer name {name!r}: use 1-64 letters, digits, '.', '_' or '-'")
    return name


def read_cursor(state_dir: str, consumer: str) -> int:
    """The last ``seq`` ``consumer`` acknowledged (0: none)."""
    path = os.path.join(state_dir, CURSORS, f"{check_consumer(consumer)}.json")
    try:
        with open(path, "rb") as f:
            value = orjson.loads(f.read())
    except FileNotFoundError:
        return 0
    except (OSError, orjson.JSONDecodeError) as exc:
        raise LiveError(f"cannot read the cursor {path} ({exc}); remove it to start that consumer again") from None
    seq = value.get("seq") if type(value) is dict else None
    if type(seq) is not int or seq < 0:
        raise LiveError(f"the cursor {path} holds no valid seq; remove it to start that consumer again")
    return seq


def write_cursor(state_dir: str, consumer: str, seq: int) -> None:
    folder = os.path.join(state_dir, CURSORS)
    os.makedirs(folder, exist_ok=True)
    atomic_write(os.path.join(folder, f"{check_consumer(consumer)}.json"),
                 orjson.dumps({"seq": seq, "at": time.time()}))


def list_cursors(state_dir: str) -> dict[str, int]:
    folder = os.path.join(state_dir, CURSORS)
    try:
        names = sorted(n[:-5] for n in os.listdir(folder) if n.endswith(".json"))
    except FileNotFoundError:
        return {}
    return {name: read_cursor(state_dir, name) for name in names if _CONSUMER.fullmatch(name)}


class StateLock:
    """The one follower of a state folder: ``LiveError`` if another process follows it."""

    def __init__(self, state_dir: str):
        self.path = os.path.join(state_dir, LOCK)
        self._fd: int | None = None

    def acquire(self) -> StateLock:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 512, 0).decode(errors="replace").strip()
            os.close(fd)
            raise LiveError(f"another follower uses the state folder {os.path.dirname(self.path)} ({holder or 'starting'}); "
                            "stop it, or give this one another state folder") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}).encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> StateLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
