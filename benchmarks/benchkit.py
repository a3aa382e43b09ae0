"""What the benchmarks share: archive days generated once and cached, commands run each in a fresh
process with their wall time and peak RSS, the decode floor.

Standard library only at import time: a child that times the decode floor must not pay for
importing Polars or pyarrow it does not use.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: ../shared beside the project root (as in CI); the benchmarks take --shared for a worktree elsewhere.
DEFAULT_SHARED = ROOT.parent / "shared"
FULL_DAY = date(2026, 1, 15)
SIX_HOUR_DAY = date(2026, 1, 16)


@dataclass
class Process:
    """One finished child: its stdout, wall time seen from outside (start to reaped) and peak RSS."""

    stdout: bytes
    seconds: float
    peak_rss_mb: float


def run_process(cmd: list[str], what: str) -> Process:
    """Run ``cmd`` in a fresh process; its peak RSS comes from ``os.wait4`` (Linux: KiB).

    stderr goes to a temporary file (never a pipe nobody reads while the child writes), shown only
    when the child fails.
    """
    with tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err)
        stdout = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            err.seek(0)
            tail = err.read().decode(errors="replace").strip().splitlines()[-5:]
            raise SystemExit(f"{what} failed with exit code {proc.returncode}: " + " | ".join(tail))
    return Process(stdout, seconds, usage.ru_maxrss / 1024)


def run_child(script: str, kind: str, *args: str) -> dict:
    """Run ``script --child KIND ARGS`` (it prints one JSON object); add ``peak_rss_mb`` and
    ``process_seconds`` (the whole process, start-up and imports included)."""
    done = run_process([sys.executable, script, "--child", kind, *args], f"{kind} child")
    result = json.loads(done.stdout)
    result["peak_rss_mb"] = done.peak_rss_mb
    result["process_seconds"] = done.seconds
    return result


def rss_now_mb() -> float:
    """This process's resident set size now (VmRSS), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def hour_files(archive: str | Path, day: str) -> list[Path]:
    return sorted(Path(archive, day.replace("-", "")).glob("*.jsonl.gz"))


def decode_floor(archive: str, day: str) -> dict:
    """The cheapest way to merely read the input: isal gunzip + ``orjson.loads`` of every line."""
    import orjson
    from isal import igzip

    started = time.perf_counter()
    entries = json_bytes = 0
    for path in hour_files(archive, day):
        text = igzip.decompress(path.read_bytes())
        json_bytes += len(text)
        for line in text.split(b"\n"):
            if line.strip():
                orjson.loads(line)
                entries += 1
    return {"seconds": time.perf_counter() - started, "entries": entries, "json_bytes": json_bytes}


def shared_generator(shared: Path) -> Path:
    script = shared / "tools" / "make_archive.py"
    if not script.exists():
        raise SystemExit(f"error: {script} not found: pass --shared DIR (the folder holding tools/make_archive.py)")
    return script


def make_shared_day(shared: Path, archive: Path, day: date, hours: str, entries_per_hour: int, seed: int = 7) -> None:
    """``hours`` of ``day`` from the shared generator (entries cloned from real ones)."""
    subprocess.run([sys.executable, str(shared_generator(shared)), str(archive), "--date", day.isoformat(),
                    "--hours", hours, "--entries-per-hour", str(entries_per_hour), "--seed", str(seed)],
                   check=True, stdout=subprocess.DEVNULL)


def cached_archive(archive: Path, build) -> Path:
    """``archive`` as ``build(archive)`` writes it, built once: a ``.complete`` marker says it was."""
    marker = archive / ".complete"
    if not marker.exists():
        print(f"generating benchmark archive under {archive} (once) ...", file=sys.stderr)
        shutil.rmtree(archive, ignore_errors=True)
        archive.mkdir(parents=True)
        build(archive)
        marker.write_text("ok")
    return archive


def ensure_data(data: Path, entries_per_hour: int, generator: str, shared: Path = DEFAULT_SHARED) -> Path:
    """An archive holding a full-size day (FULL_DAY, 24 hours) and a 6-hour day (SIX_HOUR_DAY).

    ``generator`` is ``project`` (instrumetriq_polars.synthetic) or ``shared`` (make_archive.py).
    """

    def build(archive: Path) -> None:
        if generator == "shared":
            make_shared_day(shared, archive, FULL_DAY, "0-23", entries_per_hour)
            make_shared_day(shared, archive, SIX_HOUR_DAY, "0-5", entries_per_hour)
        else:
            from instrumetriq_polars.synthetic import write_archive_day

            write_archive_day(archive, FULL_DAY, entries_per_hour=entries_per_hour, seed=1)
            write_archive_day(archive, SIX_HOUR_DAY, entries_per_hour=entries_per_hour, hours=range(6), seed=2)

    return cached_archive(data / f"archive-{generator}-{entries_per_hour}", build)
