"""The peer benchmark keeps working (smoke runs on tiny days, 1 run; its timings are not asserted),
and the benchmarks' peak RSS is each command's own."""

import re
import subprocess
import sys

import pytest

from .conftest import MAKE_ARCHIVE, ROOT, SHARED, require_shared

SCRIPT = ROOT / "benchmarks" / "bench_peers.py"
ROW_LABELS = ("decode floor", "`python -m instrumetriq_polars export` (whole process)", "`export_day` timed inside",
              "Polars `read_ndjson", "DuckDB `read_json`")


def run_bench(tmp_path, *args: str) -> str:
    run = subprocess.run([sys.executable, str(SCRIPT), "--runs", "1", "--entries-per-hour", "2", "--data", str(tmp_path),
                          "--shared", str(SHARED), *args],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    return run.stdout


def table_rows(stdout: str, heading: str) -> dict[str, list[str]]:
    """The cells of each row of the table under ``### heading``, by row label."""
    section = stdout.split(f"### {heading}", 1)[1].split("###", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 9 and cells[1].endswith(" s"):
            rows[cells[0]] = cells[1:]
    return rows


def check_table(rows: dict[str, list[str]], labels, entries: int) -> None:
    assert len(rows) == len(labels)
    for label in labels:
        (cells,) = [cells for name, cells in rows.items() if label in name]
        wall, ratio, cpu, system, faults, rss, output, exported = cells
        assert float(wall.removesuffix(" s")) > 0 and ratio.endswith("x") and float(cpu.removesuffix(" s")) > 0
        assert float(system.removesuffix(" s")) >= 0 and int(faults.replace(",", "")) > 0
        assert re.match(r"\d+ MB", rss)
        assert exported == str(entries)  # every command read every entry of the day
        if label != "decode floor":
            assert float(output.removesuffix(" MB")) > 0


@pytest.mark.slow
def test_peer_table_on_the_project_day(tmp_path):
    stdout = run_bench(tmp_path, "--days", "project")
    check_table(table_rows(stdout, "project generator day"), ROW_LABELS, 48)
    assert "48 entries" in stdout and "timed inside their processes: floor" in stdout
    for target in ("whole CLI <= 1.3x floor", "whole CLI <= 0.67x Polars read_ndjson's wall",
                   "export_day in-process <= 1.1x floor", "CPU of the whole CLI <= 2.2 s", "this project's peak RSS <= 200 MB"):
        assert re.search(rf"^(PASS|MISS)  project: {re.escape(target)}: ", stdout, re.M), target
    assert "burst" not in stdout and "real-shaped" not in stdout
    assert re.search(r"^data.parquet sha256 \(every CLI run\): [0-9a-f]{64}$", stdout, re.M)


@pytest.mark.slow
def test_peer_tables_on_the_real_shaped_and_burst_days(tmp_path):
    require_shared(MAKE_ARCHIVE)
    stdout = run_bench(tmp_path, "--days", "real,burst")
    check_table(table_rows(stdout, "real-shaped day (shared"), ROW_LABELS, 48)
    # 23 hours of 2 entries and hour 05 with 20x that
    check_table(table_rows(stdout, "real-shaped day, hour 05"), ROW_LABELS[:3], 23 * 2 + 40)
    assert re.search(r"^(PASS|MISS)  burst: this project's peak RSS <= 250 MB: \d+ MB$", stdout, re.M)


@pytest.mark.slow
def test_a_commands_peak_rss_is_its_own_not_the_benchmarks(tmp_path):
    """Linux carries a process's RSS high-water mark into a program it starts: a benchmark that
    held 300 MB once must still see ~10 MB for a bare interpreter, and a child's own 150 MB."""
    probe = f"""
import sys
sys.path.insert(0, {str(ROOT / "benchmarks")!r})
from benchkit import run_process
block = bytearray(300 * 2**20)
block[::4096] = b"x" * len(block[::4096])
del block
bare = run_process([sys.executable, "-c", "pass"], "bare")
big = run_process([sys.executable, "-c", "b = bytearray(150 * 2**20); b[::4096] = b'x' * len(b[::4096])"], "big")
print(bare.peak_rss_mb, big.peak_rss_mb)
"""
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    bare, big = map(float, run.stdout.split())
    assert bare < 60, bare
    assert 150 <= big < 250, big
