"""The Python recipes of docs/reading.md, parsed out of the page and run as written."""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

from instrumetriq_polars import DatasetWarning

PAGE = Path(__file__).resolve().parents[2] / "docs" / "reading.md"


def recipes() -> dict[str, str]:
    """The page's Python blocks, keyed by their first line (a comment naming the recipe)."""
    text = PAGE.read_text(encoding="utf-8")
    blocks = re.findall(r"^```python\n(.*?)^```$", text, flags=re.S | re.M)
    return {block.splitlines()[0]: block for block in blocks}


def run_recipe(title: str, cwd: Path) -> dict:
    """Execute the recipe in a fresh namespace with ``cwd`` as the working folder; its variables,
    and the DatasetWarnings it raised under ``_warnings``.

    Spark resolves a relative path against its JVM's working folder, which is the folder the
    process's first Spark session started in, not the one ``os.chdir`` sets later: a Spark recipe's
    relative ``output/`` paths are made absolute under ``cwd`` (one user process has one folder)."""
    code = recipes()[title]
    if "pyspark" in code:
        code = code.replace('"output/', f'"{Path(cwd).resolve()}/output/')
    namespace: dict = {}
    before = os.getcwd()
    os.chdir(cwd)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            exec(compile(code, f"docs/reading.md: {title}", "exec"), namespace)
    finally:
        os.chdir(before)
    namespace["_warnings"] = [w for w in caught if issubclass(w.category, DatasetWarning)]
    return namespace
