"""What a compiled graph needs from its surroundings while a call runs.

Passed per run through LangGraph's `context=` so that one compiled graph serves
every call: the clock (fake in tests), the tool registry and the LLM factory.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from tools.registry import ToolRegistry

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from schemas.spec import LLMSettings


def _now() -> datetime:
    return datetime.now().astimezone()


@dataclass
class CallContext:
    tools: ToolRegistry = field(default_factory=ToolRegistry)
    clock: Callable[[], datetime] = _now
    llm_factory: Callable[[LLMSettings], BaseChatModel] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
