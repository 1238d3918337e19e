"""Which people, places and bodies a text names, and whether two texts name the same ones.

A sentence about Kosovo does not answer a question about Serbia, however close its words: both
answerers check that what they quote (or what a model claims) names the entities the question
does. A name is a word written capitalised where grammar does not capitalise it (inside a
sentence), or an acronym; a word capitalised only because it opens a sentence counts when the
surrounding text also writes it capitalised elsewhere. Demonyms and inflections of a name are the
same entity (Serbia, Serbian, Serbia's, Serbs).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache

from service.terms import QUESTION_WORDS, WORD

_NOT_NAMES = QUESTION_WORDS | frozenset(
    """i mr mrs ms dr st
    january february march april may june july august september october november december
    monday tuesday wednesday thursday friday saturday sunday
    gdp gnp gni usd eur ceo pdf isbn url ngo ngos""".split()  # noqa: SIM905
)
"""Besides question and stop words: months and days are no entities; nor are acronyms of
common nouns (a question about Serbia's GDP is not answered by Kosovo's share of GDP)."""
_OPENERS = ".!?…\n"
"""After these (past spaces, quotes, brackets and bullets) a word opens a sentence or a line."""
_SKIPPED = " \t\"'“”‘’([*•·–—-0123456789¹²³"
"""Digits too: a footnote mark stands between a full stop and the next sentence."""
_DOTTED = re.compile(r"(?<![^\W\d_])(?:[A-Z]\.){2,}")
"""U.S., U.K.: acronyms that the word pattern would cut into single letters."""
_SHOUTED = 3
"""Letters that a word in capitals next to another must have to be read as shouting: the US
EU summit is two acronyms."""
_SUFFIXES = (
    *("ians", "ian", "eans", "ean", "ans", "an", "ese", "ars", "ar", "ins", "in", "ns", "n"),
    "s",
)
"""Demonym endings, longest first, then the plural."""
_VOWELS = "aeiouy"
_MIN_ROOT = 4
"""Shorter roots say too little: NATO and "nation" would share "nat"."""


def names(text: str, context: str | None = None) -> frozenset[str]:
    """Proper names in `text`, lower-cased: capitalised words that do not open a sentence,
    acronyms (NATO, EU, KCSS), and a sentence-opening capitalised word only when `context`
    (default: `text`) also writes it capitalised where it does not open a sentence. Question
    words and stop words never count."""
    context = text if context is None else context
    inside = _capitalised_inside(context)
    lowered = _written_lower(context)
    found = {m.group().replace(".", "").lower() for m in _DOTTED.finditer(text)}
    words = list(WORD.finditer(text))
    for at, match in enumerate(words):
        word = match.group()
        if len(word) < 2 or not word[0].isupper():
            continue
        key = _normal(word)
        if key in _NOT_NAMES:
            continue
        if not _acronym(word):
            if not _opens(text, match.start()) or key in inside:
                found.add(key)
        elif _shouted(text, words, at):
            # A heading in capitals (EXECUTIVE SUMMARY, HOW DOES SERBIA VIEW KOSOVO) is no
            # string of acronyms: its words count as a sentence's first word does.
            if key in inside:
                found.add(key)
        elif len(key) < 3 or key not in lowered:
            found.add(key)
    return frozenset(found)


def same_name(a: str, b: str) -> bool:
    """Whether two names are the same entity: equal, or one the other's demonym/inflection
    (Serbia ~ Serbian ~ Serbia's, Russia ~ Russian, Europe ~ European, Kosovo ~ Kosovar)."""
    a, b = _normal(a), _normal(b)
    return a == b or _root(a) == _root(b)


def missing(wanted: Iterable[str], text: str) -> list[str]:
    """The names of `wanted` that `text` never mentions (by same_name over names(text) and
    case-insensitive word match)."""
    present = {_normal(w) for w in WORD.findall(text)} | names(text)
    roots = {_root(word) for word in present}
    absent: list[str] = []
    for name in wanted:
        key = _normal(name)
        if key not in present and _root(key) not in roots and name not in absent:
            absent.append(name)
    return absent


def agree(question_names: frozenset[str], sentence_names: frozenset[str]) -> bool:
    """False when the question names entities and the sentence names others but none of the
    question's: a question about Serbia is not answered by a sentence about Kosovo alone. A
    sentence naming no entity agrees."""
    if not question_names or not sentence_names:
        return True
    return any(same_name(q, s) for q in question_names for s in sentence_names)


@lru_cache(maxsize=8192)
def _normal(word: str) -> str:
    """Lower case, accents and possessive dropped: Serbia's and Serbia are one name, and
    Vučić is Vucic (the report writes both)."""
    lowered = word.lower().replace("’", "'")
    lowered = lowered[:-2] if lowered.endswith("'s") else lowered
    decomposed = unicodedata.normalize("NFKD", lowered)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


@lru_cache(maxsize=8192)
def _root(name: str) -> str:
    """The name less a demonym or plural ending and its final vowels, so that Serbia, Serbian
    and Serbs all give "serb"; never shorter than `_MIN_ROOT`."""
    root = name
    for suffix in _SUFFIXES:
        if root.endswith(suffix) and len(root) - len(suffix) >= _MIN_ROOT:
            root = root[: -len(suffix)]
            break
    while root[-1:] in _VOWELS and len(root) > _MIN_ROOT:
        root = root[:-1]
    return root


def _acronym(word: str) -> bool:
    return word.isupper() and sum(c.isalpha() for c in word) >= 2


def _shouted(text: str, words: list[re.Match[str]], at: int) -> bool:
    """Whether the word at `at` stands beside another word in capitals on its line."""
    if len(words[at].group()) < _SHOUTED:
        return False
    for before, after in ((at - 1, at), (at, at + 1)):
        if before < 0 or after >= len(words):
            continue
        other = words[before if after == at else after].group()
        between = text[words[before].end() : words[after].start()]
        if len(other) >= _SHOUTED and _acronym(other) and "\n" not in between:
            return True
    return False


def _opens(text: str, start: int) -> bool:
    """Whether the word at `start` opens the text, a sentence or a line."""
    position = start - 1
    while position >= 0 and text[position] in _SKIPPED:
        position -= 1
    return position < 0 or text[position] in _OPENERS


@lru_cache(maxsize=64)
def _capitalised_inside(context: str) -> frozenset[str]:
    """Words the context writes capitalised where they do not open a sentence."""
    return frozenset(
        _normal(m.group())
        for m in WORD.finditer(context)
        if m.group()[0].isupper() and not _acronym(m.group()) and not _opens(context, m.start())
    )


@lru_cache(maxsize=64)
def _written_lower(context: str) -> frozenset[str]:
    return frozenset(_normal(w) for w in WORD.findall(context) if w.islower())
