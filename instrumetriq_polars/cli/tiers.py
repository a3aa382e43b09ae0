"""``export-hourly`` (Tier 2) and ``bundle`` (monthly files of the daily dataset)."""

from __future__ import annotations

import argparse
import signal
import time

from .. import interrupt, storage
from ..errors import InstrumetriqError, Interrupted
from ..periods import hour_text, month_text, parse_month
from ..tiers import default_archive, hourly_root, monthly_root
from ..tiers.hourly import catch_up_hours, export_hour, last_complete_hour
from ..write.flow import upload
from ..run import FAILED, INTERRUPTED, NOT_STARTED, Outcome, check_archive_root, run_days, run_export, summary_lines
from .common import UsageError, _err, error_line, _hour_printer, _hours, _log, _reporter, check_out_root
from .output import CANNOT_CHECK, OK, UNHEALTHY, RunProgress, outcome_record, partition_record, print_results, stdout_log


def cmd_export_hourly(args: argparse.Namespace) -> int:
    """``export-hourly``: Tier 2, one archive hour file per partition (``hourly.export_hour``),
    run, reported and summed up as the days of ``export`` are (``--json`` likewise)."""
    return _with_json(args, "export-hourly", _export_hourly)


def _with_json(args: argparse.Namespace, command: str, run) -> int:
    """``run(args)``; with ``--json``, a failure before any partition still prints the document."""
    try:
        return run(args)
    except InstrumetriqError as exc:
        if args.json:
            print_results(command, [], error=error_line(exc), code=CANNOT_CHECK if isinstance(exc, UsageError) else UNHEALTHY)
        raise


def _export_hourly(args: argparse.Namespace) -> int:
    log = _log(args)
    try:
        hours = _hours(args)
        if args.catch_up is not None:
            if args.catch_up < 1:
                raise UsageError(f"--catch-up takes a number of hours of at least 1, not {args.catch_up}")
            hours += catch_up_hours(args.catch_up)
    except InstrumetriqError as exc:
        raise UsageError(str(exc)) from None
    labels = [hour_text(h) for h in sorted(set(hours) or [last_complete_hour()])]
    archive = args.archive_path or default_archive()
    if args.upload and not storage.is_local(args.out_dir):
        raise UsageError(f"--upload exports to a local folder, then uploads it; --out-dir must be local, not {args.out_dir}")
    needs_r2 = args.upload or storage.is_s3_url(archive) or storage.is_s3_url(args.out_dir)
    settings = storage.load_settings() if needs_r2 else None
    upload_to = hourly_root(settings.bucket) if args.upload else None
    check_archive_root(archive)
    check_out_root(args.out_dir)

    overall = RunProgress(len(labels), unit="hour") if len(labels) > 1 else None

    def work(label: str) -> Outcome:
        log.info(f"exporting {label} from {archive}")
        if overall is not None:
            log.progress(f"{overall.text()} {label}")
        return run_export(label, lambda: export_hour(label, archive, args.out_dir, layout=args.layout, allow_incomplete=args.allow_incomplete,
                                                     force=args.force, progress=_hour_printer(log)),
                          upload_to=upload_to, force=args.force)

    with interrupt.stop_on_signals():
        outcomes = run_days(labels, work, report=_reporter(args, log, overall))
    stopped = next((o for o in outcomes if o.status == INTERRUPTED), None)
    if stopped is not None:
        rest = labels[labels.index(stopped.partition) + 1:]
        if rest:
            _err(f"interrupted; not started: {', '.join(rest)} ({signal.Signals(stopped.signum).name})", None, log)
        outcomes += [Outcome(label, NOT_STARTED, reason="not started") for label in rest]
    code = 128 + stopped.signum if stopped is not None else UNHEALTHY if any(o.status == FAILED for o in outcomes) else OK
    if len(labels) > 1 or args.quiet:
        for line in summary_lines(outcomes, unit="hour"):
            log.summary(line)
    if args.json:
        print_results("export-hourly", [outcome_record(o) for o in outcomes], code=code)
    return code


def cmd_bundle(args: argparse.Namespace) -> int:
    """``bundle``: one file per month from the published days (``bundle.bundle_month``). A SIGINT
    or SIGTERM stops it at the next safe point, as it stops an export (``interrupt``): what was
    being written is discarded and the lock released; one line, exit 128 + the signal."""
    with interrupt.stop_on_signals():
        try:
            return _with_json(args, "bundle", _bundle)
        except Interrupted as stop:
            _err(f"bundle: interrupted; what it was writing was discarded ({signal.Signals(stop.signum).name})")
            return 128 + stop.signum


def _bundle(args: argparse.Namespace) -> int:
    from ..tiers.monthly import bundle_month  # the bundle's reading of days: not loaded by export-hourly

    try:
        months = sorted({parse_month(m) for m in args.month})
    except InstrumetriqError as exc:
        raise UsageError(str(exc)) from None
    if args.upload and "://" in args.out_dir and not args.out_dir.startswith("file://"):
        raise UsageError(f"--upload bundles into a local folder, then uploads it; --out-dir must be local, not {args.out_dir}")
    needs_r2 = args.upload or args.from_r2 or storage.is_s3_url(args.from_dir) or storage.is_s3_url(args.out_dir)
    settings = storage.load_settings() if needs_r2 else None
    daily = settings.day_root if args.from_r2 else args.from_dir
    log = _log(args)
    check_out_root(args.out_dir)
    out = stdout_log()
    records = []
    for month in months:
        started, results = time.perf_counter(), []
        try:
            log.info(f"bundling {month_text(month)} from {daily}")
            results.append(bundle_month(month, daily, args.out_dir, force=args.force))
            if results[0].manifest.missing_days:
                log.warning(f"{month_text(month)}: days not published, not in the bundle: {', '.join(results[0].manifest.missing_days)}")
            if args.upload:
                results.append(upload(results[0], monthly_root(settings.bucket), force=args.force, follows=True))  # R2 follows the days too
            if not args.json:
                for result in results:
                    out.summary(result.summary())
            status = "exported" if any(r.status != "already published" for r in results) else "already published"
            records.append(partition_record(month_text(month), status, results, seconds=time.perf_counter() - started))
        except InstrumetriqError as exc:
            _err(f"{month_text(month)}: {error_line(exc)}", exc if args.debug else None, log)
            records.append(partition_record(month_text(month), "failed", results, error_line(exc), time.perf_counter() - started))
    code = UNHEALTHY if any(r["status"] == "failed" for r in records) else OK
    if args.json:
        print_results("bundle", records, code=code)
    return code
