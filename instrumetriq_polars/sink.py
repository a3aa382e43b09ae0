"""Where a day is written, and how it is published without ever showing a torn day.

A day folder ``{out}/YYYY-MM-DD/`` is *published* when its ``manifest.json`` exists: the manifest
is written last and is the commit marker. Publishing order:

1. the Parquet stream goes to a temporary name (local) or straight to its key (object stores,
   where an unfinished multipart upload is invisible; on failure the upload is discarded), hashed
   and counted as it passes;
2. an existing manifest is removed (the old day stops being published);
3. the data file is moved into place;
4. the manifest is written under a temporary name and moved into place.

A crash at any point leaves the previous day, or a day without a manifest (not published), never
a ``data.parquet`` next to a manifest that does not describe it.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from dataclasses import dataclass
from datetime import date

import fsspec

from .errors import PublishError

DATA_NAME = "data.parquet"
MANIFEST_NAME = "manifest.json"
TEMP_MARKER = ".tmp-"


class HashingWriter:
    """A write-only file object that hashes (sha256) and counts the bytes it passes on."""

    def __init__(self, raw) -> None:
        self._raw = raw
        self._sha = hashlib.sha256()
        self.size = 0

    def write(self, data) -> int:
        self._sha.update(data)
        self.size += len(data)
        self._raw.write(data)
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
    path: str  # where the bytes are now (temporary name until published)


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
        try:
            return self.fs.cat_file(self.manifest_path)
        except FileNotFoundError:
            return None

    def exists(self, path: str) -> bool:
        self.fs.invalidate_cache(self.folder)
        return self.fs.exists(path)

    # -- writing ----------------------------------------------------------------------------
    def write_data(self, write) -> WrittenData:
        """Call ``write(file_obj)`` with a hashing writer; return where the bytes went."""
        if self.is_local:
            self.fs.makedirs(self.folder, exist_ok=True)
            target = self._temp_path(DATA_NAME)
        else:
            target = self.data_path
        raw = self.fs.open(target, "wb")
        writer = HashingWriter(raw)
        try:
            write(writer)
        except BaseException:
            _discard(raw)
            if self.is_local:
                self._remove_quietly(target)
            raise
        raw.close()
        return WrittenData(writer.sha256, writer.size, target)

    def discard(self, written: WrittenData | None) -> None:
        """Forget data written but not published (local temp file; object key if no manifest)."""
        if written is None:
            return
        if self.is_local or self.read_manifest_bytes() is None:
            self._remove_quietly(written.path)

    def publish(self, written: WrittenData, manifest_json: bytes) -> None:
        try:
            if self.exists(self.manifest_path):
                self.fs.rm_file(self.manifest_path)
            if written.path != self.data_path:
                self.fs.mv(written.path, self.data_path)
            if self.is_local:
                temp = self._temp_path(MANIFEST_NAME)
                self.fs.pipe_file(temp, manifest_json)
                self.fs.mv(temp, self.manifest_path)
            else:
                self.fs.pipe_file(self.manifest_path, manifest_json)
        except OSError as exc:
            raise PublishError(f"could not publish {self.url}: {exc}") from exc
        self.fs.invalidate_cache(self.folder)

    def clean_stale_temps(self) -> list[str]:
        """Remove temporary files an interrupted run left in this day folder (local only)."""
        if not self.is_local or not self.fs.exists(self.folder):
            return []
        removed = []
        for path in self.fs.ls(self.folder, detail=False):
            if TEMP_MARKER in path.rsplit("/", 1)[-1] and not _owned_by_live_process(path):
                self._remove_quietly(path)
                removed.append(path)
        return removed

    def _temp_path(self, name: str) -> str:
        return f"{self.folder}/.{name}{TEMP_MARKER}{os.getpid()}-{uuid.uuid4().hex[:8]}"

    def _remove_quietly(self, path: str) -> None:
        try:
            self.fs.rm_file(path)
        except (FileNotFoundError, OSError):
            pass


def _discard(raw) -> None:
    """Abandon an fsspec file without committing it (``close()`` would commit an upload)."""
    discard = getattr(raw, "discard", None)
    if discard is not None:
        try:
            discard()
        except Exception:  # noqa: BLE001 - best effort: the upload is unfinished either way
            pass
        raw.closed = True  # s3fs/AbstractBufferedFile: stop a later close() from committing
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
