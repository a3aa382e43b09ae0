"""The archive-day scan: the day's hour files, each read, decoded, normalised and built into
typed frames (one per ``decode.Chunk`` of its text: an hour larger than
``ReadOptions.whole_hour_bytes`` is read in chunks, so that memory does not grow with the hour), in
hour order; and the manifest's figures for what was read. A reader thread (``read.prefetch``)
fetches, gunzips and cuts into lines the next chunk while this one is built; the lane
(``read.lanes``) is chosen once per scan.

``ArchiveDayScan`` owns those figures: the frames it yields are the only way they are counted,
and it yields them once, so a second pull (Polars running the plan again) cannot count a line
twice; ``result()`` hands them over once the frames were pulled to the end.
"""

from __future__ import annotations

import gc
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime

import polars as pl

from .archive import ArchiveDay, HourFile
from .decode import BadLine, Chunk, LinePass, open_hour
from .errors import ArchiveError
from .frames import ListColumn, build_hour_frame, list_columns
from .instants import are_instants
from .normalize import RejectedEntry, add_to_extra, move_to_extra, normalize
from .read.lanes import Lane, ObjectLane, choose_lane
from .read.options import DEFAULT_OPTIONS, ReadOptions
from .read.prefetch import prefetch
from .storage import describe_error


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
class HourResult:
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


@dataclass
class _Rows:
    """The rows read from one chunk: normalised entries (without their lists of objects, which are
    in ``lists``' builders), their ``_extra`` texts and source line numbers; the chunk's figures
    and mistyped paths (path -> line numbers)."""

    entries: list[dict] = field(default_factory=list)
    extras: list[str | None] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    account: Account = field(default_factory=Account)
    mistyped: dict[str, list[int]] = field(default_factory=dict)
    lists: dict[str, ListColumn] = field(default_factory=dict)


def read_hour(chunks: Iterable[Chunk]) -> Iterator[tuple[Chunk, _Rows]]:
    """Decode and normalise one hour exactly as the export does, chunk by chunk as the export reads
    it (the verifier's cross-check reads the archive through this): each chunk with its rows
    (``lines``: their line numbers) and account. ``chunks``: ``decode.open_hour``'s."""
    for chunk in chunks:
        with gc_paused():
            rows = _read(chunk, ObjectLane(), with_lists=False)
        yield chunk, rows


def _read(chunk: Chunk, lane: Lane, with_lists: bool) -> _Rows:
    """The entries of one chunk, normalised. Its timestamps are tested at once, when the chunk is
    read; only when one is not an instant (rare: never in the real archive) is it read again, each
    timestamp then parsed by ``normalize``, which moves those that are not to ``_extra`` (and
    rejects an entry whose ``snapshot_ts`` is not). With ``with_lists``, each entry's lists of
    objects are taken out of it into ``ListColumn`` builders as it is read (the lane's, or
    converted)."""
    timestamps: list[str] = []
    rows = _read_entries(chunk, lane, with_lists, timestamps)
    if not are_instants(timestamps):
        rows = _read_entries(chunk, lane, with_lists, None)
    return rows


def _read_entries(chunk: Chunk, lane: Lane, with_lists: bool, timestamps: list[str] | None) -> _Rows:
    """One pass over the chunk's lines (``timestamps``: as ``normalize`` takes it)."""
    rows = _Rows(lists=list_columns() if with_lists else {})
    account, mistyped, lists = rows.account, rows.mistyped, rows.lists
    spans, chunk.spans = chunk.spans, None  # read ahead (once: a second pass reads again)
    decoded = LinePass(chunk, (spans or lane.take(chunk.lines)) if lists else None)
    for line_number, entry in decoded.entries():
        try:
            entry, extra, moved = _normalize(decoded, line_number, entry, account, timestamps)
        except RejectedEntry as exc:
            decoded.bad_lines.append(BadLine(chunk.file, line_number, str(exc)))
            continue
        for column, builder in lists.items():
            value, items = entry.pop(column, None), decoded.lane_items(line_number)
            if items is not None:
                builder.add_items(items, decoded.spans.values)
            elif not builder.add(value):  # kept exactly as archived, in _extra
                extra = add_to_extra(extra, column, decoded.exact_entry(line_number, whole=True)[column])
                account.mistyped_fields[column] += 1
                moved = [*moved, column]
        rows.entries.append(entry)
        rows.extras.append(extra)
        rows.lines.append(line_number)
        for path in moved:
            mistyped.setdefault(path, []).append(line_number)
    for column, builder in lists.items():
        for row in builder.rows_to_recheck():  # floats that may be integers orjson rounded; no instants
            line_number = rows.lines[row]
            exact = decoded.exact_entry(line_number, whole=True)[column]
            if not builder.replace(row, exact):
                rows.extras[row] = add_to_extra(rows.extras[row], column, exact)
                account.mistyped_fields[column] += 1
                mistyped.setdefault(column, []).append(line_number)
    account.lines_read, account.stdlib_json_lines = decoded.lines_read, len(decoded.stdlib_lines)
    account.bad_lines = sorted(decoded.bad_lines, key=lambda b: b.line)
    return rows


def _normalize(decoded: LinePass, line: int, entry: dict, account: Account,
               timestamps: list[str] | None) -> tuple[dict, str | None, list[str]]:
    """Normalise one entry; an entry that needs ``_extra``, or that orjson's reading would reject, is
    re-decoded exactly first (a float of 2**63 or more is suspect in orjson's reading: it may be a
    rounded integer; a required block holding only such floats is then empty, but is not when the
    float was written as a float). Returns the entry, its ``_extra`` text and the paths of its
    mistyped values."""
    by_stdlib = line in decoded.stdlib_lines or line in decoded.exact_lines
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


def _build_chunk(chunk: Chunk, lane: Lane, lineage: tuple[date, int]) -> tuple[pl.DataFrame, _Rows]:
    """Decode, normalise and build one chunk of an hour file: its frame, and its rows (their
    entries let go of; the figures and mistyped paths kept)."""
    with gc_paused():
        rows = _read(chunk, lane, with_lists=True)
        del chunk
        account, mistyped = rows.account, rows.mistyped

        def on_untyped(row: int, column: str) -> None:
            account.mistyped_fields[column] += 1
            mistyped.setdefault(column, []).append(rows.lines[row])
            rows.extras[row] = move_to_extra(rows.entries[row], column, rows.extras[row])

        frame = build_hour_frame(rows.entries, rows.extras, rows.lists, on_untyped, lineage)
        account.note_entries(rows.entries)
        account.note_frame(frame)
        # Freed before the GC is back on: alive then, the hour's fresh dicts would all be scanned by
        # the next collections (measured: 24 collections, 0.08 s a day; none with this line).
        rows.entries.clear()
        rows.lists.clear()
    return frame, rows


def build_hour(hour_file: HourFile, label: str, chunks: Iterator[Chunk], day: date,
               lane: Lane) -> Iterator[tuple[pl.DataFrame, HourResult | None]]:
    """Decode, normalise and build one hour file of the archive ``day`` (``chunks``: its text,
    whole or in chunks, as ``decode.open_hour`` yields it) with ``lane``: one frame per chunk, each
    yielded with None but the last, which is yielded with the hour's ``HourResult`` (its report and
    account cover every chunk; its seconds, every chunk's inflating and building). The last frame
    is held back until the chunk after it is built, to know that it is the last (a frame is about
    a third of its text's size: measured, 78 MB of frames for the 224 MB of text of the
    real-shaped day)."""
    account, mistyped = Account(), {}
    rows, seconds, held = 0, 0.0, None
    while True:
        started = time.perf_counter()
        chunk = next(chunks, None)
        if chunk is None:
            break
        frame, part = _build_chunk(chunk, lane, (day, hour_file.hour))
        del chunk
        account.add(part.account)
        for path, numbers in part.mistyped.items():
            mistyped.setdefault(path, []).extend(numbers)
        rows += frame.height
        seconds += time.perf_counter() - started
        if held is not None:
            yield held, None
        held = frame
        del part, frame
    notes = [_mistyped_note(label, path, numbers) for path, numbers in mistyped.items()]
    report = HourReport(hour_file.hour, label, hour_file.size, rows, account.lines_read,
                        account.bad_lines, seconds, notes)
    yield held, HourResult(report, account)


def _built_hours(day: ArchiveDay, options: ReadOptions) -> Iterator[tuple[pl.DataFrame, HourResult | None]]:
    """The day's hours, built, in hour order, as ``build_hour`` yields them. The reader thread
    (``prefetch``) runs ``options.read_ahead`` chunks ahead: it reads, opens and cuts into lines the hour
    files' chunks (``_day_chunks``) while this thread builds the chunk before (isal releases the
    GIL while it inflates: measured ~5% off the export). The ends of hours do not count as chunks:
    the reader goes on to the next hour's first chunk while the last one of an hour is built (one
    that stopped there left the next hour to be read while this thread waited: measured on the
    real-shaped day, 0.33-0.43 s of waiting, 0.02 s without). An error of the reader is raised where
    its chunk would have come, after the hour before it is done."""
    lane = choose_lane(options)
    with closing(prefetch(_day_chunks(day, options, lane), options.read_ahead, weighs=_is_chunk, name="reader")) as stream:

        def hour_chunks() -> Iterator[Chunk]:
            for _, chunk in stream:
                if chunk is None:  # the end of the hour
                    return
                yield chunk

        for hour_file in day.hour_files:
            yield from build_hour(hour_file, hour_label(day, hour_file), hour_chunks(), day.day, lane)


def _is_chunk(item: tuple[HourFile, Chunk | None]) -> bool:
    return item[1] is not None


def _day_chunks(day: ArchiveDay, options: ReadOptions, lane: Lane) -> Iterator[tuple[HourFile, Chunk | None]]:
    """Every chunk of the day's hour files, in order; (hour file, None) ends each hour. With
    ``options.parse_ahead``, each chunk's lists are read by ``lane`` here too (the native parser lets
    go of the GIL: it runs beside the build of the chunk before)."""
    for hour_file in day.hour_files:
        label = hour_label(day, hour_file)
        for chunk in open_hour(fetch_hour(day, hour_file), label, options):
            if options.parse_ahead:
                chunk.spans = lane.take(chunk.lines)
            yield hour_file, chunk
        yield hour_file, None


class ArchiveDayScan:
    """One archive day read as frames, hour after hour, with the figures of what was read.

    ``frames()`` (the callable ``pipeline.lazy_day`` takes) yields each hour's frames (one per
    chunk of its text: ``decode.open_hour``) as they are built, and adds the hour's account and
    report to the day's with its last frame; ``result()`` returns them once every hour was
    yielded. ``frames()`` may be called once: a second call raises, so the
    figures of a plan Polars ran twice are never counted twice."""

    def __init__(self, day: ArchiveDay, progress: Callable[[HourReport], None] | None = None,
                 options: ReadOptions = DEFAULT_OPTIONS) -> None:
        self.day = day
        self.options = options
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
        for frame, built in _built_hours(self.day, self.options):
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
