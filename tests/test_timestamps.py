"""Export version 2: typed timestamps (instants in UTC; what is no instant goes to ``_extra`` at its
own path), the lineage columns, and a manifest that agrees with itself and with them."""

from __future__ import annotations

import gzip
import hashlib
import json
import random
from datetime import date, datetime, timezone
from pathlib import Path

import polars as pl
import pytest

import instrumetriq_polars.source as source_module
from instrumetriq_polars import Manifest, ManifestError, export_day, verify_day
from instrumetriq_polars.schema import TIMESTAMP_PATHS
from instrumetriq_polars.synthetic import make_entry

from .conftest import DAY
from .support.roundtrip import lineage, oracle_instant

AFTER = date(2026, 1, 16)
UTC = timezone.utc


def entries(count: int, seed: int = 7) -> list[dict]:
    """Synthetic entries holding every block with a timestamp (the generator leaves some out)."""
    rng, made = random.Random(seed), []
    while len(made) < count:
        entry = make_entry(rng, datetime(2026, 1, 15, 5, tzinfo=UTC))
        if all(at(entry, path[:-1]) for path in TIMESTAMP_PATHS if not path[0].endswith("[]")):
            entry["spot_prices"] = entry["spot_prices"][:4]
            made.append(entry)
    return made


def write_day(archive: Path, hours: dict[int, list[dict]]) -> Path:
    """Hour files of DAY (every hour: empty unless given)."""
    folder = archive / DAY.strftime("%Y%m%d")
    folder.mkdir(parents=True)
    for hour in range(24):
        lines = "".join(json.dumps(entry) + "\n" for entry in hours.get(hour, []))
        (folder / f"{hour:02d}.jsonl.gz").write_bytes(gzip.compress(lines.encode(), mtime=0))
    return archive


def export(archive: Path, out: Path, layout: str = "flat", **options):
    result = export_day(DAY, str(archive), str(out), layout=layout, today=AFTER, **options)
    return result, pl.read_parquet(out / DAY.isoformat() / "data.parquet")


def at(entry: dict, path: tuple[str, ...]):
    for part in path:
        entry = entry.get(part) if isinstance(entry, dict) else None
    return entry


def put(entry: dict, path: tuple[str, ...], value) -> None:
    for part in path[:-1]:
        if entry.get(part) is None:
            entry[part] = {}
        entry = entry[part]
    entry[path[-1]] = value


SCALAR_PATHS = [path for path in TIMESTAMP_PATHS if path != ("snapshot_ts",) and not path[0].endswith("[]")]


@pytest.mark.parametrize("bad", ["not-a-time", "2026-01-15T05:00:00.1234567Z", "2026-02-30T00:00:00Z", "2026-01-15", 1767225600])
def test_a_timestamp_that_is_no_instant_goes_to_extra_at_its_own_path(tmp_path, capsys, bad):
    """Every timestamp field but snapshot_ts, one entry each: the column NULL, the exact value in
    ``_extra`` at its path (its block's other fields stay typed), ``mistyped_fields`` counts it,
    one warning per path; both layouts hold the same values."""
    made = entries(len(SCALAR_PATHS) + 1)
    for entry, path in zip(made, SCALAR_PATHS):
        put(entry, path, bad)
    archive = write_day(tmp_path / "archive", {5: made})
    notes = []
    result, flat = export(archive, tmp_path / "flat", progress=lambda hour: notes.extend(hour.notes))
    assert result.manifest.mistyped_fields == {".".join(path): 1 for path in SCALAR_PATHS}
    assert not result.manifest.is_partial and result.manifest.row_count == len(made)
    assert len(notes) == len(SCALAR_PATHS) and all("has a value of the wrong type; exported in _extra" in n for n in notes)
    for row, entry, path in zip(flat.to_dicts(), made, SCALAR_PATHS):
        assert row["__".join(path)] is None
        extra = json.loads(row["_extra"])
        assert at(extra, path) == bad and len(json.dumps(extra)) < 300  # only that value, not its block
        sibling = next(name for name in flat.columns if name.startswith(path[0] + "__") and name != "__".join(path)
                       and row[name] is not None)
        assert sibling  # the rest of the block is typed
    last = flat.row(len(made) - 1, named=True)
    assert last["_extra"] is None and all(last["__".join(p)] == oracle_instant(at(made[-1], p)) for p in SCALAR_PATHS)
    nested_result, nested = export(archive, tmp_path / "nested", layout="nested")
    assert nested["_extra"].to_list() == flat["_extra"].to_list()
    assert nested_result.manifest.mistyped_fields == result.manifest.mistyped_fields
    assert verify_day(DAY, str(tmp_path / "flat"), against_archive=str(archive)).status != "FAIL"


def test_a_sample_timestamp_that_is_no_instant_sends_its_list_to_extra(tmp_path):
    made = entries(3)
    made[1]["spot_prices"][2]["ts"] = "2026-01-15T05:00:00.1234567Z"
    archive = write_day(tmp_path / "archive", {3: made})
    result, frame = export(archive, tmp_path / "out")
    assert result.manifest.mistyped_fields == {"spot_prices": 1}
    rows = frame.to_dicts()
    assert rows[1]["spot_prices"] is None and json.loads(rows[1]["_extra"]) == {"spot_prices": made[1]["spot_prices"]}
    assert [item["ts"] for item in rows[2]["spot_prices"]] == [oracle_instant(item["ts"]) for item in made[2]["spot_prices"]]


def test_a_snapshot_ts_that_is_no_instant_is_a_bad_line(tmp_path):
    """snapshot_ts is never NULL: an entry whose snapshot_ts is no instant cannot be a row."""
    made = entries(3)
    made[1]["snapshot_ts"] = "2026-01-15T24:00:00Z"
    archive = write_day(tmp_path / "archive", {2: made})
    result, frame = export(archive, tmp_path / "out", allow_incomplete=True)
    assert result.manifest.bad_lines == [{"file": "20260115/02.jsonl.gz", "line": 2, "reason":
                                          "entry cannot be exported: required field 'snapshot_ts' is not an ISO 8601 "
                                          "instant ('2026-01-15T24:00:00Z')"}]
    assert frame.height == 2 and frame["snapshot_ts"].null_count() == 0


def test_instants_in_any_spelling_are_utc_and_sort_below_a_second(tmp_path):
    """The archive mixes '...22.474Z', '...57.839582Z' and '...+00:00'; text without an offset is
    UTC; another offset is converted. As instants they sort correctly below one second, which the
    strings did not ('.4741+00:00' before '.474Z')."""
    spellings = ["2026-01-15T05:00:22.474Z", "2026-01-15T05:00:22.4741+00:00", "2026-01-15T05:00:22Z",
                 "2026-01-15 05:00:22.5", "2026-01-15T07:00:22.47405+02:00"]
    made = entries(len(spellings))
    for entry, text in zip(made, spellings):
        entry["snapshot_ts"] = entry["meta"]["added_ts"] = text
    archive = write_day(tmp_path / "archive", {5: made})
    result, frame = export(archive, tmp_path / "out")
    assert frame.schema["snapshot_ts"] == pl.Datetime("us", "UTC") and result.manifest.mistyped_fields == {}
    assert frame["snapshot_ts"].to_list() == [oracle_instant(text) for text in spellings]
    assert frame.sort("snapshot_ts")["snapshot_ts"].dt.strftime("%S%.6f").to_list() == [
        "22.000000", "22.474000", "22.474050", "22.474100", "22.500000"]
    assert sorted(spellings)[:2] == ["2026-01-15 05:00:22.5", "2026-01-15T05:00:22.4741+00:00"]  # text order is wrong
    m = result.manifest
    assert (m.min_added_ts, m.max_added_ts) == ("2026-01-15T05:00:22.000000Z", "2026-01-15T05:00:22.500000Z")


def test_an_hour_is_read_twice_only_when_a_timestamp_is_no_instant(tmp_path, monkeypatch):
    """Timestamps are tested once for the whole hour; the hour is read again, each timestamp then
    parsed on its own, only when that test fails."""
    made = entries(6)
    made[4]["meta"]["expires_ts"] = "soon"
    archive = write_day(tmp_path / "archive", {1: made[:3], 2: made[3:]})
    passes = []
    real = source_module._read_entries

    def counting(chunk, lane, with_lists, timestamps):
        passes.append((chunk.file, timestamps is None))
        return real(chunk, lane, with_lists, timestamps)

    monkeypatch.setattr(source_module, "_read_entries", counting)
    result, _ = export(archive, tmp_path / "out")
    assert result.manifest.mistyped_fields == {"meta.expires_ts": 1}
    assert [p for p in passes if p[0].endswith(("01.jsonl.gz", "02.jsonl.gz"))] == [
        ("20260115/01.jsonl.gz", False), ("20260115/02.jsonl.gz", False), ("20260115/02.jsonl.gz", True)]
    assert sum(parsed for _, parsed in passes) == 1


def test_a_required_block_of_floats_of_2_63_or_more_is_a_row(tmp_path):
    """orjson's reading marks a float of 2**63 or more as suspect (it may be a rounded integer): a
    spot_raw holding only such floats looked empty and the entry was refused, before its exact
    reading showed floats written as floats."""
    made = entries(2)
    made[0]["spot_raw"] = {"ask": 1e19, "bid": -9.3e18}
    archive = write_day(tmp_path / "archive", {4: made})
    result, frame = export(archive, tmp_path / "out")
    assert result.manifest.bad_line_count == 0 and frame.height == 2
    assert (frame["spot_raw__ask"][0], frame["spot_raw__bid"][0], frame["_extra"][0]) == (1e19, -9.3e18, None)


@pytest.mark.parametrize("layout", ["flat", "nested"])
def test_lineage_columns_and_a_manifest_that_agrees_with_itself(tmp_path, layout):
    """archive_day and archive_hour lead every row; rows_by_hour is their count; missing_hours are
    "HH" like rows_by_hour's keys; the same input gives the same bytes."""
    made = entries(9)
    archive = write_day(tmp_path / "archive", {0: made[:2], 7: made[2:5], 23: made[5:]})
    (archive / DAY.strftime("%Y%m%d") / "05.jsonl.gz").unlink()
    (archive / DAY.strftime("%Y%m%d") / "17.jsonl.gz").unlink()
    result, frame = export(archive, tmp_path / "a", layout, allow_incomplete=True)
    assert frame.columns[:2] == ["archive_day", "archive_hour"]
    assert (frame.schema["archive_day"], frame.schema["archive_hour"]) == (pl.Date, pl.Int8)
    assert [lineage(row) for row in frame.to_dicts()] == [(DAY, 0)] * 2 + [(DAY, 7)] * 3 + [(DAY, 23)] * 4
    manifest = json.loads((tmp_path / "a" / DAY.isoformat() / "manifest.json").read_text())
    assert manifest["missing_hours"] == ["05", "17"] and manifest["export_version"] == "tier3-polars-2"
    counts = {f"{hour:02d}": rows for hour, rows in frame["archive_hour"].value_counts().iter_rows()}
    assert counts == {h: n for h, n in manifest["rows_by_hour"].items() if n} == {"00": 2, "07": 3, "23": 4}
    assert set(manifest["rows_by_hour"]) | set(manifest["missing_hours"]) == {f"{h:02d}" for h in range(24)}
    again, _ = export(archive, tmp_path / "b", layout, allow_incomplete=True)
    data = [(tmp_path / out / DAY.isoformat() / "data.parquet").read_bytes() for out in ("a", "b")]
    assert data[0] == data[1] and again.manifest.parquet_sha256 == hashlib.sha256(data[0]).hexdigest()
    assert verify_day(DAY, str(tmp_path / "a"), against_archive=str(archive)).status == "WARN"  # partial: a warning


def test_missing_hours_are_read_as_their_version_wrote_them(tmp_path):
    made = entries(2)
    archive = write_day(tmp_path / "archive", {3: made})
    result, _ = export(archive, tmp_path / "out")
    data = result.manifest.to_dict()
    for version, hours, ok in (("tier3-polars-2", ["05"], True), ("tier3-polars-2", [5], False),
                               ("tier3-polars-1", [5], True), ("tier3-polars-1", ["05"], False)):
        changed = {**data, "export_version": version, "missing_hours": hours}
        if ok:
            assert Manifest.from_dict(changed).missing_hour_keys == ["05"]
        else:
            with pytest.raises(ManifestError, match=r"^manifest.json has fields of the wrong type or negative counts: missing_hours"):
                Manifest.from_dict(changed)
