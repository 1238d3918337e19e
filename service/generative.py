"""Generative answers: an LLM writes from the numbered passages, and only what checks out leaves.

The model's draft is read sentence by sentence as it streams in. Each sentence is a claim
(`service.draft`) that must name the passages it rests on; `service.claims` finds the quote in
those passages that supports it, or says why none does; `service.citations` checks the quote on
its page. A sentence passes all three or is dropped, and the answer is made of the sentences that
passed, in the model's words, each followed by its markers. When none passes, the answer is an
abstention with the closest passages (the service may then fall back to the extractive answer).

The time spent waiting on the model (for its first token and each one after, not the checks in
between) is the answer's signal `llm_ms`, which the engine reports among the answer's timings.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field, replace

from index.embedder import Embedder, Vectors
from index.retrieve import Hit
from index.store import Index
from service import abstain
from service.answering import (
    Answer,
    AnswererFactory,
    AnswerPart,
    Citation,
    Drafting,
    Sentence,
)
from service.citations import Numbering, cite_in_chunk
from service.claims import ClaimChecker, ClaimRules, Verdict
from service.draft import Claim, ClaimReader, declines, json_claims
from service.engine import LLM_MS
from service.llm import ChatModel, Delta, LlmError, LlmOptions
from service.prompt import Prompt, build_prompt
from service.tokens import TokenCounter

log = logging.getLogger("chancery")

NAME = "generative"


@dataclass(frozen=True)
class GenerativeConfig:
    max_sentences: int = 4
    context_tokens: int = 8192
    """The model's context window."""
    answer_tokens: int = 512
    """Kept free of the prompt for the answer."""
    json_output: bool = False
    rules: ClaimRules = field(default_factory=ClaimRules)
    english_only: bool = True


def generative(
    chat: ChatModel, counter: TokenCounter, config: GenerativeConfig | None = None
) -> AnswererFactory:
    """The factory an engine calls for each index version it loads."""
    return lambda index, embedder: GenerativeAnswerer(index, embedder, chat, counter, config)


class GenerativeAnswerer:
    name = NAME

    def __init__(
        self,
        index: Index,
        embedder: Embedder,
        chat: ChatModel,
        counter: TokenCounter,
        config: GenerativeConfig | None = None,
    ) -> None:
        self._index = index
        self._chat = chat
        self._counter = counter
        self._config = config or GenerativeConfig()
        self._options: LlmOptions | None = None
        self._checker = ClaimChecker(
            index.records, index.lexical, index.sentence_vectors(), embedder, self._config.rules
        )

    def tuned(self, options: LlmOptions) -> GenerativeAnswerer:
        """This answerer with one request's LLM options; the index, checker and model are
        shared. The answer's tokens are kept to half the context, so the passages still fit."""
        tuned = copy.copy(self)
        tuned._options = options
        if options.max_tokens is not None:
            answer_tokens = min(options.max_tokens, self._config.context_tokens // 2)
            tuned._options = replace(options, max_tokens=answer_tokens)
            tuned._config = replace(self._config, answer_tokens=answer_tokens)
        return tuned

    def answer(
        self, question: str, passages: Sequence[Hit], *, query_vector: Vectors | None = None
    ) -> Answer:
        for part in self.stream(question, passages, query_vector=query_vector):
            if isinstance(part, Answer):
                return part
        raise AssertionError("a stream ends with its answer")

    def stream(
        self, question: str, passages: Sequence[Hit], *, query_vector: Vectors | None = None
    ) -> Iterator[AnswerPart]:
        """Raises `LlmError` when the model fails before a sentence is out; after that, the
        answer keeps the sentences verified so far and says that it was cut off."""
        hits = list(passages)
        config = self._config
        if not hits:
            yield self._abstain(question, hits, _Draft())
            return
        prompt = build_prompt(
            question,
            hits,
            self._counter,
            budget=config.context_tokens - config.answer_tokens,
            max_sentences=config.max_sentences,
            json_output=config.json_output,
        )
        if not prompt.passages:
            raise LlmError(
                f"the question and instructions alone fill the model's context of "
                f"{config.context_tokens} tokens"
            )
        draft = _Draft()
        try:
            yield from self._write(prompt, draft)
        except LlmError as exc:
            if not draft.sentences:
                raise LlmError(str(exc), tuple(draft.dropped)) from exc
            draft.notes.append(
                f"The model's answer broke off ({exc}); the sentences verified before that "
                "are shown."
            )
        log.info(
            "generative answer: %d sentences drafted, %d kept; dropped: %s",
            draft.claims,
            len(draft.sentences),
            "; ".join(draft.dropped) or "none",
        )
        if not draft.sentences:
            yield self._abstain(question, hits, draft)
            return
        yield Answer(
            draft.text,
            False,
            draft.numbering.citations,
            hits,
            draft.signals(),
            answerer=NAME,
            dropped=tuple(draft.dropped),
            notes=tuple(draft.notes),
        )

    def _write(self, prompt: Prompt, draft: _Draft) -> Iterator[AnswerPart]:
        """Reads the model's reply and yields each sentence that passes, as it passes."""
        reader = ClaimReader()
        finish: str | None = None
        started = False
        deltas = _timed(lambda: self._chat.stream(prompt.system, prompt.user, self._options), draft)
        try:
            for delta in deltas:
                if not started:
                    started = True
                    yield Drafting()
                finish = delta.finish_reason or finish
                if self._config.json_output:
                    reader.text += delta.text  # JSON is read whole, once complete
                    continue
                for claim in reader.feed(delta.text):
                    yield from self._admit(claim, prompt, draft)
        except LlmError:
            self._unfinished(reader.finish(), draft)
            raise
        finally:
            deltas.close()  # at once, when the client has gone: the model stops writing
        if self._config.json_output:
            claims = json_claims(reader.text)
            if claims is None:
                claims = ClaimReader().feed(reader.text + "\n")
            for claim in claims:
                yield from self._admit(claim, prompt, draft)
            return
        tail = reader.finish()
        if finish == "stop":
            for claim in tail:
                yield from self._admit(claim, prompt, draft)
            return
        self._unfinished(tail, draft)
        if finish is None:
            raise LlmError("the LLM's reply ended before its end-of-answer mark")
        draft.notes.append(f"The model stopped early (finish reason: {finish}).")

    def _unfinished(self, tail: list[Claim], draft: _Draft) -> None:
        """The sentence open when the model stopped early is dropped: a figure cut short ("1"
        of "1.5%") could still pass the checks."""
        for claim in tail:
            draft.claims += 1
            draft.dropped.append(f"sentence {claim.number}: the model stopped mid-sentence")

    def _admit(self, claim: Claim, prompt: Prompt, draft: _Draft) -> Iterator[Sentence]:
        if declines(claim.text) and not claim.passages:
            draft.declined = True
            return
        draft.claims += 1
        if len(draft.sentences) == self._config.max_sentences:
            draft.dropped.append(f"sentence {claim.number}: more than the answer needs")
            return
        verdict = self._checker.check(claim, prompt.passages, prompt.texts)
        sentence = None if verdict.reason else self._cite(verdict, draft)
        if sentence is None:
            reason = verdict.reason or "its quote is not on the page the passage gives"
            draft.dropped.append(f"sentence {claim.number}: {reason}")
            log.debug("dropped %r: %s", claim.text, reason)
            return
        draft.similarities.append(verdict.supports[0].similarity)
        yield sentence

    def _cite(self, verdict: Verdict, draft: _Draft) -> Sentence | None:
        """The claim as the answer's next sentence, with a citation for each supporting quote
        that stands verbatim on its page; None when none does."""
        separator = " " if draft.text else ""
        start = len(draft.text) + len(separator)
        span = (start, start + len(verdict.claim.text))
        citations: list[Citation] = []
        for support in verdict.supports:
            citation = cite_in_chunk(
                self._index.records,
                support.hit,
                support.start,
                support.quote,
                round(support.similarity, 4),
                answer_span=span,
            )
            if citation is not None:
                citations.append(citation)
        if not citations:
            return None
        numbered = [(draft.numbering.number(c), c) for c in citations]
        marks = "".join(f"[{n}]" for n in dict.fromkeys(n for n, _ in numbered))
        draft.text += f"{separator}{verdict.claim.text} {marks}"
        sentence = Sentence(verdict.claim.text, numbered)
        draft.sentences.append(sentence)
        return sentence

    def _abstain(self, question: str, hits: list[Hit], draft: _Draft) -> Answer:
        answer = abstain.abstention(question, hits, draft.signals(), self._config.english_only)
        return replace(
            answer, answerer=NAME, dropped=tuple(draft.dropped), notes=tuple(draft.notes)
        )


@dataclass
class _Draft:
    """What one answer has accumulated while the model writes."""

    text: str = ""
    sentences: list[Sentence] = field(default_factory=list)
    numbering: Numbering = field(default_factory=Numbering)
    claims: int = 0
    dropped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    similarities: list[float] = field(default_factory=list)
    declined: bool = False
    llm_seconds: float | None = None
    """Time spent waiting on the model; None when it was not asked."""

    def signals(self) -> dict[str, float]:
        signals = {
            "drafted": float(self.claims),
            "verified": float(len(self.sentences)),
            "declined": float(self.declined),
            "min_claim_similarity": round(min(self.similarities, default=0.0), 4),
        }
        if self.llm_seconds is not None:
            signals[LLM_MS] = round(self.llm_seconds * 1000, 3)
        return signals


def _timed(start: Callable[[], Iterator[Delta]], draft: _Draft) -> Generator[Delta, None, None]:
    """The model's reply, adding to `draft.llm_seconds` the time spent in the model's call and
    in each wait for its next piece, and none of the time between two pieces (checking a
    sentence, or the client reading it). Closing this closes the reply (and its connection)."""
    draft.llm_seconds = draft.llm_seconds or 0.0
    deltas: Iterator[Delta] | None = None
    try:
        while True:
            began = time.perf_counter()
            try:
                if deltas is None:
                    deltas = start()
                delta = next(deltas)
            except StopIteration:
                return
            finally:
                draft.llm_seconds = (draft.llm_seconds or 0.0) + time.perf_counter() - began
            yield delta
    finally:
        if isinstance(deltas, Generator):
            deltas.close()
