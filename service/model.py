"""Composition helpers: the model folder, tokenizer and embedder that the settings ask for."""

from __future__ import annotations

import os
from pathlib import Path

from index.embedder import SentenceTransformerEmbedder
from index.model_files import ModelError, bundled_model_dir, verify_weights
from index.store import ChunkingParameters
from index.tokenizer import ModelTokenizer
from ingest.chunking import ChunkingConfig
from service.settings import Settings

DEFAULT_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"


def model_dir(settings: Settings) -> Path:
    if settings.model_path is None:
        directory = bundled_model_dir()
        verify_weights(directory, settings.model_sha256)
        return directory
    if not settings.model_path.is_dir():
        raise ModelError(f"the model folder {settings.model_path} does not exist")
    return settings.model_path


def tokenizer_and_config(settings: Settings) -> tuple[ModelTokenizer, ChunkingConfig]:
    tokenizer = ModelTokenizer.from_model_dir(model_dir(settings))
    size = min(settings.chunk_tokens, tokenizer.max_tokens)
    config = ChunkingConfig(
        size=size, overlap=min(settings.overlap_tokens, size - 1), max_tokens=tokenizer.max_tokens
    )
    return tokenizer, config


def chunking_parameters(config: ChunkingConfig) -> ChunkingParameters:
    return ChunkingParameters(config.size, config.overlap, config.max_tokens)


def make_embedder(settings: Settings, threads: int | None = None) -> SentenceTransformerEmbedder:
    """The embedder the settings ask for; cheap: the model itself loads on first use, or at
    `load()`."""
    # The Hugging Face libraries read these when they are imported, which the embedder does
    # only when it loads the model: with them set, a missing file is an error instead of a
    # download attempt.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    directory = model_dir(settings)
    model_id = DEFAULT_MODEL_ID if settings.model_path is None else str(directory.resolve())
    weights = settings.model_sha256 if settings.model_path is None else None
    return SentenceTransformerEmbedder(
        directory,
        model_id=model_id,
        weights_sha256=weights,
        bf16=settings.embed_bf16,
        threads=threads or settings.embed_threads,
    )
