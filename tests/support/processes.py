"""Running the exporter in child processes: the environment they need and scripts they run."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent

#: A child's environment: this checkout first on its path, whatever the parent's was.
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}

#: The CLI, paused in the middle of writing (after hour 12) until the file named by $GO exists.
PAUSED_EXPORT = r"""
import os, sys, time
from instrumetriq_polars import cli
from instrumetriq_polars.cli import days
make_printer = days._hour_printer
def paused_printer(*args, **kwargs):
    report_hour = make_printer(*args, **kwargs)
    def paused(report):
        report_hour(report)
        if report.hour == 12:
            print("paused", flush=True)
            while not os.path.exists(os.environ["GO"]):
                time.sleep(0.02)
    return paused
days._hour_printer = paused_printer
cli.run(sys.argv[1:])
"""


def export_args(archive: Path, out: Path, *flags: str, date: str = "2026-01-15") -> list[str]:
    """The CLI's arguments to export one day of ``archive`` into ``out``."""
    return ["export", "--date", date, "--archive-path", str(archive), "--out-dir", str(out), *flags]
