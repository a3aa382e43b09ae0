"""``export`` and ``status``: the daily dataset (Tier 3), run by cron."""

from __future__ import annotations

import argparse
import json
import signal

from .. import interrupt, storage
from ..errors import InstrumetriqError, Interrupted
from ..log import bar
from ..run import (
    FAILED, INTERRUPTED, NOT_STARTED, Outcome, catch_up_days, check_archive_root, export_worker, keep_local, run_day, run_days,
    run_parallel, summary_lines,
)
from ..storage import load_settings
from ..tiers import DEFAULT_HOURLY_OUT, DEFAULT_MONTHLY_DIR, DEFAULT_OUT_DIR, default_archive, hourly_root, monthly_root
from ..partitions import TIERS
from ..periods import parse_month
from .common import UsageError, _dates, _err, _hour_printer, _hours, _log, _reporter, check_out_root, error_line
from .output import CANNOT_CHECK, OK, UNHEALTHY, RunProgress, outcome_record, print_results


def cmd_export(args: argparse.Namespace) -> int:
    """``export``; with ``--json`` the run's results (``output.print_results``) are printed even
    when it fails before any day."""
    try:
        return _export(args)
    except InstrumetriqError as exc:
        if args.json:
            print_results("export", [], error=error_line(exc), code=CANNOT_CHECK if isinstance(exc, UsageError) else UNHEALTHY)
        raise


def _export(args: argparse.Namespace) -> int:
    log = _log(args)
    if args.catch_up is not None:
        if args.date or args.from_date or args.to_date:
            raise UsageError("--catch-up N picks the days itself: give it without --date, --from-date or --to-date")
        if args.catch_up < 1:
            raise UsageError(f"--catch-up takes a number of days of at least 1, not {args.catch_up}")
        try:
            dates = catch_up_days(args.catch_up)
        except InstrumetriqError as exc:
            raise UsageError(f"--catch-up {args.catch_up}: {exc}") from None
    else:
        dates = _dates(args)
    if args.jobs < 1:
        raise UsageError(f"--jobs takes a number of processes of at least 1, not {args.jobs}")
    archive = args.archive_path or default_archive()
    remote_out = "://" in args.out_dir and not args.out_dir.startswith("file://")
    if args.dry_run and remote_out:
        raise UsageError(f"--dry-run writes local files only, but --out-dir is {args.out_dir}")
    if args.dry_run and args.upload:
        log.warning("--dry-run writes local files only: --upload ignored")
    upload = args.upload and not args.dry_run
    if upload and remote_out:
        raise UsageError(f"--upload exports to a local folder, then uploads it; --out-dir must be local, not {args.out_dir}")
    if args.keep_local is not None and not upload:
        raise UsageError("--keep-local removes local days once their upload is verified: it needs --upload")
    if args.keep_local is not None and args.keep_local < 0:
        raise UsageError(f"--keep-local takes a number of days of at least 0, not {args.keep_local}")
    # the R2 settings are checked once, before any work, when something needs them
    needs_r2 = upload or storage.is_s3_url(archive) or storage.is_s3_url(args.out_dir)
    settings = storage.load_settings() if needs_r2 else None
    upload_to = settings.day_root if upload else None
    check_archive_root(archive)  # one error for a wrong root, not one per day
    check_out_root(args.out_dir)  # likewise for a local output root that cannot be written
    options = dict(archive=archive, out=args.out_dir, layout=args.layout, allow_incomplete=args.allow_incomplete,
                   force=args.force, upload_to=upload_to, catch_up=args.catch_up is not None)
    if args.catch_up is not None:
        log.info(f"catch-up: {dates[0]} to {dates[-1]} ({len(dates)} days before today UTC)")

    overall = RunProgress(len(dates)) if len(dates) > 1 else None
    report = _reporter(args, log, overall)
    signum = None
    with interrupt.stop_on_signals():
        try:
            if args.jobs > 1 and len(dates) > 1:
                log.info(f"exporting {len(dates)} days from {archive} in {min(args.jobs, len(dates))} processes")
                outcomes = run_parallel(dates, export_worker, options, min(args.jobs, len(dates)), report=report)
            else:
                def work(day):
                    index = dates.index(day)
                    log.info(f"exporting {day} from {archive}")
                    lead = f"{overall.text()} " if overall is not None else ""
                    log.progress(f"{lead}{bar(0, 24)} day {index + 1}/{len(dates)} {day}")
                    return run_day(day, **options, progress=_hour_printer(log, index, len(dates), overall))
                outcomes = run_days(dates, work, report=report)
        except Interrupted as stop:  # --jobs: the days that ended were reported; say what did not run
            outcomes, signum = list(getattr(stop, "outcomes", None) or []), stop.signum
            ended = {o.partition for o in outcomes}
            rest = [str(d) for d in dates if d not in ended]
            if rest:
                _err(f"interrupted; not started or stopped before publishing: {', '.join(rest)} ({signal.Signals(signum).name})", None, log)
            outcomes += [Outcome(d, NOT_STARTED, reason="not started") for d in dates if d not in ended]
        else:
            stopped = next((o for o in outcomes if o.status == INTERRUPTED), None)
            if stopped is not None:  # the days after it never started: named, and counted in the summary
                signum = stopped.signum
                rest = dates[dates.index(stopped.partition) + 1:]
                if rest:
                    _err(f"interrupted; not started: {', '.join(map(str, rest))} ({signal.Signals(signum).name})", None, log)
                outcomes += [Outcome(d, NOT_STARTED, reason="not started") for d in rest]
            elif args.keep_local is not None:
                keep_local(args.out_dir, args.keep_local, upload_to, log=log.info)
    code = 128 + signum if signum is not None else UNHEALTHY if any(o.status == FAILED for o in outcomes) else OK
    if len(dates) > 1 or args.quiet:
        for line in summary_lines(outcomes):
            log.summary(line)
    if args.json:
        print_results("export", [outcome_record(o) for o in outcomes], code=code)
    return code


def cmd_status(args: argparse.Namespace) -> int:
    """``status``: exit 0 healthy, 1 not healthy, 2 a usage error or a root that cannot be looked
    at (``output``'s codes); with ``--json`` a JSON document in every case."""
    try:
        return _status(args)
    except InstrumetriqError as exc:
        if args.json:
            print(json.dumps({"location": getattr(args, "out_dir", None), "ok": False, "exit_code": CANNOT_CHECK,
                              "error": error_line(exc), "days": []}, indent=2))
        if isinstance(exc, UsageError):
            raise
        raise UsageError(error_line(exc)) from None  # could not check: exit 2, one line


def _status(args: argparse.Namespace) -> int:
    log = _log(args)
    try:
        keys = _status_partitions(args)
    except UsageError:
        raise
    except InstrumetriqError as exc:
        raise UsageError(str(exc)) from None
    if keys is not None:
        return _status_tier(args, log, *keys)
    try:
        if args.days is not None and (args.date or args.from_date or args.to_date):
            raise UsageError("--days N picks the days itself: give it without --date, --from-date or --to-date")
        if args.days is not None and args.days < 1:
            raise UsageError(f"--days takes a number of days of at least 1, not {args.days}")
        dates = catch_up_days(args.days) if args.days is not None else _dates(args) if (args.date or args.from_date or args.to_date) else catch_up_days(7)
    except UsageError:
        raise
    except InstrumetriqError as exc:
        raise UsageError(str(exc)) from None
    if args.r2:
        location = load_settings().day_root
    else:
        location = args.out_dir or DEFAULT_OUT_DIR
    return _report_status(args, log, location, "daily", dates, TIERS["daily"].step, _status_archive(args, log))


def _status_partitions(args: argparse.Namespace) -> tuple[str, list] | None:
    """("hourly", hour starts) or ("monthly", months) when hours or months are asked for; None for days."""
    hours = _hours(args)
    if args.hours is not None:
        from ..tiers.hourly import catch_up_hours  # the hourly tier's calendar: status --hours only

        if args.hours < 1:
            raise UsageError(f"--hours takes a number of hours of at least 1, not {args.hours}")
        hours += catch_up_hours(args.hours)
    months = sorted({parse_month(m) for m in args.month or []})
    days = args.date or args.from_date or args.to_date or args.days is not None
    if sum(map(bool, (hours, months, days))) > 1:
        raise UsageError("give days, hours or months, not several kinds at once")
    if hours:
        return "hourly", sorted(set(hours))
    return ("monthly", months) if months else None


def _status_tier(args: argparse.Namespace, log, tier: str, keys: list) -> int:
    """``status`` of hours (Tier 2) or monthly bundles: ``--out-dir`` is the hourly or monthly root
    (default the tier's local root), ``--r2`` the tier's R2 root."""
    if args.r2:
        bucket = load_settings().bucket
        location = hourly_root(bucket) if tier == "hourly" else monthly_root(bucket)
    else:
        location = args.out_dir or (DEFAULT_HOURLY_OUT if tier == "hourly" else DEFAULT_MONTHLY_DIR)
    archive = _status_archive(args, log) if tier == "hourly" else None
    return _report_status(args, log, location, tier, keys, TIERS[tier].step, archive)


def _status_archive(args: argparse.Namespace, log) -> str | None:
    archive = args.archive_path
    if archive is None:
        archive = default_archive()
        try:
            check_archive_root(archive)
        except InstrumetriqError:
            log.warning(f"no archive at {archive} (the default): partitions are compared with nothing; give --archive-path")
            archive = None
    else:
        check_archive_root(archive)
    return archive


def _report_status(args: argparse.Namespace, log, location: str, tier: str, keys: list, step, archive: str | None) -> int:
    """One listing per run of consecutive partitions, the rows printed (or ``--json``), the summary
    logged; exit 0 when ``status.healthy``."""
    from ..status import healthy, status  # the readers: loaded by status, not by export

    rows = []
    for first, last in _runs(keys, step):
        rows += status(location, first, last, tier=tier, archive=archive)
    wanted = set(keys)
    rows = [row for row in rows if (row.day if tier == "daily" else row.key) in wanted]
    ok = healthy(rows)
    unit = {"daily": "day", "hourly": "hour", "monthly": "month"}[tier]
    if args.json:
        print(json.dumps({"location": location, "archive": archive, "ok": ok, "exit_code": OK if ok else UNHEALTHY, "error": None,
                          "tier": tier, "days": [r.to_dict() for r in rows]}, indent=2, default=str))
    else:
        for row in rows:
            print(row.line())
    counts = {}
    for row in rows:
        counts[row.state] = counts.get(row.state, 0) + 1
    changed = sum(bool(row.archive_changed) for row in rows)
    complete = f"every {unit} with an archive is published complete" if tier != "monthly" else "every month is bundled complete"
    log.summary(f"{len(rows)} {unit}{'s' if len(rows) != 1 else ''}: " + ", ".join(f"{n} {state}" for state, n in counts.items())
                + (f", {changed} with the archive changed since export" if changed else "")
                + ("" if ok else f"; not {complete}"))
    return OK if ok else UNHEALTHY


def _runs(keys: list, step) -> list[tuple]:
    """Consecutive partitions grouped into (first, last) ranges: one listing per range."""
    runs = []
    for key in sorted(keys):
        if runs and key == step(runs[-1][1]):
            runs[-1] = (runs[-1][0], key)
        else:
            runs.append((key, key))
    return runs
