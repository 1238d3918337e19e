"""Whether a model's claim is supported by the passages it cites, and by which quote.

A claim stands only if, inside the passages it cites (as the model read them), there is a
sentence close enough in meaning to quote for it, and nothing in the claim goes beyond them:
every number and date in it appears in those passages, every name in it is one they mention,
a quotation it makes is verbatim in one of them, and the quote is not about someone else (a
claim about Serbia resting on a sentence about Kosovo). What the checks cannot catch, a
fluent sentence that bends a passage's meaning with the same words, the similarity threshold
bounds; it is calibrated on the gold set (`bench/calibrate_claims.py`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from index.embedder import Embedder, Vectors
from index.lexical import LexicalIndex
from index.records import Records
from index.retrieve import Hit
from service import entities
from service.draft import Claim
from service.terms import QUESTION_WORDS

_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_UNITS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen twenty"
)
_NUMBER_WORDS = {
    word: str(value) for value, word in enumerate(_UNITS.split())
} | {
    "thirty": "30", "forty": "40", "fifty": "50", "sixty": "60", "seventy": "70",
    "eighty": "80", "ninety": "90", "hundred": "100", "thousand": "1000", "dozen": "12",
    "million": "million", "billion": "billion", "trillion": "trillion",
}  # fmt: skip
"""Numbers spelled out, as the digits they stand for ("four" is 4, wherever it appears);
magnitudes stay words, since "1.5 million" is written so in any report."""
_SPELLED = re.compile(rf"\b(?:{'|'.join(_NUMBER_WORDS)})\b", re.IGNORECASE)
_LOOSE = {"1"}
""""One" in a claim is as often a pronoun ("one of the threats") as a count; it is not held
against the passages."""
_QUOTATION = re.compile(r"[\"“]([^\"”]{12,})[\"”]")
_WORDS = re.compile(r"\w+")
_REPLIES = frozenset({"yes", "no", "partly", "partially"})
"""Words that open an answer to a yes-or-no question: never a name, whatever the corpus."""
_FIRST_WORD = re.compile(r"[^\W\d_]+")


@dataclass(frozen=True)
class ClaimRules:
    min_similarity: float = 0.64
    """The claim's cosine to its quote must reach this (rounded to `similarity_step`). Chosen
    by 5-fold cross-validation on the gold set's reference answers as claims
    (`bench/calibrate_claims.py`): to let at most 10% of claims resting on a passage that does
    not hold their evidence pass, the folds chose 0.60-0.65 (median 0.64); held out, 51% of
    supported claims were kept and 9.2% of unsupported ones passed."""
    similarity_step: float = 0.01
    """As in extractive answers: cosines rounded, so that no verdict depends on the CPU."""
    min_words: int = 3


@dataclass(frozen=True)
class Support:
    passage: int
    """The passage's number in the prompt."""
    hit: Hit
    start: int
    """The quote's span in the chunk's text."""
    end: int
    similarity: float

    @property
    def quote(self) -> str:
        return self.hit.chunk.text[self.start : self.end]


@dataclass(frozen=True)
class Verdict:
    claim: Claim
    supports: list[Support]
    """Best first; empty when the claim was rejected."""
    reason: str | None = None
    """Why the claim was rejected, in words."""


class ClaimChecker:
    def __init__(
        self,
        records: Records,
        lexical: LexicalIndex,
        sentence_vectors: Vectors,
        embedder: Embedder,
        rules: ClaimRules,
    ) -> None:
        self._records = records
        self._lexical = lexical
        self._vectors = sentence_vectors
        self._embedder = embedder
        self._rules = rules

    def check(self, claim: Claim, passages: Sequence[Hit], texts: Sequence[str]) -> Verdict:
        """Judge `claim` against the passages it cites: `passages[n - 1]`, of which the model
        read `texts[n - 1]`."""
        if not claim.passages:
            return Verdict(claim, [], "it cites no passage")
        cited = [n for n in claim.passages if 1 <= n <= len(passages)]
        if not cited:
            wrong = ", ".join(f"[{n}]" for n in claim.passages)
            return Verdict(claim, [], f"it cites {wrong}, which the model was not given")
        if len(_WORDS.findall(claim.text)) < self._rules.min_words:
            return Verdict(claim, [], "it is not a sentence")
        read = "\n".join(texts[n - 1] for n in cited)
        claimed = self._names(claim.text, "\n".join(texts))
        problem = _beyond(claim.text, claimed, read)
        if problem is not None:
            return Verdict(claim, [], problem)
        vector = self._embedder.embed([claim.text])[0]
        supports = [s for n in cited if (s := self._best(n, passages[n - 1], texts[n - 1], vector))]
        supports.sort(key=lambda s: (-self._steps(s.similarity), s.passage))
        floor = self._steps(self._rules.min_similarity)
        close = [s for s in supports if self._steps(s.similarity) >= floor]
        if not close:
            best = supports[0].similarity if supports else 0.0
            return Verdict(
                claim, [], f"no sentence of the passages it cites says it (closest {best:.2f})"
            )
        given = "\n".join(texts)
        grounded = [
            s
            for s in close
            if not _substitutes(claim.text, claimed, s.quote, self._names(s.quote, given))
        ]
        if not grounded:
            return Verdict(claim, [], "the sentences it rests on are about someone else")
        return Verdict(claim, grounded)

    def _best(self, n: int, hit: Hit, read: str, vector: Vectors) -> Support | None:
        """The sentence of the passage, within what the model read, closest to the claim."""
        spans = [s for s in self._records.sentences_of([hit.row]) if s.end <= len(read)]
        if not spans:
            return None
        rows = [s.row for s in spans]
        similarities = np.asarray(self._vectors[rows], dtype=np.float32) @ vector
        index = max(
            range(len(spans)), key=lambda i: (self._steps(float(similarities[i])), -spans[i].start)
        )
        span = spans[index]
        return Support(n, hit, span.start, span.end, float(similarities[index]))

    def _steps(self, cosine: float) -> int:
        return round(cosine / self._rules.similarity_step)

    def _names(self, text: str, given: str) -> frozenset[str]:
        """The names in `text` (a claim, or a quote), its first word included when it reads
        as a name: no document of the collection uses it, or the passages `given` write it
        capitalised inside a sentence, or use it and always capitalised. A model opens
        sentences with the name it talks about ("Velmark has four crossings"), and a name must
        not slip through for standing first; a common word that opens a paraphrase
        ("Because") is none, and one that is ("Wind farms grow") does no harm: names are
        compared regardless of case."""
        found = entities.names(text, given)
        first = _FIRST_WORD.match(text)
        if first is None or not first.group()[:1].isupper():
            return found
        word = first.group().lower()
        if word in QUESTION_WORDS or word in _REPLIES or word in _NUMBER_WORDS:
            return found
        stems = self._lexical.analyze(word)
        unknown = bool(stems) and all(self._lexical.document_frequency(s) == 0 for s in stems)
        written = re.findall(rf"\b{re.escape(word)}\b", given, re.IGNORECASE)
        only_capitalised = bool(written) and all(w[:1].isupper() for w in written)
        if unknown or only_capitalised or word in entities.names(given):
            return found | {word}
        return found


def _beyond(claim: str, claimed: frozenset[str], read: str) -> str | None:
    """What the claim states that the passages it cites (`read`) do not contain, if anything;
    `claimed` are its names."""
    numbers = set(_numbers(read).values())
    for written, number in _numbers(claim).items():
        if number not in numbers and number not in _LOOSE:
            return f"the number {written} is not in the passages it cites"
    lowered = " ".join(read.split()).lower()
    for quotation in _QUOTATION.findall(claim):
        if " ".join(quotation.split()).lower().strip(" ,.") not in lowered:
            return "it quotes words the passages it cites do not contain"
    missing = entities.missing(claimed, read)
    if missing:
        return f"it names {', '.join(sorted(missing))}, which the passages it cites do not"
    return None


def _substitutes(claim: str, claimed: frozenset[str], quote: str, quoted: frozenset[str]) -> bool:
    """Whether the claim is about someone its quote is not: they share no name (a claim about
    Serbia resting on a sentence about Kosovo), or each opens with a name the other lacks
    ("Astoria imports gas from Velmark" resting on "Northland imports gas from Velmark"). Both
    names being in the passage is not enough: the quote says who did what. A claim that
    gathers several names, resting on one sentence that has others, passes: the first name is
    the one a sentence is about."""
    if not entities.agree(claimed, quoted):
        return True
    ours, theirs = _first_name(claim, claimed), _first_name(quote, quoted)
    return (
        ours is not None
        and theirs is not None
        and bool(entities.missing([ours], quote))
        and bool(entities.missing([theirs], claim))
    )


def _first_name(text: str, names: frozenset[str]) -> str | None:
    lowered = text.lower()
    found = [(lowered.find(name), name) for name in names if name in lowered]
    return min(found)[1] if found else None


def _numbers(text: str) -> dict[str, str]:
    """The numbers a text states, as written and as compared (digits, no thousands
    separators)."""
    found = {n: _plain(n) for n in _NUMBER.findall(text)}
    for word in _SPELLED.findall(text):
        found.setdefault(word, _NUMBER_WORDS[word.lower()])
    return found


def _plain(number: str) -> str:
    """A number as digits: thousands separators out, so "1,500" and "1500" match."""
    return number.replace(",", "") if re.fullmatch(r"\d{1,3}(?:,\d{3})+", number) else number
