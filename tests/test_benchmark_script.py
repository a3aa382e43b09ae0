"""The benchmark script keeps working (a smoke run on a tiny day; its figures are not asserted)."""

import subprocess
import sys

import pytest

from .conftest import ROOT


@pytest.mark.slow
def test_benchmark_script_runs_and_reports_every_figure(tmp_path):
    run = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_export.py"), "--entries-per-hour", "2", "--repeat", "1",
         "--data", str(tmp_path), "--no-check"],
        capture_output=True, text=True, timeout=600,
    )
    assert run.returncode == 0, run.stderr
    for figure in ("decode floor", "entries/s", "MB/s of JSON", "peak RSS: 24-hour day", "export / decode floor", "24h / 6h peak RSS"):
        assert figure in run.stdout
    assert "input: 48 entries" in run.stdout
