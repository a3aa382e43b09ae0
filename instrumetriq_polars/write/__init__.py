"""The writing side: the Polars plan and the one Parquet writer (``parquet``), the publishing
protocol and its destination (``publish``), the partition lock (``lock``), and the flow that runs
them for every tier and the upload (``flow``). Readers (``dataset``, ``status``, ``verify``)
import none of it (tests/test_layers.py).
"""
