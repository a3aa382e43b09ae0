"""Generate the parts of the docs that the code already knows, so they cannot drift from it.

    python docs/generate.py           # rewrite docs/cli.md and the generated blocks of the other pages
    python docs/generate.py --check   # exit 1 (naming the stale files) when they are out of date

- docs/cli.md: the CLI reference, walked from ``instrumetriq_polars.cli.build_parser()`` (every
  command, its usage, every option with its argument, default and help text);
- docs/dataset.md, between the ``<!-- generated: NAME -->`` markers: the data dictionary
  (every column of both layouts, from ``instrumetriq_polars.schema``) and the manifest's fields
  (from the ``Manifest`` dataclass; each needs a line in ``MANIFEST_FIELDS`` below, or this fails);
- docs/architecture.md, likewise: the module map (every module and the first sentence of its
  docstring).

tests/test_docs.py runs ``--check``; CI therefore fails when a flag, a column or a manifest field
changes without the docs being regenerated.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
PROG = "python -m instrumetriq_polars"
WIDTH = "100"  # usage lines are wrapped at this width, whatever the terminal

#: One line per manifest field (the dataclass's fields and the two derived ones written to JSON).
MANIFEST_FIELDS = {
    "date_utc": "the partition: `YYYY-MM-DD` (a day, or the day of an hour) or `YYYY-MM` (a bundle)",
    "hour_utc": "Tier 2 only: the hour (0-23) of `date_utc`",
    "partition": "`day`, `hour` or `month`",
    "archive_day": "the archive folder, `YYYYMMDD` (a bundle: `YYYYMM`)",
    "created_ts_utc": "when the export wrote this manifest (ISO 8601, UTC)",
    "row_count": "rows in `data.parquet`",
    "rows_by_hour": "rows per archive hour, keys `\"00\"`-`\"23\"` (the count of each `archive_hour`)",
    "parquet_sha256": "sha256 of `data.parquet`, hashed while it was written",
    "parquet_size_bytes": "size of `data.parquet`; a different size in place means the partition is damaged",
    "compression": "`zstd`",
    "layout": "`flat` or `nested`",
    "schema_fingerprint": "sha256 of the ordered column names and declared types",
    "column_count": "columns in `data.parquet`",
    "tier": "`tier3` (days, bundles) or `tier2` (hours)",
    "export_version": "the export format: `tier3-polars-2` (version 1: `tier3-polars-1`)",
    "exporter": "name and version of the program that wrote the partition",
    "partition_basis": "`archive_folder_utc_day`: rows belong to the archive folder they were read from",
    "hours_expected": "24 for a day, 1 for an hour",
    "hours_found": "hour files read",
    "missing_hours": "hours without a file, as `\"HH\"` (version 1 wrote numbers)",
    "coverage_ratio": "`hours_found / hours_expected`",
    "source_files": "each file read: name, size, lines, rows per hour (a bundle: each day read, with its sha256 and rows)",
    "ignored_files": "names in the folder that are not hour files, each also named in a warning",
    "missing_days": "bundles only: days of the month (to date) with no published day",
    "source_root": "bundles only: the daily root the days were read from, as given; `verify --month` and `status --month` name each day that changed since",
    "schema_versions": "the entries' `meta.schema_version` values and how many rows carry each",
    "min_added_ts": "earliest `meta.added_ts` of the rows (UTC), or null",
    "max_added_ts": "latest `meta.added_ts` of the rows (UTC), or null",
    "lines_read": "non-blank input lines read",
    "lines_exported": "lines that became rows",
    "stdlib_json_lines": "lines that only Python's `json` could decode (NaN, Infinity, huge integers)",
    "bad_line_count": "lines not exported (each day with one fails unless `--allow-incomplete`)",
    "bad_lines": "the first 1,000 of them: file, line, reason (line 0: the whole file)",
    "damaged_spans": "gzip damage skipped in the hour files (only when there is some): file, start and end byte, reason, entries (those it held, counted in bad_line_count); the members after it are read",
    "unknown_fields": "paths of fields the schema does not declare, with counts (their values are in `_extra`)",
    "mistyped_fields": "paths of values of the wrong type, with counts (their values are in `_extra`)",
    "day_over_at_export": "false when the day (hour, month) was not over at export: more entries may come",
    "is_partial": "true when hours or days are missing, lines were bad, or the partition was not over",
    "dropped_columns": "`norm`, `labels`: always empty in v7, not exported",
    "null_semantics": "what a NULL means, block by block (the table in this page)",
}


# ---------------------------------------------------------------------------------------------
# the CLI reference


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, tuple[argparse.ArgumentParser, str]]:
    """Command name -> (its parser, its one-line help), in the order the parser declares them."""
    for action in parser._actions:  # argparse offers no public way to walk its subparsers
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            return {name: (sub, helps.get(name) or "") for name, sub in action.choices.items()}
    return {}


def _cell(text: str) -> str:
    """One table cell of Markdown text: one line, pipes escaped."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _prose(text: str) -> str:
    """A table cell of plain text (help strings): also angle brackets, which would read as HTML."""
    return _cell(text).replace("<", "&lt;").replace(">", "&gt;")


def _home(text: str) -> str:
    """The reader's home folder, not the generating machine's."""
    return text.replace(str(Path.home()), "~")


def _options(parser: argparse.ArgumentParser) -> list[str]:
    groups = {id(action): index for index, group in enumerate(parser._mutually_exclusive_groups, 1)
              for action in group._group_actions}
    required_groups = {index for index, group in enumerate(parser._mutually_exclusive_groups, 1) if group.required}
    rows = ["| option | argument | default | meaning |", "| --- | --- | --- | --- |"]
    for action in parser._actions:
        if action.help == argparse.SUPPRESS or isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        names = ", ".join(f"`{name}`" for name in action.option_strings) or f"`{action.dest}`"
        if action.nargs == 0:
            argument = ""
        elif action.choices:
            argument = "`" + "\\|".join(map(str, action.choices)) + "`"
        else:
            argument = f"`{action.metavar or action.dest.upper()}`"
        default = action.default
        shown = "" if default in (None, False, argparse.SUPPRESS) or action.nargs == 0 else f"`{default}`"
        meaning = action.help % {**vars(action), "prog": PROG} if action.help else ""
        notes = []
        if action.required:
            notes.append("required")
        if isinstance(action, argparse._AppendAction) and "repeatable" not in meaning:
            notes.append("repeatable")
        if id(action) in groups:
            index = groups[id(action)]
            notes.append(f"one of group {index}" + (", required" if index in required_groups else ""))
        if notes:
            meaning = f"{meaning} ({'; '.join(notes)})" if meaning else f"({'; '.join(notes)})"
        rows.append(f"| {names} | {argument} | {_cell(shown)} | {_prose(_home(meaning))} |")
    return rows


def _usage(parser: argparse.ArgumentParser, name: str | None) -> str:
    canonical = f"{PROG} {name}" if name else PROG
    previous = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = WIDTH
    try:
        text = parser.format_usage()
    finally:
        if previous is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = previous
    return text.replace(parser.prog, canonical, 1).strip()


def cli_reference() -> str:
    from instrumetriq_polars.cli import build_parser

    parser = build_parser()
    commands = _subcommands(parser)
    lines = [
        "# CLI reference",
        "",
        "<!-- Generated by docs/generate.py from the argparse parser: do not edit by hand; run",
        "     `python docs/generate.py` after changing a flag (tests/test_docs.py checks it). -->",
        "",
        f"`{PROG} COMMAND [options]`; the console script `instrumetriq-polars` is the same program.",
        _prose(_home(parser.description or "")),
        "",
        _prose(parser.epilog or ""),  # the exit codes, as the CLI defines them (cli/output.py)
        "How to run the commands on a server: [operations.md](operations.md).",
        "",
        "| command | what it does |",
        "| --- | --- |",
    ]
    every = dict(_walk(commands))
    lines += [f"| [`{name}`](#{name.replace(' ', '-')}) | {_prose(help_)} |" for name, (_, help_) in every.items()]
    lines += ["", "## Options of every command", "", *_options(parser), ""]
    for name, (sub, help_) in every.items():
        lines += [f"## {name}", "", _prose(_home(sub.description or help_)), "", "```", _usage(sub, name), "```", ""]
        lines += [*_options(sub), ""]
    return "\n".join(lines).rstrip() + "\n"


def _walk(commands: dict, prefix: str = ""):
    """(full command name, (parser, help)) of every command, a command's own subcommands after it."""
    for name, (sub, help_) in commands.items():
        yield prefix + name, (sub, help_)
        yield from _walk(_subcommands(sub), f"{prefix}{name} ")


# ---------------------------------------------------------------------------------------------
# the data dictionary


def data_dictionary() -> str:
    from instrumetriq_polars import schema

    flat = schema.FLAT_COLUMNS
    nested = schema.schema_for("nested")
    lines = [
        f"Export format version {schema.CURRENT_VERSION}: {len(flat)} columns in the flat layout, "
        f"{len(nested)} in the nested one. The entry path is where the value sits in an archive entry "
        "(`a.b`: field `b` of object `a`; `spot_prices[].ts`: field `ts` of every item of the list). "
        "Types are the declared ones: `timestamp` is an instant in UTC to the microsecond "
        "(Parquet `TIMESTAMP(MICROS, isAdjustedToUTC=true)`), `map<string,int>` a Parquet MAP, "
        "`int8` a signed byte.",
        "",
        "| flat column | nested column | entry path | type |",
        "| --- | --- | --- | --- |",
    ]
    for name, (dtype, path) in flat.items():
        top = path[0]
        if top in schema.LINEAGE_COLUMNS:
            entry = "(lineage: the archive folder / hour file the row came from)"
        elif top == schema.EXTRA_COLUMN:
            entry = "(JSON text of every value the schema could not hold)"
        else:
            entry = ".".join(path)
        if isinstance(dtype, schema.pl.List) and isinstance(dtype.inner, schema.pl.Struct):
            entry = ", ".join(f"{'.'.join(path)}[].{f.name}" for f in dtype.inner.fields)
        nested_name = top if len(path) == 1 else f"{top}.{'.'.join(path[1:])}"
        lines.append(f"| `{name}` | `{nested_name}` | {_cell(entry)} | `{_cell(schema.type_name(dtype))}` |")
    return "\n".join(lines)


def manifest_fields() -> str:
    from instrumetriq_polars.manifest import Manifest

    names = [f.name for f in dataclasses.fields(Manifest)] + ["coverage_ratio", "is_partial"]
    undocumented = [name for name in names if name not in MANIFEST_FIELDS]
    if undocumented:
        raise SystemExit(f"docs/generate.py: describe the manifest field(s) {', '.join(undocumented)} in MANIFEST_FIELDS")
    types = {f.name: str(f.type) for f in dataclasses.fields(Manifest)} | {"coverage_ratio": "float", "is_partial": "bool"}
    lines = ["| field | type | meaning |", "| --- | --- | --- |"]
    lines += [f"| `{name}` | `{_cell(types[name])}` | {_cell(MANIFEST_FIELDS[name])} |" for name in MANIFEST_FIELDS if name in types]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# the module map


def _first_sentence(docstring: str) -> str:
    paragraph = " ".join(docstring.strip().split("\n\n", 1)[0].split()).replace("``", "`")
    match = re.match(r"(.+?\.)(\s|$)", paragraph)
    return (match.group(1) if match else paragraph).rstrip(".")


def module_map() -> str:
    """Every module of the package with the first sentence of its docstring, folder by folder."""
    import ast

    package = DOCS.parent / "instrumetriq_polars"
    lines = ["| module | what it is |", "| --- | --- |"]
    for path in sorted(package.rglob("*.py"), key=lambda p: (p.parent != package, str(p.relative_to(package)))):
        if path.name == "__main__.py":
            continue
        docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        name = str(path.relative_to(package))
        name = name.removesuffix("/__init__.py") + "/" if name.endswith("/__init__.py") else name
        lines.append(f"| `{name}` | {_cell(_first_sentence(docstring)) or '(no docstring)'} |")
    return "\n".join(lines)


#: page -> {block name -> what writes it}
BLOCKS = {
    "dataset.md": {"manifest fields": manifest_fields, "data dictionary": data_dictionary},
    "architecture.md": {"module map": module_map},
}


def _with_blocks(page: str, text: str) -> str:
    for name, make in BLOCKS[page].items():
        pattern = re.compile(rf"(<!-- generated: {name} -->\n)(?:.*?\n)?(<!-- end generated: {name} -->)", re.S)
        if not pattern.search(text):
            raise SystemExit(f"docs/{page} has no '<!-- generated: {name} -->' ... '<!-- end generated: {name} -->' block")
        text = pattern.sub(lambda m: m.group(1) + make() + "\n" + m.group(2), text)
    return text


def expected() -> dict[Path, str]:
    """Every generated file and the text it must hold."""
    files = {DOCS / "cli.md": cli_reference()}
    for page in BLOCKS:
        files[DOCS / page] = _with_blocks(page, (DOCS / page).read_text(encoding="utf-8"))
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate docs/cli.md and the generated blocks of the other pages.")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 when a generated file is stale")
    args = parser.parse_args(argv)
    stale = [path for path, text in expected().items() if not path.exists() or path.read_text(encoding="utf-8") != text]
    if args.check:
        for path in stale:
            print(f"error: {path.relative_to(DOCS.parent)} is out of date; run python docs/generate.py", file=sys.stderr)
        return 1 if stale else 0
    for path, text in expected().items():
        if path in stale:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(DOCS.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
