"""The read side: which partitions under a dataset root are published, and a Polars scan over them.

A root holds one tier (``partitions.py``): days ``YYYY-MM-DD/`` (Tier 3), hours ``YYYY-MM-DD/HH/``
(Tier 2) or monthly bundles ``YYYY-MM/``; the tier is told from what the root holds (or given as
``tier=``), and a root holding several is refused. A partition *counts* (is read) when its
``manifest.json`` parses, is the manifest of its folder (its ``partition`` kind and period),
declares a layout and export version this package writes with a schema fingerprint declared for
them (``schema.known_fingerprints``), and ``data.parquet`` lies beside it with the size the manifest
states. Any other partition is skipped by ``scan`` with a ``DatasetWarning`` naming it and why, or,
with ``strict=True``, stops the scan with a ``DatasetError``. A glob such as ``ROOT/*/data.parquet``
has no such check: it also reads a day that an export is publishing, or was killed publishing
(its data is there, its manifest is not).

Cost of ``list_partitions``: one recursive listing of the root (on S3 one ListObjectsV2 without a
delimiter, 1,000 keys a page: a year of days is about one request, a year of hours about 18) and
one read of each manifest in the range (s3fs fetches them concurrently); sizes come from the
listing, data is never read.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from datetime import date, datetime

import fsspec
import polars as pl  # the scan's; status pays for it through schema.py anyway

from .periods import parse_date
from .folder import DATA_NAME, MANIFEST_NAME, PartitionFolder, storage_errors
from .errors import ConfigError, DatasetError, InstrumetriqError
from .manifest import Manifest, format_instant
from .partitions import (
    HOURLY, MONTHLY, Tier, bound, clutter, detect, get_tier, hint_of, parse_listing, runs_text, split_partition_folder,
)
from .planner import partial_reason
from .schema import LAYOUTS, SEPARATOR, known_fingerprints
from .states import PARTIAL_POLICIES, READABLE, PartitionState
from .storage import display_path, is_local, is_s3_url, storage_options_for

#: The states of a partition in a range (``states.PartitionState``, the one vocabulary); PUBLISHED
#: partitions are read, PARTIAL ones as the ``partial`` policy says.
PUBLISHED, PARTIAL, MISSING, UNPUBLISHED, BAD_MANIFEST, FOREIGN, DAMAGED = (
    PartitionState.PUBLISHED, PartitionState.PARTIAL, PartitionState.MISSING, PartitionState.UNPUBLISHED,
    PartitionState.BAD_MANIFEST, PartitionState.FOREIGN, PartitionState.DAMAGED)


class DatasetWarning(UserWarning):
    """Partitions of the range that ``scan`` skipped (not published, foreign, damaged)."""


@dataclass(frozen=True)
class PartitionEntry:
    """One partition of a range (a day, an hour or a month): its folder and whether it counts;
    ``reason`` says why not. ``day`` is the partition's (first) day; ``key`` orders it in its tier
    (a date, or an hour's start), ``name`` names it (``2026-01-15``, ``2026-01-15T05``, ``2026-01``)."""

    day: date
    folder: PartitionFolder
    state: str
    reason: str = ""
    manifest: Manifest | None = None
    #: Bytes of data.parquet as the listing saw them; None when there is none.
    data_size: int | None = None
    key: date | datetime | None = None
    unit: str = "day"
    #: a partial partition the ``partial="exclude"`` policy leaves out
    left_out: bool = False

    @property
    def name(self) -> str:
        return self.folder.label.replace("/", "T")

    @property
    def published(self) -> bool:
        """Read by ``scan``: published complete, or partial unless the policy leaves it out."""
        return self.state in READABLE and not self.left_out

    @property
    def data_url(self) -> str:
        """``data.parquet`` as a reader opens it: a local path, or ``s3://bucket/...``."""
        return self.folder.display(self.folder.data_path)

    @property
    def export_format(self) -> tuple[str, str] | None:
        """(layout, export_version) of a published day: days that share it share their columns."""
        return (self.manifest.layout, self.manifest.export_version) if self.published else None


#: the former name
DayEntry = PartitionEntry


def list_days(location: str, start: str | date | None = None, end: str | date | None = None, *,
              storage_options: dict | None = None, partial: str = "warn") -> list[PartitionEntry]:
    """The days from ``start`` to ``end`` of a daily root (``list_partitions`` with tier "daily";
    a root of hours or bundles is a ``DatasetError``)."""
    entries = _list(location, start, end, tier="daily", storage_options=storage_options, partial=partial)
    _warn_partial(location, entries, partial)
    return entries


def list_partitions(location: str, start=None, end=None, *, tier: str | None = None,
                    storage_options: dict | None = None, partial: str = "warn") -> list[PartitionEntry]:
    """The partitions from ``start`` to ``end`` (both inclusive) under the dataset root
    ``location``, in order, each with its state. The root's tier is what it holds (``tier``, when
    given, must be it; a root holding nothing is of ``tier``, else of the bounds' form, else daily).
    Bounds: days ``YYYY-MM-DD`` or dates (daily); hours ``YYYY-MM-DDTHH`` or datetimes, or days (an
    hourly start is the day's hour 00, an end its hour 23); months ``YYYY-MM``, or any day of one
    (monthly). An open end is the first or last partition folder; a partition of the range without
    a folder is MISSING. Without ``start`` and ``end``: every partition folder under the root.
    ``partial``: partitions published partial (``is_partial``) are ``.published`` and named in one
    ``DatasetWarning`` ("warn", the default), ``.published`` silently ("include"), or left out
    ("exclude": ``.published`` false, ``.left_out`` true); their state is PARTIAL in every case.
    ``location`` may be one partition folder (``ROOT/YYYY-MM-DD``, ``ROOT/YYYY-MM-DD/HH``,
    ``ROOT/YYYY-MM``): that partition (the day folder of an hourly root: its hours). ``s3://``
    locations without ``storage_options`` use the R2 settings.

    Raises ``DatasetError`` for a bad bound or range, a root of several tiers or of another tier
    than ``tier``, or a root that does not exist (locally: no such folder; on an object store:
    nothing under the prefix); ``StorageError`` when the storage fails."""
    entries = _list(location, start, end, tier=tier, storage_options=storage_options, partial=partial)
    _warn_partial(location, entries, partial)
    return entries


def _list(location: str, start, end, *, tier: str | None, storage_options: dict | None, partial: str) -> list[PartitionEntry]:
    """``list_partitions`` without its warning."""
    location = str(location)
    _check_policy(partial)
    wanted = get_tier(tier)
    root, kind, named = split_partition_folder(location)
    options = storage_options_for(location, storage_options)
    fs, root_path = fsspec.core.url_to_fs(root, **(options or {}))
    root_path = root_path.rstrip("/")
    listing = _listing(fs, root_path)
    hint = {"hour": HOURLY, "month": MONTHLY}.get(kind) or hint_of(start, end)
    found = detect(listing, wanted, hint, display_path(fs, root_path))
    ignored = clutter(listing, found)
    if ignored:
        warnings.warn(f"dataset root {display_path(fs, root_path)}: ignored {', '.join(ignored[:8])}{' ...' if len(ignored) > 8 else ''} "
                      f"(named like partitions of another tier, holding no partition files)", DatasetWarning, stacklevel=4)
    first, last = bound(found, start, "start", False), bound(found, end, "end", True)
    if kind is not None:
        low, high = _named_range(found, kind, named, location, root)
        if any(b is not None and not low <= b <= high for b in (first, last)):
            raise DatasetError(f"{location} is the {kind} folder of {named if kind == 'day' else found.label(named)}; "
                               f"give the dataset root {root} to read other {found.unit}s")
        first, last = first or low, last or high
    if first and last and last < first:
        raise DatasetError(f"end {found.label(last)} is before start {found.label(first)}")
    folders = listing.folders(found)
    present = [key for key in sorted(folders) if (not first or key >= first) and (not last or key <= last)]
    keys = present
    if first or last:
        low, high = first or (present[0] if present else None), last or (present[-1] if present else None)
        keys = []
        while low and high and low <= high:
            keys.append(low)
            low = found.step(low)
    manifests = _read_manifests(fs, [f"{root_path}/{found.path(key)}/{MANIFEST_NAME}" for key in keys
                                     if MANIFEST_NAME in folders.get(key, {})])
    entries = [_entry(found, key, PartitionFolder(root_path, found.first_day(key), fs=fs, partition=found.path(key)), folders.get(key), manifests)
               for key in keys]
    return _apply_policy(entries, partial)


def _warn_partial(location: str, entries: list[PartitionEntry], partial: str) -> None:
    """The "warn" policy's one DatasetWarning, pointed at the caller of list_days/list_partitions."""
    partials = [entry for entry in entries if entry.state == PARTIAL]
    if partials and partial == "warn":
        warnings.warn(f"list {location}: {_partial_text(partials, len(entries))}", DatasetWarning, stacklevel=3)


def _check_policy(partial: str) -> None:
    if partial not in PARTIAL_POLICIES:
        raise DatasetError(f"partial={partial!r} is not a policy for partial partitions: give one of {', '.join(PARTIAL_POLICIES)}")


def _apply_policy(entries: list[PartitionEntry], partial: str) -> list[PartitionEntry]:
    """The entries, partial ones marked ``left_out`` when the policy is "exclude"."""
    if partial != "exclude":
        return entries
    return [replace(entry, left_out=True) if entry.state == PARTIAL else entry for entry in entries]


def _named_range(tier: Tier, kind: str, named, location: str, root: str) -> tuple:
    """The keys a partition folder given as the location stands for."""
    if kind == tier.unit:
        return named, named
    if kind == "day" and tier is HOURLY:
        return tier.bound(named, False), tier.bound(named, True)
    raise DatasetError(f"{location} is a {kind} folder, but its root {root} holds {tier.name} partitions; "
                       f"give the {tier.name} root or one of its {tier.unit} folders")


def scan(location: str, start=None, end=None, *, tier: str | None = None,
         storage_options: dict | None = None, strict: bool = False, partial: str = "warn") -> pl.LazyFrame:
    """A ``pl.LazyFrame`` over the published partitions from ``start`` to ``end``
    (``list_partitions``: days, hours or monthly bundles, as the root holds), read by
    ``pl.scan_parquet`` from their ``data.parquet`` files, in order.

    Partitions that do not count are skipped with one ``DatasetWarning`` naming each (with
    ``strict=True``: ``DatasetError``, nothing read). Partitions published partial: ``partial``
    "warn" (the default) reads them and names them in that warning (``strict=True``: refused),
    "include" reads them silently, "exclude" skips them. Also ``DatasetError``: no partition of the
    range is published (an empty frame would hide a wrong root, range or credentials), or the
    published ones are of more than one export format (layout, export version), whose columns
    differ. ``s3://`` locations without ``storage_options`` use the R2 settings; fsspec/s3fs
    options are translated for Polars' own object store reader (``polars_storage_options``)."""
    _check_policy(partial)
    options = storage_options_for(location, storage_options)
    entries = _list(location, start, end, tier=tier, storage_options=options, partial="include")
    return scan_entries(location, entries, _where(location, start, end), options, strict, partial)


def scan_entries(location: str, entries: list[PartitionEntry], where: str, options: dict | None, strict: bool,
                 partial: str = "warn") -> pl.LazyFrame:
    """``scan`` once the partitions are listed (``where`` names the call in messages; ``strict``
    and ``partial`` as for ``scan``): what a monthly bundle reads its days through."""
    _check_policy(partial)
    entries = _apply_policy(entries, partial)
    skipped = [entry for entry in entries if not entry.published]
    published = [entry for entry in entries if entry.published]
    partials = [entry for entry in published if entry.state == PARTIAL] if partial == "warn" else []
    unit = entries[0].unit if entries else "day"
    if not published:
        found = _skipped_text(skipped, len(entries)) if entries else f"no {unit} folder"
        raise DatasetError(f"{where}: no published {unit} to read ({found}); check the location and the dates")
    told = "; ".join(([_partial_text(partials, len(entries))] if partials else []) + ([_skipped_text(skipped, len(entries))] if skipped else []))
    if told and strict:
        raise DatasetError(f"{where}: {told}; strict=True reads a range only when every {unit} of it is published "
                           f"complete: export those {unit}s, narrow the range, or read partial {unit}s with partial='include'")
    if told:
        warnings.warn(f"{where}: {told}" + (f"; reading the published {unit}s only" if skipped else ""),
                      DatasetWarning, stacklevel=3)  # the caller of scan
    formats = {}
    for entry in published:
        formats.setdefault(entry.export_format, []).append(entry)
    if len(formats) > 1:
        parts = "; ".join(f"layout {layout}, {version}: {_names_text(group)}" for (layout, version), group in formats.items())
        raise DatasetError(
            f"{where}: the {unit}s are of different export formats, whose columns differ ({parts}); "
            f"scan each part on its own (start=, end=), or re-export the odd {unit}s in one layout, replacing them (force)")
    polars_options = polars_storage_options(location, options)
    return pl.scan_parquet([entry.data_url for entry in published], storage_options=polars_options,
                           hive_partitioning=False, glob=False)


def column(path: str, layout: str) -> pl.Expr:
    """The Polars expression for the declared field ``path`` (``"meta.added_ts"``) in ``layout``:
    the flat column ``meta__added_ts``, or the struct field of the nested column ``meta``."""
    top, *fields = path.split(".")
    if layout == "flat":
        return pl.col(SEPARATOR.join([top, *fields]))
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r} (expected one of {', '.join(LAYOUTS)})")
    expr = pl.col(top)
    for name in fields:
        expr = expr.struct.field(name)
    return expr.alias(SEPARATOR.join([top, *fields]))


def day_summary(location: str, day: str | date, *, key: str = "btc", storage_options: dict | None = None) -> list[str]:
    """Lines a newcomer can check against a published day, read back through ``scan``: rows and
    columns read (and the manifest's row count), rows per archive hour (counted from the
    ``archive_hour`` column; version 1 days, which have none: the manifest's ``rows_by_hour``), the span of
    ``snapshot_ts``, and one MAP lookup, ``tag_counts[key]`` of the last cycle."""
    day = _bound(day, "day")
    options = storage_options_for(location, storage_options)
    entries = list_days(location, day, day, storage_options=options, partial="include")
    frame = scan_entries(location, entries, _where(location, day, day), options, strict=True, partial="include")
    manifest = entries[0].manifest
    snapshot = pl.col("snapshot_ts")
    if frame.collect_schema()["snapshot_ts"] == pl.String:
        snapshot = snapshot.str.to_datetime(time_zone="UTC")
    tags = column("twitter_sentiment_windows.last_cycle.tag_counts", manifest.layout).map.get(key)
    figures = frame.select(
        pl.len().alias("rows"), snapshot.min().alias("first"), snapshot.max().alias("last"),
        tags.count().alias("with_key"), tags.sum().alias("key_total"),
    ).collect().row(0, named=True)
    if "archive_hour" in frame.collect_schema():  # export version 2: the rows say which hour file they came from
        by_hour, source = dict(frame.group_by("archive_hour").len().collect().iter_rows()), "the archive_hour column"
    else:
        by_hour, source = {int(h): n for h, n in manifest.rows_by_hour.items()}, "manifest.json rows_by_hour"
    counts = [str(by_hour.get(hour, 0)) if f"{hour:02d}" in manifest.rows_by_hour else "-" for hour in range(24)]  # "-": a missing hour
    width = max(map(len, counts))
    return [
        f"read back through scan: {figures['rows']} rows, {len(frame.collect_schema())} columns "
        f"(manifest.json: {manifest.row_count} rows, layout {manifest.layout})",
        f"rows per archive hour ({source}):",
        *(f"  {first:02d}-{first + 11:02d}: " + " ".join(c.rjust(width) for c in counts[first:first + 12]) for first in (0, 12)),
        f"snapshot_ts from {format_instant(figures['first'])} to {format_instant(figures['last'])}",
        f"twitter_sentiment_windows.last_cycle.tag_counts[{key!r}]: in {figures['with_key']} of {figures['rows']} rows, "
        f"{figures['key_total'] or 0} in all",
    ]


#: fsspec/s3fs option -> Polars' (object_store) option for s3:// URLs.
_S3_KEYS = {"key": "aws_access_key_id", "secret": "aws_secret_access_key", "token": "aws_session_token",
            "endpoint_url": "aws_endpoint_url", "region_name": "aws_region"}
#: s3fs options that only shape writing, caching or botocore's retries: nothing for a reader to set.
_S3_WRITE_SIDE = {"fixed_upload_size", "config_kwargs", "skip_instance_cache", "use_listings_cache",
                  "listings_expiry_time", "default_block_size", "default_fill_cache", "default_cache_type"}


def polars_storage_options(location: str, options: dict | None) -> dict | None:
    """The ``storage_options`` for ``pl.scan_parquet`` of ``location``, from fsspec options.

    Polars reads ``s3://`` through its own object store client, not s3fs, and names its options
    otherwise: ``key``/``secret``/``token``, ``endpoint_url`` and ``client_kwargs.region_name``
    become ``aws_*``; an ``http://`` endpoint also needs ``aws_allow_http``; ``anon=True`` is
    ``aws_skip_signature``. Options already named ``aws_*`` pass unchanged; s3fs' write-side and
    cache settings (R2's upload and checksum settings among them) are left out. Any other option
    raises ``ConfigError``, rather than being dropped and reading with other credentials. Other
    URLs get ``options`` unchanged; local paths none."""
    if not options or is_local(location):
        return None
    if not is_s3_url(location):
        return dict(options)
    flat = {key: value for key, value in options.items() if key != "client_kwargs"}
    flat.update(options.get("client_kwargs") or {})
    translated = {}
    for key, value in flat.items():
        if value is None or key in _S3_WRITE_SIDE:
            continue
        if key.startswith("aws_"):
            translated[key] = value
        elif key in _S3_KEYS:
            translated[_S3_KEYS[key]] = str(value)
        elif key == "anon":
            translated["aws_skip_signature"] = "true" if value else "false"
        else:
            raise ConfigError(f"storage option {key!r} has no equivalent for Polars' S3 reader; "
                              "give scan() Polars' own aws_* options instead")
    if str(translated.get("aws_endpoint_url", "")).startswith("http://"):
        translated.setdefault("aws_allow_http", "true")
    return translated


def _bound(value, name: str) -> date | None:
    if value is None:
        return None
    try:
        return parse_date(value)
    except InstrumetriqError as exc:
        raise DatasetError(f"{name}: {exc}") from None


def root_tier(location: str, storage_options: dict | None = None) -> str | None:
    """The tier whose partitions the root holds ("daily", "hourly" or "monthly"); None when it
    holds none or is not there. ``DatasetError`` when it holds several. One listing (what a
    writer asks before publishing into a root: ``write.flow``)."""
    fs, root_path = fsspec.core.url_to_fs(str(location), **(storage_options_for(str(location), storage_options) or {}))
    try:
        listing = _listing(fs, root_path.rstrip("/"))
    except DatasetError:  # nothing there (yet)
        return None
    kinds = listing.kinds()
    if len(kinds) > 1:
        raise DatasetError(f"dataset root {display_path(fs, root_path)} holds partitions of several tiers ({', '.join(kinds)})")
    return kinds[0] if kinds else None


def _listing(fs, root_path: str):
    """The root's partition folders and their files (``partitions.parse_listing``), from one listing."""
    url = display_path(fs, root_path)
    with storage_errors(f"could not list {url}", url):
        # locally three levels are enough (hour files); on an object store a depth limit would
        # list each folder on its own, while an unlimited find is one flat listing of the prefix
        # s3fs' find keeps the folder listings it had, and its cat_file looks a file up in them
        # first: a listing left by an earlier call would hide a manifest written since (a test)
        fs.invalidate_cache()
        found = fs.find(root_path, maxdepth=3 if is_local(fs) else None, withdirs=True, detail=True)
    if not found:
        raise DatasetError(f"dataset root {url} does not exist (nothing is there); check the location")
    if found.get(root_path, {}).get("type") == "file":
        raise DatasetError(f"dataset root {url} is a file, not a folder of partition folders (YYYY-MM-DD, YYYY-MM-DD/HH or YYYY-MM)")
    return parse_listing(found, root_path)


def _read_manifests(fs, paths: list[str]) -> dict[str, bytes | None]:
    """path -> the manifest's bytes (None when it went away since the listing)."""
    if not paths:
        return {}
    url = display_path(fs, paths[0].rsplit("/", 2)[0])
    with storage_errors(f"could not read the manifests under {url}", url):
        read = fs.cat(paths, on_error="return")
    out = {}
    for path, value in read.items():
        if isinstance(value, FileNotFoundError):
            value = None
        elif isinstance(value, BaseException):
            with storage_errors(f"could not read {display_path(fs, path)}", display_path(fs, path)):
                raise value
        out[fs._strip_protocol(path)] = value
    return out


def _entry(tier: Tier, key, folder: PartitionFolder, files: dict[str, int] | None, manifests: dict[str, bytes | None]) -> PartitionEntry:
    """The state of one partition from its folder's listing and its manifest's bytes."""
    if files is None:
        return PartitionEntry(folder.day, folder, MISSING, f"no {tier.unit} folder", key=key, unit=tier.unit)
    data_size = files.get(DATA_NAME)
    raw = manifests.get(folder.manifest_path)
    if raw is None:
        reason = ("data.parquet without manifest.json: being published, or its export was killed"
                  if data_size is not None else "no manifest.json")
        return PartitionEntry(folder.day, folder, UNPUBLISHED, reason, data_size=data_size, key=key, unit=tier.unit)

    def entry(state: str, reason: str = "") -> PartitionEntry:
        return PartitionEntry(folder.day, folder, state, reason, manifest, data_size, key, tier.unit)

    manifest = None
    try:
        manifest = Manifest.from_json(raw)
    except InstrumetriqError as exc:  # not JSON, fields missing or mistyped (manifest.py decides)
        return entry(BAD_MANIFEST, str(exc))
    if manifest.partition != tier.unit or manifest.partition_path != folder.label:
        of = manifest.partition_path.replace("/", "T") if manifest.partition == "day" else f"the {manifest.partition} {manifest.partition_path.replace('/', 'T')}"
        return entry(BAD_MANIFEST, f"manifest.json is for {of}, not for its folder's {'date' if tier.unit == 'day' else tier.unit}")
    if manifest.layout not in LAYOUTS:
        return entry(FOREIGN, f"layout {manifest.layout!r} is not one this package writes")
    if manifest.format_version is None:
        return entry(FOREIGN, f"export_version {manifest.export_version!r} is not one this package reads (exporter {_exporter(manifest)})")
    if manifest.schema_fingerprint not in known_fingerprints(manifest.layout, manifest.format_version):
        return entry(FOREIGN, f"schema fingerprint {manifest.schema_fingerprint} is not a declared one for "
                              f"the {manifest.layout} layout (exporter {_exporter(manifest)})")
    if data_size is None:
        return entry(DAMAGED, "manifest.json without data.parquet")
    if data_size != manifest.parquet_size_bytes:
        return entry(DAMAGED, f"data.parquet holds {data_size} bytes, manifest.json says {manifest.parquet_size_bytes}")
    return entry(PARTIAL, partial_reason(manifest)) if manifest.is_partial else entry(PUBLISHED)


def _exporter(manifest: Manifest) -> str:
    exporter = manifest.exporter if isinstance(manifest.exporter, dict) else {}
    return " ".join(str(exporter[key]) for key in ("name", "version") if key in exporter) or "unknown"


def _where(location: str, start, end) -> str:
    if start is None and end is None:
        return f"scan {location}"
    return f"scan {location} from {start or 'the first day'} to {end or 'the last day'}"


def _skipped_text(skipped: list[PartitionEntry], total: int) -> str:
    """'3 of 31 days not read: 2026-01-05..2026-01-06 (missing: no day folder); ...': consecutive
    partitions in the same state, for the same reason, are one range."""
    runs: list[list[PartitionEntry]] = []
    for entry in skipped:
        last = runs[-1][-1] if runs else None
        if last and (last.state, last.reason) == (entry.state, entry.reason) and _next(entry, last):
            runs[-1].append(entry)
        else:
            runs.append([entry])
    text = "; ".join(f"{_names_text(run)} ({run[0].state}: {run[0].reason})" for run in runs)
    return f"{len(skipped)} of {total} {skipped[0].unit}s not read: {text}"


def _partial_text(partials: list[PartitionEntry], total: int) -> str:
    """'1 of 31 days partial, read: 2026-01-13 (partial: 12 hours missing (12, 13, ...))'."""
    text = "; ".join(f"{entry.name} (partial: {entry.reason})" for entry in partials)
    return f"{len(partials)} of {total} {partials[0].unit}s partial, read: {text}"


def _tier_of(entry: PartitionEntry) -> Tier:
    return get_tier({"day": "daily", "hour": "hourly", "month": "monthly"}[entry.unit])


def _next(entry: PartitionEntry, before: PartitionEntry) -> bool:
    return entry.key == _tier_of(before).step(before.key)


def _names_text(entries: list[PartitionEntry]) -> str:
    """The entries' names in order, each run of consecutive ones as 'first..last':
    '2026-01-01..2026-01-10, 2026-01-15'."""
    return runs_text([e.key for e in entries], _tier_of(entries[0])) if entries else ""
