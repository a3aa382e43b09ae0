"""The layering, asserted in fresh interpreters: the readers import no writer, the package and the
CLI's ``--help`` and ``status`` load neither the export's modules nor the third-party packages
only the export uses (issue 20, step 1); ``export`` and ``export-hourly`` load none of the other
commands' code, and an export that finds its day already published loads no read stage and no
Parquet writer (issue 25: the hourly cron pays start-up every hour)."""

from __future__ import annotations

import json
import subprocess
import sys

from datetime import date

import pytest

from instrumetriq_polars.synthetic import write_archive_day

#: The writing side and what only an export reads through: a reader loading any of them is a bug.
WRITERS = {
    "instrumetriq_polars.write", "instrumetriq_polars.write.parquet", "instrumetriq_polars.write.publish",
    "instrumetriq_polars.write.lock", "instrumetriq_polars.write.flow", "instrumetriq_polars.pipeline",
    "instrumetriq_polars.tiers.daily", "instrumetriq_polars.tiers.monthly",
}
#: The archive's read stage: an export's (and verify's archive cross-check), not a reader's.
READ_STAGE = {
    "instrumetriq_polars.source", "instrumetriq_polars.decode", "instrumetriq_polars.columnar",
    "instrumetriq_polars.normalize", "instrumetriq_polars.frames",
}
#: Third-party modules only the export (or verify's checks) use: they cost start-up time.
HEAVY = {"s3fs", "pyarrow.compute", "pyarrow.csv", "pyarrow.parquet", "orjson"}


def loaded(code: str) -> set[str]:
    """The modules a fresh interpreter has loaded after running ``code``."""
    script = f"import json, sys\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    return set(json.loads(out.splitlines()[-1]))


@pytest.mark.parametrize("code", [
    "import instrumetriq_polars",
    "import instrumetriq_polars.dataset",
    "from instrumetriq_polars import scan, list_partitions, DatasetWarning, Manifest",
    "import instrumetriq_polars.status",
    "from instrumetriq_polars import verify_day",
    "import instrumetriq_polars.planner, instrumetriq_polars.periods",
])
def test_readers_import_no_writer(code):
    modules = loaded(code)
    assert not modules & WRITERS, sorted(modules & WRITERS)
    assert not modules & READ_STAGE, sorted(modules & READ_STAGE)
    assert not modules & HEAVY, sorted(modules & HEAVY)


def test_the_package_imports_nothing_but_errors_until_asked():
    modules = {m for m in loaded("import instrumetriq_polars") if m.startswith("instrumetriq_polars")}
    assert modules == {"instrumetriq_polars", "instrumetriq_polars.errors", "instrumetriq_polars.version"}
    assert "polars" not in loaded("import instrumetriq_polars")


def test_the_public_api_still_resolves_every_name():
    code = ("import instrumetriq_polars as p\n"
            "missing = [n for n in p.__all__ if getattr(p, n, None) is None]\n"
            "assert not missing, missing")
    loaded(code)


def test_the_calendar_is_standard_library_only():
    modules = {m for m in loaded("import instrumetriq_polars.periods") if m.startswith("instrumetriq_polars")}
    assert modules == {"instrumetriq_polars", "instrumetriq_polars.errors", "instrumetriq_polars.version",
                       "instrumetriq_polars.periods"}


def cli_modules(*argv: str) -> set[str]:
    """The modules loaded once the CLI has parsed ``argv`` and run the command (``--help`` exits)."""
    code = ("import sys\nfrom instrumetriq_polars.cli import main\n"
            f"try:\n    main({list(argv)!r})\nexcept SystemExit:\n    pass\n")
    return loaded(code)


def test_help_loads_no_writer_and_no_read_stage():
    modules = cli_modules("--help")
    assert not modules & (WRITERS | READ_STAGE), sorted(modules & (WRITERS | READ_STAGE))
    assert not modules & HEAVY - {"orjson"}, sorted(modules & HEAVY)  # orjson: the live commands' parser


def test_status_loads_no_writer(tmp_path):
    modules = cli_modules("status", "--date", "2026-01-15", "--out-dir", str(tmp_path), "--archive-path", str(tmp_path))
    assert "instrumetriq_polars.status" in modules
    assert not modules & (WRITERS | READ_STAGE), sorted(modules & (WRITERS | READ_STAGE))
    assert not modules & {"s3fs", "pyarrow.compute", "pyarrow.csv", "pyarrow.parquet"}


def test_s3fs_only_for_s3_urls(tmp_path):
    code = f"from instrumetriq_polars import list_partitions\ntry:\n    list_partitions({str(tmp_path)!r})\nexcept Exception:\n    pass"
    assert "s3fs" not in loaded(code)


#: What no export loads: the other commands' code (verify's checks, status, bundle, Tier 1 live),
#: worker processes (--jobs only) and s3fs (s3:// URLs only). The verify package itself is loaded
#: by the parser (its defaults), the dataset by the writer's one-tier check (``write.flow``).
NOT_FOR_EXPORT = {
    "s3fs", "multiprocessing", "instrumetriq_polars.status", "instrumetriq_polars.tiers.monthly",
    "instrumetriq_polars.verify.day", "instrumetriq_polars.verify.files", "instrumetriq_polars.verify.rows",
    "instrumetriq_polars.verify.crosscheck", "instrumetriq_polars.live",
}
#: What an export that reads no hour does not need: the read stage and the Parquet writer.
READING = READ_STAGE | {"instrumetriq_polars.write.parquet", "pyarrow.compute", "pyarrow.parquet"}


def run_modules(*argv: str) -> set[str]:
    """The modules loaded by a whole run of the CLI's entry point (``cli.run``: what ``python -m
    instrumetriq_polars`` calls, the allocator set-up included); the run must succeed."""
    code = ("from instrumetriq_polars.cli import run\n"
            f"try:\n    run({list(argv)!r})\nexcept SystemExit as exc:\n    assert exc.code == 0, exc.code\n")
    return loaded(code)


def not_for_export(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m in NOT_FOR_EXPORT or m.startswith("instrumetriq_polars.live."))


def test_export_loads_only_what_exporting_needs(tmp_path):
    write_archive_day(tmp_path / "archive", date(2026, 1, 15), entries_per_hour=1, seed=1)
    argv = ("export", "--date", "2026-01-15", "--archive-path", str(tmp_path / "archive"), "--out-dir", str(tmp_path / "out"), "--quiet")
    exported = run_modules(*argv)
    assert "instrumetriq_polars.source" in exported and (tmp_path / "out" / "2026-01-15" / "manifest.json").exists()
    assert not not_for_export(exported), not_for_export(exported)
    published = run_modules(*argv)  # the planner finds the day published: no hour is read
    assert "instrumetriq_polars.tiers.daily" in published
    assert not published & READING, sorted(published & READING)
    assert not not_for_export(published), not_for_export(published)


def test_export_hourly_loads_only_what_exporting_needs(tmp_path):
    write_archive_day(tmp_path / "archive", date(2026, 1, 15), entries_per_hour=2, hours=range(5), seed=1)
    modules = run_modules("export-hourly", "--hour", "2026-01-15T03", "--archive-path", str(tmp_path / "archive"),
                          "--out-dir", str(tmp_path / "hourly"), "--quiet")
    assert (tmp_path / "hourly" / "2026-01-15" / "03" / "manifest.json").exists()
    assert not not_for_export(modules), not_for_export(modules)
