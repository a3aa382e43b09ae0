"""Checks shared by the reliability and fuzz tests: small real-shaped entries, what a published
day must agree with, and what the export's stderr may hold."""

from __future__ import annotations

import gzip
import hashlib
import json
import random
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson
import pyarrow.parquet as pq

from instrumetriq_polars.decode import deep_json
from instrumetriq_polars.synthetic import make_entry

#: Every line the export CLI writes to stderr: progress, a warning or an error, each one line.
STDERR_LINE = re.compile(
    r"exporting \d{4}-\d{2}-\d{2} from .+"
    r"|  \d{8}/\d{2}\.jsonl\.gz: \d+ rows from \d+ lines, \d+\.\d MB gz, \d+\.\d\d s"
    r"|warning: \S.*"
    r"|error: \d{4}-\d{2}-\d{2}: \S.*"
    r"|error: (no archive folder for|incomplete day|the day|day) \d{4}-\d{2}-\d{2}\b.*"  # an error naming its day itself
)


def small_entries(count: int, seed: int, samples: int = 3, hour: int = 0) -> list[dict]:
    """``count`` entries of the project's generator with ``samples`` spot_prices each (real ones
    have ~750; a few keep the shape and make an export fast)."""
    rng = random.Random(seed)
    start = datetime(2026, 1, 15, hour, tzinfo=timezone.utc)
    entries = [make_entry(rng, start + timedelta(minutes=7 * i)) for i in range(count)]
    for entry in entries:
        entry["spot_prices"] = entry["spot_prices"][:samples]
    return entries


def write_hour(path: Path, lines: list[bytes]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(b"".join(line + b"\n" for line in lines), mtime=0))


def dumps(entry: dict) -> bytes:
    """As the collector writes a line: Python's json (NaN as ``NaN``, lone surrogates escaped)."""
    return json.dumps(entry).encode()


def assert_stderr_lines(stderr: str) -> None:
    assert "Traceback" not in stderr
    for line in stderr.splitlines():
        assert STDERR_LINE.fullmatch(line), f"not a one-line message: {line!r}"


def check_published(day: Path) -> tuple[dict, pq.ParquetFile]:
    """The published day agrees with itself: the manifest is strict UTF-8 JSON (orjson refuses
    lone surrogates), and describes the data file (sha256, size, rows, rows per hour as its
    ``archive_hour`` column counts them, hours as "HH" like the keys of ``rows_by_hour``);
    every ``_extra`` is JSON (read as docs/dataset.md says: Python's json keeps a lone surrogate's
    ``\\ud800`` escape, which strict readers refuse). Returns the manifest and the data file."""
    raw = (day / "manifest.json").read_bytes()
    manifest = orjson.loads(raw)
    assert manifest == json.loads(raw.decode("utf-8"))
    data = (day / "data.parquet").read_bytes()
    assert manifest["parquet_sha256"] == hashlib.sha256(data).hexdigest()
    assert manifest["parquet_size_bytes"] == len(data)
    parquet = pq.ParquetFile(day / "data.parquet")
    rows = parquet.metadata.num_rows
    assert manifest["row_count"] == manifest["lines_exported"] == rows == sum(manifest["rows_by_hour"].values())
    sources = manifest["source_files"]
    assert [s["hour"] for s in sources] == sorted({s["hour"] for s in sources})  # one file per hour
    assert {f"{s['hour']:02d}": s["rows"] for s in sources} == manifest["rows_by_hour"]
    assert manifest["hours_found"] == len(sources) == 24 - len(manifest["missing_hours"])
    assert all(type(h) is str for h in manifest["missing_hours"]) and not set(manifest["missing_hours"]) & manifest["rows_by_hour"].keys()
    hours = parquet.read(columns=["archive_hour"]).column("archive_hour").value_counts().to_pylist()
    assert {f"{c['values']:02d}": c["counts"] for c in hours} == {h: n for h, n in manifest["rows_by_hour"].items() if n}
    assert manifest["bad_line_count"] == sum(s["bad_lines"] for s in sources) == len(manifest["bad_lines"])
    assert manifest["lines_read"] == sum(s["lines_read"] for s in sources)
    assert manifest["is_partial"] == bool(manifest["missing_hours"] or manifest["bad_line_count"] or not manifest["day_over_at_export"])
    with deep_json():  # _extra may nest as deep as orjson reads a line
        for extra in parquet.read(columns=["_extra"]).column("_extra").to_pylist():
            if extra is not None:
                assert type(json.loads(extra)) is dict
    return manifest, parquet
