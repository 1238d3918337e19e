"""When to say that the documents do not answer, and how to say it.

A single similarity threshold cannot tell unanswerable questions apart (FINDINGS.md), so an
answer is refused on any of three independent signals: nothing the answerer would quote is close
enough to the question; no single passage holds enough of the question's content words, weighted
by how rare they are; or the question names something no document mentions at all. The
thresholds are calibrated on the gold set (`bench/calibrate_abstention.py`). When the question
is not in English, which the bundled model does not read, the abstention says so.
"""

from __future__ import annotations

from collections.abc import Sequence

from index.lexical import LexicalIndex
from index.retrieve import Hit
from service.answering import Answer
from service.language import english_only_note, foreign_language
from service.terms import QUESTION_WORDS, WORD, content_terms

NO_ANSWER = "The documents do not answer this question."
PASSAGES_BELOW = "The closest passages are listed below."
ABSTAIN_MESSAGE = f"{NO_ANSWER} {PASSAGES_BELOW}"


def unknown_names(question: str, lexical: LexicalIndex) -> list[str]:
    """Names in the question (capitalised words past its first) that no document uses:
    documents that never mention Hungary cannot say what Hungary does."""
    words = WORD.findall(question)[1:]
    names = [w for w in words if w[:1].isupper() and w.lower() not in QUESTION_WORDS]
    return [
        name
        for name in names
        if all(lexical.document_frequency(stem) == 0 for stem in lexical.analyze(name))
        and lexical.analyze(name)
    ]


def coverage(weights: dict[str, float], passages: Sequence[Hit], lexical: LexicalIndex) -> float:
    """The largest IDF-weighted share of the question's terms that one passage holds."""
    total = sum(weights.values())
    if total <= 0:
        return 0.0
    shares = []
    for hit in passages:
        present = content_terms(f"{hit.heading}\n{hit.chunk.text}", lexical)
        shares.append(sum(w for term, w in weights.items() if term in present) / total)
    return max(shares)


def should_abstain(
    *,
    similarity: float,
    coverage: float,
    unknown_names: int,
    min_similarity: float,
    min_coverage: float,
) -> bool:
    return unknown_names > 0 or similarity < min_similarity or coverage < min_coverage


def message(question: str, english_only: bool) -> str:
    """Only an abstention looks at the question's language: an answer found in another
    language is still an answer."""
    language = foreign_language(question) if english_only else None
    if language is None:
        return ABSTAIN_MESSAGE
    return f"{NO_ANSWER} {english_only_note(language)} {PASSAGES_BELOW}"


def abstention(
    question: str, passages: Sequence[Hit], signals: dict[str, float], english_only: bool
) -> Answer:
    """The answer that declines: no citations, and the passages the reader can check."""
    return Answer(message(question, english_only), True, [], list(passages), signals)
