"""Every `Answerer` implementation passes the same contract (tests/answerer_contract.py)."""

from __future__ import annotations

from index.embedder import Embedder
from index.store import Index
from service.answering import Answerer
from service.extractive import AnswerConfig, ExtractiveAnswerer
from tests.answerer_contract import AnswererContract


class TestExtractiveAnswerer(AnswererContract):
    @classmethod
    def new_answerer(cls, index: Index, embedder: Embedder) -> Answerer:
        # The thresholds were calibrated for the real model's cosines; the fake embedder's
        # bags of words score lower.
        return ExtractiveAnswerer(index, embedder, AnswerConfig(min_similarity=0.4))
