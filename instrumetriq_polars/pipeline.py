"""The former place of the Polars plan and the Parquet writer, now ``write.parquet``: kept for
the modules outside the write side that still import it from here (``live.rows``)."""

from .write.parquet import ROW_GROUP_SIZE, ZSTD_LEVEL, frame_source, lazy_day, to_layout, lazy_entries, sink  # noqa: F401
