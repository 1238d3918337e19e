"""Reports of one evaluation run: `report.md` and a self-contained `report.html`, with plots.

Only `RUN_DIR/run.json` is read, never the metric code that produced it, so a report can be
rebuilt for an old run after the metrics have changed. The report is assembled once as a list of
plain blocks (heading, table, plot, ...) and rendered twice, so the Markdown and the HTML cannot
drift apart. All text in the HTML is escaped: questions and retrieved passages come from
documents nobody vetted.
"""

from __future__ import annotations

import base64
import html
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from eval.metrics import Interval
from eval.run_model import RetrievedHit, RunRecord, RunRow, Stage, load_run

HIT_AT_K_PLOT = "hit_at_k.png"
BY_TYPE_PLOT = "metrics_by_type.png"
LATENCY_PLOT = "latency.png"

BY_TYPE_PLOT_METRICS = ("hit@5", "mrr@10", "citation_precision", "token_f1")
BY_TYPE_COLUMNS = (
    "hit@1",
    "hit@5",
    "mrr@10",
    "ndcg@10",
    "citation_precision",
    "citation_recall",
    "token_f1",
    "answer_similarity",
)
"""The by-type table shows these; with every metric it would be too wide to read."""
LATENCY_STAGES: tuple[Stage, ...] = ("total", "retrieval", "answering")
WORST_COUNT = 10
HIT_PREVIEW = 3
PREVIEW_CHARS = 150


# --- selection ----------------------------------------------------------------------------


def worst_questions(rows: Iterable[RunRow], limit: int = WORST_COUNT) -> list[RunRow]:
    """The answerable questions with the lowest mrr@10, ties by ndcg@10 then citation recall.

    A metric the row lacks (null or absent) sorts below a real zero: an answerable row without
    retrieval metrics is broken, and broken rows are what this list is for.
    """

    def key(row: RunRow) -> tuple[float, float, float, str]:
        values = [row.metric(m) for m in ("mrr@10", "ndcg@10", "citation_recall")]
        filled = [-1.0 if math.isnan(v) else v for v in values]
        return (filled[0], filled[1], filled[2], row.id)

    return sorted((r for r in rows if r.answerable), key=key)[:limit]


# --- report blocks ------------------------------------------------------------------------


@dataclass(frozen=True)
class Heading:
    level: int
    text: str


@dataclass(frozen=True)
class Paragraph:
    text: str


@dataclass(frozen=True)
class Field:
    label: str
    value: str


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class ItemList:
    items: tuple[str, ...]
    ordered: bool = False


@dataclass(frozen=True)
class Plot:
    path: Path
    caption: str


Block = Heading | Paragraph | Field | Table | ItemList | Plot


def fmt(value: float, digits: int = 2) -> str:
    return "n/a" if math.isnan(value) else f"{value:.{digits}f}"


def _one_line(text: str, limit: int | None = None) -> str:
    flat = " ".join(text.split())
    if limit is not None and len(flat) > limit:
        return flat[:limit].rstrip() + "…"
    return flat


def _pages(hit: RetrievedHit) -> str:
    if hit.page_start == hit.page_end:
        return f"p. {hit.page_start}"
    return f"pp. {hit.page_start}–{hit.page_end}"


def _meta_blocks(run: RunRecord) -> list[Block]:
    meta = run.meta
    documents = [
        f"{d.file_name} ({d.pages} pages, {d.chunks} chunks)" for d in meta.index.documents
    ]
    answerable = sum(r.answerable for r in run.rows)
    return [
        Heading(1, "Chancery evaluation report"),
        Field("Mode", meta.mode),
        Field("Target", meta.target),
        Field("Gold set", f"{meta.gold} (sha256 {meta.gold_sha256[:12]}…)"),
        Field("Created", meta.created_at),
        Field("Code version", meta.code_version),
        Field(
            "Questions",
            f"{len(run.rows)} ({answerable} answerable, {len(run.rows) - answerable} unanswerable)",
        ),
        Field("Index documents", "; ".join(documents) or "none recorded"),
    ]


def _summary_blocks(run: RunRecord) -> list[Block]:
    overall = run.aggregates.overall
    return [
        Heading(2, "Overall metrics"),
        Paragraph("Mean with its 95% bootstrap interval; n is the number of questions measured."),
        Table(
            ("metric", "mean [95% interval]", "n"),
            tuple((name, iv.format(), str(iv.n)) for name, iv in overall.items()),
        ),
    ]


def _abstention_blocks(run: RunRecord) -> list[Block]:
    def value(name: str, v: float) -> str:
        if math.isnan(v):
            return "n/a"
        return f"{v:.1%}" if "rate" in name else f"{v:g}"

    measures = run.aggregates.abstention.model_dump()
    return [
        Heading(2, "Abstention"),
        Table(("measure", "value"), tuple((k, value(k, v)) for k, v in measures.items())),
    ]


def _latency_blocks(run: RunRecord) -> list[Block]:
    rows = tuple(
        (stage, fmt(stats.p50, 1), fmt(stats.p95, 1), fmt(stats.mean, 1), str(stats.n))
        for stage, stats in run.aggregates.latency.items()
    )
    return [
        Heading(2, "Latency (ms)"),
        Table(("stage", "p50", "p95", "mean", "n"), rows),
    ]


def _by_type_blocks(run: RunRecord) -> list[Block]:
    by_type = run.aggregates.by_type
    present = {m for metrics in by_type.values() for m in metrics}
    columns = [m for m in BY_TYPE_COLUMNS if m in present] or sorted(present)
    counts: dict[str, int] = {}
    for row in run.rows:
        counts[row.type] = counts.get(row.type, 0) + 1
    rows = tuple(
        (
            qtype,
            str(counts.get(qtype, 0)),
            *(metrics[m].format() if m in metrics else "n/a" for m in columns),
        )
        for qtype, metrics in by_type.items()
    )
    return [
        Heading(2, "By question type"),
        Paragraph("Every metric with its interval, per type, is in run.json."),
        Table(("type", "questions", *columns), rows),
    ]


def _worst_blocks(run: RunRecord) -> list[Block]:
    blocks: list[Block] = [
        Heading(2, f"Worst {WORST_COUNT} questions"),
        Paragraph(
            "Answerable questions with the lowest mrr@10 (ties broken by ndcg@10, then citation "
            "recall), with what was retrieved instead of the evidence."
        ),
    ]
    for rank, row in enumerate(worst_questions(run.rows), start=1):
        scores = ", ".join(
            f"{m} {fmt(row.metric(m))}"
            for m in ("mrr@10", "ndcg@10", "citation_recall", "token_f1")
        )
        pages = dict.fromkeys((e.doc, e.page) for e in row.evidence)
        evidence = "; ".join(f"{doc} p. {page}" for doc, page in pages)
        hits = tuple(
            f"{h.doc} {_pages(h)}"
            + (" (evidence page)" if any(h.covers(e) for e in row.evidence) else "")
            + f" — {_one_line(h.heading) or 'no heading'} — {_one_line(h.text, PREVIEW_CHARS)}"
            for h in row.hits[:HIT_PREVIEW]
        )
        answer = _one_line(row.answer) or "(empty)"
        blocks += [
            Heading(3, f"{rank}. {row.id} ({row.type})"),
            Field("Question", _one_line(row.question)),
            Field("Scores", scores),
            Field("Evidence", evidence or "none recorded"),
            Field("Retrieved instead (top 3)", "" if hits else "nothing"),
            ItemList(hits, ordered=True),
            Field("Answer", ("(abstained) " if row.abstained else "") + answer),
        ]
    return blocks


def build_blocks(run: RunRecord, plots: Sequence[Plot]) -> list[Block]:
    """The report's content, in reading order, before it becomes Markdown or HTML."""
    return [
        *_meta_blocks(run),
        *_summary_blocks(run),
        *_abstention_blocks(run),
        *_latency_blocks(run),
        Heading(2, "Plots"),
        *plots,
        *_by_type_blocks(run),
        *_worst_blocks(run),
    ]


# --- plots --------------------------------------------------------------------------------


def write_plots(run: RunRecord, out_dir: Path) -> list[Plot]:
    """Draw the hit@k curve, the by-type bars and the latency histograms as PNGs in `out_dir`."""
    import matplotlib

    # Agg draws to files only: reports are made on servers and in CI, where there is no display.
    matplotlib.use("Agg")
    # Figure objects rather than pyplot: nothing is left registered in pyplot's global state.
    from matplotlib.figure import Figure

    overall = run.aggregates.overall
    by_type = run.aggregates.by_type
    latency = run.aggregates.latency
    hit_k = sorted(
        (int(m.group(1)), iv)
        for name, iv in overall.items()
        if (m := re.fullmatch(r"hit@(\d+)", name))
    )
    fig = Figure(figsize=(6, 4), layout="constrained")
    ax = fig.add_subplot()
    if hit_k:
        ks = [k for k, _ in hit_k]
        means = [iv.mean for _, iv in hit_k]
        errors = [
            [max(iv.mean - iv.low, 0.0) for _, iv in hit_k],
            [max(iv.high - iv.mean, 0.0) for _, iv in hit_k],
        ]
        ax.errorbar(ks, means, yerr=errors, marker="o", capsize=4)
        ax.set_xticks(ks)
    ax.set(xlabel="k", ylabel="hit@k", ylim=(0, 1.05), title="Hit@k with 95% interval")
    ax.grid(alpha=0.3)
    hit_path = out_dir / HIT_AT_K_PLOT
    fig.savefig(hit_path, dpi=100)

    types = list(by_type)
    fig = Figure(figsize=(max(6.0, 1.2 * len(types) + 2), 4), layout="constrained")
    ax = fig.add_subplot()
    width = 0.8 / len(BY_TYPE_PLOT_METRICS)
    for i, metric in enumerate(BY_TYPE_PLOT_METRICS):
        ivs = [by_type[t].get(metric, Interval(math.nan, math.nan, math.nan, 0)) for t in types]
        xs = [j + (i - (len(BY_TYPE_PLOT_METRICS) - 1) / 2) * width for j in range(len(types))]
        errors = [
            [0.0 if math.isnan(iv.low) else max(iv.mean - iv.low, 0.0) for iv in ivs],
            [0.0 if math.isnan(iv.high) else max(iv.high - iv.mean, 0.0) for iv in ivs],
        ]
        ax.bar(xs, [iv.mean for iv in ivs], width, yerr=errors, capsize=2, label=metric)
    ax.set_xticks(range(len(types)), types, rotation=30, ha="right")
    ax.set(ylabel="mean", ylim=(0, 1.05))
    fig.legend(loc="outside upper center", ncols=len(BY_TYPE_PLOT_METRICS), fontsize="small")
    by_type_path = out_dir / BY_TYPE_PLOT
    fig.savefig(by_type_path, dpi=100)

    fig = Figure(figsize=(12, 3.5), layout="constrained")
    axes = fig.subplots(1, len(LATENCY_STAGES))
    for ax, stage in zip(axes, LATENCY_STAGES, strict=True):
        values = [
            r.timings_ms.of(stage) for r in run.rows if not math.isnan(r.timings_ms.of(stage))
        ]
        if values:
            ax.hist(values, bins=20)
            stats = latency.get(stage)
            marks = () if stats is None else (("p50", stats.p50, "-"), ("p95", stats.p95, "--"))
            for label, ms, style in marks:
                if not math.isnan(ms):
                    ax.axvline(ms, color="black", linestyle=style, label=label)
            ax.legend(fontsize="small")
        ax.set(title=f"{stage} latency", xlabel="ms", ylabel="questions")
    latency_path = out_dir / LATENCY_PLOT
    fig.savefig(latency_path, dpi=100)

    return [
        Plot(hit_path, "Hit@k: share of questions with an evidence page in the top k"),
        Plot(by_type_path, "Metrics by question type (95% intervals)"),
        Plot(latency_path, "Latency per question, by stage (lines: p50 and p95)"),
    ]


# --- rendering ----------------------------------------------------------------------------


def _md_cell(text: str) -> str:
    return _one_line(text).replace("|", "\\|")


def to_markdown(blocks: Sequence[Block]) -> str:
    lines: list[str] = []
    for block in blocks:
        match block:
            case Heading(level, text):
                lines += [f"{'#' * level} {text}", ""]
            case Paragraph(text):
                lines += [text, ""]
            case Field(label, value):
                lines += [f"**{label}:** {value}".rstrip(), ""]
            case Table(header, rows):
                lines.append("| " + " | ".join(_md_cell(h) for h in header) + " |")
                lines.append("|" + "---|" * len(header))
                lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
                lines.append("")
            case ItemList(items, ordered):
                if items:
                    marks = [f"{i}." if ordered else "-" for i in range(1, len(items) + 1)]
                    lines += [f"{m} {item}" for m, item in zip(marks, items, strict=True)]
                    lines.append("")
            case Plot(path, caption):
                lines += [f"![{caption}]({path.name})", ""]
    return "\n".join(lines)


_CSS = """
body { font-family: system-ui, sans-serif; max-width: 72rem; margin: 2rem auto; padding: 0 1rem;
       color: #222; line-height: 1.45; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.6rem; text-align: left; }
th { background: #f2f2f2; }
img { max-width: 100%; display: block; margin: 0.5rem 0; }
figcaption { color: #555; font-size: 0.9rem; margin-bottom: 1.5rem; }
h3 { margin-top: 1.5rem; }
p.field { margin: 0.2rem 0; }
"""


def to_html(blocks: Sequence[Block], title: str) -> str:
    """One self-contained page: CSS inline, plots as data URIs, every text escaped."""
    esc = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>",
    ]
    for block in blocks:
        match block:
            case Heading(level, text):
                parts.append(f"<h{level}>{esc(text)}</h{level}>")
            case Paragraph(text):
                parts.append(f"<p>{esc(text)}</p>")
            case Field(label, value):
                parts.append(f'<p class="field"><b>{esc(label)}:</b> {esc(value)}</p>')
            case Table(header, rows):
                head = "".join(f"<th>{esc(h)}</th>" for h in header)
                body = "".join(
                    "<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in rows
                )
                parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
            case ItemList(items, ordered):
                if items:
                    tag = "ol" if ordered else "ul"
                    inner = "".join(f"<li>{esc(item)}</li>" for item in items)
                    parts.append(f"<{tag}>{inner}</{tag}>")
            case Plot(path, caption):
                data = base64.b64encode(path.read_bytes()).decode("ascii")
                parts.append(
                    f'<figure><img src="data:image/png;base64,{data}" alt="{esc(caption)}">'
                    f"<figcaption>{esc(caption)}</figcaption></figure>"
                )
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_reports(run_dir: Path) -> tuple[Path, Path]:
    """Write report.md, report.html and the plots into `run_dir`; return the two report paths."""
    run = load_run(run_dir)
    blocks = build_blocks(run, write_plots(run, run_dir))
    md_path = run_dir / "report.md"
    html_path = run_dir / "report.html"
    md_path.write_text(to_markdown(blocks), encoding="utf-8")
    html_path.write_text(to_html(blocks, f"Chancery evaluation — {run_dir.name}"), encoding="utf-8")
    return md_path, html_path
