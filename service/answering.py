"""What every answerer returns, and the protocol it implements: domain objects, no HTTP types.

An answerer reads a question and the passages retrieval found for it, and returns an answer
whose sentences carry markers `[n]` pointing to `citations[n - 1]`, each quote verbatim on the
stored text of its page (`service.citations` checks that), or an abstention
(`service.abstain`) with no citations and the passages it read.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
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


class Answerer(Protocol):
    def answer(
        self, question: str, passages: Sequence[Hit], *, query_vector: Vectors | None = None
    ) -> Answer:
        """Answer from `passages` alone. `query_vector` is the question's embedding when
        retrieval already computed one, so that an answerer that needs it does not embed the
        question again."""
        ...


AnswererFactory = Callable[[Index, Embedder], Answerer]
"""Makes the answerer of one loaded index version: an engine calls it for every version it
loads, since an answerer may read the index (sentence vectors, page texts, term statistics)."""
