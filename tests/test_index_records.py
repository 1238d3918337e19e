"""Document, page, chunk and sentence records: what is written is what is read back."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from index.records import DocumentInfo, Records, SentenceSpan, write_records
from ingest.models import Chunk, Document, Heading, Page

STRATEGY = Document(
    doc_id="strategy~0123456789.pdf",
    file_name="Strategy 2024.pdf",
    title="Стратегия «национальной» безопасности",
    sha256="a" * 64,
    pages=(
        Page(number=1, text="Contents\nForeword", label="i"),
        Page(
            number=2,
            text="1 Threats\nCyber attacks grew.\n1 A footnote.",
            label="1",
            headings=(Heading("1 Threats", 1, 0, 9),),
            footnotes_start=30,
        ),
        Page(number=3, text="報告 第三页", headings=(Heading("報告", 2, 0, 2),)),
    ),
)
NOTE = Document(
    doc_id="note.txt", file_name="note.txt", title="note", sha256="b" * 64, pages=(Page(1, "Hi."),)
)
DOCUMENTS = (STRATEGY, NOTE)
"""Not sorted by id: the order written is the order listed."""
CHUNKS = (
    Chunk("s-1", STRATEGY.doc_id, "Contents\nForeword\n1 Threats", 1, 2, (), 0, 27, (18,), 5),
    Chunk(
        "s-2",
        STRATEGY.doc_id,
        "Cyber attacks grew.",
        2,
        2,
        ("1 Threats",),
        28,
        47,
        token_count=4,
    ),
    Chunk("s-3", STRATEGY.doc_id, "報告 第三页", 3, 3, ("1 Threats", "報告"), 62, 68, (), 2),
    Chunk("n-1", NOTE.doc_id, "Hi.", 1, 1, (), 0, 3, (), 1),
)
SENTENCES = ((0, 0, 8), (0, 9, 17), (1, 0, 19), (3, 0, 3))
"""(chunk row, start, end); chunk 2 has none."""


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Records]:
    path = tmp_path_factory.mktemp("records") / "records.sqlite"
    write_records(path, DOCUMENTS, CHUNKS, SENTENCES)
    opened = Records(path)
    yield opened
    opened.close()


def test_documents_are_listed_in_the_order_written(records: Records) -> None:
    assert records.documents() == [
        DocumentInfo(d.doc_id, d.file_name, d.title, d.sha256, len(d.pages)) for d in DOCUMENTS
    ]


def test_a_document_reads_back_equal_with_its_pages(records: Records) -> None:
    for document in DOCUMENTS:
        assert records.document(document.doc_id) == document
        assert records.pages(document.doc_id) == list(document.pages)
    assert records.document("nope") is None
    assert records.pages("nope") == []


def test_a_page_is_found_by_document_and_number(records: Records) -> None:
    assert records.page(STRATEGY.doc_id, 2) == STRATEGY.pages[1]
    assert records.page(NOTE.doc_id, 1) == NOTE.pages[0]
    assert records.page(STRATEGY.doc_id, 4) is None
    assert records.page(STRATEGY.doc_id, 0) is None
    assert records.page(NOTE.doc_id, 2) is None
    assert records.page("nope", 1) is None


def test_chunks_read_back_equal_by_row(records: Records) -> None:
    assert records.chunks([3, 0]) == {3: CHUNKS[3], 0: CHUNKS[0]}
    assert records.chunks(list(range(len(CHUNKS)))) == dict(enumerate(CHUNKS))
    assert records.chunks([]) == {}
    assert records.chunks([99]) == {}  # rows past the end are simply absent


def test_first_pages_name_each_rows_document_and_starting_page(records: Records) -> None:
    assert records.first_pages([3, 0, 2]) == {
        3: (NOTE.doc_id, 1),
        0: (STRATEGY.doc_id, 1),
        2: (STRATEGY.doc_id, 3),
    }
    assert records.first_pages([]) == {}
    assert records.first_pages([99]) == {}


def test_the_chunks_of_a_document_come_in_row_order(records: Records) -> None:
    assert records.chunks_of(STRATEGY.doc_id) == [(0, CHUNKS[0]), (1, CHUNKS[1]), (2, CHUNKS[2])]
    assert records.chunks_of(NOTE.doc_id) == [(3, CHUNKS[3])]
    assert records.chunks_of("nope") == []


def test_rows_of_documents(records: Records) -> None:
    assert sorted(records.rows_of([STRATEGY.doc_id])) == [0, 1, 2]
    assert sorted(records.rows_of([NOTE.doc_id, STRATEGY.doc_id])) == [0, 1, 2, 3]
    assert records.rows_of(["nope"]) == []
    assert records.rows_of([]) == []


def test_sentences_keep_their_rows_and_chunks(records: Records) -> None:
    assert records.sentences_of([0, 1, 2, 3]) == [
        SentenceSpan(row, *sentence) for row, sentence in enumerate(SENTENCES)
    ]
    assert records.sentences_of([3, 1]) == [SentenceSpan(2, 1, 0, 19), SentenceSpan(3, 3, 0, 3)]
    assert records.sentences_of([2]) == []
    assert records.sentences_of([]) == []


def test_an_empty_index_has_no_records(tmp_path: Path) -> None:
    write_records(tmp_path / "records.sqlite", [], [], [])
    records = Records(tmp_path / "records.sqlite")
    try:
        assert records.documents() == []
        assert records.chunks([0]) == {}
        assert records.document("nope") is None
    finally:
        records.close()
