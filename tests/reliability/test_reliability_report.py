"""The reliability report: entries round-trip through the JSON-lines log, are
folded into totals, and `ok` fails on any fault, crash, loss or failed check."""

from __future__ import annotations

from pathlib import Path

import pytest

from reliability.report import (
    Entry,
    FaultResult,
    PytestSummary,
    Report,
    SecurityResult,
    SurfaceResult,
    build_report,
    read_log,
)
from reliability.run import SuitesNotFound, run_suites

GREEN = PytestSummary(exit_code=0, passed=3)


def _report(*entries: Entry, pytest_summary: PytestSummary = GREEN) -> Report:
    return build_report(
        entries,
        mode="quick",
        started_at="2026-01-01T00:00:00+00:00",
        duration_s=1.0,
        pytest=pytest_summary,
    )


def test_log_round_trip_and_surface_totals(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    entries = [
        FaultResult(name="f", injected="x", survived=True),
        SurfaceResult(surface="api", tried=10, refused=4, detail={"bodies": 10}),
        SurfaceResult(surface="api", tried=5, refused=5, detail={"bodies": 5}),
        SecurityResult(check="jwt", passed=True),
    ]
    log.write_text("".join(e.model_dump_json() + "\n" for e in entries))
    report = build_report(read_log(log), mode="full", started_at="t", duration_s=2.0, pytest=GREEN)
    assert report.ok
    assert [(s.surface, s.tried, s.refused, s.detail) for s in report.surfaces] == [
        ("api", 15, 9, {"bodies": 15})
    ]
    assert report.totals.inputs_tried == 15 and report.totals.faults_survived == 1
    assert '"schema": "switchboard/reliability/v1"' in report.as_json()


@pytest.mark.parametrize(
    "bad",
    [
        FaultResult(name="f", injected="x", survived=False),
        FaultResult(name="f", injected="x", survived=True, records_lost=1),
        SurfaceResult(surface="ws", tried=3, crashes=1),
        SecurityResult(check="cors", passed=False),
    ],
)
def test_any_failure_makes_the_report_not_ok(bad: Entry) -> None:
    assert not _report(FaultResult(name="ok", injected="x", survived=True), bad).ok


def test_a_failed_pytest_run_is_not_ok() -> None:
    assert not _report(pytest_summary=PytestSummary(exit_code=1, failed=1)).ok


def test_a_bad_log_line_is_named(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    log.write_text('{"kind": "fault", "name": "f"}\n')
    with pytest.raises(ValueError, match=r"log\.jsonl:1: not a reliability entry"):
        read_log(log)


def test_outside_a_checkout_the_runner_says_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(SuitesNotFound, match="source checkout"):
        run_suites(quick=True, root=tmp_path)
