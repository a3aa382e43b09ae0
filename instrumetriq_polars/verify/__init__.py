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

from ..archive import parse_date
from ..dayfolder import split_day_folder
from ..errors import VerifyError
from ..storage import describe_error
from . import files, rows
from .crosscheck import ARCHIVE_CHECK
from .day import CheckSpec, DayUnderCheck, Skip
from .report import render_report
from .results import FAIL, PASS, SKIP, WARN, CheckResult, VerifyResult, unreadable_result

DEFAULT_SAMPLE_SIZE = 200
DEFAULT_SEED = 0

#: The checks, in the order they run (later checks use what earlier ones found).
CHECKS: list[CheckSpec] = files.CHECKS + rows.CHECKS

__all__ = [
    "ARCHIVE_CHECK", "CHECKS", "DEFAULT_SAMPLE_SIZE", "DEFAULT_SEED", "FAIL", "PASS", "SKIP", "WARN",
    "CheckResult", "CheckSpec", "VerifyResult", "render_report", "split_day_folder", "unreadable_result", "verify_day", "verify_hour", "verify_month",
]


def verify_day(
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
    """Verify the published day ``location/YYYY-MM-DD`` (``location`` may also be the day folder).

    Returns a VerifyResult whatever the day holds; raises VerifyError only when the location cannot
    be read at all (unknown protocol, credentials, permissions) or is the day folder of another date.
    """
    started = time.perf_counter()
    day = parse_date(day)
    if sample_size < 1:
        raise ValueError(f"sample_size must be at least 1, not {sample_size}")
    ctx = DayUnderCheck(day, location, storage_options, sample_size, seed, against_archive, archive_storage_options,
                        partition, last_day)
    specs = CHECKS + ([ARCHIVE_CHECK] if against_archive is not None else [])
    try:
        checks = [_run(spec, ctx) for spec in specs]
    finally:
        ctx.close()
    return VerifyResult(day, ctx.url, checks, ctx.layout, time.perf_counter() - started, label=partition)


def verify_hour(hour, location: str, **options) -> VerifyResult:
    """Verify the published hour ``location/YYYY-MM-DD/HH`` (Tier 2; ``location`` may be the hour
    folder): every check of a day, the archive cross-check reading that hour file only."""
    from ..hourly import hour_partition, parse_hour

    start = parse_hour(hour)
    return verify_day(start.date(), location, partition=hour_partition(start), **options)


def verify_month(month, location: str, **options) -> VerifyResult:
    """Verify the published bundle ``location/YYYY-MM`` (``location`` may be its folder): every
    check of a day; rows are dated within the month; no archive cross-check (verify its days)."""
    import calendar

    from ..bundle import parse_month

    first = parse_month(month)
    last = first.replace(day=calendar.monthrange(first.year, first.month)[1])
    return verify_day(first, location, partition=f"{first:%Y-%m}", last_day=last, **options)


def _run(spec: CheckSpec, ctx: DayUnderCheck) -> CheckResult:
    check = CheckResult(spec.name, spec.title)
    try:
        spec.run(ctx, check)
    except Skip as skip:
        check.skipped = str(skip)
    except VerifyError:
        raise
    except Exception as exc:  # noqa: BLE001 - a damaged file can make any reader fail: report it
        check.errors.append(f"could not complete ({describe_error(exc)[:300]})")
    if check.errors or check.skipped is not None:
        check.summary = ""  # it says what passed: nothing did
    return check
