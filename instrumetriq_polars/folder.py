"""A read-only view of one partition folder (a day ``ROOT/YYYY-MM-DD/``, an hour
``ROOT/YYYY-MM-DD/HH/``, a month ``ROOT/YYYY-MM/``; local or any fsspec URL).

Verify, the read API, status and the planner's callers look at partitions through
``PartitionFolder``; only the publisher (``write.publish.Destination``, a subclass) writes.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from datetime import date

from .errors import InstrumetriqError, ManifestError, StorageError
from .manifest import Manifest
from .partitions import split_partition_folder
from .periods import day_text
from .planner import InPlace
from .storage import describe_error, display_path, is_local, storage_options_for

DATA_NAME = "data.parquet"
MANIFEST_NAME = "manifest.json"
#: An export's temporary files are ``.<name>.tmp-<pid>-<id>`` (``temp_prefix``) beside ``<name>``.
TEMP_MARKER = ".tmp-"
#: The lock file a local export holds while it writes and publishes the day (``lock.py``).
LOCK_NAME = ".export.lock"


def temp_prefix(name: str) -> str:
    """How the temporary files written for ``name`` (data.parquet, manifest.json) begin."""
    return f".{name}{TEMP_MARKER}"


#: The exact temporary names an export writes (``.data.parquet.tmp-<pid>-<8 hex>``, likewise for the
#: manifest): the only names cleanup removes and verify reports as leftovers.
TEMP_NAME = re.compile(rf"\.(?:{re.escape(DATA_NAME)}|{re.escape(MANIFEST_NAME)}){re.escape(TEMP_MARKER)}\d+-[0-9a-f]{{8}}")


def is_export_leftover(name: str) -> bool:
    """``name`` (a file name in a day folder) is one this project's export writes and removes
    again: a temporary data or manifest file, or the lock file."""
    return name == LOCK_NAME or TEMP_NAME.fullmatch(name) is not None


class PartitionFolder:
    """One partition folder under the dataset root ``out``, read only: a day ``YYYY-MM-DD`` (the
    default), or the relative ``partition`` path of an hour (``YYYY-MM-DD/HH``) or a month
    (``YYYY-MM``); ``day`` is then the partition's (first) day."""

    def __init__(self, out: str, day: date, storage_options: dict | None = None, fs=None, *, partition: str | None = None) -> None:
        if fs is None:
            import fsspec

            fs, root = fsspec.core.url_to_fs(str(out), **(storage_options or {}))
        else:
            root = fs._strip_protocol(str(out))
        self.fs = fs
        self.day = day
        self.is_local = is_local(fs)
        self.root = root.rstrip("/")
        self.label = partition or day_text(day)  # the relative path: names the partition in messages
        self.folder = f"{self.root}/{self.label}"
        self.data_path = f"{self.folder}/{DATA_NAME}"
        self.manifest_path = f"{self.folder}/{MANIFEST_NAME}"
        self.url = self.display(self.folder)

    def display(self, path: str) -> str:
        return display_path(self.fs, path)

    def read_manifest_bytes(self) -> bytes | None:
        """The manifest's bytes as they are now; None when there is none (not published)."""
        with storage_errors(f"could not read {self.display(self.manifest_path)}", self.display(self.manifest_path)):
            # s3fs' cat_file looks the file up in a cached listing of the folder first (as
            # exists/size/listing would): refresh it, or a manifest written since reads as absent
            self.fs.invalidate_cache(self.folder)
            try:
                return self.fs.cat_file(self.manifest_path)
            except FileNotFoundError:
                return None

    def in_place(self) -> InPlace:
        """What the folder publishes now, as the planner takes it: the manifest (unreadable: not
        one) and, when there is one, the size of the data file. ``StorageError`` when the store fails."""
        raw = self.read_manifest_bytes()
        if raw is None:
            return InPlace()
        try:
            manifest = Manifest.from_json(raw)
        except ManifestError:
            return InPlace(unreadable=True, data_size=self.size(self.data_path))
        return InPlace(manifest, self.size(self.data_path))

    def exists(self, path: str) -> bool:
        with storage_errors(f"could not look up {self.display(path)}", self.display(path)):
            self.fs.invalidate_cache(self.folder)
            return self.fs.exists(path)

    def size(self, path: str) -> int | None:
        """The size of ``path`` now (one info / HEAD request, nothing downloaded); None if absent."""
        with storage_errors(f"could not look up {self.display(path)}", self.display(path)):
            self.fs.invalidate_cache(self.folder)
            try:
                return self.fs.info(path)["size"]
            except FileNotFoundError:
                return None

    def export_leftovers(self) -> list[dict]:
        """The folder's temporary and lock files (``is_export_leftover``), as ``listing`` gives them."""
        return [info for info in self.listing() if is_export_leftover(info["name"].rstrip("/").rsplit("/", 1)[-1])]

    def listing(self) -> list[dict]:
        """fsspec ``ls(detail=True)`` of the folder, fresh; empty when the folder does not exist."""
        with storage_errors(f"could not list {self.url}", self.url):
            self.fs.invalidate_cache(self.folder)
            try:
                return self.fs.ls(self.folder, detail=True)
            except FileNotFoundError:
                return []


@contextmanager
def storage_errors(failed: str, url: str | None = None):
    """Report a storage backend's error (OSError, botocore, aiohttp...) as one StorageError line."""
    try:
        yield
    except InstrumetriqError:
        raise
    except Exception as exc:
        raise StorageError(f"{failed}: {describe_error(exc)}", url) from exc


def split_day_folder(location: str) -> tuple[str, date | None]:
    """``(dataset root, the date)`` when ``location`` is a day folder, else ``(location, None)``:
    ``partitions.split_partition_folder``, the one rule, asked about days."""
    root, kind, key = split_partition_folder(location)
    return (root, key) if kind == "day" else (str(location), None)


def open_day_folder(location: str, day: date, storage_options: dict | None = None) -> PartitionFolder:
    """The read-only view of ``day`` at ``location``: the dataset root, or the day folder itself
    (``split_day_folder``). ``s3://`` locations without ``storage_options`` use the R2 settings.
    Raises ``ValueError`` when ``location`` is the folder of another day; storage/driver errors
    propagate (the caller words them for its command)."""
    location = str(location)
    root, named = split_day_folder(location)
    if named is not None and named != day:
        raise ValueError(f"{location} is the day folder of {named}, not {day}: give the dataset root {root} to verify {day}")
    return PartitionFolder(root, day, storage_options_for(location, storage_options))
