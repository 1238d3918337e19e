"""Which sentence an answer opens with: never one that leans on a sentence the reader has not
seen ("For instance, ...", "However, ...") when a standalone one is at hand.

Scores rank sentences by how well they match the question, and an illustration often matches
best; read first, it makes the answer sound like the middle of a paragraph and hides the direct
answer behind it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import TypeVar

Item = TypeVar("Item")

_DANGLING = re.compile(
    r"^(?:for (?:instance|example)|however|in other words|moreover|furthermore|in addition"
    r"|additionally|therefore|thus|hence|consequently|as a result|accordingly|nevertheless"
    r"|nonetheless|even so|similarly|likewise|on the other hand|in contrast|by contrast"
    r"|instead|besides|meanwhile|otherwise|indeed|in fact|that is|at the same time|also)(?=[,\s])",
    re.IGNORECASE,
)


def dangles(sentence: str) -> bool:
    """Whether the sentence opens with a connective that points back to one before it."""
    return _DANGLING.match(sentence.lstrip(' "“‘(')) is not None


def standalone_first(items: Sequence[Item], text: Callable[[Item], str]) -> list[Item]:
    """The items in their order, except that the first standalone one leads when the first
    one dangles; all dangling (or none) keeps the order."""
    ordered = list(items)
    if not ordered or not dangles(text(ordered[0])):
        return ordered
    lead = next((i for i, item in enumerate(ordered) if not dangles(text(item))), None)
    if lead is None:
        return ordered
    return [ordered[lead], *ordered[:lead], *ordered[lead + 1 :]]
