"""The one planner (planner.py), as tables: what happens to a partition given the archive, what
is published, and the options. Every caller (export, catch-up, publish, bundle, keep-local,
status) asks these functions; their own tests run them end to end."""

from __future__ import annotations

from dataclasses import replace

import pytest

from instrumetriq_polars.manifest import EXPORT_VERSION, Manifest
from instrumetriq_polars.planner import (
    COMPLETE, CONFLICT, DAMAGED, EXPORT, KEEP, MISSING, NO_ARCHIVE, PARTIAL, PUBLISHED, REBUILD, REFUSE, REMOVE,
    REPLACE, SKIP, UNCHANGED, UNPUBLISHED, UNREADABLE, UPDATE, InPlace, Wanted, archive_changes, bundle_source, partition_state,
    plan_bundle, plan_export, plan_publish, plan_removal,
)
from instrumetriq_polars.schema import fingerprint, schema_for
from instrumetriq_polars.states import PartitionState

DAY = "2026-01-15"
FILES = {h: 1000 + h for h in range(24)}  # hour -> size of its file
FP = fingerprint(schema_for("flat"))


def manifest(*, missing=(), bad=0, over=True, version=EXPORT_VERSION, layout="flat", fp=FP, sha="a" * 64, size=1000,
             files=FILES, date=DAY, **fields) -> Manifest:
    hours = [h for h in files if f"{h:02d}" not in missing]
    return Manifest(
        date_utc=date, archive_day=date.replace("-", ""), row_count=24, parquet_sha256=sha, parquet_size_bytes=size,
        layout=layout, schema_fingerprint=fp, column_count=1, hours_found=len(hours), missing_hours=list(missing),
        rows_by_hour={f"{h:02d}": 1 for h in hours}, source_files=[{"hour": h, "size_bytes": files[h]} for h in hours],
        schema_versions={}, min_added_ts=None, max_added_ts=None, lines_read=24, lines_exported=24, bad_line_count=bad,
        bad_lines=[], unknown_fields={}, mistyped_fields={}, exporter={}, day_over_at_export=over, export_version=version,
        **fields)


M = manifest()
PARTIAL_M = manifest(missing=["05"], files={h: s for h, s in FILES.items() if h != 5})
HERE = InPlace(M, 1000)
HOUR_M = replace(manifest(files={5: 1005}, hours_expected=1), partition="hour", hour_utc=5)
NO_05 = {h: s for h, s in FILES.items() if h != 5}


def want(name: str = DAY, **options) -> Wanted:
    return Wanted("flat", FP, EXPORT_VERSION, name, **options)


#: (case, hour files, period over, in place, options) -> (action, words of the reason)
EXPORT_TABLE = [
    ("nothing published", FILES, True, InPlace(), want(), EXPORT, ""),
    ("published, same archive: not re-read", FILES, True, HERE, want(), UNCHANGED, "archive unchanged"),
    ("published, forced", FILES, True, HERE, want(force=True), REPLACE, ""),
    ("nothing published, forced", FILES, True, InPlace(), want(force=True), EXPORT, ""),
    ("unreadable manifest, forced", FILES, True, InPlace(unreadable=True), want(force=True), REPLACE, ""),
    ("unreadable manifest", FILES, True, InPlace(unreadable=True), want(), EXPORT, ""),
    ("an hour file grew", {**FILES, 3: 5}, True, HERE, want(), EXPORT, ""),
    ("an hour file is new", FILES, True, InPlace(manifest(files=NO_05), 1000), want(), EXPORT, ""),
    ("data of another size", FILES, True, InPlace(M, 999), want(), EXPORT, ""),
    ("data missing", FILES, True, InPlace(M, None), want(), EXPORT, ""),
    ("another layout", FILES, True, InPlace(manifest(layout="nested"), 1000), want(), EXPORT, ""),
    ("another schema", FILES, True, InPlace(manifest(fp="0" * 16), 1000), want(), EXPORT, ""),
    ("another export version", FILES, True, InPlace(manifest(version="tier3-polars-1"), 1000), want(), EXPORT, ""),
    ("a manifest of another day", FILES, True, InPlace(manifest(date="2026-01-14"), 1000), want(), EXPORT, ""),
    ("an hour, same file: not re-read", {5: 1005}, True, InPlace(HOUR_M, 1000), want("2026-01-15/05"), UNCHANGED, ""),
    ("an hour, its file grew: late entries, updated", {5: 2000}, True, InPlace(HOUR_M, 1000), want("2026-01-15/05"), UPDATE, "grew"),
    ("an hour, its file shrank", {5: 900}, True, InPlace(HOUR_M, 1000), want("2026-01-15/05"), EXPORT, ""),
    ("a day, hour 23 grew: late entries, updated", {**FILES, 23: 5000}, True, HERE, want(), UPDATE, "grew"),
    ("a day, hour 07 shrank", {**FILES, 7: 10}, True, HERE, want(), EXPORT, ""),
    ("a day, hour 07 gone", {h: s for h, s in FILES.items() if h != 7}, True, HERE, want(), EXPORT, ""),
    ("catch-up: a day whose hour 23 grew", {**FILES, 23: 5000}, True, HERE, want(catch_up=True), UPDATE, "grew"),
    ("catch-up: a day whose hour 07 shrank: left to status", {**FILES, 7: 10}, True, HERE, want(catch_up=True), SKIP,
     "not by growth (hour 07 1007 -> 10 bytes)"),
    ("catch-up: a damaged day whose archive grew: exported", {**FILES, 23: 5000}, True, InPlace(M, 990), want(catch_up=True), EXPORT, ""),
    ("a day's manifest in an hour's folder", FILES, True, HERE, want("2026-01-15/05"), EXPORT, ""),
    ("partial, the hour arrived: complete it", FILES, True, InPlace(PARTIAL_M, 1000), want(), COMPLETE, ""),
    ("partial, unchanged, not allowed partial", NO_05, True, InPlace(PARTIAL_M, 1000), want(), COMPLETE, ""),
    ("partial, unchanged, allowed partial", NO_05, True, InPlace(PARTIAL_M, 1000), want(allow_incomplete=True), UNCHANGED, ""),
    ("partial before the day was over, now over", FILES, True, InPlace(manifest(over=False), 1000), want(allow_incomplete=True),
     COMPLETE, ""),
    ("partial before the day was over, still not", FILES, False, InPlace(manifest(over=False), 1000),
     want(allow_incomplete=True), UNCHANGED, ""),
    ("no archive folder", None, True, InPlace(), want(), EXPORT, ""),
    ("catch-up: no archive folder", None, True, InPlace(), want(catch_up=True), SKIP, "no archive folder"),
    ("catch-up: nothing published", FILES, True, InPlace(), want(catch_up=True), EXPORT, ""),
    ("catch-up: published, unchanged", FILES, True, HERE, want(catch_up=True), UNCHANGED, ""),
    ("catch-up: partial, unchanged", NO_05, True, InPlace(PARTIAL_M, 1000), want(catch_up=True), SKIP,
     "published partial (1 hours missing) and the archive has not changed since: nothing to complete"),
    ("catch-up: bad lines, unchanged", FILES, True, InPlace(manifest(bad=2), 1000), want(catch_up=True), SKIP,
     "published partial (2 bad lines)"),
    ("catch-up: partial, the hour arrived", FILES, True, InPlace(PARTIAL_M, 1000), want(catch_up=True), COMPLETE, ""),
    ("catch-up: complete in an older version", FILES, True, InPlace(manifest(version="tier3-polars-1"), 1000),
     want(catch_up=True), SKIP, f"published complete by export version tier3-polars-1; forcing re-exports it as {EXPORT_VERSION}"),
    ("catch-up: older version, archive rewritten", {**FILES, 1: 7}, True, InPlace(manifest(version="tier3-polars-1"), 1000),
     want(catch_up=True), SKIP, "not by growth"),
    ("catch-up: older version, archive grew", {**FILES, 1: 7000}, True, InPlace(manifest(version="tier3-polars-1"), 1000),
     want(catch_up=True), UPDATE, "grew"),
    ("catch-up, forced: no archive folder", None, True, InPlace(), want(catch_up=True, force=True), EXPORT, ""),
]


@pytest.mark.parametrize("case, files, over, in_place, wanted, action, reason", EXPORT_TABLE, ids=[r[0] for r in EXPORT_TABLE])
def test_plan_export(case, files, over, in_place, wanted, action, reason):
    plan = plan_export(files, over, in_place, wanted)
    assert plan.action == action
    assert reason in plan.reason
    assert plan.writes == (action in (EXPORT, COMPLETE, REPLACE, UPDATE))
    assert "--" not in plan.reason  # the library names no flag


A, B = "a" * 64, "b" * 64
#: (case, in place, new sha256, new partial, force) -> (action, refusal)
PUBLISH_TABLE = [
    ("nothing in place", InPlace(), A, False, False, EXPORT, None),
    ("nothing in place, forced", InPlace(), A, False, True, EXPORT, None),
    ("same data", HERE, A, False, False, UNCHANGED, None),
    ("same data, forced: rewritten", HERE, A, False, True, REPLACE, None),
    ("same data, damaged", InPlace(M, 990), A, False, False, REFUSE, DAMAGED),
    ("same data, data missing", InPlace(M, None), A, False, False, REFUSE, DAMAGED),
    ("same data, damaged, forced: repaired", InPlace(M, 990), A, False, True, REPLACE, None),
    ("other data", HERE, B, False, False, REFUSE, CONFLICT),
    ("other data, forced", HERE, B, False, True, REPLACE, None),
    ("partial in place, complete new", InPlace(PARTIAL_M, 1000), B, False, False, COMPLETE, None),
    ("partial in place, same data complete", InPlace(PARTIAL_M, 1000), A, False, False, COMPLETE, None),
    ("partial in place, complete new, forced", InPlace(PARTIAL_M, 1000), B, False, True, COMPLETE, None),
    ("partial in place, partial new", InPlace(PARTIAL_M, 1000), B, True, False, REFUSE, CONFLICT),
    ("partial in place, same partial data", InPlace(PARTIAL_M, 1000), A, True, False, UNCHANGED, None),
    ("complete in place, partial new", HERE, B, True, False, REFUSE, CONFLICT),
    ("unreadable in place", InPlace(unreadable=True, data_size=5), A, False, False, REFUSE, UNREADABLE),
    ("unreadable in place, forced", InPlace(unreadable=True), A, False, True, REPLACE, None),
]


@pytest.mark.parametrize("case, in_place, sha, partial, force, action, refusal", PUBLISH_TABLE, ids=[r[0] for r in PUBLISH_TABLE])
def test_plan_publish(case, in_place, sha, partial, force, action, refusal):
    plan = plan_publish(in_place, sha, partial, force)
    assert (plan.action, plan.refusal) == (action, refusal)


GROWN = [{"hour": h, "size_bytes": s + (500 if h == 23 else 0)} for h, s in FILES.items()]
SHRUNK = [{"hour": h, "size_bytes": s - (500 if h == 7 else 0)} for h, s in FILES.items()]
#: issue 21: (case, in place, new sha256, new partial, follows, the new data's sources) -> (action, refusal)
PUBLISH_FOLLOWS_TABLE = [
    ("a bundle over another bundle: rebuilt", HERE, B, False, True, None, REBUILD, None),
    ("a bundle over a damaged copy of itself: rebuilt", InPlace(M, 990), A, False, True, None, REBUILD, None),
    ("a bundle over the same bundle", HERE, A, False, True, None, UNCHANGED, None),
    ("a bundle over a partial one", InPlace(PARTIAL_M, 1000), B, False, True, None, COMPLETE, None),
    ("late entries: read from grown hour files", HERE, B, False, False, GROWN, UPDATE, None),
    ("late entries, partial new: a conflict", HERE, B, True, False, GROWN, REFUSE, CONFLICT),
    ("rewritten hour files: a conflict", HERE, B, False, False, SHRUNK, REFUSE, CONFLICT),
    ("grown over a damaged copy: refused", InPlace(M, 990), B, False, False, GROWN, REFUSE, CONFLICT),
]


@pytest.mark.parametrize("case, in_place, sha, partial, follows, sources, action, refusal", PUBLISH_FOLLOWS_TABLE,
                         ids=[r[0] for r in PUBLISH_FOLLOWS_TABLE])
def test_plan_publish_follows_and_late_entries(case, in_place, sha, partial, follows, sources, action, refusal):
    plan = plan_publish(in_place, sha, partial, False, follows, sources)
    assert (plan.action, plan.refusal) == (action, refusal)


DAY_M = manifest()
SOURCES = [bundle_source(DAY_M)]
BUNDLE = replace(manifest(date="2026-01", missing_days=["2026-01-02"], partition="month"), source_files=SOURCES)
#: (case, bundle in place, its days' sources, days missing, month over, force) -> action
BUNDLE_TABLE = [
    ("nothing in place", InPlace(), SOURCES, ["2026-01-02"], True, False, EXPORT),
    ("nothing in place, forced", InPlace(), SOURCES, ["2026-01-02"], True, True, REPLACE),
    ("same days", InPlace(BUNDLE, 1000), SOURCES, ["2026-01-02"], True, False, UNCHANGED),
    ("same days, forced", InPlace(BUNDLE, 1000), SOURCES, ["2026-01-02"], True, True, REPLACE),
    ("a day's data changed", InPlace(BUNDLE, 1000), [{**SOURCES[0], "parquet_sha256": B}], ["2026-01-02"], True, False, REBUILD),
    ("a missing day arrived", InPlace(BUNDLE, 1000), SOURCES, [], True, False, REBUILD),
    ("the month is now over", InPlace(replace(BUNDLE, day_over_at_export=False), 1000), SOURCES, ["2026-01-02"], True, False,
     REBUILD),
    ("the bundle's data is damaged", InPlace(BUNDLE, 3), SOURCES, ["2026-01-02"], True, False, REBUILD),
    ("the bundle's manifest is unreadable", InPlace(unreadable=True), SOURCES, ["2026-01-02"], True, False, REBUILD),
]


@pytest.mark.parametrize("case, in_place, sources, missing, over, force, action", BUNDLE_TABLE, ids=[r[0] for r in BUNDLE_TABLE])
def test_plan_bundle(case, in_place, sources, missing, over, force, action):
    plan = plan_bundle(in_place, sources, missing, over, force)
    assert plan.action == action
    assert plan.writes == (action != UNCHANGED)


URL = "s3://bucket/tier3/daily/2026-01-15"
#: (case, local, remote) -> (action, reason)
REMOVAL_TABLE = [
    ("uploaded, same data", HERE, HERE, REMOVE, ""),
    ("not uploaded", HERE, InPlace(), KEEP, f"not published at {URL}"),
    ("remote manifest unreadable", HERE, InPlace(unreadable=True), KEEP, f"{URL} has an unreadable manifest"),
    ("remote publishes other data", HERE, InPlace(manifest(sha=B), 1000), KEEP, f"{URL} publishes other data (sha256 bbbbbbbbbbbb...)"),
    ("remote data missing", HERE, InPlace(M, None), KEEP, f"{URL}/data.parquet is missing, its manifest says 1000"),
    ("remote data of another size", HERE, InPlace(M, 7), KEEP, f"{URL}/data.parquet is 7 bytes, its manifest says 1000"),
    ("local data of another size", InPlace(M, 7), HERE, KEEP, "its data.parquet is not of the size its manifest states"),
    ("local manifest of another day", InPlace(manifest(date="2026-01-14"), 1000), HERE, KEEP, "its manifest is of 2026-01-14"),
    ("local manifest unreadable", InPlace(unreadable=True), HERE, KEEP, "its manifest is not readable"),
]


@pytest.mark.parametrize("case, local, remote, action, reason", REMOVAL_TABLE, ids=[r[0] for r in REMOVAL_TABLE])
def test_plan_removal(case, local, remote, action, reason):
    assert plan_removal(local, remote, DAY, URL) == type(plan_removal(local, remote, DAY, URL))(action, reason)


#: (case, listed state, its reason, manifest, hour files, has archive, unit) -> (state, reason, archive changed, ok)
STATE_TABLE = [
    ("published, archive as exported", "published", "", M, FILES, True, "day", PUBLISHED, "", False, True),
    ("published, archive not compared", "published", "", M, None, None, "day", PUBLISHED, "", None, True),
    ("published, archive changed", "published", "", M, {**FILES, 2: 1}, True, "day", PUBLISHED, "", True, False),
    ("partial", "published", "", PARTIAL_M, NO_05, True, "day", PARTIAL, "1 hours missing (05)", False, False),
    ("partial: before the day was over", "published", "", manifest(over=False), FILES, True, "day", PARTIAL,
     "exported before the day was over", False, False),
    ("missing, the archive has it", "missing", "no day folder", None, None, True, "day", MISSING, "", None, False),
    ("missing, archive not looked at", "missing", "no day folder", None, None, None, "day", MISSING, "archive not looked at",
     None, False),
    ("missing bundle", "missing", "no month folder", None, None, None, "month", MISSING, "", None, False),
    ("no archive", "missing", "no day folder", None, None, False, "day", NO_ARCHIVE, "", None, True),
    ("not published", "unpublished", "no manifest.json", None, None, True, "day", UNPUBLISHED, "no manifest.json",
     None, False),
    # the listing's state is kept (one vocabulary, states.PartitionState), not folded into "unpublished"
    ("damaged", "damaged", "manifest.json without data.parquet", M, None, True, "day", PartitionState.DAMAGED,
     "manifest.json without data.parquet", None, False),
    ("bad manifest", "bad manifest", "not JSON", None, None, True, "day", PartitionState.BAD_MANIFEST, "not JSON", None, False),
]


@pytest.mark.parametrize("case, listed, why, m, files, has_archive, unit, state, reason, changed, ok", STATE_TABLE,
                         ids=[r[0] for r in STATE_TABLE])
def test_partition_state(case, listed, why, m, files, has_archive, unit, state, reason, changed, ok):
    found = partition_state(listed, why, m, files, has_archive, unit)
    assert (found.state, found.archive_changed, found.ok) == (state, changed, ok)
    assert reason in found.reason and (reason or not found.reason)


def test_archive_changes_say_how():
    exported = [{"hour": 1, "size_bytes": 10}, {"hour": 2, "size_bytes": 20}, {"hour": "bad"}, "junk"]
    assert archive_changes(exported, {1: 10, 2: 21, 3: 5}) == ["hour 02 20 -> 21 bytes", "hour 03 new"]
    assert archive_changes(exported, {2: 20}) == ["hour 01 gone"]
    assert archive_changes(exported, {1: 10, 2: 20}) == []
