"""The reliability report that `switchboard reliability [--quick]` prints as JSON.

Contract for every suite under tests/reliability (faults, hostile input,
security, soak) — call these from a test once its outcome is known, then assert
as usual (a recorded entry never replaces an assertion):

    from reliability.report import (
        record_fault, record_surface, record_security, record_soak, full_mode
    )

    record_fault("worker-sigkill", injected="SIGKILL of worker A after turn 2",
                 survived=True, observed={"turns_in_db": 4}, records_lost=0)
    record_surface("graph-files", tried=500, refused=480, crashes=0,
                   detail={"yaml_bombs": 12})
    record_security("jwt-alg-none", passed=True, detail="401 for alg=none")
    record_soak("service-quick", within_bounds=True,
                figures={"duration_s": 20, "calls": 150, "rss_growth_mb": 1.2})

    if full_mode(): ...   # the long variant (10-minute soak, more fuzz examples)

Each call validates its entry, keeps it in this process (the reliability
conftest prints them in pytest's terminal summary) and, when
$SWITCHBOARD_RELIABILITY_LOG names a file, appends it there as one JSON line
(the runner sets it; several pytest processes may append). `build_report`
folds the lines into the report below. `records_lost` counts call records
(turns, outcomes, calls) that a fault made disappear: the suites must keep it 0.

Report (schema "switchboard/reliability/v1"):

    {"schema", "mode": "quick"|"full", "started_at", "duration_s",
     "pytest": {"exit_code", "passed", "failed", "skipped", "errors"},
     "faults":   [{"name", "injected", "survived", "records_lost", "observed"}],
     "surfaces": [{"surface", "tried", "refused", "crashes", "detail"}],   # summed per surface
     "security": [{"check", "passed", "detail"}],
     "soak":     [{"name", "within_bounds", "figures"}],
     "totals": {"faults_injected", "faults_survived", "inputs_tried", "crashes",
                "security_checks", "security_passed", "records_lost"},
     "ok": bool}   # pytest passed, every fault survived, 0 crashes, 0 lost, all checks passed
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

SCHEMA = "switchboard/reliability/v1"
LOG_ENV = "SWITCHBOARD_RELIABILITY_LOG"
FULL_ENV = "SWITCHBOARD_RELIABILITY_FULL"

Name = Annotated[str, Field(min_length=1, max_length=200)]


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FaultResult(_Entry):
    """One injected fault: what was done, whether the call survived it as the
    guarantee says, what was seen, and how many call records it lost."""

    kind: Literal["fault"] = "fault"
    name: Name
    injected: str
    survived: bool
    records_lost: int = Field(default=0, ge=0)
    observed: dict[str, Any] = Field(default_factory=dict)


class SurfaceResult(_Entry):
    """Hostile inputs tried against one surface: how many, how many refused
    with a clear error, how many crashed (traceback, 5xx, hang): must be 0."""

    kind: Literal["surface"] = "surface"
    surface: Name
    tried: int = Field(ge=0)
    refused: int = Field(default=0, ge=0)
    crashes: int = Field(default=0, ge=0)
    detail: dict[str, Any] = Field(default_factory=dict)


class SecurityResult(_Entry):
    """One security property checked."""

    kind: Literal["security"] = "security"
    check: Name
    passed: bool
    detail: str = ""


class SoakResult(_Entry):
    """A soak run's figures (duration, calls, memory, tasks, fds) and whether
    they stayed within the stated bounds."""

    kind: Literal["soak"] = "soak"
    name: Name
    within_bounds: bool
    figures: dict[str, Any] = Field(default_factory=dict)


Entry = Annotated[
    FaultResult | SurfaceResult | SecurityResult | SoakResult, Field(discriminator="kind")
]
_ENTRY: TypeAdapter[Entry] = TypeAdapter(Entry)


class PytestSummary(BaseModel):
    exit_code: int
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    errors: int = 0


class Totals(BaseModel):
    faults_injected: int
    faults_survived: int
    inputs_tried: int
    crashes: int
    security_checks: int
    security_passed: int
    records_lost: int


class Report(BaseModel):
    """The whole report (see module docstring)."""

    schema_: str = Field(default=SCHEMA, alias="schema")
    mode: Literal["quick", "full"]
    started_at: str
    duration_s: float
    pytest: PytestSummary
    faults: list[FaultResult]
    surfaces: list[SurfaceResult]
    security: list[SecurityResult]
    soak: list[SoakResult]
    totals: Totals
    ok: bool

    def as_json(self) -> str:
        """The report as indented JSON, keys as documented."""
        return self.model_dump_json(by_alias=True, indent=2)


_recorded: list[Entry] = []
_lock = threading.Lock()


def full_mode() -> bool:
    """True when the long variants should run ($SWITCHBOARD_RELIABILITY_FULL=1,
    set by `switchboard reliability` without --quick); default pytest runs are quick."""
    return os.environ.get(FULL_ENV, "").strip().lower() in ("1", "true", "yes")


def _keep(entry: Entry) -> Entry:
    line = entry.model_dump_json()
    with _lock:
        _recorded.append(entry)
        target = os.environ.get(LOG_ENV, "").strip()
        if target:
            # One short write per line in append mode: lines of concurrent
            # writers do not interleave.
            with Path(target).open("a", encoding="utf-8") as f:
                f.write(line + "\n")
    return entry


def record_fault(
    name: str,
    *,
    injected: str,
    survived: bool,
    observed: Mapping[str, Any] | None = None,
    records_lost: int = 0,
) -> FaultResult:
    """Add a fault's result to the report; returns the validated entry."""
    entry = FaultResult(
        name=name,
        injected=injected,
        survived=survived,
        observed=dict(observed or {}),
        records_lost=records_lost,
    )
    _keep(entry)
    return entry


def record_surface(
    surface: str,
    *,
    tried: int,
    refused: int = 0,
    crashes: int = 0,
    detail: Mapping[str, Any] | None = None,
) -> SurfaceResult:
    """Add hostile inputs tried on a surface (entries of one surface are summed)."""
    entry = SurfaceResult(
        surface=surface, tried=tried, refused=refused, crashes=crashes, detail=dict(detail or {})
    )
    _keep(entry)
    return entry


def record_security(check: str, *, passed: bool, detail: str = "") -> SecurityResult:
    """Add one security check's result."""
    entry = SecurityResult(check=check, passed=passed, detail=detail)
    _keep(entry)
    return entry


def record_soak(
    name: str, *, within_bounds: bool, figures: Mapping[str, Any] | None = None
) -> SoakResult:
    """Add a soak run's figures."""
    entry = SoakResult(name=name, within_bounds=within_bounds, figures=dict(figures or {}))
    _keep(entry)
    return entry


def recorded() -> list[Entry]:
    """The entries recorded in this process so far, in order."""
    with _lock:
        return list(_recorded)


def read_log(path: Path) -> list[Entry]:
    """The entries of a JSON-lines log; ValueError naming the line when one is
    not a valid entry. A missing file holds no entries."""
    if not path.exists():
        return []
    entries: list[Entry] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            entries.append(_ENTRY.validate_json(line))
        except ValidationError as exc:
            raise ValueError(f"{path}:{number}: not a reliability entry: {exc}") from None
    return entries


def _merge_surfaces(items: Iterable[SurfaceResult]) -> list[SurfaceResult]:
    merged: dict[str, SurfaceResult] = {}
    for s in items:
        old = merged.get(s.surface)
        if old is None:
            merged[s.surface] = s
            continue
        detail = dict(old.detail)
        for key, value in s.detail.items():
            both_numbers = isinstance(value, int | float) and isinstance(
                detail.get(key), int | float
            )
            detail[key] = detail[key] + value if both_numbers else value
        merged[s.surface] = SurfaceResult(
            surface=s.surface,
            tried=old.tried + s.tried,
            refused=old.refused + s.refused,
            crashes=old.crashes + s.crashes,
            detail=detail,
        )
    return list(merged.values())


def build_report(
    entries: Iterable[Entry],
    *,
    mode: Literal["quick", "full"],
    started_at: str,
    duration_s: float,
    pytest: PytestSummary,
) -> Report:
    """Fold entries into the report; `ok` only when pytest passed (exit 0),
    every fault survived, nothing crashed, nothing was lost and every security
    check and soak bound held."""
    items = list(entries)
    faults = [e for e in items if isinstance(e, FaultResult)]
    surfaces = _merge_surfaces(e for e in items if isinstance(e, SurfaceResult))
    security = [e for e in items if isinstance(e, SecurityResult)]
    soak = [e for e in items if isinstance(e, SoakResult)]
    totals = Totals(
        faults_injected=len(faults),
        faults_survived=sum(f.survived for f in faults),
        inputs_tried=sum(s.tried for s in surfaces),
        crashes=sum(s.crashes for s in surfaces),
        security_checks=len(security),
        security_passed=sum(s.passed for s in security),
        records_lost=sum(f.records_lost for f in faults),
    )
    ok = (
        pytest.exit_code == 0
        and totals.faults_survived == totals.faults_injected
        and totals.crashes == 0
        and totals.records_lost == 0
        and totals.security_passed == totals.security_checks
        and all(s.within_bounds for s in soak)
    )
    return Report.model_validate(
        {
            "schema": SCHEMA,
            "mode": mode,
            "started_at": started_at,
            "duration_s": round(duration_s, 3),
            "pytest": pytest,
            "faults": faults,
            "surfaces": surfaces,
            "security": security,
            "soak": soak,
            "totals": totals,
            "ok": ok,
        }
    )


def summary_lines(entries: Iterable[Entry]) -> list[str]:
    """One human-readable line per entry, for pytest's terminal summary."""
    lines = []
    for e in entries:
        if isinstance(e, FaultResult):
            verdict = "survived" if e.survived else "NOT SURVIVED"
            lines.append(
                f"fault {e.name}: {verdict}, lost {e.records_lost}; injected: {e.injected}; "
                f"observed: {json.dumps(e.observed, default=str, sort_keys=True)}"
            )
        elif isinstance(e, SurfaceResult):
            lines.append(
                f"surface {e.surface}: tried {e.tried}, refused {e.refused}, crashes {e.crashes}"
            )
        elif isinstance(e, SecurityResult):
            lines.append(f"security {e.check}: {'pass' if e.passed else 'FAIL'} {e.detail}")
        else:
            verdict = "within bounds" if e.within_bounds else "OUT OF BOUNDS"
            lines.append(f"soak {e.name}: {verdict} {json.dumps(e.figures, default=str)}")
    return lines
