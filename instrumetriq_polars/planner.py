"""What should happen to a partition: the one place that decides to write, skip, replace or keep.

Pure: every function takes what was found (the archive's hour files, the manifest in place and
the size of its data, locally and, when known, remotely) and the options, and returns a ``Plan``;
nothing here reads a file, so the rules are tested as tables (tests/test_planner.py). The callers
gather the facts and act on the answer:

- ``plan_export``: an export of a day or an hour, before anything is read (``export_day``,
  ``export_hour``, and catch-up, which also skips what it cannot heal);
- ``plan_publish``: right before publishing, from the data just written (``write.publish.decide``
  adds the check that the manifest did not change meanwhile and raises the refusal);
- ``plan_bundle``: a monthly bundle, from the days it would read;
- ``plan_removal``: whether a local partition may be removed after its upload (keep-local);
- ``partition_state``: what ``status`` shows for a partition.

Actions (``Plan.action``): ``SKIP`` (catch-up leaves it alone), ``UNCHANGED`` (published from the
same input: nothing to read or write), ``EXPORT`` (nothing published: write it), ``COMPLETE`` (a
complete export replaces a partial one), ``REBUILD`` (a bundle whose days changed), ``REPLACE``
(``force``, or the same data over a damaged copy is rewritten), ``REFUSE`` (other data is
published, or the published data is damaged; ``Plan.refusal`` says which), ``KEEP`` / ``REMOVE``
(keep-local).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .manifest import Manifest
from .states import PartitionState

SKIP, UNCHANGED, EXPORT, COMPLETE, REBUILD, REPLACE, REFUSE, KEEP, REMOVE = (
    "skip", "unchanged", "export", "complete", "rebuild", "replace", "refuse", "keep", "remove")
#: A complete partition whose hour files only grew since its export (the collector writing late):
#: re-exported, and the new export replaces it without force.
UPDATE = "update"
#: Why a publication is refused (``Plan.refusal``).
CONFLICT, DAMAGED, UNREADABLE = "conflict", "damaged", "unreadable"
#: The states ``status`` shows (``partition_state``): the one vocabulary (``states.PartitionState``).
PUBLISHED, PARTIAL, UNPUBLISHED, MISSING, NO_ARCHIVE = (PartitionState.PUBLISHED, PartitionState.PARTIAL, PartitionState.UNPUBLISHED,
                                                        PartitionState.MISSING, PartitionState.NO_ARCHIVE)
ARCHIVE_MISSING = PartitionState.ARCHIVE_MISSING
#: ``plan_export``'s catch-up skip of a day with no archive folder (the runner tells it from the others by it)
NO_FOLDER = "no archive folder"


@dataclass(frozen=True)
class Plan:
    """The answer: ``action``, and ``reason`` (one line: why, for a skip, a refusal, a keep)."""

    action: str
    reason: str = ""
    refusal: str | None = None  # CONFLICT, DAMAGED or UNREADABLE when REFUSE
    remedy: str | None = None  # the option that would change the answer ("force"), as errors carry it

    @property
    def writes(self) -> bool:
        """Whether data is to be read and written (an export or a bundle goes on)."""
        return self.action in (EXPORT, COMPLETE, REBUILD, REPLACE, UPDATE)


@dataclass(frozen=True)
class InPlace:
    """What a partition folder holds, as found: its manifest (None: none, or ``unreadable``) and
    the size of its data file (None: missing; not looked up when there is no manifest)."""

    manifest: Manifest | None = None
    data_size: int | None = None
    unreadable: bool = False  # a manifest is there but is not one

    @property
    def intact(self) -> bool:
        """A readable manifest whose data file has the size it states."""
        return self.manifest is not None and self.data_size == self.manifest.parquet_size_bytes


NOTHING = InPlace()


@dataclass(frozen=True)
class Wanted:
    """The export asked for: the format it writes and its options."""

    layout: str
    fingerprint: str  # the schema fingerprint of ``layout``
    export_version: str
    name: str  # the partition's folder, as its manifest states it: YYYY-MM-DD (a day), YYYY-MM-DD/HH (an hour)
    force: bool = False
    allow_incomplete: bool = False
    catch_up: bool = False  # skip what cannot be healed (no archive, unchanged partial, older version)


def archive_changes(source_files: list, hour_files: dict[int, int]) -> list[str]:
    """How the archive's hour files now (hour -> size, one listing) differ from those a manifest
    says were exported (its ``source_files``: hour and size), one phrase each; empty when the
    same. Sizes only: an hour file rewritten with the same size is not seen (verify's archive
    cross-check re-reads the rows)."""
    exported = {int(f["hour"]): int(f["size_bytes"]) for f in source_files if isinstance(f, dict) and "hour" in f and "size_bytes" in f}
    changes = []
    for hour in sorted(exported.keys() | hour_files.keys()):
        before, after = exported.get(hour), hour_files.get(hour)
        if before is None:
            changes.append(f"hour {hour:02d} new")
        elif after is None:
            changes.append(f"hour {hour:02d} gone")
        elif before != after:
            changes.append(f"hour {hour:02d} {before} -> {after} bytes")
    return changes


def archive_grew(source_files: list, hour_files: dict[int, int]) -> bool:
    """Whether the hour files only grew since a manifest's ``source_files`` were exported: every
    hour still there, none smaller, one larger (the collector appends; nothing else changes a
    file that way). Sizes only, as ``archive_changes``."""
    exported = {int(f["hour"]): int(f["size_bytes"]) for f in source_files if isinstance(f, dict) and "hour" in f and "size_bytes" in f}
    return (bool(exported) and all(h in hour_files and hour_files[h] >= size for h, size in exported.items())
            and any(hour_files[h] > size for h, size in exported.items()))


def plan_export(hour_files: dict[int, int] | None, over: bool, in_place: InPlace, wanted: Wanted) -> Plan:
    """Before reading: what to do with a day (or an hour) whose archive holds ``hour_files``
    (hour -> size; None: no archive folder or hour file), ``over`` (the period is over), given
    what is published (``in_place``). ``UNCHANGED`` when re-exporting cannot change the
    publication: its manifest is of this export version, layout, schema and partition, from the
    same hour files, its data intact, and it is complete (or partial as this export would make it:
    ``allow_incomplete`` and the same ``over``). With ``catch_up``, ``SKIP``: no archive folder; a
    partial publication of a period that was over, from the archive as it is (nothing to
    complete); a complete one of another export version from the same archive (re-exporting
    would be refused as other data: ``force`` upgrades it). Otherwise the export goes on:
    ``REPLACE`` (force), ``COMPLETE`` (a partial one in place), ``EXPORT``; a missing archive
    without catch-up is also ``EXPORT`` (the export says what is missing)."""
    m = in_place.manifest
    if wanted.force:
        return Plan(REPLACE if m is not None or in_place.unreadable else EXPORT)
    if hour_files is None:
        return Plan(SKIP, NO_FOLDER) if wanted.catch_up else Plan(EXPORT)
    if m is None or m.partition_path != wanted.name:
        return Plan(EXPORT)
    same_archive = not archive_changes(m.source_files, hour_files)
    if wanted.catch_up and same_archive and not m.is_partial and m.export_version != wanted.export_version:
        return Plan(SKIP, f"published complete by export version {m.export_version}; forcing re-exports it as {wanted.export_version}",
                    remedy="force")
    current = (m.layout, m.export_version, m.schema_fingerprint) == (wanted.layout, wanted.export_version, wanted.fingerprint)
    if current and same_archive and in_place.intact:
        if wanted.catch_up and m.is_partial and m.day_over_at_export:
            missing = len(m.missing_hours)
            why = f"{missing} hours missing" if missing else f"{m.bad_line_count} bad lines"
            return Plan(SKIP, f"published partial ({why}) and the archive has not changed since: nothing to complete")
        if not m.is_partial or (wanted.allow_incomplete and m.day_over_at_export == over):
            return Plan(UNCHANGED, "archive unchanged since the export")
    if not m.is_partial and in_place.intact and not same_archive:
        if archive_grew(m.source_files, hour_files):  # the collector wrote late: follow it, once
            return Plan(UPDATE, "the archive grew since the export (late entries)")
        if wanted.catch_up:  # rewritten, not appended to: status raises it; catch-up does not fail on it nightly
            changes = archive_changes(m.source_files, hour_files)
            return Plan(SKIP, f"the archive changed since the export, not by growth ({', '.join(changes[:3])}): not replaced; "
                              "forcing re-exports it", remedy="force")
    return Plan(COMPLETE if m.is_partial else EXPORT)


def plan_publish(in_place: InPlace, sha256: str, partial: bool, force: bool, follows: bool = False,
                 sources: list | None = None) -> Plan:
    """Right before publishing data (``sha256``, ``partial``) where ``in_place`` is found:

    - the same data in place, intact: ``UNCHANGED`` ("already published"); not intact: ``REFUSE``
      (DAMAGED), unless ``force``;
    - a partial publication in place and complete data new: ``COMPLETE``, without ``force``;
    - nothing in place: ``EXPORT``; ``force``: ``REPLACE`` (it also repairs);
    - ``follows`` (a bundle, which follows its days, here and on R2): other or damaged data in place
      is rebuilt, ``REBUILD``, without ``force``;
    - otherwise ``REFUSE``: UNREADABLE (the manifest in place is not one) or CONFLICT."""
    m = in_place.manifest
    if m is not None and not force and m.parquet_sha256 == sha256 and not (m.is_partial and not partial):
        if in_place.data_size == m.parquet_size_bytes:
            return Plan(UNCHANGED, "the same data is published")
        if follows:
            return Plan(REBUILD, "the published data does not match its manifest")
        return Plan(REFUSE, "the published data does not match its manifest", DAMAGED)
    if m is not None and m.is_partial and not partial:
        return Plan(COMPLETE)
    if m is not None and not partial and sources is not None and in_place.intact and archive_grew(
            m.source_files, {int(s["hour"]): int(s["size_bytes"]) for s in sources if isinstance(s, dict) and "hour" in s}):
        return Plan(UPDATE, "read from the same hour files, grown since (late entries)")
    if m is None and not in_place.unreadable:
        return Plan(EXPORT)
    if force:
        return Plan(REPLACE)
    if follows:
        return Plan(REBUILD, "its source changed")
    if m is None:
        return Plan(REFUSE, "the manifest in place is not readable", UNREADABLE)
    return Plan(REFUSE, "other data is published", CONFLICT)


def bundle_source(manifest: Manifest) -> dict:
    """What a bundle records of one of its days (``source_files``): what a rebuild depends on."""
    m = manifest
    return {"date": m.date_utc, "file": f"{m.date_utc}/data.parquet", "parquet_sha256": m.parquet_sha256,
            "size_bytes": m.parquet_size_bytes, "rows": m.row_count, "is_partial": m.is_partial}


def plan_bundle(in_place: InPlace, sources: list[dict], missing: list[str], over: bool, force: bool) -> Plan:
    """A monthly bundle of the days ``sources`` (with ``missing`` days not published; ``over``:
    the month is over). A bundle follows its days: ``UNCHANGED`` when the intact bundle in place
    was built from the same days (their data, the days missing, the month over or not);
    otherwise it is written, and replaces what is there without ``force`` (``REBUILD``)."""
    m = in_place.manifest
    if m is None or not in_place.intact:
        return Plan(REPLACE if force else (REBUILD if m is not None or in_place.unreadable else EXPORT))
    if not force and m.source_files == sources and m.missing_days == missing and m.day_over_at_export == over:
        return Plan(UNCHANGED, "its days have not changed")
    return Plan(REPLACE if force else REBUILD)


def plan_removal(local: InPlace, remote: InPlace, name: str, remote_url: str) -> Plan:
    """Whether a local partition (``name``) may be removed once uploaded: ``REMOVE`` only when
    the local one is intact and of its folder, and ``remote_url`` publishes the same data
    (same sha256) intact; else ``KEEP`` with the reason."""
    m, r = local.manifest, remote.manifest
    if m is None:
        return Plan(KEEP, "its manifest is not readable")
    if m.partition_path != name:
        return Plan(KEEP, f"its manifest is of {m.partition_path}")
    if local.data_size != m.parquet_size_bytes:
        return Plan(KEEP, "its data.parquet is not of the size its manifest states")
    if r is None:
        return Plan(KEEP, f"not published at {remote_url}" if not remote.unreadable else f"{remote_url} has an unreadable manifest")
    if r.parquet_sha256 != m.parquet_sha256:
        return Plan(KEEP, f"{remote_url} publishes other data (sha256 {r.parquet_sha256[:12]}...)")
    if remote.data_size != r.parquet_size_bytes:
        found = "missing" if remote.data_size is None else f"{remote.data_size} bytes"
        return Plan(KEEP, f"{remote_url}/data.parquet is {found}, its manifest says {r.parquet_size_bytes}")
    return Plan(REMOVE)


@dataclass(frozen=True)
class State:
    """What ``status`` shows for a partition: ``state``, ``reason``, and how the archive differs
    from what was exported (``changes``; ``archive_changed`` None when not compared)."""

    state: str
    reason: str = ""
    archive_changed: bool | None = None
    changes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Nothing to do: published complete from the archive as it is, or no archive."""
        return self.state == NO_ARCHIVE or (self.state == PUBLISHED and not self.archive_changed)


def partition_state(listed: str, reason: str, manifest: Manifest | None, hour_files: dict[int, int] | None,
                    has_archive: bool | None, unit: str, expected: bool = False) -> State:
    """The status of a listed partition (``listed``: the dataset listing's state, "published",
    "partial", "missing" or another, kept as it is; ``reason`` its words) against its archive:
    ``hour_files`` (compared when given), ``has_archive`` (None: not looked at; False: no archive
    folder or hour file). Bundles have no archive (their days are their source). ``expected``: the
    partition is over and after the archive began, so no archive for it is an alarm ("archive
    missing": a collector that stopped), not "no archive"."""
    if listed in (PUBLISHED, PARTIAL) and manifest is not None:
        state = State(PARTIAL if manifest.is_partial else PUBLISHED, partial_reason(manifest) if manifest.is_partial else "")
        if hour_files is not None:
            changes = archive_changes(manifest.source_files, hour_files)
            state = State(state.state, state.reason, bool(changes), changes)
        return state
    if listed == "missing":
        if has_archive is False:
            return State(ARCHIVE_MISSING, "nothing in the archive for it, after the archive began: is the collector running?") if expected else State(NO_ARCHIVE)
        return State(MISSING, "" if has_archive or unit == "month" else "archive not looked at")
    return State(PartitionState(listed), reason)


def partial_reason(m: Manifest) -> str:
    """Why a publication is partial, in a few words each: missing hours, bad lines, days missing
    from a bundle, partial days in it, an export before the period was over."""
    why = []
    if m.missing_hours:
        why.append(f"{len(m.missing_hours)} hours missing ({', '.join(f'{int(h):02d}' for h in m.missing_hours[:6])}"
                   f"{' ...' if len(m.missing_hours) > 6 else ''})")
    if m.bad_line_count:
        why.append(f"{m.bad_line_count} bad lines")
    if m.missing_days:
        why.append(f"{len(m.missing_days)} days not published when bundled ({', '.join(m.missing_days[:4])}"
                   f"{' ...' if len(m.missing_days) > 4 else ''})")
    if any(isinstance(s, dict) and s.get("is_partial") is True for s in m.source_files):
        why.append("holds partial days")
    if not m.day_over_at_export:
        why.append(f"exported before the {m.partition} was over")
    return "; ".join(why)
