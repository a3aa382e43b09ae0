"""Days as export version 1 wrote them, made from days this exporter publishes (version 2): the
verifier and the read API must keep reading the days published before version 2."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from instrumetriq_polars.schema import LEGACY_FINGERPRINTS, LINEAGE_COLUMNS, fingerprint, schema_for


def as_version_1(folder: Path, legacy_fingerprint: bool = False) -> None:
    """Rewrite the published day ``folder`` the way export version 1 wrote it: no lineage columns,
    every timestamp as ISO 8601 text (pyarrow's spelling, ``2026-01-15 03:03:38.812648Z``: an
    instant to both versions' rule), ``missing_hours`` as numbers, the version 1 fingerprint (the
    declared one, or with ``legacy_fingerprint`` the repr-based one its first releases wrote)."""
    manifest = json.loads((folder / "manifest.json").read_text())
    layout = manifest["layout"]
    target = pl.DataFrame(schema=schema_for(layout, 1)).to_arrow().schema
    table = pq.read_table(folder / "data.parquet").drop_columns(list(LINEAGE_COLUMNS)).cast(target)
    pq.write_table(table, folder / "data.parquet", compression="zstd")
    data = (folder / "data.parquet").read_bytes()
    manifest.update(
        export_version="tier3-polars-1",
        schema_fingerprint=LEGACY_FINGERPRINTS[layout] if legacy_fingerprint else fingerprint(schema_for(layout, 1)),
        column_count=len(target), missing_hours=[int(hour) for hour in manifest["missing_hours"]],
        parquet_sha256=hashlib.sha256(data).hexdigest(), parquet_size_bytes=len(data),
    )
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2))
