"""manifest.json: what a published day holds, and the commit marker that publishes it."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

from .errors import VerifyError
from .schema import DROPPED_COLUMNS
from .text import representable

TIER = "tier3"
#: Version of the export format (columns, manifest fields). Bump on any change readers see.
EXPORT_VERSION = "tier3-polars-1"
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
    missing_hours: list[int]
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
    #: False when --allow-incomplete exported today's (or a future) date: more entries may come.
    day_over_at_export: bool = True
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
    def is_partial(self) -> bool:
        return bool(self.missing_hours) or self.bad_line_count > 0 or not self.day_over_at_export

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["coverage_ratio"] = self.coverage_ratio
        data["is_partial"] = self.is_partial
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
        missing = [key for key in REQUIRED_FIELDS if key not in data]
        if missing:
            raise VerifyError(f"manifest lacks required fields: {', '.join(missing)}")
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{key: value for key, value in data.items() if key in known})

    @classmethod
    def from_json(cls, raw: bytes | str) -> "Manifest":
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise VerifyError(f"manifest is not valid JSON ({exc})") from None
        if not isinstance(data, dict):
            raise VerifyError("manifest is not a JSON object")
        return cls.from_dict(data)


_ORDER = (
    "date_utc", "created_ts_utc", "tier", "export_version", "exporter", "row_count", "schema_versions",
    "min_added_ts", "max_added_ts", "parquet_sha256", "parquet_size_bytes", "compression", "layout",
    "schema_fingerprint", "column_count", "partition_basis", "archive_day", "hours_expected", "hours_found",
    "missing_hours", "coverage_ratio", "day_over_at_export", "is_partial", "rows_by_hour", "source_files", "ignored_files",
    "lines_read", "lines_exported", "stdlib_json_lines", "bad_line_count", "bad_lines", "unknown_fields",
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
REQUIRED_FIELDS = tuple(key for key in _ORDER if key not in ("ignored_files", "stdlib_json_lines", "day_over_at_export"))


def utc_now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_instant(text) -> datetime | None:
    """ISO 8601 text (``Z`` or an offset; naive means UTC) -> aware datetime; None if unparseable."""
    if not isinstance(text, str):
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def format_instant(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")
