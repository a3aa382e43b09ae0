"""docs/reading.md, the parts about the root, pruning by day, remote reading, the nested layout and
the export version; and the read API's policy for partial partitions and its one vocabulary of
partition states (shared by ``scan``, ``list_days``, ``status`` and ``verify``).

Each recipe is run as written (parsed out of docs/reading.md by its first line) on a root like a
real one: a partial day (2026-01-13, 12 of 24 hours, exported with ``allow_incomplete``), two
published days (2026-01-14, 2026-01-15), a day with data and no manifest (2026-01-16), a verify
report and a killed export's temporary file. Claims about which files a reader opens are checked
the hard way: the files it must not open are replaced by bytes that are not Parquet, so a reader
that opens one fails; DuckDB's own count (``EXPLAIN ANALYZE``: "Total Files Read") is checked too.
"""

from __future__ import annotations

import os
import re
import shutil
import warnings
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

import instrumetriq_polars as iq
from instrumetriq_polars import DatasetWarning, export_day
from instrumetriq_polars.errors import DatasetError
from instrumetriq_polars.manifest import EXPORT_VERSION
from instrumetriq_polars.synthetic import write_archive_day

from .conftest import ROOT
from .support.recipes import recipes, run_recipe

PARTIAL, PUBLISHED, UNPUBLISHED = "2026-01-13", ("2026-01-14", "2026-01-15"), "2026-01-16"
ALL_DAYS = (PARTIAL, *PUBLISHED, UNPUBLISHED)
DAILY = "output/tier3_daily"
NESTED = "output/tier3_daily_nested"
TAGS = "twitter_sentiment_windows__last_cycle__tag_counts"
NOT_PARQUET = b"this is not a Parquet file: a reader that opens it fails"




def build_root(base: Path) -> Path:
    """``base/output/tier3_daily`` as described in the module docstring, and one nested day in
    ``base/output/tier3_daily_nested``."""
    root = base / DAILY
    for seed, day in enumerate(ALL_DAYS):
        hours = range(12) if day == PARTIAL else range(24)
        write_archive_day(base / "archive", date.fromisoformat(day), entries_per_hour=2, seed=seed, hours=hours)
        export_day(day, str(base / "archive"), str(root), allow_incomplete=day == PARTIAL)
    export_day(PUBLISHED[0], str(base / "archive"), str(base / NESTED), layout="nested")
    (root / UNPUBLISHED / "manifest.json").unlink()  # its export was killed while it published
    (root / "verify_report.md").write_text("# verify report\n")
    (root / PUBLISHED[1] / ".data.parquet.tmp-4242-0a1b").write_bytes(b"PAR1 cut short")
    return root


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("recipes")
    build_root(base)
    return base


def rows_of(base: Path, days) -> dict[str, int]:
    return {day: pq.read_metadata(base / DAILY / day / "data.parquet").num_rows for day in days}


@pytest.fixture
def poisoned(base, tmp_path) -> Path:
    """A copy of the root whose days other than 2026-01-14 and 2026-01-15 hold data.parquet files
    that are not Parquet (the first day of the glob, 2026-01-13, stays readable: some readers take
    the schema from the first file of a glob). A reader that opens 2026-01-16 fails."""
    copy = tmp_path / "poisoned"
    shutil.copytree(base / "output", copy / "output")
    (copy / DAILY / UNPUBLISHED / "data.parquet").write_bytes(NOT_PARQUET)
    return copy


# --- what each reader does with the root, the glob and the file list --------------------------

ROOT_DUCKDB = "# DuckDB: the root itself reads every data.parquet under it, published or not"
ROOT_PYARROW = "# pyarrow: the root itself, skipping the files that are not Parquet"
ROOT_SPARK = "# Spark: the root itself, Parquet files only"


def test_duckdb_given_the_root_reads_every_data_file_unpublished_ones_too(base):
    days = run_recipe(ROOT_DUCKDB, base)["days"]
    assert [(str(day), rows) for day, rows in days] == sorted(rows_of(base, ALL_DAYS).items())


def test_pyarrow_given_the_root_skips_what_is_not_parquet(base):
    result = run_recipe(ROOT_PYARROW, base)
    assert result["files"] == [f"{DAILY}/{day}/data.parquet" for day in ALL_DAYS]  # the unpublished day too
    assert result["rows"] == sum(rows_of(base, ALL_DAYS).values())
    with pytest.raises(Exception, match="manifest.json|verify_report.md"):  # without the option
        ds.dataset(str(base / DAILY), format="parquet").count_rows()


@pytest.mark.parametrize("reader", ["polars", "pandas", "pyarrow"])
def test_other_readers_given_the_root_fail_on_a_file_that_is_not_parquet(base, reader):
    import pandas as pd

    root = str(base / DAILY)
    read = {"polars": lambda: pl.scan_parquet(root).collect(), "pandas": lambda: pd.read_parquet(root),
            "pyarrow": lambda: pq.read_table(root)}[reader]
    with pytest.raises(Exception, match=r"manifest\.json|verify_report\.md"):
        read()


def test_a_glob_reads_unpublished_days_and_list_days_does_not(base):
    glob_days = pl.scan_parquet(str(base / DAILY / "*" / "data.parquet")).select(pl.col("archive_day").unique().sort()).collect()
    assert [str(d) for d in glob_days["archive_day"]] == list(ALL_DAYS)
    listed = iq.list_days(str(base / DAILY), PARTIAL, UNPUBLISHED, partial="include")
    assert [str(e.day) for e in listed if e.published] == [PARTIAL, *PUBLISHED]


# --- reading only the days a query needs -------------------------------------------------------

PRUNE_DUCKDB = "# DuckDB: only the days you need (filename=true; a filter on the file name skips the other days' files)"
PRUNE_POLARS = "# Polars: only the days you need (scan lists the range; no other day's file is opened)"
PRUNE_PANDAS = "# pandas: only the days you need (a list of their files)"
PRUNE_PYARROW = "# pyarrow: only the days you need (the folder name as a partition field)"
PRUNE_SPARK = "# Spark: only the days you need (a glob naming them)"


def duckdb_files_read(sql: str, cwd: Path) -> int:
    before = os.getcwd()
    os.chdir(cwd)
    try:
        plan = duckdb.sql("EXPLAIN ANALYZE " + sql).fetchall()[0][1]
    finally:
        os.chdir(before)
    return sum(int(n) for n in re.findall(r"Total Files Read: (\d+)", plan))


def test_duckdb_opens_every_file_of_a_glob_for_a_filter_on_archive_day(poisoned):
    """The claim the pruning recipe answers: statistics skip row groups, not files."""
    sql = f"SELECT count(*) FROM read_parquet('{DAILY}/*/data.parquet') WHERE archive_day = DATE '2026-01-14'"
    with pytest.raises(duckdb.Error, match="2026-01-16"):
        duckdb_files_read(sql, poisoned)


def test_duckdb_prunes_by_day_with_filename(base, poisoned):
    result = run_recipe(PRUNE_DUCKDB, poisoned)
    assert [(str(day), rows) for day, rows in result["rows"]] == sorted(rows_of(base, PUBLISHED).items())
    sql = re.search(r'duckdb\.sql\(r?"""(.*?)"""\)', recipes()[PRUNE_DUCKDB], flags=re.S).group(1)
    assert duckdb_files_read(sql, poisoned) == len(PUBLISHED)


def test_polars_scan_opens_only_the_days_of_its_range(base, poisoned):
    result = run_recipe(PRUNE_POLARS, poisoned)
    assert result["df"].height == sum(rows_of(base, PUBLISHED).values())
    assert [str(w.message) for w in result["_warnings"]] == []
    with pytest.raises(Exception):  # a glob with a filter on archive_day opens every file
        pl.scan_parquet(str(poisoned / DAILY / "*" / "data.parquet")).filter(pl.col("archive_day") == date(2026, 1, 14)).collect()


def test_pandas_reads_only_the_listed_days(base, poisoned):
    result = run_recipe(PRUNE_PANDAS, poisoned)
    assert len(result["df"]) == sum(rows_of(base, PUBLISHED).values())


def test_pyarrow_partition_field_skips_other_days(base, poisoned):
    result = run_recipe(PRUNE_PYARROW, poisoned)
    assert result["table"].num_rows == sum(rows_of(base, PUBLISHED).values())
    assert sorted({str(d) for d in result["table"].column("archive_day").to_pylist()}) == list(PUBLISHED)


# --- which export wrote a row, and partial days, from a glob reader ----------------------------

VERSION_DUCKDB = "# DuckDB: each day's export version and completeness, from the manifests (published days only)"


def test_export_version_and_partial_days_reach_a_glob_reader(base):
    per_day = run_recipe(VERSION_DUCKDB, base)["per_day"]
    counts = rows_of(base, ALL_DAYS)
    assert [(str(day), version, partial, rows) for day, version, partial, rows in per_day] == [
        (PARTIAL, EXPORT_VERSION, True, counts[PARTIAL]),
        *[(day, EXPORT_VERSION, False, counts[day]) for day in PUBLISHED],
    ]  # the unpublished day has no manifest: not in the join


# --- the nested layout -------------------------------------------------------------------------

NESTED_RECIPE = "# The nested layout: struct fields (Polars .struct.field, DuckDB a dot) and a MAP lookup"


def test_nested_layout_recipe(base):
    result = run_recipe(NESTED_RECIPE, base)
    flat = pq.read_table(base / DAILY / PUBLISHED[0] / "data.parquet", columns=["symbol", "meta__added_ts", TAGS])
    btc = [dict(p).get("btc") if p is not None else None for p in flat.column(TAGS).to_pylist()]
    assert result["df"]["symbol"].to_list() == flat.column("symbol").to_pylist()
    assert result["df"]["added_ts"].to_list() == flat.column("meta__added_ts").to_pylist()
    assert result["df"]["btc_tags"].to_list() == btc
    assert [row[2] for row in result["rows"]] == btc and any(v is not None for v in btc)


# --- remote: R2 credentials, tested on moto's S3 server ----------------------------------------

REMOTE_POLARS = "# Polars on R2: a glob, with the R2 credentials"
REMOTE_DUCKDB = "# DuckDB on R2: the bucket through fsspec, pruned by day"


@pytest.fixture
def bucket_root(base, s3, monkeypatch):
    """The root's days uploaded to the bucket under tier3/daily/ (what ``export --upload`` makes),
    the unpublished day's data too; R2_BUCKET set for the recipes."""
    from instrumetriq_polars.storage import DEFAULT_BUCKET, R2_PREFIX

    for path in sorted((base / DAILY).glob("*/*")):
        if path.name in ("data.parquet", "manifest.json"):
            s3.put(str(path), f"{DEFAULT_BUCKET}/{R2_PREFIX}/{path.parent.name}/{path.name}")
    monkeypatch.setenv("R2_BUCKET", DEFAULT_BUCKET)
    return s3


def test_polars_remote_recipe(base, bucket_root):
    result = run_recipe(REMOTE_POLARS, base)
    assert result["rows"] == sum(rows_of(base, PUBLISHED).values())


def test_duckdb_remote_recipe_reads_only_the_days_it_needs(base, bucket_root, server_requests):
    result = run_recipe(REMOTE_DUCKDB, base)
    assert [(str(day), rows) for day, rows in result["rows"]] == sorted(rows_of(base, PUBLISHED).items())
    fetched = {re.search(r"/(\d{4}-\d{2}-\d{2})/data\.parquet", r).group(1) for r in server_requests
               if r.startswith("GET ") and "/data.parquet" in r}
    assert UNPUBLISHED not in fetched and set(PUBLISHED) <= fetched


# --- Spark (a JVM: slow) -----------------------------------------------------------------------

def spark_or_skip():
    try:
        import pyspark  # noqa: F401
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("pyspark is not installed: CI must run the Spark recipes")
        pytest.skip("pyspark is not installed")
    if not shutil.which("java") and not os.environ.get("JAVA_HOME"):
        if os.environ.get("CI"):
            pytest.fail("no java: CI must run the Spark recipes")
        pytest.skip("no java on PATH (Spark needs Java 17+)")


@pytest.mark.slow
def test_spark_root_and_pruning_recipes(base, poisoned):
    spark_or_skip()
    try:
        result = run_recipe(ROOT_SPARK, base)
        assert result["df"].count() == sum(rows_of(base, ALL_DAYS).values())  # the unpublished day too
        pruned = run_recipe(PRUNE_SPARK, poisoned)
        assert pruned["df"].count() == sum(rows_of(base, PUBLISHED).values())
        spark = result["spark"]
        with pytest.raises(Exception):  # pathGlobFilter alone: no file found under day folders
            spark.read.option("pathGlobFilter", "*.parquet").parquet(str(base / DAILY)).count()
    finally:
        from pyspark.sql import SparkSession

        active = SparkSession.getActiveSession()
        if active is not None:
            active.stop()


def test_every_recipe_of_these_sections_is_tested():
    mine = {ROOT_DUCKDB, ROOT_PYARROW, ROOT_SPARK, PRUNE_DUCKDB, PRUNE_POLARS, PRUNE_PANDAS, PRUNE_PYARROW,
            PRUNE_SPARK, VERSION_DUCKDB, NESTED_RECIPE, REMOTE_POLARS, REMOTE_DUCKDB, PARTIAL_RECIPE}
    assert mine <= set(recipes())


# --- partial partitions: scan and list_days' policy ---------------------------------------------

PARTIAL_RECIPE = "# Polars: a range without its partial days"


def test_scan_warns_by_default_and_names_the_partial_day(base):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        frame = iq.scan(str(base / DAILY), PARTIAL, PUBLISHED[1]).collect()
    messages = [str(w.message) for w in caught if issubclass(w.category, DatasetWarning)]
    assert len(messages) == 1 and f"{PARTIAL} (partial" in messages[0], messages
    assert frame.height == sum(rows_of(base, (PARTIAL, *PUBLISHED)).values())  # warned, still read


def test_scan_partial_include_is_silent_and_exclude_leaves_the_day_out(base):
    with warnings.catch_warnings():
        warnings.simplefilter("error", DatasetWarning)
        included = iq.scan(str(base / DAILY), PARTIAL, PUBLISHED[1], partial="include").collect()
    assert included.height == sum(rows_of(base, (PARTIAL, *PUBLISHED)).values())
    result = run_recipe(PARTIAL_RECIPE, base)
    assert sorted({str(d) for d in result["df"]["archive_day"]}) == list(PUBLISHED)


def test_scan_strict_refuses_a_partial_day_unless_included(base):
    with pytest.raises(DatasetError, match=PARTIAL):
        iq.scan(str(base / DAILY), PARTIAL, PUBLISHED[1], strict=True)
    assert iq.scan(str(base / DAILY), PARTIAL, PUBLISHED[1], strict=True, partial="include").collect().height > 0


def test_scan_refuses_an_unknown_partial_policy(base):
    with pytest.raises((DatasetError, ValueError), match="partial"):
        iq.scan(str(base / DAILY), PARTIAL, PUBLISHED[1], partial="maybe")


def test_list_days_names_partial_days_and_follows_the_policy(base):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        entries = iq.list_days(str(base / DAILY), PARTIAL, UNPUBLISHED)
    assert [(str(e.day), str(e.state)) for e in entries] == [
        (PARTIAL, "partial"), (PUBLISHED[0], "published"), (PUBLISHED[1], "published"), (UNPUBLISHED, "unpublished")]
    assert any(PARTIAL in str(w.message) and "partial" in str(w.message) for w in caught if issubclass(w.category, DatasetWarning))
    excluded = iq.list_days(str(base / DAILY), PARTIAL, UNPUBLISHED, partial="exclude")
    assert [str(e.day) for e in excluded if e.published] == list(PUBLISHED)


# --- one vocabulary of partition states ---------------------------------------------------------

@pytest.fixture(scope="module")
def every_state(base, tmp_path_factory) -> Path:
    """A copy of the root with a day in every state: partial, published, unpublished, damaged (data
    of another size), bad manifest (not JSON), and a missing day (2026-01-18) between folders."""
    copy = tmp_path_factory.mktemp("states")
    shutil.copytree(base / "output", copy / "output")
    shutil.copytree(base / "archive", copy / "archive")
    base, root = copy, copy / DAILY
    for day in ("2026-01-17", "2026-01-19"):
        write_archive_day(base / "archive", date.fromisoformat(day), entries_per_hour=1, seed=9)
        export_day(day, str(base / "archive"), str(root))
    data = root / "2026-01-17" / "data.parquet"
    data.write_bytes(data.read_bytes()[:-100])
    (root / "2026-01-19" / "manifest.json").write_text("{ not json")
    return base


EXPECTED_STATES = {PARTIAL: "partial", PUBLISHED[0]: "published", PUBLISHED[1]: "published", UNPUBLISHED: "unpublished",
                   "2026-01-17": "damaged", "2026-01-18": "missing", "2026-01-19": "bad manifest"}


def test_one_vocabulary_of_states_in_list_days_status_scan_and_verify(every_state):
    from instrumetriq_polars.states import PartitionState as State
    from instrumetriq_polars.status import status
    from instrumetriq_polars.verify import verify_day

    root = str(every_state / DAILY)
    assert set(EXPECTED_STATES.values()) <= {s.value for s in State}
    listed = {str(e.day): e.state for e in iq.list_days(root, PARTIAL, "2026-01-19", partial="include")}
    assert {d: str(s) for d, s in listed.items()} == EXPECTED_STATES
    assert all(isinstance(s, State) for s in listed.values())
    rows = {str(r.day): str(r.state) for r in status(root, date(2026, 1, 13), date(2026, 1, 19), tier="daily", archive=None)}
    assert rows == EXPECTED_STATES
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        iq.scan(root, PARTIAL, "2026-01-19")
    text = " ".join(str(w.message) for w in caught if issubclass(w.category, DatasetWarning))
    for day, state in EXPECTED_STATES.items():
        if state != "published":
            assert f"{day} ({state}" in text or f"to {day} ({state}" in text, (day, state, text)
    for day, state in EXPECTED_STATES.items():
        assert verify_day(day, root).to_dict()["state"] == state, day


def test_status_help_and_the_cli_reference_show_the_vocabulary():
    from instrumetriq_polars.cli import build_parser
    from instrumetriq_polars.states import PartitionState as State

    parser = build_parser()
    status_help = next(a for a in parser._actions if a.dest == "command").choices["status"].format_help()
    reference = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    flat = " ".join(status_help.split())
    for state in State:
        assert state.value in flat, state
        assert state.value in reference, state
