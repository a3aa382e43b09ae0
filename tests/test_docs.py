"""The docs against the code: the generated pages are current, every command is documented, every
relative link resolves, and the README's commands are the ones CI runs."""

from __future__ import annotations

import functools
import importlib.util
import re
import shlex
from pathlib import Path

import pytest

from instrumetriq_polars import DatasetWarning
from instrumetriq_polars.cli import build_parser, main

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]


@functools.cache
def generator():
    spec = importlib.util.spec_from_file_location("docs_generate", DOCS / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@functools.cache
def subcommands() -> dict:
    """Every command, its own subcommands included ("live tail"): (parser, one-line help)."""
    module = generator()
    return dict(module._walk(module._subcommands(build_parser())))


def test_generated_docs_are_current():
    stale = [str(path.relative_to(ROOT)) for path, text in generator().expected().items()
             if not path.exists() or path.read_text(encoding="utf-8") != text]
    assert stale == [], f"{', '.join(stale)} out of date: run python docs/generate.py"


def test_the_check_mode_reports_a_stale_page(tmp_path, monkeypatch, capsys):
    generator.cache_clear()  # this test points the module at another folder
    module = generator()
    monkeypatch.setattr(module, "DOCS", tmp_path)
    (tmp_path / "dataset.md").write_text(
        "<!-- generated: data dictionary -->\n<!-- end generated: data dictionary -->\n"
        "<!-- generated: manifest fields -->\nold\n<!-- end generated: manifest fields -->\n")
    (tmp_path / "architecture.md").write_text("<!-- generated: module map -->\n<!-- end generated: module map -->\n")
    assert module.main(["--check"]) == 1
    assert "cli.md is out of date" in capsys.readouterr().err
    assert module.main([]) == 0
    assert module.main(["--check"]) == 0
    text = (tmp_path / "dataset.md").read_text()
    assert "| `archive_day` |" in text and "\nold\n" not in text
    generator.cache_clear()


def test_every_manifest_field_is_described():
    module = generator()
    table = module.manifest_fields()
    for name in ("parquet_sha256", "rows_by_hour", "is_partial", "coverage_ratio", "missing_days"):
        assert f"| `{name}` |" in table


@pytest.mark.parametrize("command", sorted(subcommands()))
def test_every_subcommand_has_help_and_is_in_the_cli_reference(command):
    parser, help_ = subcommands()[command]
    assert help_ and len(help_) > 20, f"{command}: no help text in the command list"
    assert parser.description and len(parser.description) > 20, f"{command}: no description"
    reference = (DOCS / "cli.md").read_text(encoding="utf-8")
    assert f"\n## {command}\n" in reference
    assert f"usage: python -m instrumetriq_polars {command}" in reference


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = re.sub(r"^```.*?^```", "", page.read_text(encoding="utf-8"), flags=re.S | re.M)
    return {slug(m) for m in re.findall(r"^#{1,6} (.+)$", text, flags=re.M)}


def links(page: Path) -> list[str]:
    text = re.sub(r"^```.*?^```", "", page.read_text(encoding="utf-8"), flags=re.S | re.M)
    text = re.sub(r"`[^`\n]*`", "", text)  # code spans are not links
    return re.findall(r"\]\(([^)\s]+)\)", text)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page):
    broken = []
    for link in links(page):
        if re.match(r"^[a-z]+:", link):  # https:, mailto:
            continue
        target, _, anchor = link.partition("#")
        path = (page.parent / target).resolve() if target else page
        if not path.exists():
            broken.append(f"{link}: no such file")
        elif anchor and path.suffix == ".md" and anchor not in anchors(path):
            broken.append(f"{link}: no heading #{anchor} in {path.relative_to(ROOT)}")
    assert broken == [], f"{page.relative_to(ROOT)}: " + "; ".join(broken)


def test_readme_is_a_front_door():
    assert len((ROOT / "README.md").read_text(encoding="utf-8").splitlines()) <= 250


def readme_commands() -> list[str]:
    """The shell lines of the README's "Two commands" blocks (comments dropped)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Two commands\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"^```bash\n(.*?)^```$", section, flags=re.S | re.M)
    return [line for block in blocks for line in block.splitlines() if line.strip() and not line.startswith("#")]


def test_ci_runs_the_readme_test_commands_fast_first():
    commands = readme_commands()
    fast = next(c for c in commands if c.endswith("pytest -q"))
    full = next(c for c in commands if "pytest" in c and c != fast)
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert fast in ci and full in ci and ci.index(fast) < ci.index(full)
    assert shlex.split(full)[-2:] == ["-m", "slow or not slow"]


def readme_block(language: str, starts: str) -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return next(block for block in re.findall(rf"^```{language}\n(.*?)^```$", text, flags=re.S | re.M)
                if block.lstrip().startswith(starts))


def test_readme_demo_export_and_read_run_as_written(tmp_path, monkeypatch, capsys):
    """The front door's commands in order, in a fresh folder: the demo, the export of its archive,
    the read (the demo is run in-process, with fewer entries than its default)."""
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--entries-per-hour", "2"]) == 0
    export = readme_block("bash", "python -m instrumetriq_polars export")
    argv = shlex.split(export.strip())
    assert argv[:3] == ["python", "-m", "instrumetriq_polars"]
    assert main(argv[3:]) == 0
    assert capsys.readouterr().out.startswith("2026-01-15: published: 48 rows, 24/24 hours, ")
    namespace: dict = {}
    with pytest.warns(DatasetWarning):  # the other January days are missing
        exec(compile(readme_block("python", "import polars"), "README.md", "exec"), namespace)
    df = namespace["df"]
    assert df.columns == ["symbol", "snapshot_ts", "btc_tags"] and df.height == 48
