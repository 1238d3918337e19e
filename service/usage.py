"""The `usage` of a chat answer: what the LLM reported, or an estimate in word pieces.

OpenAI's clients and the chat tools on them show and budget by `usage`. A generative answer
reports the LLM's own counts when its server sends them (every LLM request of the answer
together, the follow-up's rewrite included); any other answer is estimated with the embedding
model's tokenizer: the question and the passages read as the prompt, the content as the
completion.
"""

from __future__ import annotations

from typing import Protocol

from service.answerers import EXTRACTIVE
from service.chat_schemas import Usage
from service.engine import AskResult
from service.llm import TokenUsage


class TokenCount(Protocol):
    def count(self, text: str) -> int: ...


def usage(
    result: AskResult, question: str, content: str, reported: TokenUsage, pieces: TokenCount
) -> tuple[Usage, str]:
    """The usage of an answer, and `llm` or `estimate` for where it comes from."""
    if result.answer.answerer != EXTRACTIVE and reported.reported:
        return _usage(reported.prompt_tokens, reported.completion_tokens), "llm"
    read = "\n".join([question, *(hit.chunk.text for hit in result.answer.passages)])
    return _usage(pieces.count(read), pieces.count(content)), "estimate"


def _usage(prompt: int, completion: int) -> Usage:
    return Usage(
        prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion
    )
