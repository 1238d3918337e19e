"""The content words of a question or a passage, as the lexical index stems them.

Sentence scoring (how many of the question's words a sentence holds) and abstention (how many a
passage holds, and whether the documents use a name at all) must agree on what a word is.
"""

from __future__ import annotations

import re

from index.lexical import LexicalIndex

WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)?", re.UNICODE)
# Words that carry no topic: they appear in questions about anything.
QUESTION_WORDS = frozenset(
    """a an the and or but of to in on at by for from
    with about as into over under between is are was were be been being
    do does did doing has have had having will would shall should can could
    may might must what which who whom whose when where why how whether if
    than then this that these those there here it its they them their he
    she his her we our you your i me my not no nor so
    such any all some each every more most other own same very just also
    report reports paper document documents strategy say says said according
    mention mentions describe describes tell tells explain explains give list name""".split()  # noqa: SIM905
)


def content_terms(text: str, lexical: LexicalIndex) -> set[str]:
    kept = [w for w in WORD.findall(text) if w.lower() not in QUESTION_WORDS]
    return set(lexical.analyze(" ".join(kept)))


def term_weights(question: str, lexical: LexicalIndex) -> dict[str, float]:
    """The question's content terms, each weighted by how rare it is in the index."""
    return {term: lexical.idf(term) for term in content_terms(question, lexical)}
