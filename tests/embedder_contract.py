"""The tests every `Embedder` implementation must pass, as Haystack's document-store suites do.

Subclass `EmbedderContract` in a test module as `TestSomething` and implement the classmethod
`new_embedder`; pytest then runs every test below against that implementation. The index relies
on each of these properties: vectors are compared by inner product (so rows must be unit
length), an index is refused to any other identity (so it must not drift), and a question is
embedded alone while chunks and sentences are embedded in batches (so a text's vector must not
depend on its batch).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pytest

from index.embedder import Embedder, EmbedderIdentity, Vectors

TOLERANCE = 1e-5
"""How far a vector may move with its batch: padding changes float sums by about 3e-7 in fp32."""
TEXTS = (
    "Serbia buys weapons from Russia.",
    "The recipe needs two eggs and flour.",
    "Gas storage must be full before winter.",
)
AWKWARD_TEXTS = (
    "Сербия покупает оружие у России.",  # Cyrillic
    "塞尔维亚从俄罗斯购买武器。",  # CJK, no spaces between words
    "",
    "   \n\t ",
    "!!! … ???",
    "the",  # a stop word alone
    "émigré naïveté 🇷🇸 ∑",
)
_SHA256 = re.compile(r"[0-9a-f]{64}")


class EmbedderContract:
    """Mixed into a `Test...` class that says how to build the implementation under test."""

    @classmethod
    def new_embedder(cls) -> Embedder:
        raise NotImplementedError("a contract test class builds its embedder here")

    @pytest.fixture(scope="class")
    @classmethod
    def embedder(cls) -> Embedder:
        # One per class: a real model takes seconds to load.
        return cls.new_embedder()

    def test_identity_fields_are_sane(self, embedder: Embedder) -> None:
        identity = embedder.identity
        assert isinstance(identity, EmbedderIdentity)
        assert identity.model_id.strip()
        # The index refuses a mismatch by weights hash; anything but a SHA-256 could collide.
        assert _SHA256.fullmatch(identity.weights_sha256)
        assert isinstance(identity.dimension, int) and identity.dimension > 0
        assert isinstance(identity.max_tokens, int) and identity.max_tokens > 0

    def test_identity_is_the_same_before_and_after_embedding(self) -> None:
        fresh = self.new_embedder()
        before = fresh.identity
        fresh.embed(["a first text"])
        fresh.embed_spans(["a second text"], [[(0, 8)]])
        assert fresh.identity == before
        assert self.new_embedder().identity == before

    def test_vectors_are_float32_unit_rows_of_the_identity_dimension(
        self, embedder: Embedder
    ) -> None:
        vectors = embedder.embed(TEXTS)
        assert isinstance(vectors, np.ndarray)
        assert vectors.dtype == np.float32
        assert vectors.shape == (len(TEXTS), embedder.identity.dimension)
        _assert_unit_rows(vectors)

    def test_the_same_input_gives_the_same_vectors(self, embedder: Embedder) -> None:
        np.testing.assert_allclose(embedder.embed(TEXTS), embedder.embed(TEXTS), atol=TOLERANCE)

    def test_a_text_gets_the_same_vector_alone_as_in_a_batch(self, embedder: Embedder) -> None:
        batch = embedder.embed(TEXTS)
        for row, text in enumerate(TEXTS):
            np.testing.assert_allclose(batch[row], embedder.embed([text])[0], atol=TOLERANCE)

    def test_different_texts_get_different_vectors(self, embedder: Embedder) -> None:
        vectors = embedder.embed([*TEXTS, TEXTS[0]])
        np.testing.assert_allclose(vectors[0], vectors[-1], atol=TOLERANCE)
        for a in range(len(TEXTS)):
            for b in range(a + 1, len(TEXTS)):
                assert float(vectors[a] @ vectors[b]) < 0.99, (TEXTS[a], TEXTS[b])

    def test_no_texts_give_an_empty_matrix_of_the_right_width(self, embedder: Embedder) -> None:
        vectors = embedder.embed([])
        assert vectors.dtype == np.float32
        assert vectors.shape == (0, embedder.identity.dimension)

    def test_unicode_and_empty_ish_texts_embed_without_error(self, embedder: Embedder) -> None:
        vectors = embedder.embed(AWKWARD_TEXTS)
        assert vectors.shape == (len(AWKWARD_TEXTS), embedder.identity.dimension)
        _assert_unit_rows(vectors)

    def test_a_text_longer_than_the_model_reads_is_embedded(self, embedder: Embedder) -> None:
        long_text = " ".join(["security"] * (4 * embedder.identity.max_tokens))
        _assert_unit_rows(embedder.embed([long_text]))

    def test_span_vectors_are_the_spans_embedded_alone_in_order(self, embedder: Embedder) -> None:
        texts = [
            "The council meets. Its secretary writes the minutes. The council meets.",
            "No sentence here is embedded on its own.",
            "Сербия покупает оружие. 塞尔维亚购买武器。",
        ]
        spans: list[list[tuple[int, int]]] = [
            # The first and third spans are the same words: an implementation that embeds each
            # distinct piece once must still hand back one vector per span, in order.
            [(0, 18), (19, 52), (53, 71)],
            [],
            [(0, 23), (24, len(texts[2]))],
        ]
        chunk_vectors, span_vectors = embedder.embed_spans(texts, spans)

        np.testing.assert_allclose(chunk_vectors, embedder.embed(texts), atol=TOLERANCE)
        pieces = [text[a:b] for text, own in zip(texts, spans, strict=True) for a, b in own]
        assert span_vectors.dtype == np.float32
        assert span_vectors.shape == (len(pieces), embedder.identity.dimension)
        for row, piece in enumerate(pieces):
            np.testing.assert_allclose(
                span_vectors[row], embedder.embed([piece])[0], atol=TOLERANCE
            )
        _assert_unit_rows(span_vectors)

    def test_texts_without_spans_give_no_span_vectors(self, embedder: Embedder) -> None:
        dimension = embedder.identity.dimension
        chunk_vectors, span_vectors = embedder.embed_spans(TEXTS, [[] for _ in TEXTS])
        assert chunk_vectors.shape == (len(TEXTS), dimension)
        assert span_vectors.dtype == np.float32 and span_vectors.shape == (0, dimension)

        chunk_vectors, span_vectors = embedder.embed_spans([], [])
        assert chunk_vectors.shape == span_vectors.shape == (0, dimension)


def _assert_unit_rows(vectors: Vectors | Sequence[Sequence[float]]) -> None:
    matrix = np.asarray(vectors)
    assert np.isfinite(matrix).all()
    np.testing.assert_allclose(np.linalg.norm(matrix, axis=1), 1.0, atol=1e-4)
