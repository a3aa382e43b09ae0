"""Locate an archive day (``ROOT/YYYYMMDD/HH.jsonl.gz`` on any fsspec URL) and apply the guards."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

import fsspec

from .errors import ArchiveError
from .storage import describe_error, display_path

HOURS = tuple(range(24))
_HOUR_FILE = re.compile(r"^([01][0-9]|2[0-3])\.jsonl\.gz$")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")  # fullmatch: "$" would accept a trailing newline


@dataclass(frozen=True)
class HourFile:
    hour: int
    path: str  # path on the archive filesystem
    size: int

    @property
    def name(self) -> str:
        return f"{self.hour:02d}.jsonl.gz"


@dataclass(frozen=True)
class ArchiveDay:
    day: date
    folder: str  # path of the YYYYMMDD folder on ``fs``
    hour_files: tuple[HourFile, ...]
    ignored_files: tuple[str, ...]  # names in the folder that are not hour files
    fs: fsspec.AbstractFileSystem

    @property
    def archive_day(self) -> str:
        return self.day.strftime("%Y%m%d")

    @property
    def missing_hours(self) -> list[int]:
        found = {h.hour for h in self.hour_files}
        return [h for h in HOURS if h not in found]


def parse_date(text: str | date) -> date:
    """A ``YYYY-MM-DD`` string (or date) -> date; anything else is refused before it forms a path."""
    if isinstance(text, datetime):
        return text.date()
    if isinstance(text, date):
        return text
    if not isinstance(text, str) or not _DATE.fullmatch(text):
        raise ArchiveError(f"invalid date {text!r}: expected YYYY-MM-DD")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ArchiveError(f"invalid date {text!r}: no such calendar day") from None


def utc_today() -> date:
    return datetime.now(timezone.utc).date()


def yesterday_utc() -> date:
    return utc_today() - timedelta(days=1)


def date_range(start: str | date, end: str | date) -> list[date]:
    first, last = parse_date(start), parse_date(end)
    if last < first:
        raise ArchiveError(f"--to-date {last} is before --from-date {first}")
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def open_archive_day(archive: str, day: str | date, storage_options: dict | None = None) -> ArchiveDay:
    """List the hour files of one archive day folder. Raises ArchiveError if there are none."""
    day = parse_date(day)
    fs, root = fsspec.core.url_to_fs(str(archive), **(storage_options or {}))
    folder = f"{root.rstrip('/')}/{day.strftime('%Y%m%d')}"
    try:
        listing = fs.ls(folder, detail=True)
    except FileNotFoundError:
        listing = None
    except Exception as exc:
        raise ArchiveError(f"could not list {display_path(fs, folder)}: {describe_error(exc)}") from exc
    if not listing:
        raise ArchiveError(f"no archive folder for {day}: {display_path(fs, folder)} does not exist or is empty")
    hours, ignored = [], []
    for info in sorted(listing, key=lambda i: i["name"]):
        name = info["name"].rstrip("/").rsplit("/", 1)[-1]
        match = _HOUR_FILE.match(name)
        if match and info.get("type", "file") == "file":
            hours.append(HourFile(int(match.group(1)), info["name"], int(info.get("size") or 0)))
        else:
            ignored.append(name)
    if not hours:
        raise ArchiveError(f"no hour files (HH.jsonl.gz) in {display_path(fs, folder)}")
    return ArchiveDay(day, folder, tuple(sorted(hours, key=lambda h: h.hour)), tuple(ignored), fs)


def check_date_guard(day: date, allow_incomplete: bool, today: date | None = None) -> bool:
    """The guide's first guard: not today (UTC), not the future. Returns whether the day is over;
    with ``allow_incomplete`` a day that is not over is exported (and marked partial)."""
    today = today or utc_today()
    if day < today or allow_incomplete:
        return day < today
    if day == today:
        raise ArchiveError(
            f"cannot export today's date {day} (UTC): the day is incomplete; "
            "wait until after midnight UTC or pass --allow-incomplete"
        )
    raise ArchiveError(f"cannot export {day}: it is in the future (today is {today} UTC)")


def check_hours_guard(archive_day: ArchiveDay, allow_incomplete: bool) -> None:
    """The guide's second guard: all 24 hour files present."""
    missing = archive_day.missing_hours
    if missing and not allow_incomplete:
        hours = ", ".join(f"{h:02d}" for h in missing)
        raise ArchiveError(
            f"incomplete day {archive_day.day}: missing hours {hours} in {display_path(archive_day.fs, archive_day.folder)}; "
            "wait for them or pass --allow-incomplete"
        )
