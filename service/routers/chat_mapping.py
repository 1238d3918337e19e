"""Chancery's answers in OpenAI's chat-completion shapes: the completion, and the chunks of a
stream.

The content is the answer's text as `/v1/ask` gives it, markers `[n]` and all, so that each
citation's `answer_start`/`answer_end` index into the content as into `answer`; then, unless the
request says `sources: false`, a short `Sources:` list (or, for an abstention, the closest
passages), for a chat tool that shows the content and ignores the `citations` it does not know.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import quote, urlencode

from index.retrieve import Hit
from service.answering import Answer, Citation, Sentence
from service.chat_schemas import (
    DEFAULT_MODEL,
    AssistantMessage,
    ChanceryDetails,
    ChatCitation,
    ChatCompletion,
    ChatCompletionChunk,
    Choice,
    ChunkChoice,
    ChunkDelta,
    Usage,
)
from service.collections import DEFAULT_COLLECTION
from service.engine import AskResult
from service.followup import Standalone
from service.routers.chat_errors import ModelNotFoundError
from service.routers.mapping import citation_out

log = logging.getLogger("chancery")

MODEL_PREFIX = f"{DEFAULT_MODEL}/"
SHOWN_PASSAGES = 3
_QUOTE_CHARS = 120
_SEPARATORS = {1: " ", 3: "\n- "}
"""What stands between two sentences of an answer, by its length: a space, or a list item's
line (the extractive answerer lists the items of a list so)."""

UsageOf = Callable[[AskResult, str], tuple[Usage, str]]
"""The usage of an answer whose content is the string, and where it comes from (`llm` or
`estimate`)."""


def model_id(collection: str) -> str:
    return DEFAULT_MODEL if collection == DEFAULT_COLLECTION else f"{MODEL_PREFIX}{collection}"


def collection_of(model: str) -> str:
    """The collection a model name answers from; the collection's existence is the library's
    to check."""
    if model == DEFAULT_MODEL:
        return DEFAULT_COLLECTION
    if model.startswith(MODEL_PREFIX) and len(model) > len(MODEL_PREFIX):
        return model.removeprefix(MODEL_PREFIX)
    raise ModelNotFoundError(model)


def page_link(collection: str, citation: Citation) -> str:
    """The web page's deep link to the cited page, the quote highlighted at its offsets."""
    query = urlencode(
        {
            "collection": collection,
            "quote": citation.quote,
            "start": citation.quote_start,
            "end": citation.quote_end,
        }
    )
    return f"/documents/{quote(citation.doc_id, safe='')}/pages/{citation.page}?{query}"


@dataclass(frozen=True)
class Exchange:
    """One chat request, as the response needs it."""

    id: str
    created: int
    model: str
    collection: str
    base_url: str
    """Where this server is reached (`http://host:port`), for the citations' links."""
    asked: Standalone
    sources: bool
    usage_of: UsageOf

    def citation(self, n: int, citation: Citation) -> ChatCitation:
        out = citation_out(n, citation)
        url = self.base_url + page_link(self.collection, citation)
        return ChatCitation(**out.model_dump(), url=url)

    def citations(self, answer: Answer) -> list[ChatCitation]:
        return [self.citation(n, c) for n, c in enumerate(answer.citations, start=1)]

    def appendix(self, answer: Answer) -> str:
        """What follows the answer's text in the content."""
        if not self.sources:
            return ""
        if answer.abstained:
            return passages_list(answer.passages)
        return sources_list(answer.citations)

    def details(self, result: AskResult, usage_source: str) -> ChanceryDetails:
        answer = result.answer
        return ChanceryDetails.model_validate(
            {
                "question": self.asked.question,
                "rewritten_by": self.asked.method,
                "abstained": answer.abstained,
                "answerer": answer.answerer,
                "fallback": answer.fallback,
                "dropped": list(answer.dropped),
                "notes": list(answer.notes),
                "collection": result.collection,
                "index_version": result.index_version,
                "usage": usage_source,
            }
        )


def completion(exchange: Exchange, result: AskResult) -> ChatCompletion:
    answer = result.answer
    content = answer.text + exchange.appendix(answer)
    citations = exchange.citations(answer)
    usage, source = exchange.usage_of(result, content)
    return ChatCompletion(
        id=exchange.id,
        created=exchange.created,
        model=exchange.model,
        system_fingerprint=result.index_version,
        choices=[Choice(message=AssistantMessage(content=content, citations=citations))],
        usage=usage,
        citations=citations,
        chancery=exchange.details(result, source),
    )


class Chunks:
    """A stream's chunks, in order: the role, one per verified sentence with its citations, and
    a last one with the rest of the content, every citation and the details."""

    def __init__(self, exchange: Exchange, include_usage: bool) -> None:
        self._exchange = exchange
        self._include_usage = include_usage
        self.streamed = ""
        """The content sent so far."""

    def opening(self) -> ChatCompletionChunk:
        return self._chunk(ChunkDelta(role="assistant", content=""))

    def sentence(self, sentence: Sentence) -> ChatCompletionChunk:
        piece = self._separator(sentence) + sentence.text + " " + _markers(sentence)
        self.streamed += piece
        cited = [self._exchange.citation(n, c) for n, c in sentence.citations]
        return self._chunk(ChunkDelta(content=piece, citations=cited))

    def closing(self, result: AskResult) -> list[ChatCompletionChunk]:
        exchange, answer = self._exchange, result.answer
        if answer.text.startswith(self.streamed):
            rest = answer.text[len(self.streamed) :]
        else:
            # Cannot happen while the answerers join sentences as `_SEPARATORS` says; the
            # content sent cannot be taken back, so the rest is left out rather than repeated.
            log.warning("a streamed chat answer differs from the answer's text")
            rest = ""
        rest += exchange.appendix(answer)
        content = self.streamed + rest
        citations = exchange.citations(answer)
        usage, source = exchange.usage_of(result, content)
        last = self._chunk(ChunkDelta(content=rest, citations=citations), finish=True)
        last.citations = citations
        last.chancery = exchange.details(result, source)
        last.system_fingerprint = result.index_version
        if not self._include_usage:
            return [last]
        # As OpenAI sends it: a chunk of its own, with no choices.
        tally = self._chunk(None)
        tally.usage = usage
        return [last, tally]

    def _separator(self, sentence: Sentence) -> str:
        if not self.streamed:
            return ""
        starts = [c.answer_start for _, c in sentence.citations]
        gap = min(starts) - len(self.streamed) if starts else 1
        return _SEPARATORS.get(gap, " ")

    def _chunk(self, delta: ChunkDelta | None, finish: bool = False) -> ChatCompletionChunk:
        exchange = self._exchange
        choices = (
            []
            if delta is None
            else [ChunkChoice(delta=delta, finish_reason="stop" if finish else None)]
        )
        return ChatCompletionChunk(
            id=exchange.id, created=exchange.created, model=exchange.model, choices=choices
        )


def _markers(sentence: Sentence) -> str:
    return "".join(f"[{n}]" for n in dict.fromkeys(n for n, _ in sentence.citations))


def sources_list(citations: Sequence[Citation]) -> str:
    if not citations:
        return ""
    lines = [
        f"- [{n}] {_where(c.title or c.doc, c.page, c.page_label)}: “{_shortened(c.quote)}”"
        for n, c in enumerate(citations, start=1)
    ]
    return "\n\nSources:\n" + "\n".join(lines)


def passages_list(passages: Sequence[Hit]) -> str:
    shown = passages[:SHOWN_PASSAGES]
    if not shown:
        return ""
    lines = [f"- {_passage_where(hit)}: “{_shortened(hit.chunk.text)}”" for hit in shown]
    return "\n\nClosest passages:\n" + "\n".join(lines)


def _where(title: str, page: int, label: str | None) -> str:
    printed = f" (printed {label})" if label and label != str(page) else ""
    return f"{title}, page {page}{printed}"


def _passage_where(hit: Hit) -> str:
    chunk = hit.chunk
    pages = (
        f"page {chunk.page_start}"
        if chunk.page_start == chunk.page_end
        else f"pages {chunk.page_start}-{chunk.page_end}"
    )
    return f"{hit.title or hit.file_name}, {pages}"


def _shortened(text: str) -> str:
    """The text on one line, cut at a word near `_QUOTE_CHARS`."""
    flat = " ".join(text.split())
    if len(flat) <= _QUOTE_CHARS:
        return flat
    cut = flat[:_QUOTE_CHARS].rsplit(" ", 1)[0]
    return cut.rstrip(",;:") + "…"
