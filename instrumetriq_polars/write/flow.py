"""Write a partition and publish it: the one flow every tier and the upload go through.

``write_and_publish`` holds the partition's lock (locally), removes what killed runs left, streams
the data through ``Destination.write_data``, builds the manifest, and publishes as
``publish.decide`` says; whatever was written and not published is discarded. ``upload`` copies
a local partition to another root (R2) through the same flow.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import replace

from .. import interrupt
from ..errors import DamagedDayError, InstrumetriqError, LockHeldError
from ..manifest import Manifest
from ..periods import partition_date
from ..storage import describe_error, storage_options_for
from ..tiers import ExportResult
from .lock import lock_partition
from .publish import DATA_NAME, Candidate, Destination, decide


def clean_leftovers(destination: Destination) -> None:
    """What killed runs left in a partition that is skipped as already published goes too (inside
    the lock, as on every run); when another export of it holds the lock, that run cleans up."""
    try:
        lock = lock_partition(destination)
    except LockHeldError:
        return
    try:
        destination.clean_stale_temps(locked=lock.held)
    finally:
        lock.release()


def upload(result: ExportResult, out: str, *, force: bool = False, storage_options: dict | None = None,
           follows: bool = False) -> ExportResult:
    """Copy a day exported to a local folder (``result`` of ``export_day``) to ``out``, e.g.
    ``s3://instrumetriq-datasets/tier3/daily``: data first, manifest last, decided on as the
    export decides (``publish.decide``): identical data is "already published", a complete day
    replaces a partial one ("completed"), other data is refused unless ``force``.

    The remote manifest is read before anything is sent: when it already publishes this data
    (same sha256, data object of the right size) nothing is uploaded; when it publishes other
    data the upload is refused before it starts (unless ``force``; ``follows``: a bundle, which
    follows its days, replaces it). A local data file that vanished is one ``DamagedDayError``."""
    started = time.perf_counter()
    manifest = result.manifest
    destination = Destination(out, partition_date(manifest.partition_path), storage_options_for(out, storage_options),
                                 partition=manifest.partition_path)
    local_data = f"{result.location}/{DATA_NAME}"

    def copy(fileobj) -> None:
        try:
            source = open(local_data, "rb")
        except OSError as exc:  # removed (or replaced by a folder) since the export: one line, nothing sent
            raise DamagedDayError(f"{local_data} cannot be read ({describe_error(exc)}): the local partition changed after its "
                                  "export; nothing uploaded; export it again", local_data, None, manifest.parquet_size_bytes) from None
        with source as f:
            shutil.copyfileobj(f, fileobj, 8 << 20)

    def check(written) -> Manifest:
        if (written.sha256, written.size) != (manifest.parquet_sha256, manifest.parquet_size_bytes):
            raise DamagedDayError(f"{local_data} no longer matches its manifest; nothing uploaded; export the day again, replacing it",
                                  local_data, written.size, manifest.parquet_size_bytes)
        return manifest

    manifest, status = write_and_publish(destination, copy, check, force, known=manifest, follows=follows)
    return ExportResult(manifest, destination.url, status, time.perf_counter() - started, result.hours, result.warnings)


def write_and_publish(destination: Destination, write, finish, force: bool, known: Manifest | None = None,
                      follows: bool = False) -> tuple[Manifest, str]:
    """Stream ``write`` to the destination, build the manifest with ``finish(written)``, and
    publish it as ``publish.decide`` says; whatever was written and not published is discarded,
    on success as on failure. ``known``: the manifest of data known before it is written (an
    upload), decided on before anything is sent. Returns the manifest in effect (an "already
    published" day keeps its creation time) and the status."""
    _check_root_tier(destination)
    lock = lock_partition(destination)  # local: LockHeldError if another export of the day is running
    try:
        destination.clean_stale_temps(locked=lock.held)  # only inside the lock (publish.py says why)
        seen = destination.read_manifest_bytes()  # compared again right before publishing
        if known is not None:  # refused, or already published, before anything is sent
            decision = decide(destination, seen, seen, _data_size(destination, seen), Candidate.of(known), force, follows)
            if not decision.write:
                return _as_published(known, decision), decision.status
        written = destination.write_data(write)
        manifest = finish(written)
        interrupt.check()  # the last point where stopping leaves nothing of this run behind
        now = destination.read_manifest_bytes()
        decision = decide(destination, seen, now, _data_size(destination, now), Candidate.of(manifest), force, follows)
        if decision.write:
            destination.publish(written, manifest.to_json())
        return _as_published(manifest, decision), decision.status
    except BaseException as exc:
        ours = _unwrap(exc)
        if ours is exc:
            raise
        raise ours from ours.__cause__  # without Polars' wrapper, with its own cause (for --debug)
    finally:
        destination.discard_unpublished()
        lock.release()
        destination.remove_if_empty()


def _check_root_tier(destination: Destination) -> None:
    """A root holds one tier: publishing a partition into a root that holds another tier's
    partitions is refused before anything is written (the root would be unreadable after)."""
    from ..dataset import root_tier
    from ..errors import DatasetError

    tier = "hourly" if "/" in destination.label else "monthly" if len(destination.label) == 7 else "daily"
    found = root_tier(destination.root if destination.is_local else destination.display(destination.root), _options(destination))
    if found not in (None, tier):
        raise DatasetError(f"{destination.display(destination.root)} holds {found} partitions, not {tier} ones: nothing written for "
                           f"{destination.label.replace('/', 'T')}; one root holds one tier, give the {tier} root")


def _options(destination: Destination) -> dict | None:
    """The storage options the destination's filesystem was made with (s3fs keeps them)."""
    return getattr(destination.fs, "storage_options", None) or None


def _data_size(destination: Destination, manifest: bytes | None) -> int | None:
    """The size of data.parquet in place, looked up only when a manifest says there is a day."""
    return None if manifest is None else destination.size(destination.data_path)


def _as_published(manifest: Manifest, decision) -> Manifest:
    """``manifest`` as the day in place has it: "already published" keeps the creation time of
    the manifest in place (a copy; the caller's manifest is not changed)."""
    if decision.write:
        return manifest
    return replace(manifest, created_ts_utc=decision.published.created_ts_utc)


def _unwrap(exc: BaseException) -> BaseException:
    """Ours (an ``InstrumetriqError``), if ``exc`` is a Polars error explicitly caused by it (a
    wrapper: ``raise ... from ours``); otherwise ``exc`` itself. Only ``__cause__`` of a Polars
    error is followed, never ``__context__``: a bug raised while one of ours was being handled
    is that bug, not the operator error. (Polars 2.1 re-raises an error from the IO source as
    it is, and turns one from the file object into a ComputeError without a chain, which is why
    ``HashingWriter`` keeps it.)"""
    import polars as pl

    seen = exc
    while isinstance(seen, pl.exceptions.PolarsError) and seen.__cause__ is not None:
        seen = seen.__cause__
    return seen if isinstance(seen, InstrumetriqError) else exc



#: the former name (the public API's ``upload_day``)
upload_day = upload
