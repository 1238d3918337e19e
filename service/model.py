"""Composition helpers: which model folder and tokenizer the settings ask for."""

from __future__ import annotations

from pathlib import Path

from index.model_files import ModelError, bundled_model_dir, verify_weights
from index.tokenizer import ModelTokenizer
from ingest.chunking import ChunkingConfig
from service.settings import Settings


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
