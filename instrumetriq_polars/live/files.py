"""What the follower reads of the archive (``ROOT/YYYYMMDD/HH.jsonl.gz``): day folders, hour files,
their sizes, and byte ranges. A local root is read with ``os`` (cheap stats, inode numbers to tell a
replaced file); any other fsspec URL with ``fs.ls`` and ranged ``cat_file`` (polled).

Names follow ``archive.py``'s rule (``HH.jsonl.gz``, HH 00-23); a file is named by its path under
the root, ``YYYYMMDD/HH.jsonl.gz``, everywhere in the live feed.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import fsspec

from ..archive import _HOUR_FILE
from ..errors import LiveError
from ..storage import describe_error, storage_options_for

_DAY = re.compile(r"[0-9]{8}")


@dataclass(frozen=True)
class FileStat:
    size: int
    mtime: float  # seconds since the epoch (0 when the storage does not say)
    ident: str  # what names the file's identity (local: device and inode); "" when unknown


class ArchiveFiles:
    """The archive root ``archive`` (a local path or an fsspec URL)."""

    def __init__(self, archive: str, storage_options: dict | None = None):
        self.archive = str(archive)
        self.local = "://" not in self.archive or self.archive.startswith("file://")
        if self.local:
            self.root = self.archive[len("file://"):] if self.archive.startswith("file://") else self.archive
            self.fs = None
        else:
            try:
                options = storage_options_for(self.archive, storage_options) or {}  # s3://: the R2 settings
                self.fs, self.root = fsspec.core.url_to_fs(self.archive, **options)
            except Exception as exc:  # noqa: BLE001 - a backend's own error: one line
                raise LiveError(f"cannot open the archive {self.archive}: {describe_error(exc)}") from exc
            self.root = self.root.rstrip("/")

    def path(self, name: str) -> str:
        return os.path.join(self.root, name) if self.local else f"{self.root}/{name}"

    def days(self) -> list[str]:
        """The ``YYYYMMDD`` day folders, in order."""
        try:
            if self.local:
                names = [n for n in os.listdir(self.root) if os.path.isdir(os.path.join(self.root, n))]
            else:
                self.fs.invalidate_cache(self.root)
                names = [i["name"].rstrip("/").rsplit("/", 1)[-1] for i in self.fs.ls(self.root, detail=True)
                         if i.get("type") == "directory"]
        except FileNotFoundError:
            raise LiveError(f"the archive root {self.archive} does not exist") from None
        except OSError as exc:
            raise LiveError(f"cannot list the archive root {self.archive}: {describe_error(exc)}") from exc
        return sorted(n for n in names if _DAY.fullmatch(n))

    def hour_files(self, day: str) -> dict[str, FileStat]:
        """The hour files of a day folder: ``{"YYYYMMDD/HH.jsonl.gz": FileStat}`` ({} if it is gone)."""
        found: dict[str, FileStat] = {}
        folder = self.path(day)
        try:
            if self.local:
                with os.scandir(folder) as it:
                    for item in it:
                        if _HOUR_FILE.fullmatch(item.name):
                            try:
                                st = item.stat()
                            except FileNotFoundError:
                                continue
                            if not os.path.isdir(item.path):
                                found[f"{day}/{item.name}"] = FileStat(st.st_size, st.st_mtime, f"{st.st_dev}:{st.st_ino}")
            else:
                self.fs.invalidate_cache(folder)
                for info in self.fs.ls(folder, detail=True):
                    name = info["name"].rstrip("/").rsplit("/", 1)[-1]
                    if _HOUR_FILE.fullmatch(name) and info.get("type", "file") == "file":
                        found[f"{day}/{name}"] = FileStat(int(info.get("size") or 0), _mtime(info), "")
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise LiveError(f"cannot list {self.path(day)}: {describe_error(exc)}") from exc
        return found

    def stat(self, name: str) -> FileStat | None:
        try:
            if self.local:
                st = os.stat(self.path(name))
                return FileStat(st.st_size, st.st_mtime, f"{st.st_dev}:{st.st_ino}")
            info = self.fs.info(self.path(name))
            return FileStat(int(info.get("size") or 0), _mtime(info), "")
        except FileNotFoundError:
            return None

    def read(self, name: str, start: int, end: int | None = None) -> bytes:
        """Bytes ``[start, end)`` of a file (to its end when ``end`` is None); b"" if it is gone."""
        try:
            if self.local:
                with open(self.path(name), "rb") as f:
                    f.seek(start)
                    return f.read() if end is None else f.read(max(0, end - start))
            return self.fs.cat_file(self.path(name), start=start, end=end)
        except FileNotFoundError:
            return b""
        except OSError as exc:
            raise LiveError(f"cannot read {self.path(name)}: {describe_error(exc)}") from exc


def _mtime(info: dict) -> float:
    value = info.get("mtime") or info.get("LastModified") or info.get("created")
    if hasattr(value, "timestamp"):
        return value.timestamp()
    return float(value) if isinstance(value, (int, float)) else 0.0


def day_hour(name: str) -> tuple[str, int]:
    """``"20260101/05.jsonl.gz"`` -> ("2026-01-01", 5)."""
    day, file = name.split("/")
    return f"{day[:4]}-{day[4:6]}-{day[6:]}", int(file[:2])
