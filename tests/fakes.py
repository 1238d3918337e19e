"""A deterministic embedder for fast tests (hashed bag of words, counting what it embeds), and
small indexes built with it."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from index.embedder import Embedder, EmbedderIdentity, Vectors
from index.store import ChunkingParameters, Index, load_index
from index.update import update_index
from ingest.chunking import ChunkingConfig, chunk_document
from ingest.loaders import load_bytes
from ingest.models import Chunk, Document
from tests.conftest import WhitespaceTokenizer

_WORD = re.compile(r"\w+")


class FakeEmbedder:
    def __init__(self, dimension: int = 64, weights_sha256: str = "f" * 64) -> None:
        self._identity = EmbedderIdentity("fake-bag-of-words", weights_sha256, dimension, 254)
        self.calls = 0
        self.texts_embedded = 0

    @property
    def identity(self) -> EmbedderIdentity:
        return self._identity

    def embed(self, texts: Sequence[str]) -> Vectors:
        self.calls += 1
        self.texts_embedded += len(texts)
        vectors = np.zeros((len(texts), self._identity.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in _WORD.findall(text.lower()):
                digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
                vectors[row, int.from_bytes(digest[:4], "little") % self._identity.dimension] += 1
            vectors[row, 0] += 1e-3  # no all-zero rows
        normalised: Vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        return normalised

    def embed_spans(
        self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]]
    ) -> tuple[Vectors, Vectors]:
        pieces = [
            text[start:end] for text, own in zip(texts, spans, strict=True) for start, end in own
        ]
        span_vectors = (
            self.embed(pieces) if pieces else np.zeros((0, self._identity.dimension), np.float32)
        )
        return self.embed(texts), span_vectors


CHUNKING_CONFIG = ChunkingConfig(size=40, overlap=8, max_tokens=60)
"""Small chunks, so that a few sentences make several chunks and pages."""
CHUNKING = ChunkingParameters(
    CHUNKING_CONFIG.size, CHUNKING_CONFIG.overlap, CHUNKING_CONFIG.max_tokens
)


def fake_document(name: str, text: str) -> tuple[Document, list[Chunk]]:
    """A file as ingest would load and chunk it (form feeds separate pages in a .txt)."""
    document = load_bytes(name, text.encode()).document
    return document, chunk_document(document, WhitespaceTokenizer(), CHUNKING_CONFIG)


def build_index(root: Path, files: Mapping[str, str], embedder: Embedder) -> Index:
    """An index of `files` (name -> text) in `root`, loaded; the caller closes it."""
    update_index(root, [fake_document(n, t) for n, t in files.items()], embedder, CHUNKING)
    return load_index(root, embedder.identity, CHUNKING)
