"""The layering, asserted in fresh interpreters: the readers import no writer, the package and the
CLI's ``--help`` and ``status`` load neither the export's modules nor the third-party packages
only the export uses (issue 20, step 1)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

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
