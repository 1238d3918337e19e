"""A model's draft as claims: its sentences, each with the passage numbers it cites.

Models put markers in many places: "... 2019 [1].", "... 2019. [1]", "... [1][3].", "[1, 3]",
mid-sentence, on a list line of their own. All of those are read; the claim is the sentence with its
markers taken out. The draft arrives in pieces when streamed, so `ClaimReader` hands back each
claim as soon as the text after it shows that it has ended: a sentence end followed by the start
of another sentence, not by a marker that still belongs to it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass

from service.prompt import DECLINE

_MARKER = re.compile(r"\s*\[(\d+(?:\s*[,;]\s*\d+)*)\]")
_END = re.compile(r"[.!?…][\"”’)]*|\n")
_ABBREVIATION = re.compile(
    r"(?:\b(?:e\.g|i\.e|etc|vs|cf|al|No|Nr|Art|Vol|Mr|Mrs|Ms|Dr|Prof|St|Gen|Col|Jan|Feb|Mar|Apr"
    r"|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec|approx|incl|p|pp)|\b[A-Z])\.$"
)
"""Text before a full stop that does not end a sentence: "e.g.", "U.S.", "No. 5". (A decimal
point is never followed by a space, so "3.5" never looks like an end.)"""
_LIST_BULLET = re.compile(r"^\s*(?:[-*•]|\d{1,2}[.)])(?:\s+|$)")
_DECLINES = re.compile(
    rf"{DECLINE}|\b(?:passages?|documents?|context) (?:do(?:es)? not|don't|doesn't) "
    r"(?:answer|say|mention|contain|provide)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Claim:
    number: int
    """1-based position in the draft, for reports of what was dropped."""
    text: str
    """The sentence, markers and list bullet taken out, spaces collapsed."""
    passages: tuple[int, ...]
    """The passage numbers it cites, in order of appearance, each once."""


def declines(text: str) -> bool:
    """Whether the model said that the passages do not answer."""
    return _DECLINES.search(text) is not None


def claim_of(number: int, sentence: str) -> Claim | None:
    """The claim one sentence of the draft makes; None when it holds no words."""
    cited: list[int] = []
    for group in _MARKER.findall(sentence):
        for n in re.split(r"\s*[,;]\s*", group):
            if int(n) not in cited:
                cited.append(int(n))
    text = _LIST_BULLET.sub("", _MARKER.sub("", sentence))
    text = " ".join(text.split())
    # A marker before the full stop leaves " ." behind: "neutral [1]." reads "neutral."; one
    # between two stops leaves two: "neutral. [1]." reads "neutral." too (an ellipsis stays).
    text = re.sub(r"\s+([.!?,;:])", r"\1", text)
    text = re.sub(r"(?<!\.)([.!?])\.$", r"\1", text)
    if not re.search(r"\w", text):
        return None
    return Claim(number, text, tuple(cited))


class ClaimReader:
    """Reads a draft piece by piece; `feed` returns the claims that are complete."""

    def __init__(self) -> None:
        self._buffer = ""
        self._count = 0
        self.text = ""
        """All of the draft so far."""

    def feed(self, piece: str) -> list[Claim]:
        self._buffer += piece
        self.text += piece
        claims: list[Claim] = []
        while (cut := self._sentence_end()) is not None:
            sentence, self._buffer = self._buffer[:cut], self._buffer[cut:]
            claims.extend(self._claim(sentence))
        return claims

    def finish(self) -> list[Claim]:
        """The claim still open when the draft ended."""
        sentence, self._buffer = self._buffer, ""
        return list(self._claim(sentence))

    def _claim(self, sentence: str) -> Iterator[Claim]:
        self._count += 1
        claim = claim_of(self._count, sentence)
        if claim is None:
            self._count -= 1
        else:
            yield claim

    def _sentence_end(self) -> int | None:
        """Where the first complete sentence of the buffer ends (its markers included), when
        what follows shows that it has ended."""
        for end in _END.finditer(self._buffer):
            stop = end.end()
            if end.group() != "\n" and _ABBREVIATION.search(self._buffer[:stop]):
                continue
            rest = self._buffer[stop:]
            markers = _MARKER.match(rest)
            while markers is not None:
                stop += markers.end()
                rest = self._buffer[stop:]
                markers = _MARKER.match(rest)
            # A trailing full stop after markers ("[1].") belongs to this sentence too.
            if rest[:1] in {".", "!", "?"}:
                stop += 1
                rest = rest[1:]
            stripped = rest.lstrip()
            if not stripped or (stripped.startswith("[") and "]" not in stripped):
                return None  # the text that would show where the sentence ends has not come
            if end.group() != "\n" and stripped[:1].islower():
                continue  # "shared ... and indivisible": no sentence starts lower-case
            if (end.group() == "\n" or rest[:1].isspace()) and self._buffer[:stop].strip():
                return stop
        return None


def json_claims(text: str) -> list[Claim] | None:
    """The claims of a draft in the JSON form ({"sentences": [{"text", "passages"}]}), or
    None when the draft is not that JSON (then it is read as plain text)."""
    try:
        payload = json.loads(text)
    except ValueError:
        return None
    if not isinstance(payload, dict) or not isinstance(payload.get("sentences"), list):
        return None
    claims: list[Claim] = []
    for item in payload["sentences"]:
        if not isinstance(item, dict) or not isinstance(item.get("text"), str):
            continue
        cited = item.get("passages")
        numbers = [
            n
            for n in (cited if isinstance(cited, list) else [])
            if isinstance(n, int) and not isinstance(n, bool)
        ]
        claim = claim_of(len(claims) + 1, item["text"])
        if claim is not None:
            merged = tuple(dict.fromkeys([*claim.passages, *numbers]))
            claims.append(Claim(claim.number, claim.text, merged))
    return claims
