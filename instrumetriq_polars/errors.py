"""The exceptions the library raises for expected failures.

Every message is one line written for the person reading the cron log at 00:05: what failed,
where (file and line where there is one), and what to do about it. The CLI prints ``error: <msg>``
and exits 1; anything else is a bug and keeps its traceback.
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
    """The destination refused the export: existing day, another run holds the lock, I/O failure."""


class StorageError(PublishError):
    """A storage backend failed (network, permissions, disk): retry later. ``.url``: where."""

    def __init__(self, message: str, url: str | None = None):
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
