"""What the commands share: usage errors, the log, date options, progress lines, outcome reports."""

from __future__ import annotations

import argparse
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING

import fsspec

from .. import storage
from ..periods import date_range, hour_range, parse_date, parse_hour, yesterday_utc
from ..errors import BadInputError, DamagedDayError, InstrumetriqError, ManifestError, RangeError
from ..tiers import ARCHIVE_ENV

if TYPE_CHECKING:
    from ..source import HourReport
from ..log import Log, bar
from ..run import FAILED, INTERRUPTED, SKIPPED, Outcome



def _log(args: argparse.Namespace) -> Log:
    return Log(quiet=getattr(args, "quiet", False))


def error_line(exc: BaseException) -> str:
    """The error's one line, with the CLI's hint for its ``remedy`` (``errors.InstrumetriqError``:
    the library names no flag; the flags are named here)."""
    text, remedy = str(exc), getattr(exc, "remedy", None)
    if isinstance(exc, BadInputError):
        return f"{text} or pass --allow-incomplete to publish without these lines"
    if remedy == "allow_incomplete":
        return f"{text} or pass --allow-incomplete"
    if remedy == "force":
        return f"{text}; pass --force to {'rewrite the day' if isinstance(exc, (DamagedDayError, ManifestError)) else 'replace'}"
    if remedy == "archive":
        return f"{text}; check --archive-path or ${ARCHIVE_ENV}"
    return text


def _err(message: str, traceback_of: BaseException | None = None, log: Log | None = None) -> None:
    """One line ``error: ...``; with ``--debug`` the traceback first. Known secrets are masked in both."""
    log = log or Log()
    if traceback_of is not None:
        log.raw(storage.redact("".join(traceback.format_exception(traceback_of))))
    log.error(storage.redact(message))


class UsageError(InstrumetriqError):
    """The command line itself is wrong (exit 2)."""


def _dates(args: argparse.Namespace) -> list:
    """--date (repeatable) and/or --from-date/--to-date; nothing means yesterday UTC."""
    try:
        dates = [parse_date(d) for d in args.date or []]
        if args.from_date or args.to_date:
            if not (args.from_date and args.to_date):
                raise UsageError("--from-date and --to-date go together")
            try:
                dates += date_range(args.from_date, args.to_date)
            except RangeError:  # the calendar names no flag: the command line's words
                raise UsageError(f"--to-date {args.to_date} is before --from-date {args.from_date}") from None
    except InstrumetriqError as exc:
        raise UsageError(str(exc)) from None
    return sorted(set(dates)) or [yesterday_utc()]


def _add_date_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--date", action="append", metavar="YYYY-MM-DD", help="day to process (repeatable); default: yesterday UTC")
    parser.add_argument("--from-date", metavar="YYYY-MM-DD", help="first day of a range (with --to-date)")
    parser.add_argument("--to-date", metavar="YYYY-MM-DD", help="last day of a range (inclusive)")


def _hour_printer(log: Log, day_index: int = 0, days: int = 1) -> Callable[[HourReport], None]:
    """Per hour: a line (not a terminal), or the progress bar of hours and days (a terminal)."""
    def show(report: HourReport) -> None:
        position = f"day {day_index + 1}/{days} " if days > 1 else ""
        log.progress(
            f"{bar(report.hour + 1, 24)} {position}{report.file} {report.rows} rows",
            detail=(f"  {report.file}: {report.rows} rows from {report.lines_read} lines, "
                    f"{report.size_bytes / 1e6:.1f} MB gz, {report.seconds:.2f} s"),
        )
        for bad in report.bad_lines:
            log.warning(bad.message())
        for note in report.notes:
            log.warning(note)
        if not report.lines_read and not report.bad_lines:
            log.warning(f"{report.file}: the hour file holds no entries ({report.size_bytes} bytes)")
    return show


def _reporter(args: argparse.Namespace, log: Log) -> Callable[[Outcome], None]:
    """What the log and stdout show as each day (or hour) of a run ends."""

    def report(outcome: Outcome) -> None:
        log.done()
        if not args.quiet:
            for result in outcome.results:
                for warning in result.warnings if result is outcome.results[0] else []:
                    log.warning(warning)
                print(result.summary(), flush=True)
            if outcome.status == SKIPPED and not outcome.alarm:
                hint = " (--force)" if outcome.remedy == "force" else ""
                log.info(f"{outcome.partition}: skipped: {outcome.reason}{hint}")
        if outcome.status == SKIPPED and outcome.alarm:  # a collector that stopped: said even with --quiet
            log.warning(f"{outcome.partition}: {outcome.reason}")
        if outcome.status == FAILED:
            reason = error_line(outcome.error) if outcome.error is not None else outcome.reason
            _err(f"{outcome.partition}: {reason}", outcome.error if args.debug else None, log)
        elif outcome.status == INTERRUPTED:
            _err(f"{outcome.partition}: {outcome.reason}", None, log)

    return report


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


def _hours(args: argparse.Namespace) -> list:
    """--hour (repeatable) and/or --from-hour/--to-hour, as hour starts (UTC)."""
    hours = [parse_hour(h) for h in args.hour or []]
    if args.from_hour or args.to_hour:
        if not (args.from_hour and args.to_hour):
            raise UsageError("--from-hour and --to-hour go together")
        try:
            hours += hour_range(args.from_hour, args.to_hour)
        except RangeError:  # the calendar names no flag: the command line's words
            raise UsageError(f"--to-hour {args.to_hour} is before --from-hour {args.from_hour}") from None
    return hours
