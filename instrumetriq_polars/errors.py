"""The exceptions the library raises for expected failures.

Every message is one line written for the person reading the cron log at 00:05: what failed,
where (file and line where there is one), and what to do about it. Messages name no command-line
flag: an error that an option of the call would get past says so in ``.remedy`` ("force",
"allow_incomplete", "archive"), and the CLI adds the flag's hint when it prints the error. The CLI
prints ``error: <msg>`` and exits 1; anything else is a bug and keeps its traceback. Callers
tell errors apart by class (and the fields each carries), never by their wording.

A ``PublishError`` is one of four situations that call for different actions, each a subclass
carrying what a caller needs to act on it without parsing the message:

- ``ConflictError``: another day is already published there (``DamagedDayError``: the published
  data no longer matches its manifest); rewriting it needs ``force``;
- ``LockHeldError``: another export of the day is running (``.holder``); retry later;
- ``StorageError``: the storage backend failed (``.url``); retry;
- ``ManifestChangedError``: the manifest changed while this export ran; run it again.

An ``ArchiveError`` about the archive: ``InvalidPeriodError`` (a day, hour or month that is not
one), ``RangeError`` (a range whose end is before its start), ``NoArchiveFolderError`` (no folder
for the day), ``NoHourFileError`` (no file for the hour), ``NotOverError`` (today, the current
hour, the future), ``MissingHoursError`` (a day without all its hour files), ``ArchiveRootError``.
"""


class InstrumetriqError(Exception):
    """Base class: an expected failure with a message meant for the operator. ``remedy``: the
    option of the call that would get past it ("force", "allow_incomplete"), or what to check
    ("archive": the archive root), else None; the CLI words it as its flag."""

    remedy: str | None = None


class ArchiveError(InstrumetriqError):
    """The archive day cannot be exported as asked: no folder, missing hours, today, future."""


class InvalidPeriodError(ArchiveError):
    """A value that is not a day, hour or month. ``.value``: what was given; ``.unit``: "day",
    "hour" or "month"."""

    def __init__(self, message: str, value: object = None, unit: str = "day"):
        super().__init__(message)
        self.value = value
        self.unit = unit


class RangeError(ArchiveError):
    """A range whose last period is before its first, or a count below 1. ``.first``, ``.last``:
    the bounds (None for a count); ``.unit``: "day", "hour" or "month"."""

    def __init__(self, message: str, first: object = None, last: object = None, unit: str = "day"):
        super().__init__(message)
        self.first = first
        self.last = last
        self.unit = unit


class NoArchiveFolderError(ArchiveError):
    """The archive has no folder (or an empty one) for the day. ``.day``; ``.folder``: its URL."""

    def __init__(self, message: str, day=None, folder: str | None = None):
        super().__init__(message)
        self.day = day
        self.folder = folder


class NoHourFileError(ArchiveError):
    """The archive day has no file for the hour (or no hour file at all: ``.hour`` None).
    ``.day``; ``.folder``: the day folder's URL."""

    def __init__(self, message: str, day=None, hour: int | None = None, folder: str | None = None):
        super().__init__(message)
        self.day = day
        self.hour = hour
        self.folder = folder


class NotOverError(ArchiveError):
    """The day or hour is not over (today, the current hour, an hour in its grace period) or is
    in the future (``.future``); ``allow_incomplete`` exports it marked partial (not the future).
    ``.partition``: its name; ``.until``: when it will be (a datetime, None for the future)."""

    def __init__(self, message: str, partition: str = "", until=None, future: bool = False):
        super().__init__(message)
        self.partition = partition
        self.until = until
        self.future = future
        self.remedy = None if future else "allow_incomplete"


class MissingHoursError(ArchiveError):
    """A day without all its hour files; ``allow_incomplete`` exports it marked partial.
    ``.day``; ``.missing``: the missing hours."""

    remedy = "allow_incomplete"

    def __init__(self, message: str, day=None, missing: list[int] | None = None):
        super().__init__(message)
        self.day = day
        self.missing = missing or []


class ArchiveRootError(ArchiveError):
    """The archive root does not exist or cannot be looked up. ``.url``."""

    remedy = "archive"

    def __init__(self, message: str, url: str | None = None):
        super().__init__(message)
        self.url = url


class BadInputError(InstrumetriqError):
    """Input lines could not be exported; the day is not published (``allow_incomplete``
    publishes it without them)."""

    remedy = "allow_incomplete"

    def __init__(self, message: str, bad_lines: list | None = None):
        super().__init__(message)
        self.bad_lines = bad_lines or []


class PublishError(InstrumetriqError):
    """The day was not published; the subclass says why (see the module docstring)."""


class ConflictError(PublishError):
    """Other data is published for the day; ``force`` replaces it. ``.url``: the day folder;
    ``.published_sha256``: the data published there; ``.new_sha256``: this run's data."""

    remedy = "force"

    def __init__(self, message: str, url: str, published_sha256: str | None = None, new_sha256: str | None = None):
        super().__init__(message)
        self.url = url
        self.published_sha256 = published_sha256
        self.new_sha256 = new_sha256


class DamagedDayError(ConflictError):
    """A published ``data.parquet`` no longer matches its manifest (missing, another size, other
    bytes); ``force`` rewrites the day. ``.url``: the data file; ``.size``: its size now (None:
    missing); ``.expected_size``: the size its manifest states."""

    def __init__(self, message: str, url: str, size: int | None = None, expected_size: int | None = None):
        super().__init__(message, url)
        self.size = size
        self.expected_size = expected_size


class LockHeldError(PublishError):
    """Another export of the day holds its lock; retry once it is over. ``.holder``: the lock
    file's record ({"pid", "host", "started"}), None while the holder is still starting;
    ``.lock_path``: the lock file."""

    def __init__(self, message: str, lock_path: str, holder: dict | None = None):
        super().__init__(message)
        self.lock_path = lock_path
        self.holder = holder


class StorageError(PublishError):
    """A storage backend failed (network, permissions, disk): retry later. ``.url``: where."""

    def __init__(self, message: str, url: str | None = None):
        super().__init__(message)
        self.url = url


class ManifestChangedError(PublishError):
    """The day's manifest changed while this export ran (another export of the day, on an object
    store, which has no lock); nothing was published; run the export again. ``.url``: the manifest."""

    def __init__(self, message: str, url: str):
        super().__init__(message)
        self.url = url


class ConfigError(InstrumetriqError):
    """Settings or credentials are missing or invalid."""


class ManifestError(InstrumetriqError):
    """manifest.json is missing fields, mistyped or not JSON. ``.problem``: what is wrong, without
    the file's name (for a caller that words its own message)."""

    def __init__(self, message: str, problem: str | None = None, remedy: str | None = None):
        super().__init__(message)
        self.problem = problem if problem is not None else message
        if remedy is not None:
            self.remedy = remedy


class VerifyError(InstrumetriqError):
    """A published day could not be read for verification at all."""


class DatasetError(InstrumetriqError):
    """The dataset cannot be read as asked: a bad range, no published day in it, days of
    different export formats, or (``strict=True``) days of the range that are not published."""


class Interrupted(KeyboardInterrupt):
    """The run was asked to stop (SIGINT, SIGTERM). Not an ``InstrumetriqError``: it stops the
    whole run (every remaining day, the upload), not one day. ``.signum``: the signal."""

    def __init__(self, signum: int, outcomes: list | None = None):
        super().__init__(signum)
        self.signum = signum
        #: with several processes: the partitions' outcomes that ended before the run stopped (``run.Outcome``)
        self.outcomes = outcomes or []


class RuleError(InstrumetriqError):
    """An alert rules file is invalid (``live rules``, ``live serve``): nothing is evaluated.
    ``.path``: the rules file; ``.rule``: the rule's name (None: the file itself)."""

    def __init__(self, message: str, path: str | None = None, rule: str | None = None):
        super().__init__(message)
        self.path = path
        self.rule = rule


class LiveError(InstrumetriqError):
    """The live feed (``live``) cannot go on as asked: its state folder is held by another
    follower or damaged, a start position or cursor is invalid, or the archive cannot be read."""
