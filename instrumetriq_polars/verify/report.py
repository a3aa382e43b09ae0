"""The Markdown report of one or more verified days."""

from __future__ import annotations

import json

from ..manifest import utc_now_iso
from .results import VerifyResult

#: The figures each day's section lists (every check's figures are in ``--json``).
REPORTED_FIGURES = ("futures_share", "null_ratios_top", "all_null_columns", "all_null_previous_day", "long_duration_rows",
                    "added_ts_outside_day", "rows_far_from_day", "leftover_files")


def render_report(results: list[VerifyResult], title: str = "Tier 3 verification") -> str:
    """The Markdown report: an overview, then per date a table of checks and rows per hour."""
    lines = [f"# {title}", "", f"Generated {utc_now_iso()}.", "",
             "| date | status | rows | size | layout | errors | warnings |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in results:
        f = r.figures
        size = f"{f['data_size_bytes'] / 1e6:.2f} MB" if f.get("data_size_bytes") else "-"
        lines.append(f"| {r.day} | **{r.status}** | {f.get('parquet_rows', '-')} | {size} | {r.layout or '-'} | {len(r.errors)} | {len(r.warnings)} |")
    for r in results:
        lines += ["", f"## {r.day}: {r.status}", "", f"`{r.location}`, verified in {r.seconds:.1f} s", "",
                  "| check | status | details |", "| --- | --- | --- |"]
        for c in r.checks:
            details = c.errors + c.warnings or ([f"skipped: {c.skipped}"] if c.skipped else [c.summary])
            lines.append(f"| {c.name}: {c.title} | {c.status} | {'<br>'.join(_cell(d) for d in details)} |")
        chart = _bar_chart(r.figures.get("rows_by_hour") or r.figures.get("archive_rows_by_hour"))
        if chart:
            lines += ["", "Rows per hour:", "", "```text", *chart, "```"]
        key = {k: r.figures[k] for k in REPORTED_FIGURES if k in r.figures}
        if key:
            lines += ["", "Figures: " + ", ".join(f"`{k}` = {_cell(json.dumps(v))}" for k, v in key.items())]
    return "\n".join(lines) + "\n"


def _bar_chart(rows_by_hour: dict[str, int] | None, width: int = 40) -> list[str]:
    if not rows_by_hour:
        return []
    top = max(rows_by_hour.values()) or 1
    out = []
    for hour in range(24):
        key = f"{hour:02d}"
        if key not in rows_by_hour:
            out.append(f"{key} (missing)")
        else:
            count = rows_by_hour[key]
            out.append(f"{key} {'█' * max(round(count / top * width), 1 if count else 0):<{width}} {count}")
    return out


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")

