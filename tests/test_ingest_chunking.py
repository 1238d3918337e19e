"""Chunking invariants, by property (hypothesis) and on small hand-made documents."""

from __future__ import annotations

import itertools
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.chunking import ChunkingConfig, chunk_document
from ingest.models import Chunk, Document, Heading, Page
from tests.conftest import WhitespaceTokenizer

TOKENIZER = WhitespaceTokenizer()
WORD = st.text(alphabet="abcdefghijklmnopqrstuvwxyzéøß", min_size=1, max_size=9)


@st.composite
def sentences(draw: st.DrawFn, max_words: int = 40) -> str:
    words = draw(st.lists(WORD, min_size=1, max_size=max_words))
    end = draw(st.sampled_from([".", "?", "!", ",", ""]))
    return " ".join(words).capitalize() + end


FIGURE = st.sampled_from(["1,577", "(1,373)", "$ 5,363", "12.5 %", "—", "76", "(4)"])
LABEL = st.one_of(
    sentences(max_words=8).map(lambda text: text.rstrip(".?!,")),
    st.just("Non-U.S. government securities"),  # a sentence splitter cuts it after "U."
)


@st.composite
def tables(draw: st.DrawFn) -> str:
    """A column header of years and rows of a label and figures, one line each."""
    header = "(Millions) 2018 2017"
    rows = [
        " ".join([draw(LABEL), draw(FIGURE), draw(FIGURE)]) for _ in range(draw(st.integers(1, 8)))
    ]
    return "\n".join([header, *rows])


@st.composite
def pages(draw: st.DrawFn, number: int) -> Page:
    blocks: list[str] = []
    headings: list[Heading] = []
    position = 0
    for _ in range(draw(st.integers(1, 5))):
        if draw(st.booleans()):
            title = draw(sentences(max_words=6)).rstrip(".?!,")
            headings.append(
                Heading(title, draw(st.integers(1, 3)), position, position + len(title))
            )
            block = title
        elif draw(st.integers(0, 3)) == 0:
            block = draw(tables())
        else:
            block = " ".join(draw(st.lists(sentences(), min_size=1, max_size=6)))
        blocks.append(block)
        position += len(block) + 1
    footnotes_start = None
    if draw(st.booleans()):
        footnotes_start = position
        blocks.append(f"{number}. " + draw(sentences(max_words=12)))
    return Page(number, "\n".join(blocks), None, tuple(headings), footnotes_start)


@st.composite
def documents(draw: st.DrawFn) -> Document:
    count = draw(st.integers(1, 6))
    return Document(
        "doc", "doc.txt", "Doc", "0" * 64, tuple(draw(pages(n)) for n in range(1, count + 1))
    )


configs = st.builds(
    lambda size, overlap_share: ChunkingConfig(
        size=size, overlap=int(size * overlap_share), max_tokens=size + 20
    ),
    st.integers(8, 60),
    st.floats(0, 0.5),
)


def _non_space_positions(text: str, start: int = 0) -> set[int]:
    return {start + m.start() for m in re.finditer(r"\S", text)}


@settings(max_examples=150, deadline=None)
@given(documents(), configs)
def test_chunks_cover_the_text_in_order_within_bounds(
    document: Document, config: ChunkingConfig
) -> None:
    text = document.text
    chunks = chunk_document(document, TOKENIZER, config)

    covered: set[int] = set()
    for chunk in chunks:
        assert text[chunk.char_start : chunk.char_end] == chunk.text
        assert TOKENIZER.count(chunk.text) <= config.max_tokens
        assert chunk.token_count == TOKENIZER.count(chunk.text)
        assert 1 <= chunk.page_start <= chunk.page_end <= len(document.pages)
        covered |= _non_space_positions(chunk.text, chunk.char_start)
    assert covered == _non_space_positions(text)
    starts = [c.char_start for c in chunks]
    assert starts == sorted(starts)
    assert all(a.char_end <= b.char_end for a, b in itertools.pairwise(chunks))


@settings(max_examples=100, deadline=None)
@given(documents(), configs)
def test_page_spans_trace_every_character_to_its_page(
    document: Document, config: ChunkingConfig
) -> None:
    offsets = document.page_offsets
    for chunk in chunk_document(document, TOKENIZER, config):
        assert len(chunk.page_breaks) == chunk.page_end - chunk.page_start
        for relative in range(0, len(chunk.text), 7):
            absolute = chunk.char_start + relative
            page = max(i for i, start in enumerate(offsets, start=1) if start <= absolute)
            assert chunk.page_at(relative) == page


@settings(max_examples=50, deadline=None)
@given(documents(), configs)
def test_chunking_is_deterministic(document: Document, config: ChunkingConfig) -> None:
    first = chunk_document(document, TOKENIZER, config)
    assert first == chunk_document(document, TOKENIZER, config)
    assert len({c.chunk_id for c in first}) == len(first)


@settings(max_examples=100, deadline=None)
@given(documents(), configs)
def test_no_chunk_starts_or_ends_inside_a_table_row(
    document: Document, config: ChunkingConfig
) -> None:
    text = document.text
    rows = [
        (match.start(), match.end())
        for match in re.finditer(r"[^\n]*(?:\s\S*\d\S*|\s—){2}(?=\n|$)", text)
        if TOKENIZER.count(match.group()) <= config.size  # a longer row must be cut
    ]
    for chunk in chunk_document(document, TOKENIZER, config):
        for start, end in rows:
            assert not start < chunk.char_start < end
            assert not start < chunk.char_end < end


def _doc(*texts: str, headings: dict[int, list[Heading]] | None = None) -> Document:
    headings = headings or {}
    return Document(
        "d",
        "d.txt",
        "D",
        "0" * 64,
        tuple(Page(n, t, None, tuple(headings.get(n, []))) for n, t in enumerate(texts, start=1)),
    )


def test_sentence_cut_by_page_break_stays_in_one_chunk_spanning_both_pages() -> None:
    filler = " ".join(f"Sentence number {i} is here." for i in range(6))
    document = _doc(
        f"{filler} The treaty was signed in", "Brussels in 2021 by both sides. More text follows."
    )
    chunks = chunk_document(document, TOKENIZER, ChunkingConfig(size=12, overlap=0, max_tokens=30))
    holder = next(c for c in chunks if "signed in" in c.text)
    assert "Brussels in 2021" in holder.text
    assert (holder.page_start, holder.page_end) == (1, 2)
    assert holder.page_at(holder.text.index("Brussels")) == 2


def test_heading_starts_a_new_chunk_and_sets_the_path() -> None:
    text = "Intro text here.\nChapter Two\nBody of chapter two."
    start = text.index("Chapter Two")
    document = _doc(text, headings={1: [Heading("Chapter Two", 1, start, start + 11)]})
    chunks = chunk_document(document, TOKENIZER, ChunkingConfig(size=50, overlap=10, max_tokens=60))
    assert [c.text for c in chunks] == ["Intro text here.", "Chapter Two\nBody of chapter two."]
    assert chunks[1].heading_path == ("Chapter Two",)


def test_overlap_repeats_whole_trailing_sentences() -> None:
    text = " ".join(f"Fact {i} holds." for i in range(12))
    chunks = chunk_document(_doc(text), TOKENIZER, ChunkingConfig(size=9, overlap=3, max_tokens=20))
    assert len(chunks) > 2
    for previous, current in itertools.pairwise(chunks):
        last_sentence = previous.text.rsplit(". ", 1)[-1]
        assert current.text.startswith(last_sentence.rstrip("."))


def test_sentence_longer_than_the_size_is_split_at_word_boundaries() -> None:
    text = " ".join(f"w{i}" for i in range(100)) + "."
    chunks = chunk_document(
        _doc(text), TOKENIZER, ChunkingConfig(size=30, overlap=0, max_tokens=40)
    )
    assert [TOKENIZER.count(c.text) for c in chunks] == [30, 30, 30, 10]
    assert " ".join(c.text for c in chunks) == text


def test_invalid_configuration_is_refused() -> None:
    with pytest.raises(ValueError, match="overlap"):
        ChunkingConfig(size=10, overlap=10, max_tokens=20)
    with pytest.raises(ValueError, match="size"):
        ChunkingConfig(size=300, overlap=0, max_tokens=254)


def test_page_at_rejects_offsets_outside_the_chunk() -> None:
    chunk = Chunk("id", "d", "abc", 1, 1, (), 0, 3)
    with pytest.raises(IndexError):
        chunk.page_at(3)


def test_a_table_row_is_one_unit_even_where_a_sentence_splitter_would_cut_it() -> None:
    text = "(Millions) 2018 2017\nNon-U.S. government securities 1,577 1,373\nTotal 2,000 1,900"
    chunks = chunk_document(_doc(text), TOKENIZER, ChunkingConfig(size=6, overlap=0, max_tokens=8))
    assert "Non-U.S. government securities 1,577 1,373" in [c.text for c in chunks]


def test_a_chunk_continuing_a_table_carries_its_column_header_in_the_path() -> None:
    rows = [f"Item {i} {i},000 {i + 1},000" for i in range(1, 9)]
    text = "\n".join(["(Millions) 2018 2017", *rows, "The table ends here."])
    chunks = chunk_document(_doc(text), TOKENIZER, ChunkingConfig(size=9, overlap=0, max_tokens=12))
    assert all(any(row in c.text.split("\n") for c in chunks) for row in rows)
    first, *continued = chunks
    assert first.text.startswith("(Millions) 2018 2017")
    assert first.heading_path == ()
    assert continued
    assert all(c.heading_path == ("(Millions) 2018 2017",) for c in continued)


def test_a_table_row_closing_a_page_is_not_glued_to_the_next_page() -> None:
    document = _doc("(Millions) 2018 2017\nRow a 1 2\nRow b 3 4", "Prose on the next page here.")
    chunks = chunk_document(document, TOKENIZER, ChunkingConfig(size=7, overlap=0, max_tokens=20))
    assert all(c.page_start == c.page_end for c in chunks)
