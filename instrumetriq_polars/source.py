"""The archive-day scan: the day's hour files, each read, decoded, normalised and built into
typed frames (one per chunk of its text: an hour larger than ``decode.WHOLE_HOUR_BYTES`` is read
in chunks, so that memory does not grow with the hour), in hour order; and the manifest's
figures for what was read.

``ArchiveDayScan`` owns those figures: the frames it yields are the only way they are counted,
and it yields them once, so a second pull (Polars running the plan again) cannot count a line
twice; ``result()`` hands them over once the frames were pulled to the end.
"""

from __future__ import annotations

import gc
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime

import polars as pl

from .archive import ArchiveDay, HourFile
from .decode import BadLine, DecodedHour, HourText, decode_gunzipped, open_hour
from .errors import ArchiveError
from .frames import LIST_COLUMNS, ListColumn, build_hour_frame, list_columns, staged_item_type
from .instants import are_instants
from .normalize import RejectedEntry, add_to_extra, move_to_extra, normalize
from .storage import describe_error

#: The list of objects the columnar lane reads: the one such column, an entry's last key (columnar.py).
(LANE_COLUMN,) = LIST_COLUMNS


@dataclass
class HourReport:
    """What one hour file contributed; passed to the progress callback as each hour is done."""

    hour: int
    file: str
    size_bytes: int
    rows: int
    lines_read: int
    bad_lines: list[BadLine]
    seconds: float
    notes: list[str] = field(default_factory=list)  # warnings about exported lines (wrong types)


@dataclass
class Account:
    """The manifest's figures for one hour, or (merged with ``add``) for a day."""

    unknown_fields: Counter[str] = field(default_factory=Counter)
    mistyped_fields: Counter[str] = field(default_factory=Counter)
    schema_versions: Counter[str] = field(default_factory=Counter)
    min_added: datetime | None = None
    max_added: datetime | None = None
    bad_lines: list[BadLine] = field(default_factory=list)
    lines_read: int = 0
    stdlib_json_lines: int = 0

    def add(self, other: Account) -> None:
        self.unknown_fields.update(other.unknown_fields)
        self.mistyped_fields.update(other.mistyped_fields)
        self.schema_versions.update(other.schema_versions)
        self._note_instant(other.min_added)
        self._note_instant(other.max_added)
        self.bad_lines.extend(other.bad_lines)
        self.lines_read += other.lines_read
        self.stdlib_json_lines += other.stdlib_json_lines

    def note_entries(self, entries: Iterable[dict]) -> None:
        for entry in entries:
            self.schema_versions[str(entry["meta"].get("schema_version"))] += 1

    def note_frame(self, frame: pl.DataFrame) -> None:
        """The span of ``meta.added_ts`` as the hour's frame holds it: instants, as exported."""
        added = frame["meta"].struct.field("added_ts")
        self._note_instant(added.min())
        self._note_instant(added.max())

    def _note_instant(self, instant: datetime | None) -> None:
        if instant is None:
            return
        if self.min_added is None or instant < self.min_added:
            self.min_added = instant
        if self.max_added is None or instant > self.max_added:
            self.max_added = instant


@dataclass
class HourEntries:
    """The normalised entries of one hour file, with their ``_extra`` text and source line numbers
    (for the export, without their lists of objects: those are in ``ListColumn`` builders)."""

    label: str  # YYYYMMDD/HH.jsonl.gz
    entries: list[dict] = field(default_factory=list)
    extras: list[str | None] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)


@dataclass
class BuiltHour:
    """One hour file, built (its frames are yielded as they are built): its progress report and
    its share of the manifest."""

    report: HourReport
    account: Account


def hour_label(day: ArchiveDay, hour_file: HourFile) -> str:
    return f"{day.archive_day}/{hour_file.name}"


def fetch_hour(day: ArchiveDay, hour_file: HourFile) -> bytes:
    """The compressed bytes of one hour file."""
    try:
        return day.fs.cat_file(hour_file.path)
    except Exception as exc:
        raise ArchiveError(f"could not read {hour_label(day, hour_file)}: {describe_error(exc)}") from exc


def read_hour(label: str, text: HourText) -> Iterator[tuple[int, bytes, HourEntries, Account]]:
    """Decode and normalise one hour exactly as the export does, chunk by chunk as the export reads
    it (the verifier's cross-check reads the archive through this): each chunk's first line number,
    text, entries and account. ``text``: ``decode.open_hour``'s result for the hour file."""
    for first_line, chunk, damage in text.chunks():
        with gc_paused():
            read = _read(decode_gunzipped(chunk, damage, label, first_line), with_lists=False)
        yield first_line, chunk, read.hour, read.account


@dataclass
class _HourRead:
    """One hour file read: its entries, figures, mistyped paths (path -> lines) and list builders."""

    hour: HourEntries
    account: Account = field(default_factory=Account)
    mistyped: dict[str, list[int]] = field(default_factory=dict)
    lists: dict[str, ListColumn] = field(default_factory=dict)


def _read(decoded: DecodedHour, with_lists: bool) -> _HourRead:
    """The entries of an hour file (or of one chunk of it: ``HourText.chunks``), normalised. Its
    timestamps are tested at once, when the hour is read; only when one is not an instant (rare:
    never in the real archive) is the hour read again (``DecodedHour.fresh``), each timestamp then
    parsed by ``normalize``, which moves those that are not to ``_extra`` (and rejects an entry
    whose ``snapshot_ts`` is not). With ``with_lists``, each entry's lists of objects are taken out
    of it into ``ListColumn`` builders as it is read (the columnar lane's, or converted)."""
    timestamps: list[str] = []
    read = _read_entries(decoded, with_lists, timestamps)
    if not are_instants(timestamps):
        read = _read_entries(decoded.fresh(), with_lists, None)
    return read


def _read_entries(decoded: DecodedHour, with_lists: bool, timestamps: list[str] | None) -> _HourRead:
    """One pass over the hour's lines (``timestamps``: as ``normalize`` takes it)."""
    read = _HourRead(HourEntries(decoded.file), lists=list_columns() if with_lists else {})
    hour, account, mistyped, lists = read.hour, read.account, read.mistyped, read.lists
    label = decoded.file
    if lists and decoded.lane is None:
        decoded.take_lane(LANE_COLUMN, staged_item_type(LANE_COLUMN))
    for line_number, entry in decoded.entries():
        try:
            entry, extra, moved = _normalize(decoded, line_number, entry, account, timestamps)
        except RejectedEntry as exc:
            decoded.bad_lines.append(BadLine(label, line_number, str(exc)))
            continue
        for column, builder in lists.items():
            value, items = entry.pop(column, None), decoded.lane_items(line_number)
            if items is not None:
                builder.add_items(items)
            elif not builder.add(value):  # kept exactly as archived, in _extra
                extra = add_to_extra(extra, column, decoded.exact_entry(line_number, whole=True)[column])
                account.mistyped_fields[column] += 1
                moved = [*moved, column]
        hour.entries.append(entry)
        hour.extras.append(extra)
        hour.lines.append(line_number)
        for path in moved:
            mistyped.setdefault(path, []).append(line_number)
    for column, builder in lists.items():
        for row in builder.rows_to_recheck():  # floats that may be integers orjson rounded; no instants
            line_number = hour.lines[row]
            exact = decoded.exact_entry(line_number, whole=True)[column]
            if not builder.replace(row, exact):
                hour.extras[row] = add_to_extra(hour.extras[row], column, exact)
                account.mistyped_fields[column] += 1
                mistyped.setdefault(column, []).append(line_number)
    account.lines_read, account.stdlib_json_lines = decoded.lines_read, len(decoded.stdlib_lines)
    account.bad_lines = sorted(decoded.bad_lines, key=lambda b: b.line)
    return read


def _normalize(decoded: DecodedHour, line: int, entry: dict, account: Account,
               timestamps: list[str] | None) -> tuple[dict, str | None, list[str]]:
    """Normalise one entry; an entry that needs ``_extra``, or that orjson's reading would reject, is
    re-decoded exactly first (a float of 2**63 or more is suspect in orjson's reading: it may be a
    rounded integer; a required block holding only such floats is then empty, but is not when the
    float was written as a float). Returns the entry, its ``_extra`` text and the paths of its
    mistyped values."""
    by_stdlib = line in decoded.stdlib_lines
    try:
        result = normalize(entry, by_stdlib=by_stdlib, timestamps=timestamps)
    except RejectedEntry:
        if by_stdlib:
            raise
        result = None
    if result is None or (result.extra is not None and not by_stdlib):
        entry = decoded.exact_entry(line)
        result = normalize(entry, by_stdlib=True, timestamps=timestamps)  # the same texts again: harmless
    account.unknown_fields.update(result.unknown)
    account.mistyped_fields.update(result.mistyped)
    return entry, result.extra, result.mistyped


def prepare(label: str, text: HourText) -> Iterator[DecodedHour]:
    """The chunks of an hour file's text, each split into lines (the text itself is not kept: ~9 MB
    an hour, twice with one chunk ahead): the part of an hour's work that runs ahead, in the
    reader thread, while the chunk before it is built. The columnar lane runs when the chunk is
    built (``_read_entries``). Measured with the lane run ahead too, once the reader's step went
    past the end of an hour (``_built_hours``; 4 interleaved runs, real-shaped day, in-process with
    the runner's allocator settings): 2.43 s against 2.56 s and 291-302 MB against 286-309 MB; but
    on the 20x-hour day 315-332 MB against 302-305 MB (3 runs), and still 310-335 MB with the
    oversized hour's chunks left out of it. Not kept: the memory bound is the one of the targets
    within reach (README "Against the peers")."""
    for first_line, chunk, damage in text.chunks():
        decoded = decode_gunzipped(chunk, damage, label, first_line)
        del chunk  # (a suspended generator keeps its locals)
        yield decoded


@dataclass
class _Part:
    """One chunk of an hour file, built: its frame, figures and mistyped paths (path -> lines)."""

    frame: pl.DataFrame
    account: Account
    mistyped: dict[str, list[int]]


def _build_part(label: str, chunk: DecodedHour, lineage: tuple[date, int]) -> _Part:
    """Decode, normalise and build one chunk of an hour file (``prepare``)."""
    with gc_paused():
        read = _read(chunk, with_lists=True)
        del chunk
        hour, account, mistyped = read.hour, read.account, read.mistyped

        def on_untyped(row: int, column: str) -> None:
            account.mistyped_fields[column] += 1
            mistyped.setdefault(column, []).append(hour.lines[row])
            hour.extras[row] = move_to_extra(hour.entries[row], column, hour.extras[row])

        frame = build_hour_frame(hour.entries, hour.extras, read.lists, on_untyped, lineage)
        account.note_entries(hour.entries)
        account.note_frame(frame)
        # Freed before the GC is back on: alive then, the hour's fresh dicts would all be scanned by
        # the next collections (measured: 24 collections, 0.08 s a day; none with this line).
        hour.entries.clear()
    return _Part(frame, account, mistyped)


def build_hour(hour_file: HourFile, label: str, chunks: Iterator[DecodedHour], day: date) -> Iterator[tuple[pl.DataFrame, BuiltHour | None]]:
    """Decode, normalise and build one hour file of the archive ``day`` (``chunks``: its text,
    whole or in chunks, as ``prepare`` yields it): one frame per chunk, each yielded with None but the last, which is yielded with
    the hour's ``BuiltHour`` (its report and account cover every chunk; its seconds, every chunk's
    inflating and building). The last frame is held back until the chunk after it is built, to
    know that it is the last (a frame is about a third of its text's size: measured, 78 MB of
    frames for the 224 MB of text of the real-shaped day)."""
    account, mistyped = Account(), {}
    rows, seconds, held = 0, 0.0, None
    while True:
        started = time.perf_counter()
        chunk = next(chunks, None)
        if chunk is None:
            break
        part = _build_part(label, chunk, (day, hour_file.hour))
        account.add(part.account)
        for path, numbers in part.mistyped.items():
            mistyped.setdefault(path, []).extend(numbers)
        rows += part.frame.height
        seconds += time.perf_counter() - started
        if held is not None:
            yield held, None
        held = part.frame
        del part
    notes = [_mistyped_note(label, path, numbers) for path, numbers in mistyped.items()]
    report = HourReport(hour_file.hour, label, hour_file.size, rows, account.lines_read,
                        account.bad_lines, seconds, notes)
    yield held, BuiltHour(report, account)


def _built_hours(day: ArchiveDay) -> Iterator[tuple[pl.DataFrame, BuiltHour | None]]:
    """The day's hours, built, in hour order, as ``build_hour`` yields them. The reader thread
    runs one chunk ahead: it reads and opens the hour files (``decode.open_hour``: gunzipped, or
    only checked when the text is larger than ``decode.WHOLE_HOUR_BYTES``) and ``prepare``s their
    chunks, while this thread builds the chunk before (isal releases the GIL while it inflates:
    measured ~5% off the export). Its step goes to the next chunk, past the end of an hour: a step
    that stopped there left the next hour to be read while this thread waited (measured on the
    real-shaped day: 0.33-0.43 s of waiting, 0.02 s now; in-process median 2.68 s against 2.85 s,
    5 interleaved runs, peak RSS alike)."""
    stream = _chunks_ahead(day)
    pending: deque[tuple] = deque()  # _to_next_chunk's items
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="reader") as reader:
        ahead = reader.submit(_to_next_chunk, stream)

        def hour_chunks() -> Iterator[DecodedHour]:
            nonlocal ahead
            while True:
                if not pending:
                    pending.extend(ahead.result())
                    ahead = reader.submit(_to_next_chunk, stream)
                if not pending:  # the end of the day
                    return
                _, chunk = pending.popleft()
                if isinstance(chunk, Exception):  # where the reader failed, after what it read before
                    raise chunk
                if chunk is None:  # the end of the hour
                    return
                yield chunk

        for hour_file in day.hour_files:
            yield from build_hour(hour_file, hour_label(day, hour_file), hour_chunks(), day.day)


def _to_next_chunk(stream: Iterator[tuple[HourFile, DecodedHour | None]]) -> list[tuple]:
    """The reader thread's step: the items of ``stream`` up to its next chunk (with the ends of
    hours before it), or to the end of the day (none left: an empty list). An error after some
    items is handed over as the last item, so that it is raised where the item would have been
    (the hour before it is done first, as when the reader stopped at the end of each hour)."""
    items: list[tuple] = []
    try:
        for item in stream:
            items.append(item)
            if item[1] is not None:
                break
    except Exception as exc:  # noqa: BLE001 - raised again by hour_chunks, in order
        if not items:
            raise
        items.append((None, exc))
    return items


def _chunks_ahead(day: ArchiveDay) -> Iterator[tuple[HourFile, DecodedHour | None]]:
    """Every chunk of the day's hour files, prepared, in order; (hour file, None) ends each hour.
    Advanced by the reader thread only (one ``next`` at a time)."""
    for hour_file in day.hour_files:
        label = hour_label(day, hour_file)
        for chunk in prepare(label, open_hour(fetch_hour(day, hour_file), label)):
            yield hour_file, chunk
        yield hour_file, None


class ArchiveDayScan:
    """One archive day read as frames, hour after hour, with the figures of what was read.

    ``frames()`` (the callable ``pipeline.lazy_day`` takes) yields each hour's frames (one per
    chunk of its text: ``decode.HourText``) as they are built, and adds the hour's account and
    report to the day's with its last frame; ``result()`` returns them once every hour was
    yielded. ``frames()`` may be called once: a second call raises, so the
    figures of a plan Polars ran twice are never counted twice."""

    def __init__(self, day: ArchiveDay, progress: Callable[[HourReport], None] | None = None) -> None:
        self.day = day
        self._progress = progress
        self._account = Account()
        self._hours: list[HourReport] = []
        self._pulled = False
        self._complete = False
        self._lock = threading.Lock()

    def frames(self) -> Iterator[pl.DataFrame]:
        """The day's frames, in hour order; raises RuntimeError when called a second time."""
        with self._lock:  # Polars may call from two threads at once (a plan that scans the day twice)
            pulled, self._pulled = self._pulled, True
        if pulled:
            raise RuntimeError(
                f"the archive day scan of {self.day.archive_day} was asked for its frames a second time (did the "
                f"Polars plan run twice?); it yields them once, so that no line is counted twice: build a new ArchiveDayScan"
            )
        return self._pull()

    def _pull(self) -> Iterator[pl.DataFrame]:
        for frame, built in _built_hours(self.day):
            if built is not None:  # the hour's last frame
                self._account.add(built.account)
                self._hours.append(built.report)
                if self._progress:
                    self._progress(built.report)
            yield frame
        self._complete = True

    def result(self) -> tuple[Account, list[HourReport]]:
        """The day's account and its hour reports, in hour order; raises RuntimeError unless the
        frames were pulled to the end."""
        if not self._complete:
            state = f"stopped after {len(self._hours)} of {len(self.day.hour_files)} hours" if self._pulled else "never pulled"
            raise RuntimeError(f"the archive day scan of {self.day.archive_day} was {state}: its figures are incomplete")
        return self._account, self._hours


@contextmanager
def gc_paused():
    """Pause the cyclic GC while an hour of fresh dicts is alive: they hold no cycles, and each
    collection would rescan all of them (measured ~2x on decode alone)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _mistyped_note(label: str, path: str, lines: list[int]) -> str:
    more = f" (and {len(lines) - 1} more lines of this hour)" if len(lines) > 1 else ""
    return f"{label}:{min(lines)}: {path} has a value of the wrong type{more}; exported in _extra, the column is NULL"
