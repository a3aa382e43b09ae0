"""Run the export with chosen ``ReadOptions``: the export builds its scan itself, so its scan's
``__init__`` is wrapped to pass them (a test helper; the library takes them as a scan argument)."""

from __future__ import annotations

from contextlib import contextmanager

import instrumetriq_polars.source as source
from instrumetriq_polars.read.options import ReadOptions


@contextmanager
def scans_with(monkeypatch, options: ReadOptions):
    """Within the block, every ``ArchiveDayScan`` reads with ``options``."""
    init = source.ArchiveDayScan.__init__

    def with_options(self, day, progress=None, options_=None):
        init(self, day, progress, options=options)

    with monkeypatch.context() as patch:
        patch.setattr(source.ArchiveDayScan, "__init__", with_options)
        yield
