"""``python -m instrumetriq_polars``: a thin argparse runner over the public API.

Expected failures print one line ``error: ...`` on stderr and exit 1 (``--debug`` shows the
traceback too, secrets masked); usage errors exit 2. Progress goes to stderr, summaries to stdout.
``export`` stops at a safe point on SIGINT or SIGTERM (``interrupt.py``), says in one line what it
had published, and exits 130 or 143 (128 + the signal).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import traceback
from collections.abc import Callable, Sequence
from datetime import date

import fsspec

from . import interrupt, storage
from .version import __version__
from .archive import date_range, parse_date, yesterday_utc
from .dataset import day_summary
from .errors import ConfigError, InstrumetriqError, Interrupted
from .export import ARCHIVE_ENV, DEFAULT_OUT_DIR, ExportResult, HourReport, default_archive, export_day, upload_day
from .bundle import DEFAULT_MONTHLY_DIR, R2_MONTHLY_PREFIX, bundle_month, monthly_root, parse_month
from .hourly import (
    DEFAULT_HOURLY_OUT, R2_HOURLY_PREFIX, catch_up_hours, export_hour, hour_range, hour_text, hourly_root, last_complete_hour, parse_hour,
)
from .schema import LAYOUTS, describe, schema_for
from .storage import load_settings
from .dayfolder import partition_date
from .verify import (
    DEFAULT_SAMPLE_SIZE, DEFAULT_SEED, render_report, split_day_folder, unreadable_result, verify_day, verify_hour, verify_month,
)


def _err(message: str, traceback_of: BaseException | None = None) -> None:
    """One line ``error: ...``; with ``--debug`` the traceback first. Known secrets are masked in both."""
    if traceback_of is not None:
        print(storage.redact("".join(traceback.format_exception(traceback_of))), file=sys.stderr, end="")
    print(f"error: {storage.redact(message)}", file=sys.stderr)


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


class UsageError(InstrumetriqError):
    """The command line itself is wrong (exit 2)."""


def _dates(args: argparse.Namespace) -> list:
    """--date (repeatable) and/or --from-date/--to-date; nothing means yesterday UTC."""
    try:
        dates = [parse_date(d) for d in args.date or []]
        if args.from_date or args.to_date:
            if not (args.from_date and args.to_date):
                raise UsageError("--from-date and --to-date go together")
            dates += date_range(args.from_date, args.to_date)
    except InstrumetriqError as exc:
        raise UsageError(str(exc)) from None
    return sorted(set(dates)) or [yesterday_utc()]


def _add_date_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--date", action="append", metavar="YYYY-MM-DD", help="day to process (repeatable); default: yesterday UTC")
    parser.add_argument("--from-date", metavar="YYYY-MM-DD", help="first day of a range (with --to-date)")
    parser.add_argument("--to-date", metavar="YYYY-MM-DD", help="last day of a range (inclusive)")


def _print_hour(report: HourReport) -> None:
    print(
        f"  {report.file}: {report.rows} rows from {report.lines_read} lines, "
        f"{report.size_bytes / 1e6:.1f} MB gz, {report.seconds:.2f} s",
        file=sys.stderr,
    )
    for bad in report.bad_lines:
        _warn(bad.message())
    for note in report.notes:
        _warn(note)
    if not report.lines_read and not report.bad_lines:
        _warn(f"{report.file}: the hour file holds no entries ({report.size_bytes} bytes)")


def cmd_export(args: argparse.Namespace) -> int:
    dates = _dates(args)
    archive = args.archive_path or default_archive()
    remote_out = "://" in args.out_dir and not args.out_dir.startswith("file://")
    if args.dry_run and remote_out:
        raise UsageError(f"--dry-run writes local files only, but --out-dir is {args.out_dir}")
    if args.dry_run and args.upload:
        _warn("--dry-run writes local files only: --upload ignored")
    upload = args.upload and not args.dry_run
    if upload and remote_out:
        raise UsageError(f"--upload exports to a local folder, then uploads it; --out-dir must be local, not {args.out_dir}")
    # the R2 settings are checked once, before any work, when something needs them
    needs_r2 = upload or storage.is_s3_url(archive) or storage.is_s3_url(args.out_dir)
    settings = storage.load_settings() if needs_r2 else None
    with interrupt.stop_on_signals():
        return _export_days(args, dates, archive, settings.day_root if upload else None)


def _export_days(args: argparse.Namespace, dates: list, archive: str, upload_to: str | None, export=None, unit: str = "days") -> int:
    """Export (and upload) day by day (``export(unit)``: another partition's export, e.g. an
    hour's); stop at the next safe point once a signal asks for it."""
    export = export or (lambda day: export_day(day, archive, args.out_dir, layout=args.layout, allow_incomplete=args.allow_incomplete,
                                               force=args.force, progress=_print_hour))
    failures = 0
    for day in dates:
        done: list[ExportResult] = []  # what this run finished for the day: export, then upload
        try:
            interrupt.check()
            print(f"exporting {day} from {archive}", file=sys.stderr)
            result = export(day)
            done.append(result)
            for warning in result.warnings:  # names in the day folder that were not read, and why
                _warn(warning)
            if upload_to:
                print(result.summary())
                interrupt.check()
                result = upload_day(result, upload_to, force=args.force)
                done.append(result)
            print(result.summary())
            interrupt.check()  # a signal that came while the day was being published
        except InstrumetriqError as exc:
            _err(f"{day}: {exc}", exc if args.debug else None)
            failures += 1
            continue
        except Interrupted as stop:
            _err(f"{day}: {_interrupted(stop, done, bool(upload_to))}", stop if args.debug else None)
            return 128 + stop.signum
    if len(dates) > 1:
        print(f"{len(dates) - failures} of {len(dates)} {unit} exported", file=sys.stderr)
    return 1 if failures else 0


def _interrupted(stop: Interrupted, done: list[ExportResult], upload: bool) -> str:
    """The line for a run stopped by a signal: what it had published of the day, truthfully (the
    day may have been published just before the signal was acted on)."""
    published = [r.location for r in done if r.status != "already published"]
    what = f"{' and '.join(published)} published before it stopped" if published else "nothing published"
    if upload and len(done) == 1:
        what += ", nothing uploaded"
    return f"interrupted; {what} ({signal.Signals(stop.signum).name})"


def cmd_export_hourly(args: argparse.Namespace) -> int:
    """``export-hourly``: Tier 2, one archive hour file per partition (``hourly.export_hour``)."""
    try:
        hours = _hours(args)
        if args.catch_up is not None:
            hours += catch_up_hours(args.catch_up)
    except InstrumetriqError as exc:
        raise UsageError(str(exc)) from None
    labels = [hour_text(h) for h in sorted(set(hours) or [last_complete_hour()])]
    archive = args.archive_path or default_archive()
    if args.upload and "://" in args.out_dir and not args.out_dir.startswith("file://"):
        raise UsageError(f"--upload exports to a local folder, then uploads it; --out-dir must be local, not {args.out_dir}")
    needs_r2 = args.upload or storage.is_s3_url(archive) or storage.is_s3_url(args.out_dir)
    settings = storage.load_settings() if needs_r2 else None

    def export(label: str) -> ExportResult:
        return export_hour(label, archive, args.out_dir, layout=args.layout, allow_incomplete=args.allow_incomplete,
                           force=args.force, progress=_print_hour)

    with interrupt.stop_on_signals():
        return _export_days(args, labels, archive, hourly_root(settings.bucket) if args.upload else None, export, "hours")


def cmd_bundle(args: argparse.Namespace) -> int:
    """``bundle``: one file per month from the published days (``bundle.bundle_month``)."""
    try:
        months = sorted({parse_month(m) for m in args.month})
    except InstrumetriqError as exc:
        raise UsageError(str(exc)) from None
    if args.upload and "://" in args.out_dir and not args.out_dir.startswith("file://"):
        raise UsageError(f"--upload bundles into a local folder, then uploads it; --out-dir must be local, not {args.out_dir}")
    needs_r2 = args.upload or args.from_r2 or storage.is_s3_url(args.from_dir) or storage.is_s3_url(args.out_dir)
    settings = storage.load_settings() if needs_r2 else None
    daily = settings.day_root if args.from_r2 else args.from_dir
    failures = 0
    for month in months:
        try:
            print(f"bundling {month:%Y-%m} from {daily}", file=sys.stderr)
            result = bundle_month(month, daily, args.out_dir, force=args.force)
            if result.manifest.missing_days:
                _warn(f"{month:%Y-%m}: days not published, not in the bundle: {', '.join(result.manifest.missing_days)}")
            if args.upload:
                print(result.summary())
                result = upload_day(result, monthly_root(settings.bucket), force=args.force)
            print(result.summary())
        except InstrumetriqError as exc:
            _err(f"{month:%Y-%m}: {exc}", exc if args.debug else None)
            failures += 1
    return 1 if failures else 0


def cmd_config(args: argparse.Namespace) -> int:
    if args.show:
        print("\n".join(storage.describe_settings()))
        return 0
    if args.check:
        print(storage.check_bucket())
        return 0
    given = {name: getattr(args, name) for name in storage.ENV if getattr(args, name)}
    path = storage.update_settings(given or storage.prompt_settings())
    print(f"saved {path} (mode 0600)")
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    if args.json:
        print(json.dumps({name: repr(dtype) for name, dtype in schema_for(args.layout).items()}, indent=2))
    else:
        print(describe(args.layout))
    return 0


def _hours(args: argparse.Namespace) -> list:
    """--hour (repeatable) and/or --from-hour/--to-hour, as hour starts (UTC)."""
    hours = [parse_hour(h) for h in args.hour or []]
    if args.from_hour or args.to_hour:
        if not (args.from_hour and args.to_hour):
            raise UsageError("--from-hour and --to-hour go together")
        hours += hour_range(args.from_hour, args.to_hour)
    return hours


def _partitions(args: argparse.Namespace) -> list[tuple[str, Callable]] | None:
    """verify's hours (``--hour``, ``--from-hour/--to-hour``) or months (``--month``), each with its
    verify function; None when days are asked for."""
    hours = _hours(args)
    months = sorted({parse_month(m) for m in args.month or []})
    if sum(map(bool, (hours, months, args.date or args.from_date or args.to_date))) > 1:
        raise UsageError("give days, hours or months, not several kinds at once")
    if hours:
        return [(hour_text(h), verify_hour) for h in sorted(set(hours))]
    return [(f"{m:%Y-%m}", verify_month) for m in months] or None


def cmd_verify(args: argparse.Namespace) -> int:
    human = sys.stderr if args.json else sys.stdout
    try:
        partitions = _partitions(args)
    except InstrumetriqError as exc:
        raise UsageError(str(exc)) from None
    if partitions is not None:
        return _verify_partitions(args, partitions, human)
    try:
        location, folder_day = _command_location(args)
        given = args.date or args.from_date or args.to_date
        dates = _dates(args) if given or folder_day is None else [folder_day]
        if folder_day is not None and dates != [folder_day]:
            raise InstrumetriqError(
                f"{location} is the day folder of {folder_day}; to verify other dates, give its parent (the dataset root)")
        if args.sample_size < 1:
            raise InstrumetriqError(f"--sample-size must be at least 1, not {args.sample_size}")
    except ConfigError:
        raise  # not a usage error: the command line is right, the settings are missing (exit 1)
    except InstrumetriqError as exc:
        raise UsageError(str(exc)) from None
    results = []
    for day in dates:
        try:
            result = verify_day(day, location, against_archive=args.against_archive, sample_size=args.sample_size, seed=args.seed)
        except InstrumetriqError as exc:
            if args.debug:
                raise
            result = unreadable_result(day, location, exc)
        results.append(result)
        print(result.summary(), file=human)
    failed = sum(not r.ok for r in results)
    if len(results) > 1:
        print(f"{len(results) - failed} of {len(results)} days passed", file=human)
    report = args.report  # none by default: the dataset root holds only day folders
    if report:
        try:
            with fsspec.open(report, "w", encoding="utf-8") as out:  # any fsspec URL; its folder is created
                out.write(render_report(results))
        except OSError as exc:
            print(f"error: cannot write the report {report}: {exc}", file=sys.stderr)
            return 1
        print(f"report: {report}", file=human)
    if args.json:
        print(json.dumps({"passed": len(results) - failed, "failed": failed, "report": report,
                          "days": [r.to_dict() for r in results]}, indent=2, default=str))
    return 1 if failed else 0


def _verify_partitions(args: argparse.Namespace, partitions: list[tuple[str, Callable]], human) -> int:
    """verify of hours or bundles: ``--local``/``--path`` is the hourly or monthly root (or one
    partition folder); ``--r2`` the R2 hourly or monthly root."""
    if args.r2:
        bucket = load_settings().bucket
        location = hourly_root(bucket) if partitions[0][1] is verify_hour else monthly_root(bucket)
    else:
        location = args.local if args.local is not None else args.path
        if args.local is not None and not os.path.isdir(location):
            raise UsageError(f"--local {location} is not a directory; give the dataset root or one partition folder")
    results = []
    for name, verify in partitions:
        try:
            result = verify(name, location, against_archive=args.against_archive, sample_size=args.sample_size, seed=args.seed)
        except InstrumetriqError as exc:
            if args.debug:
                raise
            result = unreadable_result(partition_date(name.replace("T", "/")), location, exc)
        results.append(result)
        print(result.summary(), file=human)
    failed = sum(not r.ok for r in results)
    if args.report:
        with fsspec.open(args.report, "w", encoding="utf-8") as out:
            out.write(render_report(results))
    if args.json:
        print(json.dumps({"passed": len(results) - failed, "failed": failed, "report": args.report,
                          "days": [r.to_dict() for r in results]}, indent=2, default=str))
    return 1 if failed else 0


def _command_location(args) -> tuple[str, date | None]:
    """(location, date named by a day folder). A day folder is told from a dataset root by
    ``verify.split_day_folder``; a local dataset root must exist."""
    if args.r2:
        return load_settings().day_root, None  # ConfigError when the settings are missing
    flag, location = ("--local", args.local) if args.local is not None else ("--path", args.path)
    root, folder_day = split_day_folder(location)
    if "://" in root and not root.startswith("file://"):
        if args.local is not None:
            raise InstrumetriqError(f"--local takes a local folder, not {location}: use --path for URLs")
        return location, folder_day
    local_root = root.removeprefix("file://")
    if not os.path.isdir(local_root):
        where = f"{flag} {location}" + (f": its dataset root {local_root}" if folder_day else "")
        what = "is not a directory" if os.path.exists(local_root) else "does not exist"
        raise InstrumetriqError(
            f"{where} {what}; check the path: give the dataset root (the folder holding the YYYY-MM-DD day folders) or one day folder")
    return location, folder_day


def cmd_demo(args: argparse.Namespace) -> int:
    from .synthetic import write_archive_day

    day = parse_date(args.date)
    archive = f"{args.dir}/archive"
    out = f"{args.dir}/tier3_daily"
    print(f"generating a synthetic archive day {day} ({args.entries_per_hour} entries/hour) under {archive}", file=sys.stderr)
    write_archive_day(archive, day, entries_per_hour=args.entries_per_hour, seed=args.seed)
    result = export_day(day, archive, out, layout=args.layout, force=True, progress=_print_hour)
    print(result.summary())
    print(f"manifest: {result.location}/manifest.json")
    for line in day_summary(out, day):
        print(line)
    return 0


def _location(text: str) -> str:
    """A local path or an fsspec URL whose protocol this installation can open."""
    if "://" in text:
        protocol = text.split("://", 1)[0]
        try:
            fsspec.get_filesystem_class(protocol)
        except ValueError:
            raise argparse.ArgumentTypeError(f"unknown storage protocol {protocol!r} in {text!r}") from None
        except ImportError as exc:
            raise argparse.ArgumentTypeError(f"{protocol}:// needs a package that is not installed ({exc})") from None
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m instrumetriq_polars",
        description="Export Instrumetriq archive days (ARCHIVE/YYYYMMDD/HH.jsonl.gz) to Tier 3 daily Parquet.",
    )
    parser.add_argument("--version", action="version", version=f"instrumetriq_polars {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for expected failures")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    export = sub.add_parser("export", help="export archive days to data.parquet + manifest.json",
                            description="Export archive days. With no date: yesterday UTC (the nightly cron run).")
    _add_date_options(export)
    export.add_argument("--archive-path", type=_location, metavar="PATH", help=f"archive root, local or fsspec URL (default: ${ARCHIVE_ENV} or the server path)")
    export.add_argument("--out-dir", type=_location, default=DEFAULT_OUT_DIR, metavar="DIR", help=f"output root, local or fsspec URL (default: {DEFAULT_OUT_DIR})")
    export.add_argument("--layout", choices=LAYOUTS, default="flat", help="flat: block__field columns (default); nested: 12 struct columns")
    export.add_argument("--allow-incomplete", action="store_true", help="bypass the today and 24-hour guards, and publish despite unreadable lines (counted in the manifest)")
    export.add_argument("--force", action="store_true", help="replace a published day whose data differs")
    export.add_argument("--dry-run", action="store_true", help="write local files only (overrides --upload)")
    export.add_argument("--upload", action="store_true", help=f"after the local export, upload the day to R2 under s3://BUCKET/{storage.R2_PREFIX}/YYYY-MM-DD/")
    export.set_defaults(func=cmd_export)

    hourly = sub.add_parser("export-hourly", help="export archive hours (Tier 2) to YYYY-MM-DD/HH/data.parquet + manifest.json",
                            description="Export archive hour files, one partition each. With no hour: the last complete hour "
                                        "(UTC; the hourly cron run at minute 5).")
    hourly.add_argument("--hour", action="append", metavar="YYYY-MM-DDTHH", help="hour to export (repeatable)")
    hourly.add_argument("--from-hour", metavar="YYYY-MM-DDTHH", help="first hour of a range (with --to-hour)")
    hourly.add_argument("--to-hour", metavar="YYYY-MM-DDTHH", help="last hour of a range (inclusive)")
    hourly.add_argument("--catch-up", type=int, metavar="N", help="also the N latest complete hours (those already published are left as they are)")
    hourly.add_argument("--archive-path", type=_location, metavar="PATH", help=f"archive root (default: ${ARCHIVE_ENV} or the server path)")
    hourly.add_argument("--out-dir", type=_location, default=DEFAULT_HOURLY_OUT, metavar="DIR", help=f"output root (default: {DEFAULT_HOURLY_OUT})")
    hourly.add_argument("--layout", choices=LAYOUTS, default="flat")
    hourly.add_argument("--allow-incomplete", action="store_true", help="export an hour that may still grow (marked partial), and despite unreadable lines")
    hourly.add_argument("--force", action="store_true", help="replace a published hour whose data differs")
    hourly.add_argument("--upload", action="store_true", help=f"after the local export, upload the hour to R2 under s3://BUCKET/{R2_HOURLY_PREFIX}/YYYY-MM-DD/HH/")
    hourly.set_defaults(func=cmd_export_hourly, dry_run=False)

    bundle = sub.add_parser("bundle", help="bundle a month's published days into YYYY-MM/data.parquet + manifest.json",
                            description="Stream a month's published days into one file; the current month is a month-to-date bundle (partial).")
    bundle.add_argument("--month", action="append", required=True, metavar="YYYY-MM", help="month to bundle (repeatable)")
    source = bundle.add_mutually_exclusive_group()
    source.add_argument("--from-dir", type=_location, default=DEFAULT_OUT_DIR, metavar="DIR", help=f"daily dataset root (default: {DEFAULT_OUT_DIR})")
    source.add_argument("--from-r2", action="store_true", help=f"read the days from R2 (s3://BUCKET/{storage.R2_PREFIX})")
    bundle.add_argument("--out-dir", type=_location, default=DEFAULT_MONTHLY_DIR, metavar="DIR", help=f"monthly root (default: {DEFAULT_MONTHLY_DIR})")
    bundle.add_argument("--upload", action="store_true", help=f"then upload the bundle to R2 under s3://BUCKET/{R2_MONTHLY_PREFIX}/YYYY-MM/")
    bundle.add_argument("--force", action="store_true", help="rebuild the bundle even when its days did not change")
    bundle.set_defaults(func=cmd_bundle)

    config = sub.add_parser("config", help="store the R2 endpoint, credentials and bucket; show or check them",
                            description=f"Store R2 settings in {storage.credentials_path()} (mode 0600): prompts "
                                        "(secret hidden) unless flags are given. The environment "
                                        "(R2_ENDPOINT, R2_ACCESS_KEY_ID, R2_SECRET_ACCESS_KEY, R2_BUCKET) overrides the file.")
    config.add_argument("--endpoint", metavar="URL", help="https://<account id>.r2.cloudflarestorage.com")
    config.add_argument("--access-key-id", metavar="ID")
    config.add_argument("--secret-access-key", metavar="KEY", help="prefer the prompt or R2_SECRET_ACCESS_KEY: flags end up in shell history")
    config.add_argument("--bucket", metavar="NAME", help=f"default {storage.DEFAULT_BUCKET}")
    action = config.add_mutually_exclusive_group()
    action.add_argument("--show", action="store_true", help="print the settings in effect (secret masked) and their sources")
    action.add_argument("--check", action="store_true", help="list the bucket with the settings in effect")
    config.set_defaults(func=cmd_config)

    schema = sub.add_parser("schema", help="list every column and dtype of the declared schema",
                            description="Print the declared schema: columns in file order, dtypes, fingerprint.")
    schema.add_argument("--layout", choices=LAYOUTS, default="flat")
    schema.add_argument("--json", action="store_true", help="machine-readable output")
    schema.set_defaults(func=cmd_schema)

    demo = sub.add_parser("demo", help="generate a synthetic archive day, export it, read it back (no network)",
                          description="Generate a realistic synthetic archive day locally, export it, print the summary, "
                                      "then read the day back through scan and print what a newcomer can check.")
    demo.add_argument("--dir", default="output/demo", help="working folder (default: output/demo)")
    demo.add_argument("--date", default="2026-01-15", metavar="YYYY-MM-DD")
    demo.add_argument("--entries-per-hour", type=int, default=20, metavar="N", help="entries per hour file (default 20; production ~100)")
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--layout", choices=LAYOUTS, default="flat")
    demo.set_defaults(func=cmd_demo)

    verify = sub.add_parser("verify", help="verify published days: files, manifest, sha256, schema, rows (PASS/WARN/FAIL)",
                            description="Verify published days. Exit 0 when no day failed (warnings allowed), 1 otherwise, 2 for usage errors.")
    where = verify.add_mutually_exclusive_group(required=True)
    where.add_argument("--local", metavar="DIR", help="local dataset root (days in DIR/YYYY-MM-DD/), or one day folder")
    where.add_argument("--path", type=_location, metavar="URL", help="dataset root at any fsspec location, e.g. s3://bucket/tier3/daily")
    where.add_argument("--r2", action="store_true", help=f"the R2 dataset s3://BUCKET/{storage.R2_PREFIX} (settings: see `config`)")
    _add_date_options(verify)
    verify.add_argument("--hour", action="append", metavar="YYYY-MM-DDTHH", help="hour to verify (Tier 2; repeatable; the root is the hourly one)")
    verify.add_argument("--from-hour", metavar="YYYY-MM-DDTHH", help="first hour of a range (with --to-hour)")
    verify.add_argument("--to-hour", metavar="YYYY-MM-DDTHH", help="last hour of a range (inclusive)")
    verify.add_argument("--month", action="append", metavar="YYYY-MM", help="monthly bundle to verify (repeatable; the root is the monthly one)")
    verify.add_argument("--against-archive", type=_location, metavar="PATH", help="also re-read each day from this archive root and compare rows")
    verify.add_argument("--report", metavar="PATH", help="write a Markdown report there (any fsspec URL; default: none)")
    verify.add_argument("--json", action="store_true", help="machine-readable results on stdout (the summary goes to stderr)")
    verify.add_argument("--sample-size", type=int, default=DEFAULT_SAMPLE_SIZE, metavar="N", help=f"rows checked one by one (default {DEFAULT_SAMPLE_SIZE})")
    verify.add_argument("--seed", type=int, default=DEFAULT_SEED, help="seed of the row sample")
    verify.set_defaults(func=cmd_verify)
    for command in sub.choices.values():  # --debug after the command works too
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except InstrumetriqError as exc:
        _err(str(exc), exc if args.debug else None)
        return 2 if isinstance(exc, UsageError) else 1
    except KeyboardInterrupt:  # outside ``export`` (whose stop is handled there): verify, demo
        _err("interrupted")
        return 130
