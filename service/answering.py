"""What every answerer returns, and the protocol it implements: domain objects, no HTTP types.

An answerer reads a question and the passages retrieval found for it, and returns an answer
whose sentences carry markers `[n]` pointing to `citations[n - 1]`, each quote verbatim on the
stored text of its page (`service.citations` checks that), or an abstention
(`service.abstain`) with no citations and the passages it read.

An answerer may also stream: `Drafting` once a model has begun writing, each `Sentence` as soon
as its citations are verified, and the whole `Answer` last. One that does not stream natively is
streamed by `stream_whole`, from its finished answer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from index.embedder import Embedder, Vectors
from index.retrieve import Hit
from index.store import Index


@dataclass(frozen=True)
class Citation:
    doc_id: str
    doc: str
    """The document's file name."""
    title: str
    page: int
    """1-based physical page, as a PDF viewer shows it."""
    page_label: str | None
    quote: str
    quote_start: int
    """Offset of `quote` in the stored text of its page: `text[quote_start:quote_end] == quote`."""
    quote_end: int
    chunk_id: str
    score: float
    answer_start: int
    """Offset in the answer text of the sentence this citation supports, its marker `[n]`
    excluded: `answer.text[answer_start:answer_end]` is the claim a reader checks against
    `quote`. A citation that several sentences share points to the first of them."""
    answer_end: int


@dataclass(frozen=True)
class Answer:
    text: str
    abstained: bool
    citations: list[Citation]
    passages: list[Hit]
    signals: dict[str, float] = field(default_factory=dict)
    """What the abstention decision rested on (each answerer names its own signals), for
    calibration and reports."""
    answerer: str = "extractive"
    """The answerer that wrote this answer."""
    fallback: str | None = None
    """Why the answerer asked for did not write this answer, when another one stands in."""
    dropped: tuple[str, ...] = ()
    """Why each sentence of a model's draft that failed verification was left out (the
    sentence itself is not repeated: nothing unverified leaves the service)."""
    notes: tuple[str, ...] = ()
    """What a reader should know about how the answer came to be: a draft cut off, say."""


@dataclass(frozen=True)
class Sentence:
    """One sentence of an answer, its citations verified, as a stream delivers it."""

    text: str
    """The sentence as it stands in the answer, marker excluded."""
    citations: list[tuple[int, Citation]]
    """Its citations with their numbers in the answer."""


@dataclass(frozen=True)
class Drafting:
    """A model has begun to write: from here on, a failure can no longer be an HTTP status."""


AnswerPart = Drafting | Sentence | Answer
"""What a streamed answer yields: any number of `Drafting` and `Sentence`, then one `Answer`."""


class Answerer(Protocol):
    name: str

    def answer(
        self, question: str, passages: Sequence[Hit], *, query_vector: Vectors | None = None
    ) -> Answer:
        """Answer from `passages` alone. `query_vector` is the question's embedding when
        retrieval already computed one, so that an answerer that needs it does not embed the
        question again."""
        ...

    def stream(
        self, question: str, passages: Sequence[Hit], *, query_vector: Vectors | None = None
    ) -> Iterator[AnswerPart]:
        """The same answer, part by part; its last part is the `Answer`."""
        ...


def sentences(answer: Answer) -> list[Sentence]:
    """An answer's cited sentences in the order of its text. A sentence is the span its
    citations give (`answer_start`, `answer_end`), so every answerer's text splits the same
    way."""
    spans: dict[tuple[int, int], list[tuple[int, Citation]]] = {}
    for n, citation in enumerate(answer.citations, start=1):
        spans.setdefault((citation.answer_start, citation.answer_end), []).append((n, citation))
    return [
        Sentence(answer.text[start:end], cited) for (start, end), cited in sorted(spans.items())
    ]


def stream_whole(answer: Answer) -> Iterator[AnswerPart]:
    """A finished answer as a stream: its sentences, then itself."""
    yield from sentences(answer)
    yield answer


AnswererFactory = Callable[[Index, Embedder], Answerer]
"""Makes the answerer of one loaded index version: an engine calls it for every version it
loads, since an answerer may read the index (sentence vectors, page texts, term statistics)."""
