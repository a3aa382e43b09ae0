"""A run of several partitions: which days (catch-up), each partition's outcome, the one runner
(``run_days``: in order, one at a time; ``run_parallel``: the same in worker processes), the final
summary that counts them, and retention of local copies after an upload. What to do with each
partition (skip, export, keep) is the planner's (``planner.py``); this module acts on it.

Every partition ends as one ``Outcome`` whose ``status`` is one of ``OUTCOMES``: "exported" (data
was written somewhere), "completed" (a complete export replaced a partial one), "already
published" (nothing written), "skipped" (catch-up found nothing it can do: no archive folder, or
a partial day whose archive has not changed) or "failed" (with its one-line reason); a run
stopped by a signal ends its current days as "interrupted". ``summary_lines`` counts these, so
the count is true whatever mix of days a run had.

The functions take a partition (a date, an hour's label) and callables where the daily tier is not
the only user (the hourly tier reuses ``run_days``, ``run_export`` and ``summary_lines``). The
export's modules are imported where an export runs, so ``status`` and the CLI's start stay light.
"""

from __future__ import annotations

import concurrent.futures as cf
import os
import signal
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING
from dataclasses import dataclass, field
from datetime import date

from . import interrupt
from .archive import open_archive_day
from .errors import ArchiveError, ArchiveRootError, InstrumetriqError, Interrupted, NoArchiveFolderError, RangeError
from .folder import DATA_NAME, MANIFEST_NAME, PartitionFolder
from .periods import days_before, parse_date
from .planner import NO_FOLDER, REMOVE, SKIP, Plan, plan_export, plan_removal
from .storage import describe_error, display_path, storage_options_for
from .tiers import DEFAULT_OUT_DIR, ExportResult

if TYPE_CHECKING:
    from .source import HourReport

EXPORTED, COMPLETED, ALREADY, SKIPPED, FAILED, INTERRUPTED = (
    "exported", "completed", "already published", "skipped", "failed", "interrupted")
OUTCOMES = (EXPORTED, COMPLETED, ALREADY, SKIPPED, FAILED)
NOT_STARTED = "not started"  # a partition a stopped run of several processes did not begin


@dataclass
class Outcome:
    """What a run did with one partition (``partition``: a day, an hour's label, a month).
    ``results``: the export's, then the upload's (what was finished); ``reason``: one line for
    "skipped", "failed" and "interrupted"; ``error``: the typed error of a "failed" one."""

    partition: object
    status: str
    results: list[ExportResult] = field(default_factory=list)
    reason: str = ""
    signum: int | None = None
    error: InstrumetriqError | None = None
    remedy: str | None = None  # a "skipped" one: the option that would not skip it (``planner.Plan.remedy``)
    #: a "skipped" one that is an alarm: no archive for a day after the archive began (a collector that stopped)
    alarm: bool = False

    @property
    def day(self):
        """The former name of ``partition``."""
        return self.partition

    @property
    def published(self) -> list[str]:
        """The locations this run wrote the day to (not "already published" ones)."""
        return [r.location for r in self.results if r.status != "already published"]


def catch_up_days(n: int, today: date | None = None) -> list[date]:
    """The ``n`` days before ``today`` (UTC), oldest first: what a daily catch-up looks at
    (``periods.days_before``; ``RangeError`` below 1)."""
    return days_before(n, today)


def check_archive_root(archive: str, storage_options: dict | None = None) -> None:
    """One error for an archive root that does not exist, instead of one per day."""
    import fsspec

    try:
        fs, root = fsspec.core.url_to_fs(str(archive), **(storage_options_for(archive, storage_options) or {}))
        there = fs.isdir(root.rstrip("/") or "/")
    except InstrumetriqError:
        raise
    except Exception as exc:  # noqa: BLE001 - the backend's own error, in one line
        raise ArchiveRootError(f"could not look up the archive root {archive}: {describe_error(exc)}; nothing done", str(archive)) from exc
    if not there:
        raise ArchiveRootError(f"the archive root {display_path(fs, root)} does not exist (or is not a folder); nothing done",
                               display_path(fs, root))


def run_day(day: date, archive: str, out: str, *, layout: str = "flat", allow_incomplete: bool = False,
            force: bool = False, upload_to: str | None = None, catch_up: bool = False,
            progress: Callable[[HourReport], None] | None = None, storage_options: dict | None = None,
            upload_options: dict | None = None) -> Outcome:
    """Export (and upload) one day (``run_export``). ``catch_up``: a day without an archive
    folder, or published partial from an archive that has not changed since, is "skipped"
    instead of failed or re-read."""
    from .tiers.daily import export_day  # the export's imports, paid by the runs that export

    if catch_up and not force:
        skip = _catch_up_skip(day, archive, out, layout, storage_options)
        if skip is not None and skip.reason == NO_FOLDER and _archive_expected(day, archive):
            return Outcome(day, SKIPPED, reason="archive missing: no archive folder for it, after the archive began "
                                                "(is the collector running?)", alarm=True)
        if skip is not None:
            return Outcome(day, SKIPPED, reason=skip.reason, remedy=skip.remedy)
        remote = _unchanged_remotely(day, archive, out, layout, upload_to, storage_options, upload_options) if upload_to else None
        if remote is not None:
            return Outcome(day, ALREADY, [remote])
    return run_export(day, lambda: export_day(day, archive, out, layout=layout, allow_incomplete=allow_incomplete, force=force,
                                              progress=progress, storage_options=storage_options),
                      upload_to=upload_to, force=force, upload_options=upload_options)


def run_export(key, export: Callable[[], ExportResult], *, upload_to: str | None = None, force: bool = False,
               upload_options: dict | None = None) -> Outcome:
    """``export()`` one partition (a day, an hour: ``key`` names it) and upload it to
    ``upload_to``; every expected failure becomes a "failed" outcome, a signal an "interrupted" one."""
    from .write.flow import upload

    done: list[ExportResult] = []
    try:
        interrupt.check()
        result = export()
        done.append(result)
        if upload_to:
            interrupt.check()
            done.append(upload(result, upload_to, force=force, storage_options=upload_options))
        interrupt.check()  # a signal that came while the partition was being published
    except InstrumetriqError as exc:
        return Outcome(key, FAILED, done, reason=str(exc), error=exc)
    except Interrupted as stop:
        return Outcome(key, INTERRUPTED, done, reason=_interrupted(stop.signum, done, bool(upload_to)), signum=stop.signum)
    statuses = {r.status for r in done}
    status = EXPORTED if "published" in statuses else COMPLETED if "completed" in statuses else ALREADY
    return Outcome(key, status, done)


def _archive_expected(day: date, archive: str) -> bool:
    """Whether the archive should hold ``day``: over, and after the archive began (``status``'s rule)."""
    from .periods import day_over, hour_of_day, utc_now
    from .status import archive_begins

    begins = archive_begins(archive, storage_options_for(archive, None))
    return begins is not None and hour_of_day(day, 23) >= begins and day_over(day, utc_now())


def _catch_up_skip(day: date, archive: str, out: str, layout: str, storage_options: dict | None) -> Plan | None:
    """The planner's SKIP when catch-up leaves ``day`` alone (no archive folder, a partial day
    whose archive has not changed, a complete day of an older version); None: export it."""
    try:
        hour_files = open_archive_day(archive, day, storage_options_for(archive, None)).sizes()
    except NoArchiveFolderError:
        hour_files = None
    except ArchiveError:
        return None  # the export says what is wrong
    from .tiers.daily import published_in_place, wanted

    folder = PartitionFolder(out, day, storage_options_for(out, storage_options))
    plan = plan_export(hour_files, True, published_in_place(folder), wanted(folder.label, layout, catch_up=True))
    return plan if plan.action == SKIP else None


def _unchanged_remotely(day: date, archive: str, out: str, layout: str, remote: str, storage_options: dict | None,
                        upload_options: dict | None) -> ExportResult | None:
    """Catch-up knows what the remote holds: a day with no local copy (keep-local removed it) that
    ``remote`` publishes from the archive as it is now (the planner's ``UNCHANGED``) is "already
    published" there, neither re-read nor re-sent; None: export (and upload) it as usual."""
    import time

    from .planner import UNCHANGED
    from .tiers.daily import published_in_place, wanted

    started = time.perf_counter()
    if published_in_place(PartitionFolder(out, day, storage_options_for(out, storage_options))).manifest is not None:
        return None  # a local copy: the export's own cheap skip decides
    try:
        hour_files = open_archive_day(archive, day, storage_options_for(archive, None)).sizes()
    except ArchiveError:
        return None
    there = PartitionFolder(remote, day, storage_options_for(remote, upload_options))
    in_place = published_in_place(there)
    if plan_export(hour_files, True, in_place, wanted(there.label, layout, catch_up=True)).action != UNCHANGED:
        return None
    return ExportResult(in_place.manifest, there.url, ALREADY, time.perf_counter() - started, skipped_read=True)


def _interrupted(signum: int, done: list[ExportResult], upload: bool) -> str:
    """The line for a day stopped by a signal: what the run had published of it, truthfully (the
    day may have been published just before the signal was acted on)."""
    published = [r.location for r in done if r.status != "already published"]
    what = f"{' and '.join(published)} published before it stopped" if published else "nothing published"
    if upload and len(done) == 1:
        what += ", nothing uploaded"
    return f"interrupted; {what} ({signal.Signals(signum).name})"


#: the former name
DayOutcome = Outcome


# -- several days ---------------------------------------------------------------------------
def run_days(days: Iterable[date], work: Callable[[date], Outcome], *, report: Callable[[Outcome], None] | None = None) -> list[Outcome]:
    """``work`` on each day in order; stops after an "interrupted" day. ``report`` sees each outcome as it ends."""
    outcomes = []
    for day in days:
        outcome = work(day)
        outcomes.append(outcome)
        if report:
            report(outcome)
        if outcome.status == INTERRUPTED:
            break
    return outcomes


def export_days(days: Iterable[str | date], archive: str | None = None, out: str = DEFAULT_OUT_DIR, **options) -> list[ExportResult | InstrumetriqError]:
    """Export several days one after another (``run_days``, the one runner); a failed day does
    not stop the next. Returns, per day, its ExportResult or the error that stopped it; a signal
    (``interrupt``) stops the run with ``Interrupted``."""
    from .tiers.daily import export_day

    def work(day) -> Outcome:
        return run_export(day, lambda: export_day(day, archive, out, **options))

    outcomes = run_days(list(days), work)
    stopped = next((o for o in outcomes if o.status == INTERRUPTED), None)
    if stopped is not None:
        raise Interrupted(stopped.signum, outcomes)
    return [o.results[0] if o.results else o.error for o in outcomes]


def run_parallel(days: list, worker: Callable, options: dict, jobs: int, *,
                 report: Callable[[Outcome], None] | None = None, poll: float = 0.2) -> list[Outcome]:
    """``worker(day, options)`` (a module-level function returning a ``Outcome``) in ``jobs``
    worker processes; outcomes reported and returned in the order of ``days``.

    Workers are started by forkserver (spawn where there is none), never forked from this
    process, whose Polars threads may hold locks. Each runs in its own process group, so a
    Ctrl-C reaches this process only; on a signal (``interrupt.check`` here raises) every
    worker gets one SIGTERM, stops at its next safe point and discards what it had
    not published; days not started are not run (each worker turns the parent's stop event into
    a SIGTERM to itself, see ``_worker_init``). Then ``Interrupted`` is raised again, after
    the outcomes finished so far were reported."""
    import multiprocessing  # --jobs only: a run in one process does not load it

    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    context = multiprocessing.get_context(method)
    outcomes: list[Outcome | None] = [None] * len(days)
    shown = 0

    def show_ready() -> None:
        nonlocal shown
        while shown < len(days) and outcomes[shown] is not None:
            if report:
                report(outcomes[shown])
            shown += 1

    stop = context.Event()
    sent = context.Value("i", 0)  # the signal the run got: each worker stops on that one, and names it
    with cf.ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=_worker_init, initargs=(stop, sent)) as pool:
        futures = {pool.submit(worker, day, options): i for i, day in enumerate(days)}
        pending = set(futures)
        try:
            while pending:
                interrupt.check()
                ready, pending = cf.wait(pending, timeout=poll, return_when=cf.FIRST_COMPLETED)
                for future in ready:
                    outcomes[futures[future]] = _outcome_of(future, days[futures[future]])
                show_ready()
        except Interrupted as stopped:
            sent.value = stopped.signum
            stop.set()  # each worker then sends itself that signal once (``_worker_init``)
            for future in pending:
                future.cancel()
            for future, i in futures.items():
                if outcomes[i] is None and not future.cancelled():
                    outcomes[i] = _outcome_of(future, days[i])
            for outcome in outcomes[shown:]:
                if outcome is not None and outcome.status != NOT_STARTED and report:
                    report(outcome)
            raise Interrupted(stopped.signum, [o for o in outcomes if o is not None and o.status != NOT_STARTED]) from None
    show_ready()
    return [o for o in outcomes if o is not None]


_stopped: int | None = None  # in a worker: the signal that stopped it; later days are not started


def _worker_init(stop, sent=None) -> None:
    """In each worker: out of the terminal's process group (a Ctrl-C reaches the parent only),
    signals remembered between days, and a thread that turns the parent's ``stop`` event into
    one SIGTERM to this process, once the handlers are in place (a signal sent from outside
    could land before them, while the worker still starts, and kill it)."""
    from .memory import tune_process

    os.setpgrp()
    tune_process()  # as in the runner's own process (memory.py)
    for signum in interrupt.SIGNALS:  # between days (stop_on_signals handles them during one)
        signal.signal(signum, _remember)

    def relay() -> None:
        stop.wait()  # a Ctrl-C of the run stops its days as SIGINT, and they say so (not SIGTERM)
        os.kill(os.getpid(), (sent.value if sent is not None else 0) or signal.SIGTERM)

    threading.Thread(target=relay, name="stop-relay", daemon=True).start()


def _remember(signum: int, frame) -> None:
    global _stopped
    _stopped = _stopped or signum


def _outcome_of(future: cf.Future, day: date) -> Outcome:
    try:
        return future.result()
    except Exception as exc:  # noqa: BLE001 - a worker that died (killed, out of memory) or a bug in it
        return Outcome(day, FAILED, reason=f"the worker process failed: {describe_error(exc)}")


def export_worker(day: date, options: dict) -> Outcome:
    """One day of a run in several processes, in a worker process (signals stop it at a safe point)."""
    global _stopped
    if _stopped is not None:
        return Outcome(day, NOT_STARTED, reason="not started", signum=_stopped)
    with interrupt.stop_on_signals():
        outcome = run_day(day, **options)
    if outcome.status == INTERRUPTED:
        _stopped = outcome.signum
    return outcome


# -- the summary ----------------------------------------------------------------------------
def summary_lines(outcomes: list[Outcome], unit: str = "day") -> list[str]:
    """The final summary: one line of counts by ``OUTCOMES``, then each failed (and skipped) day with its reason."""
    counts = {status: 0 for status in (*OUTCOMES, INTERRUPTED, NOT_STARTED)}
    for outcome in outcomes:
        if outcome.status in counts:
            counts[outcome.status] += 1
    total = len(outcomes)
    stopped = [s for s in (INTERRUPTED, NOT_STARTED) if counts[s]]  # a run a signal stopped
    head = f"{total} {unit}{'s' if total != 1 else ''}: " + ", ".join(f"{counts[s]} {s}" for s in (*OUTCOMES, *stopped))
    lines = [head]
    lines += [f"  failed {o.day}: {o.reason}" for o in outcomes if o.status == FAILED]
    lines += [f"  skipped {o.day}: {o.reason}" for o in outcomes if o.status == SKIPPED]
    return lines


# -- retention ------------------------------------------------------------------------------
def keep_local(out: str, keep: int, remote: str, *, upload_options: dict | None = None,
               log: Callable[[str], None] = lambda line: None) -> list[date]:
    """Keep the ``keep`` most recent local day folders under ``out``; remove an older one only
    when the day is published at ``remote`` with the same data: the remote manifest's
    ``parquet_sha256`` equals the local one and the remote data object has the size it states.
    Only ``YYYY-MM-DD`` folders holding a manifest of that date are considered, and only their
    ``data.parquet`` and ``manifest.json`` are removed (the manifest first: the day stops being
    published before its data goes); the folder is removed when that leaves it empty. Each day is
    checked and removed while holding its lock (``write.lock``), as an export publishing it holds
    it: a day another run holds is kept, and one published anew meanwhile is checked as it is now.
    Returns the days removed; ``log`` gets one line per day kept for a reason or removed."""
    if keep < 0:
        raise RangeError(f"the number of local days to keep must be at least 0, not {keep}")
    from .write.lock import PartitionLock

    root = out.removeprefix("file://")
    days = []
    for name in sorted(os.listdir(root)) if os.path.isdir(root) else []:
        try:
            day = parse_date(name)
        except ArchiveError:
            continue
        if day.isoformat() == name and os.path.isfile(os.path.join(root, name, MANIFEST_NAME)):
            days.append(day)
    removed = []
    for day in sorted(days, reverse=True)[keep:]:
        folder = os.path.join(root, day.isoformat())
        try:
            lock = PartitionLock(folder, day.isoformat()).acquire()
        except InstrumetriqError as exc:  # another export of the day runs: it may be publishing new data
            log(f"kept local {folder}: {exc}")
            continue
        try:
            why = _not_safe_to_remove(folder, day, remote, upload_options)  # under the lock: the day as it is now
            if why:
                log(f"kept local {folder}: {why}")
                continue
            os.remove(os.path.join(folder, MANIFEST_NAME))
            os.remove(os.path.join(folder, DATA_NAME))
        finally:
            lock.release()
        try:
            os.rmdir(folder)
        except OSError:
            pass  # other files are there: not ours to remove
        removed.append(day)
        log(f"removed local {folder}: its upload to {remote} is verified (same sha256 and size)")
    return removed


def _not_safe_to_remove(folder: str, day: date, remote: str, upload_options: dict | None) -> str:
    """Why the local ``day`` in ``folder`` is kept (empty: safe to remove): the planner's KEEP."""
    try:
        local = PartitionFolder(os.path.dirname(folder), day).in_place()
        there = PartitionFolder(remote, day, storage_options_for(remote, upload_options))
        plan = plan_removal(local, there.in_place(), day.isoformat(), there.url)
    except (OSError, InstrumetriqError) as exc:
        return f"could not be checked ({describe_error(exc) if isinstance(exc, OSError) else exc})"
    return "" if plan.action == REMOVE else plan.reason
