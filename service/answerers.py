"""The answerers a service offers, which one answers a request, and what stands in when it fails.

`extractive` is always there; `generative` only when an LLM is configured. When the generative
answer fails (the LLM unreachable, too slow, in error, or no sentence of its draft verified), the
fallback decides: `extractive` answers in its place and the answer says why; `abstain` keeps the
generative abstention, and an LLM that fails is a 503 with the reason.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Protocol, runtime_checkable

from index.embedder import Embedder, Vectors
from index.retrieve import Hit
from index.store import Index
from service.answering import Answer, Answerer, AnswererFactory, AnswerPart
from service.errors import ChanceryError
from service.llm import LlmError, LlmOptions

log = logging.getLogger("chancery")

EXTRACTIVE = "extractive"


class Fallback(StrEnum):
    EXTRACTIVE = "extractive"
    ABSTAIN = "abstain"


@runtime_checkable
class Tunable(Protocol):
    """An answerer whose LLM takes per-request options (temperature, answer length)."""

    def tuned(self, options: LlmOptions) -> Answerer: ...


class AnswererUnavailableError(ChanceryError):
    """A request asked for an answerer this service does not offer."""

    status = 400


@dataclass(frozen=True)
class Answerers:
    """The answerers of one index version, by name."""

    available: Mapping[str, Answerer]
    default: str
    fallback: Fallback = Fallback.EXTRACTIVE

    def pick(self, name: str | None) -> Answerer:
        chosen = name or self.default
        answerer = self.available.get(chosen)
        if answerer is None:
            offered = ", ".join(sorted(self.available))
            hint = (
                " (set CHANCERY_LLM_BASE_URL and CHANCERY_LLM_MODEL to configure an LLM)"
                if chosen == "generative"
                else ""
            )
            raise AnswererUnavailableError(
                f"this service has no '{chosen}' answerer{hint}; it offers: {offered}"
            )
        return answerer

    def tuned(self, options: LlmOptions) -> Answerers:
        """These answerers, those with an LLM taking `options` for one request."""
        available = {
            name: answerer.tuned(options) if isinstance(answerer, Tunable) else answerer
            for name, answerer in self.available.items()
        }
        return replace(self, available=available)

    def stream(
        self,
        question: str,
        passages: Sequence[Hit],
        *,
        query_vector: Vectors | None = None,
        name: str | None = None,
    ) -> Iterator[AnswerPart]:
        """The answer of the answerer `name` (default: `default`), part by part, with the
        fallback in its place when it fails."""
        answerer = self.pick(name)
        substitute = self.available.get(EXTRACTIVE)
        can_fall_back = (
            self.fallback is Fallback.EXTRACTIVE
            and substitute is not None
            and answerer.name != EXTRACTIVE
        )
        dropped: tuple[str, ...] = ()
        try:
            for part in answerer.stream(question, passages, query_vector=query_vector):
                if isinstance(part, Answer) and part.abstained and can_fall_back:
                    reason, dropped = _why_nothing(part), part.dropped
                    break
                yield part
            else:
                return
        except LlmError as exc:
            if not can_fall_back:
                raise
            reason, dropped = str(exc), exc.dropped
        assert substitute is not None  # can_fall_back says so
        log.info("the %s answer fell back to %s: %s", answerer.name, EXTRACTIVE, reason)
        for stand_in in substitute.stream(question, passages, query_vector=query_vector):
            if isinstance(stand_in, Answer):
                stand_in = replace(stand_in, fallback=reason, dropped=dropped)
            yield stand_in

    def answer(
        self,
        question: str,
        passages: Sequence[Hit],
        *,
        query_vector: Vectors | None = None,
        name: str | None = None,
    ) -> Answer:
        for part in self.stream(question, passages, query_vector=query_vector, name=name):
            if isinstance(part, Answer):
                return part
        raise AssertionError("a stream ends with its answer")


AnswerersFactory = Callable[[Index, Embedder], Answerers]
"""Makes the answerers of one loaded index version."""


def offer(
    factories: Mapping[str, AnswererFactory],
    default: str = EXTRACTIVE,
    fallback: Fallback = Fallback.EXTRACTIVE,
) -> AnswerersFactory:
    """The answerers `factories` make, by name, for each version an engine loads."""
    if default not in factories:
        raise ValueError(f"the default answerer {default!r} is not among {sorted(factories)}")

    def make(index: Index, embedder: Embedder) -> Answerers:
        built = {name: factory(index, embedder) for name, factory in factories.items()}
        return Answerers(built, default, fallback)

    return make


def _why_nothing(answer: Answer) -> str:
    if answer.dropped:
        return (
            f"no sentence of the generative draft passed verification "
            f"({len(answer.dropped)} dropped)"
        )
    if answer.signals.get("declined"):
        return "the LLM said the passages do not answer the question"
    return "the generative answerer found nothing to say"
