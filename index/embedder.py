"""Text embeddings: a small protocol and the sentence-transformers implementation.

The model is read from a local folder only (HF_HUB_OFFLINE semantics: `local_files_only`), its
weights checked against a SHA-256 before use. On CPUs with native bfloat16 the forward pass runs
under bf16 autocast, which doubles throughput with cosine ≥ 0.9999 to fp32 (FINDINGS.md).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, Protocol

import numpy as np
import numpy.typing as npt

from index.model_files import ModelError, embedding_dimension, file_sha256, max_sequence_tokens

if TYPE_CHECKING:
    from types import ModuleType

    from sentence_transformers import SentenceTransformer

Vectors = npt.NDArray[np.float32]
TOKEN_BUDGET = 8192
"""Padded tokens per forward pass. Texts are batched by their token length, so a batch of short
sentences holds many and one of long chunks few: a fixed batch size pads a short sentence to the
longest in its batch (44% of the sentence pass was padding on the reference corpus) or gives
long texts batches too small to share the per-batch cost. Measured on the reference corpus in
fp32: sentences 1.5x and chunks 1.2x faster than fixed batches of 128 and 32, same vectors."""
MAX_BATCH = 512


def length_batches(lengths: Sequence[int], budget: int, cap: int = MAX_BATCH) -> list[list[int]]:
    """Positions of texts in batches, longest first, each batch's padded size within `budget`
    (a text longer than the budget goes alone)."""
    order = sorted(range(len(lengths)), key=lambda position: -lengths[position])
    batches: list[list[int]] = []
    start = 0
    while start < len(order):
        size = min(cap, max(1, budget // max(lengths[order[start]], 1)))
        batches.append(order[start : start + size])
        start += size
    return batches


class Embedder(Protocol):
    @property
    def identity(self) -> EmbedderIdentity: ...

    def embed(self, texts: Sequence[str]) -> Vectors:
        """L2-normalised float32 vectors, one row per text."""
        ...

    def embed_spans(
        self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]]
    ) -> tuple[Vectors, Vectors]:
        """Vectors of the texts, and of the character spans inside each (all spans of the
        first text, then of the second, ...), all L2-normalised."""
        ...


@dataclass(frozen=True)
class EmbedderIdentity:
    """What an index records about the model that built it; a mismatch refuses the load."""

    model_id: str
    weights_sha256: str
    dimension: int
    max_tokens: int


class _Loaded(NamedTuple):
    model: SentenceTransformer
    torch: ModuleType


def cpu_has_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


class SentenceTransformerEmbedder:
    """Loads torch and the model on first use, not when built: commands that only read an index
    (remove, BM25 search) need its identity, which the model's files give, and should not wait
    seconds for weights they never use. A service calls `load()` at startup instead.
    """

    def __init__(
        self,
        model_dir: Path,
        *,
        model_id: str,
        weights_sha256: str | None = None,
        token_budget: int = TOKEN_BUDGET,
        bf16: bool | None = None,
        threads: int | None = None,
    ) -> None:
        weights = model_dir / "model.safetensors"
        self._model_dir = model_dir
        self._model_id = model_id
        self._weights_sha256 = weights_sha256 or (file_sha256(weights) if weights.is_file() else "")
        self._dimension = embedding_dimension(model_dir)
        self._max_tokens = max_sequence_tokens(model_dir) - 2
        self._token_budget = token_budget
        self._bf16 = cpu_has_bf16() if bf16 is None else bf16
        self._threads = threads
        self._loaded: _Loaded | None = None
        self._load_lock = threading.Lock()
        self.load_seconds: float | None = None
        """How long loading torch and the model took; None while not loaded."""
        self.calls = 0

    @property
    def identity(self) -> EmbedderIdentity:
        """Read from the model's files; the model loads only if they do not give the dimension."""
        if self._dimension is None:
            self.load()  # the files did not say; only the model can
        assert self._dimension is not None
        return EmbedderIdentity(
            self._model_id, self._weights_sha256, self._dimension, self._max_tokens
        )

    @property
    def loaded(self) -> bool:
        return self._loaded is not None

    def load(self) -> SentenceTransformerEmbedder:
        """Load torch and the model now (once, however many threads ask); returns itself."""
        self._ensure_loaded()
        return self

    def _ensure_loaded(self) -> _Loaded:
        loaded = self._loaded
        if loaded is not None:
            return loaded
        with self._load_lock:
            if self._loaded is None:
                started = time.perf_counter()
                self._loaded = self._load_model()
                self.load_seconds = time.perf_counter() - started
            return self._loaded

    def _load_model(self) -> _Loaded:
        import torch
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        # Its "Loading weights" bar would land on stderr between our progress lines.
        transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
        if self._threads:
            torch.set_num_threads(self._threads)
        directory = self._model_dir
        try:
            model = SentenceTransformer(str(directory), device="cpu", local_files_only=True)
        except (OSError, ValueError) as exc:
            raise ModelError(f"cannot load the embedding model from {directory}: {exc}") from exc
        dimension = model.get_embedding_dimension()
        if dimension is None:
            raise ModelError(f"the model in {directory} does not say its embedding dimension")
        if self._dimension is None:
            self._dimension = int(dimension)
        elif self._dimension != dimension:
            # Indexes were checked against the dimension the files gave; vectors of another
            # length must not be written into them.
            raise ModelError(
                f"the model in {directory} makes {dimension}-dimensional vectors, but its "
                f"configuration files say {self._dimension}; reinstall the model files"
            )
        return _Loaded(model, torch)

    def embed(self, texts: Sequence[str]) -> Vectors:
        self.calls += 1
        return self._encode(texts)

    def _encode(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self.identity.dimension), dtype=np.float32)
        model, torch = self._ensure_loaded()
        vectors = np.empty((len(texts), self.identity.dimension), dtype=np.float32)
        with (
            torch.inference_mode(),
            torch.autocast("cpu", dtype=torch.bfloat16, enabled=self._bf16),
        ):
            for batch in length_batches(self._token_lengths(texts), self._token_budget):
                vectors[batch] = model.encode(
                    [texts[position] for position in batch],
                    batch_size=len(batch),
                    normalize_embeddings=True,
                    convert_to_numpy=True,
                    show_progress_bar=False,
                )
        return vectors

    def _token_lengths(self, texts: Sequence[str]) -> list[int]:
        """Each text's length in model tokens, as the model will truncate it."""
        if len(texts) == 1:
            return [1]  # one batch whatever its length; a question need not be tokenised twice
        model = self._ensure_loaded().model
        encoded = model.tokenizer(
            list(texts), truncation=True, max_length=model.max_seq_length, verbose=False
        )
        return [len(ids) for ids in encoded["input_ids"]]

    def embed_spans(
        self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]]
    ) -> tuple[Vectors, Vectors]:
        """Each span is encoded on its own, as a question will be.

        Pooling a sentence's token embeddings from its chunk's forward pass would save the
        second pass (ingest 2.5x faster), but those contextual vectors sit further from
        questions: on the gold set, missed abstentions rose from 31% to 54% at the same rate of
        false ones. Answers that abstain correctly are worth the slower ingest.
        """
        self.calls += 1
        pieces = [text[a:b] for text, own in zip(texts, spans, strict=True) for a, b in own]
        # Overlapping chunks repeat sentences.
        unique = list(dict.fromkeys(pieces))
        vectors = self._encode(unique)
        row = {piece: number for number, piece in enumerate(unique)}
        span_vectors = vectors[[row[piece] for piece in pieces]] if pieces else vectors
        return self._encode(texts), span_vectors
