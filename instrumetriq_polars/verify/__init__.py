"""Verify a published Tier 3 day: ``verify_day`` and the ``verify`` command behind it.

A day folder ``ROOT/YYYY-MM-DD/`` (local or any fsspec URL) is checked by a list of named checks,
run in order (``CHECKS``). Each check records errors (the day FAILs), warnings (the day is still
usable, WARN) and the figures it measured; a check whose inputs are unusable is skipped and says
why (the check that found the damage carries the error). With ``against_archive`` the day is also
re-read from the archive and compared: row counts with the exporter's own reader, sampled rows
with their source lines parsed by the standard library's ``json.loads`` (independent of the
exporter's decode and normalise): that makes a verification trustworthy rather than merely
self-consistent.

Row numbers in messages are 0-based positions in ``data.parquet``. Row checks run on a seeded
sample (``sample_size`` rows, ``seed``), so a rerun looks at the same rows.

Modules: ``results`` (what a verification returns), ``day`` (the day under check, shared helpers),
``files`` and ``rows`` (the checks of a published day), ``crosscheck`` (against the archive),
``report`` (Markdown).
"""

from __future__ import annotations

import time
from datetime import date

from ..periods import hour_path, month_end, month_text, parse_date, parse_hour, parse_month
from ..folder import split_day_folder
from ..errors import VerifyError
from ..storage import describe_error
from .report import render_report
from .results import FAIL, PASS, SKIP, WARN, CheckResult, VerifyResult, unreadable_result

DEFAULT_SAMPLE_SIZE = 200
DEFAULT_SEED = 0

__all__ = [
    "ARCHIVE_CHECK", "CHECKS", "DEFAULT_SAMPLE_SIZE", "DEFAULT_SEED", "FAIL", "PASS", "SKIP", "WARN", "CheckResult", "CheckSpec",
    "VerifyResult", "render_report", "split_day_folder", "unreadable_result", "verify_day", "verify_hour", "verify_month",
    "verify_partition",
]


def __getattr__(name: str):
    """The checks and their machinery, imported on first use (the CLI's ``--help`` and ``status``
    need none of them): ``CHECKS`` (in the order they run; later checks use what earlier ones
    found), ``ARCHIVE_CHECK`` (the cross-check against the archive), ``CheckSpec``,
    ``DayUnderCheck``, ``Skip``."""
    if name == "CHECKS":
        from . import files, rows

        return files.CHECKS + rows.CHECKS
    if name == "ARCHIVE_CHECK":
        from .crosscheck import ARCHIVE_CHECK

        return ARCHIVE_CHECK
    if name in ("CheckSpec", "DayUnderCheck", "Skip"):
        from . import day as _day

        return getattr(_day, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def verify_partition(
    day: str | date,
    location: str,
    *,
    storage_options: dict | None = None,
    against_archive: str | None = None,
    archive_storage_options: dict | None = None,
    sample_size: int = DEFAULT_SAMPLE_SIZE,
    seed: int = DEFAULT_SEED,
    partition: str | None = None,
    last_day: date | None = None,
) -> VerifyResult:
    """Verify the published partition ``location/<partition>`` (``location`` may also be its
    folder): a day (``partition`` None: ``YYYY-MM-DD`` of ``day``), an hour (``YYYY-MM-DD/HH``) or
    a month (``YYYY-MM``, with ``last_day``); ``day`` is the partition's first day.

    Returns a VerifyResult whatever the partition holds; raises VerifyError only when the location
    cannot be read at all (unknown protocol, credentials, permissions) or is the folder of another
    partition.
    """
    from .crosscheck import ARCHIVE_CHECK
    from .day import DayUnderCheck

    started = time.perf_counter()
    day = parse_date(day)
    if sample_size < 1:
        raise ValueError(f"sample_size must be at least 1, not {sample_size}")
    ctx = DayUnderCheck(day, location, storage_options, sample_size, seed, against_archive, archive_storage_options,
                        partition, last_day)
    specs = __getattr__("CHECKS") + ([ARCHIVE_CHECK] if against_archive is not None else [])
    try:
        checks = [_run(spec, ctx) for spec in specs]
    finally:
        ctx.close()
    state = partition_state(location, partition or day.isoformat(), storage_options)
    return VerifyResult(day, ctx.url, checks, ctx.layout, time.perf_counter() - started, label=partition, state=state)


def partition_state(location: str, partition: str, storage_options: dict | None = None):
    """The partition's state in the one vocabulary (``states.PartitionState``), as ``list_partitions``
    tells it (the rules are the listing's, not repeated here); None when the location cannot be
    listed (the checks say why)."""
    from ..dataset import list_partitions
    from ..errors import InstrumetriqError

    key = partition.replace("/", "T")
    try:
        entries = list_partitions(location, key, key, storage_options=storage_options, partial="include")
    except InstrumetriqError:
        return None
    return entries[0].state if len(entries) == 1 else None


def verify_day(day: str | date, location: str, **options) -> VerifyResult:
    """Verify the published day ``location/YYYY-MM-DD`` (``location`` may also be the day folder):
    ``verify_partition`` of a day (the options are its)."""
    return verify_partition(day, location, **options)


def verify_hour(hour, location: str, **options) -> VerifyResult:
    """Verify the published hour ``location/YYYY-MM-DD/HH`` (Tier 2; ``location`` may be the hour
    folder): every check of a day, the archive cross-check reading that hour file only."""
    start = parse_hour(hour)
    return verify_partition(start.date(), location, partition=hour_path(start), **options)


def verify_month(month, location: str, **options) -> VerifyResult:
    """Verify the published bundle ``location/YYYY-MM`` (``location`` may be its folder): every
    check of a day; rows are dated within the month; no archive cross-check (verify its days)."""
    from ..status import bundle_changes

    first = parse_month(month)
    result = verify_partition(first, location, partition=month_text(first), last_day=month_end(first), **options)
    manifest = _manifest_of(result.location, options.get("storage_options"))
    changes = bundle_changes(manifest) if manifest is not None else []
    if changes:  # a bundle follows its days: one that no longer does FAILs, naming them
        result.checks.append(CheckResult("days", "the bundle's days are those published",
                                         errors=[f"{change}: bundle the month again" for change in changes]))
    return result


def _manifest_of(folder: str, storage_options: dict | None):
    """The manifest in ``folder``, or None when it is not one."""
    import fsspec

    from ..manifest import Manifest
    from ..storage import storage_options_for

    try:
        with fsspec.open(f"{folder.rstrip('/')}/manifest.json", "rb", **(storage_options_for(folder, storage_options) or {})) as f:
            return Manifest.from_json(f.read())
    except Exception:  # noqa: BLE001 - the checks above report a missing or bad manifest
        return None


def _skip() -> type:
    from .day import Skip

    return Skip


def _run(spec, ctx) -> CheckResult:
    check = CheckResult(spec.name, spec.title)
    try:
        spec.run(ctx, check)
    except _skip() as skip:
        check.skipped = str(skip)
    except VerifyError:
        raise
    except Exception as exc:  # noqa: BLE001 - a damaged file can make any reader fail: report it
        check.errors.append(f"could not complete ({describe_error(exc)[:300]})")
    if check.errors or check.skipped is not None:
        check.summary = ""  # it says what passed: nothing did
    return check
