"""instrumetriq_polars: the Instrumetriq archive -> daily Tier 3 Parquet datasets."""

from .errors import (
    ArchiveError,
    BadInputError,
    ConfigError,
    ConflictError,
    DamagedDayError,
    DatasetError,
    InstrumetriqError,
    Interrupted,
    LockHeldError,
    ManifestChangedError,
    ManifestError,
    PublishError,
    StorageError,
    VerifyError,
)
from .dataset import DatasetWarning, DayEntry, list_days, list_partitions, scan
from .export import ExportResult, HourReport, export_day, export_days, upload_day
from .hourly import export_hour
from .manifest import Manifest
from .schema import FIELDS, FLAT_SCHEMA, NESTED_SCHEMA, describe, fingerprint, schema_for
from .verify import VerifyResult, verify_day
from .version import __version__

__all__ = [
    "ArchiveError", "BadInputError", "ConfigError", "ConflictError", "DamagedDayError", "DatasetError",
    "DatasetWarning", "DayEntry", "ExportResult", "FIELDS", "FLAT_SCHEMA", "HourReport", "InstrumetriqError",
    "Interrupted", "LockHeldError", "Manifest", "ManifestChangedError", "ManifestError", "NESTED_SCHEMA",
    "PublishError", "StorageError", "VerifyError", "__version__", "describe", "export_day", "export_days", "export_hour",
    "fingerprint", "list_days", "list_partitions", "scan", "schema_for", "upload_day", "VerifyResult", "verify_day",
]
