"""The core export: real sample round trip, stable schema, MAP columns, guards, layouts, publishing."""

from __future__ import annotations

import gzip
import json
from datetime import date

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from instrumetriq_polars import ArchiveError, BadInputError, Manifest, export_day, fingerprint, schema_for
from instrumetriq_polars.schema import DROPPED_COLUMNS, FIELDS, FLAT_SCHEMA, NESTED_SCHEMA, SEPARATOR
from instrumetriq_polars.synthetic import write_archive_day

from .conftest import DAY, SHARED, make_archive, require_shared

AFTER = date(2026, 1, 16)
from .support.roundtrip import canonical_source, lineage, rebuild_flat, rebuild_nested, same

MAP_SUFFIXES = ("tag_counts", "cashtag_counts", "mention_counts", "url_domain_counts")


def read_manifest(folder) -> Manifest:
    return Manifest.from_json((folder / "manifest.json").read_bytes())


@pytest.mark.parametrize("layout", ["flat", "nested"])
def test_real_sample_round_trips(sample_archive, sample_entries, tmp_path, layout):
    result = export_day("2026-01-01", str(sample_archive), str(tmp_path), layout=layout)
    assert result.manifest.row_count == len(sample_entries) == 147
    rows = pl.read_parquet(tmp_path / "2026-01-01" / "data.parquet").to_dicts()
    # the fixture archive deals the sample round-robin over 24 hours: restore the source order
    order = [i for hour in range(24) for i in range(hour, len(sample_entries), 24)]
    rebuild = rebuild_flat if layout == "flat" else rebuild_nested
    for row, index in zip(rows, order):
        expected = canonical_source(sample_entries[index])  # timestamps as instants, read by the test's own oracle
        assert same(rebuild(row), expected), f"entry {index} ({expected['symbol']}) differs after the round trip"
        assert lineage(row) == (date(2026, 1, 1), index % 24)  # the hour file it was dealt to


def test_real_sample_manifest(sample_archive, sample_entries, tmp_path):
    export_day("2026-01-01", str(sample_archive), str(tmp_path))
    m = read_manifest(tmp_path / "2026-01-01")
    assert (m.row_count, m.lines_read, m.lines_exported, m.bad_line_count) == (147, 147, 147, 0)
    assert m.schema_versions == {"7": 147}
    assert m.hours_found == 24 and m.missing_hours == [] and not m.is_partial and m.coverage_ratio == 1.0
    assert sum(m.rows_by_hour.values()) == 147 and len(m.source_files) == 24
    assert m.unknown_fields == {} and m.mistyped_fields == {}
    assert m.dropped_columns == ["norm", "labels"] and m.partition_basis == "archive_folder_utc_day"
    assert m.schema_fingerprint == fingerprint(FLAT_SCHEMA)
    data = (tmp_path / "2026-01-01" / "data.parquet").read_bytes()
    import hashlib

    assert m.parquet_sha256 == hashlib.sha256(data).hexdigest() and m.parquet_size_bytes == len(data)


def test_min_max_added_ts_compare_as_instants(tmp_path):
    """'...+00:00' and '...Z' spellings must be compared as instants, not as strings."""
    from instrumetriq_polars.synthetic import make_entry
    import random
    from datetime import datetime, timezone

    rng = random.Random(1)
    entries = [make_entry(rng, datetime(2026, 1, 15, 5, tzinfo=timezone.utc)) for _ in range(3)]
    entries[0]["meta"]["added_ts"] = "2026-01-15T01:00:00+02:00"  # 23:00Z the day before: the minimum
    entries[1]["meta"]["added_ts"] = "2026-01-14T23:30:00Z"
    entries[2]["meta"]["added_ts"] = "2026-01-15T00:30:00.5+00:00"  # the maximum
    folder = tmp_path / "archive" / "20260115"
    folder.mkdir(parents=True)
    (folder / "05.jsonl.gz").write_bytes(gzip.compress("\n".join(json.dumps(e) for e in entries).encode()))
    m = export_day(DAY, str(tmp_path / "archive"), str(tmp_path / "out"), allow_incomplete=True).manifest
    assert m.min_added_ts == "2026-01-14T23:00:00.000000Z"
    assert m.max_added_ts == "2026-01-15T00:30:00.500000Z"


def test_generated_days_have_identical_schemas_and_concatenate(tmp_path):
    archive = tmp_path / "archive"
    write_archive_day(archive, date(2026, 1, 14), entries_per_hour=2, seed=1)
    make_archive(archive, "2026-01-15", "--seed", "99", entries_per_hour=2)  # the shared generator, other traits
    out = tmp_path / "out"
    for day in ("2026-01-14", "2026-01-15"):
        export_day(day, str(archive), str(out))
    a = pq.read_schema(out / "2026-01-14" / "data.parquet")
    b = pq.read_schema(out / "2026-01-15" / "data.parquet")
    assert a.equals(b)
    both = pl.scan_parquet(str(out / "*" / "data.parquet")).collect()
    assert both.height == 96 and both.schema == pl.Schema(FLAT_SCHEMA)
    assert read_manifest(out / "2026-01-14").schema_fingerprint == read_manifest(out / "2026-01-15").schema_fingerprint


def test_count_maps_are_parquet_maps_holding_every_key(small_archive, tmp_path):
    export_day(DAY, str(small_archive), str(tmp_path))
    path = tmp_path / DAY.isoformat() / "data.parquet"
    schema = pq.read_schema(path)
    map_columns = [name for name in schema.names if name.endswith(MAP_SUFFIXES)]
    assert len(map_columns) == 8
    for name in map_columns:
        map_type = schema.field(name).type
        assert pa.types.is_map(map_type) and pa.types.is_large_string(map_type.key_type)
        assert map_type.item_type == pa.int64()
    source = {}
    for hour_file in sorted((small_archive / "20260115").glob("*.jsonl.gz")):
        for line in gzip.decompress(hour_file.read_bytes()).splitlines():
            entry = json.loads(line)
            for window, block in (entry.get("twitter_sentiment_windows") or {}).items():
                for m in MAP_SUFFIXES:
                    source.setdefault(f"twitter_sentiment_windows__{window}__{m}", []).append(block.get(m))
    table = pq.read_table(path, columns=map_columns)
    for name in map_columns:
        exported = [dict(v) if v is not None else None for v in table.column(name).to_pylist()]
        exported = [v for v in exported if v is not None]
        assert exported == [v for v in source[name] if v]  # an empty map is NULL, like every empty object
    assert any(v == {} for values in source.values() for v in values), "the day should hold empty count maps"
    assert sum(len(v) for v in source["twitter_sentiment_windows__last_cycle__tag_counts"] if v) > 0


def test_declared_schema_is_collision_free_with_stable_columns():
    assert not any(SEPARATOR in part for field in FIELDS for part in field.path)
    assert len(set(FLAT_SCHEMA)) == len(FLAT_SCHEMA) == 279
    assert list(FLAT_SCHEMA)[:3] == ["archive_day", "archive_hour", "symbol"] and list(FLAT_SCHEMA)[-1] == "_extra"
    assert list(NESTED_SCHEMA) == ["archive_day", "archive_hour", "symbol", "snapshot_ts", "meta", "spot_raw", "futures_raw", "derived", "scores",
                                   "flags", "diag", "twitter_sentiment_windows", "twitter_sentiment_meta", "spot_prices", "_extra"]


#: Reference type (text before the first ':' of each description, qualifiers dropped) -> declared type;
#: a text the reference describes as ISO 8601 is an instant (``timestamp``).
REFERENCE_TYPES = {"INTEGER": "int", "FLOAT": "float", "STRING": "string", "BOOLEAN": "bool",
                   "ARRAY of STRING": "list<string>", "OBJECT": "map<string,int>", "POPULATED_BY_CRYPTOBOT": "string"}
#: Where the declared type knowingly differs from the reference's word for it, and why.
TYPE_EXCEPTIONS = {
    # a median of integers can be x.5; the same field of last_2_cycles is FLOAT and real entries hold floats
    "twitter_sentiment_windows.last_cycle.author_stats.followers_count_median": "float",
}


def test_declared_schema_covers_every_reference_field_with_its_type():
    reference_file = require_shared(SHARED / "reference" / "ARCHIVE_ENTRY_FULL_SCHEMA.json")
    reference = json.loads(reference_file.read_text())[0]
    declared = {".".join(f.path).replace("[]", ""): f.type_name for f in FIELDS}

    def leaves(node, prefix=""):
        for key, value in node.items():
            if key == "_SECTION_NOTE" or key in DROPPED_COLUMNS:
                continue
            if isinstance(value, dict):
                yield from leaves(value, f"{prefix}{key}.")
            elif isinstance(value, list):
                yield from leaves(value[0], f"{prefix}{key}.")
            else:
                word = value.split(":")[0].split(" (")[0].removesuffix(" or NULL")
                kind = REFERENCE_TYPES[word]
                yield prefix + key, "timestamp" if kind == "string" and "ISO 8601" in value else kind

    reference_types = dict(leaves(reference))
    assert set(reference_types) <= set(declared)
    mismatched = {path: (declared[path], kind) for path, kind in reference_types.items()
                  if declared[path] != TYPE_EXCEPTIONS.get(path, kind)}
    assert mismatched == {}
    assert declared["twitter_sentiment_meta.bucket_meta.date"] == "string"  # a day (YYYY-MM-DD), not an instant
    assert sum(kind == "timestamp" for kind in declared.values()) == 17


def test_layouts(small_archive, tmp_path):
    flat = export_day(DAY, str(small_archive), str(tmp_path / "flat")).manifest
    nested = export_day(DAY, str(small_archive), str(tmp_path / "nested"), layout="nested").manifest
    flat_df = pl.read_parquet(tmp_path / "flat" / DAY.isoformat() / "data.parquet")
    nested_df = pl.read_parquet(tmp_path / "nested" / DAY.isoformat() / "data.parquet")
    assert flat_df.schema == pl.Schema(schema_for("flat")) and nested_df.schema == pl.Schema(schema_for("nested"))
    assert "meta__added_ts" in flat_df.columns and "twitter_sentiment_windows__last_cycle__ai_sentiment__prob_mean" in flat_df.columns
    assert isinstance(nested_df.schema["meta"], pl.Struct) and nested_df.width == 15
    assert (flat.layout, nested.layout) == ("flat", "nested") and flat.schema_fingerprint != nested.schema_fingerprint
    assert flat_df["meta__added_ts"].to_list() == nested_df["meta"].struct.field("added_ts").to_list()
    assert flat_df.select("archive_day", "archive_hour").equals(nested_df.select("archive_day", "archive_hour"))
    assert flat_df["archive_hour"].value_counts(sort=True).rows() == [(hour, 3) for hour in range(24)] == \
        [(int(hour), rows) for hour, rows in flat.rows_by_hour.items()]


def test_rerun_is_byte_identical_and_already_published(small_archive, tmp_path):
    first = export_day(DAY, str(small_archive), str(tmp_path / "a"))
    second = export_day(DAY, str(small_archive), str(tmp_path / "b"))
    again = export_day(DAY, str(small_archive), str(tmp_path / "a"))
    assert first.manifest.parquet_sha256 == second.manifest.parquet_sha256 == again.manifest.parquet_sha256
    assert (tmp_path / "a" / DAY.isoformat() / "data.parquet").read_bytes() == (tmp_path / "b" / DAY.isoformat() / "data.parquet").read_bytes()
    assert (first.status, again.status) == ("published", "already published")
    assert sorted(p.name for p in (tmp_path / "a" / DAY.isoformat()).iterdir()) == ["data.parquet", "manifest.json"]


def test_guards(small_archive, tmp_path):
    with pytest.raises(ArchiveError, match="cannot export today's date 2026-01-15"):
        export_day(DAY, str(small_archive), str(tmp_path), today=DAY)
    with pytest.raises(ArchiveError, match=r"cannot export 2026-01-15: it is in the future \(today is 2026-01-10 UTC\)"):
        export_day(DAY, str(tmp_path / "no archive here"), str(tmp_path), today=date(2026, 1, 10))
    for today in (DAY, date(2026, 1, 10)):  # bypassed: published, but marked partial (more entries may come)
        m = export_day(DAY, str(small_archive), str(tmp_path / f"today-{today}"), allow_incomplete=True, today=today).manifest
        assert m.is_partial and not m.day_over_at_export and m.missing_hours == [] and m.row_count == 24 * 3
        assert json.loads(m.to_json())["is_partial"] is True
    assert not export_day(DAY, str(small_archive), str(tmp_path / "done"), today=AFTER).manifest.is_partial
    (small_archive / "20260115" / "07.jsonl.gz").unlink()
    (small_archive / "20260115" / "23.jsonl.gz").unlink()
    with pytest.raises(ArchiveError, match="missing hours 07, 23"):
        export_day(DAY, str(small_archive), str(tmp_path))
    assert not (tmp_path / DAY.isoformat()).exists()
    m = export_day(DAY, str(small_archive), str(tmp_path), allow_incomplete=True, today=DAY).manifest
    assert m.is_partial and m.missing_hours == ["07", "23"] and m.hours_found == 22 and m.coverage_ratio == round(22 / 24, 4)
    assert "07" not in m.rows_by_hour and m.row_count == 22 * 3
    assert json.loads(m.to_json())["missing_hours"] == ["07", "23"]  # "HH", like the keys of rows_by_hour


def test_no_day_folder_or_no_hour_files(tmp_path):
    with pytest.raises(ArchiveError, match="no archive folder for 2026-01-15"):
        export_day(DAY, str(tmp_path / "archive"), str(tmp_path / "out"), allow_incomplete=True)
    folder = tmp_path / "archive" / "20260115"
    folder.mkdir(parents=True)
    (folder / "notes.txt").write_text("not an hour file")
    (folder / "24.jsonl.gz").write_bytes(gzip.compress(b"{}"))
    with pytest.raises(ArchiveError, match="no hour files"):
        export_day(DAY, str(tmp_path / "archive"), str(tmp_path / "out"), allow_incomplete=True)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.parquet"))


def test_non_hour_files_are_ignored_and_listed(small_archive, tmp_path):
    (small_archive / "20260115" / "README.txt").write_text("hello")
    m = export_day(DAY, str(small_archive), str(tmp_path)).manifest
    assert m.ignored_files == ["README.txt"] and m.hours_found == 24


def test_unknown_and_mistyped_fields_go_to_extra(tmp_path):
    from instrumetriq_polars.synthetic import make_entry
    import random
    from datetime import datetime, timezone

    entry = make_entry(random.Random(3), datetime(2026, 1, 15, 1, tzinfo=timezone.utc))
    entry["meta"]["brand_new"] = {"x": 1}
    entry["spot_raw"]["bid"] = "oops"
    entry["meta"]["sample_count"] = 2**70  # beyond 64 bits: must stay exact
    entry["spot_prices"][3]["mid"] = "NaNish"  # typed by the strict frame builder
    folder = tmp_path / "archive" / "20260115"
    folder.mkdir(parents=True)
    (folder / "01.jsonl.gz").write_bytes(gzip.compress(json.dumps(entry).encode() + b"\n"))
    m = export_day(DAY, str(tmp_path / "archive"), str(tmp_path / "out"), allow_incomplete=True).manifest
    assert m.unknown_fields == {"meta.brand_new": 1}
    assert m.mistyped_fields == {"meta.sample_count": 1, "spot_prices": 1, "spot_raw.bid": 1}
    row = pl.read_parquet(tmp_path / "out" / DAY.isoformat() / "data.parquet").to_dicts()[0]
    extra = json.loads(row["_extra"])
    assert extra["meta"] == {"brand_new": {"x": 1}, "sample_count": 2**70}
    assert extra["spot_raw"] == {"bid": "oops"} and extra["spot_prices"][3]["mid"] == "NaNish"
    assert row["spot_raw__bid"] is None and row["spot_prices"] is None and row["meta__sample_count"] is None
    assert same(rebuild_flat(row), canonical_source(entry))


def test_bad_line_fails_the_day_unless_allowed(small_archive, tmp_path):
    path = small_archive / "20260115" / "04.jsonl.gz"
    lines = gzip.decompress(path.read_bytes()).splitlines()
    lines.insert(1, b'{"symbol": "BROKEN", "meta": {')
    path.write_bytes(gzip.compress(b"\n".join(lines) + b"\n"))
    with pytest.raises(BadInputError, match=r"20260115/04.jsonl.gz:2: not valid JSON"):
        export_day(DAY, str(small_archive), str(tmp_path))
    assert not (tmp_path / DAY.isoformat()).exists()  # no manifest, no data, not even an empty folder
    m = export_day(DAY, str(small_archive), str(tmp_path), allow_incomplete=True).manifest
    assert m.is_partial and m.bad_line_count == 1 and m.row_count == 72 and m.lines_read == 73
    assert m.bad_lines[0]["file"] == "20260115/04.jsonl.gz" and m.bad_lines[0]["line"] == 2


def test_the_lazy_plan_drops_norm_and_labels(small_archive):
    """The hour frames carry ``norm`` and ``labels`` (NULL: any content they have is in ``_extra``);
    the lazy plan drops them before shaping a layout."""
    from instrumetriq_polars.archive import open_archive_day
    from instrumetriq_polars.write.parquet import lazy_entries
    from instrumetriq_polars.source import ArchiveDayScan

    day = open_archive_day(str(small_archive), DAY)
    frames = list(ArchiveDayScan(day).frames())
    assert set(DROPPED_COLUMNS) <= set(frames[0].columns)
    rows = lazy_entries(lambda: iter(frames)).collect()
    assert rows.schema == pl.Schema(NESTED_SCHEMA) and rows.height == 72
