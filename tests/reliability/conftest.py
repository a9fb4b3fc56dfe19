"""Reliability suites: every entry recorded through `reliability.report` is
printed in pytest's terminal summary (what was injected, what survived)."""

from __future__ import annotations

import pytest

from reliability.report import recorded, summary_lines


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    lines = summary_lines(recorded())
    if not lines:
        return
    terminalreporter.section("reliability")
    for line in lines:
        terminalreporter.write_line(line)
