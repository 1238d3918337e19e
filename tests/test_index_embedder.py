"""The real default model: offline, checked, normalised; and the one-sentence failures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from index.embedder import length_batches
from index.model_files import (
    DEFAULT_MODEL_SHA256,
    ModelError,
    bundled_model_dir,
    embedding_dimension,
    verify_weights,
)
from service.build import build_embedder, model_dir
from service.settings import Settings


@pytest.fixture(scope="module")
def embedder():  # type: ignore[no-untyped-def]
    return build_embedder(Settings())


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


def test_length_batches_keep_each_batch_within_the_token_budget() -> None:
    lengths = [5, 200, 30, 30, 7, 500, 1, 30]
    batches = length_batches(lengths, budget=64, cap=3)
    assert sorted(position for batch in batches for position in batch) == list(range(8))
    assert batches[0] == [5]  # longer than the budget: alone
    for batch in batches:
        assert len(batch) <= 3
        if len(batch) > 1:
            assert max(lengths[p] for p in batch) * len(batch) <= 64
    # Longest first, so that each batch pads to a length close to its members'.
    firsts = [lengths[batch[0]] for batch in batches]
    assert firsts == sorted(firsts, reverse=True)


def test_batching_by_length_returns_vectors_in_the_callers_order(embedder) -> None:  # type: ignore[no-untyped-def]
    texts = [
        "Short.",
        " ".join(["The strategy names Russia and China as partners."] * 30),
        "A sentence of middling length about the armed forces of Serbia.",
        "Kosovo.",
    ]
    together = embedder.embed(texts)
    alone = np.vstack([embedder.embed([text]) for text in texts])
    # Equal up to arithmetic (bf16 where the CPU has it): padding differs between the calls.
    assert ((together * alone).sum(axis=1) > 0.999).all()
    assert (together @ alone.T).argmax(axis=1).tolist() == [0, 1, 2, 3]


def test_the_identity_needs_no_model_load_and_matches_the_loaded_model() -> None:
    fresh = build_embedder(Settings())
    from_files = fresh.identity
    assert not fresh.loaded and fresh.load_seconds is None
    assert fresh.load() is fresh and fresh.loaded
    seconds = fresh.load_seconds
    assert seconds is not None and seconds > 0
    fresh.load()
    assert fresh.load_seconds == seconds  # loaded once
    assert fresh.identity == from_files


def _model_folder(tmp_path: Path, modules: list[dict[str, str]], files: dict[str, object]) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "modules.json").write_text(json.dumps(modules))
    for name, content in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(json.dumps(content))
    return folder


_TRANSFORMER = {"path": "", "type": "sentence_transformers.models.Transformer"}
_POOLING = {"path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}
_DENSE = {"path": "2_Dense", "type": "sentence_transformers.models.Dense"}
_NORMALIZE = {"path": "3_Normalize", "type": "sentence_transformers.models.Normalize"}


@pytest.mark.parametrize(
    ("modules", "files", "dimension"),
    [
        (  # the bundled model's layout, with the older pooling flags
            [_TRANSFORMER, _POOLING, _NORMALIZE],
            {
                "1_Pooling/config.json": {
                    "word_embedding_dimension": 384,
                    "pooling_mode_mean_tokens": True,
                }
            },
            384,
        ),
        (  # two pooling modes are concatenated
            [_TRANSFORMER, _POOLING],
            {
                "1_Pooling/config.json": {
                    "embedding_dimension": 256,
                    "pooling_mode": ["mean", "max"],
                }
            },
            512,
        ),
        (  # a dense layer after pooling decides
            [_TRANSFORMER, _POOLING, _DENSE, _NORMALIZE],
            {
                "1_Pooling/config.json": {"embedding_dimension": 768, "pooling_mode": "cls"},
                "2_Dense/config.json": {"in_features": 768, "out_features": 128},
            },
            128,
        ),
        (  # a model saved truncated (Matryoshka) says so in its own config
            [_TRANSFORMER, _POOLING],
            {
                "1_Pooling/config.json": {"embedding_dimension": 768, "pooling_mode": "mean"},
                "config_sentence_transformers.json": {"truncate_dim": 256},
            },
            256,
        ),
        (  # a module it does not know: only the loaded model can say
            [_TRANSFORMER, {"path": "1_X", "type": "somewhere.Unknown"}],
            {"1_X/config.json": {"size": 3}},
            None,
        ),
    ],
)
def test_the_dimension_is_read_from_the_module_configs(
    tmp_path: Path, modules: list[dict[str, str]], files: dict[str, object], dimension: int | None
) -> None:
    assert embedding_dimension(_model_folder(tmp_path, modules, files)) == dimension


def test_a_model_that_contradicts_its_files_refuses_to_embed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Indexes are checked against the files' dimension, so the model must confirm it on load.
    monkeypatch.setattr("index.embedder.embedding_dimension", lambda _: 100)
    embedder = build_embedder(Settings())
    assert embedder.identity.dimension == 100
    with pytest.raises(ModelError, match=r"384-dimensional vectors.*say 100"):
        embedder.embed(["a question"])
