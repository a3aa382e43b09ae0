"""Where a day is written, and how it is published without ever showing a torn day.

A day folder ``{out}/YYYY-MM-DD/`` is *published* when its ``manifest.json`` exists: the manifest
is written last and is the commit marker. Publishing order:

1. the Parquet stream goes to a temporary name ``.data.parquet.tmp-<pid>-<id>`` in the day
   folder, hashed and counted as it passes; on failure it is discarded (an unfinished upload is
   aborted, never committed);
2. an existing manifest is removed (the old day stops being published);
3. the data file is moved into place;
4. the manifest is written (locally under a temporary name, then moved) into place;
5. the sizes now in place are checked against what was written.

A crash at any point leaves the previous day, or a day without a manifest (not published), never
a ``data.parquet`` next to a manifest that does not describe it.

Object stores (s3://, R2) use the same temporary name, not the final key, although streaming
straight to ``data.parquet`` would save a server-side copy: whether the new data may replace the
published day (same sha256: "already published"; different: refused unless forced) is only known
once the stream has ended, and an object written to ``data.parquet`` is committed on ``close()``.
Streaming to the final key would therefore overwrite a published day's data under its old
manifest before the refusal. ``mv`` on S3 is copy + delete, not atomic, which is why the manifest is
removed first and written last. Temporary keys of runs that died are removed by a later run once
they are older than ``STALE_TEMP_SECONDS`` (there is no process id to check across machines).
"""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date

import fsspec

from .errors import InstrumetriqError, PublishError
from .storage import describe_error

DATA_NAME = "data.parquet"
MANIFEST_NAME = "manifest.json"
TEMP_MARKER = ".tmp-"
STALE_TEMP_SECONDS = 6 * 3600


class HashingWriter:
    """A write-only file object that hashes (sha256) and counts the bytes it passes on."""

    def __init__(self, raw) -> None:
        self._raw = raw
        self._sha = hashlib.sha256()
        self.size = 0
        self.error: Exception | None = None  # what the destination raised (Polars re-wraps it)

    def write(self, data) -> int:
        self._sha.update(data)
        self.size += len(data)
        try:
            self._raw.write(data)
        except Exception as exc:
            self.error = exc
            raise
        return len(data)

    def flush(self) -> None:
        self._raw.flush()

    def tell(self) -> int:
        return self.size

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readable(self) -> bool:
        return False

    @property
    def closed(self) -> bool:
        return False

    @property
    def sha256(self) -> str:
        return self._sha.hexdigest()


@dataclass
class WrittenData:
    sha256: str
    size: int
    path: str  # where the bytes are now (temporary name until published, then data_path)


class DayDestination:
    """One ``YYYY-MM-DD`` folder under ``out`` (a local path or any fsspec URL)."""

    def __init__(self, out: str, day: date, storage_options: dict | None = None, fs=None) -> None:
        if fs is None:
            fs, root = fsspec.core.url_to_fs(str(out), **(storage_options or {}))
        else:
            root = fs._strip_protocol(str(out))
        self.fs = fs
        self.is_local = _is_local(fs)
        self.folder = f"{root.rstrip('/')}/{day.isoformat()}"
        self.data_path = f"{self.folder}/{DATA_NAME}"
        self.manifest_path = f"{self.folder}/{MANIFEST_NAME}"
        self.url = self.display(self.folder)

    def display(self, path: str) -> str:
        protocol = self.fs.protocol if isinstance(self.fs.protocol, str) else self.fs.protocol[0]
        return path if self.is_local else f"{protocol}://{path}"

    # -- reading what is there --------------------------------------------------------------
    def read_manifest_bytes(self) -> bytes | None:
        with _storage_errors(f"could not read {self.display(self.manifest_path)}"):
            try:
                return self.fs.cat_file(self.manifest_path)
            except FileNotFoundError:
                return None

    def exists(self, path: str) -> bool:
        with _storage_errors(f"could not look up {self.display(path)}"):
            self.fs.invalidate_cache(self.folder)
            return self.fs.exists(path)

    # -- writing ----------------------------------------------------------------------------
    def write_data(self, write) -> WrittenData:
        """Call ``write(file_obj)`` with a hashing writer streaming to a temporary name; return
        where the bytes went. On failure nothing is left behind (an upload is aborted)."""
        failed = f"could not write {self.display(self.data_path)}"
        target = self._temp_path(DATA_NAME)
        with _storage_errors(failed):
            if self.is_local:
                self.fs.makedirs(self.folder, exist_ok=True)
            raw = self.fs.open(target, "wb")
        writer = HashingWriter(raw)
        try:
            write(writer)
        except BaseException as exc:
            _discard(raw)
            if self.is_local:
                self._remove_quietly(target)
            if writer.error is not None:
                raise PublishError(f"{failed}: {describe_error(writer.error)}; nothing published") from exc
            raise
        try:
            raw.close()  # on object stores: the upload is committed here
        except Exception as exc:
            _discard(raw)
            raise PublishError(f"{failed}: {describe_error(exc)}; nothing published") from exc
        return WrittenData(writer.sha256, writer.size, target)

    def discard(self, written: WrittenData | None) -> None:
        """Forget data written but not published (its temporary name); published data stays."""
        if written is not None and written.path != self.data_path:
            self._remove_quietly(written.path)

    def publish(self, written: WrittenData, manifest_json: bytes) -> None:
        with _storage_errors(f"could not publish {self.url}"):
            if self.exists(self.manifest_path):
                self.fs.rm_file(self.manifest_path)
            self.fs.mv(written.path, self.data_path)
            written.path = self.data_path
            if self.is_local:
                temp = self._temp_path(MANIFEST_NAME)
                self.fs.pipe_file(temp, manifest_json)
                self.fs.mv(temp, self.manifest_path)
            else:
                self.fs.pipe_file(self.manifest_path, manifest_json)
            self.fs.invalidate_cache(self.folder)
            self._check_size(self.data_path, written.size)
            self._check_size(self.manifest_path, len(manifest_json))

    def remove_if_empty(self) -> None:
        """Remove the local day folder if a failed run left it empty (nothing half-made stays)."""
        if self.is_local:
            try:
                os.rmdir(self.folder)
            except OSError:  # not empty (a published day, another run's files) or already gone
                pass

    def clean_stale_temps(self) -> list[str]:
        """Remove temporary files an interrupted run left in this day folder: locally those of
        processes that are gone, on object stores those older than STALE_TEMP_SECONDS."""
        with _storage_errors(f"could not list {self.url}"):
            self.fs.invalidate_cache(self.folder)
            try:
                listing = self.fs.ls(self.folder, detail=True)
            except FileNotFoundError:
                return []
        removed = []
        for info in listing:
            path = info["name"]
            if TEMP_MARKER in path.rsplit("/", 1)[-1] and self._is_stale(path, info):
                self._remove_quietly(path)
                removed.append(path)
        return removed

    def _is_stale(self, path: str, info: dict) -> bool:
        if self.is_local:
            return not _owned_by_live_process(path)
        modified = info.get("LastModified")
        return modified is not None and time.time() - modified.timestamp() > STALE_TEMP_SECONDS

    def _check_size(self, path: str, expected: int) -> None:
        size = self.fs.info(path)["size"]
        if size != expected:
            self._remove_quietly(self.manifest_path)  # never leave a manifest over a torn day
            raise PublishError(f"{self.display(path)} holds {size} bytes, {expected} were written; the day is not published")

    def _temp_path(self, name: str) -> str:
        return f"{self.folder}/.{name}{TEMP_MARKER}{os.getpid()}-{uuid.uuid4().hex[:8]}"

    def _remove_quietly(self, path: str) -> None:
        try:
            self.fs.rm_file(path)
        except Exception:  # noqa: BLE001 - already gone, or the store is unreachable: nothing to add
            pass


@contextmanager
def _storage_errors(failed: str):
    """Report a storage backend's error (OSError, botocore, aiohttp...) as one PublishError line."""
    try:
        yield
    except InstrumetriqError:
        raise
    except Exception as exc:
        raise PublishError(f"{failed}: {describe_error(exc)}") from exc


def _discard(raw) -> None:
    """Abandon an fsspec file without committing it (``close()`` would commit an upload)."""
    discard = getattr(raw, "discard", None)
    if discard is not None:
        try:
            discard()
        except Exception:  # noqa: BLE001 - best effort: the upload is unfinished either way
            pass
        try:
            raw.closed = True  # AbstractBufferedFile (s3fs): stop a later close() from committing
        except AttributeError:
            raw.close()  # local files: closing commits nothing; the caller removes the temp file
        return
    try:
        raw.close()
    except Exception:  # noqa: BLE001
        pass


def _owned_by_live_process(path: str) -> bool:
    pid_text = path.rsplit(TEMP_MARKER, 1)[-1].split("-", 1)[0]
    if not pid_text.isdigit() or int(pid_text) == os.getpid():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_local(fs) -> bool:
    protocols = (fs.protocol,) if isinstance(fs.protocol, str) else tuple(fs.protocol)
    return "file" in protocols or "local" in protocols
