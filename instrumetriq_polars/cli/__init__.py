"""``python -m instrumetriq_polars``: a thin argparse runner over the public API.

Expected failures print one line ``error: ...`` on stderr and exit 1 (``--debug`` shows the
traceback too, secrets masked); usage errors, and a status or verify that cannot look, exit 2
(``output``: the codes, defined once). Progress goes to stderr, summaries to stdout. The usage
names the program as it was called: ``instrumetriq-polars`` (the console script) or
``python -m instrumetriq_polars``.
``export`` stops at a safe point on SIGINT or SIGTERM (``interrupt.py``), says in one line what it
had published, and exits 130 or 143 (128 + the signal).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import warnings
from collections.abc import Sequence
from typing import NoReturn

from importlib import import_module

from .. import interrupt, storage
from ..version import __version__
from ..periods import parse_date
from ..errors import InstrumetriqError
from ..log import Log
from ..schema import LAYOUTS, describe, schema_for
from ..states import vocabulary
from ..tiers import ARCHIVE_ENV, DEFAULT_HOURLY_OUT, DEFAULT_MONTHLY_DIR, DEFAULT_OUT_DIR, R2_HOURLY_PREFIX, R2_MONTHLY_PREFIX
from ..verify import DEFAULT_SAMPLE_SIZE, DEFAULT_SEED
from .common import RootOption, UsageError, _add_date_options, _err, check_locations, chosen_parsers, error_line, _hour_printer, _location
from .live import add_live_parser
from .output import CANNOT_CHECK, EXIT_CODES, UNHEALTHY

#: The program's name in messages when it is not run as the console script.
MODULE_PROG = "python -m instrumetriq_polars"


def program_name(argv0: str | None = None) -> str:
    """The name the program was called by: the console script's (``instrumetriq-polars``), else
    ``python -m instrumetriq_polars``."""
    name = os.path.basename(argv0 if argv0 is not None else (sys.argv[0] if sys.argv else ""))
    return name if name.startswith("instrumetriq-polars") else MODULE_PROG


def _command(module: str, name: str):
    """The command function ``name`` of ``cli.<module>``, imported when the command runs: ``--help``
    and ``status`` do not pay for the export's imports (tests/test_layers.py)."""
    def run(args: argparse.Namespace) -> int:
        return getattr(import_module(f"{__name__}.{module}"), name)(args)

    run.__name__ = name
    return run


cmd_export, cmd_status = _command("days", "cmd_export"), _command("days", "cmd_status")
cmd_export_hourly, cmd_bundle = _command("tiers", "cmd_export_hourly"), _command("tiers", "cmd_bundle")
cmd_verify = _command("checks", "cmd_verify")


def cmd_config(args: argparse.Namespace) -> int:
    if args.show:
        print("\n".join(storage.describe_settings()))
        return 0
    if args.check:
        print(storage.check_bucket())
        return 0
    given = {name: getattr(args, name) for name in storage.ENV if getattr(args, name)}
    if not given and not _interactive():  # cron, CI, a pipe: nothing to prompt; the environment, or one line
        given = storage.env_settings()
        if not given:
            variables = ", ".join(storage.ENV.values())
            raise UsageError("config asks for the settings on a terminal and stdin is not one: give --endpoint, --access-key-id, "
                             f"--secret-access-key and --bucket, or set {variables} and run config again to store them")
    path = storage.update_settings(given or storage.prompt_settings())
    print(f"saved {path} (mode 0600)")
    return 0


def _warning_line(message, category, filename, lineno, file=None, line=None) -> None:
    Log().warning(str(message))


def _interactive() -> bool:
    """Whether stdin is a terminal (config may prompt)."""
    try:
        return bool(sys.stdin and sys.stdin.isatty())
    except (AttributeError, ValueError):  # closed, or not a file
        return False


def cmd_schema(args: argparse.Namespace) -> int:
    if args.json:
        print(json.dumps({name: repr(dtype) for name, dtype in schema_for(args.layout).items()}, indent=2))
    else:
        print(describe(args.layout))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from ..dataset import day_summary
    from ..synthetic import write_archive_day
    from ..tiers.daily import export_day

    day = parse_date(args.date)
    archive = f"{args.dir}/archive"
    out = f"{args.dir}/tier3_daily"
    print(f"generating a synthetic archive day {day} ({args.entries_per_hour} entries/hour) under {archive}", file=sys.stderr)
    write_archive_day(archive, day, entries_per_hour=args.entries_per_hour, seed=args.seed)
    result = export_day(day, archive, out, layout=args.layout, force=True, progress=_hour_printer(Log()))
    Log().done()
    print(result.summary())
    print(f"manifest: {result.location}/manifest.json")
    for line in day_summary(out, day):
        print(line)
    return 0


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    from ..manifest import EXPORT_VERSION

    parser = argparse.ArgumentParser(
        prog=prog or program_name(),
        description="Export Instrumetriq archive days (ARCHIVE/YYYYMMDD/HH.jsonl.gz) to Tier 3 daily Parquet.",
        epilog=EXIT_CODES + ".", allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=f"instrumetriq_polars {__version__} (export format {EXPORT_VERSION})")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for expected failures (before or after the command)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    export = sub.add_parser("export", help="export archive days to data.parquet + manifest.json",
                            description="Export archive days. With no date: yesterday UTC (the nightly cron run).")
    _add_date_options(export)
    export.add_argument("--archive-path", type=_location, metavar="PATH", help=f"archive root, local or fsspec URL (default: ${ARCHIVE_ENV} or the server path)")
    export.add_argument("--out-dir", type=_location, default=DEFAULT_OUT_DIR, metavar="DIR", help=f"dataset root, local or fsspec URL (default: {DEFAULT_OUT_DIR})")
    export.add_argument("--layout", choices=LAYOUTS, default="flat", help="flat: block__field columns (default); nested: 12 struct columns")
    export.add_argument("--allow-incomplete", action="store_true", help="bypass the today and 24-hour guards, and publish despite unreadable lines (counted in the manifest)")
    export.add_argument("--force", action="store_true", help="replace a published day whose data differs")
    export.add_argument("--dry-run", action="store_true", help="write local files only (overrides --upload)")
    export.add_argument("--upload", action="store_true", help=f"after the local export, upload the day to R2 under s3://BUCKET/{storage.R2_PREFIX}/YYYY-MM-DD/")
    export.add_argument("--catch-up", type=int, metavar="N", help="every day of the last N before today UTC that is not published, or is partial and can now be completed")
    export.add_argument("--jobs", type=int, default=1, metavar="N", help="export days in N parallel processes (default 1)")
    export.add_argument("--keep-local", type=int, metavar="N", help="with --upload: keep the N most recent local days; remove older ones once their upload is verified")
    export.add_argument("--quiet", action="store_true", help="errors and the final summary only")
    export.add_argument("--json", action="store_true", help=JSON_RESULTS)
    export.set_defaults(func=cmd_export)

    stat = sub.add_parser("status", help=f"one row per day, hour or bundle, in one of the states: {vocabulary()} (exit 1 unless all is published)",
                          description="What is published, from the manifests and one listing of each archive day folder. "
                                      f"A partition is in one of these states (the words of scan, list_days and verify): {vocabulary()}. "
                                      "Exit 0 when every day (hour) that has an archive is published complete and every bundle asked for "
                                      "is published and not partial, 1 otherwise, 2 for usage errors or a root that cannot be looked at.")
    _add_date_options(stat, default="without a day, hour or month: the --days default")
    stat.add_argument("--days", type=int, metavar="N", help="the N days before today UTC (default: 7 days)")
    stat.add_argument("--hour", action="append", metavar="YYYY-MM-DDTHH", help="hour of Tier 2 (repeatable; the root is the hourly one)")
    stat.add_argument("--from-hour", metavar="YYYY-MM-DDTHH", help="first hour of a range (with --to-hour)")
    stat.add_argument("--to-hour", metavar="YYYY-MM-DDTHH", help="last hour of a range (inclusive)")
    stat.add_argument("--hours", type=int, metavar="N", help="the N latest complete hours (UTC)")
    stat.add_argument("--month", action="append", metavar="YYYY-MM", help="monthly bundle (repeatable; the root is the monthly one)")
    where = stat.add_mutually_exclusive_group()
    where.add_argument("--out-dir", "--path", type=_location, metavar="DIR", dest="out_dir", action=RootOption,
                       help=f"dataset root, local or fsspec URL (default: {DEFAULT_OUT_DIR}; hours: {DEFAULT_HOURLY_OUT}; months: {DEFAULT_MONTHLY_DIR}); --path: the former spelling")
    where.add_argument("--r2", action="store_true",
                       help=f"the R2 dataset s3://BUCKET/{storage.R2_PREFIX} (hours: {R2_HOURLY_PREFIX}; months: {R2_MONTHLY_PREFIX})")
    stat.add_argument("--archive-path", type=_location, metavar="PATH", help=f"archive root to compare with (default: ${ARCHIVE_ENV} or the server path, when it exists)")
    stat.add_argument("--json", action="store_true", help="machine-readable rows on stdout")
    stat.set_defaults(func=cmd_status)

    hourly = sub.add_parser("export-hourly", help="export archive hours (Tier 2) to YYYY-MM-DD/HH/data.parquet + manifest.json",
                            description="Export archive hour files, one partition each. With no hour: the last complete hour "
                                        "(UTC; the hourly cron run at minute 5).")
    hourly.add_argument("--hour", action="append", metavar="YYYY-MM-DDTHH", help="hour to export (repeatable)")
    hourly.add_argument("--from-hour", metavar="YYYY-MM-DDTHH", help="first hour of a range (with --to-hour)")
    hourly.add_argument("--to-hour", metavar="YYYY-MM-DDTHH", help="last hour of a range (inclusive)")
    hourly.add_argument("--catch-up", type=int, metavar="N", help="also the N latest complete hours (those already published are left as they are, unless their file grew: late entries update them)")
    hourly.add_argument("--archive-path", type=_location, metavar="PATH", help=f"archive root (default: ${ARCHIVE_ENV} or the server path)")
    hourly.add_argument("--out-dir", type=_location, default=DEFAULT_HOURLY_OUT, metavar="DIR", help=f"dataset root of the hours, local or fsspec URL (default: {DEFAULT_HOURLY_OUT})")
    hourly.add_argument("--layout", choices=LAYOUTS, default="flat", help="flat: block__field columns (default); nested: 12 struct columns")
    hourly.add_argument("--allow-incomplete", action="store_true", help="export an hour that may still grow (marked partial), and despite unreadable lines")
    hourly.add_argument("--force", action="store_true", help="replace a published hour whose data differs")
    hourly.add_argument("--upload", action="store_true", help=f"after the local export, upload the hour to R2 under s3://BUCKET/{R2_HOURLY_PREFIX}/YYYY-MM-DD/HH/")
    hourly.add_argument("--quiet", action="store_true", help="errors and the final summary only")
    hourly.add_argument("--json", action="store_true", help=JSON_RESULTS)
    hourly.set_defaults(func=cmd_export_hourly, dry_run=False)

    bundle = sub.add_parser("bundle", help="bundle a month's published days into YYYY-MM/data.parquet + manifest.json",
                            description="Stream a month's published days into one file; the current month is a month-to-date bundle (partial).")
    bundle.add_argument("--month", action="append", required=True, metavar="YYYY-MM", help="month to bundle (repeatable)")
    source = bundle.add_mutually_exclusive_group()
    source.add_argument("--from-dir", type=_location, default=DEFAULT_OUT_DIR, metavar="DIR", help=f"the daily dataset root the days are read from (default: {DEFAULT_OUT_DIR}, export's --out-dir)")
    source.add_argument("--from-r2", action="store_true", help=f"read the days from R2 (s3://BUCKET/{storage.R2_PREFIX})")
    bundle.add_argument("--out-dir", type=_location, default=DEFAULT_MONTHLY_DIR, metavar="DIR", help=f"dataset root of the bundles, local or fsspec URL (default: {DEFAULT_MONTHLY_DIR})")
    bundle.add_argument("--upload", action="store_true", help=f"then upload the bundle to R2 under s3://BUCKET/{R2_MONTHLY_PREFIX}/YYYY-MM/")
    bundle.add_argument("--force", action="store_true", help="rebuild the bundle even when its days did not change")
    bundle.add_argument("--json", action="store_true", help=JSON_RESULTS)
    bundle.set_defaults(func=cmd_bundle)

    config = sub.add_parser("config", help="store the R2 endpoint, credentials and bucket; show or check them",
                            description=f"Store R2 settings in {storage.credentials_path()} (mode 0600): prompts "
                                        "(secret hidden) unless flags are given. The environment "
                                        "(R2_ENDPOINT, R2_ACCESS_KEY_ID, R2_SECRET_ACCESS_KEY, R2_BUCKET) overrides the file.")
    config.add_argument("--endpoint", metavar="URL", help="https://<account id>.r2.cloudflarestorage.com")
    config.add_argument("--access-key-id", metavar="ID", help="the R2 API token's access key id")
    config.add_argument("--secret-access-key", metavar="KEY", help="prefer the prompt or R2_SECRET_ACCESS_KEY: flags end up in shell history")
    config.add_argument("--bucket", metavar="NAME", help=f"default {storage.DEFAULT_BUCKET}")
    action = config.add_mutually_exclusive_group()
    action.add_argument("--show", action="store_true", help="print the settings in effect (secret masked) and their sources")
    action.add_argument("--check", action="store_true", help="list the bucket with the settings in effect")
    config.set_defaults(func=cmd_config)

    schema = sub.add_parser("schema", help="list every column and dtype of the declared schema",
                            description="Print the declared schema: columns in file order, dtypes, fingerprint.")
    schema.add_argument("--layout", choices=LAYOUTS, default="flat", help="flat: block__field columns (default); nested: 12 struct columns")
    schema.add_argument("--json", action="store_true", help="machine-readable output")
    schema.set_defaults(func=cmd_schema)

    demo = sub.add_parser("demo", help="generate a synthetic archive day, export it, read it back (no network)",
                          description="Generate a realistic synthetic archive day locally, export it, print the summary, "
                                      "then read the day back through scan and print what a newcomer can check.")
    demo.add_argument("--dir", default="output/demo", help="working folder (default: output/demo)")
    demo.add_argument("--date", default="2026-01-15", metavar="YYYY-MM-DD", help="the day to generate (default: 2026-01-15)")
    demo.add_argument("--entries-per-hour", type=int, default=20, metavar="N", help="entries per hour file (default 20; production ~100)")
    demo.add_argument("--seed", type=int, default=7, help="seed of the generator (default 7: the same day every time)")
    demo.add_argument("--layout", choices=LAYOUTS, default="flat", help="flat: block__field columns (default); nested: 12 struct columns")
    demo.set_defaults(func=cmd_demo)

    verify = sub.add_parser("verify", help="verify published days: files, manifest, sha256, schema, rows (PASS/WARN/FAIL)",
                            description="Verify published days. Exit 0 when no day failed (warnings allowed), 1 otherwise, "
                                        "2 for usage errors or a root that cannot be looked at.")
    where = verify.add_mutually_exclusive_group()
    where.add_argument("--out-dir", "--local", "--path", type=_location, metavar="DIR", dest="out_dir", action=RootOption,
                       help=f"dataset root, local or fsspec URL, or one partition folder (default: {DEFAULT_OUT_DIR}; hours: {DEFAULT_HOURLY_OUT}; "
                            f"months: {DEFAULT_MONTHLY_DIR}); --local, --path: the former spellings")
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
    add_live_parser(sub)
    for command in sub.choices.values():  # --debug after the command works too
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    _no_abbreviations(parser)
    return parser


#: the help of --json for the commands that export
JSON_RESULTS = ("print the results as one JSON object on stdout (nothing else there): per partition its status, rows, bytes, "
                "sha256, seconds and reason, then the summary; printed on failure too")


def _no_abbreviations(parser: argparse.ArgumentParser) -> None:
    """``--archive`` is not ``--archive-path``: every parser, subcommands' at any depth, takes
    whole option names only."""
    parser.allow_abbrev = False
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                _no_abbreviations(sub)


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    parser = build_parser(prog)
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # the usage of the command they were given to, not the program's
        chosen_parsers(parser, args)[-1].error(f"unrecognized arguments: {' '.join(unknown)}")
    try:
        check_locations(parser, args)
        with warnings.catch_warnings():  # a reader's DatasetWarning (clutter, partial days): one "warning:" line
            warnings.showwarning = _warning_line
            code = args.func(args)
        sys.stdout.flush()  # a closed stdout shows here at the latest, not at exit
        return code
    except BrokenPipeError:
        return _closed_stdout()
    except InstrumetriqError as exc:
        _err(error_line(exc), exc if args.debug else None)
        return CANNOT_CHECK if isinstance(exc, UsageError) else UNHEALTHY
    except KeyboardInterrupt:  # outside ``export`` (whose stop is handled there): verify, demo
        _err("interrupted")
        return 130


#: the commands that export (and so set up the process first: memory.tune_process)
_EXPORTS = ("export", "export-hourly", "bundle", "demo")


def run(argv: Sequence[str] | None = None) -> NoReturn:
    """The program: ``main``, then exit with its status. Once ``main`` has returned, the run's
    outcome is reported and nothing is left to stop, so a SIGINT or SIGTERM that lands while the
    interpreter shuts down (Polars' threads take ~50 ms) is ignored: without this it killed the
    process with a traceback and turned a finished run's status into -2 (measured). The
    process is set up for an export first (``memory.tune_process``: the allocators, the GIL's
    switch interval; not for the other commands, which do not import pyarrow for it)."""
    words = sys.argv[1:] if argv is None else list(argv)
    exporting = next((w for w in words if not w.startswith("-")), None) in _EXPORTS
    if exporting:
        from ..memory import tune_process

        tune_process()
    code = main(argv)
    for signum in interrupt.SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
    if exporting and argv is None:  # the program itself (python -m, the console script), not a caller's run([...])
        _exit_now(code)
    sys.exit(code)


def _exit_now(code: int) -> NoReturn:
    """End an export's process without the interpreter's teardown (Polars' thread pool, every
    module's objects: tens of ms). By then the run has closed everything it wrote and shut its
    worker processes down; the standard streams are flushed here."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a reader that went away (see _closed_stdout)
            pass
    os._exit(code)


def _closed_stdout() -> int:
    """The reader of stdout went away (``| head``): end quietly, as a pipe's writer is expected
    to. stdout is pointed at /dev/null so that the interpreter's own flush at exit does not
    report the same error; the exit status is 141 (128 + SIGPIPE), as a shell reports a writer a
    closed pipe killed."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # no real file descriptor (a test's capture)
        pass
    return 141
