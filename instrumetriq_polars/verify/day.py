"""What the checks share: the day under verification (``DayUnderCheck``), the ``Skip`` a check
raises when its inputs are unusable, the check registry type, and the wording helpers."""

from __future__ import annotations

import hashlib
import os
import random
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

import polars as pl
import pyarrow.parquet as pq

from ..folder import DATA_NAME, PartitionFolder, open_day_folder, split_day_folder
from ..errors import InstrumetriqError, VerifyError
from ..manifest import Manifest
from ..schema import CURRENT_VERSION, LAYOUTS, LINEAGE_COLUMNS, SEPARATOR, VERSIONS, fingerprint, schema_for
from ..storage import describe_error, storage_options_for
from .results import CheckResult

_CHUNK = 8 * 1024 * 1024
REEXPORT = "re-export the day, replacing it (force)"


class Skip(Exception):
    """Raised by a check whose inputs are unusable; the message says which and why."""


@dataclass(frozen=True)
class CheckSpec:
    name: str
    title: str
    run: Callable[["DayUnderCheck", CheckResult], None]


def registry(checks: list[CheckSpec]):
    """A decorator ``@check(name, title)`` that appends each check to ``checks``, in the order defined."""
    def check(name: str, title: str):
        def register(run):
            checks.append(CheckSpec(name, title, run))
            return run
        return register
    return check


class DayUnderCheck:
    """One day folder under verification, read through the read-only ``PartitionFolder`` view. The
    checks fill it in as they run, in order."""

    def __init__(self, day: date, location: str, storage_options: dict | None, sample_size: int, seed: int,
                 against_archive: str | None, archive_storage_options: dict | None, partition: str | None = None,
                 last_day: date | None = None) -> None:
        self.day = day
        self.last_day = last_day or day  # a bundle's partition spans the days of its month
        self.partition = partition  # an hour's or a month's folder (``YYYY-MM-DD/HH``, ``YYYY-MM``); None: a day
        self.dest = open_folder(location, day, storage_options, partition)
        self.fs = self.dest.fs
        self.sample_size = sample_size
        self.seed = seed
        self.against_archive = against_archive
        self.archive_storage_options = archive_storage_options
        self.present: dict[str, bool] = {}  # file name -> present and non-empty
        self.sizes: dict[str, int] = {}  # file name -> size in bytes
        self.manifest: Manifest | None = None  # set when manifest.json is usable
        self.manifest_data: dict | None = None  # its raw JSON object (stored is_partial etc.)
        self.layout: str | None = None
        self.layout_source: str | None = None  # "manifest" or "inferred from the columns"
        self.version: int = CURRENT_VERSION  # the export format version: the manifest's, else the columns'
        self.sha256: str | None = None
        self.local_data: str | None = None  # a local path of data.parquet's bytes
        self.parquet: pq.ParquetFile | None = None  # footer readable
        self.schema: dict[str, pl.DataType] | None = None
        self.flat: pl.DataFrame | None = None  # every row, struct columns unnested (both layouts)
        self._temp: str | None = None
        self._sample: list[int] | None = None

    @property
    def url(self) -> str:
        return self.dest.url

    @property
    def name(self) -> str:
        """The partition in messages: the day, ``YYYY-MM-DDTHH`` for an hour, ``YYYY-MM`` for a bundle."""
        return (self.partition or self.day.isoformat()).replace("/", "T")

    # prerequisites: each raises Skip naming the check that reported the problem
    def need_manifest(self) -> Manifest:
        if self.manifest is None:
            raise Skip("manifest.json is missing or unusable (see check 'manifest')")
        return self.manifest

    def need_footer(self) -> pq.ParquetFile:
        if self.parquet is None or self.schema is None:
            raise Skip("data.parquet is missing or its footer is unreadable (see checks 'files' and 'parquet')")
        return self.parquet

    def need_rows(self) -> pl.DataFrame:
        if self.flat is None:
            raise Skip("data.parquet rows could not be read (see check 'parquet')")
        return self.flat

    def need_columns(self, names) -> pl.DataFrame:
        """The rows, when each of ``names`` (a column, or a block of ``block__*`` columns) is there."""
        flat = self.need_rows()
        absent = [dotted(name) for name in names if not block_columns(flat.columns, name)]
        if absent:
            raise Skip(f"{', '.join(absent)} {'is' if len(absent) == 1 else 'are'} missing from data.parquet (see check 'schema')")
        return flat

    def fetch_data(self) -> str:
        """Stream-hash data.parquet; return a local path of its bytes (remote files are copied once)."""
        if self.local_data is not None:
            return self.local_data
        if not self.present.get(DATA_NAME):
            raise Skip("data.parquet is missing or empty (see check 'files')")
        sha = hashlib.sha256()
        if self.dest.is_local:
            with self.fs.open(self.dest.data_path, "rb") as src:
                while chunk := src.read(_CHUNK):
                    sha.update(chunk)
            path = self.dest.data_path
        else:
            handle, path = tempfile.mkstemp(prefix="verify-", suffix=".parquet")
            self._temp = path
            with os.fdopen(handle, "wb") as out, self.fs.open(self.dest.data_path, "rb") as src:
                while chunk := src.read(_CHUNK):
                    sha.update(chunk)
                    out.write(chunk)
        self.sha256 = sha.hexdigest()
        self.local_data = path
        return path

    def sample_indices(self) -> list[int]:
        """The seeded sample of row positions (the same rows for the content and archive checks)."""
        if self._sample is None:
            rows = self.need_rows().height
            self._sample = sorted(random.Random(self.seed).sample(range(rows), min(rows, self.sample_size)))
        return self._sample

    def previous_nulls(self, names: list[str], look_back: int = 7) -> tuple[date, dict[str, bool]] | None:
        """The latest published day before this one under the same root (among the ``look_back``
        latest day folders before it), and for each of ``names`` (flat names) that its data has,
        whether it is NULL in every row there. Reads those columns only (the footer and their
        chunks). None when there is no such day, it has no rows, or it cannot be read: nothing to
        compare with is not a finding of this day's."""
        try:
            listed = self.fs.ls(self.dest.root, detail=False)
            days = sorted((d for d in (split_day_folder(p)[1] for p in listed) if d is not None and d < self.day), reverse=True)
            for day in days[:look_back]:
                folder = PartitionFolder(self.dest.root, day, fs=self.fs)
                if folder.exists(folder.manifest_path):
                    return day, _all_null(folder, names)
        except Exception:  # noqa: BLE001 - damaged, unreadable or empty: no comparison
            return None
        return None

    def close(self) -> None:
        if self.parquet is not None:
            self.parquet.close()
        if self._temp:
            try:
                os.remove(self._temp)
            except OSError:
                pass


def open_folder(location: str, day: date, storage_options: dict | None, partition: str | None = None) -> PartitionFolder:
    """The day's folder, read only (``folder.open_day_folder``), or a VerifyError. With
    ``partition``: that folder under the dataset root ``location``, or ``location`` itself when it
    ends with the partition's path."""
    try:
        if partition is not None:
            root = str(location).rstrip("/")
            root = root[: -len(partition)].rstrip("/") or "/" if root.endswith(partition) else root
            return PartitionFolder(root, day, storage_options_for(location, storage_options), partition=partition)
        return open_day_folder(location, day, storage_options)
    except ValueError as exc:
        raise VerifyError(str(exc)) from None
    except InstrumetriqError:
        raise
    except Exception as exc:  # noqa: BLE001 - unknown protocol, missing driver, credentials, network
        raise VerifyError(f"cannot open {location}: {describe_error(exc)}") from None


# -- columns ------------------------------------------------------------------------------------
def _all_null(folder: PartitionFolder, names: list[str]) -> dict[str, bool]:
    """For each of ``names`` (flat names) present in ``folder``'s data.parquet: NULL in every row.
    Only the columns holding them are read (a nested file's whole struct column)."""
    with folder.fs.open(folder.data_path, "rb") as raw:
        parquet = pq.ParquetFile(raw)
        top = set(parquet.schema_arrow.names)
        wanted = sorted({n if n in top else n.split(SEPARATOR)[0] for n in names} & top)
        frame = flatten(pl.from_arrow(parquet.read(columns=wanted)))
    if not frame.height:
        raise ValueError(f"{folder.url} has no rows")
    counts = frame.null_count().row(0, named=True)
    return {n: counts[n] == frame.height for n in names if n in counts}


def leaf_columns(schema: dict[str, pl.DataType], prefix: str = ""):
    """(flat name, dtype) of every non-struct column, struct fields unnested (flat and nested alike)."""
    for name, dtype in schema.items():
        if isinstance(dtype, pl.Struct):
            yield from leaf_columns({f.name: f.dtype for f in dtype.fields}, prefix + name + SEPARATOR)
        else:
            yield prefix + name, dtype


def flatten(frame: pl.DataFrame) -> pl.DataFrame:
    """Struct columns unnested into ``a__b`` columns: the flat view the row checks read."""
    exprs = []

    def walk(expr: pl.Expr, name: str, dtype: pl.DataType) -> None:
        if isinstance(dtype, pl.Struct):
            for f in dtype.fields:
                walk(expr.struct.field(f.name), name + SEPARATOR + f.name, f.dtype)
        else:
            exprs.append(expr.alias(name))

    for name, dtype in frame.schema.items():
        walk(pl.col(name), name, dtype)
    return frame.select(exprs)


def infer_layout(schema: dict[str, pl.DataType]) -> tuple[str, int]:
    """(layout, export version) of a file read without its manifest: the declared schema it
    matches, else a guess from its columns (structs: nested; lineage columns: version 2 on)."""
    for version in VERSIONS:
        for layout in LAYOUTS:
            if fingerprint(schema) == fingerprint(schema_for(layout, version)):
                return layout, version
    layout = "nested" if any(isinstance(dtype, pl.Struct) for dtype in schema.values()) else "flat"
    return layout, (CURRENT_VERSION if set(LINEAGE_COLUMNS) & set(schema) else 1)


def in_block(column: str, block: str) -> bool:
    """``column`` is ``block`` itself or one of its ``block__*`` columns."""
    return column == block or column.startswith(block + SEPARATOR)


def block_columns(columns, block: str) -> list[str]:
    return [c for c in columns if in_block(c, block)]


# -- wording ------------------------------------------------------------------------------------
class Tally:
    """Row problems of one kind: counted, with the first few rows as examples."""

    def __init__(self, sampled: int) -> None:
        self.sampled = sampled
        self.found: dict[str, list[tuple[int, Any]]] = {}

    def add(self, problem: str, row: int, value) -> None:
        self.found.setdefault(problem, []).append((row, value))

    def messages(self) -> list[str]:
        out = []
        for problem, hits in self.found.items():
            examples = ", ".join(f"row {row}: {short(value)}" for row, value in hits[:3])
            out.append(f"{problem} in {len(hits)} of {self.sampled} sampled rows ({examples})")
        return out


def hours_text(keys) -> str:
    keys = sorted(keys)
    return ", ".join(keys) if keys else "none"


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def dotted(name: str) -> str:
    return name.replace(SEPARATOR, ".")


def some(items: list[str], limit: int = 8, sep: str = ", ") -> str:
    shown = sep.join(items[:limit])
    return shown + (f" (+{len(items) - limit} more)" if len(items) > limit else "")


def short(value, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
