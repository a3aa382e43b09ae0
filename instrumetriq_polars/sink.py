"""Where a day is written, and how it is published without ever showing a torn day.

A day folder ``{out}/YYYY-MM-DD/`` is *published* when its ``manifest.json`` exists: the manifest
is written last and is the commit marker. Publishing order:

1. the Parquet stream goes to a temporary name ``.data.parquet.tmp-<pid>-<id>`` in the day
   folder, hashed and counted as it passes; on failure it is discarded (an unfinished upload is
   aborted, never committed);
2. an existing manifest is removed (the old day stops being published);
3. the data file is moved into place, and its size now in place is checked against what was
   written (a wrong size: it is removed, no manifest is written);
4. the manifest is written (locally under a temporary name, then moved) into place, and its size
   checked (a wrong size: it is removed).

A crash at any point leaves the previous day, or a day without a manifest (not published), never
a ``data.parquet`` next to a manifest that does not describe it.

Object stores (s3://, R2) use the same temporary name, not the final key, although streaming
straight to ``data.parquet`` would save a server-side copy: whether the new data may replace the
published day (same sha256: "already published"; different: refused unless forced) is only known
once the stream has ended, and an object written to ``data.parquet`` is committed on ``close()``.
Streaming to the final key would therefore overwrite a published day's data under its old
manifest before the refusal. ``mv`` on S3 is copy + delete, not atomic, which is why the manifest is
removed first and written last. Temporary keys of runs that died, and multipart uploads they left
unfinished under the day's prefix (when even the abort failed, e.g. the server was unreachable),
are removed by a later run once they are older than ``STALE_TEMP_SECONDS`` (there is no process id
to check across machines).
"""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from dataclasses import dataclass
from datetime import date

from .dayfolder import DATA_NAME, MANIFEST_NAME, TEMP_MARKER, DayFolder, storage_errors, temp_prefix
from .errors import InstrumetriqError, PublishError
from .manifest import Manifest
from .storage import describe_error

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


class DayDestination(DayFolder):
    """One ``YYYY-MM-DD`` folder under ``out`` (a local path or any fsspec URL), written to."""

    def published_with(self, existing: bytes | None, sha256: str, force: bool) -> Manifest | None:
        """The manifest in place (``existing``, as read) when it already publishes data with this
        ``sha256`` and the data object in place has the size it states (one info request, no
        download); None when the day is to be (re)written: nothing published, or ``force``
        (force always rewrites: it also repairs damaged data). Without ``force``, a day published
        otherwise is refused (PublishError): with other data, or with data that no longer has
        its manifest's size (damaged)."""
        if existing is None or force:
            return None
        try:
            old = Manifest.from_json(existing)
        except InstrumetriqError:
            old = None
        if old is not None and old.parquet_sha256 == sha256:
            size = self.size(self.data_path)
            if size == old.parquet_size_bytes:
                return old
            found = "is missing" if size is None else f"holds {size} bytes"
            raise PublishError(
                f"the published day is damaged: {self.display(self.data_path)} {found}, its manifest says "
                f"{old.parquet_size_bytes} bytes; pass --force to rewrite the day"
            )
        keys = [self.display(p) for p in (self.data_path, self.manifest_path) if self.exists(p)]
        raise PublishError(
            f"{' and '.join(keys)} already published with different data "
            f"(parquet_sha256 {old.parquet_sha256[:12] if old else 'unreadable'}...); pass --force to replace"
        )

    # -- writing ----------------------------------------------------------------------------
    def write_data(self, write) -> WrittenData:
        """Call ``write(file_obj)`` with a hashing writer streaming to a temporary name; return
        where the bytes went. On failure nothing is left behind (an upload is aborted)."""
        failed = f"could not write {self.display(self.data_path)}"
        target = self._temp_path(DATA_NAME)
        with storage_errors(failed):
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
            if self.is_local:
                _fsync(target)
        except Exception as exc:
            _discard(raw)
            raise PublishError(f"{failed}: {describe_error(exc)}; nothing published") from exc
        return WrittenData(writer.sha256, writer.size, target)

    def discard(self, written: WrittenData | None) -> None:
        """Forget data written but not published (its temporary name); published data stays."""
        if written is not None and written.path != self.data_path:
            self._remove_quietly(written.path)

    def publish(self, written: WrittenData, manifest_json: bytes) -> None:
        with storage_errors(f"could not publish {self.url}"):
            if self.exists(self.manifest_path):
                self.fs.rm_file(self.manifest_path)
                if self.is_local:
                    _fsync(self.folder)  # gone from the disk before other data takes its name
            self.fs.mv(written.path, self.data_path)
            written.path = self.data_path
            self._check_size(self.data_path, written.size)  # before the manifest is written
            if self.is_local:
                # On disk after a power cut too, in this order: the data (fsynced when written)
                # and its name, then the manifest and its name.
                _fsync(self.folder)
                temp = self._temp_path(MANIFEST_NAME)
                self.fs.pipe_file(temp, manifest_json)
                _fsync(temp)
                self.fs.mv(temp, self.manifest_path)
                _fsync(self.folder)
            else:
                self.fs.pipe_file(self.manifest_path, manifest_json)
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
        processes that are gone, on object stores those older than STALE_TEMP_SECONDS; on S3 also
        abort the multipart uploads under the day's prefix initiated longer ago than that.
        Returns what was removed (an aborted upload as ``<path> (unfinished upload)``)."""
        removed = self._abort_stale_uploads()
        listing = self.listing()
        for info in listing:
            path = info["name"]
            if TEMP_MARKER in path.rsplit("/", 1)[-1] and self._is_stale(path, info):
                self._remove_quietly(path)
                removed.append(path)
        return removed

    def _abort_stale_uploads(self) -> list[str]:
        """Multipart uploads under the day's prefix left unfinished by a run whose abort failed
        too (the server was unreachable). Best effort: a store that cannot list them (or is not
        S3) is left as it is; an unfinished upload is never part of the dataset anyway."""
        call_s3 = getattr(self.fs, "call_s3", None)
        if self.is_local or call_s3 is None:
            return []
        aborted = []
        try:
            bucket, prefix, _ = self.fs.split_path(self.folder)
            listing = call_s3("list_multipart_uploads", Bucket=bucket, Prefix=f"{prefix}/")
            for upload in listing.get("Uploads", []):
                initiated = upload.get("Initiated")
                if initiated is None or time.time() - initiated.timestamp() <= STALE_TEMP_SECONDS:
                    continue
                call_s3("abort_multipart_upload", Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
                aborted.append(f"{bucket}/{upload['Key']} (unfinished upload)")
        except Exception:  # noqa: BLE001 - cleanup only; the export does not depend on it
            pass
        return aborted

    def _is_stale(self, path: str, info: dict) -> bool:
        if self.is_local:
            return not _owned_by_live_process(path)
        modified = info.get("LastModified")
        return modified is not None and time.time() - modified.timestamp() > STALE_TEMP_SECONDS

    def _check_size(self, path: str, expected: int) -> None:
        self.fs.invalidate_cache(self.folder)
        size = self.fs.info(path)["size"]
        if size != expected:
            self._remove_quietly(self.manifest_path)  # never leave a manifest over a torn day
            self._remove_quietly(path)
            raise PublishError(
                f"{self.display(path)} holds {size} bytes once in place, {expected} were written; "
                "removed it, the day is not published; run the export again"
            )

    def _temp_path(self, name: str) -> str:
        return f"{self.folder}/{temp_prefix(name)}{os.getpid()}-{uuid.uuid4().hex[:8]}"

    def _remove_quietly(self, path: str) -> None:
        try:
            self.fs.rm_file(path)
        except Exception:  # noqa: BLE001 - already gone, or the store is unreachable: nothing to add
            pass


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


def _fsync(path: str) -> None:
    """Flush a local file's data, or a folder's entries (renames), to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
