"""What the LLM reads: instructions, the passages numbered, and the question, within a budget.

Passages go in rank order and whole while they fit; the first that does not fit is cut at a
sentence end when at least a useful part of it fits, and the rest are left out, so that the model
never reads a passage the service will not let it cite. Any model that can follow instructions
can answer in this format; nothing requires JSON or tool calling.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from index.retrieve import Hit
from service.tokens import TokenCounter

DECLINE = "NOT_IN_PASSAGES"
"""What the model answers when the passages do not answer the question."""

INSTRUCTIONS = f"""You answer questions about documents for diplomats, using only the numbered \
passages you are given.
Rules:
- Answer in at most {{max_sentences}} short sentences, each stating one fact from the passages.
- End every sentence with the numbers of the passages it rests on, in square brackets: [2] or \
[1][3]. A sentence without a passage number will be deleted.
- Copy names, numbers and dates exactly as the passages give them. Never add facts, names or \
figures the passages do not contain, and never mix up who did what.
- If the passages do not answer the question, reply with exactly: {DECLINE}
- No introduction, no closing remarks, no headings."""

JSON_INSTRUCTIONS = """
Reply with a JSON object: {"sentences": [{"text": "...", "passages": [1, 3]}]}, or \
{"sentences": []} when the passages do not answer the question."""

_TAG = re.compile(r"</?\s*(?:passage|question)\b", re.IGNORECASE)
_SENTENCE_END = re.compile(r"[.!?](?=\s|$)|\n")
_MIN_PARTIAL_TOKENS = 64
"""Below this, a cut passage says too little to cite; better left out."""


@dataclass(frozen=True)
class Prompt:
    system: str
    user: str
    passages: list[Hit]
    """The passages the model read, in their numbering: passage n is `passages[n - 1]`."""
    texts: list[str]
    """What the model read of each: the passage, or its first sentences when it was cut."""
    tokens: int
    """The prompt's size as the counter counts it."""


def build_prompt(
    question: str,
    hits: Sequence[Hit],
    counter: TokenCounter,
    *,
    budget: int,
    max_sentences: int = 4,
    json_output: bool = False,
) -> Prompt:
    """The prompt for `question`, at most `budget` tokens (the context window minus what the
    answer may take) when the question and instructions fit at all."""
    system = INSTRUCTIONS.format(max_sentences=max_sentences)
    if json_output:
        system += JSON_INSTRUCTIONS
    ask = f"<question>{_inert(question)}</question>"
    used = counter.count(system) + counter.count(ask) + 8  # role and separator tokens
    blocks: list[str] = []
    kept: list[Hit] = []
    texts: list[str] = []
    for hit in hits:
        n = len(kept) + 1
        text = hit.chunk.text
        block = _block(n, hit, text)
        size = counter.count(block) + 1
        if used + size > budget:
            cut = _cut(text, counter, budget - used - counter.count(_block(n, hit, "")) - 1)
            if cut is None:
                break
            text = cut
            block = _block(n, hit, text)
            size = counter.count(block) + 1
        blocks.append(block)
        kept.append(hit)
        texts.append(text)
        used += size
        if text != hit.chunk.text:
            break
    user = "\n".join([*blocks, ask])
    return Prompt(system, user, kept, texts, used)


def _block(n: int, hit: Hit, text: str) -> str:
    chunk = hit.chunk
    pages = (
        str(chunk.page_start)
        if chunk.page_start == chunk.page_end
        else f"{chunk.page_start}-{chunk.page_end}"
    )
    title = escape(hit.title, quote=True)
    return f'<passage n="{n}" title="{title}" page="{pages}">\n{_inert(text)}\n</passage>'


def _inert(text: str) -> str:
    """`text` without anything the model could read as one of the prompt's own tags: a
    document (or a question) that writes "</passage>" must not end its passage early."""
    return _TAG.sub(lambda tag: tag.group().replace("<", "‹"), text)


def _cut(text: str, counter: TokenCounter, room: int) -> str | None:
    """The longest run of whole sentences from the start of `text` within `room` tokens."""
    if room < _MIN_PARTIAL_TOKENS:
        return None
    best = None
    for end in _SENTENCE_END.finditer(text):
        if counter.count(text[: end.end()]) > room:
            break
        best = text[: end.end()]
    return best
