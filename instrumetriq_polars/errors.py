"""The exceptions the library raises for expected failures.

Every message is one line written for the person reading the cron log at 00:05: what failed,
where (file and line where there is one), and what to do about it. The CLI prints ``error: <msg>``
and exits 1; anything else is a bug and keeps its traceback.

A ``PublishError`` is one of four situations that call for different actions, each a subclass
carrying what a caller needs to act on it without parsing the message:

- ``ConflictError``: another day is already published there (``DamagedDayError``: the published
  data no longer matches its manifest); rewriting it needs ``--force``;
- ``LockHeldError``: another export of the day is running (``.holder``); retry later;
- ``StorageError``: the storage backend failed (``.url``); retry;
- ``ManifestChangedError``: the manifest changed while this export ran; run it again.
"""


class InstrumetriqError(Exception):
    """Base class: an expected failure with a message meant for the operator."""


class ArchiveError(InstrumetriqError):
    """The archive day cannot be exported as asked: no folder, missing hours, today, future."""


class BadInputError(InstrumetriqError):
    """Input lines could not be exported; the day is not published (see ``--allow-incomplete``)."""

    def __init__(self, message: str, bad_lines: list | None = None):
        super().__init__(message)
        self.bad_lines = bad_lines or []


class PublishError(InstrumetriqError):
    """The day was not published; the subclass says why (see the module docstring)."""


class ConflictError(PublishError):
    """Other data is published for the day; ``--force`` replaces it. ``.url``: the day folder;
    ``.published_sha256``: the data published there; ``.new_sha256``: this run's data."""

    def __init__(self, message: str, url: str, published_sha256: str | None = None, new_sha256: str | None = None):
        super().__init__(message)
        self.url = url
        self.published_sha256 = published_sha256
        self.new_sha256 = new_sha256


class DamagedDayError(ConflictError):
    """A published ``data.parquet`` no longer matches its manifest (missing, another size, other
    bytes); ``--force`` rewrites the day. ``.url``: the data file; ``.size``: its size now (None:
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
    """manifest.json is missing fields, mistyped or not JSON."""


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
        #: with ``--jobs``: the days' outcomes that ended before the run stopped (``run.DayOutcome``)
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
