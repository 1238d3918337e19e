"""Incremental updates: a changed document re-embeds only the chunks whose text changed, and the
index it leaves is the one a full rebuild would write."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from index.modes import Mode
from index.retrieve import Retriever
from index.store import DocumentEntry, load_index
from index.update import UpdateResult, update_index
from ingest.models import Chunk, Document
from ingest.sentences import sentence_spans
from tests.fakes import CHUNKING, FakeEmbedder, fake_document

NAME = "filing.txt"
_TOPICS = [
    "gas", "storage", "winter", "border", "council", "energy", "prices", "ministers",
    "report", "water", "rail", "budget", "tax", "school", "health",
]  # fmt: skip
QUESTIONS = ["gas storage plan", "rail budget question", "water report chapter 3", "tax detail"]


def _sentence(page: int, line: int) -> str:
    first, second = _TOPICS[(page * 3 + line) % 15], _TOPICS[(page + line * 2) % 15]
    return f"The {first} plan of chapter {page} covers the {second} question in detail."


def _pages(count: int = 6) -> list[list[str]]:
    """Pages of one-sentence lines; with the fakes' small chunks, three lines make a chunk."""
    return [[_sentence(page, line) for line in range(7)] for page in range(1, count + 1)]


def _filing(pages: list[list[str]], name: str = NAME) -> tuple[Document, list[Chunk]]:
    return fake_document(name, "\f".join("\n".join(lines) for lines in pages))


def _one_word_edited() -> list[list[str]]:
    """Page 3 says "treats" for "covers" once: one chunk's text changes (not its length, so
    that a key weaker than the text itself would miss it), and no chunk moves."""
    pages = _pages()
    pages[2][3] = pages[2][3].replace("covers", "treats")
    return pages


def _three_lines_inserted() -> list[list[str]]:
    """Three lines (one chunk's worth) go into page 3 at a chunk boundary: one new chunk, and
    every later chunk keeps its text but moves one position on."""
    pages = _pages()
    pages[2][1:1] = [f"An added line {n} reports on water and rail spending." for n in range(3)]
    return pages


Edit = Callable[[], list[list[str]]]
EDITS: dict[str, Edit] = {"one word": _one_word_edited, "three lines": _three_lines_inserted}


def _new_texts(old: list[Chunk], new: list[Chunk]) -> list[Chunk]:
    known = {chunk.text for chunk in old}
    return [chunk for chunk in new if chunk.text not in known]


def _texts_to_embed(chunks: list[Chunk]) -> int:
    """What the fake embedder counts for these chunks: each text and each of its sentences."""
    return sum(1 + len(sentence_spans(chunk.text)) for chunk in chunks)


def _entries(root: Path) -> list[DocumentEntry]:
    index = load_index(root, FakeEmbedder().identity, CHUNKING)
    try:
        return list(index.entries())
    finally:
        index.close()


def _results(root: Path) -> list[list[tuple[str, int, str, float]]]:
    embedder = FakeEmbedder()
    index = load_index(root, embedder.identity, CHUNKING)
    retriever = Retriever(index, embedder)
    try:
        return [
            [
                (hit.file_name, hit.chunk.page_start, hit.chunk.chunk_id, hit.score)
                for hit in retriever.search(question, k=5, mode=mode).hits
            ]
            for question in QUESTIONS
            for mode in Mode
        ]
    finally:
        index.close()


def _assert_same_index(incremental: Path, fresh: Path) -> None:
    ours, theirs = _entries(incremental), _entries(fresh)
    assert len(ours) == len(theirs)
    for mine, rebuilt in zip(ours, theirs, strict=True):
        assert mine.document == rebuilt.document
        assert mine.chunks == rebuilt.chunks
        assert mine.sentences == rebuilt.sentences
        np.testing.assert_array_equal(mine.vectors, rebuilt.vectors)
        np.testing.assert_array_equal(mine.sentence_vectors, rebuilt.sentence_vectors)
    assert _results(incremental) == _results(fresh)


def _update(
    root: Path, embedder: FakeEmbedder, *files: tuple[Document, list[Chunk]]
) -> UpdateResult:
    return update_index(root, list(files), embedder, CHUNKING)


def test_the_inserted_lines_move_every_later_chunk_one_position_on() -> None:
    """The premise that makes a key by position fail the tests below."""
    old, new = _filing(_pages())[1], _filing(_three_lines_inserted())[1]
    assert len(new) == len(old) + 1
    assert [chunk.text for chunk in new[6:]] == [chunk.text for chunk in old[5:]]


@pytest.mark.parametrize("edit", EDITS.values(), ids=EDITS.keys())
def test_editing_one_page_re_embeds_only_the_chunks_whose_text_changed(
    tmp_path: Path, edit: Edit
) -> None:
    embedder = FakeEmbedder()
    original, edited = _filing(_pages()), _filing(edit())
    _update(tmp_path, embedder, original)
    before = embedder.texts_embedded

    outcome = _update(tmp_path, embedder, edited)

    changed = _new_texts(original[1], edited[1])
    assert len(changed) == 1 and len(edited[1]) >= 14  # the edit touched one chunk of many
    assert outcome.replaced == [NAME]
    assert outcome.embedded_chunks == 1
    assert outcome.reused_chunks == len(edited[1]) - 1
    assert embedder.texts_embedded - before == _texts_to_embed(changed)


@pytest.mark.parametrize("edit", EDITS.values(), ids=EDITS.keys())
def test_the_updated_index_equals_a_full_rebuild(tmp_path: Path, edit: Edit) -> None:
    embedder = FakeEmbedder()
    other = fake_document("other.txt", "Wind farms grow each year.\fThe council meets monthly.")
    _update(tmp_path / "incremental", embedder, _filing(_pages()), other)
    _update(tmp_path / "incremental", embedder, _filing(edit()))
    _update(tmp_path / "fresh", embedder, _filing(edit()), other)
    _assert_same_index(tmp_path / "incremental", tmp_path / "fresh")


def test_a_renamed_copy_embeds_nothing(tmp_path: Path) -> None:
    embedder = FakeEmbedder()
    _update(tmp_path / "incremental", embedder, _filing(_pages()))
    before = embedder.texts_embedded

    copy = _filing(_pages(), "filing-copy.txt")
    outcome = _update(tmp_path / "incremental", embedder, copy)

    assert outcome.added == ["filing-copy.txt"]
    assert (outcome.embedded_chunks, outcome.reused_chunks) == (0, len(copy[1]))
    assert embedder.texts_embedded == before
    _update(tmp_path / "fresh", embedder, _filing(_pages()), copy)
    _assert_same_index(tmp_path / "incremental", tmp_path / "fresh")


def test_chunks_split_into_other_sentences_are_embedded_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stored sentence vectors fit only the sentences they were cut into; a new splitter (after
    an upgrade, say) must not pair them with other spans of the same text."""
    embedder = FakeEmbedder()
    _update(tmp_path / "incremental", embedder, _filing(_pages()))
    monkeypatch.setattr("index.update.sentence_spans", _whole_text_as_one_sentence)
    edited = _filing(_one_word_edited())

    outcome = _update(tmp_path / "incremental", embedder, edited)

    assert (outcome.embedded_chunks, outcome.reused_chunks) == (len(edited[1]), 0)
    _update(tmp_path / "fresh", embedder, edited)
    _assert_same_index(tmp_path / "incremental", tmp_path / "fresh")


def _whole_text_as_one_sentence(text: str) -> list[tuple[int, int]]:
    return [(0, len(text))]


def test_a_rebuild_embeds_every_chunk_again(tmp_path: Path) -> None:
    embedder = FakeEmbedder()
    filing = _filing(_pages())
    _update(tmp_path, embedder, filing)

    outcome = update_index(tmp_path, [filing], embedder, CHUNKING, rebuild=True)

    assert (outcome.embedded_chunks, outcome.reused_chunks) == (len(filing[1]), 0)


class _RecordingProgress:
    def __init__(self) -> None:
        self.events: list[tuple[str, int]] = []

    def embedding_planned(self, chunks: int) -> None:
        self.events.append(("planned", chunks))

    def chunks_embedded(self, count: int) -> None:
        self.events.append(("embedded", count))


def test_progress_hears_the_chunks_to_embed_before_the_first_batch(tmp_path: Path) -> None:
    embedder, progress = FakeEmbedder(), _RecordingProgress()
    _update(tmp_path, embedder, _filing(_pages()))
    new = fake_document("new.txt", "A new file about harbour dues.\fIts second page.")

    outcome = update_index(
        tmp_path,
        [_filing(_pages()), _filing(_one_word_edited(), "filing-2.txt"), new],
        embedder,
        CHUNKING,
        progress=progress,
    )

    # Unchanged files and reused chunks are not in the plan: one edited chunk, and the new file.
    planned = 1 + len(new[1])
    assert outcome.embedded_chunks == planned
    assert progress.events[0] == ("planned", planned)
    assert sum(count for kind, count in progress.events[1:] if kind == "embedded") == planned


def test_a_plain_callable_still_hears_each_batch(tmp_path: Path) -> None:
    counts: list[int] = []
    filing = _filing(_pages())
    update_index(tmp_path, [filing], FakeEmbedder(), CHUNKING, progress=counts.append)
    assert sum(counts) == len(filing[1])
