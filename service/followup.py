"""A follow-up question made standalone, so that a conversation's later turns search well.

"And what about its budget?" finds nothing on its own: the search needs the subject of the
earlier turns. With an LLM configured, the LLM rewrites the follow-up into a standalone question
from the conversation; without one, or when it fails, rules add to the follow-up the names and
the topic words of the earlier user turns. Only user turns feed the rules: an answer's words are
the documents', and would pull the search back to the passages already shown. The question
asked of the answerer is the rewritten one, so its name checks see the subject too.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from service.entities import names, same_name
from service.llm import ChatModel, LlmError, LlmOptions
from service.schemas import MAX_QUESTION_CHARS
from service.terms import QUESTION_WORDS, WORD

log = logging.getLogger("chancery")

Role = Literal["user", "assistant"]
Method = Literal["none", "rules", "llm"]

REFERRING = frozenset(
    """it its it's they them their theirs this that these those there he him his she her hers
    former latter same such""".split()  # noqa: SIM905
)
"""Words that point back to something an earlier turn named."""
_CONTINUING = re.compile(r"^\s*(?:and|but|also|so|what about|how about)\b", re.IGNORECASE)
"""A question that opens like this goes on from the previous one ("And what about Kosovo?")."""
MAX_NAMES = 3
MAX_TOPIC_WORDS = 4
_MIN_TOPIC_CHARS = 3
_REWRITE_TOKENS = 96
_SHOWN_ANSWER_CHARS = 600
"""Of each earlier answer, what the LLM sees when it rewrites: enough to resolve "it"."""
_SOURCES = re.compile(r"\n\s*(?:Sources|Closest passages):.*", re.DOTALL)
_MARKERS = re.compile(r"\s*\[\d+\]")
_LABEL = re.compile(r"^(?:standalone\s+)?question\s*:\s*", re.IGNORECASE)

REWRITE_INSTRUCTIONS = (
    "You rewrite the last question of a conversation into one standalone question for a "
    "search over documents. Replace every pronoun and reference to earlier turns with what it "
    "refers to, keep every name, number and term of the question, and add nothing else. Write "
    "only the question, on one line, in the language of the question."
)


@dataclass(frozen=True)
class Turn:
    role: Role
    text: str


@dataclass(frozen=True)
class Standalone:
    question: str
    """What is searched and answered."""
    method: Method


def standalone(
    turns: Sequence[Turn], rewriter: LlmRewriter | None = None, options: LlmOptions | None = None
) -> Standalone:
    """The last user turn as a standalone question; `turns` ends with it. `options` go to the
    LLM's request (its usage is counted there)."""
    question = turns[-1].text.strip()
    earlier = [t for t in turns[:-1] if t.text.strip()]
    if not any(t.role == "user" for t in earlier):
        return Standalone(question, "none")
    if rewriter is not None:
        rewritten = rewriter.rewrite(turns, options)
        if rewritten is not None:
            return Standalone(rewritten, "llm")
    added = with_context(question, [t.text for t in earlier if t.role == "user"])
    return Standalone(added, "none" if added == question else "rules")


def with_context(question: str, earlier: Sequence[str]) -> str:
    """`question` with what it leaves to the earlier user questions (`earlier`, oldest first)
    added in brackets: their names, when it names nothing itself or refers back ("its"), and
    their topic words, when it does either or goes on from them ("And what about Kosovo?"). A
    question that names its subject and neither refers back nor goes on is standalone as is."""
    own = names(question)
    words = [w.lower() for w in WORD.findall(question)]
    refers = any(w in REFERRING for w in words)
    continues = _CONTINUING.match(question) is not None
    if own and not refers and not continues:
        return question
    added: list[str] = []
    if not own or refers:
        added += [n for n in _earlier_names(earlier) if not any(same_name(n, o) for o in own)]
    added += [w for w in _topic_words(earlier) if w.lower() not in words]
    if not added:
        return question
    return f"{question} ({', '.join(dict.fromkeys(added))})"


def _earlier_names(earlier: Sequence[str]) -> list[str]:
    """The names of the latest earlier question that names any, as it writes them."""
    for text in reversed(earlier):
        found = names(text)
        if found:
            written = [_written(w) for w in WORD.findall(text)]
            return [w for w in dict.fromkeys(written) if _named(w, found)][:MAX_NAMES]
    return []


def _topic_words(earlier: Sequence[str]) -> list[str]:
    """The content words of the latest earlier question that has any, names left out."""
    for text in reversed(earlier):
        found = names(text)
        topic = [
            w
            for w in (_written(w) for w in WORD.findall(text))
            if len(w) >= _MIN_TOPIC_CHARS
            and w.lower() not in QUESTION_WORDS
            and not _named(w, found)
            and w.lower() not in REFERRING
        ]
        if topic:
            return list(dict.fromkeys(topic))[:MAX_TOPIC_WORDS]
    return []


def _named(word: str, found: frozenset[str]) -> bool:
    return any(same_name(word, name) for name in found)


def _written(word: str) -> str:
    """A word as written, less a possessive: Serbia's is Serbia."""
    return re.sub(r"['’]s$", "", word)


class LlmRewriter:
    """Rewrites a follow-up with the LLM: one short request, deterministic (temperature 0)."""

    def __init__(self, chat: ChatModel) -> None:
        self._chat = chat

    def rewrite(self, turns: Sequence[Turn], options: LlmOptions | None = None) -> str | None:
        """The standalone question, or None when the LLM fails or writes no usable question
        (the caller then applies the rules)."""
        usage = options.usage if options is not None else None
        asked = LlmOptions(temperature=0.0, max_tokens=_REWRITE_TOKENS, usage=usage)
        try:
            reply = "".join(
                delta.text
                for delta in self._chat.stream(REWRITE_INSTRUCTIONS, _conversation(turns), asked)
            )
        except LlmError as exc:
            log.warning("the follow-up question was not rewritten (%s); using rules", exc)
            return None
        question = _first_line(reply)
        if not question or len(question) > MAX_QUESTION_CHARS:
            log.warning("the LLM's rewrite of a follow-up was unusable: %r", reply[:200])
            return None
        return question


def _conversation(turns: Sequence[Turn]) -> str:
    lines = []
    for turn in turns[:-1]:
        text = turn.text
        if turn.role == "assistant":
            # The answer's words, not its markers and source lists.
            text = _MARKERS.sub("", _SOURCES.sub("", text))[:_SHOWN_ANSWER_CHARS]
        lines.append(f"{turn.role.capitalize()}: {' '.join(text.split())}")
    lines.append(f"Last question: {' '.join(turns[-1].text.split())}")
    return "\n".join(lines) + "\n\nThe last question, standalone:"


def _first_line(reply: str) -> str:
    for line in reply.strip().splitlines():
        line = _LABEL.sub("", line.strip()).strip().strip("\"'“”").strip()
        if line:
            return line
    return ""
