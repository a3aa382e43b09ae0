"""instrumetriq_polars: the Instrumetriq archive -> daily Tier 3 Parquet datasets."""

__version__ = "0.1.0"

from .errors import (  # noqa: E402
    ArchiveError,
    BadInputError,
    ConfigError,
    InstrumetriqError,
    PublishError,
    VerifyError,
)
from .export import ExportResult, HourReport, export_day, export_days, upload_day  # noqa: E402
from .manifest import Manifest  # noqa: E402
from .schema import FIELDS, FLAT_SCHEMA, NESTED_SCHEMA, describe, fingerprint, schema_for  # noqa: E402
from .verify import VerifyResult, verify_day  # noqa: E402

__all__ = [
    "ArchiveError", "BadInputError", "ConfigError", "ExportResult", "FIELDS", "FLAT_SCHEMA",
    "HourReport", "InstrumetriqError", "Manifest", "NESTED_SCHEMA", "PublishError", "VerifyError",
    "__version__", "describe", "export_day", "export_days", "fingerprint", "schema_for",
    "upload_day", "VerifyResult", "verify_day",
]
