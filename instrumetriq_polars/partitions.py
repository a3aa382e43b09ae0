"""The three kinds of dataset root and how their partitions are named, found and ordered.

- "daily" (Tier 3): ``ROOT/YYYY-MM-DD/`` day folders holding data.parquet + manifest.json;
- "hourly" (Tier 2): ``ROOT/YYYY-MM-DD/HH/`` hour folders (a day folder holds only hour folders);
- "monthly" (bundles): ``ROOT/YYYY-MM/`` month folders.

A partition's *key* orders it within its tier: a ``date`` (a day, or a month's first day) or an
aware UTC ``datetime`` (an hour's start). ``detect`` tells a root's tier from its one listing;
a root holding partitions of more than one tier is refused (a reader would mix files whose rows
mean different periods).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

from .errors import DatasetError, InstrumetriqError
from .periods import (
    day_text, hour_of_day, hour_path, hour_text, month_text, next_day, next_hour, next_month, parse_date, parse_hour, parse_month,
)

_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_HH = re.compile(r"[01][0-9]|2[0-3]")
_MONTH = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])")


@dataclass(frozen=True)
class Tier:
    name: str  # "daily", "hourly", "monthly"
    unit: str  # "day", "hour", "month": the manifest's ``partition``
    #: A start or an end bound (the value, whether it is the end) -> the key; raises InstrumetriqError.
    bound: Callable[[object, bool], object]
    step: Callable[[object], object]  # the next key; None past the calendar's end (9999-12-31)
    label: Callable[[object], str]  # 2026-01-15, 2026-01-15T05, 2026-01: in messages and status rows
    path: Callable[[object], str]  # the folder under the root: 2026-01-15, 2026-01-15/05, 2026-01
    first_day: Callable[[object], date]


def _day_bound(value, end: bool) -> date:
    return parse_date(value.date() if isinstance(value, datetime) else value)


def _hour_bound(value, end: bool) -> datetime:
    """An hour (``YYYY-MM-DDTHH``, a datetime), or a whole day (``YYYY-MM-DD``, a date): its first
    hour as a start, its last as an end."""
    if isinstance(value, datetime) or (isinstance(value, str) and "T" in value):
        return parse_hour(value)
    day = parse_date(value)
    return hour_of_day(day, 23 if end else 0)


def _month_bound(value, end: bool) -> date:
    """A month (``YYYY-MM``), or any day of it (``YYYY-MM-DD``, a date)."""
    if isinstance(value, datetime):
        value = value.date()
    if isinstance(value, str) and _DAY.fullmatch(value):
        value = parse_date(value)
    return parse_month(value)


DAILY = Tier("daily", "day", _day_bound, next_day, day_text, day_text, lambda d: d)
HOURLY = Tier("hourly", "hour", _hour_bound, next_hour, hour_text, hour_path, lambda h: h.date())
MONTHLY = Tier("monthly", "month", _month_bound, next_month, month_text, month_text, lambda m: m)
TIERS = {tier.name: tier for tier in (DAILY, HOURLY, MONTHLY)}


def get_tier(name: str | None) -> Tier | None:
    if name is None:
        return None
    if name not in TIERS:
        raise DatasetError(f"unknown tier {name!r}: expected one of {', '.join(TIERS)}")
    return TIERS[name]


def bound(tier: Tier, value, name: str, end: bool):
    """``start``/``end`` as a key of ``tier``; DatasetError names the argument and the tier."""
    if value is None:
        return None
    try:
        return tier.bound(value, end)
    except InstrumetriqError as exc:
        held = "" if tier is DAILY else f" (the root holds {tier.name} partitions)"
        raise DatasetError(f"{name}: {exc}{held}") from None


def split_partition_folder(location: str) -> tuple[str, str | None, object]:
    """``(root, kind, key)`` when ``location`` ends with a partition's folder: ``ROOT/YYYY-MM-DD/HH``
    (an hour), ``ROOT/YYYY-MM-DD`` (a day; of an hourly root: its hours), ``ROOT/YYYY-MM`` (a
    month); any other location is a root: ``(location, None, None)``. Told by name alone, so a
    root itself named like a partition is taken for one."""
    text = str(location).rstrip("/")
    head, _, name = text.rpartition("/")
    parent = head.rpartition("/")[2]
    try:
        if _HH.fullmatch(name) and _DAY.fullmatch(parent):
            return _root_of(head.rpartition("/")[0], head), "hour", parse_hour(f"{parent}T{name}")
        if _DAY.fullmatch(name):
            return _root_of(head, text), "day", parse_date(name)
        if _MONTH.fullmatch(name):
            return _root_of(head, text), "month", parse_month(name)
    except InstrumetriqError:
        pass
    return str(location), None, None


def _root_of(head: str, text: str) -> str:
    if head == "" and "/" not in text:
        return "."
    return head + "/" if not head or head.endswith(":/") else head


@dataclass
class Listing:
    """What one listing of a root holds: key -> {file name: size} of each partition folder, per tier."""

    daily: dict[date, dict[str, int]]
    hourly: dict[datetime, dict[str, int]]
    monthly: dict[date, dict[str, int]]
    #: day folders with neither files nor hour folders (empty local folders): either tier's
    bare_days: set[date]

    def kinds(self) -> list[str]:
        """The tiers of the partitions held: folders holding a partition's files (``holds_partition``);
        a folder holding none (empty, a ``.DS_Store``) is clutter, not a partition of its tier."""
        return [name for name in TIERS if any(map(holds_partition, getattr(self, name).values()))]

    def folders(self, tier: Tier) -> dict:
        found = getattr(self, tier.name)
        if tier is DAILY:
            return {**dict.fromkeys(self.bare_days, {}), **found}
        return found


def parse_listing(found: dict[str, dict], root_path: str) -> Listing:
    """Sort a recursive listing (``fs.find(..., withdirs=True, detail=True)``) into partitions."""
    listing = Listing({}, {}, {}, set())
    hour_days: set[date] = set()
    for path, info in found.items():
        if not path.startswith(root_path + "/"):
            continue
        parts = path[len(root_path) + 1:].split("/")
        is_file = info.get("type") == "file"
        try:
            if _DAY.fullmatch(parts[0]):
                day = parse_date(parts[0])
                if len(parts) == 1:
                    listing.bare_days.add(day)
                elif len(parts) == 2 and is_file:
                    listing.daily.setdefault(day, {})[parts[1]] = info.get("size")
                elif _HH.fullmatch(parts[1]) and (len(parts) == 2 or len(parts) == 3 and is_file):
                    hour = hour_of_day(day, int(parts[1]))
                    files = listing.hourly.setdefault(hour, {})
                    hour_days.add(day)
                    if len(parts) == 3:
                        files[parts[2]] = info.get("size")
            elif _MONTH.fullmatch(parts[0]) and (len(parts) == 1 or len(parts) == 2 and is_file):
                files = listing.monthly.setdefault(parse_month(parts[0]), {})
                if len(parts) == 2:
                    files[parts[1]] = info.get("size")
        except InstrumetriqError:
            continue  # named like a partition, not a calendar one: not a partition
    listing.bare_days -= hour_days | set(listing.daily)
    return listing


def holds_partition(files: dict) -> bool:
    """Whether a folder's files make it a partition: its data, its manifest, or an export's
    temporary or lock files (a partition being written, or whose export was killed)."""
    return any(name in ("data.parquet", "manifest.json", ".export.lock") or name.startswith((".data.parquet.tmp-", ".manifest.json.tmp-"))
               for name in files)


def clutter(listing: Listing, tier: Tier) -> list[str]:
    """What a root of ``tier`` holds that is named like another tier's partitions and holds none of
    a partition's files (an empty ``2026-05/``, a ``2026-01-15/.DS_Store`` in an hourly root): ignored
    by readers and writers alike, named in one warning; it never hides the partitions beside it."""
    names = []
    for other in TIERS.values():
        if other is not tier:
            for key, files in sorted(getattr(listing, other.name).items()):
                if not holds_partition(files):
                    names += [f"{other.path(key)}/{name}" for name in sorted(files)] or [f"{other.path(key)}/"]
    if tier is MONTHLY:
        names += [f"{DAILY.path(day)}/" for day in sorted(listing.bare_days)]
    return names


def detect(listing: Listing, wanted: Tier | None, hint: Tier | None, url: str) -> Tier:
    """The root's tier: the one its partitions are of (``wanted`` when given must be it), else
    ``wanted``, ``hint`` (what the bounds or the location name) or daily, for a root holding none."""
    kinds = listing.kinds()
    if len(kinds) > 1:
        raise DatasetError(f"dataset root {url} holds partitions of several tiers ({', '.join(kinds)}); "
                           "one root holds one tier: give the root of the tier to read")
    if kinds:
        found = TIERS[kinds[0]]
        if wanted is not None and wanted is not found:
            raise DatasetError(f"dataset root {url} holds {found.name} partitions ({found.unit} folders), not {wanted.name} ones; "
                               f"give the {wanted.name} root, or tier={found.name!r}")
        return found
    present = [name for name in TIERS if getattr(listing, name)]  # clutter only: it does not decide
    return wanted or hint or (TIERS[present[0]] if len(present) == 1 else DAILY)


def hint_of(*values) -> Tier | None:
    """The tier the bounds' form names: an hour (``T``, a datetime) or a month (``YYYY-MM``)."""
    for value in values:
        if isinstance(value, datetime) or (isinstance(value, str) and "T" in value):
            return HOURLY
        if isinstance(value, str) and _MONTH.fullmatch(value):
            return MONTHLY
    return None


def runs_text(keys: list, tier: Tier) -> str:
    """Keys in order as text, each run of consecutive ones as 'first..last':
    '2026-01-01..2026-01-10, 2026-01-15'."""
    runs: list[list] = []
    for key in keys:
        if runs and key == tier.step(runs[-1][-1]):
            runs[-1].append(key)
        else:
            runs.append([key])
    return ", ".join(f"{tier.label(run[0])}..{tier.label(run[-1])}" if len(run) > 1 else tier.label(run[0]) for run in runs)
