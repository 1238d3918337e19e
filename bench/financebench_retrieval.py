"""Page-level retrieval on the FinanceBench development filings: Chancery vs the LangChain recipe,
each filing searched alone and all twelve in one collection.

Twelve real 10-K/10-Q filings and 34 questions with evidence pages (`../shared/financebench-dev`).
A retrieved passage is a hit when it comes from the evidence filing and its page span covers an
evidence page, as `eval/` scores. Two settings:

- single filing: each question searched only within its evidence filing (FinanceBench's "single
  document" track). Chancery passes the filing as `Retriever.search`'s `documents` filter; the
  recipe gets one FAISS store per filing, built from the same vectors. Both searches are exact
  (flat indexes), so neither side loses passages to a post-filter.
- all twelve: one index holding every filing. Here a question about 3M's FY2018 must not be
  answered from 3M's 2022 filing, so the table also counts top-1 passages from the right company's
  other filing and from another company.

Embedding twelve filings takes minutes on a small machine, so `--cache` keeps Chancery's embedded
index and the recipe's vectors between runs. Each is keyed by a SHA-256 of what was embedded (the
chunks, their pages and sentences, or the recipe's split texts) and of the model and chunking, so
a change to parsing, chunking or the model never reuses a stale cache; files are parsed and split
on every run to compute that key (about half a minute). Chancery's index is rewritten from the
cached vectors on every run, so BM25 always reflects the current code.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import benchlib
import numpy as np
import recipes
from langchain_community.vectorstores import FAISS
from langchain_core.documents import Document as LCDocument

from eval.gold import GoldQuestion, load_gold
from eval.metrics import retrieval_metrics
from index.embedder import EmbedderIdentity
from index.modes import Mode
from index.retrieve import Retriever
from index.store import (
    ChunkingParameters,
    current_version,
    load_index,
    write_version,
    writer_lock,
)
from ingest.models import Chunk, Document
from ingest.sentences import sentence_spans
from service.build import build_ingester
from service.ingester import Ingester
from service.settings import Settings

K = 10
FINANCEBENCH = benchlib.REPO.parent / "shared" / "financebench-dev"
DEFAULT_CACHE = benchlib.REPO / "var" / "bench-cache" / "financebench"
ALL = "all twelve filings"
SINGLE = "single filing"
Hit = dict[str, str | int]
"""{"doc", "page_start", "page_end"}: the shape eval.metrics scores."""
Search = Callable[[str, str | None], list[Hit]]
"""(question, the one file to search or None for all) -> hits, best first."""


@dataclass(frozen=True)
class QuestionResult:
    id: str
    evidence_doc: str
    top_doc: str | None
    metrics: dict[str, float]


@dataclass(frozen=True)
class SystemScore:
    system: str
    setting: str
    questions: int
    hit_at_1: float
    hit_at_5: float
    hit_at_10: float
    mrr_at_10: float
    top1_evidence_filing: int
    top1_same_company_other_filing: int
    top1_other_company: int


def company(file_name: str) -> str:
    """FinanceBench names filings COMPANY_PERIOD_FORM.pdf."""
    return file_name.split("_", 1)[0]


def _mean(results: Sequence[QuestionResult], metric: str) -> float:
    return sum(r.metrics[metric] for r in results) / max(len(results), 1)


def score(system: str, setting: str, results: Sequence[QuestionResult]) -> SystemScore:
    def count(where: Callable[[QuestionResult], bool]) -> int:
        return sum(1 for r in results if r.top_doc is not None and where(r))

    return SystemScore(
        system=system,
        setting=setting,
        questions=len(results),
        hit_at_1=_mean(results, "hit@1"),
        hit_at_5=_mean(results, "hit@5"),
        hit_at_10=_mean(results, "hit@10"),
        mrr_at_10=_mean(results, "mrr@10"),
        top1_evidence_filing=count(lambda r: r.top_doc == r.evidence_doc),
        top1_same_company_other_filing=count(
            lambda r: (
                r.top_doc != r.evidence_doc and company(str(r.top_doc)) == company(r.evidence_doc)
            )
        ),
        top1_other_company=count(lambda r: company(str(r.top_doc)) != company(r.evidence_doc)),
    )


def evidence_doc(question: GoldQuestion) -> str:
    docs = {e.doc for e in question.evidence}
    if len(docs) != 1:
        raise ValueError(f"{question.id}: evidence in {len(docs)} filings, expected one")
    return docs.pop()


def evaluate(search: Search, gold: Sequence[GoldQuestion], single: bool) -> list[QuestionResult]:
    results = []
    for question in gold:
        doc = evidence_doc(question)
        hits = search(question.question, doc if single else None)[:K]
        metrics = retrieval_metrics(hits, [e.model_dump() for e in question.evidence])
        top = str(hits[0]["doc"]) if hits else None
        results.append(QuestionResult(question.id, doc, top, metrics))
    return results


# -- caching -----------------------------------------------------------------------------------


def _digest(parts: object) -> str:
    data = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str).encode("utf-8")
    return hashlib.sha256(data).hexdigest()[:24]


def chancery_key(
    identity: EmbedderIdentity,
    chunking: ChunkingParameters,
    documents: Sequence[tuple[Document, Sequence[Chunk]]],
) -> str:
    """Everything the embedded index depends on: the model, the chunking parameters, and every
    chunk, page and sentence as this run's code produced them from these files."""
    return _digest(
        {
            "embedder": asdict(identity),
            "chunking": asdict(chunking),
            "documents": [
                {
                    "document": [document.doc_id, document.file_name, document.title],
                    "sha256": document.sha256,
                    "pages": _digest([asdict(page) for page in document.pages]),
                    "chunks": _digest([asdict(chunk) for chunk in chunks]),
                    "sentences": _digest([sentence_spans(chunk.text) for chunk in chunks]),
                }
                for document, chunks in documents
            ],
        }
    )


def langchain_key(identity: EmbedderIdentity, chunks: Sequence[LCDocument]) -> str:
    return _digest(
        {
            "embedder": asdict(identity),
            "chunks": [[recipes.langchain_location(chunk), chunk.page_content] for chunk in chunks],
        }
    )


# -- the systems -----------------------------------------------------------------------------------


def chancery_searches(
    files: Sequence[Path], root: Path, cache: Path | None, stack: contextlib.ExitStack
) -> tuple[dict[str, Search], Ingester]:
    """Dense, BM25 and hybrid search over one index of all `files`, written in `root`."""
    ingester = build_ingester(Settings())
    embedder = ingester.embedder
    parameters = ingester.chunking.parameters
    documents = recipes.chancery_chunks(files, ingester.chunking).documents
    if cache is None:
        ingester.update(root, documents)
    else:
        cached = cache / f"chancery-{chancery_key(embedder.identity, parameters, documents)}"
        if current_version(cached) is None:
            print(f"Embedding the filings for Chancery into {cached} ...", flush=True)
            ingester.update(cached, documents)
        built = load_index(cached, embedder.identity, parameters)
        try:
            entries = list(built.entries())
        finally:
            built.close()
        # A fresh version from the cached vectors: BM25 and the records come from today's code.
        with writer_lock(root):
            write_version(root, entries, embedder.identity, parameters)
    index = load_index(root, embedder.identity)
    stack.callback(index.close)
    named = Retriever(index, embedder)
    # Hybrid as it was before questions could name their filings: the measure of that change.
    unnamed = Retriever(index, embedder, named_weight=0.0)

    def searcher(mode: Mode, retriever: Retriever = named) -> Search:
        def search(question: str, only: str | None) -> list[Hit]:
            documents = [only] if only is not None else None
            hits = retriever.search(question, K, mode=mode, documents=documents).hits
            return [
                {"doc": h.file_name, "page_start": h.chunk.page_start, "page_end": h.chunk.page_end}
                for h in hits
            ]

        return search

    searches = {
        "Chancery hybrid": searcher(Mode.HYBRID),
        "Chancery hybrid, file names unused": searcher(Mode.HYBRID, unnamed),
        "Chancery dense": searcher(Mode.DENSE),
        "Chancery BM25": searcher(Mode.BM25),
    }
    return searches, ingester


def langchain_search(
    files: Sequence[Path], identity: EmbedderIdentity, cache: Path | None
) -> Search:
    """The recipe over all files in one FAISS store, and one store per file for the single
    setting, all from one embedding pass (cached under `cache` when given)."""
    chunks = recipes.langchain_split(recipes.langchain_load(files))
    embeddings = recipes.huggingface_embeddings()
    texts = [chunk.page_content for chunk in chunks]
    path = None if cache is None else cache / f"langchain-{langchain_key(identity, chunks)}.npy"
    if path is not None and path.is_file():
        vectors = np.load(path, allow_pickle=False)
    else:
        print("Embedding the filings for the LangChain recipe ...", flush=True)
        vectors = np.asarray(embeddings.embed_documents(texts), dtype=np.float32)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Written beside, then renamed: a run killed mid-write leaves no truncated cache.
            partial = path.with_name(f".{path.stem}.partial.npy")
            np.save(partial, vectors, allow_pickle=False)
            partial.replace(path)
    names = [recipes.langchain_location(chunk)[0] for chunk in chunks]

    def store(rows: Sequence[int]) -> FAISS:
        pairs = [(texts[row], vectors[row].tolist()) for row in rows]
        return FAISS.from_embeddings(pairs, embeddings, [chunks[row].metadata for row in rows])

    stores: dict[str | None, FAISS] = {None: store(range(len(chunks)))}
    for name in sorted(set(names)):
        stores[name] = store([row for row, own in enumerate(names) if own == name])

    def search(question: str, only: str | None) -> list[Hit]:
        hits: list[Hit] = []
        for document in stores[only].similarity_search(question, k=K):
            doc, page = recipes.langchain_location(document)
            hits.append({"doc": doc, "page_start": page, "page_end": page})
        return hits

    return search


# -- report ----------------------------------------------------------------------------------------


def _tables(scores: Sequence[SystemScore], questions: int) -> str:
    parts = []
    for setting in (SINGLE, ALL):
        wrong = setting == ALL
        headers = ["system", "hit@1", "hit@5", "hit@10", "MRR@10"]
        if wrong:
            headers += ["top-1 same company, other filing", "top-1 other company"]
        rows: list[list[benchlib.Cell]] = []
        for s in scores:
            if s.setting != setting:
                continue
            row: list[benchlib.Cell] = [s.system, s.hit_at_1, s.hit_at_5, s.hit_at_10, s.mrr_at_10]
            if wrong:
                row += [s.top1_same_company_other_filing, s.top1_other_company]
            rows.append(row)
        parts.append(
            f"### {setting} ({questions} questions, k={K})\n\n"
            + benchlib.markdown_table(headers, rows, digits=3)
        )
    return "\n\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--cache",
        type=Path,
        default=DEFAULT_CACHE,
        help=f"folder that keeps the embedded filings between runs (default {DEFAULT_CACHE})",
    )
    parser.add_argument("--no-cache", action="store_true", help="embed everything afresh")
    parser.add_argument(
        "--data", type=Path, default=FINANCEBENCH, help="the financebench-dev folder"
    )
    args = parser.parse_args(argv)
    questions_file = args.data / "questions.jsonl"
    files = sorted((args.data / "pdfs").glob("*.pdf"))
    if not questions_file.is_file() or not files:
        print(f"FinanceBench-dev is missing: expected questions.jsonl and pdfs/ in {args.data}.")
        return 2
    cache: Path | None = None if args.no_cache else args.cache
    benchlib.quiet_libraries()
    gold = [question for question in load_gold(questions_file) if question.answerable]

    with recipes.fresh_index_dir() as tmp, contextlib.ExitStack() as stack:
        searches, ingester = chancery_searches(files, Path(tmp) / "index", cache, stack)
        searches["LangChain recipe (FAISS, dense)"] = langchain_search(
            files, ingester.embedder.identity, cache
        )
        per_question = {
            (name, setting): evaluate(search, gold, single=setting == SINGLE)
            for name, search in searches.items()
            for setting in (SINGLE, ALL)
        }
    scores = [score(name, setting, results) for (name, setting), results in per_question.items()]

    print(f"## FinanceBench-dev retrieval, page level ({len(files)} filings)\n")
    print(_tables(scores, len(gold)))
    path = benchlib.write_results(
        "financebench_retrieval",
        {
            "k": K,
            "filings": [f.name for f in files],
            "scores": [asdict(s) for s in scores],
            "per_question": {
                f"{name} / {setting}": [asdict(r) for r in results]
                for (name, setting), results in per_question.items()
            },
        },
    )
    print(f"\nJSON: {path.relative_to(benchlib.REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
