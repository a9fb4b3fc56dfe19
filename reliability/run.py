"""Run the reliability suites (tests/reliability of a source checkout) in a
pytest subprocess and fold what they recorded into the report."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from reliability.report import FULL_ENV, LOG_ENV, PytestSummary, Report, build_report, read_log

ROOT = Path(__file__).resolve().parents[1]
SUITES = Path("tests") / "reliability"


class SuitesNotFound(FileNotFoundError):
    """The reliability suites are not where a source checkout keeps them."""


def _summary(junit: Path, exit_code: int) -> PytestSummary:
    if not junit.exists():
        return PytestSummary(exit_code=exit_code)
    root = ET.parse(junit).getroot()
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    if suite is None:
        return PytestSummary(exit_code=exit_code)
    tests, failed, errors, skipped = (
        int(suite.get(k, "0")) for k in ("tests", "failures", "errors", "skipped")
    )
    return PytestSummary(
        exit_code=exit_code,
        passed=tests - failed - errors - skipped,
        failed=failed,
        skipped=skipped,
        errors=errors,
    )


def run_suites(
    *,
    quick: bool,
    root: Path = ROOT,
    pytest_args: Sequence[str] = (),
    output: IO[str] | None = None,
) -> Report:
    """Run tests/reliability under `root` (quick variants, or the full ones)
    and return the report. pytest's own output goes to `output` (default
    stderr), so the report can own stdout. Raises SuitesNotFound outside a
    source checkout."""
    suites = root / SUITES
    if not suites.is_dir():
        raise SuitesNotFound(
            f"the reliability suites are not at {suites}: run this from a source checkout"
        )
    started = datetime.now(UTC)
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="switchboard-reliability-") as tmp:
        log, junit = Path(tmp) / "entries.jsonl", Path(tmp) / "junit.xml"
        env = {**os.environ, LOG_ENV: str(log), FULL_ENV: "0" if quick else "1"}
        command = [sys.executable, "-m", "pytest", str(SUITES), "-q", "-p", "no:cacheprovider"]
        command += [f"--junitxml={junit}", *pytest_args]
        done = subprocess.run(
            command,
            cwd=root,
            env=env,
            stdout=output or sys.stderr,
            stderr=subprocess.STDOUT,
            check=False,
        )
        summary = _summary(junit, done.returncode)
        entries = read_log(log)
    return build_report(
        entries,
        mode="quick" if quick else "full",
        started_at=started.isoformat(timespec="seconds"),
        duration_s=time.monotonic() - began,
        pytest=summary,
    )
