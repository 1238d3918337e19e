"""The retrieval modes, in a module of their own so the command line can name them without
importing FAISS and BM25 (half a second of `chancery --help`)."""

from __future__ import annotations

from enum import StrEnum


class Mode(StrEnum):
    HYBRID = "hybrid"
    DENSE = "dense"
    BM25 = "bm25"
