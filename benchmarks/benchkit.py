"""What the benchmarks share: archive days generated once and cached, commands run each in a fresh
process with their wall time and peak RSS, the decode floor.

Standard library only at import time: a child that times the decode floor must not pay for
importing Polars or pyarrow it does not use.
"""

from __future__ import annotations

import hashlib
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
#: The project generator's source: its sha256 versions the cached days (it is not imported here).
PROJECT_GENERATOR = ROOT / "instrumetriq_polars" / "synthetic.py"
FULL_DAY = date(2026, 1, 15)
SIX_HOUR_DAY = date(2026, 1, 16)


@dataclass
class Process:
    """One finished command: its stdout, wall time (spawned to reaped), peak RSS, CPU time (user and
    system) and page faults (minor: a page mapped; major: read from disk)."""

    stdout: bytes
    seconds: float
    peak_rss_mb: float
    user_seconds: float = 0.0
    system_seconds: float = 0.0
    minor_faults: int = 0
    major_faults: int = 0


# Starts the command, reaps it and writes "seconds maxrss_kib exit_code utime stime minflt majflt" to the fd in argv[1].
_SPAWNER = """
import os, sys, time
report = int(sys.argv[1])
os.set_inheritable(report, False)
started = time.perf_counter()
pid = os.posix_spawn(sys.argv[2], sys.argv[2:], os.environ)
_, status, usage = os.wait4(pid, 0)
os.write(report, f"{time.perf_counter() - started} {usage.ru_maxrss} {os.waitstatus_to_exitcode(status)} "
                 f"{usage.ru_utime} {usage.ru_stime} {usage.ru_minflt} {usage.ru_majflt}".encode())
"""


def cache_bytecode(folder: Path) -> None:
    """Let every child this process starts keep compiled bytecode under ``folder``, as an installed
    package does, and compile the project there now. A machine that sets
    ``PYTHONDONTWRITEBYTECODE`` (this one does) otherwise recompiles the project in every run,
    ~0.15 s of each whole-process figure (measured), while Polars, pyarrow and DuckDB come
    compiled in their wheels."""
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ["PYTHONPYCACHEPREFIX"] = str(folder)
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "instrumetriq_polars"), str(ROOT / "benchmarks")],
                   check=True, stdout=subprocess.DEVNULL)


def run_process(cmd: list[str], what: str) -> Process:
    """Run ``cmd`` (``cmd[0]`` an absolute path) in a fresh process; time it, and read its peak RSS
    from ``os.wait4`` (Linux: KiB).

    The command is started by a small spawner process, not by this one: Linux carries a process's
    RSS high-water mark into the ``ru_maxrss`` of a program it starts (``exec`` keeps the maximum
    of the memory it replaces), so a child started straight from a benchmark that once held 300 MB
    reports at least 300 MB (measured: ``python -c pass`` 311 MB; through the spawner, 11 MB).
    stderr goes to a temporary file (never a pipe nobody reads while the child writes), shown only
    when the command fails.
    """
    report_r, report_w = os.pipe()
    with tempfile.TemporaryFile() as err, os.fdopen(report_r, "rb") as report:
        try:
            proc = subprocess.Popen([sys.executable, "-I", "-S", "-c", _SPAWNER, str(report_w), *cmd],
                                    stdout=subprocess.PIPE, stderr=err, pass_fds=(report_w,))
        finally:
            os.close(report_w)
        stdout = proc.stdout.read()
        proc.wait()
        figures = report.read().split()
        if proc.returncode != 0 or len(figures) != 7 or figures[2] != b"0":
            err.seek(0)
            tail = err.read().decode(errors="replace").strip().splitlines()[-5:]
            code = figures[2].decode() if len(figures) == 7 else f"? (spawner exit {proc.returncode})"
            raise SystemExit(f"{what} failed with exit code {code}: " + " | ".join(tail))
    return Process(stdout, float(figures[0]), int(figures[1]) / 1024, float(figures[3]), float(figures[4]),
                   int(figures[5]), int(figures[6]))


def run_child(script: str, kind: str, *args: str) -> dict:
    """Run ``script --child KIND ARGS`` (it prints one JSON object); add ``peak_rss_mb`` and
    ``process_seconds`` (the whole process, start-up and imports included)."""
    done = run_process([sys.executable, script, "--child", kind, *args], f"{kind} child")
    result = json.loads(done.stdout)
    result.update(process_figures(done))
    return result


def process_figures(done: Process) -> dict:
    """A finished process's figures as a benchmark row records them."""
    return {"peak_rss_mb": done.peak_rss_mb, "process_seconds": done.seconds, "cpu_seconds": done.user_seconds + done.system_seconds,
            "system_seconds": done.system_seconds, "minor_faults": done.minor_faults}


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


def cached_archive(archive: Path, build, generator: Path) -> Path:
    """``archive`` as ``build(archive)`` writes it, built once per version of the ``generator``
    script: a ``.complete`` marker holds the sha256 of the generator it was built with (an archive
    cached by an older generator was measured once: a project day whose every line was refused)."""
    marker = archive / ".complete"
    version = hashlib.sha256(generator.read_bytes()).hexdigest()
    if not marker.exists() or marker.read_text() != version:
        print(f"generating benchmark archive under {archive} (once per generator version) ...", file=sys.stderr)
        shutil.rmtree(archive, ignore_errors=True)
        archive.mkdir(parents=True)
        build(archive)
        marker.write_text(version)
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

    script = shared_generator(shared) if generator == "shared" else PROJECT_GENERATOR
    return cached_archive(data / f"archive-{generator}-{entries_per_hour}", build, script)
