"""instrumetriq_polars: the Instrumetriq archive -> Tier 3 daily, Tier 2 hourly and monthly Parquet datasets.

The public API is imported on first use (module ``__getattr__``): ``import instrumetriq_polars``
and the readers (``scan``, ``status``) do not load the export's modules (tests/test_layers.py).
"""

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
from .version import __version__

#: public name -> the module that defines it (imported when the name is first used)
_LAZY = {
    "DatasetWarning": "dataset", "DayEntry": "dataset", "PartitionEntry": "dataset", "list_days": "dataset",
    "list_partitions": "dataset", "scan": "dataset",
    "ExportResult": "tiers", "export_day": "tiers.daily", "export_hour": "tiers.hourly", "bundle_month": "tiers.monthly",
    "export_days": "run", "upload_day": "write.flow", "HourReport": "source",
    "Manifest": "manifest",
    "FIELDS": "schema", "FLAT_SCHEMA": "schema", "NESTED_SCHEMA": "schema", "describe": "schema", "fingerprint": "schema",
    "schema_for": "schema",
    "VerifyResult": "verify", "verify_day": "verify", "verify_hour": "verify", "verify_month": "verify",
}


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # once imported, an ordinary attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "ArchiveError", "BadInputError", "ConfigError", "ConflictError", "DamagedDayError", "DatasetError",
    "DatasetWarning", "DayEntry", "ExportResult", "FIELDS", "FLAT_SCHEMA", "HourReport", "InstrumetriqError",
    "Interrupted", "LockHeldError", "Manifest", "ManifestChangedError", "ManifestError", "NESTED_SCHEMA",
    "PartitionEntry", "PublishError", "StorageError", "VerifyError", "__version__", "bundle_month", "describe", "export_day",
    "export_days", "export_hour", "fingerprint", "list_days", "list_partitions", "scan", "schema_for", "upload_day",
    "VerifyResult", "verify_day", "verify_hour", "verify_month",
]
