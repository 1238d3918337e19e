"""The two pipelines the benchmarks compare: Chancery's and the standard LangChain recipe.

The LangChain side is the recipe FINDINGS.md measured before Chancery existed — PyPDFLoader (and
TextLoader), RecursiveCharacterTextSplitter(1000, 200), the same all-MiniLM-L6-v2 folder, FAISS —
with LangChain's defaults everywhere else, since defaults are what most users run.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import benchlib
from langchain_community.document_loaders import PyPDFLoader, TextLoader
from langchain_community.embeddings import HuggingFaceEmbeddings
from langchain_community.vectorstores import FAISS
from langchain_core.documents import Document as LCDocument
from langchain_core.embeddings import Embeddings
from langchain_text_splitters import RecursiveCharacterTextSplitter

from index.embedder import Embedder
from index.model_files import bundled_model_dir
from ingest.loaders import load_document
from ingest.models import Chunk, Document
from service.ingester import Chunking, Ingester

LC_CHUNK_SIZE = 1000
LC_CHUNK_OVERLAP = 200
CORPUS_FILES = (benchlib.REFERENCE_PDF, benchlib.REFERENCE_TXT)


# -- Chancery ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChunkedCorpus:
    documents: list[tuple[Document, list[Chunk]]]
    parse_s: float
    chunk_s: float

    @property
    def pages(self) -> int:
        return sum(len(document.pages) for document, _ in self.documents)

    @property
    def chunks(self) -> list[Chunk]:
        return [chunk for _, chunks in self.documents for chunk in chunks]


def reference_files(corpus: Path) -> list[Path]:
    return [corpus / name for name in CORPUS_FILES]


def chancery_chunks(corpus: Path | Sequence[Path], chunking: Chunking) -> ChunkedCorpus:
    """Parsed, then chunked, each timed on its own (`Ingester.parse` does both per file).

    `corpus` is the reference corpus folder or a list of files."""
    files = reference_files(corpus) if isinstance(corpus, Path) else list(corpus)
    loaded, parse_s = benchlib.timed(lambda: [load_document(path).document for path in files])
    chunked, chunk_s = benchlib.timed(
        lambda: [(document, chunking.chunk(document)) for document in loaded]
    )
    return ChunkedCorpus(chunked, parse_s, chunk_s)


@dataclass(frozen=True)
class IndexTiming:
    embed_s: float
    write_s: float
    """After the last batch is embedded: FAISS and BM25 builds, SQLite records, fsync, rename."""


def chancery_index(root: Path, corpus: ChunkedCorpus, ingester: Ingester) -> IndexTiming:
    """Embed the chunks and write a complete index version, timing the two phases apart."""
    last_batch = [0.0]

    def progress(_: int) -> None:
        last_batch[0] = time.perf_counter()

    started = time.perf_counter()
    ingester.update(root, corpus.documents, progress=progress)
    ended = time.perf_counter()
    return IndexTiming(last_batch[0] - started, ended - last_batch[0])


def fresh_index_dir() -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix="chancery-bench-")


# -- LangChain ---------------------------------------------------------------------------------


def langchain_load(corpus: Path | Sequence[Path]) -> list[LCDocument]:
    """One LangChain document per PDF page (PyPDFLoader's default), one per text file.

    `corpus` is the reference corpus folder or a list of files."""
    files = reference_files(corpus) if isinstance(corpus, Path) else list(corpus)
    documents: list[LCDocument] = []
    for path in files:
        if path.suffix.lower() == ".pdf":
            documents += PyPDFLoader(str(path)).load()
        else:
            documents += TextLoader(str(path), encoding="utf-8").load()
    return documents


def langchain_split(documents: Sequence[LCDocument]) -> list[LCDocument]:
    splitter = RecursiveCharacterTextSplitter(
        chunk_size=LC_CHUNK_SIZE, chunk_overlap=LC_CHUNK_OVERLAP
    )
    return splitter.split_documents(list(documents))


def langchain_store(chunks: Sequence[LCDocument], embeddings: Embeddings) -> FAISS:
    return FAISS.from_documents(list(chunks), embeddings)


def huggingface_embeddings() -> HuggingFaceEmbeddings:
    """The recipe's own embedding class on the bundled model folder (no download: a local path)."""
    return HuggingFaceEmbeddings(
        model_name=str(bundled_model_dir()), model_kwargs={"device": "cpu"}
    )


class ChanceryEmbeddings(Embeddings):
    """Chancery's embedder behind LangChain's interface, to separate pipeline from model speed."""

    def __init__(self, embedder: Embedder) -> None:
        self._embedder = embedder

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        vectors: list[list[float]] = self._embedder.embed(texts).tolist()
        return vectors

    def embed_query(self, text: str) -> list[float]:
        vector: list[float] = self._embedder.embed([text])[0].tolist()
        return vector


class TimedEmbeddings(Embeddings):
    """Another Embeddings with the seconds spent embedding documents added up, so that the
    vector store's own work in `FAISS.from_documents` can be told apart from the model's."""

    def __init__(self, inner: Embeddings) -> None:
        self._inner = inner
        self.seconds = 0.0

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        vectors, seconds = benchlib.timed(lambda: self._inner.embed_documents(texts))
        self.seconds += seconds
        return vectors

    def embed_query(self, text: str) -> list[float]:
        return self._inner.embed_query(text)


def langchain_location(document: LCDocument) -> tuple[str, int]:
    """(file name, 1-based page): PyPDFLoader's `page` is 0-based; a text file is page 1."""
    metadata: dict[str, Any] = document.metadata
    page = metadata.get("page")
    return Path(str(metadata["source"])).name, 1 if page is None else int(page) + 1
