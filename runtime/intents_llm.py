"""Intent classification by an LLM with structured output (`routing.classifier: llm`).

The model is shown every intent with its examples (and description, when given)
and must answer a JSON object `{"intent": <one of the names or "none">,
"confidence": <0..1>}`, enforced with OpenAI structured outputs
(`response_format: json_schema`, strict), the default method of
`ChatOpenAI.with_structured_output`. When the model is unavailable, fails, times
out or answers outside the schema, the turn is classified by the `fallback`
intent set (the embedded classifier), or as no intent.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, cast

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.constants import TAG_NOSTREAM
from langgraph.runtime import get_runtime
from pydantic import BaseModel, ConfigDict, Field, create_model

from nodes.base import IntentMatcher, IntentSetFactory
from runtime.context import CallContext
from runtime.intents import IntentConfigError, IntentMatch, make_intent_set
from runtime.llm import LLMUnavailable
from schemas.spec import GraphSpec, LLMSettings

NO_INTENT = "none"
#: Examples shown per intent; more only lengthen the prompt.
MAX_EXAMPLES = 20
MAX_TURN_CHARS = 2000

LLMFactory = Callable[[LLMSettings], BaseChatModel]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def choice_schema(names: Sequence[str]) -> type[BaseModel]:
    """The structured-output model: `intent` is one of `names` or "none"."""
    options = cast(Any, Literal)[(*names, NO_INTENT)]
    return create_model(
        "IntentChoice",
        __base__=_Strict,
        intent=(options, Field(description="The caller's intent, or none if none fits.")),
        confidence=(float, Field(description="How sure you are, from 0 to 1.")),
    )


def classification_prompt(
    intents: Mapping[str, Sequence[str]], descriptions: Mapping[str, str] | None = None
) -> str:
    """System prompt listing each intent with its description and examples."""
    lines = [
        "You classify what a caller on a phone call wants.",
        "Pick exactly one intent for the caller's utterance, or "
        f'"{NO_INTENT}" when none of them clearly fits.',
        "Give your confidence from 0 to 1.",
        "",
        "Intents:",
    ]
    for name, examples in intents.items():
        desc = (descriptions or {}).get(name)
        head = f"- {name}" + (f": {desc}" if desc else "")
        shown = "; ".join(f'"{e}"' for e in list(examples)[:MAX_EXAMPLES])
        lines.append(f"{head}. Examples: {shown}")
    return "\n".join(lines)


def _context_factory() -> LLMFactory | None:
    """The `llm_factory` of the call this code runs in, if inside a graph run."""
    try:
        context = get_runtime().context
    except RuntimeError:
        return None
    return context.llm_factory if isinstance(context, CallContext) else None


class LLMIntentSet:
    """Intents classified by a chat model, with an optional fallback classifier.

    The model comes from `model`, else `llm_factory(settings)`, else the
    `llm_factory` of the `CallContext` of the graph run `classify` is called in.
    `threshold`, when given, turns a lower self-reported confidence into no
    intent. Raises `IntentConfigError` for an empty set, blank names or an
    intent named "none".
    """

    def __init__(
        self,
        intents: Mapping[str, Sequence[str]],
        *,
        settings: LLMSettings | None = None,
        threshold: float | None = None,
        fallback: IntentMatcher | None = None,
        model: BaseChatModel | None = None,
        llm_factory: LLMFactory | None = None,
        descriptions: Mapping[str, str] | None = None,
    ) -> None:
        if not intents:
            raise IntentConfigError("an intent set needs at least one intent")
        for name in intents:
            if not isinstance(name, str) or not name.strip():
                raise IntentConfigError(f"intent name must be a non-empty string, got {name!r}")
            if name == NO_INTENT:
                raise IntentConfigError(f'intent name "{NO_INTENT}" is reserved for no intent')
        if threshold is not None and not 0.0 <= threshold <= 1.0:
            raise IntentConfigError(f"threshold must be between 0 and 1, got {threshold}")
        self.names = list(intents)
        self.threshold = threshold
        self.settings = settings or LLMSettings()
        self.fallback = fallback
        self._model = model
        self._llm_factory = llm_factory
        self._schema = choice_schema(self.names)
        self._system = classification_prompt(intents, descriptions)

    def _chat_model(self) -> BaseChatModel:
        if self._model is not None:
            return self._model
        factory = self._llm_factory or _context_factory()
        if factory is None:
            raise LLMUnavailable("no LLM is configured for intent classification")
        return factory(self.settings)

    async def classify_llm(self, text: str) -> IntentMatch:
        """Ask the model; raises on any model, transport or schema failure."""
        runnable = (
            self._chat_model()
            .with_structured_output(self._schema, method="json_schema", strict=True)
            .with_config(tags=[TAG_NOSTREAM])
        )
        answer = await runnable.ainvoke(
            [SystemMessage(self._system), HumanMessage(text[:MAX_TURN_CHARS])]
        )
        if not isinstance(answer, self._schema):
            raise ValueError(f"model answer does not match the intent schema: {answer!r}")
        intent = str(getattr(answer, "intent", NO_INTENT))
        confidence = float(getattr(answer, "confidence", 0.0))
        confidence = 0.0 if math.isnan(confidence) else min(1.0, max(0.0, confidence))
        name = intent if intent in self.names else None
        scores = {n: (confidence if n == name else 0.0) for n in self.names}
        if name is not None and self.threshold is not None and confidence < self.threshold:
            name = None
        return IntentMatch(name, confidence if name is not None else 0.0, scores)

    async def classify(self, text: str) -> IntentMatch:
        """Classify one caller turn; never raises for model trouble.

        `scores` holds the chosen intent's confidence and 0 for the others (the
        model reports one confidence). On failure the fallback set answers, or
        the turn has no intent with confidence 0.
        """
        if not text.strip():
            return IntentMatch(None, 0.0, dict.fromkeys(self.names, 0.0))
        try:
            return await self.classify_llm(text)
        except Exception:  # provider trouble: the embedded classifier takes over
            if self.fallback is not None:
                match = await self.fallback.classify(text)
                return cast(IntentMatch, match)
            return IntentMatch(None, 0.0, dict.fromkeys(self.names, 0.0))


def make_llm_intent_set_factory(
    graph: GraphSpec,
    *,
    llm_factory: LLMFactory | None = None,
    fallback: IntentSetFactory | None = make_intent_set,
) -> IntentSetFactory:
    """An `IntentSetFactory` for a graph routed by LLM: each set uses the graph's
    LLM settings and falls back to an embedded intent set (built eagerly, so the
    fallback is ready when the provider is not). `fallback=None` disables it."""
    settings = graph.llm or LLMSettings()

    def factory(intents: dict[str, list[str]], threshold: float | None) -> IntentMatcher:
        backup = fallback(intents, threshold) if fallback is not None else None
        return LLMIntentSet(
            intents,
            settings=settings,
            threshold=threshold,
            fallback=backup,
            llm_factory=llm_factory,
        )

    return factory
