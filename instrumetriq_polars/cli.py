"""``python -m instrumetriq_polars``: a thin argparse runner over the public API.

Expected failures print one line ``error: ...`` on stderr and exit 1 (``--debug`` shows the
traceback); usage errors exit 2. Progress goes to stderr, summaries to stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from . import __version__
from .archive import date_range, parse_date, yesterday_utc
from .errors import InstrumetriqError
from .export import ARCHIVE_ENV, DEFAULT_OUT_DIR, HourReport, default_archive, export_day
from .schema import LAYOUTS, describe, schema_for


def _err(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def _dates(args: argparse.Namespace) -> list:
    """--date (repeatable) and/or --from-date/--to-date; nothing means yesterday UTC."""
    dates = [parse_date(d) for d in args.date or []]
    if args.from_date or args.to_date:
        if not (args.from_date and args.to_date):
            raise InstrumetriqError("--from-date and --to-date go together")
        dates += date_range(args.from_date, args.to_date)
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


def cmd_export(args: argparse.Namespace) -> int:
    dates = _dates(args)
    archive = args.archive_path or default_archive()
    if args.dry_run and "://" in args.out_dir and not args.out_dir.startswith("file://"):
        raise InstrumetriqError(f"--dry-run writes local files only, but --out-dir is {args.out_dir}")
    failures = 0
    for day in dates:
        print(f"exporting {day} from {archive}", file=sys.stderr)
        try:
            result = export_day(
                day, archive, args.out_dir, layout=args.layout, allow_incomplete=args.allow_incomplete,
                force=args.force, progress=_print_hour,
            )
        except InstrumetriqError as exc:
            if args.debug:
                raise
            _err(f"{day}: {exc}")
            failures += 1
            continue
        print(result.summary())
    if len(dates) > 1:
        print(f"{len(dates) - failures} of {len(dates)} days exported", file=sys.stderr)
    return 1 if failures else 0


def cmd_schema(args: argparse.Namespace) -> int:
    if args.json:
        print(json.dumps({name: repr(dtype) for name, dtype in schema_for(args.layout).items()}, indent=2))
    else:
        print(describe(args.layout))
    return 0


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
    return 0


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
    export.add_argument("--archive-path", metavar="PATH", help=f"archive root, local or fsspec URL (default: ${ARCHIVE_ENV} or the server path)")
    export.add_argument("--out-dir", default=DEFAULT_OUT_DIR, metavar="DIR", help=f"output root, local or fsspec URL (default: {DEFAULT_OUT_DIR})")
    export.add_argument("--layout", choices=LAYOUTS, default="flat", help="flat: block__field columns (default); nested: 12 struct columns")
    export.add_argument("--allow-incomplete", action="store_true", help="bypass the today and 24-hour guards, and publish despite unreadable lines (counted in the manifest)")
    export.add_argument("--force", action="store_true", help="replace a published day whose data differs")
    export.add_argument("--dry-run", action="store_true", help="write local files only")
    export.set_defaults(func=cmd_export)

    schema = sub.add_parser("schema", help="list every column and dtype of the declared schema",
                            description="Print the declared schema: columns in file order, dtypes, fingerprint.")
    schema.add_argument("--layout", choices=LAYOUTS, default="flat")
    schema.add_argument("--json", action="store_true", help="machine-readable output")
    schema.set_defaults(func=cmd_schema)

    demo = sub.add_parser("demo", help="generate a synthetic archive day and export it (no network)",
                          description="Generate a realistic synthetic archive day locally, export it, print the summary.")
    demo.add_argument("--dir", default="output/demo", help="working folder (default: output/demo)")
    demo.add_argument("--date", default="2026-01-15", metavar="YYYY-MM-DD")
    demo.add_argument("--entries-per-hour", type=int, default=20, metavar="N", help="entries per hour file (default 20; production ~100)")
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--layout", choices=LAYOUTS, default="flat")
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except InstrumetriqError as exc:
        if args.debug:
            raise
        _err(str(exc))
        return 1
    except KeyboardInterrupt:
        _err("interrupted; nothing was published for the day in progress")
        return 130
