"""The tiers: thin layers of guards, sources and manifest fields over the read and write stages.

- ``daily`` (Tier 3): an archive day folder -> ``ROOT/YYYY-MM-DD/``;
- ``hourly`` (Tier 2): one archive hour file -> ``ROOT/YYYY-MM-DD/HH/``;
- ``monthly``: a month's published days -> one bundle ``ROOT/YYYY-MM/``.

This module holds what they share and what the CLI needs to describe them (default roots, the
archive's location, the result of an export), and imports nothing heavy: ``--help`` reads it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..manifest import Manifest

DEFAULT_OUT_DIR = "output/tier3_daily"
DEFAULT_HOURLY_OUT = "output/tier2_hourly"
DEFAULT_MONTHLY_DIR = "output/tier3_monthly"
DEFAULT_ARCHIVE = "/srv/instrumetriq/data/archive"
ARCHIVE_ENV = "INSTRUMETRIQ_ARCHIVE"
#: R2 keys of the hourly dataset: s3://BUCKET/tier2/hourly/YYYY-MM-DD/HH/
R2_HOURLY_PREFIX = "tier2/hourly"
#: R2 keys of the bundles: s3://BUCKET/tier3/monthly/YYYY-MM/
R2_MONTHLY_PREFIX = "tier3/monthly"


def default_archive() -> str:
    return os.environ.get(ARCHIVE_ENV) or DEFAULT_ARCHIVE


def hourly_root(bucket: str) -> str:
    return f"s3://{bucket}/{R2_HOURLY_PREFIX}"


def monthly_root(bucket: str) -> str:
    return f"s3://{bucket}/{R2_MONTHLY_PREFIX}"


@dataclass
class ExportResult:
    """The outcome of exporting one day."""

    manifest: Manifest
    location: str  # the day folder's URL
    status: str  # "published" | "completed" (replaced a partial export) | "already published"
    seconds: float
    hours: list = field(default_factory=list)
    #: one line per name in the archive day folder that was not read, and why (``ignored_files``)
    warnings: list[str] = field(default_factory=list)
    #: True when the day was found published from the same archive files and not re-read (``unchanged_publication``)
    skipped_read: bool = False

    def summary(self) -> str:
        m = self.manifest
        size_mb = m.parquet_size_bytes / 1e6
        partial = " PARTIAL" if m.is_partial else ""
        how = ", archive unchanged, not re-read" if self.skipped_read else ""
        read = len(m.source_files)
        span = (f"{read}/{read + len(m.missing_days)} days" if m.partition == "month" else f"{m.hours_found}/{m.hours_expected} hours")
        return (
            f"{m.partition_path.replace('/', 'T')}: {self.status}{partial}: {m.row_count} rows, {span}, "
            f"{size_mb:.1f} MB, {self.seconds:.1f} s{how} -> {self.location}"
        )



__all__ = ["ARCHIVE_ENV", "DEFAULT_ARCHIVE", "DEFAULT_HOURLY_OUT", "DEFAULT_MONTHLY_DIR", "DEFAULT_OUT_DIR", "ExportResult",
           "R2_HOURLY_PREFIX", "R2_MONTHLY_PREFIX", "default_archive", "hourly_root", "monthly_root"]
