"""A clean published day to verify, and what the verify tests ask of it (tests/test_verify.py,
tests/test_verify_findings.py): the day, the archive and one export root per layout."""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

import pytest

DAY = date(2026, 1, 15)
AFTER = date(2026, 1, 16)  # "today" for the exports: DAY is a finished day whatever the clock says
#: With this seed none of the day's 48 entries ran longer than 9000 s, so the clean day is a PASS
#: (the generator makes ~2% long cycles; the default seed 7 has one).
CLEAN_SEED = 4
ROWS = 48


def clean_archive(root: Path) -> Path:
    """The archive of DAY, 2 entries an hour."""
    from instrumetriq_polars.synthetic import write_archive_day

    write_archive_day(root, DAY, entries_per_hour=2, seed=CLEAN_SEED)
    return root


def clean_exports(archive: Path, tmp_path_factory) -> dict[str, Path]:
    """One clean export root per layout (never tampered with: tests copy them)."""
    from instrumetriq_polars import export_day
    from instrumetriq_polars.schema import LAYOUTS

    roots = {}
    for layout in LAYOUTS:
        root = tmp_path_factory.mktemp(f"verify_export_{layout}")
        export_day(DAY, str(archive), str(root), layout=layout, today=AFTER)
        roots[layout] = root
    return roots


def day_dir(root: Path) -> Path:
    return root / DAY.isoformat()


def read_manifest(root: Path) -> dict:
    return json.loads((day_dir(root) / "manifest.json").read_text())


def write_manifest(root: Path, data: dict) -> None:
    (day_dir(root) / "manifest.json").write_text(json.dumps(data, indent=2))


def verify(root: Path, **options):
    """``verify_day`` of DAY under ``root``."""
    from instrumetriq_polars import verify_day

    return verify_day(DAY, str(root), **options)


def messages(result, name: str) -> str:
    """The errors and warnings of one check, one a line."""
    check = result.check(name)
    return "\n".join(check.errors + check.warnings)


# The fixtures both verify modules use (each module imports them, so each gets its own
# module-scoped archive and exports, as before).
@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    return clean_archive(tmp_path_factory.mktemp("verify_archive"))


@pytest.fixture(scope="module")
def exports(archive, tmp_path_factory) -> dict[str, Path]:
    """One clean export root per layout (never tampered with: tests copy them)."""
    return clean_exports(archive, tmp_path_factory)


@pytest.fixture
def flat_root(exports, tmp_path) -> Path:
    return Path(shutil.copytree(exports["flat"], tmp_path / "flat"))
