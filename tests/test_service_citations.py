"""Quote verification and numbering, shared by every answerer."""

from __future__ import annotations

import pytest

from index.retrieve import Hit
from ingest.models import Chunk, Page
from service.answering import Citation
from service.citations import Numbering, cite, locate, markers

PAGE_TEXT = "Gas storage is low. The regulator checks it. Prices rose. The regulator checks it."
SECOND = PAGE_TEXT.rindex("The regulator")


class Pages:
    """Stored pages by (doc_id, number), as `Records.page` returns them."""

    def __init__(self, pages: dict[tuple[str, int], Page]) -> None:
        self._pages = pages

    def page(self, doc_id: str, number: int) -> Page | None:
        return self._pages.get((doc_id, number))


PAGES = Pages({("energy.txt", 2): Page(2, PAGE_TEXT, label="ii")})


def _hit(doc_id: str = "energy.txt") -> Hit:
    chunk = Chunk("c1", doc_id, PAGE_TEXT, 2, 2, ("Energy",), 0, len(PAGE_TEXT))
    return Hit(row=0, chunk=chunk, file_name="Energy.txt", title="Energy note", score=0.5)


def _citation(page: int = 2, quote: str = "Prices rose.") -> Citation:
    return Citation(
        "energy.txt", "Energy.txt", "Energy note", page, None, quote, 0, 1, "c1", 0.5, 0, 1
    )


def test_locate_gives_the_offsets_of_the_first_occurrence() -> None:
    start, end = locate("The regulator checks it.", PAGE_TEXT) or (-1, -1)
    assert (start, end) == (20, 44)
    assert PAGE_TEXT[start:end] == "The regulator checks it."


@pytest.mark.parametrize(("near", "expected"), [(0, 20), (SECOND - 3, SECOND), (10**6, SECOND)])
def test_locate_takes_the_occurrence_nearest_the_hint(near: int, expected: int) -> None:
    found = locate("The regulator checks it.", PAGE_TEXT, near)
    assert found is not None and found[0] == expected


@pytest.mark.parametrize("quote", ["", "The regulator checked it.", "gas storage is low."])
def test_locate_refuses_a_quote_that_is_not_there_verbatim(quote: str) -> None:
    assert locate(quote, PAGE_TEXT) is None


def test_cite_carries_the_page_label_offsets_and_passage() -> None:
    citation = cite(PAGES, _hit(), 2, "Prices rose.", 0.75, answer_span=(14, 26))
    assert citation == Citation(
        doc_id="energy.txt",
        doc="Energy.txt",
        title="Energy note",
        page=2,
        page_label="ii",
        quote="Prices rose.",
        quote_start=45,
        quote_end=57,
        chunk_id="c1",
        score=0.75,
        answer_start=14,
        answer_end=26,
    )
    assert PAGE_TEXT[45:57] == "Prices rose."


def test_cite_refuses_a_page_that_does_not_hold_the_quote() -> None:
    span = (0, 12)
    assert cite(PAGES, _hit(), 2, "Prices fell.", 0.75, answer_span=span) is None
    assert cite(PAGES, _hit(), 3, "Prices rose.", 0.75, answer_span=span) is None
    assert cite(PAGES, _hit("other.txt"), 2, "Prices rose.", 0.75, answer_span=span) is None


def test_numbering_reuses_the_number_of_a_quote_cited_again() -> None:
    numbering = Numbering()
    assert numbering.number(_citation()) == 1
    assert numbering.number(_citation(quote="Gas storage is low.")) == 2
    assert numbering.number(_citation()) == 1
    assert numbering.number(_citation(page=3)) == 3  # the same words on another page
    assert [c.quote for c in numbering.citations] == [
        "Prices rose.",
        "Gas storage is low.",
        "Prices rose.",
    ]


def test_markers_reads_the_numbers_in_order() -> None:
    assert markers("One [1]. Two [2] and one again [1]. Not [x] or [ 3].") == [1, 2, 1]
    assert markers("no markers") == []
