"""Answer-to-gold similarity with the same offline sentence-transformers model Chancery ships."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from eval.harness import Similarity


def model_similarity(model_dir: Path) -> Similarity:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)

    def similarity(answers: Sequence[str], references: Sequence[str]) -> list[float]:
        if not answers:
            return []
        left = model.encode(list(answers), normalize_embeddings=True, show_progress_bar=False)
        right = model.encode(list(references), normalize_embeddings=True, show_progress_bar=False)
        return [round(float(x), 4) for x in np.sum(left * right, axis=1)]

    return similarity
