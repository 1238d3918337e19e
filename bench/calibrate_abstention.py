"""Calibrate the answerer's abstention on the gold set, and report the rates it gives.

Runs every gold question (answerable and not) through hybrid retrieval and the extractive
answerer with abstention switched off, records the signals the answerer decides on, and sweeps
the similarity threshold: for each cap on false abstentions (answerable questions refused) it
prints the threshold that misses the fewest unanswerable ones. Names that the documents never
mention abstain regardless of the threshold. The rates are in-sample: the thresholds were
chosen on these same questions.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from benchlib import GOLD, markdown_table, quiet_libraries, require_corpus, write_results

from eval.gold import load_gold
from index.retrieve import Retriever
from index.store import load_index
from service.build import build_ingester
from service.extractive import AnswerConfig, ExtractiveAnswerer
from service.settings import Settings

CAPS = (0.05, 0.10, 0.15, 0.20, 0.30)


def main() -> None:
    quiet_libraries()
    corpus = require_corpus()
    ingester = build_ingester(Settings())
    embedder = ingester.embedder
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        files = [
            corpus / name for name in ("kcss-serbia-security-doctrine.pdf", "kcss-report-news.txt")
        ]
        ingester.update(root, ingester.parse(files).documents)
        index = load_index(root, embedder.identity)
        retriever = Retriever(index, embedder)
        answerer = ExtractiveAnswerer(
            index, embedder, AnswerConfig(min_similarity=-1.0, min_coverage=-1.0)
        )
        for gold in load_gold(GOLD):
            found = retriever.search(gold.question, 8)
            answer = answerer.answer(gold.question, found.hits, query_vector=found.query_vector)
            rows.append({"id": gold.id, "answerable": gold.answerable, **answer.signals})
        index.close()

    answerable = [r for r in rows if r["answerable"]]
    unanswerable = [r for r in rows if not r["answerable"]]

    def rates(threshold: float) -> tuple[float, float]:
        def refuses(row: dict[str, float]) -> bool:
            return bool(row["unknown_names"]) or row["similarity"] < threshold

        false_abstain = sum(refuses(r) for r in answerable) / len(answerable)
        missed_abstain = sum(not refuses(r) for r in unanswerable) / len(unanswerable)
        return false_abstain, missed_abstain

    table = []
    for cap in CAPS:
        feasible = [
            (missed, false, float(t))
            for t in np.arange(0.2, 0.9, 0.005)
            for false, missed in [rates(float(t))]
            if false <= cap
        ]
        missed, false, threshold = min(feasible)
        table.append([cap, round(threshold, 3), false, missed])
    current = AnswerConfig().min_similarity
    false, missed = rates(current)
    print(f"{len(answerable)} answerable and {len(unanswerable)} unanswerable gold questions\n")
    print(
        markdown_table(
            ["false-abstain cap", "threshold", "false-abstain", "missed-abstain"], table, digits=3
        )
    )
    print(
        f"\nconfigured threshold {current}: false-abstain {false:.3f}, missed-abstain {missed:.3f}"
    )
    write_results(
        "calibrate_abstention",
        {
            "rows": rows,
            "sweep": table,
            "configured": {"threshold": current, "false_abstain": false, "missed_abstain": missed},
        },
    )


if __name__ == "__main__":
    main()
