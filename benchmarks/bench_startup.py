"""Start-up cost of the CLI: ``--help`` and ``status`` against ``python -c "import polars"``.

Each command runs ``--runs`` times, the commands interleaved (one run of each in turn), each in a
fresh process; wall time and CPU time (user + sys of the child, steadier on a shared machine) are
reported as medians. ``status`` looks at one day of a small dataset this script exports first.
``--compare DIR`` also runs the CLI of another checkout (``DIR`` holding ``instrumetriq_polars``,
put first on ``PYTHONPATH``), interleaved with this one's: before and after in the same runs.

    python benchmarks/bench_startup.py [--runs 10] [--compare /path/to/other/checkout]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


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
    args = parser.parse_args()
    py = sys.executable
    with tempfile.TemporaryDirectory() as work:
        archive, out = f"{work}/archive", f"{work}/daily"
        sys.path.insert(0, str(ROOT))
        from instrumetriq_polars.synthetic import write_archive_day

        write_archive_day(archive, date(2026, 1, 15), entries_per_hour=1, seed=1)
        subprocess.run([py, "-m", "instrumetriq_polars", "export", "--date", "2026-01-15", "--archive-path", archive,
                        "--out-dir", out, "--quiet"], check=True, stdout=subprocess.DEVNULL, cwd=ROOT)
        here = {**os.environ, "PYTHONPATH": str(ROOT)}
        cli = {"--help": ["--help"], "status (1 day)": ["status", "--date", "2026-01-15", "--out-dir", out, "--archive-path", archive]}
        commands = {'python -c "import polars"': ([py, "-c", "import polars"], here)}
        for tree, env in [("", here)] + ([(" [compare]", {**os.environ, "PYTHONPATH": args.compare})] if args.compare else []):
            for name, argv in cli.items():
                commands[f"python -m instrumetriq_polars {name}{tree}"] = ([py, "-m", "instrumetriq_polars", *argv], env)
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
        devnull = os.open(os.devnull, os.O_WRONLY)
        saved = os.dup(1), os.dup(2)
        try:
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            for _ in range(args.runs):
                for name, (cmd, env) in commands.items():
                    times[name].append(timed(cmd, env))
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
    base = statistics.median(w for w, _ in times['python -c "import polars"'])
    print(f"{args.runs} runs each, interleaved; medians")
    for name, runs in times.items():
        wall = statistics.median(w for w, _ in runs)
        cpu = statistics.median(c for _, c in runs)
        print(f"  {name:<57} wall {wall:6.3f} s ({wall / base:4.2f}x import polars)  cpu {cpu:6.3f} s")


if __name__ == "__main__":
    main()
