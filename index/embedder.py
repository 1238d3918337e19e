"""Text embeddings: a small protocol and the sentence-transformers implementation.

The model is read from a local folder only (HF_HUB_OFFLINE semantics: `local_files_only`), its
weights checked against a SHA-256 before use. On CPUs with native bfloat16 the forward pass runs
under bf16 autocast, which doubles throughput with cosine ≥ 0.9999 to fp32 (FINDINGS.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

from index.model_files import ModelError, file_sha256, max_sequence_tokens

Vectors = npt.NDArray[np.float32]
_SHORT_TEXT_BATCH = 128


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


def cpu_has_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


class SentenceTransformerEmbedder:
    def __init__(
        self,
        model_dir: Path,
        *,
        model_id: str,
        weights_sha256: str | None = None,
        batch_size: int = 32,
        bf16: bool | None = None,
        threads: int | None = None,
    ) -> None:
        # Imported here so that commands which never embed (inspect, remove) start fast.
        import torch
        from sentence_transformers import SentenceTransformer

        if threads:
            torch.set_num_threads(threads)
        try:
            model = SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)
        except (OSError, ValueError) as exc:
            raise ModelError(f"cannot load the embedding model from {model_dir}: {exc}") from exc
        dimension = model.get_embedding_dimension()
        if dimension is None:
            raise ModelError(f"the model in {model_dir} does not say its embedding dimension")
        weights = model_dir / "model.safetensors"
        self._model = model
        self._torch = torch
        self._batch_size = batch_size
        self._bf16 = cpu_has_bf16() if bf16 is None else bf16
        self._identity = EmbedderIdentity(
            model_id=model_id,
            weights_sha256=weights_sha256 or (file_sha256(weights) if weights.is_file() else ""),
            dimension=int(dimension),
            max_tokens=max_sequence_tokens(model_dir) - 2,
        )
        self.calls = 0

    @property
    def identity(self) -> EmbedderIdentity:
        return self._identity

    def embed(self, texts: Sequence[str]) -> Vectors:
        self.calls += 1
        return self._encode(texts, self._batch_size)

    def _encode(self, texts: Sequence[str], batch_size: int) -> Vectors:
        if not texts:
            return np.zeros((0, self._identity.dimension), dtype=np.float32)
        with (
            self._torch.inference_mode(),
            self._torch.autocast("cpu", dtype=self._torch.bfloat16, enabled=self._bf16),
        ):
            vectors = self._model.encode(
                list(texts),
                batch_size=batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)

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
        # Overlapping chunks repeat sentences; and short inputs run twice as fast in large
        # batches, where per-sequence overhead is shared (measured: 39 s -> 18 s for 846).
        unique = list(dict.fromkeys(pieces))
        vectors = self._encode(unique, _SHORT_TEXT_BATCH)
        row = {piece: number for number, piece in enumerate(unique)}
        span_vectors = vectors[[row[piece] for piece in pieces]] if pieces else vectors
        return self._encode(texts, self._batch_size), span_vectors
