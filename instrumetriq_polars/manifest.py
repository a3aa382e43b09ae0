"""manifest.json: what a published day holds, and the commit marker that publishes it.

Build (``Manifest``, ``to_json``), read (``parse_manifest_json``, ``Manifest.from_json``) and
validate (required fields and their types: ``ManifestError``; the derived ``is_partial`` and
``coverage_ratio`` recomputed: ``Manifest.stated_problems``). The checks that need the day's
files (sizes, sha256, rows) are the verifier's."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

from .errors import ManifestError
from .schema import DROPPED_COLUMNS
from .text import representable

TIER = "tier3"
#: ``export_version`` -> the format version it names (``schema.VERSIONS``): version 2 typed the
#: timestamps, added the lineage columns and wrote ``missing_hours`` as "HH" strings.
FORMAT_VERSIONS = {"tier3-polars-1": 1, "tier3-polars-2": 2}
#: Version of the export format (columns, manifest fields). Bump on any change readers see.
EXPORT_VERSION = "tier3-polars-2"
PARTITION_BASIS = "archive_folder_utc_day"
HOURS_EXPECTED = 24
#: How many bad-line records the manifest lists in full (all are counted).
MAX_BAD_LINE_RECORDS = 1000

NULL_SEMANTICS = {
    "futures_raw": "NULL: no futures contract for the symbol, or futures data was unavailable at capture. Not an error.",
    "optional_blocks": "NULL in scores, diag, flags, twitter_* blocks: the block was missing or an empty object in the entry.",
    "required": "symbol, snapshot_ts, meta and spot_raw are never NULL; an entry without them is not exported (see bad_lines).",
    "fields": "A NULL field was missing or null in the entry (the two are not distinguished).",
    "count_maps": "tag/cashtag/mention/url_domain counts: NULL when the window is missing or the map is empty (no keys), like every empty object.",
    "flat_layout": "In the flat layout a NULL block makes all of its block__* columns NULL.",
    "_extra": "JSON text of values the declared schema could not hold (unknown fields, wrong types); NULL when none.",
    "timestamps": "Instants in UTC, to the microsecond: an ISO 8601 offset is converted to UTC, and a timestamp without one is read as UTC "
                  "(the archive is UTC). A value that is not such an instant is NULL, its exact text in _extra, its path in mistyped_fields.",
    "lineage": "archive_day and archive_hour (0-23): the archive folder and hour file each row came from; never NULL.",
}

@dataclass
class Manifest:
    date_utc: str
    archive_day: str
    row_count: int
    parquet_sha256: str
    parquet_size_bytes: int
    layout: str
    schema_fingerprint: str
    column_count: int
    hours_found: int
    missing_hours: list[str]  # "HH", like the keys of rows_by_hour (export version 1 wrote ints)
    rows_by_hour: dict[str, int]
    source_files: list[dict]
    schema_versions: dict[str, int]
    min_added_ts: str | None
    max_added_ts: str | None
    lines_read: int
    lines_exported: int
    bad_line_count: int
    bad_lines: list[dict]
    unknown_fields: dict[str, int]
    mistyped_fields: dict[str, int]
    exporter: dict[str, str]
    ignored_files: list[str] = field(default_factory=list)
    stdlib_json_lines: int = 0
    #: False when ``allow_incomplete`` exported today's (or a future) date: more entries may come.
    #: For an hour: the hour was complete (``hourly.hour_complete``); a month: the month was over.
    day_over_at_export: bool = True
    #: "day", "hour" (``hour_utc`` of ``date_utc``: Tier 2) or "month" (``date_utc`` is YYYY-MM: a bundle)
    partition: str = "day"
    hour_utc: int | None = None
    #: A bundle's days of the month (to date) that had no published day: the bundle is partial.
    missing_days: list[str] = field(default_factory=list)
    #: a bundle's daily root, as given to ``bundle`` (verify --month and status --month compare its days)
    source_root: str | None = None
    #: gzip damage skipped in the hour files: {"file", "start", "end", "reason"} byte spans (decode.gunzip)
    damaged_spans: list[dict] = field(default_factory=list)
    created_ts_utc: str = field(default_factory=lambda: utc_now_iso())
    tier: str = TIER
    export_version: str = EXPORT_VERSION
    compression: str = "zstd"
    partition_basis: str = PARTITION_BASIS
    hours_expected: int = HOURS_EXPECTED
    dropped_columns: list[str] = field(default_factory=lambda: list(DROPPED_COLUMNS))
    null_semantics: dict[str, str] = field(default_factory=lambda: dict(NULL_SEMANTICS))

    @property
    def coverage_ratio(self) -> float:
        return round(self.hours_found / self.hours_expected, 4)

    @property
    def format_version(self) -> int | None:
        """The format version ``export_version`` names; None for one this package does not know."""
        return format_version(self.export_version)

    @property
    def missing_hour_keys(self) -> list[str]:
        """``missing_hours`` as "HH" keys, whichever version wrote them."""
        return [hour_key(h) if type(h) is int else h for h in self.missing_hours]

    @property
    def is_partial(self) -> bool:
        return (bool(self.missing_hours) or self.bad_line_count > 0 or not self.day_over_at_export or bool(self.missing_days)
                or any(isinstance(s, dict) and s.get("is_partial") is True for s in self.source_files))  # a bundle's days

    @property
    def partition_path(self) -> str:
        """The partition's folder under its dataset root: YYYY-MM-DD, YYYY-MM-DD/HH or YYYY-MM."""
        return f"{self.date_utc}/{self.hour_utc:02d}" if self.partition == "hour" else self.date_utc

    @property
    def expected_hours(self) -> list[int]:
        """The archive hours the partition is made of: the hour of an hour, else 00-23."""
        return [self.hour_utc] if self.partition == "hour" else list(range(self.hours_expected))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["coverage_ratio"] = self.coverage_ratio
        data["is_partial"] = self.is_partial
        if self.hour_utc is None:  # a day's and a bundle's manifest: no hour
            del data["hour_utc"]
        if self.partition != "month":
            del data["missing_days"]
        if not self.damaged_spans:  # the manifests of undamaged hours are as before
            del data["damaged_spans"]
        if self.source_root is None:
            del data["source_root"]
        return {key: data[key] for key in _ORDER if key in data}

    def to_json(self) -> bytes:
        """The manifest as UTF-8 JSON. It is written whatever text reached it: a string UTF-8
        cannot encode (a lone surrogate, from ``json.loads`` or a file name that is not UTF-8)
        is written with ``text.representable``, never as a ``\\udXXX`` JSON escape, which strict
        readers (orjson among them) refuse."""
        data = self.to_dict()
        try:
            return (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode()
        except UnicodeEncodeError:
            return (json.dumps(_representable(data), indent=2, ensure_ascii=False) + "\n").encode()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Manifest":
        """The manifest ``data`` (a parsed manifest.json) describes; ManifestError when a required
        field is missing, or a field has the wrong type or a negative count."""
        missing = [key for key in REQUIRED_FIELDS if key not in data]
        if missing:
            raise _invalid(f"lacks required fields: {', '.join(missing)}")
        problems = [f"{key} ({_short(data[key])})" for key, ok in _FIELD_CHECKS.items() if key in data and not ok(data[key])]
        if problems:
            shown = ", ".join(problems[:8]) + (f" (+{len(problems) - 8} more)" if len(problems) > 8 else "")
            raise _invalid(f"has fields of the wrong type or negative counts: {shown}")
        hours = data["missing_hours"]
        if not _hours_of_version(hours, format_version(data.get("export_version"))):
            raise _invalid(f"has fields of the wrong type or negative counts: missing_hours ({_short(hours)}: "
                                f"{'hours as numbers' if data.get('export_version') == 'tier3-polars-1' else 'hours as HH strings'}, "
                                f"as export_version {data.get('export_version')} writes them)")
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{key: value for key, value in data.items() if key in known})

    @classmethod
    def from_json(cls, raw: bytes | str) -> "Manifest":
        return cls.from_dict(parse_manifest_json(raw))

    def stated_problems(self, data: dict[str, Any]) -> list[str]:
        """The fields a manifest derives (``is_partial``, ``coverage_ratio``) as ``data`` states
        them, against their recomputation from the fields they derive from; one line each."""
        problems = []
        if data.get("is_partial") is not self.is_partial:
            reasons = f"{_plural(len(self.missing_hours), 'missing hour')} and {_plural(self.bad_line_count, 'bad line')}"
            reasons += ", and an export before the day was over" if not self.day_over_at_export else ""
            problems.append(f"is_partial is {json.dumps(data.get('is_partial'))} but the manifest records {reasons}")
        if data.get("coverage_ratio") != self.coverage_ratio:
            problems.append(f"coverage_ratio is {data.get('coverage_ratio')}, expected {self.coverage_ratio} "
                            f"({self.hours_found}/{self.hours_expected} hours)")
        return problems


def parse_manifest_json(raw: bytes | str) -> dict[str, Any]:
    """manifest.json's bytes -> its JSON object; ManifestError when it is not JSON or not an object."""
    try:
        data = json.loads(raw)
    except ValueError as exc:  # JSONDecodeError, and UnicodeDecodeError for bytes that are not UTF-8
        text = str(exc).strip().splitlines()
        raise _invalid(f"is not valid JSON ({text[0][:200] if text else type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise _invalid("is not a JSON object")
    return data


def _invalid(problem: str) -> ManifestError:
    """``manifest.json <problem>``; ``.problem`` keeps the words without the file name."""
    return ManifestError(f"manifest.json {problem}", problem)


def _is_count(value) -> bool:
    """A count or a size: an int (not a bool), never negative."""
    return type(value) is int and value >= 0


def _counts(value) -> bool:
    return isinstance(value, dict) and all(map(_is_count, value.values()))


_SOURCE_COUNTS = ("hour", "size_bytes", "lines_read", "rows", "bad_lines")

#: The type every field that the checks and the publisher read must have. Counts and sizes are
#: never negative: a negative hour in rows_by_hour could otherwise balance a sum that checks out.
_FIELD_CHECKS = {
    "row_count": _is_count, "parquet_size_bytes": _is_count, "hours_found": _is_count, "hours_expected": _is_count,
    "column_count": _is_count, "bad_line_count": _is_count, "lines_exported": _is_count, "lines_read": _is_count,
    "stdlib_json_lines": _is_count,
    "parquet_sha256": lambda v: isinstance(v, str) and len(v) == 64,
    "layout": lambda v: isinstance(v, str), "schema_fingerprint": lambda v: isinstance(v, str),
    "date_utc": lambda v: isinstance(v, str), "archive_day": lambda v: isinstance(v, str),
    "export_version": lambda v: isinstance(v, str), "created_ts_utc": lambda v: isinstance(v, str),
    "tier": lambda v: isinstance(v, str), "exporter": lambda v: isinstance(v, dict),
    "missing_hours": lambda v: isinstance(v, list),  # its items: _hours_of_version
    "rows_by_hour": _counts, "unknown_fields": _counts, "mistyped_fields": _counts, "schema_versions": _counts,
    "bad_lines": lambda v: isinstance(v, list),
    "source_files": lambda v: isinstance(v, list) and all(
        isinstance(s, dict) and all(_is_count(s[k]) for k in _SOURCE_COUNTS if k in s) for s in v),
    "dropped_columns": lambda v: isinstance(v, list), "day_over_at_export": lambda v: type(v) is bool,
    "partition": lambda v: v in ("day", "hour", "month"), "hour_utc": lambda v: v is None or (_is_count(v) and v < 24),
    "missing_days": lambda v: isinstance(v, list) and all(isinstance(d, str) for d in v),
    "damaged_spans": lambda v: isinstance(v, list) and all(
        isinstance(s, dict) and isinstance(s.get("file"), str) and _is_count(s.get("start")) and _is_count(s.get("end")) for s in v),
}


def format_version(export_version) -> int | None:
    """The format version an ``export_version`` value names; None for one this package does not know."""
    return FORMAT_VERSIONS.get(export_version) if isinstance(export_version, str) else None


def hour_key(hour: int) -> str:
    """An hour as the manifest names it: "05" (``rows_by_hour``'s keys, ``missing_hours``)."""
    return f"{hour:02d}"


def _hours_of_version(hours: list, version: int | None) -> bool:
    """``missing_hours`` as ``version`` writes them: ints (1), "HH" strings (2 on; an unknown
    version: the current form)."""
    if version == 1:
        return all(map(_is_count, hours))
    return all(type(h) is str and len(h) == 2 and h.isascii() and h.isdigit() for h in hours)


def _short(value, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


_ORDER = (
    "date_utc", "partition", "hour_utc", "created_ts_utc", "tier", "export_version", "exporter", "row_count", "schema_versions",
    "min_added_ts", "max_added_ts", "parquet_sha256", "parquet_size_bytes", "compression", "layout",
    "schema_fingerprint", "column_count", "partition_basis", "archive_day", "hours_expected", "hours_found",
    "missing_hours", "coverage_ratio", "day_over_at_export", "missing_days", "source_root", "is_partial", "rows_by_hour", "source_files", "ignored_files",
    "lines_read", "lines_exported", "stdlib_json_lines", "bad_line_count", "bad_lines", "damaged_spans", "unknown_fields",
    "mistyped_fields", "dropped_columns", "null_semantics",
)


def _representable(value):
    """``value`` with every string in it (keys included) made writable as UTF-8."""
    if isinstance(value, str):
        return representable(value)
    if isinstance(value, dict):
        return {_representable(key): _representable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_representable(item) for item in value]
    return value


#: Fields a manifest must have; the rest came later and have defaults.
REQUIRED_FIELDS = tuple(key for key in _ORDER if key not in ("ignored_files", "stdlib_json_lines", "day_over_at_export",
                                                             "partition", "hour_utc", "missing_days", "damaged_spans", "source_root"))


def utc_now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_instant(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")
