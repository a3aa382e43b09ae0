"""What a verification returns: one ``CheckResult`` per named check, and the day's ``VerifyResult``."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

PASS, WARN, FAIL, SKIP = "PASS", "WARN", "FAIL", "SKIP"


@dataclass
class CheckResult:
    """One named check: what it found (errors, warnings) and the figures behind it."""

    name: str
    title: str
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)
    summary: str = ""  # one line on what passed, for the report; empty when the check failed or was skipped
    skipped: str | None = None  # why the check could not run

    @property
    def status(self) -> str:
        if self.errors:
            return FAIL
        if self.skipped is not None:
            return SKIP
        return WARN if self.warnings else PASS

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "title": self.title, "status": self.status, "errors": self.errors,
            "warnings": self.warnings, "summary": self.summary, "skipped": self.skipped, "figures": self.figures,
        }


@dataclass
class VerifyResult:
    """The verification of one day: every check in order, and the day's verdict."""

    day: date
    location: str  # the day folder
    checks: list[CheckResult]
    layout: str | None = None
    seconds: float = 0.0
    label: str | None = None  # an hour's or a bundle's partition (YYYY-MM-DD/HH, YYYY-MM); None: the day
    #: the partition's state, in the words of list_days and status (states.PartitionState); None: not known
    state: str | None = None

    @property
    def name(self) -> str:
        """What was verified: the day, ``YYYY-MM-DDTHH`` for an hour, ``YYYY-MM`` for a bundle."""
        return self.label.replace("/", "T") if self.label else self.day.isoformat()

    @property
    def errors(self) -> list[str]:
        return [f"{c.name}: {e}" for c in self.checks for e in c.errors]

    @property
    def warnings(self) -> list[str]:
        return [f"{c.name}: {w}" for c in self.checks for w in c.warnings]

    @property
    def ok(self) -> bool:
        """True when no check failed (warnings allowed)."""
        return not self.errors

    @property
    def status(self) -> str:
        """PASS, WARN (usable, with warnings) or FAIL."""
        if self.errors:
            return FAIL
        return WARN if self.warnings else PASS

    @property
    def figures(self) -> dict[str, Any]:
        """Every check's figures in one dict (sizes, row counts, null ratios, futures share...)."""
        merged: dict[str, Any] = {}
        for check in self.checks:
            merged.update(check.figures)
        return merged

    def check(self, name: str) -> CheckResult:
        for check in self.checks:
            if check.name == name:
                return check
        raise KeyError(f"no check named {name!r} (checks: {', '.join(c.name for c in self.checks)})")

    def summary(self) -> str:
        """The human summary: one line for the day, then one per failure or warning."""
        figures = self.figures
        parts = []
        if "parquet_rows" in figures:
            parts.append(f"{figures['parquet_rows']} rows")
        if self.layout:
            parts.append(self.layout)
        if figures.get("data_size_bytes") is not None:
            parts.append(f"{figures['data_size_bytes'] / 1e6:.1f} MB")
        passed = sum(c.status == PASS for c in self.checks)
        parts.append(f"{passed}/{len(self.checks)} checks passed")
        if self.state is not None and self.state != "published":
            parts.append(str(self.state))  # partial, unpublished, damaged...: the words of status and scan
        lines = [f"{self.name} {self.status}: {', '.join(parts)} ({self.location})"]
        for check in self.checks:
            lines += [f"  FAIL {check.name}: {e}" for e in check.errors]
            lines += [f"  WARN {check.name}: {w}" for w in check.warnings]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "date": self.name, "location": self.location, "status": self.status,
            "state": str(self.state) if self.state is not None else None, "layout": self.layout,
            "errors": self.errors, "warnings": self.warnings, "seconds": round(self.seconds, 3),
            "checks": [c.to_dict() for c in self.checks], "figures": self.figures,
        }


def unreadable_result(day: date, location: str, error: Exception) -> VerifyResult:
    """A failed VerifyResult for a day whose location could not be read at all."""
    return VerifyResult(day, str(location), [CheckResult("location", "location readable", errors=[str(error)])])
