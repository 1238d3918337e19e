"""Every `Embedder` implementation passes the same contract (tests/embedder_contract.py)."""

from __future__ import annotations

from index.embedder import Embedder, SentenceTransformerEmbedder
from index.model_files import DEFAULT_MODEL_SHA256, bundled_model_dir
from tests.embedder_contract import EmbedderContract
from tests.fakes import FakeEmbedder


class TestFakeEmbedder(EmbedderContract):
    @classmethod
    def new_embedder(cls) -> Embedder:
        return FakeEmbedder()


class TestSentenceTransformerEmbedder(EmbedderContract):
    @classmethod
    def new_embedder(cls) -> Embedder:
        # Built directly rather than from Settings, so the contract does not depend on how the
        # service composes its parts. fp32: bf16 exists only on some CPUs.
        return SentenceTransformerEmbedder(
            bundled_model_dir(),
            model_id="sentence-transformers/all-MiniLM-L6-v2",
            weights_sha256=DEFAULT_MODEL_SHA256,
            bf16=False,
        )
