"""The one vocabulary of partition states, shared by ``list_days``/``scan``, ``status`` and
``verify``, and the policy for partial partitions. Defined once so that a day has one name
wherever it is looked at (the states are str values: JSON and messages print them as words)."""

from __future__ import annotations

from enum import Enum


class PartitionState(str, Enum):
    """What a partition (day, hour, monthly bundle) of a dataset root is."""

    PUBLISHED = "published"        # manifest valid, data of the stated size, complete
    PARTIAL = "partial"            # published, but its manifest says is_partial (hours or days missing, bad lines, not over)
    UNPUBLISHED = "unpublished"    # a partition folder without manifest.json (being published, or its export was killed)
    BAD_MANIFEST = "bad manifest"  # manifest.json unreadable, incomplete, or of another partition
    FOREIGN = "foreign"            # a layout, export version or schema fingerprint this package does not write
    DAMAGED = "damaged"            # data.parquet missing, or not of the size the manifest states
    MISSING = "missing"            # no partition folder
    NO_ARCHIVE = "no archive"      # status only: no partition folder, and no archive to export it from
    ARCHIVE_MISSING = "archive missing"  # status only: as "no archive", but after the archive began: the collector stopped?

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)


#: The states whose data a reader can read (``partial`` under the policy below).
READABLE = frozenset({PartitionState.PUBLISHED, PartitionState.PARTIAL})

#: ``partial=`` of scan and list_days: read partial partitions and warn naming them (the default),
#: read them silently, or leave them out.
PARTIAL_POLICIES = ("warn", "include", "exclude")


def vocabulary() -> str:
    """The states as a sentence fragment for help texts: ``published, partial, ...``."""
    return ", ".join(state.value for state in PartitionState)
