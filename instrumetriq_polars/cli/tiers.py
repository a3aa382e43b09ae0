"""``export-hourly`` (Tier 2) and ``bundle`` (monthly files of the daily dataset)."""

from __future__ import annotations

import argparse
import signal

from .. import interrupt, storage
from ..errors import InstrumetriqError, Interrupted
from ..periods import hour_text, month_text, parse_month
from ..tiers import default_archive, hourly_root, monthly_root
from ..tiers.hourly import catch_up_hours, export_hour, last_complete_hour
from ..tiers.monthly import bundle_month
from ..write.flow import upload
from ..run import FAILED, INTERRUPTED, Outcome, check_archive_root, run_days, run_export, summary_lines
from .common import UsageError, _err, error_line, _hour_printer, _hours, _log, _reporter


def cmd_export_hourly(args: argparse.Namespace) -> int:
    """``export-hourly``: Tier 2, one archive hour file per partition (``hourly.export_hour``),
    run, reported and summed up as the days of ``export`` are."""
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

    def work(label: str) -> Outcome:
        log.info(f"exporting {label} from {archive}")
        return run_export(label, lambda: export_hour(label, archive, args.out_dir, layout=args.layout, allow_incomplete=args.allow_incomplete,
                                                     force=args.force, progress=_hour_printer(log)),
                          upload_to=upload_to, force=args.force)

    with interrupt.stop_on_signals():
        outcomes = run_days(labels, work, report=_reporter(args, log))
    stopped = next((o for o in outcomes if o.status == INTERRUPTED), None)
    if stopped is not None:
        return 128 + stopped.signum
    if len(labels) > 1 or args.quiet:
        for line in summary_lines(outcomes, unit="hour"):
            log.summary(line)
    return 1 if any(o.status == FAILED for o in outcomes) else 0


def cmd_bundle(args: argparse.Namespace) -> int:
    """``bundle``: one file per month from the published days (``bundle.bundle_month``). A SIGINT
    or SIGTERM stops it at the next safe point, as it stops an export (``interrupt``): what was
    being written is discarded and the lock released; one line, exit 128 + the signal."""
    with interrupt.stop_on_signals():
        try:
            return _bundle(args)
        except Interrupted as stop:
            _err(f"bundle: interrupted; what it was writing was discarded ({signal.Signals(stop.signum).name})")
            return 128 + stop.signum


def _bundle(args: argparse.Namespace) -> int:
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
    failures = 0
    for month in months:
        try:
            log.info(f"bundling {month_text(month)} from {daily}")
            result = bundle_month(month, daily, args.out_dir, force=args.force)
            if result.manifest.missing_days:
                log.warning(f"{month_text(month)}: days not published, not in the bundle: {', '.join(result.manifest.missing_days)}")
            if args.upload:
                print(result.summary())
                result = upload(result, monthly_root(settings.bucket), force=args.force, follows=True)  # R2 follows the days too
            print(result.summary())
        except InstrumetriqError as exc:
            _err(f"{month_text(month)}: {error_line(exc)}", exc if args.debug else None, log)
            failures += 1
    return 1 if failures else 0
