"""A run of several days: which days (catch-up), each day's outcome, days in parallel processes
(``jobs``), the final summary that counts them, and retention of local copies after an upload.

Every day ends as one ``DayOutcome`` whose ``status`` is one of ``OUTCOMES``: "exported" (data
was written somewhere), "completed" (a complete export replaced a partial one), "already
published" (nothing written), "skipped" (catch-up found nothing it can do: no archive folder, or
a partial day whose archive has not changed) or "failed" (with its one-line reason); a run
stopped by a signal ends its current days as "interrupted". ``summary_lines`` counts these, so
the count is true whatever mix of days a run had.

The functions take a partition (a date here) and callables where the daily tier is not the only
user (the hourly tier reuses ``summary_lines``, ``run_parallel`` and ``check_archive_root``).
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import signal
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta

import fsspec

from . import interrupt
from .archive import open_archive_day, parse_date, utc_today
from .dayfolder import DATA_NAME, MANIFEST_NAME, DayFolder
from .errors import ArchiveError, InstrumetriqError, Interrupted
from .export import ARCHIVE_ENV, ExportResult, HourReport, archive_changes, export_day, unchanged_publication, upload_day
from .manifest import EXPORT_VERSION, Manifest
from .memory import tune_allocators
from .storage import describe_error, display_path, storage_options_for

EXPORTED, COMPLETED, ALREADY, SKIPPED, FAILED, INTERRUPTED = (
    "exported", "completed", "already published", "skipped", "failed", "interrupted")
OUTCOMES = (EXPORTED, COMPLETED, ALREADY, SKIPPED, FAILED)
NOT_STARTED = "not started"  # a day a stopped run did not begin (--jobs)


@dataclass
class DayOutcome:
    """What a run did with one day. ``results``: the export's, then the upload's (what was
    finished); ``reason``: one line for "skipped", "failed" and "interrupted"."""

    day: date
    status: str
    results: list[ExportResult] = field(default_factory=list)
    reason: str = ""
    signum: int | None = None
    error: InstrumetriqError | None = None

    @property
    def published(self) -> list[str]:
        """The locations this run wrote the day to (not "already published" ones)."""
        return [r.location for r in self.results if r.status != "already published"]


def catch_up_days(n: int, today: date | None = None) -> list[date]:
    """The ``n`` days before ``today`` (UTC), oldest first: what ``export --catch-up N`` looks at."""
    if n < 1:
        raise ArchiveError(f"--catch-up takes a number of days of at least 1, not {n}")
    today = today or utc_today()
    return [today - timedelta(days=i) for i in range(n, 0, -1)]


def check_archive_root(archive: str, storage_options: dict | None = None) -> None:
    """One error for an archive root that does not exist, instead of one per day."""
    try:
        fs, root = fsspec.core.url_to_fs(str(archive), **(storage_options_for(archive, storage_options) or {}))
        there = fs.isdir(root.rstrip("/") or "/")
    except InstrumetriqError:
        raise
    except Exception as exc:  # noqa: BLE001 - the backend's own error, in one line
        raise ArchiveError(f"could not look up the archive root {archive}: {describe_error(exc)}; nothing done") from exc
    if not there:
        raise ArchiveError(f"the archive root {display_path(fs, root)} does not exist (or is not a folder); nothing done; "
                           f"check --archive-path or ${ARCHIVE_ENV}")


def run_day(day: date, archive: str, out: str, *, layout: str = "flat", allow_incomplete: bool = False,
            force: bool = False, upload_to: str | None = None, catch_up: bool = False,
            progress: Callable[[HourReport], None] | None = None, storage_options: dict | None = None,
            upload_options: dict | None = None) -> DayOutcome:
    """Export (and upload) one day (``run_export``). ``catch_up``: a day without an archive
    folder, or published partial from an archive that has not changed since, is "skipped"
    instead of failed or re-read."""
    if catch_up and not force:
        skip = _catch_up_skip(day, archive, out, layout, storage_options)
        if skip:
            return DayOutcome(day, SKIPPED, reason=skip)
    return run_export(day, lambda: export_day(day, archive, out, layout=layout, allow_incomplete=allow_incomplete, force=force,
                                              progress=progress, storage_options=storage_options),
                      upload_to=upload_to, force=force, upload_options=upload_options)


def run_export(key, export: Callable[[], ExportResult], *, upload_to: str | None = None, force: bool = False,
               upload_options: dict | None = None) -> DayOutcome:
    """``export()`` one partition (a day, an hour: ``key`` names it) and upload it to
    ``upload_to``; every expected failure becomes a "failed" outcome, a signal an "interrupted" one."""
    done: list[ExportResult] = []
    try:
        interrupt.check()
        result = export()
        done.append(result)
        if upload_to:
            interrupt.check()
            done.append(upload_day(result, upload_to, force=force, storage_options=upload_options))
        interrupt.check()  # a signal that came while the partition was being published
    except InstrumetriqError as exc:
        return DayOutcome(key, FAILED, done, reason=str(exc), error=exc)
    except Interrupted as stop:
        return DayOutcome(key, INTERRUPTED, done, reason=_interrupted(stop.signum, done, bool(upload_to)), signum=stop.signum)
    statuses = {r.status for r in done}
    status = EXPORTED if "published" in statuses else COMPLETED if "completed" in statuses else ALREADY
    return DayOutcome(key, status, done)


def _catch_up_skip(day: date, archive: str, out: str, layout: str, storage_options: dict | None) -> str:
    """Why catch-up leaves ``day`` alone (empty: export it)."""
    try:
        archive_day = open_archive_day(archive, day, storage_options_for(archive, None))
    except ArchiveError as exc:
        if str(exc).startswith("no archive folder"):
            return "no archive folder"
        return ""  # the export says what is wrong
    folder = DayFolder(out, day, storage_options_for(out, storage_options))
    older = _complete_in_older_version(folder, archive_day)
    if older:
        return older
    in_place = unchanged_publication(archive_day, folder, layout)
    if in_place is not None and in_place.manifest.is_partial and in_place.manifest.day_over_at_export:
        missing = len(in_place.manifest.missing_hours)
        why = f"{missing} hours missing" if missing else f"{in_place.manifest.bad_line_count} bad lines"
        return f"published partial ({why}) and the archive has not changed since: nothing to complete"
    return ""


def _complete_in_older_version(folder: DayFolder, archive_day) -> str:
    """Catch-up heals missing and partial days; a day published complete by another export
    version from the archive as it is now is neither, and re-exporting it would be refused as
    other data (the format changed). It is left alone, and the reason says how to upgrade it."""
    try:
        raw = folder.read_manifest_bytes()
        manifest = Manifest.from_json(raw) if raw is not None else None
    except InstrumetriqError:
        return ""
    if manifest is None or manifest.is_partial or manifest.export_version == EXPORT_VERSION or archive_changes(archive_day, manifest):
        return ""
    return f"published complete by export version {manifest.export_version}; --force re-exports it as {EXPORT_VERSION}"


def _interrupted(signum: int, done: list[ExportResult], upload: bool) -> str:
    """The line for a day stopped by a signal: what the run had published of it, truthfully (the
    day may have been published just before the signal was acted on)."""
    published = [r.location for r in done if r.status != "already published"]
    what = f"{' and '.join(published)} published before it stopped" if published else "nothing published"
    if upload and len(done) == 1:
        what += ", nothing uploaded"
    return f"interrupted; {what} ({signal.Signals(signum).name})"


# -- several days ---------------------------------------------------------------------------
def run_days(days: Iterable[date], work: Callable[[date], DayOutcome], *, report: Callable[[DayOutcome], None] | None = None) -> list[DayOutcome]:
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


def run_parallel(days: list, worker: Callable, options: dict, jobs: int, *,
                 report: Callable[[DayOutcome], None] | None = None, poll: float = 0.2) -> list[DayOutcome]:
    """``worker(day, options)`` (a module-level function returning a ``DayOutcome``) in ``jobs``
    worker processes; outcomes reported and returned in the order of ``days``.

    Workers are started by forkserver (spawn where there is none), never forked from this
    process, whose Polars threads may hold locks. Each runs in its own process group, so a
    Ctrl-C reaches this process only; on a signal (``interrupt.check`` here raises) every
    worker gets one SIGTERM, stops at its next safe point and discards what it had
    not published; days not started are not run (each worker turns the parent's stop event into
    a SIGTERM to itself, see ``_worker_init``). Then ``Interrupted`` is raised again, after
    the outcomes finished so far were reported."""
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    context = multiprocessing.get_context(method)
    outcomes: list[DayOutcome | None] = [None] * len(days)
    shown = 0

    def show_ready() -> None:
        nonlocal shown
        while shown < len(days) and outcomes[shown] is not None:
            if report:
                report(outcomes[shown])
            shown += 1

    stop = context.Event()
    with cf.ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=_worker_init, initargs=(stop,)) as pool:
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
            stop.set()  # each worker then sends itself one SIGTERM (``_worker_init``)
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


def _worker_init(stop) -> None:
    """In each worker: out of the terminal's process group (a Ctrl-C reaches the parent only),
    signals remembered between days, and a thread that turns the parent's ``stop`` event into
    one SIGTERM to this process, once the handlers are in place (a signal sent from outside
    could land before them, while the worker still starts, and kill it)."""
    os.setpgrp()
    tune_allocators()  # as in the runner's own process (memory.py)
    for signum in interrupt.SIGNALS:  # between days (stop_on_signals handles them during one)
        signal.signal(signum, _remember)

    def relay() -> None:
        stop.wait()
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=relay, name="stop-relay", daemon=True).start()


def _remember(signum: int, frame) -> None:
    global _stopped
    _stopped = _stopped or signum


def _outcome_of(future: cf.Future, day: date) -> DayOutcome:
    try:
        return future.result()
    except Exception as exc:  # noqa: BLE001 - a worker that died (killed, out of memory) or a bug in it
        return DayOutcome(day, FAILED, reason=f"the worker process failed: {describe_error(exc)}")


def export_worker(day: date, options: dict) -> DayOutcome:
    """One day of ``export --jobs N``, in a worker process (signals stop it at a safe point)."""
    global _stopped
    if _stopped is not None:
        return DayOutcome(day, NOT_STARTED, reason="not started", signum=_stopped)
    with interrupt.stop_on_signals():
        outcome = run_day(day, **options)
    if outcome.status == INTERRUPTED:
        _stopped = outcome.signum
    return outcome


# -- the summary ----------------------------------------------------------------------------
def summary_lines(outcomes: list[DayOutcome], unit: str = "day") -> list[str]:
    """The final summary: one line of counts by ``OUTCOMES``, then each failed (and skipped) day with its reason."""
    counts = {status: 0 for status in OUTCOMES}
    for outcome in outcomes:
        if outcome.status in counts:
            counts[outcome.status] += 1
    total = len(outcomes)
    head = f"{total} {unit}{'s' if total != 1 else ''}: " + ", ".join(f"{counts[s]} {s}" for s in OUTCOMES)
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
    published before its data goes); the folder is removed when that leaves it empty. Returns
    the days removed; ``log`` gets one line per day kept for a reason or removed."""
    if keep < 0:
        raise ArchiveError(f"--keep-local takes a number of days of at least 0, not {keep}")
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
        why = _not_safe_to_remove(folder, day, remote, upload_options)
        if why:
            log(f"kept local {folder}: {why}")
            continue
        os.remove(os.path.join(folder, MANIFEST_NAME))
        os.remove(os.path.join(folder, DATA_NAME))
        try:
            os.rmdir(folder)
        except OSError:
            pass  # other files are there: not ours to remove
        removed.append(day)
        log(f"removed local {folder}: its upload to {remote} is verified (same sha256 and size)")
    return removed


def _not_safe_to_remove(folder: str, day: date, remote: str, upload_options: dict | None) -> str:
    try:
        with open(os.path.join(folder, MANIFEST_NAME), "rb") as f:
            local = Manifest.from_json(f.read())
        if local.date_utc != day.isoformat():
            return f"its manifest is of {local.date_utc}"
        if os.path.getsize(os.path.join(folder, DATA_NAME)) != local.parquet_size_bytes:
            return "its data.parquet is not of the size its manifest states"
        there = DayFolder(remote, day, storage_options_for(remote, upload_options))
        raw = there.read_manifest_bytes()
        if raw is None:
            return f"not published at {there.url}"
        published = Manifest.from_json(raw)
        if published.parquet_sha256 != local.parquet_sha256:
            return f"{there.url} publishes other data (sha256 {published.parquet_sha256[:12]}...)"
        size = there.size(there.data_path)
        if size != published.parquet_size_bytes:
            return f"{there.display(there.data_path)} is {'missing' if size is None else f'{size} bytes'}, its manifest says {published.parquet_size_bytes}"
    except (OSError, InstrumetriqError) as exc:
        return f"could not be checked ({describe_error(exc) if isinstance(exc, OSError) else exc})"
    return ""
