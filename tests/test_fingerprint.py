"""The schema fingerprint hashes the declared table's own type names, never how Polars prints a
type: a Polars release that printed types differently must not fail the published days."""

from __future__ import annotations

import json

import polars as pl
import pytest

from instrumetriq_polars import export_day, verify_day
from instrumetriq_polars.schema import LEGACY_FINGERPRINTS, fingerprint, known_fingerprints, schema_for, type_name
from instrumetriq_polars.synthetic import write_archive_day

from .conftest import DAY
from .support.versions import as_version_1

#: Golden values, per export version: a change here changes what every published day's manifest
#: says. Add them only with a new export version, and keep the old ones verifiable.
GOLDEN = {
    1: {"flat": "sha256:350b3274adf76eef90da5bfec48559aa98173a8503d632c147296e706ff35b73",
        "nested": "sha256:61647ed1007fefdf0a4a7c8407342689fab6417ca496103d492696995e9c3d9e"},
    2: {"flat": "sha256:0f198614d1747622b9c067f513bf8f41bd87f50d92679500a0b4f1d489e0f147",
        "nested": "sha256:46e4b0150cb563c3bf1f6ff23a1ec83c7a5fa97d6428351c73d1735f5ce2c418"},
}


@pytest.mark.parametrize("layout", ["flat", "nested"])
def test_fingerprint_is_pinned(layout):
    assert fingerprint(schema_for(layout)) == fingerprint(schema_for(layout, 2)) == GOLDEN[2][layout]
    assert fingerprint(schema_for(layout, 1)) == GOLDEN[1][layout]
    assert known_fingerprints(layout) == known_fingerprints(layout, 2) == {GOLDEN[2][layout]}
    assert known_fingerprints(layout, 1) == {GOLDEN[1][layout], LEGACY_FINGERPRINTS[layout]}


def test_type_names_are_the_declared_tables():
    nested, nested_1 = schema_for("nested"), schema_for("nested", 1)
    assert type_name(nested["spot_prices"]) == "list<struct<ts:timestamp,mid:float,bid:float,ask:float,spread_bps:float>>"
    assert type_name(nested_1["spot_prices"]) == "list<struct<ts:string,mid:float,bid:float,ask:float,spread_bps:float>>"
    assert (type_name(nested["archive_day"]), type_name(nested["archive_hour"])) == ("date", "int8")
    assert type_name(pl.Map(pl.String, pl.Int64)) == "map<string,int>"
    assert type_name(pl.Int32()) == "other:Int32"  # never equal to a declared type
    assert type_name(pl.Datetime("us")) != "timestamp" and type_name(pl.Datetime("ns", "UTC")) != "timestamp"


def test_version_1_is_version_2_without_lineage_and_with_text_timestamps():
    for layout in ("flat", "nested"):
        now, before = schema_for(layout), schema_for(layout, 1)
        assert list(now)[:2] == ["archive_day", "archive_hour"] and list(now)[2:] == list(before)
        assert all(type_name(now[name]).replace(":timestamp", ":string") == type_name(before[name]) for name in before
                   if isinstance(now[name], (pl.Struct, pl.List)))
    flat, flat_1 = schema_for("flat"), schema_for("flat", 1)
    retyped = sorted(name for name in flat_1 if flat[name] != flat_1[name])
    assert len(retyped) == 17 and all(type_name(flat_1[n]) == "string" and type_name(flat[n]) == "timestamp"
                                      for n in retyped if n != "spot_prices")
    with pytest.raises(ValueError, match="unknown export version 3"):
        schema_for("flat", 3)


@pytest.fixture
def exported(tmp_path):
    archive = tmp_path / "archive"
    write_archive_day(archive, DAY, entries_per_hour=2)
    out = tmp_path / "out"
    export_day(DAY, str(archive), str(out))
    return out


def test_independent_of_how_polars_prints_types(exported, monkeypatch):
    """A day exported a minute before still verifies when Polars prints its types otherwise, and an
    export then writes the same fingerprint."""
    before = fingerprint(schema_for("flat"))
    monkeypatch.setattr(pl.DataType, "__repr__", lambda self: f"<dtype {id(self)}>")
    assert fingerprint(schema_for("flat")) == before
    result = verify_day(DAY, str(exported))
    assert result.status in ("PASS", "WARN"), result.errors


@pytest.mark.parametrize("legacy", [False, True])
def test_a_day_of_export_version_1_still_verifies(exported, legacy):
    """Days of export version 1 (text timestamps, no lineage; the first carry the repr-based
    fingerprint) must keep verifying, against their own version's schema."""
    as_version_1(exported / DAY.isoformat(), legacy_fingerprint=legacy)
    result = verify_day(DAY, str(exported))
    assert result.status in ("PASS", "WARN"), result.errors
    assert result.check("schema").figures["export_format_version"] == 1
    path = exported / DAY.isoformat() / "manifest.json"
    data = json.loads(path.read_text())
    data["schema_fingerprint"] = LEGACY_FINGERPRINTS["nested"]  # another layout's: refused
    path.write_text(json.dumps(data, indent=2))
    assert verify_day(DAY, str(exported)).status == "FAIL"


def test_the_legacy_fingerprint_is_version_1_only(exported):
    """A version 2 day cannot carry version 1's legacy fingerprint: its columns are not version 1's."""
    path = exported / DAY.isoformat() / "manifest.json"
    data = json.loads(path.read_text())
    data["schema_fingerprint"] = LEGACY_FINGERPRINTS["flat"]
    path.write_text(json.dumps(data, indent=2))
    result = verify_day(DAY, str(exported))
    assert result.status == "FAIL" and "the day was written with another schema version" in " ".join(result.errors)
