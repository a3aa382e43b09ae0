"""What the commands share: usage errors, the log, date options, progress lines, outcome reports."""

from __future__ import annotations

import argparse
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING

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


def _add_date_options(parser: argparse.ArgumentParser, default: str = "default: yesterday UTC") -> None:
    """--date, --from-date, --to-date; ``default`` says what no date means for this command."""
    parser.add_argument("--date", action="append", metavar="YYYY-MM-DD", help=f"day to process (repeatable); {default}")
    parser.add_argument("--from-date", metavar="YYYY-MM-DD", help="first day of a range (with --to-date)")
    parser.add_argument("--to-date", metavar="YYYY-MM-DD", help="last day of a range (inclusive)")


def _hour_printer(log: Log, day_index: int = 0, days: int = 1, overall=None) -> Callable[[HourReport], None]:
    """Per hour: a line (not a terminal), or the progress bar of hours and days (a terminal);
    ``overall`` (``output.RunProgress``): the run's days done, rate and ETA lead the bar."""
    def show(report: HourReport) -> None:
        position = f"day {day_index + 1}/{days} " if days > 1 else ""
        lead = f"{overall.text((report.hour + 1) / 24)} " if overall is not None else ""
        log.progress(
            f"{lead}{bar(report.hour + 1, 24)} {position}{report.file} {report.rows} rows",
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


def _reporter(args: argparse.Namespace, log: Log, overall=None) -> Callable[[Outcome], None]:
    """What the log and stdout show as each day (or hour) of a run ends. stdout's lines are
    stamped like the log's when stdout is not a terminal (``output.stdout_log``); with ``--json``
    stdout is left to the JSON document (``output.print_results``). ``overall``: the run's
    ``output.RunProgress``, told that one more partition ended."""
    from .output import stdout_log

    out = stdout_log()

    def report(outcome: Outcome) -> None:
        log.done()
        if overall is not None:
            overall.finished_one()
        if not args.quiet:
            for result in outcome.results:
                for warning in result.warnings if result is outcome.results[0] else []:
                    log.warning(warning)
                if not getattr(args, "json", False):
                    out.summary(result.summary())
            if outcome.status == SKIPPED and not outcome.alarm:
                hint = " (--force)" if outcome.remedy == "force" else ""
                log.info(f"{outcome.partition}: skipped: {outcome.reason}{hint}")
        if outcome.status == SKIPPED and outcome.alarm:  # a collector that stopped: said even with --quiet
            log.warning(f"{outcome.partition}: {outcome.reason}")
        if outcome.status == FAILED:
            reason = error_line(outcome.error) if outcome.error is not None else outcome.reason
            _err(reason if _names_itself(outcome) else f"{outcome.partition}: {reason}", outcome.error if args.debug else None, log)
        elif outcome.status == INTERRUPTED:
            _err(f"{outcome.partition}: {outcome.reason}", None, log)

    return report


def _names_itself(outcome: Outcome) -> bool:
    """Whether the outcome's error already names its partition (an archive error carries its
    ``day`` or ``partition``): its line then does not repeat it."""
    error = outcome.error
    return error is not None and outcome.partition in (getattr(error, "day", None), getattr(error, "partition", None))


class RootOption(argparse.Action):
    """``--out-dir`` and its former spellings (``--local``, ``--path``): one option; the spelling
    used is kept in ``out_dir_flag`` so that messages name what the person typed."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)
        namespace.out_dir_flag = option_string


def root_flag(args: argparse.Namespace) -> str:
    """The spelling of the dataset root's option that was given (``--out-dir`` when none was)."""
    return getattr(args, "out_dir_flag", None) or "--out-dir"


def _location(text: str) -> str:
    """A local path or an fsspec URL: as given; ``check_locations`` looks at its protocol once the
    command line is parsed (one ``error:`` line, not argparse's usage dump)."""
    return text


def location_problem(text: str) -> str | None:
    """Why a location cannot be opened by this installation (an unknown protocol, a missing
    package), or None."""
    if "://" in text:
        import fsspec  # only for a URL: a local path's command may need no fsspec (--help, schema)

        protocol = text.split("://", 1)[0]
        try:
            fsspec.get_filesystem_class(protocol)
        except ValueError:
            return f"unknown storage protocol {protocol!r} in {text!r} (local paths, file://, s3:// and the other fsspec protocols)"
        except ImportError as exc:
            return f"{protocol}:// needs a package that is not installed ({exc})"
    return None


def check_locations(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Every location option given to the chosen command (those parsed by ``_location``) names a
    storage this installation can open; ``UsageError`` naming the option otherwise."""
    for chosen in chosen_parsers(parser, args):
        for action in chosen._actions:
            if action.type is not _location:
                continue
            value = getattr(args, action.dest, None)
            for text in value if isinstance(value, list) else [value]:
                problem = location_problem(text) if isinstance(text, str) else None
                if problem:
                    raise UsageError(f"{'/'.join(action.option_strings)}: {problem}")


def chosen_parsers(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[argparse.ArgumentParser]:
    """The program's parser and those of the (sub)commands the arguments chose, in that order."""
    chain = [parser]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            sub = action.choices.get(getattr(args, action.dest, None) or "")
            if sub is not None:
                chain += chosen_parsers(sub, args)
            break
    return chain


def check_out_root(out: str) -> None:
    """One error before any partition when a local output root cannot be written (a file in the
    way, no permission, a read-only disk): ``StorageError`` naming it. Object stores are left to
    the export (their credentials are checked by the settings)."""
    import os
    import tempfile

    from ..errors import StorageError
    from ..storage import describe_error

    if not storage.is_local(out):
        return
    root = out.removeprefix("file://")
    try:
        os.makedirs(root, exist_ok=True)
        handle, probe = tempfile.mkstemp(prefix=".write-probe-", dir=root)
        os.close(handle)
        os.unlink(probe)
    except OSError as exc:
        raise StorageError(f"cannot write to the output root {root}: {describe_error(exc)}; nothing done", root) from None


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
