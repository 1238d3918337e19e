"""The real default model: offline, checked, normalised; and the one-sentence failures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from index.model_files import DEFAULT_MODEL_SHA256, ModelError, bundled_model_dir, verify_weights
from service.model import make_embedder, model_dir
from service.settings import Settings


@pytest.fixture(scope="module")
def embedder():  # type: ignore[no-untyped-def]
    return make_embedder(Settings())


def test_bundled_weights_match_the_pinned_sha256() -> None:
    assert verify_weights(bundled_model_dir(), DEFAULT_MODEL_SHA256) == DEFAULT_MODEL_SHA256


def test_a_wrong_checksum_is_a_clear_error() -> None:
    with pytest.raises(ModelError, match="expected 0000"):
        model_dir(Settings(model_sha256="0" * 64))


def test_a_missing_model_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        model_dir(Settings(model_path=tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match=r"no model\.safetensors"):
        verify_weights(tmp_path / "empty", DEFAULT_MODEL_SHA256)


def test_vectors_are_normalised_float32_and_meaningful(embedder) -> None:  # type: ignore[no-untyped-def]
    vectors = embedder.embed(
        [
            "Serbia buys weapons from Russia.",
            "Belgrade purchases arms from Moscow.",
            "The recipe needs two eggs and flour.",
        ]
    )
    assert vectors.dtype == np.float32 and vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    similar, unrelated = vectors[0] @ vectors[1], vectors[0] @ vectors[2]
    assert similar > 0.5 > unrelated
    identity = embedder.identity
    assert (identity.weights_sha256, identity.dimension, identity.max_tokens) == (
        DEFAULT_MODEL_SHA256,
        384,
        254,
    )
