"""``verify``: days, hours and monthly bundles."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from datetime import date

import fsspec

from ..errors import ConfigError, InstrumetriqError
from .. import storage
from ..tiers import DEFAULT_HOURLY_OUT, DEFAULT_MONTHLY_DIR, DEFAULT_OUT_DIR, hourly_root, monthly_root
from ..periods import hour_text, month_text, parse_month, partition_date
from ..storage import load_settings
from ..verify import render_report, split_day_folder, unreadable_result, verify_day, verify_hour, verify_month
from .common import UsageError, _dates, _hours, error_line, root_flag
from .output import CANNOT_CHECK


def _partitions(args: argparse.Namespace) -> list[tuple[str, Callable]] | None:
    """verify's hours (``--hour``, ``--from-hour/--to-hour``) or months (``--month``), each with its
    verify function; None when days are asked for."""
    hours = _hours(args)
    months = sorted({parse_month(m) for m in args.month or []})
    if sum(map(bool, (hours, months, args.date or args.from_date or args.to_date))) > 1:
        raise UsageError("give days, hours or months, not several kinds at once")
    if hours:
        return [(hour_text(h), verify_hour) for h in sorted(set(hours))]
    return [(month_text(m), verify_month) for m in months] or None


def cmd_verify(args: argparse.Namespace) -> int:
    """``verify``: exit 0 when no partition failed, 1 when one did, 2 for a usage error or a root
    that cannot be looked at (``output``'s codes); with ``--json`` a JSON document in every case."""
    try:
        return _verify(args)
    except InstrumetriqError as exc:
        if args.json:
            print(json.dumps({"passed": 0, "failed": 0, "ok": False, "exit_code": CANNOT_CHECK, "error": error_line(exc),
                              "report": None, "days": []}, indent=2))
        if isinstance(exc, UsageError):
            raise
        raise UsageError(error_line(exc)) from None  # could not check: exit 2


def _verify(args: argparse.Namespace) -> int:
    human = sys.stderr if args.json else sys.stdout
    try:
        partitions = _partitions(args)
        if not args.r2:
            partitions = _folder_partitions(args, partitions)
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
        raise  # the command line is right, the settings are missing
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
        print(json.dumps({"passed": len(results) - failed, "failed": failed, "ok": not failed, "exit_code": 1 if failed else 0,
                          "error": None, "report": report,
                          "days": [r.to_dict() for r in results]}, indent=2, default=str))
    return 1 if failed else 0


def _verify_partitions(args: argparse.Namespace, partitions: list[tuple[str, Callable]], human) -> int:
    """verify of hours or bundles: ``--out-dir`` is the hourly or monthly root (or one
    partition folder); ``--r2`` the R2 hourly or monthly root."""
    if args.r2:
        bucket = load_settings().bucket
        location = hourly_root(bucket) if partitions[0][1] is verify_hour else monthly_root(bucket)
    else:
        location = args.out_dir or (DEFAULT_HOURLY_OUT if partitions[0][1] is verify_hour else DEFAULT_MONTHLY_DIR)
        if storage.is_local(location) and not os.path.isdir(location.removeprefix("file://")):
            raise UsageError(f"{root_flag(args)} {location} is not a directory; give the dataset root or one partition folder")
    if args.sample_size < 1:
        raise UsageError(f"--sample-size must be at least 1, not {args.sample_size}")
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
        try:
            with fsspec.open(args.report, "w", encoding="utf-8") as out:  # as the days' report
                out.write(render_report(results))
        except OSError as exc:
            print(f"error: cannot write the report {args.report}: {exc}", file=sys.stderr)
            return 1
    if args.json:
        print(json.dumps({"passed": len(results) - failed, "failed": failed, "ok": not failed, "exit_code": 1 if failed else 0,
                          "error": None, "report": args.report,
                          "days": [r.to_dict() for r in results]}, indent=2, default=str))
    return 1 if failed else 0


def _folder_partitions(args: argparse.Namespace, partitions: list[tuple[str, Callable]] | None) -> list | None:
    """An hour or month folder given as the location names its partition: without --hour/--month
    that partition is verified (as a day folder's day is); another partition, or days, are a
    usage error, never a path made up under the folder."""
    from ..partitions import split_partition_folder

    location = next((v for v in (getattr(args, n, None) for n in ("out_dir", "local", "path")) if v), None)
    root, kind, key = split_partition_folder(location) if location else (None, None, None)
    if kind not in ("hour", "month"):
        return partitions
    own = hour_text(key) if kind == "hour" else month_text(key)
    if args.date or args.from_date or args.to_date:
        raise UsageError(f"{location} is the {kind} folder of {own}: give --{kind} {own}, or a daily dataset root for days")
    if partitions is None:
        return [(own, verify_hour if kind == "hour" else verify_month)]
    asked = "hour" if partitions[0][1] is verify_hour else "month"
    names = [name for name, _ in partitions]
    if asked != kind or names != [own]:
        raise UsageError(f"{location} is the {kind} folder of {own}, not of {', '.join(names)}: give its dataset root {root} "
                         f"to verify other {asked}s")
    return partitions


def _command_location(args) -> tuple[str, date | None]:
    """(location, date named by a day folder). A day folder is told from a dataset root by
    ``verify.split_day_folder``; a local dataset root must exist."""
    if args.r2:
        return load_settings().day_root, None  # ConfigError when the settings are missing
    flag, location = root_flag(args), args.out_dir or DEFAULT_OUT_DIR
    root, folder_day = split_day_folder(location)
    if "://" in root and not root.startswith("file://"):
        return location, folder_day
    local_root = root.removeprefix("file://")
    if not os.path.isdir(local_root):
        where = f"{flag} {location}" + (f": its dataset root {local_root}" if folder_day else "")
        what = "is not a directory" if os.path.exists(local_root) else "does not exist"
        raise InstrumetriqError(
            f"{where} {what}; check the path: give the dataset root (the folder holding the YYYY-MM-DD day folders) or one day folder")
    return location, folder_day
