"""What is published: one row per day of a range, from the dataset's manifests and one listing of
each archive day folder; no data file is read.

States (``DayStatus.state``):

- "published": a complete day (``manifest.json`` valid, data of the stated size);
- "partial": published, but partial (``reason`` says why: missing hours, bad lines, exported
  before the day was over);
- "unpublished": a day folder that does not publish a readable day (no manifest, damaged,
  unreadable or foreign manifest: ``reason``);
- "missing": no day folder, and the archive has the day;
- "no archive": no day folder, and no archive folder for the day.

``archive_changed``: the archive day's hour files (names and sizes, one listing) differ from the
manifest's ``source_files`` (``export.archive_changes``, the rule the cheap skip uses); None when
the archive was not looked at or has no folder for the day.

``healthy(rows)`` is the exit status's rule: every day that has an archive folder is published
complete (and, when the archive was looked at, from the archive as it is now).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date

from .archive import open_archive_day
from .dataset import PUBLISHED as LISTED_PUBLISHED, DayEntry, list_days
from .errors import ArchiveError
from .export import archive_changes
from .manifest import hour_key
from .storage import storage_options_for

PUBLISHED, PARTIAL, UNPUBLISHED, MISSING, NO_ARCHIVE = "published", "partial", "unpublished", "missing", "no archive"


@dataclass
class DayStatus:
    day: date
    state: str
    reason: str = ""
    rows: int | None = None
    size_bytes: int | None = None
    exported_at: str | None = None  # the manifest's created_ts_utc
    export_version: str | None = None
    #: the archive day folder exists (None: the archive was not looked at)
    archive: bool | None = None
    archive_changed: bool | None = None
    changes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Nothing to do for this day: published complete from the archive as it is, or no archive."""
        return self.state == NO_ARCHIVE or (self.state == PUBLISHED and not self.archive_changed)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["day"] = self.day.isoformat()
        data["ok"] = self.ok
        return data

    def line(self) -> str:
        parts = [f"{self.day}", f"{self.state:<11}"]
        if self.rows is not None:
            parts.append(f"{self.rows:>7} rows {self.size_bytes / 1e6:7.1f} MB  exported {self.exported_at} ({self.export_version})")
        if self.archive_changed:
            parts.append(f"archive changed since export: {', '.join(self.changes[:4])}{' ...' if len(self.changes) > 4 else ''}")
        if self.reason:
            parts.append(self.reason)
        return "  ".join(parts)


def status(location: str, start: str | date | None = None, end: str | date | None = None, *,
           archive: str | None = None, storage_options: dict | None = None,
           archive_storage_options: dict | None = None) -> list[DayStatus]:
    """One ``DayStatus`` per day from ``start`` to ``end`` under the dataset root ``location``
    (``dataset.list_days``: one listing, the manifests in the range), each compared with its
    archive day folder under ``archive`` when given (one listing per day)."""
    entries = list_days(location, start, end, storage_options=storage_options)
    archive_options = storage_options_for(archive, archive_storage_options) if archive else None
    return [_day_status(entry, archive, archive_options) for entry in entries]


def healthy(rows: list[DayStatus]) -> bool:
    return all(row.ok for row in rows)


def _day_status(entry: DayEntry, archive: str | None, archive_options: dict | None) -> DayStatus:
    archive_day, has_archive = None, None
    if archive is not None:
        try:
            archive_day = open_archive_day(archive, entry.day, archive_options)
            has_archive = True
        except ArchiveError as exc:
            has_archive = not str(exc).startswith("no archive folder")
    m = entry.manifest
    if entry.state == LISTED_PUBLISHED and m is not None:
        row = DayStatus(entry.day, PARTIAL if m.is_partial else PUBLISHED, _partial_reason(m) if m.is_partial else "",
                        m.row_count, m.parquet_size_bytes, m.created_ts_utc, m.export_version, has_archive)
        if archive_day is not None:
            row.changes = archive_changes(archive_day, m)
            row.archive_changed = bool(row.changes)
        return row
    if entry.state == "missing":
        if has_archive is False:
            return DayStatus(entry.day, NO_ARCHIVE, archive=False)
        return DayStatus(entry.day, MISSING, "" if has_archive else "archive not looked at", archive=has_archive)
    reason = entry.state + (f": {entry.reason}" if entry.reason else "")
    return DayStatus(entry.day, UNPUBLISHED, reason, archive=has_archive)


def _partial_reason(m) -> str:
    why = []
    if m.missing_hours:
        why.append(f"{len(m.missing_hours)} hours missing ({', '.join(hour_key(int(h)) for h in m.missing_hours[:6])}"
                   f"{' ...' if len(m.missing_hours) > 6 else ''})")
    if m.bad_line_count:
        why.append(f"{m.bad_line_count} bad lines")
    if not m.day_over_at_export:
        why.append("exported before the day was over")
    return "; ".join(why)
