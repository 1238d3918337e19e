"""Page-level retrieval quality on the gold set: Chancery dense/BM25/hybrid vs the LangChain recipe.

A retrieved chunk is a hit when it comes from an evidence document and its page span covers an
evidence page. Wide chunks cover more pages and so flatter this metric (FINDINGS.md), hence the
column with the number of distinct pages the top 5 cover. All systems use all-MiniLM-L6-v2 from
the same folder; Chancery's index is built by its `Ingester` in a temporary folder.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import benchlib
import recipes

from eval.gold import GoldQuestion
from eval.metrics import retrieval_metrics
from index.modes import Mode
from index.retrieve import Retriever
from index.store import load_index
from service.build import build_ingester
from service.settings import Settings

K = 10
Hit = dict[str, str | int]
"""{"doc", "page_start", "page_end"}: the shape eval.metrics scores."""
Search = Callable[[str], list[Hit]]


@dataclass(frozen=True)
class QuestionResult:
    id: str
    reworded: bool
    metrics: dict[str, float]


@dataclass(frozen=True)
class SystemScore:
    system: str
    questions: int
    hit_at_1: float
    hit_at_5: float
    hit_at_10: float
    mrr_at_10: float
    distinct_pages_top5: float
    hit_at_5_reworded: float
    reworded_questions: int
    hit_at_5_not_reworded: float


def _mean(results: Sequence[QuestionResult], metric: str) -> float:
    return sum(r.metrics[metric] for r in results) / max(len(results), 1)


def score(system: str, results: Sequence[QuestionResult]) -> SystemScore:
    reworded = [r for r in results if r.reworded]
    plain = [r for r in results if not r.reworded]
    return SystemScore(
        system=system,
        questions=len(results),
        hit_at_1=_mean(results, "hit@1"),
        hit_at_5=_mean(results, "hit@5"),
        hit_at_10=_mean(results, "hit@10"),
        mrr_at_10=_mean(results, "mrr@10"),
        distinct_pages_top5=_mean(results, "pages@5"),
        hit_at_5_reworded=_mean(reworded, "hit@5"),
        reworded_questions=len(reworded),
        hit_at_5_not_reworded=_mean(plain, "hit@5"),
    )


def evaluate(search: Search, gold: Sequence[GoldQuestion]) -> list[QuestionResult]:
    """The same per-question metrics as `chancery eval run`, so the two always agree."""
    return [
        QuestionResult(
            question.id,
            question.reworded,
            retrieval_metrics(
                search(question.question)[:K], [e.model_dump() for e in question.evidence]
            ),
        )
        for question in gold
    ]


# -- the systems -----------------------------------------------------------------------------------


def chancery_searches(corpus: Path, root: Path, stack: contextlib.ExitStack) -> dict[str, Search]:
    """Dense, BM25 and hybrid search over a fresh index in `root`, closed when `stack` exits."""
    ingester = build_ingester(Settings())
    embedder = ingester.embedder
    chunked = recipes.chancery_chunks(corpus, ingester.chunking)
    ingester.update(root, chunked.documents)
    index = load_index(root, embedder.identity)
    stack.callback(index.close)
    retriever = Retriever(index, embedder)

    def searcher(mode: Mode) -> Search:
        def search(question: str) -> list[Hit]:
            hits = retriever.search(question, K, mode=mode).hits
            return [
                {"doc": h.file_name, "page_start": h.chunk.page_start, "page_end": h.chunk.page_end}
                for h in hits
            ]

        return search

    return {
        "Chancery hybrid": searcher(Mode.HYBRID),
        "Chancery dense": searcher(Mode.DENSE),
        "Chancery BM25": searcher(Mode.BM25),
    }


def langchain_search(corpus: Path) -> Search:
    chunks = recipes.langchain_split(recipes.langchain_load(corpus))
    store = recipes.langchain_store(chunks, recipes.huggingface_embeddings())

    def search(question: str) -> list[Hit]:
        hits: list[Hit] = []
        for document in store.similarity_search(question, k=K):
            doc, page = recipes.langchain_location(document)
            hits.append({"doc": doc, "page_start": page, "page_end": page})
        return hits

    return search


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.parse_args(argv)
    corpus = benchlib.require_corpus()
    benchlib.quiet_libraries()
    gold = benchlib.answerable_gold()

    with recipes.fresh_index_dir() as tmp, contextlib.ExitStack() as stack:
        searches = chancery_searches(corpus, Path(tmp) / "index", stack)
        searches["LangChain recipe (FAISS, dense)"] = langchain_search(corpus)
        per_question = {name: evaluate(search, gold) for name, search in searches.items()}
    scores = [score(name, results) for name, results in per_question.items()]

    reworded = scores[0].reworded_questions
    print(f"## Retrieval quality, page level ({len(gold)} answerable gold questions, k={K})\n")
    headers = [
        "system",
        "hit@1",
        "hit@5",
        "hit@10",
        "MRR@10",
        "distinct pages in top 5",
        f"hit@5 reworded (n={reworded})",
        f"hit@5 other (n={len(gold) - reworded})",
    ]
    rows = [
        [
            s.system,
            s.hit_at_1,
            s.hit_at_5,
            s.hit_at_10,
            s.mrr_at_10,
            s.distinct_pages_top5,
            s.hit_at_5_reworded,
            s.hit_at_5_not_reworded,
        ]
        for s in scores
    ]
    print(benchlib.markdown_table(headers, rows, digits=3))
    path = benchlib.write_results(
        "retrieval_quality",
        {
            "k": K,
            "scores": [asdict(s) for s in scores],
            "per_question": {
                name: [asdict(r) for r in results] for name, results in per_question.items()
            },
        },
    )
    print(f"\nJSON: {path.relative_to(benchlib.REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
