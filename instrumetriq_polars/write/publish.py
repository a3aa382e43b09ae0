"""Where a partition is written, and how it is published (what may be: ``planner.plan_publish``).

A day folder ``{out}/YYYY-MM-DD/`` is *published* when its ``manifest.json`` exists: the manifest
is written last and is the commit marker. Publishing order:

1. the Parquet stream is written, hashed and counted as it passes, where it cannot be seen as
   the day's data: locally (and on object stores other than S3) under a temporary name
   ``.data.parquet.tmp-<pid>-<id>`` in the day folder; on S3 (s3fs) as a multipart upload of
   ``data.parquet`` opened with ``autocommit=False``, which no reader sees until it is committed.
   On failure it is discarded (the upload aborted, the temporary file removed);
2. ``decide`` (below) says whether it may be published, from the manifest in place;
3. an existing manifest is removed (the old day stops being published);
4. the data is put in place (the temporary file renamed; the upload committed), and its size in
   place is checked against what was written (a wrong size: it is removed, no manifest is
   written);
5. the manifest is written (locally under a temporary name, then renamed) and its size checked.

A crash at any point leaves the previous day, or a day without a manifest (not published), never
a ``data.parquet`` next to a manifest that does not describe it: a refused, interrupted or killed
run never commits its data. Locally every step is fsynced before the next (see ``publish``).

Why two ways to hold the data until the decision. Whether the new data may replace the published
day is known only once the stream has ended, and an object written with the default
``autocommit=True`` is committed on ``close()``. Measured against moto's S3 server: a multipart
upload belongs to the key it was created for (completing it under another key leaves the final
key untouched), so "write a temporary key, commit it under ``data.parquet``" cannot work; but a
multipart upload of ``data.parquet`` itself, opened with ``autocommit=False``, leaves the
published object in place until ``commit()`` (``discard()`` aborts it). That replaces the former
temporary key + server-side copy + delete (``mv``) with one commit request. fsspec's memory
filesystem commits at ``open()`` whatever ``autocommit`` says, so only s3fs is trusted with it.

Temporary files and unfinished uploads of runs that died are removed by a later run: locally
while it holds the day's lock (``lock.py``), when no other run can be writing, so every temporary
file of ours is stale whatever its process id (a pid says nothing across hosts or PID
namespaces); on object stores, which have no lock, once they are older than
``STALE_TEMP_SECONDS``. Only the exact names this module writes are touched.
"""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from dataclasses import dataclass

from .. import interrupt
from ..folder import DATA_NAME, MANIFEST_NAME, TEMP_NAME, PartitionFolder, storage_errors, temp_prefix
from ..errors import (
    ConflictError, DamagedDayError, InstrumetriqError, Interrupted, ManifestChangedError, ManifestError, StorageError,
)
from ..manifest import Manifest
from ..planner import COMPLETE, DAMAGED, EXPORT, REBUILD, REFUSE, REPLACE, UNCHANGED, UNREADABLE, UPDATE, InPlace, plan_publish
from ..storage import S3_PROTOCOLS, describe_error

STALE_TEMP_SECONDS = 6 * 3600

PUBLISHED, COMPLETED, ALREADY = "published", "completed", "already published"


# -- the decision ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Candidate:
    """What the decision needs to know of the data about to be published."""

    sha256: str
    partial: bool
    sources: list | None = None  # the hour files it was read from (``planner.archive_grew``)

    @classmethod
    def of(cls, manifest: Manifest) -> "Candidate":
        return cls(manifest.parquet_sha256, manifest.is_partial, manifest.source_files)


@dataclass(frozen=True)
class Published:
    """What the decision reads from the manifest in place."""

    sha256: str
    size: int
    partial: bool
    created_ts_utc: str


@dataclass(frozen=True)
class Decision:
    """``status``: "published" (nothing there, or ``force``), "completed" (a complete export
    replaces a partial one), "already published" (the same data is in place: write nothing).
    ``published``: the partition in place, when there is a readable one."""

    status: str
    published: Published | None = None

    @property
    def write(self) -> bool:
        return self.status != ALREADY


_STATUS = {UNCHANGED: ALREADY, COMPLETE: COMPLETED, EXPORT: PUBLISHED, REPLACE: PUBLISHED, REBUILD: PUBLISHED, UPDATE: PUBLISHED}


def decide(folder: PartitionFolder, seen: bytes | None, now: bytes | None, data_size: int | None,
           new: Candidate, force: bool, follows: bool = False) -> Decision:
    """Whether ``new`` data may be published in ``folder``: ``planner.plan_publish`` on the
    manifest in place right before publishing (``now``; None: none) and the size of its data
    (``data_size``; None: missing), plus the one check the planner cannot make: the manifest
    changed since the run started (``seen``). Side-effect free (``folder`` only names the paths
    in messages). Raises the refusal:

    - the same data in place, intact: "already published", even if another run published it
      meanwhile; not intact: ``DamagedDayError`` (a same-size corruption is ``verify``'s to find);
    - the manifest changed since ``seen``: ``ManifestChangedError``, whatever ``force`` says;
    - a partial partition in place and a complete one new: "completed", without ``force``;
    - nothing in place, or ``force``: "published" (``force`` always rewrites: it also repairs);
    - otherwise ``ConflictError``, or ``ManifestError`` when the manifest in place cannot be read.
    """
    manifest_url = folder.display(folder.manifest_path)
    manifest, unreadable = None, None
    if now is not None:
        try:
            manifest = Manifest.from_json(now)
        except ManifestError as exc:  # the manifest module's own words, without its file name
            unreadable = ManifestError(f"{manifest_url} {exc.problem}: whether the day is published cannot be told",
                                       exc.problem, remedy="force")
    in_place = InPlace(manifest, data_size, unreadable is not None)
    plan = plan_publish(in_place, new.sha256, new.partial, force, follows, new.sources)
    published = (Published(manifest.parquet_sha256, manifest.parquet_size_bytes, manifest.is_partial, manifest.created_ts_utc)
                 if manifest is not None else None)
    if plan.action == UNCHANGED:
        return Decision(ALREADY, published)
    if plan.refusal == DAMAGED:
        data_url = folder.display(folder.data_path)
        found = "is missing" if data_size is None else f"holds {data_size} bytes"
        raise DamagedDayError(f"the published day is damaged: {data_url} {found}, its manifest says {published.size} bytes",
                              data_url, data_size, published.size)
    if now != seen:
        raise ManifestChangedError(f"{manifest_url} changed while this export ran (another export of {folder.label}?); "
                                   "nothing published by this run; run it again", manifest_url)
    if plan.action != REFUSE:
        return Decision(_STATUS[plan.action], published)
    if plan.refusal == UNREADABLE:
        raise unreadable
    keys = " and ".join(folder.display(p) for p, there in ((folder.data_path, data_size is not None), (folder.manifest_path, True)) if there)
    both_partial = " (both partial: only a complete export replaces a partial one unless forced)" if published.partial else ""
    raise ConflictError(f"{keys} already published with different data (parquet_sha256 {published.sha256[:12]}...){both_partial}",
                        folder.url, published.sha256, new.sha256)


# -- writing -----------------------------------------------------------------------------------
class HashingWriter:
    """A write-only file object that hashes (sha256) and counts the bytes it passes on. Each
    write is a safe point to stop at (``interrupt.check``)."""

    def __init__(self, raw) -> None:
        self._raw = raw
        self._sha = hashlib.sha256()
        self.size = 0
        self.error: BaseException | None = None  # what stopped a write (Polars re-wraps it)

    def write(self, data) -> int:
        if self._raw is None:
            raise ValueError("the data stream was abandoned")
        try:
            interrupt.check()
            self._raw.write(data)
        except BaseException as exc:
            self.error = exc
            raise
        self._sha.update(data)
        self.size += len(data)
        return len(data)

    def abandon(self) -> None:
        """Refuse every later write: a sink interrupted from outside (Ctrl-C without the CLI's
        handler) may still have threads writing, and the destination is being discarded."""
        self._raw = None

    def flush(self) -> None:
        if self._raw is not None:
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
    """Data written and not yet published, or published (``state``)."""

    path: str  # where the bytes are: a temporary name, or (an upload, and once published) data_path
    upload: object = None  # the s3fs file awaiting commit() / discard(), or None (a temporary file)
    sha256: str = ""
    size: int = 0
    state: str = "pending"  # "pending" | "published" | "discarded"


class Destination(PartitionFolder):
    """One partition folder under ``out`` (a local path or any fsspec URL), written to (``PartitionFolder``)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._written: list[WrittenData] = []
        protocols = (self.fs.protocol,) if isinstance(self.fs.protocol, str) else tuple(self.fs.protocol)
        self.two_phase = any(p in S3_PROTOCOLS for p in protocols)  # see the module docstring

    def write_data(self, write) -> WrittenData:
        """Call ``write(file_obj)`` with a hashing writer; the bytes are held where nobody reads
        them as the day's data until ``publish``. On failure nothing is left behind."""
        failed = f"could not write {self.display(self.data_path)}"
        written = WrittenData(self.data_path if self.two_phase else self._temp_path(DATA_NAME))
        with storage_errors(failed, self.display(self.data_path)):
            if self.is_local:
                self.fs.makedirs(self.folder, exist_ok=True)
            self._written.append(written)  # discarded by discard_unpublished() however this ends
            if self.two_phase:
                written.upload = raw = self.fs.open(written.path, "wb", autocommit=False)
                _forget_transaction(self.fs, raw)
            else:
                raw = self.fs.open(written.path, "wb")
        writer = HashingWriter(raw)
        try:
            write(writer)
        except BaseException as exc:
            writer.abandon()
            _abandon(raw)
            self.discard_unpublished()
            if isinstance(writer.error, Interrupted):
                raise writer.error from None
            if writer.error is not None and not isinstance(exc, InstrumetriqError):
                raise StorageError(f"{failed}: {describe_error(writer.error)}; nothing published", self.display(self.data_path)) from exc
            raise
        try:
            raw.close()  # an upload: its last part is sent, nothing is committed (autocommit=False)
            if self.is_local:
                _fsync(written.path)
        except Exception as exc:
            _abandon(raw)
            self.discard_unpublished()
            raise StorageError(f"{failed}: {describe_error(exc)}; nothing published", self.display(self.data_path)) from exc
        written.sha256, written.size = writer.sha256, writer.size
        return written

    def discard_unpublished(self) -> None:
        """Forget all data written and not published (an upload aborted, a temporary file
        removed); published data stays. Best effort: what cannot be removed now (the store is
        unreachable) is removed by a later run."""
        for written in self._written:
            if written.state != "pending":
                continue
            written.state = "discarded"
            if written.upload is not None:
                try:
                    written.upload.discard()
                except Exception:  # noqa: BLE001 - the upload stays unfinished: never part of the day
                    pass
            elif written.path != self.data_path:  # a temporary name; never the published data
                self._remove_quietly(written.path)
        self._written = [w for w in self._written if w.state == "pending"]

    def publish(self, written: WrittenData, manifest_json: bytes) -> None:
        """Steps 3-5 of the module docstring."""
        with storage_errors(f"could not publish {self.url}", self.url):
            if self.exists(self.manifest_path):
                self.fs.rm_file(self.manifest_path)
                if self.is_local:
                    _fsync(self.folder)  # gone from the disk before other data takes its name
            if written.upload is not None:
                written.upload.commit()
            else:
                self.fs.mv(written.path, self.data_path)
            written.path, written.state = self.data_path, "published"
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
        """Remove the local partition folder if a failed run left it empty (nothing half-made
        stays), and an hour's day folder too when that leaves it empty (else it would be listed
        as an unpublished day)."""
        if self.is_local:
            folders = [self.folder] + ([self.folder.rsplit("/", 1)[0]] if "/" in self.label else [])
            for folder in folders:
                try:
                    os.rmdir(folder)
                except OSError:  # not empty (a published partition, another run's files) or already gone
                    return

    def clean_stale_temps(self, locked: bool = False) -> list[str]:
        """Remove what interrupted runs left in this day folder, by the exact names this module
        writes (``TEMP_NAME``; nothing else is touched): locally only while holding the day's lock
        (``locked``), and then all of them; on object stores those older than STALE_TEMP_SECONDS,
        and on S3 the multipart uploads of ``data.parquet`` or of those names initiated longer
        ago than that. Returns what was removed (an aborted upload as ``<path> (unfinished upload)``)."""
        if self.is_local and not locked:
            return []
        removed = self._abort_stale_uploads()
        for info in self.listing():
            path = info["name"]
            if TEMP_NAME.fullmatch(path.rsplit("/", 1)[-1]) and (self.is_local or _older_than_stale(info.get("LastModified"))):
                self._remove_quietly(path)
                removed.append(path)
        return removed

    def _abort_stale_uploads(self) -> list[str]:
        """Multipart uploads under the day's prefix left unfinished by a run that died, or whose
        abort failed too (the server was unreachable). Best effort: a store that cannot list them
        (or is not S3) is left as it is; an unfinished upload is never part of the dataset anyway."""
        call_s3 = getattr(self.fs, "call_s3", None)
        if self.is_local or call_s3 is None:
            return []
        aborted = []
        try:
            bucket, prefix, _ = self.fs.split_path(self.folder)
            listing = call_s3("list_multipart_uploads", Bucket=bucket, Prefix=f"{prefix}/")
            for upload in listing.get("Uploads", []):
                name = upload["Key"].rsplit("/", 1)[-1]
                if (name == DATA_NAME or TEMP_NAME.fullmatch(name)) and _older_than_stale(upload.get("Initiated")):
                    call_s3("abort_multipart_upload", Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
                    aborted.append(f"{bucket}/{upload['Key']} (unfinished upload)")
        except Exception:  # noqa: BLE001 - cleanup only; the export does not depend on it
            pass
        return aborted

    def _check_size(self, path: str, expected: int) -> None:
        self.fs.invalidate_cache(self.folder)
        size = self.fs.info(path)["size"]
        if size != expected:
            self._remove_quietly(self.manifest_path)  # never leave a manifest over a torn day
            self._remove_quietly(path)
            raise StorageError(
                f"{self.display(path)} holds {size} bytes once in place, {expected} were written; "
                "removed it, the day is not published; run the export again", self.display(path)
            )

    def _temp_path(self, name: str) -> str:
        return f"{self.folder}/{temp_prefix(name)}{os.getpid()}-{uuid.uuid4().hex[:8]}"  # matches TEMP_NAME

    def _remove_quietly(self, path: str) -> None:
        try:
            self.fs.rm_file(path)
        except Exception:  # noqa: BLE001 - already gone, or the store is unreachable: nothing to add
            pass


def _older_than_stale(instant) -> bool:
    return instant is not None and time.time() - instant.timestamp() > STALE_TEMP_SECONDS


def _forget_transaction(fs, raw) -> None:
    """fsspec files every ``autocommit=False`` file in the filesystem's transaction list, for a
    transaction this module never uses; the (cached) filesystem would keep every upload alive."""
    try:
        fs.transaction.files.remove(raw)
    except (AttributeError, ValueError):
        pass


def _abandon(raw) -> None:
    """Leave an fsspec file unfinished, never committed. A buffered remote file (s3fs and others)
    is discarded (its multipart upload aborted) and marked closed: ``close()`` would commit it,
    or, after ``discard()``, start a new upload and fail (measured with s3fs: it leaves an
    unfinished upload behind). Other files are closed (a local one commits nothing; the caller
    removes the temporary name)."""
    if getattr(raw, "closed", False):
        return
    discard = getattr(raw, "discard", None)
    if discard is not None:
        try:
            discard()
        except Exception:  # noqa: BLE001 - best effort: the upload is unfinished either way
            pass
        try:
            raw.closed = True
            return
        except AttributeError:
            pass
    try:
        raw.close()
    except Exception:  # noqa: BLE001
        pass


def _fsync(path: str) -> None:
    """Flush a local file's data, or a folder's entries (renames), to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
