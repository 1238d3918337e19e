"""Calibrate how close a generative claim must be to its quote, out of sample.

No LLM runs here, so the claims are the gold set's reference answers: plain-words sentences a
person wrote from the report, as a good model would. Each is checked (`service.claims`) twice:

- against a passage that holds its evidence (the best-ranked retrieved chunk covering an
  evidence page): it should pass;
- against the best-ranked retrieved chunk that covers none of its evidence pages: a passage on
  the same topic that does not say it, the citation a careless model makes. It should fail.
  (A report repeats itself, so a few of these do support the claim; the rate is an upper bound.)

The checks other than similarity (numbers, names, quotations, a name put in place of another)
are applied as shipped; the similarity threshold is swept. Stratified k-fold cross-validation
chooses it on the training folds (the most supported claims kept while at most `--cap` of the
unsupported ones pass) and scores it on the held-out fold; the pooled held-out rates are
reported with Wilson 95% intervals, beside the shipped threshold's in-sample rates.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
from benchlib import (
    GOLD,
    corpus_index,
    markdown_table,
    quiet_libraries,
    write_results,
)
from calibrate_abstention import stratified_folds, wilson

from eval.gold import load_gold
from service.claims import ClaimRules

GRID = np.round(np.arange(0.20, 0.90, 0.01), 2)
Row = dict[str, Any]


def compute_pairs() -> list[Row]:
    from index.retrieve import Hit, Retriever
    from service.claims import ClaimChecker
    from service.draft import claim_of

    rows: list[Row] = []
    with corpus_index() as (index, embedder):
        retriever = Retriever(index, embedder)
        # Similarity off: every other check as shipped, the similarity recorded for the sweep.
        checker = ClaimChecker(
            index.records,
            index.lexical,
            index.sentence_vectors(),
            embedder,
            ClaimRules(min_similarity=-1.0),
        )
        for gold in load_gold(GOLD):
            if not gold.answerable:
                continue
            claim = claim_of(1, f"{gold.answer} [1]")
            if claim is None:
                continue
            pages = {(e.doc, e.page) for e in gold.evidence}
            hits = retriever.search(gold.question, 20).hits

            def covers(hit: Hit, pages: set[tuple[str, int]] = pages) -> bool:
                return any(
                    (hit.file_name, p) in pages
                    for p in range(hit.chunk.page_start, hit.chunk.page_end + 1)
                )

            supporting = next((h for h in hits if covers(h)), None)
            elsewhere = next((h for h in hits if not covers(h)), None)
            for kind, hit in (("supported", supporting), ("unsupported", elsewhere)):
                if hit is None:
                    continue
                verdict = checker.check(claim, [hit], [hit.chunk.text])
                similarity = max((s.similarity for s in verdict.supports), default=None)
                if similarity is None and verdict.reason and verdict.reason.startswith("no sent"):
                    similarity = -1.0
                rows.append(
                    {
                        "id": gold.id,
                        "kind": kind,
                        "passes_other_checks": verdict.reason is None,
                        "reason": verdict.reason,
                        "similarity": similarity if similarity is not None else -1.0,
                    }
                )
    return rows


def decide(rows: list[Row]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    supported = np.array([r["kind"] == "supported" for r in rows])
    other = np.array([bool(r["passes_other_checks"]) for r in rows])
    similarity = np.array([float(r["similarity"]) for r in rows])
    # passes[g, i]: pair i passes at threshold GRID[g].
    passes = other[None, :] & (np.round(similarity, 2)[None, :] >= GRID[:, None])
    return supported, passes, similarity


def choose(passes: np.ndarray, supported: np.ndarray, cap: float) -> float:
    kept = passes[:, supported].mean(axis=1)
    leaked = passes[:, ~supported].mean(axis=1)
    allowed = np.flatnonzero(leaked <= cap)
    if allowed.size == 0:
        return float(GRID[-1])
    best = allowed[np.argmax(kept[allowed])]  # first (lowest) threshold among equals
    return float(GRID[best])


def rates(passing: np.ndarray, supported: np.ndarray) -> dict[str, Any]:
    kept_n, kept_k = int(supported.sum()), int(passing[supported].sum())
    leak_n, leak_k = int((~supported).sum()), int(passing[~supported].sum())
    return {
        "supported_kept": [kept_k, kept_n, wilson(kept_k, kept_n)],
        "unsupported_passed": [leak_k, leak_n, wilson(leak_k, leak_n)],
    }


def _cell(entry: list[Any]) -> str:
    k, n, (low, high) = entry
    return f"{k}/{n} = {k / n:.3f} [{low:.3f}, {high:.3f}]"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--cap", type=float, default=0.10, help="unsupported pass-rate cap")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    quiet_libraries()
    started = time.perf_counter()
    rows = compute_pairs()
    seconds = time.perf_counter() - started
    supported, passes, similarity = decide(rows)
    other = np.array([bool(r["passes_other_checks"]) for r in rows])
    shipped = ClaimRules().min_similarity
    at_shipped = other & (np.round(similarity, 2) >= shipped)
    in_sample = rates(at_shipped, supported)
    report = [[f"shipped {shipped:.2f}, in sample", *map(_cell, in_sample.values())]]

    fold_of = stratified_folds(supported, args.folds, args.seed)
    held = np.zeros(len(rows), dtype=bool)
    chosen = []
    for fold in range(args.folds):
        test = fold_of == fold
        threshold = choose(passes[:, ~test], supported[~test], args.cap)
        chosen.append(threshold)
        held[test] = other[test] & (np.round(similarity[test], 2) >= threshold)
    pooled = rates(held, supported)
    report.append([f"{args.folds}-fold CV, cap {args.cap}, held out", *map(_cell, pooled.values())])
    reasons: dict[str, int] = {}
    for row in rows:
        if row["kind"] == "supported" and not row["passes_other_checks"] and row["reason"]:
            key = row["reason"].split(",")[0].split(" (")[0]
            reasons[key] = reasons.get(key, 0) + 1
    print(f"{len(rows)} claim/passage pairs in {seconds:.0f} s; thresholds per fold: {chosen}\n")
    print(markdown_table(["", "supported claims kept", "unsupported claims passed"], report))
    print("\nWhy supported claims failed a check other than similarity:")
    for reason, count in sorted(reasons.items(), key=lambda item: -item[1]):
        print(f"  {count:3d}  {reason}")
    write_results(
        "calibrate_claims",
        {
            "shipped": shipped,
            "cap": args.cap,
            "folds": args.folds,
            "thresholds_per_fold": chosen,
            "in_sample_shipped": in_sample,
            "held_out": pooled,
            "other_check_failures_on_supported": reasons,
            "pairs": rows,
        },
    )


if __name__ == "__main__":
    main()
