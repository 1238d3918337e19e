"""BM25 with bm25s (sparse matrices, saved without pickle), English stop words and Snowball stems.

The index is built once at ingest and saved beside the vectors; queries only tokenize the
question and read the saved matrices.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import bm25s
import numpy as np
import numpy.typing as npt
import Stemmer
from bm25s.tokenization import Tokenizer

_STOPWORDS = "en"
_LANGUAGE = "english"
_VOCAB_FILE = "vocab.tokenizer.json"


def _tokenizer() -> Tokenizer:
    return Tokenizer(stemmer=Stemmer.Stemmer(_LANGUAGE), stopwords=_STOPWORDS)


class LexicalIndex:
    def __init__(self, retriever: bm25s.BM25, tokenizer: Tokenizer, size: int) -> None:
        self._retriever = retriever
        self._tokenizer = tokenizer
        self.size = size
        vocabulary = tokenizer.get_vocab_dict()
        self._blank = {token_id for word, token_id in vocabulary.items() if not word.strip()}

    @classmethod
    def build(cls, texts: Sequence[str]) -> LexicalIndex:
        tokenizer = _tokenizer()
        retriever = bm25s.BM25()
        if texts:
            tokens = tokenizer.tokenize(
                list(texts), update_vocab=True, return_as="tuple", show_progress=False
            )
            retriever.index(tokens, show_progress=False)
        return cls(retriever, tokenizer, len(texts))

    def search(
        self, query: str, k: int, allowed: npt.NDArray[np.bool_] | None = None
    ) -> list[tuple[int, float]]:
        """(row, score) of the best k rows with a positive score."""
        if self.size == 0:
            return []
        ids = self._tokenizer.tokenize(
            [query], update_vocab=False, return_as="ids", show_progress=False
        )[0]
        ids = [token_id for token_id in ids if token_id not in self._blank]
        if not ids:
            return []
        mask = None if allowed is None else allowed.astype(np.float32)
        rows, scores = self._retriever.retrieve(
            [ids], k=min(k, self.size), show_progress=False, weight_mask=mask, n_threads=1
        )
        return [(int(r), float(s)) for r, s in zip(rows[0], scores[0], strict=True) if s > 0]

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        if self.size:
            self._retriever.save(str(directory))
            self._tokenizer.save_vocab(str(directory), vocab_name=_VOCAB_FILE)
        (directory / "size.json").write_text(json.dumps({"size": self.size}))

    @classmethod
    def load(cls, directory: Path) -> LexicalIndex:
        size = int(json.loads((directory / "size.json").read_text())["size"])
        tokenizer = _tokenizer()
        retriever = bm25s.BM25()
        if size:
            retriever = bm25s.BM25.load(str(directory), mmap=False, load_corpus=False)
            tokenizer.load_vocab(str(directory), vocab_name=_VOCAB_FILE)
        return cls(retriever, tokenizer, size)
