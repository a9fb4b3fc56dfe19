"""Collect every conversation test file here as pytest items (one per case)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runtime.compiler import CompiledCall
from runtime.convtest import (
    CaseResult,
    compile_for_tests,
    default_tools_factory,
    load_conversation_file,
    run_case,
)

_compiled: dict[Path, CompiledCall] = {}


def pytest_collect_file(parent: pytest.Collector, file_path: Path) -> pytest.Collector | None:
    if file_path.suffix in (".yaml", ".yml") and file_path.parent == Path(__file__).parent:
        return ConversationFile.from_parent(parent, path=file_path)
    return None


class ConversationFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        conv = load_conversation_file(self.path)
        for case in conv.cases:
            yield ConversationCase.from_parent(self, name=str(case.get("name")), case=case)


class ConversationFailed(Exception):
    pass


class ConversationCase(pytest.Item):
    def __init__(self, *, case: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.case = case

    def runtest(self) -> None:
        conv = load_conversation_file(self.path)
        if conv.graph_path not in _compiled:
            _compiled[conv.graph_path] = compile_for_tests(conv.graph_path)
        result: CaseResult = asyncio.run(
            run_case(conv, self.case, _compiled[conv.graph_path], default_tools_factory)
        )
        if not result.passed:
            raise ConversationFailed(result)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, ConversationFailed):
            result: CaseResult = excinfo.value.args[0]
            return "\n".join([*result.failures, "transcript:", *result.transcript])
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"conversation: {self.name}"
