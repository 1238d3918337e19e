"""Domain results as the response models of the HTTP API (and of the CLI's `--json`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from index.records import DocumentInfo
from index.retrieve import Hit
from index.store import Index
from ingest.models import Document, Heading, Page
from service.answering import Answer, Citation, Sentence
from service.engine import AskResult, Retrieved, SearchHits
from service.jobs import FileResult, Job, JobState
from service.library import CollectionInfo
from service.originals import document_format, kept_original
from service.schemas import (
    AbstainedEvent,
    AskResponse,
    BoxOut,
    CitationOut,
    CollectionOut,
    DocumentDetail,
    DocumentOut,
    DocumentsResponse,
    DoneEvent,
    FileOut,
    HeadingOut,
    HighlightsOut,
    HitOut,
    IndexResponse,
    JobAccepted,
    JobOut,
    PageOut,
    PageSummary,
    PassagesEvent,
    Provenance,
    SearchResponse,
    SentenceEvent,
)

if TYPE_CHECKING:
    # Types only: the page renderer imports PDFium and Pillow, which the CLI's --json output
    # never needs.
    from service.page_render import PageBoxes
    from service.uploads import Originals


def hit_out(hit: Hit) -> HitOut:
    return HitOut(
        chunk_id=hit.chunk.chunk_id,
        doc_id=hit.chunk.doc_id,
        doc=hit.file_name,
        title=hit.title,
        page_start=hit.chunk.page_start,
        page_end=hit.chunk.page_end,
        page_label=hit.page_label,
        heading=hit.heading,
        text=hit.chunk.text,
        score=round(hit.score, 6),
    )


def citation_out(n: int, citation: Citation) -> CitationOut:
    return CitationOut(
        n=n,
        doc_id=citation.doc_id,
        doc=citation.doc,
        title=citation.title,
        page=citation.page,
        page_label=citation.page_label,
        quote=citation.quote,
        quote_start=citation.quote_start,
        quote_end=citation.quote_end,
        chunk_id=citation.chunk_id,
        score=citation.score,
        answer_start=citation.answer_start,
        answer_end=citation.answer_end,
    )


def ask_response(result: AskResult) -> AskResponse:
    answer = result.answer
    return AskResponse(
        answer=answer.text,
        abstained=answer.abstained,
        citations=[citation_out(n, c) for n, c in enumerate(answer.citations, start=1)],
        passages=[hit_out(hit) for hit in answer.passages],
        collection=result.collection,
        index_version=result.index_version,
        timings_ms=result.timings_ms,
        **_provenance(answer).model_dump(),
    )


def passages_event(retrieved: Retrieved) -> PassagesEvent:
    return PassagesEvent(passages=[hit_out(hit) for hit in retrieved.passages])


def sentence_event(sentence: Sentence) -> SentenceEvent:
    return SentenceEvent(
        text=sentence.text, citations=[citation_out(n, c) for n, c in sentence.citations]
    )


def closing_events(result: AskResult) -> Iterator[tuple[str, BaseModel]]:
    """What ends a stream: `abstained` when the answer declines, then `done`."""
    answer = result.answer
    if answer.abstained:
        passages = [hit_out(hit) for hit in answer.passages]
        yield "abstained", AbstainedEvent(answer=answer.text, passages=passages)
    yield (
        "done",
        DoneEvent(
            collection=result.collection,
            index_version=result.index_version,
            timings_ms=result.timings_ms,
            **_provenance(answer).model_dump(),
        ),
    )


def _provenance(answer: Answer) -> Provenance:
    return Provenance.model_validate(
        {
            "answerer": answer.answerer,
            "fallback": answer.fallback,
            "dropped": list(answer.dropped),
            "notes": list(answer.notes),
        }
    )


def search_response(result: SearchHits) -> SearchResponse:
    return SearchResponse(
        hits=[hit_out(hit) for hit in result.hits],
        collection=result.collection,
        index_version=result.index_version,
    )


def documents_response(index: Index, originals: Originals | None = None) -> DocumentsResponse:
    """The index's documents; `originals`, the collection's kept files, tells their size and
    time, and whether their pages have images."""
    return DocumentsResponse(
        documents=[_document_out(d, originals) for d in index.documents()],
        index_version=index.version,
    )


def _document_out(info: DocumentInfo, originals: Originals | None) -> DocumentOut:
    return DocumentOut(
        doc_id=info.doc_id,
        file_name=info.file_name,
        title=info.title,
        sha256=info.sha256,
        pages=info.page_count,
        **_file_facts(info.file_name, info.sha256, originals),
    )


def document_detail(document: Document, originals: Originals | None = None) -> DocumentDetail:
    return DocumentDetail(
        doc_id=document.doc_id,
        file_name=document.file_name,
        title=document.title,
        sha256=document.sha256,
        pages=len(document.pages),
        page_list=[
            PageSummary(number=p.number, label=p.label, headings=_headings(p.headings))
            for p in document.pages
        ],
        **_file_facts(document.file_name, document.sha256, originals),
    )


def _file_facts(file_name: str, sha256: str, originals: Originals | None) -> dict[str, Any]:
    """`format`, `bytes`, `ingested_at` and `has_page_images` of a DocumentOut."""
    kind = document_format(file_name)
    kept = kept_original(originals, file_name, sha256)
    return {
        "format": kind,
        "bytes": kept.size if kept else None,
        "ingested_at": kept.kept_at if kept else None,
        "has_page_images": kind == "pdf" and kept is not None,
    }


def highlights_out(
    doc_id: str, page: int, span: tuple[int, int], boxes: PageBoxes | None
) -> HighlightsOut:
    """The highlights of the quote at `span` of a page's stored text; `boxes` None when the
    page has no image."""
    return HighlightsOut(
        doc_id=doc_id,
        page=page,
        start=span[0],
        end=span[1],
        width_pt=boxes.width_pt if boxes else None,
        height_pt=boxes.height_pt if boxes else None,
        boxes=[
            BoxOut(left=b.left, top=b.top, width=b.width, height=b.height)
            for b in (boxes.boxes if boxes else ())
        ],
    )


def page_out(info: DocumentInfo, page: Page) -> PageOut:
    return PageOut(
        doc_id=info.doc_id,
        doc=info.file_name,
        number=page.number,
        label=page.label,
        text=page.text,
        headings=_headings(page.headings),
    )


def index_response(index: Index) -> IndexResponse:
    return IndexResponse.model_validate({"version": index.version, **index.manifest.model_dump()})


def _headings(headings: tuple[Heading, ...]) -> list[HeadingOut]:
    return [HeadingOut(text=h.text, level=h.level) for h in headings]


def collection_out(info: CollectionInfo) -> CollectionOut:
    return CollectionOut(name=info.name, index_version=info.index_version, documents=info.documents)


def job_url(job_id: str) -> str:
    return f"/v1/jobs/{job_id}"


def job_accepted(job: Job) -> JobAccepted:
    return JobAccepted(job_id=job.id, state=job.state.value, url=job_url(job.id))


def job_out(job: Job) -> JobOut:
    return JobOut(
        job_id=job.id,
        collection=job.spec.collection,
        state=job.state.value,
        files=[_file_out(result) for result in job.results],
        removed=list(job.spec.remove) if job.state is JobState.SUCCEEDED else [],
        index_version=job.version,
        error=job.error,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
    )


def _file_out(result: FileResult) -> FileOut:
    return FileOut(
        name=result.name,
        status=result.status,
        reason=result.reason,
        pages=result.pages,
        chunks=result.chunks,
        doc_id=result.doc_id,
    )
