"""``status``: the live feed's state, read from its state folder (and the archive's file sizes),
without running a follower: offsets, bytes behind, age of the last entry, last ``seq``, damaged
spans, consumers; and the problems that make ``live status`` exit 1 (stale, lagging, damaged)."""

from __future__ import annotations

import fcntl
import os
import time

from ..errors import LiveError
from . import journal as jn
from .files import ArchiveFiles
from .compact import oldest_seq
from .follower import Follower

#: No new entry for this long is stale (bursts come ~10 minutes apart).
STALE_AFTER = 25 * 60
#: Bytes not yet read from the archive beyond this are lagging (one burst is ~0.5 MB compressed).
LAG_BYTES = 4 << 20
#: Damaged spans this recent (seconds) are reported as a problem.
DAMAGE_WINDOW = 24 * 3600


def _follower_running(state_dir: str) -> bool:
    try:
        fd = os.open(os.path.join(state_dir, jn.LOCK), os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def status(state_dir: str = "output/tier1_state", archive: str | None = None, *, now: float | None = None,
           stale_after: float = STALE_AFTER, lag_bytes: int = LAG_BYTES) -> dict:
    """The feed's state as a JSON-ready dict; ``problems`` lists what is wrong (empty: healthy)."""
    if not os.path.isdir(state_dir):
        raise LiveError(f"no live state folder at {state_dir}: nothing has followed the archive there yet")
    now = time.time() if now is None else now
    book = Follower.replayed(state_dir)
    archive = archive or (book.checkpoint or {}).get("archive")
    files, behind = [], 0
    reader = ArchiveFiles(archive) if archive else None
    for name, state in sorted(book.files.items()):
        stat = reader.stat(name) if reader is not None else None
        size = stat.size if stat is not None else None
        lag = max(0, size - state.offset) if size is not None else 0
        behind += lag
        files.append({"file": name, "offset": state.offset, "size": size, "behind": lag, "entries": state.entries,
                      "state": state.state, "damaged_bytes": state.damaged_bytes})
    last = book.last_entry
    row = (last or {}).get("row") or {}
    recent_damage = [d for d in book.damaged if now - float(d.get("t", 0)) <= DAMAGE_WINDOW]
    result = {
        "state_dir": state_dir,
        "archive": archive,
        "follower_running": _follower_running(state_dir),
        "last_seq": book.last_seq,
        "oldest_seq": oldest_seq(state_dir),
        "last_entry_age_s": round(now - last["t"], 3) if last else None,
        "last_entry_expired_ts": row.get("expired_ts"),
        "bytes_behind": behind,
        "files": files,
        "damaged_spans": [{k: d.get(k) for k in ("f", "start", "end", "reason", "t")} for d in book.damaged],
        "consumers": {name: {"seq": seq, "behind": book.last_seq - seq} for name, seq in jn.list_cursors(state_dir).items()},
    }
    problems = []
    if last is None or now - last["t"] > stale_after:
        problems.append("stale: no entry for more than %d s" % stale_after if last else "stale: no entry yet")
    if behind > lag_bytes:
        problems.append(f"lagging: {behind} bytes of the archive not read yet")
    if recent_damage:
        problems.append(f"damaged: {len(recent_damage)} damaged span(s) in the last {DAMAGE_WINDOW // 3600} h")
    result["problems"] = problems
    return result
