"""The live feed's Python API: ``follow`` (runs the follower), ``read`` (reads the journal from
another process), ``Batch`` / ``Entry`` / ``Event`` / ``Position``, and per-consumer cursors.

Delivery is at-least-once per consumer: ``Batch.ack()`` stores the consumer's cursor (the batch's
``last_seq``); ``start="checkpoint"`` resumes after it. A consumer that stores the ``seq`` with its
own effect, and resumes from there (``start=SEQ``), gets exactly-once.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

import polars as pl

from ..errors import InstrumetriqError, LiveError
from ..members import read_members
from . import journal as jn
from .files import ArchiveFiles, day_hour
from .follower import Delivery, Follower, FollowOptions
from .inotify import make_waker
from .rows import flat_frame
from .tier1 import TIER1_SCHEMA, tier1_frame

DEFAULT_STATE_DIR = "output/tier1_state"
#: Entries per batch when catching up from the journal.
BATCH_SIZE = 256


class Position(NamedTuple):
    """Where an entry was read: its hour file (``YYYYMMDD/HH.jsonl.gz``), the byte range of its gzip
    member, and the archive day (``YYYY-MM-DD``) and hour."""

    file: str
    start: int
    end: int
    day: str
    hour: int


@dataclass
class Entry:
    """One entry of the feed: ``seq``; ``position``; ``late`` (its hour file had closed); ``row``
    (``fields="tier1"``: the tier1 dict; ``"full"``: the original line, bytes, byte for byte; a list:
    a dict of those columns); ``session_id``; ``ingested`` (epoch seconds)."""

    seq: int
    position: Position
    late: bool
    row: dict | bytes
    session_id: str | None = None
    ingested: float = 0.0
    tier1: dict = field(default_factory=dict, repr=False)  # the tier1 row, whatever ``fields``
    text: bytes | None = field(default=None, repr=False)  # the original line (fields other than tier1)


@dataclass
class Event:
    """A system event: ``type`` (``hour_closed``, ``damaged_span``, ``file_rewritten``,
    ``file_removed``, ``duplicate_skipped``, ``skipped``, ``origin``) and its fields (``data``);
    ``after_seq``: the last ``seq`` journaled before it."""

    type: str
    data: dict
    after_seq: int = 0


@dataclass
class Batch:
    """Entries (after the ``symbols`` filter) and events, in journal order. ``first_seq`` /
    ``last_seq``: the range of ``seq`` the batch covers (filtered entries included; None when it
    holds only events)."""

    entries: list[Entry]
    events: list[Event]
    first_seq: int | None
    last_seq: int | None
    fields: str | list[str] = "tier1"
    _ack: Callable[[int], None] | None = field(default=None, repr=False)
    _texts: Callable[[], list[bytes]] | None = field(default=None, repr=False)

    def ack(self) -> None:
        """Store the consumer's cursor at ``last_seq`` (no-op without a consumer or entries)."""
        if self._ack is not None and self.last_seq is not None:
            self._ack(self.last_seq)

    def to_polars(self) -> pl.DataFrame:
        """The entries as a DataFrame of the declared types, led by ``seq``: ``tier1`` rows in
        ``TIER1_SCHEMA``; ``full`` rows exactly as Tier 2/3 export them (flat layout); a list of
        columns: those (tier1 names or flat Tier 2/3 names)."""
        return to_polars(self.entries, self.fields)


def to_polars(entries: list[Entry], fields: str | list[str]) -> pl.DataFrame:
    if fields == "tier1":
        return tier1_frame([e.tier1 for e in entries])
    wanted = None if fields == "full" else list(fields)
    if wanted is not None and all(c in TIER1_SCHEMA for c in wanted):
        return tier1_frame([e.tier1 for e in entries], wanted)
    parts = []
    for name, group in _by_file(entries):
        texts = [e.text if e.text is not None else e.row if isinstance(e.row, bytes) else b"" for e in group]
        frame, kept = flat_frame(texts, name)
        parts.append(frame.insert_column(0, pl.Series("seq", [group[i].seq for i in kept], pl.Int64)))
    frame = pl.concat(parts) if parts else flat_frame([], "19700101/00.jsonl.gz")[0].insert_column(0, pl.Series("seq", [], pl.Int64))
    if wanted is None:
        return frame
    extra = [c for c in wanted if c not in frame.columns and c in TIER1_SCHEMA]
    if extra:
        tier = tier1_frame([e.tier1 for e in entries], ["seq", *extra])
        frame = frame.join(tier, on="seq", how="left")
    return frame.select(["seq", *[c for c in wanted if c != "seq"]])


def _by_file(entries: list[Entry]) -> list[tuple[str, list[Entry]]]:
    groups: list[tuple[str, list[Entry]]] = []
    for entry in entries:
        if groups and groups[-1][0] == entry.position.file:
            groups[-1][1].append(entry)
        else:
            groups.append((entry.position.file, [entry]))
    return groups


def _check_fields(fields) -> str | list[str]:
    if fields in ("tier1", "full"):
        return fields
    if isinstance(fields, (list, tuple)) and fields and all(isinstance(c, str) for c in fields):
        from ..schema import FLAT_SCHEMA

        unknown = [c for c in fields if c not in TIER1_SCHEMA and c not in FLAT_SCHEMA]
        if unknown:
            raise LiveError(f"unknown field(s) {', '.join(unknown)}: give tier1 or flat Tier 2/3 column names")
        return list(fields)
    raise LiveError(f"fields must be 'tier1', 'full' or a list of column names, not {fields!r}")


class _Shaper:
    """Journal records -> Batches for one reader (fields, symbols, where the texts come from)."""

    def __init__(self, archive: ArchiveFiles | None, fields, symbols, ack):
        self.archive, self.fields, self.ack = archive, _check_fields(fields), ack
        self.symbols = None if symbols is None else set(symbols)

    def batch(self, deliveries: list[Delivery]) -> Batch:
        entries, events, seqs = [], [], []
        for d in deliveries:
            record = d.record
            if record.get("type") == "file_state":  # the follower's own bookkeeping (compact.py)
                continue
            if record.get("k") != "e":
                events.append(Event(record.get("type", ""), {k: v for k, v in record.items() if k not in ("k", "trail")},
                                    record.get("after_seq", 0)))
                continue
            seqs.append(record["seq"])
            row = record.get("row") or {}
            if self.symbols is not None and row.get("symbol") not in self.symbols:
                continue
            day, hour = day_hour(record["f"])
            entries.append(Entry(record["seq"], Position(record["f"], record["start"], record["end"], day, hour),
                                 bool(record.get("late")), row, record.get("sid"), record.get("t", 0.0), row))
            if self.fields != "tier1":
                entries[-1].text = d.text if d.text is not None else self._text(record)
        if self.fields == "full":
            for e in entries:
                e.row = e.text
        elif isinstance(self.fields, list):
            self._columns(entries)
        return Batch(entries, events, seqs[0] if seqs else None, seqs[-1] if seqs else None, self.fields, self.ack)

    def _columns(self, entries: list[Entry]) -> None:
        if all(c in TIER1_SCHEMA for c in self.fields):
            for e in entries:
                e.row = {c: e.tier1.get(c) for c in self.fields}
            return
        frame = to_polars(entries, self.fields)
        rows = {r["seq"]: r for r in frame.to_dicts()}
        for e in entries:
            e.row = rows.get(e.seq, {c: None for c in self.fields})

    def _text(self, record: dict) -> bytes:
        """The entry's line, read again from the archive (checked: its member must still be there)."""
        if self.archive is None:
            raise LiveError("the full entry needs the archive: give archive=")
        data = self.archive.read(record["f"], record["start"], record["end"])
        scan = read_members(data, record["start"], one_line=True, final=True)
        if len(scan.members) != 1 or scan.members[0].end != record["end"]:
            raise LiveError(f"entry seq {record['seq']} is no longer at {record['f']} bytes {record['start']}-{record['end']} "
                            "(the file was rewritten or removed); its tier1 row is still in the journal")
        return scan.members[0].text


def _journal_from(state_dir: str, after: int, read_to: list | None = None) -> Iterator[tuple[int, dict]]:
    """Journal records after the entry ``after`` (events after it included), with byte offsets;
    ``read_to[0]`` is kept at the offset after the last record read."""
    passed = after == 0
    for offset, record in jn.read_records(state_dir):
        if read_to is not None:
            read_to[0] = offset
        if passed:
            yield offset, record
        elif record.get("k") == "e" and record["seq"] >= after:
            passed = True
            if record["seq"] > after:
                yield offset, record


def _chunks(records: Iterator[tuple[int, dict]], size: int) -> Iterator[tuple[int, list[Delivery]]]:
    chunk, entries, offset = [], 0, 0
    for offset, record in records:
        chunk.append(Delivery(record))
        entries += record.get("k") == "e"
        if entries >= size:
            yield offset, chunk
            chunk, entries = [], 0
    if chunk:
        yield offset, chunk


def _check_kept(state_dir: str, after: int, start) -> None:
    """Refuse to resume after a ``seq`` the journal no longer holds (``compact``): that would be a gap."""
    if after == 0 or start in ("beginning", "now"):
        return
    from .compact import oldest_seq

    oldest = oldest_seq(state_dir)
    if after + 1 < oldest:
        raise LiveError(f"entries after seq {after} are no longer kept in {state_dir} (the oldest is {oldest}); "
                        "resume from there (start='beginning') or replay the Tier 2/3 partitions for the gap")


def _check_start(start) -> None:
    """Refuse a start that is none of the forms ``follow`` takes, before any state is touched."""
    if start in ("checkpoint", "beginning", "now"):
        return
    if isinstance(start, int) and not isinstance(start, bool):
        if start < 1:
            raise LiveError(f"start seq must be 1 or more, not {start}")
        return
    if isinstance(start, str) and len(start) == 13 and start[10] == "T":
        from ..periods import parse_hour

        try:
            parse_hour(start)
            return
        except InstrumetriqError as exc:
            raise LiveError(f"invalid start hour {start!r}: {exc}") from None
    raise LiveError(f"start must be 'checkpoint', 'now', 'beginning', a seq or YYYY-MM-DDTHH, not {start!r}")


def _start_after(state_dir: str, start, consumer: str | None, last_seq: int) -> int:
    """The ``seq`` after which a reader begins."""
    if start == "checkpoint":
        return jn.read_cursor(state_dir, consumer) if consumer else 0
    if start == "beginning":
        return 0
    if start == "now":
        return last_seq
    if isinstance(start, int) and not isinstance(start, bool):
        if start < 1:
            raise LiveError(f"start seq must be 1 or more, not {start}")
        return start - 1
    if isinstance(start, str) and len(start) == 13 and start[10] == "T":
        from ..periods import parse_hour

        hour = parse_hour(start)
        wanted = f"{hour:%Y%m%d}/{hour:%H}.jsonl.gz"
        for _, record in jn.read_records(state_dir):
            if record.get("k") == "e" and record["f"] >= wanted:
                return record["seq"] - 1
        return last_seq
    raise LiveError(f"start must be 'checkpoint', 'now', 'beginning', a seq or YYYY-MM-DDTHH, not {start!r}")


def _stop_test(stop) -> Callable[[], bool]:
    """``stop``: None, a ``threading.Event`` or a callable returning True to stop."""
    if stop is None:
        return lambda: False
    return stop.is_set if hasattr(stop, "is_set") else stop


def follow(archive: str | None = None, state_dir: str = DEFAULT_STATE_DIR, *, start="checkpoint",
           fields="tier1", symbols=None, consumer: str | None = "default", follow: bool = True,
           options: FollowOptions | None = None, stop: threading.Event | Callable[[], bool] | None = None,
           batch_size: int = BATCH_SIZE) -> Iterator[Batch]:
    """Run the follower of ``state_dir`` over ``archive`` (default: as for ``export``) and yield
    ``Batch``es: first what the journal holds after the start, then what the archive grows by.
    ``start``: "checkpoint" (after the consumer's acknowledged cursor), "now", "beginning", a
    ``seq`` (the first one delivered) or "YYYY-MM-DDTHH" (the first entry of that hour file on).
    ``follow=False`` stops once the archive has nothing more; ``stop`` (an Event, or a callable
    returning True) stops it too, at the next wake-up.
    Batches with only events are yielded as they happen. Closing the iterator releases the state."""
    if archive is None:
        from ..tiers import default_archive

        archive = default_archive()
    options = options or FollowOptions()
    fields = _check_fields(fields)
    if consumer is not None:
        jn.check_consumer(consumer)
    _check_start(start)
    fresh_start = start if start == "now" or (isinstance(start, str) and len(start) == 13) else "beginning"
    stopped = _stop_test(stop)
    follower = Follower(archive, state_dir, options, fresh_start=fresh_start)
    waker = None
    try:
        ack = (lambda seq: jn.write_cursor(state_dir, consumer, seq)) if consumer else None
        shaper = _Shaper(follower.archive, fields, symbols, ack)
        if start == "now":
            follower.poll()
        after = _start_after(state_dir, start, consumer, follower.last_seq)
        _check_kept(state_dir, after, start)
        if after > follower.last_seq and start == "checkpoint":
            raise LiveError(f"the cursor of consumer {consumer!r} is at seq {after}, beyond the journal's last seq "
                            f"{follower.last_seq} in {state_dir}: the journal is not the one it acknowledged; "
                            f"remove {state_dir}/cursors/{consumer}.json to start that consumer again")
        for _, chunk in _chunks(_journal_from(state_dir, after), batch_size):
            yield shaper.batch(chunk)
        waker = make_waker(options.mode, options.poll_interval, options.safety, follower.archive.local)
        while not stopped():
            for day in follower.recent_days(follower.archive.days()) if waker.mode == "inotify" else ():
                waker.watch(follower.archive.path(day))
            if waker.mode == "inotify":
                waker.watch(follower.archive.root)
            deliveries = follower.poll()
            while follower.more and sum(d.seq is not None for d in deliveries) < batch_size:
                deliveries += follower.poll()  # catching up: fuller batches (each poll reads READ_LIMIT)
            if deliveries:
                yield shaper.batch(deliveries)
                continue
            if not follow:
                return
            waker.wait()
    finally:
        if waker is not None:
            waker.close()
        follower.close()


def read(state_dir: str = DEFAULT_STATE_DIR, after: int = 0, follow: bool = False, *, fields="tier1", symbols=None,
         archive: str | None = None, poll_interval: float = 0.25, stop: threading.Event | Callable[[], bool] | None = None,
         batch_size: int = BATCH_SIZE) -> Iterator[Batch]:
    """The journal's entries after ``seq`` ``after``, read without running a follower (from
    another process; the follower may be running). ``follow=True`` waits for more. The archive
    (for ``fields`` other than "tier1") is the one the follower recorded, unless given."""
    if not os.path.isdir(state_dir):
        raise LiveError(f"no live state folder at {state_dir}: run `live tail` or live.follow() on it first")
    if archive is None:
        checkpoint = jn.load_checkpoint(state_dir) or {}
        archive = checkpoint.get("archive")
    shaper = _Shaper(ArchiveFiles(archive) if archive else None, fields, symbols, None)
    _check_kept(state_dir, after, None)
    stopped = _stop_test(stop)
    read_to = [0]
    for _, chunk in _chunks(_journal_from(state_dir, after, read_to), batch_size):
        yield shaper.batch(chunk)
    offset = read_to[0]
    while follow and not stopped():
        time.sleep(poll_interval)
        more = list(jn.read_records(state_dir, offset))
        if more:
            offset = more[-1][0]
            for _, chunk in _chunks(iter(more), batch_size):
                yield shaper.batch(chunk)
