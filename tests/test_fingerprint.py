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

#: Golden values: a change here changes what every published day's manifest says. Update them
#: only with a new export version (and keep the old ones verifiable).
GOLDEN = {
    "flat": "sha256:350b3274adf76eef90da5bfec48559aa98173a8503d632c147296e706ff35b73",
    "nested": "sha256:61647ed1007fefdf0a4a7c8407342689fab6417ca496103d492696995e9c3d9e",
}


@pytest.mark.parametrize("layout", ["flat", "nested"])
def test_fingerprint_is_pinned(layout):
    assert fingerprint(schema_for(layout)) == GOLDEN[layout]
    assert known_fingerprints(layout) == {GOLDEN[layout], LEGACY_FINGERPRINTS[layout]}


def test_type_names_are_the_declared_tables():
    nested = schema_for("nested")
    assert type_name(nested["spot_prices"]) == "list<struct<ts:string,mid:float,bid:float,ask:float,spread_bps:float>>"
    assert type_name(pl.Map(pl.String, pl.Int64)) == "map<string,int>"
    assert type_name(pl.Int32()) == "other:Int32"  # never equal to a declared type


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


def test_a_day_with_the_legacy_fingerprint_still_verifies(exported):
    """Days of export version 1 carry the repr-based fingerprint; they must keep verifying."""
    path = exported / DAY.isoformat() / "manifest.json"
    data = json.loads(path.read_text())
    data["schema_fingerprint"] = LEGACY_FINGERPRINTS["flat"]
    path.write_text(json.dumps(data, indent=2))
    result = verify_day(DAY, str(exported))
    assert result.status in ("PASS", "WARN"), result.errors
    data["schema_fingerprint"] = LEGACY_FINGERPRINTS["nested"]  # another layout's: refused
    path.write_text(json.dumps(data, indent=2))
    assert verify_day(DAY, str(exported)).status == "FAIL"
