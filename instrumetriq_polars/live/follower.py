"""The follower: the growing archive -> a gap-free, durable sequence of entries (``seq`` 1, 2, 3, ...).

One ``poll()`` lists the recent day folders, reads what each hour file grew by (``members``: only
complete members become entries; an incomplete last member waits), gives each new entry the next
``seq``, writes the records to the journal and fsyncs it, and only then returns them. Every byte
range the follower moves past is in the journal (an entry, a damaged span, a duplicate skipped,
bytes skipped at a ``"now"`` start), so a restart replays the journal and resumes at exactly the
offsets it had: after ``kill -9`` at any point, the same ``seq`` -> entry mapping, no gap, no
duplicate. The checkpoint only carries what the journal does not (growth times, sizes).

Files are read in name order (day, then hour), each from its offset: the ``seq`` order is the
order in which the collector appended, hour after hour.

Hour lifecycle (``FileState.state``): *open* until its hour ends, *lingering* after, *closed*
once past ``linger`` with no growth for ``quiet`` seconds and no undecided bytes; closing writes an
``hour_closed`` event. A closed file is still re-checked (each poll lists the recent day folders)
for ``sweep_hours`` after its hour; what it grows by then is delivered marked ``late``. A file
that shrinks, or whose identity or last consumed bytes change, is ``file_rewritten`` and read again
from its start, entries already delivered (same ``meta.session_id``) skipped; a file that vanishes
is ``file_removed``.
"""

from __future__ import annotations

import os
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import orjson

from ..members import MAX_ENTRY_TEXT, MemberStream
from . import journal as jn
from .files import ArchiveFiles, FileStat, day_hour
from .rows import normalized
from .tier1 import instant_texts, spot_summaries, tier1_row

#: Compressed bytes read in one poll (over all files): bounds a catch-up's batch (~25 real entries)
#: and so the follower's memory (the sizes tried: benchmarks/RESULTS.md, Tier 1 live feed).
READ_LIMIT = 256 << 10


@dataclass(frozen=True)
class FollowOptions:
    """How the follower watches: ``mode`` "auto" | "inotify" | "poll"; ``poll_interval`` (poll mode,
    and fsspec URLs); ``safety`` (inotify mode: re-check anyway this often); ``linger`` and ``quiet``
    (seconds: when an hour file closes); ``sweep_hours`` (how long after its hour a closed file is
    still re-checked); ``stall`` (seconds after the linger: undecided bytes at the end of a quiet
    file become a damaged span); ``max_entry`` (bytes of text: larger members are damaged);
    ``clock`` (the wall clock, replaceable in tests); ``storage_options`` (fsspec)."""

    mode: str = "auto"
    poll_interval: float = 0.25
    safety: float = 2.0
    linger: float = 300.0
    quiet: float = 60.0
    sweep_hours: float = 48.0
    stall: float = 600.0
    max_entry: int = MAX_ENTRY_TEXT
    checkpoint_every: float = 5.0
    clock: Callable[[], float] = time.time
    storage_options: dict | None = None


@dataclass
class FileState:
    """What the follower knows of one hour file."""

    name: str  # YYYYMMDD/HH.jsonl.gz
    offset: int = 0
    ident: str = ""
    size: int = 0
    trail: str = ""  # hex of the 8 bytes before ``offset`` (a rewrite changes them)
    state: str = "open"  # open | lingering | closed
    entries: int = 0
    last_growth: float = 0.0
    damaged_bytes: int = 0

    @property
    def hour_end(self) -> float:
        day, hour = day_hour(self.name)
        start = datetime.fromisoformat(day).replace(tzinfo=timezone.utc) + timedelta(hours=hour)
        return (start + timedelta(hours=1)).timestamp()


@dataclass
class Delivery:
    """One journaled record handed out by ``poll``: an entry (``seq`` set, ``text`` its line) or
    a system event (``seq`` None)."""

    record: dict
    text: bytes | None = None

    @property
    def seq(self) -> int | None:
        return self.record.get("seq")


class Follower:
    """The one follower of ``state_dir`` (holds its lock until ``close``)."""

    def __init__(self, archive: str, state_dir: str, options: FollowOptions = FollowOptions(), *,
                 fresh_start: str = "beginning"):
        self.options = options
        self.state_dir = state_dir
        os.makedirs(state_dir, exist_ok=True)
        self._lock = jn.StateLock(state_dir).acquire()
        try:
            self.archive = ArchiveFiles(archive, options.storage_options)
            self._load(repair=True)
            self.journal = jn.Journal(state_dir)
            self._saved_at, self._dirty = 0.0, True
            if self.fresh:
                self._start_fresh(fresh_start)
        except BaseException:
            self._lock.release()
            raise

    @classmethod
    def replayed(cls, state_dir: str) -> Follower:
        """The state a follower of ``state_dir`` would start from, read only (no lock, no archive):
        for ``status``."""
        self = cls.__new__(cls)
        self.state_dir, self.options = state_dir, FollowOptions()
        self._load(repair=False)
        return self

    # -- the journal is the truth ------------------------------------------------------------
    def _load(self, repair: bool) -> None:
        self._load_records(record for _, record in jn.read_records(self.state_dir, repair=repair))
        self.fresh = self.records == 0
        checkpoint = self.checkpoint = jn.load_checkpoint(self.state_dir)
        if checkpoint is not None:
            self._merge_checkpoint(checkpoint)

    def _load_records(self, records) -> None:
        """Replay ``records`` (the journal's, in order) into a fresh state."""
        self._open_streams: dict[str, MemberStream] = {}
        self.files: dict[str, FileState] = {}
        self.seen: set[str] = set()  # session ids delivered
        self.last_seq = 0
        self.first_day: str | None = None
        self.removed: set[str] = set()
        self.records = 0
        self.last_entry: dict | None = None
        self.damaged: list[dict] = []
        for record in records:
            self._replay(record)
            self.records += 1

    def _replay(self, record: dict) -> None:
        kind, name = record.get("k"), record.get("f")
        if record.get("type") == "origin":
            self.first_day = record.get("day")
            return
        if record.get("type") == "compacted":  # the journal before it was dropped (compact.py)
            self.last_seq = record["last_seq"]
            return
        if name is None:
            return
        if record.get("type") == "file_removed":
            self.files.pop(name, None)
            self.removed.add(name)
            return
        state = self.files.get(name)
        if state is None:
            state = self.files[name] = FileState(name)
            self.removed.discard(name)
        if record.get("type") == "damaged_span":
            self.damaged.append(record)
        if kind == "e":
            self.last_seq = record["seq"]
            self.last_entry = record
            if record.get("sid"):
                self.seen.add(record["sid"])
            state.entries += 1
        kind_type = record.get("type")
        if kind_type == "file_rewritten":
            state.offset, state.trail, state.ident = 0, "", record.get("ident", "")
            return
        if kind_type == "hour_closed":
            state.state = "closed"
            return
        if kind_type == "damaged_span":
            state.damaged_bytes += record["end"] - record["start"]
        if kind_type == "file_state":  # a file as it stood where the journal was compacted
            state.state, state.entries, state.damaged_bytes = record["state"], record["entries"], record["damaged_bytes"]
        if "end" in record:
            state.offset = record["end"]
            state.trail = record.get("trail", "")

    def _merge_checkpoint(self, checkpoint: dict) -> None:
        for name, saved in checkpoint["files"].items():
            state = self.files.get(name)
            if state is not None and type(saved) is dict:
                state.last_growth = float(saved.get("last_growth") or 0.0)
                state.size = int(saved.get("size") or 0)
                state.ident = state.ident or str(saved.get("ident") or "")

    def save_checkpoint(self) -> None:
        files = {n: {"last_growth": s.last_growth, "size": s.size, "ident": s.ident, "offset": s.offset}
                 for n, s in self.files.items()}
        jn.save_checkpoint(self.state_dir, {"journal_bytes": self.journal.size, "last_seq": self.last_seq,
                                            "archive": self.archive.archive, "files": files, "saved": time.time()})
        self._saved_at = time.monotonic()
        self._dirty = False

    def _start_fresh(self, start: str) -> None:
        """A new state folder: where the sequence begins. "beginning": every day folder there is;
        "now": after what the hour files hold now (those bytes journaled as skipped); an hour
        ``YYYY-MM-DDTHH``: from that hour file on."""
        days = self.archive.days()
        first = days[0] if days else None  # an empty archive: whatever day folder comes first
        skip_before = None
        if start == "now":
            first = days[-1] if days else None
        elif len(start) == 13 and start[10] == "T":
            first = start[:10].replace("-", "")
            skip_before = f"{first}/{start[11:13]}.jsonl.gz"
        self._append({"k": "v", "type": "origin", "day": first, "start": start})
        self.first_day = first
        for day in (d for d in days if first is None or d >= first):
            for name, stat in sorted(self.archive.hour_files(day).items()):
                if start == "now" or (skip_before is not None and name < skip_before):
                    self._skip_existing(name, stat, "existed before the start")
        self.journal.commit()

    def _skip_existing(self, name: str, stat: FileStat, why: str) -> None:
        state = self.files.setdefault(name, FileState(name, ident=stat.ident))
        stream = MemberStream(0, one_line=True, max_text=self.options.max_entry)
        stream.feed(self.archive.read(name, 0, stat.size))
        end = stream.offset
        if end:
            trail = self.archive.read(name, end - 8, end).hex()
            self._append({"k": "v", "type": "skipped", "f": name, "start": 0, "end": end, "trail": trail, "reason": why})
            state.offset, state.trail = end, trail
        state.size, state.last_growth = stat.size, stat.mtime

    def _append(self, record: dict) -> None:
        record.setdefault("t", time.time())
        self.journal.append(record)

    # -- one pass ----------------------------------------------------------------------------
    def recent_days(self, present: list[str]) -> list[str]:
        """The day folders to list: every one from the newest day the follower knows a file of
        (so day folders made while it was down are never passed over), the two newest, and
        those of files still open or within the sweep."""
        days = [d for d in present if self.first_day is None or d >= self.first_day]
        now = self.options.clock()
        known = {n.split("/")[0] for n in self.files}
        frontier = max(known) if known else ""
        keep = {n.split("/")[0] for n, s in self.files.items()
                if s.state != "closed" or now < s.hour_end + self.options.sweep_hours * 3600}
        return sorted(set(days[-2:]) | (keep & set(days)) | {d for d in days if d >= frontier})

    def poll(self) -> list[Delivery]:
        """Read what the archive grew by; journal it (fsynced); return it in journal order."""
        out: list[Delivery] = []
        now = self.options.clock()
        self._read_now, self.more = 0, False  # bytes read in this poll; whether the archive holds more now
        listed: dict[str, FileStat] = {}
        present = self.archive.days()
        days = self.recent_days(present)
        for day in days:
            listed.update(self.archive.hour_files(day))
        gone = set(present)
        for name in [n for n, s in self.files.items() if n.split("/")[0] not in gone]:  # a day folder removed
            state = self.files.pop(name)
            self._streams().pop(name, None)
            if state.state != "closed":
                out.append(self._event({"type": "file_removed", "f": name, "offset": state.offset, "entries": state.entries}))
        for name in sorted(set(listed) | {n for n in self.files if n.split("/")[0] in days}):
            stat = listed.get(name)
            state = self.files.get(name)
            if stat is None:
                if state is not None:
                    out.append(self._event({"type": "file_removed", "f": name, "offset": state.offset, "entries": state.entries}))
                    del self.files[name]
                    self._streams().pop(name, None)
                continue
            if state is None:
                state = self.files[name] = FileState(name, ident=stat.ident, last_growth=stat.mtime)
            before = state.offset + self._streams()[name].held if name in self._streams() else state.offset
            out += self._read_file(state, stat)
            out += self._lifecycle(state, stat, now)
            self._read_now += max(0, state.offset + self._streams()[name].held - before)
            if stat.size > state.offset + self._streams()[name].held or self._read_now >= READ_LIMIT:
                self.more = True  # READ_LIMIT read: later files wait for the next poll, so seq order stays file order
                break
        self.journal.commit()
        self._dirty = self._dirty or bool(out)
        if self._dirty and time.monotonic() - self._saved_at > self.options.checkpoint_every:
            self.save_checkpoint()  # not on every delivery: the journal is the truth, this is a cache
        return out

    def _event(self, record: dict) -> Delivery:
        record.update(k="v", after_seq=self.last_seq)
        self._append(record)
        return Delivery(record)

    def _rewritten(self, state: FileState, stat: FileStat, reason: str) -> Delivery:
        delivery = self._event({"type": "file_rewritten", "f": state.name, "reason": reason, "offset": state.offset,
                                "size": stat.size, "ident": stat.ident})
        state.offset, state.trail, state.ident = 0, "", stat.ident
        self._streams().pop(state.name, None)
        return delivery

    def _streams(self) -> dict[str, MemberStream]:
        """The member reader of each file being read (its undecided tail), by name."""
        return self._open_streams

    def _read_file(self, state: FileState, stat: FileStat) -> list[Delivery]:
        out: list[Delivery] = []
        if state.ident and stat.ident and stat.ident != state.ident:
            out.append(self._rewritten(state, stat, "replaced"))
        elif stat.size < state.offset:
            out.append(self._rewritten(state, stat, "truncated"))
        state.ident = stat.ident or state.ident
        stream = self._streams().get(state.name)
        if stream is None or stream.offset != state.offset:
            stream = self._streams()[state.name] = MemberStream(state.offset, one_line=True, max_text=self.options.max_entry)
        begin = state.offset + stream.held
        if stat.size <= begin:
            state.size = stat.size
            return out
        check = 8 if state.trail and not stream.held and state.offset >= 8 else 0
        data = self.archive.read(state.name, begin - check, min(stat.size, begin + READ_LIMIT))
        if check:
            if data[:8].hex() != state.trail:
                out.append(self._rewritten(state, stat, "replaced"))
                return out + self._read_file(state, stat)
            data = data[8:]
        if stat.size > state.size or data:
            state.last_growth = max(state.last_growth, stat.mtime or self.options.clock())
            self._dirty = True
        state.size = stat.size
        scan = stream.feed(data)
        return out + self._take(state, scan)

    def _take(self, state: FileState, scan) -> list[Delivery]:
        """Journal the members and damaged spans of one read, in file order."""
        items = sorted([(m.start, "m", m) for m in scan.members] + [(s.start, "d", s) for s in scan.damaged],
                       key=lambda item: item[0])
        texts = [m.text for m in scan.members]
        rows = normalized(texts, state.name) if texts else []
        spots = spot_summaries([(entry or {}).get("spot_prices") for entry, _ in rows])
        instants = instant_texts([entry for entry, _ in rows])
        by_start = {m.start: (rows[i], spots[i], instants[i]) for i, m in enumerate(scan.members)}
        late = state.state == "closed"
        day, hour = day_hour(state.name)
        out: list[Delivery] = []
        ingested = time.time()
        for _, kind, item in items:
            trail = self._trail_of(state, item)
            if kind == "d":
                state.damaged_bytes += item.end - item.start
                out.append(self._event({"type": "damaged_span", "f": state.name, "start": item.start, "end": item.end,
                                        "reason": item.reason, "trail": trail}))
                continue
            (entry, problem), spot, times = by_start[item.start]
            sid = _session_id(entry, item.text)
            if sid is not None and sid in self.seen:
                out.append(self._event({"type": "duplicate_skipped", "f": state.name, "start": item.start,
                                        "end": item.end, "sid": sid, "trail": trail}))
                continue
            self.last_seq += 1
            if sid is not None:
                self.seen.add(sid)
            state.entries += 1
            row = tier1_row(entry, self.last_seq, day, hour, item.start, ingested, problem, spot, times)
            record = {"k": "e", "seq": self.last_seq, "f": state.name, "start": item.start, "end": item.end,
                      "sid": sid, "late": late, "t": ingested, "trail": trail, "row": row}
            self._append(record)
            out.append(Delivery(record, item.text))
        if items:
            state.offset, state.trail = scan.offset, out[-1].record.get("trail", "") if out else state.trail
        return out

    def _trail_of(self, state: FileState, item) -> str:
        """The hex of the last 8 bytes of ``item`` (a member's trailer: its CRC32 and ISIZE)."""
        if hasattr(item, "text"):
            return (zlib.crc32(item.text).to_bytes(4, "little") + (len(item.text) & 0xFFFFFFFF).to_bytes(4, "little")).hex()
        return self.archive.read(state.name, item.end - 8, item.end).hex() if item.end >= 8 else ""

    def _lifecycle(self, state: FileState, stat: FileStat, now: float) -> list[Delivery]:
        if state.state == "closed":
            return []
        end = state.hour_end
        if now < end:
            state.state = "open"
            return []
        state.state = "lingering"
        opts = self.options
        stream = self._streams().get(state.name)
        undecided = stream is not None and stream.held > 0 or stat.size > state.offset
        grown_since = state.last_growth or stat.mtime
        if now < end + opts.linger or now - grown_since < opts.quiet:
            return []
        out: list[Delivery] = []
        if undecided:
            if now < end + opts.linger + opts.stall or stream is None or stat.size > state.offset + stream.held:
                return []
            out += self._take(state, stream.feed(b"", final=True))
        state.state = "closed"
        out.append(self._event({"type": "hour_closed", "f": state.name, "entries": state.entries, "bytes": state.offset,
                                "damaged_bytes": state.damaged_bytes,
                                "last_append_after_end_s": round(grown_since - end, 3)}))
        return out

    def close(self) -> None:
        try:
            self.journal.commit()
            self.save_checkpoint()
        finally:
            self.journal.close()
            self._lock.release()


def _session_id(entry: dict | None, text: bytes) -> str | None:
    if entry is None:
        try:
            entry = orjson.loads(text)
        except orjson.JSONDecodeError:
            return None
    meta = entry.get("meta") if type(entry) is dict else None
    sid = meta.get("session_id") if type(meta) is dict else None
    return sid if type(sid) is str and sid else None
