"""Roots of every tier built from one synthetic archive: the day, hourly and monthly datasets
that tests/test_tiers_read.py and tests/test_tiers_status.py read (conftest's ``tiers``)."""

from __future__ import annotations

import json
import shutil
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

DAY = date(2026, 1, 15)
AFTER = datetime(2026, 1, 16, 12, tzinfo=timezone.utc)  # every hour of DAY is complete by then
HOURS = ("03", "04", "05")


def put_month(root: Path, source: str, target: str) -> None:
    """A copy of the bundle ``source`` as the bundle ``target`` (its manifest names ``target``)."""
    shutil.copytree(root / source, root / target)
    path = root / target / "manifest.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "date_utc": target}))


def build_tiers(base: Path) -> Path:
    """An archive day; its hours 03-05 exported to an hourly root; Jan 14-15 exported to a daily
    root and bundled into a monthly root (January, partial), plus a copy of it as March."""
    from instrumetriq_polars import export_day, export_hour
    from instrumetriq_polars.synthetic import write_archive_day
    from instrumetriq_polars.tiers.monthly import bundle_month

    for day in (DAY - timedelta(days=1), DAY):
        write_archive_day(base / "archive", day, entries_per_hour=1, seed=day.day)
        export_day(day, str(base / "archive"), str(base / "daily"))
    for hh in HOURS:
        export_hour(f"2026-01-15T{hh}", str(base / "archive"), str(base / "hourly"), now=AFTER)
    bundle_month("2026-01", str(base / "daily"), str(base / "monthly"), today=date(2026, 2, 10))
    put_month(base / "monthly", "2026-01", "2026-03")
    return base
