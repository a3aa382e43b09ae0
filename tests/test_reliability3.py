"""Issue 21, "Reliability, round 3", sections 1-4 (local cases; the R2 ones are in
test_reliability3_s3.py, the signal ones in test_reliability3_signals.py).

Each class is tried with the issue's cases and with variants of our own (another tier, another
clutter file, another signal, another bound). Everything goes through the CLI (exit code, one
``error:`` line, no traceback) or the public read API, and the published state is looked at on
disk.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import shutil
import sys
import warnings
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from instrumetriq_polars import DatasetWarning, InstrumetriqError, export_day, scan
from instrumetriq_polars.cli import main
from instrumetriq_polars.synthetic import write_archive_day

DAYS = [date(2026, 1, d) for d in (13, 14, 15)]  # a past month: its bundle is over


def cli(capsys, *argv) -> tuple[int, str, str]:
    """Run the CLI; no traceback may show, whatever happens."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err, err
    return code, out, err


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("error:")]


def one_error(code: int, err: str, codes=(2,)) -> str:
    """An expected failure: the given exit code(s), exactly one ``error:`` line, returned."""
    lines = error_lines(err)
    assert code in codes, f"exit {code}: {err}"
    assert len(lines) == 1, err
    return lines[0]


def utc_today() -> date:
    return datetime.now(timezone.utc).date()


def append_member(path: Path, copies: int = 1) -> None:
    """The collector writing late: one more gzip member (a copy of the file's first entry)."""
    with gzip.open(path, "rb") as f:
        first = f.read().split(b"\n", 1)[0] + b"\n"
    with open(path, "ab") as f:
        for _ in range(copies):
            f.write(gzip.compress(first, mtime=0))


def manifest(folder: Path) -> dict:
    return json.loads((folder / "manifest.json").read_text())


def run(*argv) -> int:
    """The CLI in a fixture (its output left to pytest's capture)."""
    return main([str(a) for a in argv])


@pytest.fixture
def month(tmp_path):
    """Days 2026-01-13 and -14 exported to ``daily`` and bundled into ``monthly``; ``other`` holds
    the same days with other entries, and 2026-01-15. Built in place (a bundle records its days'
    root: a copied bundle would look at the days it was built from)."""
    archive, other = tmp_path / "archive", tmp_path / "other"
    for day in DAYS[:2]:
        write_archive_day(archive, day, entries_per_hour=1)
    for day in DAYS:
        write_archive_day(other, day, entries_per_hour=1, seed=99)
    assert run("export", "--from-date", DAYS[0], "--to-date", DAYS[1], "--archive-path", archive, "--out-dir", tmp_path / "daily") == 0
    assert run("bundle", "--month", "2026-01", "--from-dir", tmp_path / "daily", "--out-dir", tmp_path / "monthly") == 0
    return archive, other, tmp_path / "daily", tmp_path / "monthly"


# -- 1. published state that the next step contradicts ------------------------------------------

def _stale_bundle_named(capsys, monthly: Path, day: str) -> None:
    code, out, err = cli(capsys, "verify", "--local", monthly, "--month", "2026-01")
    assert code == 1, out + err
    assert any(day in line and re.search(r"chang|no longer|since", line) for line in (out + err).splitlines()), out + err
    code, out, err = cli(capsys, "status", "--month", "2026-01", "--out-dir", monthly)
    assert code == 1
    assert any(day in line and re.search(r"chang|no longer|since", line) for line in (out + err).splitlines()), out + err


def test_verify_and_status_month_name_a_day_replaced_since_bundled(month, capsys):
    archive, other, daily, monthly = month
    assert cli(capsys, "export", "--date", DAYS[1], "--archive-path", other, "--out-dir", daily, "--force")[0] == 0
    _stale_bundle_named(capsys, monthly, "2026-01-14")


@pytest.mark.slow
def test_verify_and_status_month_name_a_day_published_since_bundled(month, capsys):
    """Variant: a day missing when the bundle was built is published now."""
    archive, other, daily, monthly = month
    assert cli(capsys, "export", "--date", DAYS[2], "--archive-path", other, "--out-dir", daily)[0] == 0
    _stale_bundle_named(capsys, monthly, "2026-01-15")


@pytest.mark.slow
def test_verify_and_status_month_name_a_day_unpublished_since_bundled(month, capsys):
    """Variant: a day of the bundle is no longer published (its manifest removed)."""
    archive, other, daily, monthly = month
    (daily / str(DAYS[0]) / "manifest.json").unlink()
    _stale_bundle_named(capsys, monthly, "2026-01-13")


@pytest.mark.slow
def test_bundle_of_unchanged_days_still_verifies_quietly(month, capsys):
    """The guard beside the three above: nothing changed, nothing named."""
    archive, other, daily, monthly = month
    code, out, err = cli(capsys, "verify", "--local", monthly, "--month", "2026-01")
    assert code == 0 and "2026-01-13" not in out and "2026-01-14" not in out, out


# -- 2. one completeness rule for every tier ----------------------------------------------------

@pytest.mark.parametrize("minutes, next_file, over", [(1, False, False), (1, True, True), (3, False, True)])
def test_a_day_is_over_when_its_last_hour_is_complete(tmp_path, minutes, next_file, over):
    """At D+1 00:01 hour D T23 may still grow (the hourly rule), so day D is not over either;
    the next day's 00 file, or the grace period, ends it. Variants: the next file, 00:03."""
    archive, out = tmp_path / "archive", tmp_path / "out"
    day = DAYS[1]
    write_archive_day(archive, day, entries_per_hour=1)
    if next_file:
        write_archive_day(archive, day + timedelta(days=1), entries_per_hour=1, hours=[0])
    now = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=timezone.utc) + timedelta(minutes=minutes)
    from instrumetriq_polars import export_hour

    hourly = tmp_path / "hourly"
    if over:
        assert export_day(day, archive, out, now=now).manifest.day_over_at_export is True
        assert export_hour(f"{day}T23", archive, hourly, now=now).manifest.day_over_at_export is True
    else:
        with pytest.raises(InstrumetriqError, match="23"):
            export_day(day, archive, out, now=now)
        with pytest.raises(InstrumetriqError, match="23"):
            export_hour(f"{day}T23", archive, hourly, now=now)
        partial = export_day(day, archive, out, now=now, allow_incomplete=True).manifest
        assert partial.day_over_at_export is False and partial.is_partial


def _recent_day(tmp_path, back: int = 2) -> tuple[Path, Path, date]:
    archive, out = tmp_path / "archive", tmp_path / "out"
    day = utc_today() - timedelta(days=back)
    write_archive_day(archive, day, entries_per_hour=1)
    return archive, out, day


def test_daily_catch_up_takes_late_entries_of_a_published_day(tmp_path, capsys):
    """A complete published day whose hour file grew (the collector writing late): catch-up
    follows the archive once, then leaves the day alone; status agrees at each step."""
    archive, out, day = _recent_day(tmp_path)
    args = ("export", "--catch-up", 2, "--archive-path", archive, "--out-dir", out)
    assert cli(capsys, *args)[0] == 0
    rows = manifest(out / str(day))["row_count"]
    append_member(archive / f"{day:%Y%m%d}" / "23.jsonl.gz")
    code, out_text, err = cli(capsys, "status", "--date", day, "--out-dir", out, "--archive-path", archive)
    assert code == 1 and "archive changed" in out_text
    for _ in range(2):  # the first run takes the late entry, the second has nothing to do
        code, out_text, err = cli(capsys, *args)
        assert code == 0, err
        assert manifest(out / str(day))["row_count"] == rows + 1
    assert "0 exported" in err and "0 failed" in err
    assert cli(capsys, "status", "--date", day, "--out-dir", out, "--archive-path", archive)[0] == 0


def test_hourly_catch_up_takes_late_entries_of_a_published_hour(tmp_path, capsys):
    """Variant: the hourly tier; the README says catch-up leaves published hours as they are,
    and it failed every run on an hour whose file grew later."""
    archive, out = tmp_path / "archive", tmp_path / "out"
    now = datetime.now(timezone.utc)
    hours = [(now - timedelta(minutes=2)).replace(minute=0, second=0, microsecond=0) - timedelta(hours=i) for i in (4, 3, 2, 1)]
    for start in hours:
        write_archive_day(archive, start.date(), entries_per_hour=1, hours=[start.hour])
    args = ("export-hourly", "--catch-up", 4, "--archive-path", archive, "--out-dir", out)
    assert cli(capsys, *args)[0] == 0
    grown = hours[0]
    folder = out / f"{grown:%Y-%m-%d}" / f"{grown:%H}"
    rows = manifest(folder)["row_count"]
    append_member(archive / f"{grown:%Y%m%d}" / f"{grown:%H}.jsonl.gz", copies=2)
    for _ in range(2):
        code, _, err = cli(capsys, *args)
        assert code == 0, err
        assert manifest(folder)["row_count"] == rows + 2
    code, out_text, _ = cli(capsys, "status", "--hour", f"{grown:%Y-%m-%dT%H}", "--out-dir", out, "--archive-path", archive)
    assert code == 0, out_text


def test_catch_up_leaves_a_rewritten_archive_day_to_status_and_does_not_fail_nightly(tmp_path, capsys):
    """Variant: an hour file that shrank is not the collector writing late: catch-up does not
    replace the day (or fail every night on it); status raises the alarm."""
    archive, out, day = _recent_day(tmp_path)
    args = ("export", "--catch-up", 2, "--archive-path", archive, "--out-dir", out)
    assert cli(capsys, *args)[0] == 0
    before = manifest(out / str(day))
    hour = archive / f"{day:%Y%m%d}" / "07.jsonl.gz"
    hour.write_bytes(gzip.compress(b"", mtime=0))  # smaller: rewritten, not appended to
    for _ in range(2):
        code, _, err = cli(capsys, *args)
        assert code == 0, err
        assert "07" in err and manifest(out / str(day))["parquet_sha256"] == before["parquet_sha256"]
    code, out_text, _ = cli(capsys, "status", "--date", day, "--out-dir", out, "--archive-path", archive)
    assert code == 1 and "archive changed" in out_text


@pytest.mark.parametrize("clutter", ["dangling", "notes", "folder"])
def test_an_archive_folder_without_a_readable_hour_file_is_one_state(tmp_path, capsys, clutter):
    """status and catch-up agree on a day folder with no readable hour file: both say what is
    wrong and both fail (variants: a notes file, a folder named like an hour file)."""
    archive, out = tmp_path / "archive", tmp_path / "out"
    day = utc_today() - timedelta(days=2)
    write_archive_day(archive, day - timedelta(days=1), entries_per_hour=1)  # the archive runs
    out.mkdir()
    folder = archive / f"{day:%Y%m%d}"
    folder.mkdir()
    if clutter == "dangling":
        (folder / "05.jsonl.gz").symlink_to(tmp_path / "nowhere.jsonl.gz")
    elif clutter == "notes":
        (folder / "notes.txt").write_text("disk replaced\n")
    else:
        (folder / "05.jsonl.gz").mkdir()
    code, out_text, err = cli(capsys, "status", "--date", day, "--out-dir", out, "--archive-path", archive)
    assert code == 1, out_text + err
    assert "no archive" not in out_text
    code, _, err = cli(capsys, "export", "--catch-up", 2, "--archive-path", archive, "--out-dir", out)
    assert code == 1 and str(day) in err


def test_a_stopped_collector_is_an_alarm(tmp_path, capsys):
    """Over days with no archive folder after the archive's first day: status exit 1 "archive
    missing", catch-up warns; days before the archive began stay "no archive"."""
    archive, out = tmp_path / "archive", tmp_path / "out"
    today = utc_today()
    started, stopped = today - timedelta(days=5), today - timedelta(days=3)
    for day in (started, started + timedelta(days=1)):
        write_archive_day(archive, day, entries_per_hour=1)
    code, _, err = cli(capsys, "export", "--catch-up", 7, "--archive-path", archive, "--out-dir", out)
    assert code == 0
    warned = [line for line in err.splitlines() if line.startswith("warning:") and "archive missing" in line]
    assert warned and all(str(stopped + timedelta(days=i)) in " ".join(warned) for i in range(3)), err
    code, out_text, _ = cli(capsys, "status", "--days", 7, "--out-dir", out, "--archive-path", archive, "--json")
    assert code == 1
    states = {row["partition"]: row["state"] for row in json.loads(out_text)["days"]}
    assert states[str(stopped)] == "archive missing" and states[str(today - timedelta(days=1))] == "archive missing"
    assert states[str(today - timedelta(days=7))] == "no archive"  # before the archive began
    assert states[str(started)] == "published"


def test_a_stopped_collector_is_an_alarm_for_hours(tmp_path, capsys):
    """Variant: the hourly tier, a gap of hour files after the archive began."""
    archive, out = tmp_path / "archive", tmp_path / "out"
    day = utc_today() - timedelta(days=2)
    write_archive_day(archive, day, entries_per_hour=1, hours=range(0, 6))
    assert cli(capsys, "export-hourly", "--hour", f"{day}T04", "--archive-path", archive, "--out-dir", out)[0] == 0
    code, out_text, err = cli(capsys, "status", "--from-hour", f"{day}T04", "--to-hour", f"{day}T09",
                              "--out-dir", out, "--archive-path", archive, "--json")
    states = {row["partition"]: row["state"] for row in json.loads(out_text)["days"]}
    assert code == 1 and states[f"{day}T07"] == "archive missing", out_text + err


# -- 3. a root is one tier, robust to clutter ---------------------------------------------------

@pytest.fixture(scope="module")
def pristine_roots(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("roots")
    archive = root / "archive"
    for day in DAYS[:2]:
        write_archive_day(archive, day, entries_per_hour=1)
    assert run("export", "--from-date", DAYS[0], "--to-date", DAYS[1], "--archive-path", archive, "--out-dir", root / "daily") == 0
    assert run("export-hourly", "--hour", f"{DAYS[0]}T05", "--archive-path", archive, "--out-dir", root / "hourly") == 0
    assert run("bundle", "--month", "2026-01", "--from-dir", root / "daily", "--out-dir", root / "monthly") == 0
    return root


@pytest.fixture
def roots(pristine_roots, tmp_path):
    """A daily root (2026-01-13..14), an hourly root (2026-01-13T05) and a monthly root (2026-01)."""
    root = Path(shutil.copytree(pristine_roots, tmp_path / "roots"))
    return root / "archive", {"daily": root / "daily", "hourly": root / "hourly", "monthly": root / "monthly"}


# (root, clutter made under it, the name the warning must give): the three, then ours
CLUTTER = [
    ("daily", "2026-05/", "2026-05"),
    ("daily", "2026-01-13/00/", "2026-01-13/00"),
    ("hourly", "2026-01-13/.DS_Store", ".DS_Store"),
    ("monthly", "2026-01-20/", "2026-01-20"),
    ("hourly", "2026-02/", "2026-02"),
    ("daily", "2026-01-14/05/Thumbs.db", "2026-01-14/05"),
]


def _make(root: Path, clutter: str) -> None:
    path = root / clutter
    if clutter.endswith("/"):
        path.mkdir(parents=True)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\0")


@pytest.mark.parametrize("tier, clutter, named", CLUTTER)
def test_clutter_is_ignored_with_a_warning_naming_it(roots, capsys, tier, clutter, named):
    archive, root_of = roots
    root = root_of[tier]
    rows = scan(root).select("snapshot_ts").collect().height
    _make(root, clutter)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        assert scan(root).select("snapshot_ts").collect().height == rows
    assert any(named in str(w.message) for w in seen if issubclass(w.category, DatasetWarning)), [str(w.message) for w in seen]
    what = {"daily": ("--date", DAYS[0]), "hourly": ("--hour", f"{DAYS[0]}T05"), "monthly": ("--month", "2026-01")}[tier]
    code, out, err = cli(capsys, "status", *what, "--out-dir", root, "--archive-path", archive)
    assert "several tiers" not in err and any(named in line for line in err.splitlines() if line.startswith("warning:")), err
    assert code == (1 if tier == "monthly" else 0), out + err  # the month's bundle is partial: exit 1 as before
    if tier == "daily":
        assert cli(capsys, "bundle", "--month", "2026-01", "--from-dir", root, "--out-dir", root.parent / "m2")[0] == 0


# (command, the tier it writes, the root of another tier it is pointed at): the two, then ours
WRONG_ROOT = [
    ("bundle", "daily"),
    ("export-hourly", "daily"),
    ("export", "hourly"),
    ("export", "monthly"),
    ("bundle", "hourly"),
    ("export-hourly", "monthly"),
]


@pytest.mark.parametrize("command, into", WRONG_ROOT)
def test_a_writer_refuses_a_root_of_another_tier_before_writing(roots, capsys, command, into):
    archive, root_of = roots
    root = root_of[into]
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    args = {
        "bundle": ("bundle", "--month", "2026-01", "--from-dir", root_of["daily"]),
        "export-hourly": ("export-hourly", "--hour", f"{DAYS[1]}T06", "--archive-path", archive),
        "export": ("export", "--date", DAYS[1], "--archive-path", archive, "--force"),
    }[command]
    code, out, err = cli(capsys, *args, "--out-dir", root)
    line = one_error(code, err, codes=(1, 2))
    assert into in line, line
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before


# (what the folder is, the option given for another partition): the issue's, then ours
@pytest.mark.parametrize("folder, option", [
    ("hourly/2026-01-13/05", ("--hour", "2026-01-13T06")),
    ("monthly/2026-01", ("--month", "2026-02")),
    ("hourly/2026-01-13/05", ()),
    ("monthly/2026-01", ()),
    ("hourly/2026-01-13/05", ("--date", "2026-01-13")),
    ("monthly/2026-01", ("--hour", "2026-01-13T05")),
    ("hourly/2026-01-13/05", ("--month", "2026-01")),
])
def test_verify_of_a_partition_folder_never_invents_a_path(roots, capsys, folder, option):
    """Either a usage error, or the folder's own partition verified: never a FAIL for a path
    that is the folder with another partition's path appended."""
    archive, root_of = roots
    location = root_of["daily"].parent / folder
    code, out, err = cli(capsys, "verify", "--local", location, *option)
    assert str(location) + "/20" not in out + err, out + err
    if code == 2:
        one_error(code, err)
    else:
        own = folder.split("/", 1)[1].replace("/", "T")
        assert code == 0 and own in out, out + err


def test_a_failed_hourly_export_leaves_no_day_folder(tmp_path, capsys):
    archive, out = tmp_path / "archive", tmp_path / "out"
    folder = archive / f"{DAYS[0]:%Y%m%d}"
    folder.mkdir(parents=True)
    (folder / "05.jsonl.gz").write_bytes(gzip.compress(b"this is not json\n", mtime=0))
    code, _, err = cli(capsys, "export-hourly", "--hour", f"{DAYS[0]}T05", "--archive-path", archive, "--out-dir", out)
    assert code == 1
    assert not (out / str(DAYS[0])).exists(), sorted(map(str, out.rglob("*")))


def test_a_failed_hourly_export_beside_a_published_hour_keeps_only_that_hour(tmp_path, capsys):
    """Variant: the day folder holds another published hour: it stays, nothing else does."""
    archive, out = tmp_path / "archive", tmp_path / "out"
    write_archive_day(archive, DAYS[0], entries_per_hour=1, hours=[4])
    (archive / f"{DAYS[0]:%Y%m%d}" / "05.jsonl.gz").write_bytes(gzip.compress(b"{not json\n", mtime=0))
    assert cli(capsys, "export-hourly", "--hour", f"{DAYS[0]}T04", "--archive-path", archive, "--out-dir", out)[0] == 0
    assert cli(capsys, "export-hourly", "--hour", f"{DAYS[0]}T05", "--archive-path", archive, "--out-dir", out)[0] == 1
    assert sorted(p.name for p in (out / str(DAYS[0])).iterdir()) == ["04"]


def test_a_failed_hourly_run_of_several_hours_leaves_no_empty_day(tmp_path, capsys):
    """Variant: a range over two days where every hour of the second day fails."""
    archive, out = tmp_path / "archive", tmp_path / "out"
    write_archive_day(archive, DAYS[0], entries_per_hour=1, hours=[23])
    folder = archive / f"{DAYS[1]:%Y%m%d}"
    folder.mkdir(parents=True)
    for hour in (0, 1):
        (folder / f"{hour:02d}.jsonl.gz").write_bytes(gzip.compress(b"[1, 2\n", mtime=0))
    code, _, _ = cli(capsys, "export-hourly", "--from-hour", f"{DAYS[0]}T23", "--to-hour", f"{DAYS[1]}T01",
                     "--archive-path", archive, "--out-dir", out)
    assert code == 1 and sorted(p.name for p in out.iterdir()) == [str(DAYS[0])]


# -- 4. every input at its edges is one line ----------------------------------------------------

EDGES = [  # (argv after the command, which root it needs): the issue's, then ours
    ("export-hourly --hour 9999-12-31T23", "hourly"),
    ("status --hour 9999-12-31T23", "hourly"),
    ("status --date 9999-12-31", "daily"),
    ("status --month 9999-12", "monthly"),
    ("status --hours 100000000", "hourly"),
    ("status --days 1000000", "daily"),
    ("export --catch-up 1000000", "daily"),
    ("export-hourly --catch-up 100000000", "hourly"),
    ("status --from-hour 9999-12-31T22 --to-hour 9999-12-31T23", "hourly"),
    ("status --from-date 9999-12-30 --to-date 9999-12-31", "daily"),
    ("export --date 9999-12-31", "daily"),
    ("status --month 9999-11 --month 9999-12", "monthly"),
    ("status --date 0001-01-01", "daily"),
    ("status --hour 0001-01-01T00", "hourly"),
    ("status --days 800000", "daily"),
]


@pytest.mark.parametrize("argv, tier", EDGES)
def test_edges_of_the_calendar_are_one_line(roots, capsys, argv, tier):
    archive, root_of = roots
    code, out, err = cli(capsys, *argv.split(), "--archive-path", archive, "--out-dir", root_of[tier])
    assert len(error_lines(err)) <= 1, err
    if error_lines(err):
        assert code in (1, 2), err
    if re.search(r"--(hours|days|catch-up) [0-9]{6,}", argv):
        one_error(code, err)  # a count beyond the calendar: a usage error


@pytest.mark.parametrize("tier, start, end", [
    ("daily", "9999-12-31", "9999-12-31"),
    ("daily", "9999-12-31", None),
    ("hourly", "9999-12-31T23", "9999-12-31T23"),
    ("hourly", "9999-12-31", "9999-12-31"),
    ("monthly", "9999-12", "9999-12"),
    ("monthly", "9999-12", None),
    ("daily", "0001-01-01", "0001-01-02"),
])
def test_edges_of_the_calendar_through_scan(roots, tier, start, end):
    archive, root_of = roots
    with pytest.raises(InstrumetriqError):
        scan(root_of[tier], start, end).collect()


@pytest.mark.parametrize("what", [("--hour", "2026-01-13T05"), ("--month", "2026-01"), ("--date", "2026-01-13")])
def test_verify_sample_size_zero_is_a_usage_error(roots, capsys, what):
    archive, root_of = roots
    root = root_of[{"--hour": "hourly", "--month": "monthly", "--date": "daily"}[what[0]]]
    code, _, err = cli(capsys, "verify", "--local", root, *what, "--sample-size", 0)
    one_error(code, err)
    code, _, err = cli(capsys, "verify", "--local", root, *what, "--sample-size", -5)
    one_error(code, err)


@pytest.mark.parametrize("what", [("--hour", "2026-01-13T05"), ("--month", "2026-01"), ("--date", "2026-01-13")])
@pytest.mark.parametrize("report", ["/proc/no/such/report.md", "FILE/report.md"])
def test_verify_unwritable_report_is_one_line(roots, capsys, what, report, tmp_path):
    archive, root_of = roots
    (tmp_path / "FILE").write_text("a file, not a folder")
    report = report.replace("FILE", str(tmp_path / "FILE"))
    root = root_of[{"--hour": "hourly", "--month": "monthly", "--date": "daily"}[what[0]]]
    code, _, err = cli(capsys, "verify", "--local", root, *what, "--report", report)
    assert "report" in one_error(code, err, codes=(1,))


@pytest.mark.parametrize("damage", ["middle", "footer", "header"])
def test_bundle_of_a_day_damaged_in_place_names_the_day(roots, capsys, tmp_path, damage):
    """The same size, other bytes: the middle of the data (the issue's), its footer, its magic."""
    archive, root_of = roots
    data = root_of["daily"] / str(DAYS[1]) / "data.parquet"
    raw = bytearray(data.read_bytes())
    at = {"middle": len(raw) // 2, "footer": len(raw) - 40, "header": 0}[damage]
    raw[at:at + 16] = bytes(b ^ 0xA5 for b in raw[at:at + 16])
    data.write_bytes(bytes(raw))
    code, _, err = cli(capsys, "bundle", "--month", "2026-01", "--from-dir", root_of["daily"], "--out-dir", tmp_path / "m2", "--force")
    assert str(DAYS[1]) in one_error(code, err, codes=(1,))
    assert not any(p.name.startswith(".") for p in (tmp_path / "m2").rglob("*"))


@pytest.mark.parametrize("argv, named, not_named", [
    ("status --hours 0", "--hours", "--catch-up"),
    ("status --hours -3", "--hours", "--catch-up"),
    ("status --days 0", "--days", "--catch-up"),
    ("export-hourly --catch-up 0", "--catch-up", "--hours"),
    ("export --catch-up 0", "--catch-up", "--days "),
    ("status --from-hour 2026-01-13T05 --to-hour 2026-01-13T04", "--to-hour", "--catch-up"),
])
def test_messages_name_the_option_given(roots, capsys, argv, named, not_named):
    archive, root_of = roots
    code, _, err = cli(capsys, *argv.split(), "--archive-path", archive, "--out-dir", root_of["hourly"])
    line = one_error(code, err)
    assert named in line and not_named not in line, line


def test_years_below_1000_keep_their_leading_zeros(tmp_path, capsys):
    """The issue's hour, then ours: the day's archive folder, the day, the month's label."""
    archive, daily, hourly = tmp_path / "archive", tmp_path / "daily", tmp_path / "hourly"
    day = date(999, 6, 1)
    write_archive_day(archive, day, entries_per_hour=1)
    if not (archive / "09990601").is_dir():  # the generator's own folder name (strftime: 9990601)
        (archive / "9990601").rename(archive / "09990601")
    code, out, err = cli(capsys, "export-hourly", "--hour", "0999-06-01T05", "--archive-path", archive, "--out-dir", hourly)
    assert code == 0, err
    assert (hourly / "0999-06-01" / "05" / "manifest.json").exists() and "0999-06-01T05" in out
    code, out, err = cli(capsys, "export", "--date", "0999-06-01", "--archive-path", archive, "--out-dir", daily)
    assert code == 0, err
    assert manifest(daily / "0999-06-01")["archive_day"] == "09990601"
    (tmp_path / "monthly").mkdir()
    code, out, err = cli(capsys, "status", "--month", "0999-06", "--out-dir", tmp_path / "monthly")
    assert "0999-06" in out + err and " 999-06" not in out + err


@pytest.mark.parametrize("stdin", ["", "https://example.invalid\n"])
def test_config_without_a_terminal_is_one_line(tmp_path, capsys, monkeypatch, stdin):
    """stdin not a terminal (cron, CI, a pipe): no prompt, one line saying what to give."""
    monkeypatch.setenv("HOME", str(tmp_path))
    for var in ("R2_ENDPOINT", "R2_ACCESS_KEY_ID", "R2_SECRET_ACCESS_KEY", "R2_BUCKET"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code, _, err = cli(capsys, "config")
    line = one_error(code, err)
    assert "--endpoint" in line or "R2_ENDPOINT" in line, line


def test_config_takes_its_settings_from_the_environment_without_a_terminal(tmp_path, capsys, monkeypatch):
    """The non-interactive path: R2_* in the environment are stored; nothing is asked."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    values = {"R2_ENDPOINT": "https://acct.r2.cloudflarestorage.com", "R2_ACCESS_KEY_ID": "id-1",
              "R2_SECRET_ACCESS_KEY": "secret-1", "R2_BUCKET": "bucket-1"}
    for var, value in values.items():
        monkeypatch.setenv(var, value)
    code, out, err = cli(capsys, "config")
    assert code == 0, err
    stored = next(p for p in tmp_path.rglob("*") if p.is_file()).read_text()
    assert all(value in stored for value in values.values())
    assert "secret-1" not in out + err
