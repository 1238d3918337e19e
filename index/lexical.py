"""BM25 with bm25s (sparse matrices, saved without pickle), English stop words and Snowball stems.

The index is built once at ingest and saved beside the vectors; queries only tokenize the
question and read the saved matrices. A search scores bm25s's matrix itself, exactly as
`BM25.retrieve` does, but without going through it: `retrieve` hands every call to a new thread
pool, and on a busy two-core machine waiting for that thread cost more than the scoring
(bench/scale.py measures both paths).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from pathlib import Path

import bm25s
import numpy as np
import numpy.typing as npt
import Stemmer
from bm25s.stopwords import STOPWORDS_EN
from bm25s.tokenization import Tokenizer

_STOPWORDS = "en"
_WORDS = re.compile(r"(?u)\b\w\w+\b")
"""bm25s's own token pattern, so that analysed questions match the index vocabulary."""
_LANGUAGE = "english"
_VOCAB_FILE = "vocab.tokenizer.json"


def _tokenizer() -> Tokenizer:
    return Tokenizer(stemmer=Stemmer.Stemmer(_LANGUAGE), stopwords=_STOPWORDS)


class LexicalIndex:
    def __init__(self, retriever: bm25s.BM25, tokenizer: Tokenizer, size: int) -> None:
        self._retriever = retriever
        self._tokenizer = tokenizer
        self.size = size
        self._vocabulary = tokenizer.get_vocab_dict()
        self._blank = {i for word, i in self._vocabulary.items() if not word.strip()}
        self._stemmer = Stemmer.Stemmer(_LANGUAGE)
        self._stopwords = frozenset(STOPWORDS_EN)
        self._document_frequency = (
            np.diff(retriever.scores["indptr"]) if size else np.zeros(0, dtype=np.int64)
        )

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

    def analyze(self, text: str) -> list[str]:
        """The stems BM25 sees in `text`: lower-cased, stop words dropped, Snowball-stemmed."""
        words = [w for w in _WORDS.findall(text.lower()) if w not in self._stopwords]
        stems: list[str] = self._stemmer.stemWords(words)
        return stems

    def document_frequency(self, stem: str) -> int:
        token_id = self._vocabulary.get(stem)
        if token_id is None or token_id >= len(self._document_frequency):
            return 0
        return int(self._document_frequency[token_id])

    def idf(self, stem: str) -> float:
        """BM25's inverse document frequency; a stem the corpus never uses gets the highest."""
        frequency = self.document_frequency(stem)
        return math.log(1 + (self.size - frequency + 0.5) / (frequency + 0.5))

    def search(
        self, query: str, k: int, allowed: npt.NDArray[np.bool_] | None = None
    ) -> list[tuple[int, float]]:
        """(row, score) of the best k rows with a positive score."""
        if self.size == 0:
            return []
        ids = self.query_ids(query)
        if not ids:
            return []
        scores = self._scores(ids)
        if allowed is not None:
            scores *= allowed.astype(np.float32)
        rows = best_rows(scores, k)
        return [(int(row), float(scores[row])) for row in rows]

    def query_ids(self, query: str) -> list[int]:
        """The vocabulary ids of the query's stems that the index knows."""
        ids: list[int] = self._tokenizer.tokenize(
            [query], update_vocab=False, return_as="ids", show_progress=False
        )[0]
        return [token_id for token_id in ids if token_id not in self._blank]

    def _scores(self, ids: list[int]) -> npt.NDArray[np.float32]:
        """Every row's BM25 score for the query's stems, summed as `BM25.get_scores` sums them
        (stem by stem in the query's order, in float32), so that results match it exactly."""
        matrix = self._retriever.scores
        data, indices, indptr = matrix["data"], matrix["indices"], matrix["indptr"]
        scores = np.zeros(int(matrix["num_docs"]), dtype=np.dtype(self._retriever.dtype))
        for token in ids:
            start, end = indptr[token], indptr[token + 1]
            # A stem's postings name each row once, so a plain indexed add is exact (and many
            # times faster than np.add.at, which allows repeats).
            scores[indices[start:end]] += data[start:end]
        nonoccurrence = self._retriever.nonoccurrence_array
        if nonoccurrence is not None:  # BM25 variants that score absent stems; not Lucene's
            scores += nonoccurrence[ids].sum()
        return scores

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


def best_rows(scores: npt.NDArray[np.float32], k: int) -> npt.NDArray[np.int64]:
    """The rows of the k best positive scores, best first, equal scores in row order.

    Equal BM25 scores are common (the same term counts in chunks of the same length), and a
    partial sort leaves their order to the algorithm, which NumPy picks by CPU (its SIMD sorts):
    by row, a search gives the same ranking on every machine, and a sharded one the same as one
    index."""
    positive = np.flatnonzero(scores > 0)
    if len(positive) > k:
        # The k-th best value (a value, not a position: the same whatever the algorithm), and
        # every row that reaches it, ties included.
        kth = np.partition(scores[positive], len(positive) - k)[len(positive) - k]
        positive = positive[scores[positive] >= kth]
    order = np.lexsort((positive, -scores[positive]))[:k]
    return positive[order]
