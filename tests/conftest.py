"""Shared fixtures. ../shared (beside the project root) holds the real sample and make_archive.py;
tests that need it skip when it is absent, except in CI (CI=true), where they must run.

S3: ONE moto server per test run (``moto``, session-scoped, 127.0.0.1), reset before each test
that asks for ``s3``; helpers to look at it are in tests/support/s3.py.

Markers: ``slow`` (more than a few seconds: the long property, fuzz, crash, signal, benchmark and
Spark tests) and ``spark`` (starts a JVM). ``pytest -q`` deselects ``slow`` (pyproject.toml's
addopts); ``pytest -q -n 0 -m "slow or not slow"`` runs everything in one process, as CI does."""

from __future__ import annotations

import gzip
import json
import logging
import os
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from hypothesis import settings

from instrumetriq_polars.synthetic import write_archive_day

from .support import s3 as s3_support  # names only: moto and boto3 load when a test asks for S3

# Lines compared as text are unstamped (tests/test_ops.py checks the stamps); children inherit it.
os.environ["INSTRUMETRIQ_LOG_TIMESTAMPS"] = "0"

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
SAMPLE = SHARED / "fixtures" / "archive_sample_2026-01-01.jsonl.gz"
MAKE_ARCHIVE = SHARED / "tools" / "make_archive.py"
DAY = date(2026, 1, 15)


def require_shared(path: Path) -> Path:
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{path} is missing: CI must have ../shared beside the project")
        pytest.skip(f"{path} not found (../shared is not beside the project)")
    return path


@pytest.fixture(scope="session")
def sample_entries() -> list[dict]:
    """The 147 real archive entries, decoded by the standard library (the reference decoder)."""
    with gzip.open(require_shared(SAMPLE), "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


@pytest.fixture(scope="session")
def sample_archive(tmp_path_factory) -> Path:
    """An archive whose day 2026-01-01 holds the real sample, split over its 24 hours."""
    require_shared(SAMPLE)
    root = tmp_path_factory.mktemp("sample_archive")
    folder = root / "20260101"
    folder.mkdir()
    with gzip.open(SAMPLE, "rb") as f:
        lines = [line for line in f.read().split(b"\n") if line.strip()]
    for hour in range(24):
        chunk = lines[hour::24]
        (folder / f"{hour:02d}.jsonl.gz").write_bytes(gzip.compress(b"\n".join(chunk) + b"\n", mtime=0))
    return root


def make_archive(root: Path, day: str, *extra_args: str, entries_per_hour: int = 5) -> Path:
    """Run ../shared/tools/make_archive.py (the shared generator) into ``root``."""
    require_shared(MAKE_ARCHIVE)
    subprocess.run(
        [sys.executable, str(MAKE_ARCHIVE), str(root), "--date", day, "--entries-per-hour", str(entries_per_hour), *extra_args],
        check=True, capture_output=True,
    )
    return root


@pytest.fixture
def small_archive(tmp_path) -> Path:
    """A complete synthetic day (project's own generator), 3 entries an hour."""
    root = tmp_path / "archive"
    write_archive_day(root, DAY, entries_per_hour=3)
    return root


def copy_archive(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


@pytest.fixture(scope="module")
def tiers(tmp_path_factory) -> Path:
    """Roots of every tier from one archive (tests/support/tiers.py): ``archive``, ``daily``,
    ``hourly`` (hours 03-05) and ``monthly`` (January, and a copy of it as March)."""
    from .support.tiers import build_tiers

    return build_tiers(tmp_path_factory.mktemp("tiers"))


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A small day (one entry an hour) and its destinations, for killing the export right before
    each file change it makes (tests/support/kills.py)."""
    from .support.kills import World

    return World(tmp_path_factory.mktemp("crash"), entries_per_hour=1)


@pytest.fixture(scope="module")
def big_world(tmp_path_factory):
    """A day long enough that random kills land while hours are written and published."""
    from .support.kills import ENTRIES_PER_HOUR, World

    return World(tmp_path_factory.mktemp("crash_big"), entries_per_hour=ENTRIES_PER_HOUR)


@pytest.fixture(scope="session")
def moto():
    """The test run's one S3 server (moto, 127.0.0.1, a free port). A test may stop it; ``s3``
    starts it again."""
    werkzeug = logging.getLogger("werkzeug")
    level, werkzeug.level = werkzeug.level, logging.ERROR  # no request log lines in captured output
    server = s3_support.MotoS3()
    server.start()
    yield server
    server.stop()
    werkzeug.setLevel(level)


@pytest.fixture
def home(tmp_path, monkeypatch):
    """An empty $HOME and no R2/AWS settings in the environment."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    s3_support.clear_r2_env(monkeypatch)
    return home


@pytest.fixture
def s3(moto, home, monkeypatch):
    """The server reset, holding an empty bucket; R2 settings (dummy credentials) in the
    environment. Returns an s3fs filesystem for looking at the bucket."""
    from s3fs import S3FileSystem

    import requests

    moto.start()
    requests.post(f"{moto.endpoint}/moto-api/reset", timeout=10).raise_for_status()
    S3FileSystem.clear_instance_cache()
    monkeypatch.setenv("R2_ENDPOINT", moto.endpoint)
    monkeypatch.setenv("R2_ACCESS_KEY_ID", s3_support.KEY_ID)
    monkeypatch.setenv("R2_SECRET_ACCESS_KEY", s3_support.SECRET)
    fs = S3FileSystem(key=s3_support.KEY_ID, secret=s3_support.SECRET, endpoint_url=moto.endpoint, skip_instance_cache=True)
    fs.mkdir(s3_support.BUCKET)
    yield fs
    S3FileSystem.clear_instance_cache()


@pytest.fixture
def server_requests(monkeypatch):
    """Every request the moto server answers, as "METHOD /path?query", observed by the server's
    own request handler (werkzeug logs each request through ``log_request``)."""
    from moto.moto_server.werkzeug_app import MotoRequestHandler

    seen: list[str] = []
    monkeypatch.setattr(MotoRequestHandler, "log_request", lambda self, code="-", size="-": seen.append(f"{self.command} {self.path}"))
    return seen


# Hypothesis: in CI (CI set) the property tests are deterministic (derandomize: the same examples
# on every run, from the test's own source) and keep no example database; elsewhere examples are
# random and failures are remembered in .hypothesis/. HYPOTHESIS_PROFILE=ci|dev picks one by hand.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
settings.register_profile("dev")
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev"))


# The fast run's budgets. A long test whose size is a knob keeps a short version in the fast run
# (the same test, a smaller budget) and gets its full budget in the full run: the fuzz test's hour
# files (FUZZ_CASES, unless set by hand) and every hypothesis test's examples.
FAST_ENV = {"FUZZ_CASES": "96"}  # 4 days of fuzzed hour files (the full run: the test's 2,400)
FAST_MAX_EXAMPLES = 10


def full_run(config) -> bool:
    """Whether this run selects the tests marked slow (the full suite), by its -m expression."""
    expression = config.getoption("markexpr") or ""
    try:
        from _pytest.mark.expression import Expression  # the expression language -m itself uses
    except ImportError:  # a pytest without it: the one expression the fast default uses
        return expression.strip() != "not slow"
    return not expression or Expression.compile(expression).evaluate(lambda name: name == "slow")


def pytest_configure(config):
    if not full_run(config):
        for name, value in FAST_ENV.items():
            os.environ.setdefault(name, value)


@pytest.hookimpl(tryfirst=True)  # before -m selects on the markers
def pytest_collection_modifyitems(config, items):
    """A test that starts Spark's JVM is slow, whatever else it is. In the fast run, a hypothesis
    test runs at most FAST_MAX_EXAMPLES examples."""
    fast = not full_run(config)
    for item in items:
        if item.get_closest_marker("spark") and not item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.slow)
        test = getattr(item, "obj", None)
        # @settings stores a test's settings here; hypothesis refuses a second @settings
        chosen = getattr(test, "_hypothesis_internal_use_settings", None)
        if fast and chosen is not None and chosen.max_examples > FAST_MAX_EXAMPLES:
            test._hypothesis_internal_use_settings = settings(chosen, max_examples=FAST_MAX_EXAMPLES)
