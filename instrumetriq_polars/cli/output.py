"""What the commands print for the person and for the program reading them: the exit codes (one
meaning each, for every command), results as JSON (``--json``), stdout lines stamped like the log
when stdout is not a terminal, and the overall progress of a run of several partitions."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterable

from ..log import Log

#: The exit codes, for every command.
OK = 0              # healthy: done, or nothing wrong found
UNHEALTHY = 1       # a partition failed, or status/verify found one that is not healthy
CANNOT_CHECK = 2    # a usage error, or status/verify could not look (no such root, storage unreachable)
EXIT_CODES = "exit status (every command): 0 healthy (done, nothing wrong found); 1 unhealthy or failed (a partition failed, or status/verify found a problem); 2 usage error or cannot check (a wrong option, or no root to look at); 130/143 stopped by SIGINT/SIGTERM; 141 stdout closed"

#: The outcomes of a run, in the order the summary counts them.
OUTCOME_ORDER = ("exported", "completed", "already published", "skipped", "failed", "interrupted", "not started")


def stdout_log() -> Log:
    """stdout as a log: each line stamped with its UTC time when stdout is not a terminal (a cron
    log holding both streams then dates every line), as stderr's lines are."""
    return Log(stream=sys.stdout)


def partition_record(name: str, status: str, results: list = (), reason: str = "", seconds: float | None = None) -> dict:
    """One partition of a run as JSON: ``status`` (the run's outcome), ``rows``, ``bytes``,
    ``sha256`` of what is published (None when nothing is), ``seconds``, ``reason`` (None unless it
    failed, was skipped or stopped), ``location`` (the last place it was published to) and
    ``partial``."""
    last = results[-1] if results else None
    m = last.manifest if last is not None else None
    taken = seconds if seconds is not None else sum(getattr(r, "seconds", 0.0) for r in results)
    return {
        "partition": name, "status": status,
        "rows": m.row_count if m else None, "bytes": m.parquet_size_bytes if m else None,
        "sha256": m.parquet_sha256 if m else None, "seconds": round(taken, 3),
        "reason": reason or None, "location": last.location if last is not None else None,
        "partial": m.is_partial if m else None,
    }


def outcome_record(outcome) -> dict:
    """``partition_record`` of a runner ``Outcome``."""
    name = outcome.partition if isinstance(outcome.partition, str) else outcome.partition.isoformat()
    return partition_record(name, outcome.status, outcome.results, outcome.reason)


def counts(statuses: Iterable[str]) -> dict[str, int]:
    found = {status: 0 for status in OUTCOME_ORDER}
    for status in statuses:
        found[status] = found.get(status, 0) + 1
    return found


def print_results(command: str, records: list[dict], *, error: str | None = None, code: int) -> None:
    """The run's one JSON object on stdout (alone: nothing else is printed there with ``--json``):
    ``ok``, ``exit_code``, ``error`` (a failure before any partition), ``partitions`` and
    ``summary`` (counts by status, and the total)."""
    summary = {"total": len(records), **counts(r["status"] for r in records)}
    document = {"command": command, "ok": code == OK, "exit_code": code, "error": error, "partitions": records, "summary": summary}
    print(json.dumps(document, indent=2, default=str), flush=True)


class RunProgress:
    """The overall progress of a run of ``total`` partitions: done, rate and ETA, for the
    terminal's progress line. The rate counts the hours of the current partition as its part."""

    def __init__(self, total: int, unit: str = "day", clock=time.monotonic) -> None:
        self.total = total
        self.unit = unit
        self.clock = clock
        self.started = clock()
        self.done = 0

    def finished_one(self) -> None:
        self.done += 1

    def text(self, fraction_of_current: float = 0.0) -> str:
        """``1/3 days, 4.2 s/day, ETA 0:08`` (no rate before anything is done)."""
        units = f"{self.unit}s"
        head = f"{self.done}/{self.total} {units}"
        progressed = self.done + max(0.0, min(1.0, fraction_of_current))
        elapsed = self.clock() - self.started
        if progressed <= 0 or elapsed <= 0:
            return head
        per = elapsed / progressed
        left = max(0.0, (self.total - progressed) * per)
        return f"{head}, {per:.1f} s/{self.unit}, ETA {_clock(left)}"


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
