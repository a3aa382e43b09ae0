"""Alert rules: a TOML file of ``[[rule]]`` tables (and ``[notifier.NAME]`` tables), read with
``tomllib`` and checked whole at load time, so a bad rule is one ``RuleError`` naming it.

A rule is one of three kinds:

- ``entry``: ``where`` is a condition on each entry (a Polars SQL expression over the ``tier1``
  fields); ``select`` optionally computes values to carry into the alert (``"mid * 2 AS x"``);
- ``window``: ``select`` are aggregates over the entries of a sliding event-time ``window``
  (``"avg(sentiment_mean) AS sent, count(*) AS n"``) per group, ``where`` a condition over them;
  ``filter`` optionally keeps only some entries before aggregating;
- ``absent``: no entry (matching ``where``, when given) of a group for ``after``: evaluated on
  the wall clock live, on the entries' event time in a backtest.

Common keys: ``name`` (unique), ``group_by`` (list of fields; one alert instance per group),
``for``, ``keep_firing_for``, ``cooldown`` (durations: ``"90s"``, ``"10m"``, ``"1h30m"`` or
seconds), ``severity``, ``summary`` (a ``str.format`` template over the group fields and the
selected values, plus ``rule`` and ``severity``), ``notify`` (notifier names; ``"sse"`` always
exists). Notifiers: ``[notifier.NAME]`` with ``type`` = ``jsonl`` (``path``), ``webhook``
(``url``) or ``alertmanager`` (``url``: the Alertmanager base URL), plus optional ``headers``.
The evaluation itself is ``alerts.py``.
"""

from __future__ import annotations

import re
import string
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from ..errors import RuleError

KINDS = ("entry", "window", "absent")
NOTIFIER_TYPES = ("jsonl", "webhook", "alertmanager")
SEVERITIES = ("info", "warning", "critical")
_RULE_KEYS = {"name", "kind", "where", "select", "filter", "group_by", "window", "after", "for",
              "keep_firing_for", "cooldown", "severity", "summary", "notify", "labels"}
_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?$")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class Notifier:
    """A notification target named in a rules file."""

    name: str
    type: str  # "sse", "jsonl", "webhook", "alertmanager"
    url: str | None = None
    path: str | None = None
    headers: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Rule:
    """One checked rule. Durations are in seconds; expressions are already parsed."""

    name: str
    kind: str
    where: str | None
    select: tuple[str, ...]
    filter: str | None
    group_by: tuple[str, ...]
    window_s: float
    after_s: float
    for_s: float
    keep_firing_for_s: float
    cooldown_s: float
    severity: str
    summary: str
    notify: tuple[str, ...]
    labels: dict = field(default_factory=dict)

    def where_expr(self) -> pl.Expr | None:
        return pl.sql_expr(self.where) if self.where else None

    def filter_expr(self) -> pl.Expr | None:
        return pl.sql_expr(self.filter) if self.filter else None

    def select_exprs(self) -> list[pl.Expr]:
        return [pl.sql_expr(text) for text in self.select]

    def value_names(self) -> list[str]:
        """The names of the selected values (the aliases of ``select``)."""
        return [expr.meta.output_name() for expr in self.select_exprs()]

    def to_dict(self) -> dict:
        """The rule as ``/v1/rules`` shows it."""
        return {"name": self.name, "kind": self.kind, "where": self.where, "select": list(self.select),
                "filter": self.filter, "group_by": list(self.group_by), "window_s": self.window_s,
                "after_s": self.after_s, "for_s": self.for_s, "keep_firing_for_s": self.keep_firing_for_s,
                "cooldown_s": self.cooldown_s, "severity": self.severity, "summary": self.summary,
                "notify": list(self.notify), "labels": dict(self.labels)}


@dataclass(frozen=True)
class RuleSet:
    """The rules and notifiers of one file."""

    rules: tuple[Rule, ...]
    notifiers: dict[str, Notifier]
    path: str | None = None

    def needed_fields(self) -> set[str]:
        """The tier1 fields any rule reads (the engine keeps only these in its windows)."""
        names: set[str] = set()
        for rule in self.rules:
            for text in (rule.where, rule.filter, *rule.select):
                if text and not (rule.kind == "window" and text == rule.where):
                    names.update(pl.sql_expr(text).meta.root_names())
            names.update(rule.group_by)
        return names


def parse_duration(value, what: str) -> float:
    """Seconds from ``"1h30m"``, ``"90s"``, ``"2d"`` or a number of seconds; ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"{what} must be a duration such as \"10m\", not {value!r}")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError(f"{what} must not be negative")
        return float(value)
    match = _DURATION.match(str(value).strip()) if isinstance(value, str) and value.strip() else None
    if not match:
        raise ValueError(f"{what} must be a duration such as \"90s\", \"10m\" or \"1h30m\", not {value!r}")
    days, hours, minutes, seconds = match.groups()
    return int(days or 0) * 86400 + int(hours or 0) * 3600 + int(minutes or 0) * 60 + float(seconds or 0)


def load_rules(path: str | Path, schema: dict[str, pl.DataType] | pl.Schema) -> RuleSet:
    """The rules of the TOML file ``path``, checked against the tier1 ``schema`` (field -> dtype):
    every expression parses, names known fields and evaluates on an empty frame of that schema.
    Raises ``RuleError`` (one line naming the file and the rule) on the first problem."""
    path = str(path)
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except OSError as exc:
        raise RuleError(f"{path}: cannot read the rules file ({exc.strerror or exc})", path) from None
    except tomllib.TOMLDecodeError as exc:
        raise RuleError(f"{path}: not valid TOML ({exc}); fix the file", path) from None
    return parse_rules(data, schema, path)


def parse_rules(data: dict, schema, path: str | None = None) -> RuleSet:
    """``load_rules`` for a TOML document already parsed (a dict)."""
    where = path or "rules"
    unknown = set(data) - {"rule", "notifier"}
    if unknown:
        raise RuleError(f"{where}: unknown top-level table(s) {', '.join(sorted(unknown))} (expected [[rule]] and [notifier.NAME])", path)
    notifiers = {"sse": Notifier("sse", "sse")}
    for name, table in (data.get("notifier") or {}).items():
        notifiers[name] = _notifier(name, table, where, path)
    rules: list[Rule] = []
    raw_rules = data.get("rule") or []
    if not isinstance(raw_rules, list):
        raise RuleError(f"{where}: 'rule' must be an array of tables ([[rule]])", path)
    frame = pl.DataFrame(schema=dict(schema))
    for number, table in enumerate(raw_rules, 1):
        name = table.get("name") if isinstance(table, dict) else None
        label = f"rule {name!r}" if isinstance(name, str) and name else f"rule #{number}"
        try:
            rule = _rule(table, notifiers, frame)
        except (ValueError, TypeError, pl.exceptions.PolarsError) as exc:
            text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise RuleError(f"{where}: {label}: {text}", path, name if isinstance(name, str) else None) from None
        if any(r.name == rule.name for r in rules):
            raise RuleError(f"{where}: {label}: the name is used by an earlier rule; names must be unique", path, rule.name)
        rules.append(rule)
    return RuleSet(tuple(rules), notifiers, path)


def _notifier(name: str, table, where: str, path) -> Notifier:
    if not isinstance(table, dict):
        raise RuleError(f"{where}: notifier {name!r} must be a table", path)
    kind = table.get("type")
    if kind not in NOTIFIER_TYPES:
        raise RuleError(f"{where}: notifier {name!r}: type must be one of {', '.join(NOTIFIER_TYPES)}, not {kind!r}", path)
    if kind == "jsonl" and not isinstance(table.get("path"), str):
        raise RuleError(f"{where}: notifier {name!r}: a jsonl notifier needs path = \"...\"", path)
    if kind in ("webhook", "alertmanager") and not str(table.get("url", "")).startswith(("http://", "https://")):
        raise RuleError(f"{where}: notifier {name!r}: a {kind} notifier needs url = \"http://...\"", path)
    headers = table.get("headers") or {}
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise RuleError(f"{where}: notifier {name!r}: headers must be a table of strings", path)
    return Notifier(name, kind, table.get("url"), table.get("path"), dict(headers))


def _rule(table, notifiers: dict[str, Notifier], frame: pl.DataFrame) -> Rule:
    if not isinstance(table, dict):
        raise ValueError("must be a table")
    unknown = set(table) - _RULE_KEYS
    if unknown:
        raise ValueError(f"unknown key(s) {', '.join(sorted(unknown))}")
    name = table.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError("needs name = \"...\" (letters, digits, _ . -)")
    kind = table.get("kind", "entry")
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    where, filt = _text(table, "where"), _text(table, "filter")
    select = table.get("select", [])
    select = [select] if isinstance(select, str) else select
    if not isinstance(select, list) or not all(isinstance(s, str) and s.strip() for s in select):
        raise ValueError("select must be a string or a list of strings")
    group_by = table.get("group_by", [])
    group_by = [group_by] if isinstance(group_by, str) else group_by
    if not isinstance(group_by, list) or not all(isinstance(g, str) for g in group_by):
        raise ValueError("group_by must be a field name or a list of them")
    missing = [g for g in group_by if g not in frame.columns]
    if missing:
        raise ValueError(f"group_by names unknown field(s) {', '.join(missing)}")
    durations = {key: parse_duration(table.get(key, 0), key) for key in ("for", "keep_firing_for", "cooldown")}
    window_s = parse_duration(table["window"], "window") if "window" in table else 0.0
    after_s = parse_duration(table["after"], "after") if "after" in table else 0.0
    if kind == "window" and window_s <= 0:
        raise ValueError("a window rule needs window = \"...\" (a positive duration)")
    if kind == "absent" and after_s <= 0:
        raise ValueError("an absent rule needs after = \"...\" (a positive duration)")
    if kind != "window" and ("window" in table or "filter" in table):
        raise ValueError("window and filter are for window rules only")
    if kind != "absent" and "after" in table:
        raise ValueError("after is for absent rules only")
    if kind == "window" and not select:
        raise ValueError("a window rule needs select = [\"<aggregate> AS name\", ...]")
    if kind in ("entry", "window") and not where:
        raise ValueError("needs where = \"<condition>\"")
    if kind == "absent" and select:
        raise ValueError("an absent rule has no select")
    values = _check_expressions(kind, where, filt, select, group_by, frame)
    severity = table.get("severity", "warning")
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {', '.join(SEVERITIES)}, not {severity!r}")
    summary = table.get("summary", "{rule}")
    if not isinstance(summary, str):
        raise ValueError("summary must be a string")
    absent_values = {"silent_s", "last_seen"} if kind == "absent" else set()
    _check_summary(summary, {"rule", "severity", *group_by, *values, *absent_values}, kind, frame)
    notify = table.get("notify", ["sse"])
    notify = [notify] if isinstance(notify, str) else notify
    if not isinstance(notify, list) or not all(isinstance(n, str) for n in notify):
        raise ValueError("notify must be a list of notifier names")
    for target in notify:
        if target not in notifiers:
            raise ValueError(f"notify names {target!r}, which no [notifier.{target}] table defines")
    labels = table.get("labels", {})
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        raise ValueError("labels must be a table of strings")
    return Rule(name, kind, where, tuple(select), filt, tuple(group_by), window_s, after_s, durations["for"],
                durations["keep_firing_for"], durations["cooldown"], severity, summary, tuple(notify), dict(labels))


def _text(table: dict, key: str) -> str | None:
    value = table.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{key} must be a non-empty Polars SQL expression")
    return value


def _check_expressions(kind, where, filt, select, group_by, frame: pl.DataFrame) -> list[str]:
    """Parse and run every expression on an empty frame of the tier1 schema; the value names."""
    def parse(text: str, key: str) -> pl.Expr:
        try:
            return pl.sql_expr(text)
        except pl.exceptions.PolarsError as exc:
            raise ValueError(f"{key} {text!r} is not a Polars SQL expression ({str(exc).splitlines()[0]})") from None

    def known(expr: pl.Expr, text: str, key: str, columns) -> None:
        unknown = [n for n in expr.meta.root_names() if n not in columns]
        if unknown:
            raise ValueError(f"{key} {text!r} names unknown field(s) {', '.join(unknown)}")

    selects = [parse(text, "select") for text in select]
    for expr, text in zip(selects, select):
        known(expr, text, "select", frame.columns)
    names = [expr.meta.output_name() for expr in selects]
    if len(set(names)) != len(names):
        raise ValueError(f"select gives two values the same name ({', '.join(names)}); use AS")
    if kind == "window":
        if filt:
            known(parse(filt, "filter"), filt, "filter", frame.columns)
            frame.filter(parse(filt, "filter"))
        aggregated = (frame.group_by(group_by).agg(selects) if group_by else frame.select(selects))
        expr = parse(where, "where")
        known(expr, where, "where", aggregated.columns)
        result = aggregated.select(expr)
    elif where:
        expr = parse(where, "where")
        known(expr, where, "where", frame.columns)
        result = frame.select(expr)
        if selects:
            frame.select(selects)
    else:
        return names
    if result.width != 1 or result.dtypes[0] != pl.Boolean:
        raise ValueError(f"where {where!r} must be a condition (true or false), not {result.dtypes[0]}")
    return names


def template_fields(template: str) -> list[str]:
    """The names a ``str.format`` template uses (``{spread_bps:.0f}`` -> ``spread_bps``);
    ValueError for a template that does not parse."""
    return [re.split(r"[.\[]", f, maxsplit=1)[0] for _, f, _, _ in string.Formatter().parse(template) if f is not None]


def _check_summary(summary: str, available: set[str], kind: str, frame: pl.DataFrame) -> None:
    try:
        fields = template_fields(summary)
    except ValueError as exc:
        raise ValueError(f"summary is not a valid template ({exc})") from None
    for name in fields:
        if not name or (name not in available and not (kind == "entry" and name in frame.columns)):
            raise ValueError(f"summary uses {{{name}}}, which is not a group field, a selected value, rule or severity")
