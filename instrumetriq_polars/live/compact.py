"""Keeping the journal bounded: ``compact(state_dir, keep_days)`` drops the records older than
``keep_days`` (by the time they were journaled) and puts in their place what a follower needs to
go on exactly where it was: a ``compacted`` record carrying the last ``seq`` dropped (so a ``seq``
is never reused) and one ``file_state`` record per file (its offset, last trailer, state and
counts). The new journal is written beside the old one, fsynced and renamed over it, under the
state folder's lock (no follower may run meanwhile).

What is dropped is gone from ``read`` and ``follow``: a cursor older than the oldest ``seq`` kept is
refused (``LiveError``), not served with a gap. The ``session_id``s of dropped entries no longer
guard against duplicates: a file older than ``keep_days`` that is rewritten would deliver its
entries again (such files are long closed and normally removed by the archive cleanup).
"""

from __future__ import annotations

import os
import time

from ..errors import LiveError
from . import journal as jn
from .follower import Follower


def oldest_seq(state_dir: str) -> int:
    """The first ``seq`` the journal still holds (1 when nothing was dropped)."""
    for _, record in jn.read_records(state_dir):
        if record.get("type") == "compacted":
            return record["last_seq"] + 1
        if record.get("k") == "e":
            return record["seq"]
    return 1


def compact(state_dir: str, keep_days: float, now: float | None = None) -> dict:
    """Drop the journal's records older than ``keep_days``; returns what was done."""
    if keep_days < 0:
        raise LiveError(f"keep_days must be 0 or more, not {keep_days}")
    if not os.path.isdir(state_dir):
        raise LiveError(f"no live state folder at {state_dir}")
    cutoff = (time.time() if now is None else now) - keep_days * 86400
    with jn.StateLock(state_dir):
        records = [r for _, r in jn.read_records(state_dir, repair=True)]
        split = 0
        for index, record in enumerate(records):
            if record.get("type") not in ("origin", "compacted", "file_state") and record.get("t", 0) >= cutoff:
                break
            split = index + 1
        dropped = [r for r in records[:split] if r.get("type") not in ("origin", "compacted", "file_state")]
        if not dropped:
            return {"dropped": 0, "kept": len(records), "oldest_seq": oldest_seq(state_dir)}
        book = Follower.__new__(Follower)
        book.state_dir = state_dir
        book._load_records(records[:split])
        head = [r for r in records[:split] if r.get("type") == "origin"][:1]
        head.append({"k": "v", "type": "compacted", "last_seq": book.last_seq, "dropped": len(dropped), "t": time.time()})
        head += [{"k": "v", "type": "file_state", "f": s.name, "end": s.offset, "trail": s.trail, "state": s.state,
                  "entries": s.entries, "damaged_bytes": s.damaged_bytes, "t": time.time()} for s in book.files.values()]
        path = os.path.join(state_dir, jn.JOURNAL)
        tmp = f"{path}.compact.{os.getpid()}"
        with open(tmp, "wb") as f:
            f.writelines(jn.record_line(r) for r in head + records[split:])
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        jn.fsync_dir(state_dir)
    return {"dropped": len(dropped), "kept": len(records) - split, "oldest_seq": oldest_seq(state_dir)}
