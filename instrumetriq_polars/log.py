"""What the commands write to stderr, fit for a cron log and for a person at a terminal.

- When stderr is not a terminal (cron, a pipe, a file), every line starts with the time it was
  written, ISO-8601 UTC to the second (``2026-11-27T00:05:01Z``): a log appended to every night
  then says when each line happened.
- On a terminal, progress (hours of the day, days of the run) is one line rewritten in place
  with ``\\r``; on anything else progress lines are written as lines (``progress_lines``) or not
  at all.
- ``quiet``: errors and the final summary only.
- ``$INSTRUMETRIQ_LOG_TIMESTAMPS`` (``0``/``1``) overrides the choice of timestamps, e.g. for
  journald, which stamps lines itself (the tests set it to 0, and test the stamps on their own).

Partition-neutral: the lines carry whatever label the caller gives (a day, an hour), so the
hourly tier can write through the same ``Log``.
"""

from __future__ import annotations

import os
import shutil
import sys
from datetime import datetime, timezone
from typing import TextIO


def utc_stamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Log:
    """One writer of stderr lines. ``stream``: default ``sys.stderr`` as it is at each write
    (pytest swaps it); ``timestamps``/``tty``: None means decided from the stream."""

    def __init__(self, stream: TextIO | None = None, *, quiet: bool = False, timestamps: bool | None = None,
                 tty: bool | None = None) -> None:
        self._stream = stream
        self.quiet = quiet
        self._timestamps = timestamps
        self._tty = tty
        self._bar = ""  # the progress line on screen (tty only), cleared before the next line

    @property
    def stream(self) -> TextIO:
        return self._stream or sys.stderr

    @property
    def tty(self) -> bool:
        if self._tty is not None:
            return self._tty
        try:
            return self.stream.isatty()
        except (AttributeError, ValueError):  # a closed or odd stream
            return False

    def _line(self, text: str) -> None:
        self._clear_bar()
        stamped = self._timestamps if self._timestamps is not None else _stamp_default(self.tty)
        prefix = f"{utc_stamp()} " if stamped else ""
        for line in str(text).splitlines() or [""]:
            self.stream.write(f"{prefix}{line}\n")
        self.stream.flush()

    def _clear_bar(self) -> None:
        if self._bar:
            self.stream.write("\r" + " " * len(self._bar) + "\r")
            self._bar = ""

    def info(self, text: str) -> None:
        """Progress and context: dropped with ``quiet``."""
        if not self.quiet:
            self._line(text)

    def warning(self, text: str) -> None:
        if not self.quiet:
            self._line(f"warning: {text}")

    def error(self, text: str) -> None:
        """Always written."""
        self._line(f"error: {text}")

    def summary(self, text: str) -> None:
        """The run's final summary: always written."""
        self._line(text)

    def raw(self, text: str) -> None:
        """Text written as it is (a traceback for ``--debug``), always."""
        self._clear_bar()
        self.stream.write(text)
        self.stream.flush()

    def progress(self, text: str, *, detail: str | None = None) -> None:
        """On a terminal: ``text`` as the one line rewritten in place. Elsewhere: ``detail``
        (when given, and not ``quiet``) as an ordinary line."""
        if self.tty:
            if self.quiet:
                return
            shown = text[:_width() - 1]
            pad = " " * max(0, len(self._bar) - len(shown))
            self.stream.write(f"\r{shown}{pad}")
            self.stream.flush()
            self._bar = shown
        elif detail is not None:
            self.info(detail)

    def done(self) -> None:
        """End the progress line (tty)."""
        self._clear_bar()


#: "0" turns the timestamps off (a logger that stamps lines itself, such as journald), "1" on.
TIMESTAMPS_ENV = "INSTRUMETRIQ_LOG_TIMESTAMPS"


def _stamp_default(tty: bool) -> bool:
    setting = os.environ.get(TIMESTAMPS_ENV, "")
    if setting in ("0", "1"):
        return setting == "1"
    return not tty


def bar(done: int, total: int, width: int = 20) -> str:
    """``[#####.....]`` for ``done`` of ``total``."""
    filled = width if total <= 0 else min(width, round(width * done / total))
    return "[" + "#" * filled + "." * (width - filled) + "]"


def _width() -> int:
    return shutil.get_terminal_size((100, 20)).columns
