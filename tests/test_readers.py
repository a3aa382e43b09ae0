"""The reading recipes of docs/reading.md, each run as written (parsed out of the page) on a
dataset root like a real one: two published days, a day with data and no manifest, the verify
report and a killed export's temporary file. Each recipe's result is compared with the data as
pyarrow.parquet reads it, file by file; the page's claims about the root are checked too."""

from __future__ import annotations

import os
import re
import shutil
from collections import Counter
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pandas as pd
import polars as pl
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from instrumetriq_polars import Manifest, export_day
from instrumetriq_polars.instants import parse_instant
from instrumetriq_polars.schema import TIMESTAMP_PATHS
from instrumetriq_polars.synthetic import SYMBOLS, make_entry, write_archive_day

from .conftest import ROOT
from .support.recipes import recipes, run_recipe

TAGS = "twitter_sentiment_windows__last_cycle__tag_counts"
PUBLISHED = ("2026-01-14", "2026-01-15")
ALL_DAYS = (*PUBLISHED, "2026-01-16")
WINDOW = (datetime(2026, 1, 15, 6, tzinfo=timezone.utc), datetime(2026, 1, 15, 12, tzinfo=timezone.utc))






@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """The working folder of the recipes: ``output/tier3_daily`` in it is the dataset root."""
    base = tmp_path_factory.mktemp("readers")
    root = base / "output" / "tier3_daily"
    for seed, day in enumerate(ALL_DAYS):
        write_archive_day(base / "archive", date.fromisoformat(day), entries_per_hour=2, seed=seed)
        export_day(day, str(base / "archive"), str(root))
    (root / "2026-01-16" / "manifest.json").unlink()  # its export was killed while it published
    (root / "verify_report.md").write_text("# verify report\n")
    (root / "2026-01-15" / ".data.parquet.tmp-4242-0a1b").write_bytes(b"PAR1 cut short")
    return base


def truth(base: Path, days=ALL_DAYS) -> dict[str, list]:
    """Columns of the days, in date order, as pyarrow.parquet reads each file (MAP cells become
    lists of pairs)."""
    tables = [pq.read_table(base / "output" / "tier3_daily" / day / "data.parquet") for day in days]
    columns: dict[str, list] = {"symbol": [], "snapshot_ts": [], "btc": [], "archive_day": [], "archive_hour": []}
    for table in tables:
        for name in ("symbol", "snapshot_ts", "archive_day", "archive_hour"):
            columns[name] += table.column(name).to_pylist()
        columns["btc"] += [dict(pairs).get("btc") if pairs is not None else None for pairs in table.column(TAGS).to_pylist()]
    return columns


def test_every_recipe_on_the_page_is_tested():
    """Each recipe is checked here (CHECKS) or, for the sections on the root, pruning, partial days,
    R2 and the nested layout, by tests/test_readers_recipes.py (which names its titles)."""
    others = (ROOT / "tests" / "test_readers_recipes.py").read_text(encoding="utf-8")
    assert set(CHECKS) <= set(recipes())
    assert [title for title in recipes() if title not in CHECKS and f'"{title}"' not in others] == []


def test_polars_scan_recipe(base):
    result, expected = run_recipe("# Polars: the published days of a range, through scan", base), truth(base, PUBLISHED)
    df = result["df"]
    assert df["symbol"].to_list() == expected["symbol"] and df["btc_tags"].to_list() == expected["btc"]
    assert df["btc_tags"].count() > 0  # the lookup finds the key
    assert [str(w.message).split(": ", 1)[1] for w in result["_warnings"]] == [
        "1 of 3 days not read: 2026-01-16 (unpublished: data.parquet without manifest.json: being published, "
        "or its export was killed); reading the published days only"]


def test_polars_glob_recipe(base):
    assert run_recipe("# Polars: a plain glob (every data.parquet, published or not)", base)["rows"] == len(truth(base)["symbol"])


def test_pandas_recipe(base):
    result, expected = run_recipe("# pandas: a list of files (pandas does not expand a glob); a MAP cell is a list of (key, value) pairs", base), truth(base)
    df = result["df"]
    assert df["symbol"].tolist() == expected["symbol"]
    assert [None if pd.isna(v) else v for v in result["btc_tags"]] == expected["btc"]
    # instants as UTC datetimes, lineage as a small integer and dates
    assert str(df["snapshot_ts"].dtype) == "datetime64[us, UTC]" and df["snapshot_ts"].tolist() == expected["snapshot_ts"]
    assert str(df["archive_hour"].dtype) == "int8" and df["archive_hour"].tolist() == expected["archive_hour"]
    assert [pd.Timestamp(d).date() for d in df["archive_day"]] == expected["archive_day"]


def test_pyarrow_dataset_recipe(base):
    result, expected = run_recipe("# pyarrow.dataset: a list of files, since the root holds manifest.json; map_lookup wants a large_string key", base), truth(base)
    assert result["table"].column("symbol").to_pylist() == expected["symbol"]
    assert result["btc_tags"].to_pylist() == expected["btc"]


def duckdb_expected(base: Path) -> list[tuple]:
    """Per symbol, snapshots in the recipe's time window and the sum of their 'btc' counts."""
    expected = truth(base)
    groups: dict[str, list] = {}
    for symbol, moment, btc in zip(expected["symbol"], expected["snapshot_ts"], expected["btc"]):
        if WINDOW[0] <= moment < WINDOW[1]:
            groups.setdefault(symbol, []).append(btc)
    return [(symbol, len(counts), sum(c for c in counts if c is not None) if any(c is not None for c in counts) else None)
            for symbol, counts in sorted(groups.items())]


DUCKDB_GLOB = "# DuckDB: a glob, a MAP lookup and a time range (instants compared, whatever the session's time zone)"
LINEAGE_RECIPE = "# DuckDB: rows per archive hour, from the lineage columns (the manifest's rows_by_hour, per day)"


@pytest.fixture(scope="module")
def text_base(base, tmp_path_factory) -> Path:
    """The same files with ``snapshot_ts`` as ISO 8601 text, as export version 1 wrote it (the
    archive's spellings: ``Z`` and ``+00:00``, 3 or 6 fraction digits)."""
    text = tmp_path_factory.mktemp("text")
    for path in (base / "output" / "tier3_daily").glob("*/data.parquet"):
        target = text / path.relative_to(base)
        target.parent.mkdir(parents=True)
        frame = pl.read_parquet(path).with_row_index("i").with_columns(
            pl.when(pl.col("i") % 2 == 0).then(pl.col("snapshot_ts").dt.strftime("%Y-%m-%dT%H:%M:%S%.3fZ"))
            .otherwise(pl.col("snapshot_ts").dt.strftime("%Y-%m-%dT%H:%M:%S%.6f+00:00")).alias("snapshot_ts")).drop("i")
        frame.write_parquet(target)
    return text


def test_duckdb_glob_recipe_on_timestamps_and_on_strings(base, text_base):
    expected = duckdb_expected(base)
    assert len(expected) > 3 and any(row[2] is not None for row in expected)  # the window and the lookup select something
    column = duckdb.sql(f"DESCRIBE SELECT snapshot_ts FROM '{base}/output/tier3_daily/*/data.parquet'").fetchall()[0]
    assert column[1] == "TIMESTAMP WITH TIME ZONE"
    assert run_recipe(DUCKDB_GLOB, base)["rows"] == expected
    assert run_recipe(DUCKDB_GLOB, text_base)["rows"] == expected
    # the session's time zone does not move the window
    duckdb.sql("SET TimeZone = 'America/New_York'")
    try:
        assert run_recipe(DUCKDB_GLOB, base)["rows"] == expected
        assert run_recipe(DUCKDB_GLOB, text_base)["rows"] == expected
    finally:
        duckdb.sql("RESET TimeZone")


def test_duckdb_lineage_recipe(base):
    """Rows per archive hour from the lineage columns: the manifest's rows_by_hour for each published
    day, and the hours of the day published without a manifest too."""
    per_hour = run_recipe(LINEAGE_RECIPE, base)["per_hour"]
    expected = truth(base)
    assert per_hour == sorted((day, hour, rows) for (day, hour), rows in Counter(zip(expected["archive_day"], expected["archive_hour"])).items())
    counted = {(day, hour): rows for day, hour, rows in per_hour}
    assert len(counted) == 24 * len(ALL_DAYS) and sum(counted.values()) == len(expected["symbol"])
    for day in PUBLISHED:
        manifest = Manifest.from_json((base / "output" / "tier3_daily" / day / "manifest.json").read_bytes())
        assert {f"{hour:02d}": rows for (d, hour), rows in counted.items() if str(d) == day} == manifest.rows_by_hour


def test_duckdb_published_days_recipe(base):
    result = run_recipe("# DuckDB (or any reader) on the published days only: the file list of list_days", base)
    assert result["published_rows"] == len(truth(base, PUBLISHED)["symbol"])
    assert result["files"] == [f"{base}/output/tier3_daily/{day}/data.parquet" for day in PUBLISHED]


def spark_session_or_skip():
    """pyspark and Java are in the test setup (pyspark in the test extras); in CI they must be."""
    missing = None
    try:
        import pyspark  # noqa: F401
    except ImportError:
        missing = "pyspark is not installed (pip install -e '.[test]')"
    if missing is None and not shutil.which("java") and not os.environ.get("JAVA_HOME"):
        missing = "no java on PATH (Spark needs Java 17+)"
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"{missing}: CI must run the Spark recipe")
        pytest.skip(missing)


@pytest.mark.spark
def test_spark_recipe(base):
    spark_session_or_skip()
    result = run_recipe("# Spark: a glob", base)
    spark = result["spark"]
    try:
        expected = truth(base)
        assert result["df"].count() == len(expected["symbol"])
        types = {field.name: field.dataType.typeName() for field in result["df"].schema.fields}
        assert (types["archive_day"], types["archive_hour"], types["snapshot_ts"]) == ("date", "byte", "timestamp")
        # the timestamps' encoding (BYTE_STREAM_SPLIT) decoded: the instants, in microseconds
        micros = result["df"].selectExpr("sum(unix_micros(snapshot_ts)) AS s", "sum(archive_hour) AS h").collect()[0]
        epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
        assert micros["s"] == sum((t - epoch) // timedelta(microseconds=1) for t in expected["snapshot_ts"])
        assert micros["h"] == sum(expected["archive_hour"])
        samples = result["df"].selectExpr("explode(spot_prices) AS p").selectExpr("count(*) AS n", "max(unix_micros(p.ts)) AS last").collect()[0]
        tables = [pq.read_table(f, columns=["spot_prices"]) for f in sorted(base.glob("output/tier3_daily/*/data.parquet"))]
        stamps = [item["ts"] for table in tables for row in table.column("spot_prices").to_pylist() if row for item in row]
        assert samples["n"] == len(stamps) and samples["last"] == (max(stamps) - epoch) // timedelta(microseconds=1)
        assert result["btc_rows"] == sum(c is not None for c in expected["btc"]) > 0
        with pytest.raises(Exception, match="FAILED_READ_FILE|not a Parquet file|Could not read footer"):
            spark.read.parquet(str(base / "output" / "tier3_daily")).count()  # docs/reading.md: not the root
    finally:
        spark.stop()


@pytest.mark.parametrize("tool", ["polars", "pandas", "pyarrow", "duckdb"])
def test_tools_given_the_root_fail_on_files_that_are_not_parquet(base, tool):
    """docs/reading.md's first rule: a tool given the dataset root itself fails."""
    root = str(base / "output" / "tier3_daily")
    read = {
        "polars": lambda: pl.scan_parquet(root).collect(),
        "pandas": lambda: pd.read_parquet(root),
        "pyarrow": lambda: ds.dataset(root, format="parquet").to_table(),
        "duckdb": lambda: duckdb.sql(f"SELECT count(*) FROM read_parquet('{root}/**')").fetchall(),
    }[tool]
    with pytest.raises(Exception) as error:
        read()
    assert re.search(r"manifest\.json|verify_report\.md|\.data\.parquet\.tmp-", str(error.value)), error.value  # whichever it meets first


def test_synthetic_days_hold_real_symbols_instants_and_tags(tmp_path):
    """The recipes and the demo read generated days: ``symbol`` and every timestamp field hold
    real values (they once held placeholders such as 'symbol-v2'), and common hashtags occur."""
    import random

    written = datetime(2026, 1, 15, 5, tzinfo=timezone.utc)
    rng = random.Random(3)
    entries = [make_entry(rng, written) for _ in range(60)]

    def field(node, path):
        for part in path:
            node = node.get(part.removesuffix("[]")) if isinstance(node, dict) else None
            node = node[0] if isinstance(node, list) and node else node  # spot_prices[]: its first sample
        return node

    for entry in entries:
        assert entry["symbol"] in SYMBOLS
        times = [value for path in TIMESTAMP_PATHS if (value := field(entry, path)) is not None]
        assert "snapshot_ts" in entry and entry["snapshot_ts"] in times and len(times) > 10
        for value in times:
            assert parse_instant(value) is not None and datetime.fromisoformat(value).tzinfo is not None, value
    tags = [entry["twitter_sentiment_windows"]["last_cycle"]["tag_counts"] for entry in entries if "twitter_sentiment_windows" in entry]
    assert sum("btc" in t for t in tags) >= 3


CHECKS = {
    "# Polars: the published days of a range, through scan": test_polars_scan_recipe,
    "# Polars: a plain glob (every data.parquet, published or not)": test_polars_glob_recipe,
    "# pandas: a list of files (pandas does not expand a glob); a MAP cell is a list of (key, value) pairs": test_pandas_recipe,
    "# pyarrow.dataset: a list of files, since the root holds manifest.json; map_lookup wants a large_string key": test_pyarrow_dataset_recipe,
    DUCKDB_GLOB: test_duckdb_glob_recipe_on_timestamps_and_on_strings,
    LINEAGE_RECIPE: test_duckdb_lineage_recipe,
    "# DuckDB (or any reader) on the published days only: the file list of list_days": test_duckdb_published_days_recipe,
    "# Spark: a glob": test_spark_recipe,
}
