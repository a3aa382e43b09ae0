"""Evaluating alert rules (``rules.py``) on tier1 rows, on the entries' own event time.

Entries are evaluated a burst at a time: all rows of one event time ``t`` (the collector writes a
burst's entries with one ``meta.expired_ts``) form one evaluation at ``t``. Live, a burst is
evaluated once it is complete: when a row of a later event time arrives, or when no row of it has
arrived for ``settle_s`` seconds of wall time (``tick``). A backtest pushes a whole range and
``flush``es: the evaluations, and so the alerts, are the same for the same entries. A row that
arrives after its burst was evaluated (``late``) joins the next evaluation.

Each rule keeps one instance per group (``group_by``), with Prometheus' states: ``inactive`` ->
``pending`` (the condition holds, for less than ``for``) -> ``firing`` -> ``resolved`` (kept
``RESOLVED_KEEP_S`` for display), and ``keep_firing_for`` (firing goes on that long after the
condition stops holding). ``cooldown`` holds a resolved instance back from firing again for that
long. ``entry`` conditions hold until the group's next entry says otherwise; ``window``
conditions are recomputed at every evaluation; ``absent`` rules use the wall clock (``tick``)
live, and event time in a backtest (``wall_clock=False``).

Transitions to ``firing`` and ``resolved`` are returned as notification records, each with a
dedupe ``key`` (rule, labels, firing time, status) so that a receiver can drop repeats.
"""

from __future__ import annotations

import base64
import hashlib
import io
from datetime import datetime, timezone

import orjson
import polars as pl

from .rules import Rule, RuleSet, template_fields

#: The tier1 field that holds the event time (``meta.expired_ts``).
TIME_FIELD = "expired_ts"
RESOLVED_KEEP_S = 900.0
_COND = "__cond"


def iso(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def event_seconds(frame: pl.DataFrame, time_field: str) -> pl.Series:
    """The event time of each row as float seconds since the epoch (UTC)."""
    column = frame.get_column(time_field)
    if column.dtype == pl.String:
        column = column.str.to_datetime(time_zone="UTC", time_unit="us")
    if isinstance(column.dtype, pl.Datetime):
        return column.dt.epoch("us").cast(pl.Float64) / 1e6
    return column.cast(pl.Float64)


class AlertEngine:
    """The rules' instances and windows. ``push`` rows, ``tick`` the wall clock, ``flush`` at the
    end of a backtest; each returns the notification records of the transitions it caused."""

    def __init__(self, ruleset: RuleSet, *, time_field: str = TIME_FIELD, settle_s: float = 5.0,
                 wall_clock: bool = True, state: dict | None = None):
        self.ruleset = ruleset
        self.rules = {rule.name: rule for rule in ruleset.rules}
        self.time_field = time_field
        self.settle_s = settle_s
        self.wall_clock = wall_clock
        self.instances: dict[str, dict[str, dict]] = {name: {} for name in self.rules}
        self.windows: dict[str, pl.DataFrame | None] = {name: None for name in self.rules}
        self.last_seen: dict[str, dict[str, list]] = {name: {} for name in self.rules}
        self.pending: pl.DataFrame | None = None   # rows not evaluated yet (+ column __t)
        self.pending_arrival = 0.0                  # wall time the newest pending row arrived
        self.evaluated_t: float | None = None       # the last evaluation's event time
        self.started = None
        self.last_seq = 0                           # kept for the caller (the journal cursor)
        if state:
            self._load(state)

    # -- input -------------------------------------------------------------------------------------
    def push(self, frame: pl.DataFrame, *, now: float | None = None) -> list[dict]:
        """Add tier1 rows; evaluate every burst that is now complete."""
        if frame.height == 0:
            return []
        frame = frame.with_columns(event_seconds(frame, self.time_field).alias("__t")).filter(pl.col("__t").is_not_null())
        if frame.height == 0:  # rows that are not entries (``problem``) have no event time
            return []
        if self.started is None:
            self.started = float(frame["__t"].min()) if not self.wall_clock or now is None else now
        if self.wall_clock and now is not None:
            for rule in self.rules.values():
                self._seen_absent(rule, frame, now)
        self.pending = frame if self.pending is None else pl.concat([self.pending, frame], how="diagonal_relaxed")
        self.pending_arrival = now if now is not None else self.pending_arrival
        newest = float(self.pending["__t"].max())
        return self._evaluate_until(newest, inclusive=False)

    def tick(self, now: float) -> list[dict]:
        """Wall-clock step: evaluate the newest burst once settled, and the absent rules."""
        out: list[dict] = []
        if self.pending is not None and now - self.pending_arrival >= self.settle_s:
            out += self.flush()
        if self.wall_clock:
            if self.started is None:
                self.started = now
            for rule in self.rules.values():
                if rule.kind == "absent":
                    out += self._absent(rule, now)
        return out

    def flush(self) -> list[dict]:
        """Evaluate every row pushed so far (the end of a backtest)."""
        if self.pending is None:
            return []
        return self._evaluate_until(float(self.pending["__t"].max()), inclusive=True)

    # -- output ------------------------------------------------------------------------------------
    def alerts(self, states=("pending", "firing", "resolved")) -> list[dict]:
        """The instances in ``states``, as ``/v1/alerts`` shows them."""
        out = []
        for name, instances in self.instances.items():
            for inst in instances.values():
                if inst["state"] in states:
                    out.append(self._record(self.rules[name], inst, inst["state"], inst.get("last_eval")))
        return out

    def firing_count(self) -> int:
        return sum(inst["state"] == "firing" for instances in self.instances.values() for inst in instances.values())

    # -- evaluation --------------------------------------------------------------------------------
    def _evaluate_until(self, limit: float, inclusive: bool) -> list[dict]:
        out: list[dict] = []
        if self.pending is None:
            return out
        times = sorted(set(self.pending["__t"].to_list()))
        ready = [t for t in times if t < limit or (inclusive and t <= limit)]
        if not ready:
            return out
        late = self.pending.filter(pl.col("__t") <= (self.evaluated_t if self.evaluated_t is not None else float("-inf")))
        rest = self.pending.filter(pl.col("__t") > (self.evaluated_t if self.evaluated_t is not None else float("-inf")))
        ready = [t for t in ready if self.evaluated_t is None or t > self.evaluated_t]
        if not ready:  # only late rows: they wait for the next burst (or the end of a backtest)
            if not inclusive:
                return out
            out = self._evaluate(self.evaluated_t, late)
            self.pending = None
            return out
        for number, t in enumerate(ready):
            rows = rest.filter(pl.col("__t") == t)
            if number == 0 and late.height:
                rows = pl.concat([late, rows], how="diagonal_relaxed")
            out += self._evaluate(t, rows)
            self.evaluated_t = t
        remaining = rest.filter(pl.col("__t") > ready[-1])
        self.pending = remaining if remaining.height else None
        return out

    def _evaluate(self, t: float, rows: pl.DataFrame) -> list[dict]:
        out: list[dict] = []
        for rule in self.rules.values():
            if rule.kind == "entry":
                observed = self._entry(rule, rows)
                out += self._advance(rule, t, observed, keep_unseen=True)
            elif rule.kind == "window":
                out += self._advance(rule, t, self._window(rule, t, rows), keep_unseen=False)
            elif not self.wall_clock:  # backtest: the clock is event time, stopping where a silence ends
                seen = self.last_seen[rule.name]
                if not rule.group_by and "[]" not in seen:
                    seen["[]"] = [{}, self.started]
                previous = self.evaluated_t if self.evaluated_t is not None else float("-inf")
                moments = {last + rule.after_s + extra for _, last in seen.values() for extra in (0.0, rule.for_s)}
                for moment in sorted(m for m in moments if previous < m < t):
                    out += self._absent(rule, moment)
                self._seen_absent(rule, rows, None)
                out += self._absent(rule, t)
        out.sort(key=lambda record: record["at"])  # stable: rule order within one moment
        return out

    def _entry(self, rule: Rule, rows: pl.DataFrame) -> dict[str, tuple]:
        extra = [c for c in template_fields(rule.summary) if c in rows.columns and c not in rule.group_by]
        frame = rows.with_columns(rule.where_expr().fill_null(False).alias(_COND), *rule.select_exprs())
        names = rule.value_names() + [c for c in extra if c not in rule.value_names()]
        observed: dict[str, tuple] = {}
        for row in frame.select([*rule.group_by, _COND, *names]).to_dicts():
            group = {g: row[g] for g in rule.group_by}
            key = _key(group)
            if row[_COND] or key not in observed:
                observed[key] = (bool(row[_COND]), group, {n: row[n] for n in names})
        return observed

    def _window(self, rule: Rule, t: float, rows: pl.DataFrame) -> dict[str, tuple]:
        keep = sorted({"__t", *rule.group_by, *_roots(rule)})
        fresh = rows.select([c for c in keep if c in rows.columns])
        if rule.filter:
            fresh = fresh.filter(rule.filter_expr().fill_null(False))
        buffer = self.windows[rule.name]
        buffer = fresh if buffer is None else pl.concat([buffer, fresh], how="diagonal_relaxed")
        buffer = buffer.filter(pl.col("__t") > t - rule.window_s)
        self.windows[rule.name] = buffer
        if rule.group_by:
            agg = buffer.group_by(list(rule.group_by), maintain_order=True).agg(rule.select_exprs())
        else:
            agg = buffer.select(rule.select_exprs())
        agg = agg.with_columns(rule.where_expr().fill_null(False).alias(_COND))
        names = rule.value_names()
        observed = {}
        for row in agg.to_dicts():
            group = {g: row[g] for g in rule.group_by}
            observed[_key(group)] = (bool(row[_COND]), group, {n: row[n] for n in names})
        return observed

    def _seen_absent(self, rule: Rule, rows: pl.DataFrame, now: float | None) -> None:
        if rule.kind == "absent":
            matching = rows.filter(rule.where_expr().fill_null(False)) if rule.where else rows
            for row in matching.select([*rule.group_by, "__t"]).to_dicts():
                group = {g: row[g] for g in rule.group_by}
                seen = row["__t"] if now is None else now
                previous = self.last_seen[rule.name].get(_key(group))
                if previous is None or seen > previous[1]:
                    self.last_seen[rule.name][_key(group)] = [group, seen]

    def _absent(self, rule: Rule, now: float) -> list[dict]:
        seen = self.last_seen[rule.name]
        if not rule.group_by and "[]" not in seen:
            seen["[]"] = [{}, self.started if self.started is not None else now]
        observed = {}
        for key, (group, last) in seen.items():
            silent = now - last
            observed[key] = (silent >= rule.after_s, group, {"silent_s": round(silent, 3), "last_seen": iso(last)})
        return self._advance(rule, now, observed, keep_unseen=False)

    def _advance(self, rule: Rule, t: float, observed: dict[str, tuple], keep_unseen: bool) -> list[dict]:
        """One evaluation at ``t`` of every instance of ``rule``: the Prometheus state machine."""
        instances = self.instances[rule.name]
        out = []
        for key in set(instances) | set(observed):
            inst = instances.get(key)
            if key in observed:
                cond, group, values = observed[key]
            elif keep_unseen and inst is not None:
                cond, group, values = inst["cond"], inst["group"], inst["values"]
            else:
                cond, group, values = False, inst["group"], inst["values"]
            if inst is None:
                if not cond:
                    continue
                inst = instances[key] = {"state": "inactive", "group": group, "cooldown_until": None}
            inst.update(cond=cond, last_eval=t)
            if cond:
                inst["values"] = values
            state = inst["state"]
            if cond:
                inst["keep_firing_since"] = None
                if state in ("inactive", "resolved"):
                    inst.update(state="pending", active_at=t, fired_at=None, resolved_at=None)
                if inst["state"] == "pending" and t - inst["active_at"] >= rule.for_s and \
                        (inst["cooldown_until"] is None or t >= inst["cooldown_until"]):
                    inst.update(state="firing", fired_at=t)
                    out.append(self._record(rule, inst, "firing", t))
            elif state == "pending":
                inst["state"] = "inactive"
            elif state == "firing":
                since = inst.get("keep_firing_since") or t
                inst["keep_firing_since"] = since
                if t - since >= rule.keep_firing_for_s:
                    inst.update(state="resolved", resolved_at=t, cooldown_until=t + rule.cooldown_s)
                    out.append(self._record(rule, inst, "resolved", t))
            if inst["state"] == "inactive" and (inst["cooldown_until"] is None or t >= inst["cooldown_until"]):
                del instances[key]
            elif inst["state"] == "resolved" and t - inst["resolved_at"] >= max(RESOLVED_KEEP_S, rule.cooldown_s):
                del instances[key]
        out.sort(key=lambda record: (record["status"], orjson.dumps(record["labels"], option=orjson.OPT_SORT_KEYS)))
        return out

    def _record(self, rule: Rule, inst: dict, status: str, t: float | None) -> dict:
        labels = {"alertname": rule.name, "severity": rule.severity, **rule.labels,
                  **{g: _label(v) for g, v in inst["group"].items()}}
        values = inst.get("values") or {}
        context = {"rule": rule.name, "severity": rule.severity, **inst["group"], **values}
        try:
            summary = rule.summary.format_map(context)
        except (KeyError, ValueError, TypeError, IndexError):  # a value of another type, or null
            summary = rule.summary.format_map(_Lenient(context))
        fired = inst.get("fired_at")
        key_text = orjson.dumps([rule.name, labels, fired, status], option=orjson.OPT_SORT_KEYS)
        return {"key": hashlib.sha256(key_text).hexdigest()[:24], "rule": rule.name, "kind": rule.kind,
                "status": status, "severity": rule.severity, "labels": labels, "values": values,
                "summary": summary, "active_at": iso(inst.get("active_at")), "fired_at": iso(fired),
                "resolved_at": iso(inst.get("resolved_at")), "at": iso(t), "notify": list(rule.notify)}

    # -- persistence -------------------------------------------------------------------------------
    def state(self) -> dict:
        """Everything needed to go on after a restart without repeating a notification."""
        return {"version": 1, "instances": self.instances, "last_seen": self.last_seen,
                "windows": {n: _frame_out(f) for n, f in self.windows.items()},
                "pending": _frame_out(self.pending), "pending_arrival": self.pending_arrival,
                "evaluated_t": self.evaluated_t, "started": self.started, "last_seq": self.last_seq}

    def _load(self, state: dict) -> None:
        for name in self.rules:  # rules removed from the file are forgotten; new ones start empty
            self.instances[name] = state.get("instances", {}).get(name, {})
            self.last_seen[name] = state.get("last_seen", {}).get(name, {})
            self.windows[name] = _frame_in(state.get("windows", {}).get(name))
        self.pending = _frame_in(state.get("pending"))
        self.pending_arrival = state.get("pending_arrival", 0.0)
        self.evaluated_t = state.get("evaluated_t")
        self.started = state.get("started")
        self.last_seq = state.get("last_seq", 0)


class _Lenient(dict):
    def __missing__(self, key):
        return "?"

    def __getitem__(self, key):
        return _Text(str(super().get(key, "?")))


class _Text(str):
    def __format__(self, spec):
        return str(self)


def _label(value) -> str:
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def _key(group: dict) -> str:
    return orjson.dumps(list(group.values()), default=str).decode()


def _roots(rule: Rule) -> set[str]:
    names: set[str] = set()
    for text in (rule.filter, *rule.select):
        if text:
            names.update(pl.sql_expr(text).meta.root_names())
    return names


def _frame_out(frame: pl.DataFrame | None) -> str | None:
    if frame is None:
        return None
    buffer = io.BytesIO()
    frame.write_ipc(buffer)
    return base64.b64encode(buffer.getvalue()).decode()


def _frame_in(text: str | None) -> pl.DataFrame | None:
    return None if not text else pl.read_ipc(io.BytesIO(base64.b64decode(text)))
