"""``status`` of hours (Tier 2) and monthly bundles: the API's rows and the CLI's lines, JSON and
exit status, locally and on moto's S3 server after export and upload (issue 14, point 3)."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timezone

from instrumetriq_polars.status import healthy, status

from .support.s3 import BUCKET, run


def rows(found) -> dict[str, tuple[str, str]]:
    return {row.name: (row.state, row.reason) for row in found}


def test_status_of_hours_compares_each_with_its_hour_file(tiers, tmp_path):  # noqa: F811
    archive = tmp_path / "archive"
    shutil.copytree(tiers / "archive", archive)
    (archive / "20260115" / "07.jsonl.gz").unlink()
    found = status(str(tiers / "hourly"), "2026-01-15T03", "2026-01-15T07", archive=str(archive))
    assert rows(found) == {"2026-01-15T03": ("published", ""), "2026-01-15T04": ("published", ""),
                           "2026-01-15T05": ("published", ""), "2026-01-15T06": ("missing", ""),
                           "2026-01-15T07": ("archive missing", "nothing in the archive for it, after the archive began: is the collector running?")}
    assert found[0].key == datetime(2026, 1, 15, 3, tzinfo=timezone.utc) and found[0].rows == 1
    assert not healthy(found) and healthy(found[:3]) and not found[4].ok  # an hour file gone after the archive began: an alarm (issue 21)
    with open(archive / "20260115" / "04.jsonl.gz", "ab") as grown:
        grown.write(b"\0")
    [row] = status(str(tiers / "hourly"), "2026-01-15T04", "2026-01-15T04", archive=str(archive))
    assert row.archive_changed and row.changes[0].startswith("hour 04 ") and not row.ok


def test_status_cli_for_hours(tiers, capfd):  # noqa: F811
    base = ["status", "--out-dir", str(tiers / "hourly"), "--archive-path", str(tiers / "archive")]
    code, out, err = run(capfd, *base, "--from-hour", "2026-01-15T03", "--to-hour", "2026-01-15T05")
    assert code == 0, err
    assert [line.split()[:2] for line in out.splitlines()] == [[f"2026-01-15T{hh}", "published"] for hh in ("03", "04", "05")]
    assert "3 hours: 3 published" in err
    code, out, err = run(capfd, *base, "--hour", "2026-01-15T05", "--hour", "2026-01-15T08", "--json")
    assert code == 1
    report = json.loads(out)
    assert report["tier"] == "hourly" and not report["ok"]
    assert [(r["partition"], r["state"]) for r in report["days"]] == [("2026-01-15T05", "published"), ("2026-01-15T08", "missing")]
    assert "not every hour with an archive is published complete" in err
    code, _, err = run(capfd, *base, "--hour", "2026-01-15T05", "--date", "2026-01-15")
    assert code == 2 and err.strip() == "error: give days, hours or months, not several kinds at once"
    code, _, err = run(capfd, *base, "--hour", "2026-01-15T5")
    assert code == 2 and err.strip() == "error: invalid hour '2026-01-15T5': expected YYYY-MM-DDTHH (UTC), e.g. 2026-01-15T05"


def test_status_cli_for_bundles(tiers, tmp_path, capfd):  # noqa: F811
    monthly = tmp_path / "monthly"
    shutil.copytree(tiers / "monthly", monthly)
    path = monthly / "2026-03" / "manifest.json"  # March: a complete bundle
    path.write_text(json.dumps({**json.loads(path.read_text()), "missing_days": [], "is_partial": False}))
    code, out, err = run(capfd, "status", "--out-dir", str(monthly), "--month", "2026-03")
    assert code == 0, err
    assert out.startswith("2026-03  published") and "1 month: 1 published" in err
    code, out, err = run(capfd, "status", "--out-dir", str(monthly), "--month", "2026-01", "--month", "2026-02", "--month", "2026-03")
    lines = out.splitlines()
    assert code == 1 and [line.split()[:2] for line in lines] == [["2026-01", "partial"], ["2026-02", "missing"], ["2026-03", "published"]]
    assert "29 days not published when bundled (2026-01-01, 2026-01-02, 2026-01-03, 2026-01-04 ...)" in lines[0]
    assert "not every month is bundled complete" in err


def test_an_hour_and_a_month_exported_uploaded_verified_and_status_on_s3(s3, tiers, tmp_path, capfd):  # noqa: F811
    archive = str(tiers / "archive")
    code, _, err = run(capfd, "export-hourly", "--hour", "2026-01-15T05", "--archive-path", archive,
                       "--out-dir", str(tmp_path / "hourly"), "--upload")
    assert code == 0, err
    code, _, err = run(capfd, "bundle", "--month", "2026-01", "--from-dir", str(tiers / "daily"), "--out-dir", str(tmp_path / "monthly"), "--upload")
    assert code == 0, err
    code, out, err = run(capfd, "verify", "--r2", "--hour", "2026-01-15T05", "--against-archive", archive)
    assert code == 0 and out.startswith("2026-01-15T05 PASS"), out + err
    code, out, err = run(capfd, "status", "--r2", "--from-hour", "2026-01-15T05", "--to-hour", "2026-01-15T06", "--archive-path", archive)
    assert code == 1 and [line.split()[:2] for line in out.splitlines()] == [["2026-01-15T05", "published"], ["2026-01-15T06", "missing"]]
    code, out, err = run(capfd, "status", "--r2", "--hour", "2026-01-15T05", "--archive-path", archive, "--json")
    assert code == 0 and json.loads(out)["location"] == f"s3://{BUCKET}/tier2/hourly", err
    code, out, err = run(capfd, "status", "--r2", "--month", "2026-01", "--json")
    report = json.loads(out)
    assert report["location"] == f"s3://{BUCKET}/tier3/monthly" and report["days"][0]["state"] == "partial"
    assert code == 1 and report["days"][0]["rows"] == 48
