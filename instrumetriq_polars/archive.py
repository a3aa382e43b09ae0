"""Locate an archive day (``ROOT/YYYYMMDD/HH.jsonl.gz`` on any fsspec URL) and apply the guards.

An hour file is a regular file (or a symlink to one) named exactly ``HH.jsonl.gz``, HH 00 to 23
in ASCII digits: ``5.jsonl.gz``, ``24.jsonl.gz``, ``05.JSONL.GZ``, ``05.jsonl.gz`` followed by a
newline or ``\u0660\u0665.jsonl.gz`` (Arabic-Indic digits, which ``\\d`` would take) are not.
Everything else in the folder is listed in ``ignored_files`` with the reason, and one hour is
read from one file only, so the rows counted per hour are the rows written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime

from .errors import ArchiveError, MissingHoursError, NoArchiveFolderError, NoHourFileError, NotOverError
from .periods import archive_day_name, date_range, day_text, parse_date, utc_today, yesterday_utc  # noqa: F401 - re-exported
from .storage import describe_error, display_path
from .text import file_name, one_line

HOURS = tuple(range(24))
# fullmatch, never match/search with "$": "$" also matches before a trailing newline, and a file
# named "05.jsonl.gz\n" was read as a second hour 05 (the day's rows then disagreed with its manifest).
_HOUR_FILE = re.compile(r"([01][0-9]|2[0-3])\.jsonl\.gz")
NOT_AN_HOUR_FILE = "not an hour file (HH.jsonl.gz)"


@dataclass(frozen=True)
class HourFile:
    hour: int
    path: str  # path on the archive filesystem
    size: int

    @property
    def name(self) -> str:
        return f"{self.hour:02d}.jsonl.gz"


@dataclass(frozen=True)
class IgnoredFile:
    """Something in the day folder that is not read, and why (one line)."""

    name: str  # as listed, made writable (``text.file_name``); a folder's ends with "/"
    reason: str
    hour: int | None = None  # the hour its name stands for, when it has one: that hour is missing

    def warning(self, archive_day: str) -> str:
        consequence = f"; hour {self.hour:02d} is missing" if self.hour is not None else ""
        return f"{archive_day}/{one_line(self.name)}: {self.reason}{consequence}; ignored, listed in the manifest's ignored_files"


@dataclass(frozen=True)
class ArchiveDay:
    day: date
    folder: str  # path of the YYYYMMDD folder on ``fs``
    hour_files: tuple[HourFile, ...]  # in hour order, at most one per hour
    ignored: tuple[IgnoredFile, ...]  # what is in the folder and is not an hour file
    fs: object  # the fsspec filesystem
    expected: tuple[int, ...] = HOURS  # the hours to export: the day's 24, or one (``only_hour``)

    def __post_init__(self) -> None:
        hours = [h.hour for h in self.hour_files]
        if hours != sorted(set(hours)):
            raise ValueError(f"hour files must be unique and in hour order, not {hours}")

    @property
    def archive_day(self) -> str:
        return archive_day_name(self.day)

    @property
    def ignored_files(self) -> tuple[str, ...]:
        """The names in the folder that are not hour files (the manifest's ``ignored_files``)."""
        return tuple(i.name for i in self.ignored)

    @property
    def missing_hours(self) -> list[int]:
        found = {h.hour for h in self.hour_files}
        return [h for h in self.expected if h not in found]

    def only_hour(self, hour: int) -> "ArchiveDay":
        """The day restricted to one hour file (an hourly export): its file, and what was ignored
        under its name. Raises ArchiveError when the hour file is missing."""
        picked = ArchiveDay(self.day, self.folder, tuple(h for h in self.hour_files if h.hour == hour),
                            tuple(i for i in self.ignored if i.hour == hour), self.fs, (hour,))
        if not picked.hour_files:
            folder = display_path(self.fs, self.folder)
            raise NoHourFileError(f"no hour file {hour:02d}.jsonl.gz in {folder}{picked.why_missing()}; the hour cannot be exported",
                                  self.day, hour, folder)
        return picked

    def sizes(self) -> dict[int, int]:
        """hour -> size of each hour file (what the planner compares with a manifest)."""
        return {h.hour: h.size for h in self.hour_files}

    def warnings(self) -> list[str]:
        """One line per ignored name, saying why it is not read."""
        return [i.warning(self.archive_day) for i in self.ignored]

    def why_missing(self) -> str:
        """`` (05.jsonl.gz: a symlink to ..., which does not exist)`` for missing hours whose name
        is in the folder but cannot be read; empty when there are none."""
        reasons = [f"{one_line(i.name)}: {i.reason}" for i in self.ignored if i.hour is not None]
        if not reasons:
            return ""
        more = f"; and {len(reasons) - 3} more" if len(reasons) > 3 else ""
        return f" ({'; '.join(reasons[:3])}{more})"


def open_archive_day(archive: str, day: str | date, storage_options: dict | None = None) -> ArchiveDay:
    """List the hour files of one archive day folder. Raises ArchiveError if there are none."""
    import fsspec

    day = parse_date(day)
    fs, root = fsspec.core.url_to_fs(str(archive), **(storage_options or {}))
    folder = f"{root.rstrip('/')}/{archive_day_name(day)}"
    try:
        listing = fs.ls(folder, detail=True)
    except FileNotFoundError:
        listing = None
    except Exception as exc:
        raise ArchiveError(f"could not list {display_path(fs, folder)}: {describe_error(exc)}") from exc
    if not listing:
        raise NoArchiveFolderError(f"no archive folder for {day_text(day)}: {display_path(fs, folder)} does not exist or is empty",
                                   day, display_path(fs, folder))
    hours: dict[int, HourFile] = {}
    ignored: list[IgnoredFile] = []
    for info in sorted(listing, key=lambda i: i["name"]):
        name = info["name"].rstrip("/").rsplit("/", 1)[-1]
        shown = file_name(name) + ("/" if info.get("type") == "directory" and not info.get("islink") else "")
        match = _HOUR_FILE.fullmatch(name)
        if not match:
            ignored.append(IgnoredFile(shown, NOT_AN_HOUR_FILE))
            continue
        hour = int(match.group(1))
        size, problem = _regular_file(fs, info)
        if problem:
            ignored.append(IgnoredFile(shown, problem, hour))
        elif hour in hours:  # a storage that lists one name twice: the hour is read once
            ignored.append(IgnoredFile(shown, f"listed twice; hour {hour:02d} is read once"))
        else:
            hours[hour] = HourFile(hour, info["name"], size)
    day_folder = ArchiveDay(day, folder, tuple(hours[h] for h in sorted(hours)), tuple(ignored), fs)
    if not hours:
        raise NoHourFileError(f"no hour files (HH.jsonl.gz) in {display_path(fs, folder)}{day_folder.why_missing()}",
                              day, None, display_path(fs, folder))
    return day_folder


def hour_file_exists(archive: str, start: datetime, storage_options: dict | None = None) -> bool:
    """Whether the archive holds the hour file of ``start`` (``YYYYMMDD/HH.jsonl.gz``): the
    hourly rule's look at the next hour (both tiers' guards ask it)."""
    import fsspec

    fs, root = fsspec.core.url_to_fs(str(archive), **(storage_options or {}))
    try:
        return fs.isfile(f"{root.rstrip('/')}/{archive_day_name(start.date())}/{start.hour:02d}.jsonl.gz")
    except Exception:  # noqa: BLE001 - cannot tell: the grace period decides
        return False


def _regular_file(fs, info: dict) -> tuple[int, str | None]:
    """(size, None) for a listed regular file or symlink to one; (0, why not) otherwise. fsspec
    lists a local symlink as type "other" whatever it points to, so a symlink is followed."""
    kind, link = info.get("type", "file"), info.get("islink", False)
    if not link and kind in ("file", "directory"):
        return (int(info.get("size") or 0), None) if kind == "file" else (0, "a folder, not a file")
    what = f"a symlink to {one_line(file_name(str(info.get('destination', '?'))))}" if link else "not a regular file"
    try:
        resolved = fs.info(info["name"])  # follows symlinks
    except FileNotFoundError:
        return 0, f"{what}, which does not exist"
    except Exception as exc:  # noqa: BLE001 - a symlink loop, permissions: the backend's own error
        return 0, f"{what}, which cannot be followed ({one_line(describe_error(exc))})"
    kind = resolved.get("type", "file")
    if kind == "file":
        return int(resolved.get("size") or 0), None
    if not link:
        return 0, "not a regular file (a pipe, socket or device)"
    return 0, f"{what}, which is {'a folder' if kind == 'directory' else 'not a regular file'}"


def check_date_guard(day: date, allow_incomplete: bool, today: date | None = None) -> bool:
    """The guide's first guard: not today (UTC), not the future. Returns whether the day is over;
    with ``allow_incomplete`` a day that is not over is exported (and marked partial).
    ``NotOverError`` otherwise."""
    today = today or utc_today()
    if day < today or allow_incomplete:
        return day < today
    if day == today:
        raise NotOverError(f"cannot export today's date {day_text(day)} (UTC): the day is incomplete; wait until after midnight UTC",
                           day_text(day))
    raise NotOverError(f"cannot export {day_text(day)}: it is in the future (today is {day_text(today)} UTC)", day_text(day), future=True)


def check_hours_guard(archive_day: ArchiveDay, allow_incomplete: bool) -> None:
    """The guide's second guard: all 24 hour files present (``MissingHoursError``)."""
    missing = archive_day.missing_hours
    if missing and not allow_incomplete:
        hours = ", ".join(f"{h:02d}" for h in missing)
        raise MissingHoursError(
            f"incomplete day {day_text(archive_day.day)}: missing hours {hours} in {display_path(archive_day.fs, archive_day.folder)}"
            f"{archive_day.why_missing()}; wait for them", archive_day.day, missing)
