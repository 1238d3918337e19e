"""Every `Answerer` implementation passes the same contract (tests/answerer_contract.py)."""

from __future__ import annotations

import pytest

from index.embedder import Embedder
from index.store import Index
from service.answering import Answerer
from service.extractive import AnswerConfig, ExtractiveAnswerer
from service.generative import GenerativeAnswerer
from service.llm import LangChainChat, LlmConfig
from service.tokens import ByteEstimate
from tests.answerer_contract import UNANSWERABLE, AnswererContract
from tests.llm_stub import ChatRequest, Reply, ScriptedLLM, good_answer, not_in_passages


class TestExtractiveAnswerer(AnswererContract):
    @classmethod
    def new_answerer(cls, index: Index, embedder: Embedder) -> Answerer:
        # The thresholds were calibrated for the real model's cosines; the fake embedder's
        # bags of words score lower.
        return ExtractiveAnswerer(index, embedder, AnswerConfig(min_similarity=0.4))


class TestGenerativeAnswerer(AnswererContract):
    """Over the scripted LLM (tests/llm_stub.py), through the real LangChain client: it quotes
    the passages' first sentences, and declines the question they do not answer."""

    llm: ScriptedLLM

    @pytest.fixture(scope="class", autouse=True)
    @classmethod
    def scripted(cls, _scripted_llm_server: ScriptedLLM) -> None:
        def script(request: ChatRequest) -> Reply:
            if request.question() in UNANSWERABLE:
                return not_in_passages(request)
            return good_answer(request)

        _scripted_llm_server.reset()
        _scripted_llm_server.script = script
        cls.llm = _scripted_llm_server

    @classmethod
    def new_answerer(cls, index: Index, embedder: Embedder) -> Answerer:
        chat = LangChainChat(LlmConfig(base_url=cls.llm.base_url, model="stub", timeout_s=10))
        return GenerativeAnswerer(index, embedder, chat, ByteEstimate())
