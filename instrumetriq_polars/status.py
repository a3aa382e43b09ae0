"""What is published: one row per partition of a range (a day, an hour of Tier 2, or a monthly
bundle), from the dataset's manifests and one listing of each archive day folder; no data file is
read. Hours are compared with their archive hour file (one listing per archive day); bundles with
no archive (their source is the daily dataset: ``verify.verify_month`` checks them against their days).

States (``PartitionStatus.state``): the one vocabulary of ``states.PartitionState``, as
``list_days`` and ``scan`` name them:

- "published": a complete day (``manifest.json`` valid, data of the stated size);
- "partial": published, but partial (``reason`` says why: missing hours, bad lines, exported
  before the day was over);
- "unpublished" (no manifest), "bad manifest", "foreign", "damaged": a day folder that does not
  publish a readable day (``reason`` says what the listing found);
- "missing": no day folder, and the archive has the day (for an hour: its hour file; a missing
  bundle is always "missing");
- "no archive": no day folder, and no archive folder for the day (for an hour: no hour file).

``archive_changed``: the archive day's hour files (names and sizes, one listing) differ from the
manifest's ``source_files`` (``planner.archive_changes``, the rule the cheap skip uses); None when
the archive was not looked at or has no folder for the day.

``healthy(rows)`` is the exit status's rule: every day (or hour) that has an archive folder (hour
file) is published complete (and, when the archive was looked at, from the archive as it is now);
every bundle asked for is published and not partial.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, datetime

from .archive import ArchiveDay, open_archive_day
from .dataset import PartitionEntry, list_partitions
from .errors import ArchiveError, NoArchiveFolderError, NoHourFileError
from .periods import parse_date
from .planner import MISSING, NO_ARCHIVE, PARTIAL, PUBLISHED, UNPUBLISHED, State, partial_reason, partition_state  # noqa: F401
from .storage import storage_options_for


@dataclass
class PartitionStatus:
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
    #: the partition's name: 2026-01-15 (a day), 2026-01-15T05 (an hour), 2026-01 (a bundle)
    partition: str | None = None
    #: the partition's order in its tier: the day, the hour's start or the month's first day
    key: date | datetime | None = None

    @property
    def ok(self) -> bool:
        """Nothing to do: published complete from the archive as it is, or no archive (``planner.State.ok``)."""
        return State(self.state, archive_changed=self.archive_changed).ok

    def to_dict(self) -> dict:
        data = asdict(self)
        data["day"] = self.day.isoformat()
        data["partition"] = self.name
        data["key"] = str(self.key) if self.key is not None else None
        data["ok"] = self.ok
        return data

    @property
    def name(self) -> str:
        return self.partition or self.day.isoformat()

    def line(self) -> str:
        parts = [self.name, f"{self.state:<11}"]
        if self.rows is not None:
            parts.append(f"{self.rows:>7} rows {self.size_bytes / 1e6:7.1f} MB  exported {self.exported_at} ({self.export_version})")
        if self.archive_changed:
            parts.append(f"archive changed since export: {', '.join(self.changes[:4])}{' ...' if len(self.changes) > 4 else ''}")
        if self.reason:
            parts.append(self.reason)
        return "  ".join(parts)


#: the former name
DayStatus = PartitionStatus


def status(location: str, start=None, end=None, *, tier: str | None = None,
           archive: str | None = None, storage_options: dict | None = None,
           archive_storage_options: dict | None = None) -> list[PartitionStatus]:
    """One ``PartitionStatus`` per partition from ``start`` to ``end`` under the dataset root
    ``location`` (``dataset.list_partitions``: one listing, the manifests in the range; days, hours
    or bundles as the root holds, or ``tier``), each day or hour compared with its archive day
    folder under ``archive`` when given (one listing per archive day)."""
    entries = list_partitions(location, start, end, tier=tier, storage_options=storage_options, partial="include")  # the rows say "partial"
    archive_options = storage_options_for(archive, archive_storage_options) if archive else None
    days: dict[date, ArchiveDay | ArchiveError] = {}
    begins = archive_begins(archive, archive_options) if archive else None
    return [_day_status(entry, archive if entry.unit != "month" else None, archive_options, days, begins) for entry in entries]


def archive_begins(archive: str, options: dict | None = None) -> datetime | None:
    """The archive's first hour: the first hour file of its oldest ``YYYYMMDD`` folder (one listing
    of the root, one of that folder); None when there is none. A day or hour that is over, after
    it, with nothing in the archive is "archive missing" (status), a warning (catch-up)."""
    import fsspec

    from .periods import hour_of_day

    try:
        fs, root = fsspec.core.url_to_fs(str(archive), **(options or {}))
        names = sorted(p.rstrip("/").rsplit("/", 1)[-1] for p in fs.ls(root.rstrip("/"), detail=False))
        for name in names:
            if len(name) == 8 and name.isascii() and name.isdigit():
                try:
                    day = open_archive_day(archive, parse_date(f"{name[:4]}-{name[4:6]}-{name[6:]}"), options)
                except ArchiveError:
                    continue
                return hour_of_day(day.day, day.hour_files[0].hour)
    except Exception:  # noqa: BLE001 - the archive cannot be listed: no alarm can be told
        return None
    return None


def _expected(entry: PartitionEntry, begins: datetime | None) -> bool:
    """The partition is over (``periods.hour_over``/``day_over``) and not before the archive began."""
    from .periods import day_over, hour_of_day, hour_over, utc_now

    if begins is None or entry.unit == "month":
        return False
    now = utc_now()
    if entry.unit == "hour":
        return entry.key >= begins and hour_over(entry.key, now)
    return hour_of_day(entry.day, 23) >= begins and day_over(entry.day, now)


def healthy(rows: list[PartitionStatus]) -> bool:
    return all(row.ok for row in rows)


def bundle_changes(manifest, storage_options: dict | None = None) -> list[str]:
    """How a bundle's days changed since it was built, one phrase per day: a day of it replaced
    or no longer published, a day missing then and published now; from its daily root
    (``source_root``: one listing and the manifests of the month). Empty when the same, or when
    the root cannot be looked at (nothing can be told)."""
    from .periods import month_end, parse_month

    root = getattr(manifest, "source_root", None)
    if not root or manifest.partition != "month":
        return []
    first = parse_month(manifest.date_utc)
    try:
        days = {e.day.isoformat(): e for e in list_partitions(root, first, month_end(first), tier="daily",
                                                               storage_options=storage_options, partial="include")}
    except Exception:  # noqa: BLE001 - a root not reachable from here (another host's path): nothing to tell
        return []
    changes = []
    for source in manifest.source_files:
        if not isinstance(source, dict) or not str(source.get("date", "")).startswith(manifest.date_utc):
            continue  # not a day of this month: nothing to compare it with
        entry = days.get(str(source.get("date")))
        if entry is None or entry.manifest is None or entry.state not in (PUBLISHED, PARTIAL):
            changes.append(f"{source.get('date')} no longer published since bundled")
        elif entry.manifest.parquet_sha256 != source.get("parquet_sha256"):
            changes.append(f"{source.get('date')} changed since bundled")
    changes += [f"{day} published since bundled" for day in manifest.missing_days
                if day in days and days[day].state in (PUBLISHED, PARTIAL)]
    return changes


def archive_has(error: ArchiveError, listed=None) -> bool:
    """The one rule for "the archive has this partition", from the error opening it raised: no
    folder for the day (or an empty one), or no name at all for the hour, is no archive; a folder,
    or an hour's name, holding no readable hour file (a dangling symlink, a notes file, a folder
    named like an hour file) is the archive's, unreadable: status shows it missing (exit 1), and
    the export (catch-up too) fails on it with the same words. ``listed``: the day as listed."""
    if isinstance(error, NoArchiveFolderError):
        return False
    if isinstance(error, NoHourFileError) and error.hour is not None:
        return isinstance(listed, ArchiveDay) and any(i.hour == error.hour for i in listed.ignored)
    return True


def _archive_of(entry: PartitionEntry, archive: str, options: dict | None, days: dict) -> ArchiveDay:
    """The archive day of the entry (listed once per day), restricted to the hour of an hour."""
    if entry.day not in days:
        try:
            days[entry.day] = open_archive_day(archive, entry.day, options)
        except ArchiveError as exc:
            days[entry.day] = exc
    found = days[entry.day]
    if isinstance(found, ArchiveError):
        raise found
    return found.only_hour(entry.key.hour) if entry.unit == "hour" else found


def _day_status(entry: PartitionEntry, archive: str | None, archive_options: dict | None, days: dict,
                begins: datetime | None = None) -> PartitionStatus:
    """The row of one partition: what the planner says of it (``planner.partition_state``)."""
    archive_day, has_archive = None, None
    if archive is not None:
        try:
            archive_day = _archive_of(entry, archive, archive_options, days)
            has_archive = True
        except ArchiveError as exc:
            has_archive, unreadable = archive_has(exc, days.get(entry.day)), exc
    m = entry.manifest
    state = partition_state(entry.state, entry.reason, m, archive_day.sizes() if archive_day is not None else None,
                            has_archive, entry.unit, _expected(entry, begins))
    row = PartitionStatus(entry.day, state.state, state.reason, archive=has_archive, partition=entry.name, key=entry.key)
    if state.state == MISSING and has_archive and archive_day is None:  # the archive has it, unreadable: say why
        row.reason = str(unreadable)
    if state.state in (PUBLISHED, PARTIAL):
        row.rows, row.size_bytes, row.exported_at, row.export_version = m.row_count, m.parquet_size_bytes, m.created_ts_utc, m.export_version
        row.archive_changed, row.changes = state.archive_changed, state.changes
        if entry.unit == "month":  # a bundle's source is its days: say which no longer match (bundle again)
            row.changes = bundle_changes(m)
            row.archive_changed = bool(row.changes) or None
    return row
