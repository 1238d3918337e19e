"""Whether a question is plainly not in English, and in what language or script it is.

The bundled embedding model (all-MiniLM-L6-v2) learned English only: a question in Serbian or
Albanian finds little, the answerer abstains, and a bare "the documents do not answer" would
blame the documents. Saying that the question is not in the model's language tells the reader
what to do instead.

Two steps, both offline and deterministic:

1. Script. When the letters of one non-Latin script (Cyrillic, Han, Arabic, Greek...) are the
   majority, the question is not English, whatever a classifier makes of it.
2. Latin script. py3langid (naive Bayes over byte n-grams; its model ships inside the package,
   4.6 MB) names the language, but short questions fool it: "Why do Chinese and Serbian police
   patrol together?" comes out as Nigerian Pidgin. So a Latin-script question counts as foreign
   only when it also has at least three ordinary words (the first, and those in lower case:
   names and acronyms say nothing about the language around them), none of them an English
   function word, and py3langid gives English almost nothing.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_LETTERS = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*")
# Only words no language near the corpus uses as a common word of its own: "to", "on", "a",
# "i" and "do" are Serbian or Croatian words too, "was", "die" and "an" German ones.
_ENGLISH_WORDS = frozenset(
    """the of and what which who whom whose how why when where does did doesn't don't didn't
    is isn't are aren't were has have had about with from that this these those their they
    them it it's its should would could shall say says said many much against between
    whether than there been being""".split()  # noqa: SIM905
)
_MIN_ORDINARY_WORDS = 3
"""Fewer words than this, names aside, are too little for py3langid to go on."""
_MAX_ENGLISH_SHARE = 0.05
"""Latin script: foreign only when py3langid gives English at most this probability..."""
_MIN_LATIN_SHARE = 0.6
"""...and one language (or family below) at least this. English keyword queries of Balkan
names ("report milorad dodik republika srpska") reach 0.54 for Bosnian-Croatian-Serbian; real
questions in it score 0.85 and more."""
_MIN_NAMING_SHARE = 0.7
"""Name a language only when py3langid gives it this much; otherwise name only the script:
on short questions it splits Serbian Cyrillic between Serbian and Macedonian."""
_FAMILIES = {"bs": "bcs", "hr": "bcs", "sr": "bcs", "sh": "bcs", "cnr": "bcs"}
"""py3langid splits one short question between these nearly at random (Bosnian 0.37, Serbian
0.25, Croatian 0.23), so their shares are pooled before any threshold."""
_NAMES = {
    "bcs": "Bosnian, Croatian or Serbian",
    "ar": "Arabic",
    "az": "Azerbaijani",
    "be": "Belarusian",
    "bg": "Bulgarian",
    "bs": "Bosnian",
    "ca": "Catalan",
    "cs": "Czech",
    "da": "Danish",
    "de": "German",
    "el": "Greek",
    "es": "Spanish",
    "et": "Estonian",
    "fa": "Persian",
    "fi": "Finnish",
    "fr": "French",
    "he": "Hebrew",
    "hi": "Hindi",
    "hr": "Croatian",
    "hu": "Hungarian",
    "hy": "Armenian",
    "id": "Indonesian",
    "it": "Italian",
    "ja": "Japanese",
    "ka": "Georgian",
    "ko": "Korean",
    "lt": "Lithuanian",
    "lv": "Latvian",
    "mk": "Macedonian",
    "nl": "Dutch",
    "no": "Norwegian",
    "nb": "Norwegian",
    "pl": "Polish",
    "pt": "Portuguese",
    "ro": "Romanian",
    "ru": "Russian",
    "sk": "Slovak",
    "sl": "Slovene",
    "sq": "Albanian",
    "sr": "Serbian",
    "sv": "Swedish",
    "th": "Thai",
    "tr": "Turkish",
    "uk": "Ukrainian",
    "ur": "Urdu",
    "vi": "Vietnamese",
    "zh": "Chinese",
}
_SCRIPTS = {"CJK": "Han", "HIRAGANA": "Japanese kana", "KATAKANA": "Japanese kana"}


@dataclass(frozen=True)
class Language:
    """What a question is written in, as far as it can be told."""

    script: str
    """The script most of its letters belong to: Latin, Cyrillic, Han..."""
    name: str | None
    """The language in English (Serbian, Albanian); None when only the script is certain."""

    def phrase(self) -> str:
        """Completes "The question seems to be ..."."""
        if self.name is None:
            if self.script == "Latin":
                return "in a language other than English"
            return f"written in {self.script} script"
        if self.script == "Latin" or self.script in self.name:
            return f"in {self.name}"
        return f"in {self.name} ({self.script} script)"


def english_only_note(language: Language) -> str:
    return (
        f"The question seems to be {language.phrase()}; the search model reads English, "
        "so ask in English for better results."
    )


def foreign_language(question: str) -> Language | None:
    """The question's language or script when it is plainly not English; None when it is
    English, or when there is too little to tell (a list of names, a lone word)."""
    script = _main_script(question)
    if script is None:
        return None
    if script != "Latin":
        return Language(script, _name(_probabilities(question)))
    words = _LETTERS.findall(question)
    if any(word.lower() in _ENGLISH_WORDS for word in words):
        return None
    ordinary = [
        word
        for number, word in enumerate(words)
        if (number == 0 or word[:1].islower()) and not (len(word) > 1 and word.isupper())
    ]
    if len(ordinary) < _MIN_ORDINARY_WORDS:
        return None
    probabilities = _probabilities(question)
    code, share = _top(_pooled(probabilities))
    if code == "en" or share < _MIN_LATIN_SHARE:
        return None
    if probabilities.get("en", 0.0) > _MAX_ENGLISH_SHARE:
        return None
    return Language("Latin", _name(probabilities))


def _main_script(text: str) -> str | None:
    """The script of most of the letters, or None when there are no letters."""
    counts: Counter[str] = Counter()
    for character in text:
        if character.isalpha():
            first = unicodedata.name(character, "UNKNOWN").split(" ", 1)[0]
            counts[_SCRIPTS.get(first, first.title())] += 1
    if not counts:
        return None
    script, count = _top(counts)
    # Without a majority of one non-Latin script, the checks for Latin script decide (and
    # they lean to English); fullwidth and styled letters are Latin ones.
    if script in {"Fullwidth", "Mathematical"} or count * 2 <= sum(counts.values()):
        return "Latin"
    return script


def _name(probabilities: dict[str, float]) -> str | None:
    for shares in (probabilities, _pooled(probabilities)):
        code, share = _top(shares)
        if share >= _MIN_NAMING_SHARE:
            return None if code == "en" else _NAMES.get(code)
    return None


def _pooled(probabilities: dict[str, float]) -> dict[str, float]:
    pooled: dict[str, float] = {}
    for code, share in probabilities.items():
        family = _FAMILIES.get(code, code)
        pooled[family] = pooled.get(family, 0.0) + share
    return pooled


def _top(counts: Mapping[str, float]) -> tuple[str, float]:
    # Ties go to the code that sorts first, so that the answer never depends on dict order.
    code = min(counts, key=lambda c: (-counts[c], c))
    return code, counts[code]


def _probabilities(text: str) -> dict[str, float]:
    return {code: float(share) for code, share in _identifier().rank(text)}


@functools.cache
def _identifier() -> Any:
    # Loaded when a question first needs it (0.6 s): English ones with a function word, which
    # is nearly all of them, never do.
    from py3langid.langid import MODEL_FILE, LanguageIdentifier  # type: ignore[import-untyped]

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
