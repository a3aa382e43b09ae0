"""Start-up cost of the CLI against ``python -c "import polars, pyarrow"``: ``--help``, ``status``,
``export`` of an already-published day, and a whole ``export-hourly`` process for one
production-sized hour.

Each command runs ``--runs`` times, the commands interleaved (one run of each in turn), each in a
fresh process; wall time and CPU time (user + sys of the child, steadier on a shared machine) are
reported as medians. ``status`` looks at one day of a small dataset this script exports first;
``export (published day)`` exports that day again: the planner finds it published and reads no
hour (what the nightly catch-up pays for every day already done). ``export-hourly`` exports hour
03 of a day of 100-entry hours from ``../shared/tools/make_archive.py`` (``--shared``) into an
emptied root each run: start-up plus one hour's work, what the hourly cron pays every hour.
``--compare DIR`` also runs the CLI of another checkout (``DIR`` holding ``instrumetriq_polars``,
put first on ``PYTHONPATH``), interleaved with this one's: before and after in the same runs.

The children keep compiled bytecode in a temporary ``PYTHONPYCACHEPREFIX`` (warmed by one
untimed run of each command), as an installed package does: with ``PYTHONDONTWRITEBYTECODE`` set,
every run would recompile the project's modules and time the compiler.

    python benchmarks/bench_startup.py [--runs 10] [--compare /path/to/other/checkout] [--shared DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchkit import DEFAULT_SHARED, make_shared_day  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BASELINE = 'python -c "import polars, pyarrow"'
DAY, HOUR = date(2026, 1, 15), "2026-01-15T03"


def timed(cmd: list[str], env: dict) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the child) of one run of ``cmd``, started in the checkout
    ``env["PYTHONPATH"]`` names (``-m`` puts the working folder first on ``sys.path``)."""
    os.chdir(env["PYTHONPATH"])
    started = time.perf_counter()
    pid = os.posix_spawn(cmd[0], cmd, env)
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) not in (0, 1):
        raise SystemExit(f"{' '.join(cmd)} failed")
    return wall, usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--compare", metavar="DIR", help="another checkout whose CLI runs interleaved with this one's")
    parser.add_argument("--shared", type=Path, default=DEFAULT_SHARED, help="the folder holding tools/make_archive.py")
    args = parser.parse_args()
    py = sys.executable
    with tempfile.TemporaryDirectory() as work:
        archive, out, hourly_archive = f"{work}/archive", f"{work}/daily", Path(work, "hourly-archive")
        sys.path.insert(0, str(ROOT))
        from instrumetriq_polars.synthetic import write_archive_day

        write_archive_day(archive, DAY, entries_per_hour=1, seed=1)
        make_shared_day(args.shared, hourly_archive, DAY, "0-4", 100)
        base_env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        base_env["PYTHONPYCACHEPREFIX"] = f"{work}/pycache"
        subprocess.run([py, "-m", "instrumetriq_polars", "export", "--date", DAY.isoformat(), "--archive-path", archive,
                        "--out-dir", out, "--quiet"], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT, env=base_env)
        here = {**base_env, "PYTHONPATH": str(ROOT)}
        commands = {BASELINE: ([py, "-c", "import polars, pyarrow"], here, None),
                    'python -c "import polars"': ([py, "-c", "import polars"], here, None)}
        trees = [("", here)] + ([(" [compare]", {**base_env, "PYTHONPATH": str(Path(args.compare).resolve())})] if args.compare else [])
        for tree, env in trees:
            hour_out = f"{work}/hourly{len(tree)}"
            cli = {
                "--help": (["--help"], None),
                "status (1 day)": (["status", "--date", DAY.isoformat(), "--out-dir", out, "--archive-path", archive], None),
                "export (published day)": (["export", "--date", DAY.isoformat(), "--archive-path", archive, "--out-dir", out,
                                            "--quiet"], None),
                "export-hourly (1 hour x 100)": (["export-hourly", "--hour", HOUR, "--archive-path", str(hourly_archive),
                                                  "--out-dir", hour_out, "--quiet"], hour_out),
            }
            for name, (argv, emptied) in cli.items():
                commands[f"{name}{tree}"] = ([py, "-m", "instrumetriq_polars", *argv], env, emptied)
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
        devnull = os.open(os.devnull, os.O_WRONLY)
        saved = os.dup(1), os.dup(2)
        try:
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            for run in range(args.runs + 1):  # run 0 warms the bytecode cache and is not counted
                for name, (cmd, env, emptied) in commands.items():
                    if emptied:
                        shutil.rmtree(emptied, ignore_errors=True)
                    figures = timed(cmd, env)
                    if run:
                        times[name].append(figures)
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
    base = statistics.median(w for w, _ in times[BASELINE])
    base_cpu = statistics.median(c for _, c in times[BASELINE])
    print(f"{args.runs} runs each, interleaved; medians; ratios to {BASELINE}")
    for name, runs in times.items():
        wall = statistics.median(w for w, _ in runs)
        cpu = statistics.median(c for _, c in runs)
        print(f"  {name:<42} wall {wall:6.3f} s ({wall / base:4.2f}x)  cpu {cpu:6.3f} s ({cpu / base_cpu:4.2f}x)")


if __name__ == "__main__":
    main()
