"""Twelve real SEC filings: every one ingests, no running header or page number survives into
chunks, and a table's rows stay rows whose figures keep their row label and their column's year.

The filings are parsed and chunked once for the module (about half a minute), with the model's
own tokenizer, as `chancery ingest` does.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest.chunking import ChunkingConfig, chunk_document
from ingest.models import Chunk, Document
from ingest.pipeline import IngestResult, ingest_files

pytestmark = pytest.mark.corpus

PAGES = {
    "3M_2018_10K.pdf": 160,
    "3M_2022_10K.pdf": 252,
    "ACTIVISIONBLIZZARD_2019_10K.pdf": 198,
    "AMD_2015_10K.pdf": 215,
    "AMERICANEXPRESS_2022_10K.pdf": 260,
    "BLOCK_2020_10K.pdf": 158,
    "BOEING_2022_10K.pdf": 190,
    "CORNING_2022_10K.pdf": 159,
    "CVSHEALTH_2022_10K.pdf": 213,
    "GENERALMILLS_2020_10K.pdf": 127,
    "JPMORGAN_2021Q1_10Q.pdf": 179,
    "LOCKHEEDMARTIN_2022_10K.pdf": 130,
}
TABLE_OF_CONTENTS = "Table of Contents"
"""The link back to the contents that most filings print at the top of every page."""
SECTION_HEADER = "Notes to Consolidated Financial Statements (continued)"
"""Activision Blizzard's running header over the 45 pages of its notes."""
PAGE_FOOTER = re.compile(r"[A-Z]{1,2}-\d{1,3}|Page \d{1,3}|-\d{1,3}-")
"""Printed page numbers of appendices and financial pages: F-12, A-3, Page 7, -52-."""
# A figure cell: 1,577 / (1,577) / $5,363 / 12.5% / a dash for nil; "$" and "%" may stand apart.
_FIGURE = r"(?:\$\s?)?\(?-?\$?[\d,]*\d(?:\.\d+)?\)?(?:\s?%)?|[—–-]"
ROW_END = re.compile(rf"(?:\s(?:{_FIGURE})){{2,}}$")
YEAR = re.compile(r"(?:19|20)\d\d")


@pytest.fixture(scope="module")
def ingested(financebench_dir: Path, model_tokenizer) -> IngestResult:  # type: ignore[no-untyped-def]
    config = ChunkingConfig(max_tokens=model_tokenizer.max_tokens)
    return ingest_files(
        [financebench_dir / "pdfs"],
        lambda document: chunk_document(document, model_tokenizer, config),
    )


@pytest.fixture(scope="module")
def filings(ingested: IngestResult) -> dict[str, tuple[Document, tuple[Chunk, ...]]]:
    return {document.file_name: (document, chunks) for document, chunks in ingested.documents}


def _segments(chunk: Chunk) -> Iterator[tuple[int, str]]:
    """The chunk's text cut at its page breaks: (page, the part printed on that page)."""
    cuts = [0, *chunk.page_breaks, len(chunk.text)]
    for index, (start, end) in enumerate(itertools.pairwise(cuts)):
        yield chunk.page_start + index, chunk.text[start:end].strip()


def test_every_filing_ingests_with_all_its_pages(
    ingested: IngestResult, filings: dict[str, tuple[Document, tuple[Chunk, ...]]]
) -> None:
    assert [(f.path.name, f.reason) for f in ingested.report.failed] == []
    assert {f.path.name: f.pages for f in ingested.report.ok} == PAGES
    for name, (document, chunks) in filings.items():
        blank = [page.number for page in document.pages if not page.text.strip()]
        assert len(blank) <= 2, f"{name}: no text on pages {blank}"
        covered = {n for c in chunks for n in range(c.page_start, c.page_end + 1)}
        missing = {page.number for page in document.pages if page.text.strip()} - covered
        assert missing == set(), f"{name}: pages {sorted(missing)} are in no chunk"


def test_table_of_contents_link_opens_no_page_and_no_chunk(
    filings: dict[str, tuple[Document, tuple[Chunk, ...]]],
) -> None:
    for name, (document, chunks) in filings.items():
        opening = [p.number for p in document.pages if p.text.startswith(TABLE_OF_CONTENTS)]
        # A filing's own contents page may keep its title; the link on every page must go.
        assert len(opening) <= 1, f"{name}: pages {opening} open with the link"
        found = [
            (chunk.page_start, page)
            for chunk in chunks
            for page, text in _segments(chunk)
            if text.startswith(TABLE_OF_CONTENTS) and page not in opening
        ]
        assert found == [], f"{name}: chunks open a page with the link: {found[:5]}"


def test_section_running_header_is_gone(
    filings: dict[str, tuple[Document, tuple[Chunk, ...]]],
) -> None:
    document, chunks = filings["ACTIVISIONBLIZZARD_2019_10K.pdf"]
    assert [p.number for p in document.pages if SECTION_HEADER in p.text] == []
    assert not any(SECTION_HEADER in chunk.text for chunk in chunks)
    # The company's name stays where it is content: the cover and the statements' titles.
    assert "ACTIVISION BLIZZARD, INC." in document.pages[0].text


def test_no_page_number_closes_a_page_or_a_chunk(
    filings: dict[str, tuple[Document, tuple[Chunk, ...]]],
) -> None:
    for name, (document, chunks) in filings.items():
        for page in document.pages:
            last = page.text.rsplit("\n", 1)[-1].strip()
            assert not PAGE_FOOTER.fullmatch(last), f"{name} p. {page.number} ends with {last!r}"
            assert last != str(page.number), f"{name} p. {page.number} ends with its number"
        for chunk in chunks:
            for page, text in _segments(chunk):
                last = text.rsplit("\n", 1)[-1].strip()
                assert not PAGE_FOOTER.fullmatch(last), f"{name} p. {page}: chunk ends {last!r}"
                assert last != str(page), f"{name} p. {page}: a chunk ends with the page number"


def test_no_chunk_starts_or_ends_inside_a_table_row(
    filings: dict[str, tuple[Document, tuple[Chunk, ...]]],
) -> None:
    for name, (document, chunks) in filings.items():
        text = document.text
        cut_rows = []
        for chunk in chunks:
            for boundary in (chunk.char_start, chunk.char_end):
                line_start = text.rfind("\n", 0, boundary) + 1
                line_end = text.find("\n", boundary)
                line = text[line_start : line_end if line_end >= 0 else len(text)]
                inside = line_start < boundary < line_start + len(line.rstrip())
                if inside and ROW_END.search(line):
                    cut_rows.append(line[:80])
        assert cut_rows == [], f"{name}: {len(cut_rows)} rows cut, such as {cut_rows[:3]}"


TABLE_EVIDENCE = [
    # question, filing, page, row label, figure, the year over the figure's column
    (
        "financebench_id_03029",
        "3M_2018_10K.pdf",
        60,
        "Purchases of property, plant and equipment (PP&E)",
        "(1,577)",
        "2018",
    ),
    (
        "financebench_id_04672",
        "3M_2018_10K.pdf",
        58,
        "Property, plant and equipment — net",
        "8,738",
        "2018",
    ),
    (
        "financebench_id_07966",
        "ACTIVISIONBLIZZARD_2019_10K.pdf",
        73,
        "Capital expenditures",
        "(116)",
        "2019",
    ),
    (
        "financebench_id_03069",
        "AMD_2015_10K.pdf",
        60,
        "Depreciation and amortization",
        "167",
        "2015",
    ),
    (
        "financebench_id_07661",
        "BLOCK_2020_10K.pdf",
        90,
        "Net cash provided by operating activities",
        "381,603",
        "2020",
    ),
    (
        "financebench_id_04854",
        "GENERALMILLS_2020_10K.pdf",
        52,
        "Purchases of land, buildings, and equipment",
        "(460.8)",
        "2020",
    ),
    (
        "financebench_id_03718",
        "LOCKHEEDMARTIN_2022_10K.pdf",
        63,
        "Total net sales",
        "65,984",
        "2022",
    ),
    ("financebench_id_00005", "CORNING_2022_10K.pdf", 60, "Total current assets", "7,453", "2022"),
    (
        "financebench_id_01964",
        "AMERICANEXPRESS_2022_10K.pdf",
        98,
        "Customer deposits",
        "110,239",
        "2022",
    ),
]


def _heads_columns(line: str, year: str) -> bool:
    """A column header line: two or more years, the given one among them, and few words."""
    tokens = line.split()
    return year in tokens and sum(1 for t in tokens if YEAR.fullmatch(t)) >= 2 and len(tokens) <= 20


@pytest.mark.parametrize(
    ("question", "name", "page", "label", "figure", "year"),
    TABLE_EVIDENCE,
    ids=[case[0] for case in TABLE_EVIDENCE],
)
def test_a_figure_keeps_its_row_label_and_column_year(
    financebench_dir: Path,
    filings: dict[str, tuple[Document, tuple[Chunk, ...]]],
    question: str,
    name: str,
    page: int,
    label: str,
    figure: str,
    year: str,
) -> None:
    rows = (json.loads(line) for line in (financebench_dir / "questions.jsonl").open())
    evidence = next(row["evidence"] for row in rows if row["id"] == question)
    assert {"doc": name, "page": page} in [{"doc": e["doc"], "page": e["page"]} for e in evidence]
    # The row: its label, then its figures and nothing else, on one line of one chunk.
    row = re.compile(
        rf"{re.escape(label)}(?:\s(?:{_FIGURE}))*\s(?:\$\s)?{re.escape(figure)}(?:\s(?:{_FIGURE}))*$"
    )
    _, chunks = filings[name]
    holding = []
    for chunk in chunks:
        if not chunk.page_start <= page <= chunk.page_end:
            continue
        lines = chunk.text.split("\n")
        at = next((i for i, line in enumerate(lines) if row.search(line)), None)
        if at is None:
            continue
        headers = [*lines[:at], *chunk.heading_path[-1:]]
        holding.append(any(_heads_columns(line, year) for line in headers))
    assert holding, f"no chunk on p. {page} holds '{label} ... {figure}' as one row"
    assert all(holding), f"a chunk holds the row without the column header for {year}"
