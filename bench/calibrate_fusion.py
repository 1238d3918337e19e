"""Choose hybrid retrieval's fusion out of sample: the reciprocal-rank constant and the weight of
the best-sentence ranking, by 5-fold cross-validation on the reference corpus's gold set.

For every answerable gold question the three rankings are computed once (the chunk vectors' and
BM25's top 50, and those candidates by their best sentence); each grid point fuses them
(`index.retrieve.fuse`). On four folds the point with the best MRR@10 is chosen and scored on
the fifth; the held-out figures, pooled over the folds, are what the chosen fusion can be
expected to do on questions nobody tuned on. Scored at page level, as `eval/` scores: a passage
is relevant when its pages cover an evidence page; with `distinct pages`, at most one passage
per page is kept (what `/v1/search` returns by default).
"""

from __future__ import annotations

import argparse
import itertools
import random
from collections.abc import Sequence
from dataclasses import dataclass

import benchlib

from eval.gold import GoldQuestion
from index.modes import Mode
from index.retrieve import RRF_K, SENTENCE_WEIGHT, Retriever, by_best_sentence, fuse
from index.store import Index

DEPTH = 50
FOLDS = 5
SEED = 7
K_GRID = (0, 1, 2, 5, 10, 60)
WEIGHT_GRID = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0)

Ranking = list[tuple[int, float]]


@dataclass(frozen=True)
class Question:
    id: str
    dense: Ranking
    lexical: Ranking
    sentences: Ranking
    relevant: frozenset[int]
    """Rows of the candidate chunks that cover an evidence page."""
    page_of: dict[int, tuple[str, int]]
    """Each candidate row's (document, first page), for keeping one passage per page."""


@dataclass(frozen=True)
class Scores:
    hit1: float
    hit5: float
    mrr10: float


def rankings(index: Index, retriever: Retriever, gold: Sequence[GoldQuestion]) -> list[Question]:
    documents = {d.doc_id: d.file_name for d in index.documents()}
    questions = []
    for question in gold:
        dense_hits = retriever.search(question.question, DEPTH, Mode.DENSE, distinct_pages=False)
        lexical_hits = retriever.search(question.question, DEPTH, Mode.BM25, distinct_pages=False)
        query = retriever.search(question.question, 1, Mode.DENSE).query_vector
        assert query is not None
        hits = {h.row: h for h in [*dense_hits.hits, *lexical_hits.hits]}
        evidence = {(e.doc, e.page) for e in question.evidence}
        relevant = frozenset(
            row
            for row, hit in hits.items()
            if any(
                documents[hit.chunk.doc_id] == doc
                and hit.chunk.page_start <= page <= hit.chunk.page_end
                for doc, page in evidence
            )
        )
        questions.append(
            Question(
                question.id,
                [(h.row, h.score) for h in dense_hits.hits],
                [(h.row, h.score) for h in lexical_hits.hits],
                by_best_sentence(index, hits, query[0]),
                relevant,
                {row: (hit.chunk.doc_id, hit.chunk.page_start) for row, hit in hits.items()},
            )
        )
    return questions


def ranked(question: Question, k: float, weight: float, distinct_pages: bool) -> list[int]:
    fused = fuse([(question.dense, 1.0), (question.lexical, 1.0), (question.sentences, weight)], k)
    rows = [row for row, _ in fused]
    if not distinct_pages:
        return rows
    seen: set[tuple[str, int]] = set()
    kept = []
    for row in rows:
        if question.page_of[row] not in seen:
            seen.add(question.page_of[row])
            kept.append(row)
    return kept


def score(questions: Sequence[Question], k: float, weight: float, distinct_pages: bool) -> Scores:
    hit1 = hit5 = mrr = 0.0
    for question in questions:
        top = ranked(question, k, weight, distinct_pages)[:10]
        first = next((n for n, row in enumerate(top, 1) if row in question.relevant), None)
        hit1 += first == 1
        hit5 += first is not None and first <= 5
        mrr += 1 / first if first else 0.0
    n = len(questions)
    return Scores(hit1 / n, hit5 / n, mrr / n)


def cross_validate(
    questions: Sequence[Question], distinct_pages: bool
) -> tuple[Scores, list[tuple[float, float]]]:
    order = list(range(len(questions)))
    random.Random(SEED).shuffle(order)
    folds = [order[i::FOLDS] for i in range(FOLDS)]
    grid = list(itertools.product(K_GRID, WEIGHT_GRID))
    held: list[Scores] = []
    sizes: list[int] = []
    chosen = []
    for fold in folds:
        test = [questions[i] for i in fold]
        train = [questions[i] for i in order if i not in set(fold)]
        best = max(grid, key=lambda point: score(train, *point, distinct_pages).mrr10)
        chosen.append(best)
        held.append(score(test, *best, distinct_pages))
        sizes.append(len(test))
    total = sum(sizes)
    pooled = Scores(
        *(
            sum(getattr(s, name) * size for s, size in zip(held, sizes, strict=True)) / total
            for name in ("hit1", "hit5", "mrr10")
        )
    )
    return pooled, chosen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.parse_args(argv)
    benchlib.quiet_libraries()
    gold = benchlib.answerable_gold()
    with benchlib.corpus_index() as (index, embedder):
        questions = rankings(index, Retriever(index, embedder), gold)
    rows = []
    results = []
    for distinct in (False, True):
        fixed = [
            ("two rankings, k 60 (before)", 60, 0.0),
            ("three rankings, k 5, weight 0.5", 5, 0.5),
            (f"shipped (k {RRF_K}, weight {SENTENCE_WEIGHT})", RRF_K, SENTENCE_WEIGHT),
        ]
        for label, k, weight in fixed:
            s = score(questions, k, weight, distinct)
            rows.append([label, "in sample", distinct, s.hit1, s.hit5, s.mrr10])
            results.append({"label": label, "distinct_pages": distinct, **vars(s)})
        held, chosen = cross_validate(questions, distinct)
        rows.append(["chosen per fold", "held out", distinct, held.hit1, held.hit5, held.mrr10])
        results.append({"label": "cv", "distinct_pages": distinct, "chosen": chosen, **vars(held)})
    print(
        f"## Hybrid fusion, {len(questions)} answerable gold questions, page level "
        f"({FOLDS}-fold CV over k {K_GRID} x sentence weight {WEIGHT_GRID})\n"
    )
    headers = ["fusion", "measured", "distinct pages", "hit@1", "hit@5", "MRR@10"]
    print(benchlib.markdown_table(headers, rows, digits=3))
    path = benchlib.write_results("calibrate_fusion", {"results": results})
    print(f"\nWrote {path.relative_to(benchlib.REPO)}.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
