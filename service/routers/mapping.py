"""Domain results as the response models of the HTTP API (and of the CLI's `--json`)."""

from __future__ import annotations

from collections.abc import Iterator

from pydantic import BaseModel

from index.records import DocumentInfo
from index.retrieve import Hit
from index.store import Index
from ingest.models import Document, Heading, Page
from service.answering import Citation
from service.engine import AskResult, SearchHits
from service.jobs import FileResult, Job, JobState
from service.library import CollectionInfo
from service.schemas import (
    AbstainedEvent,
    AskResponse,
    CitationOut,
    CollectionOut,
    DocumentDetail,
    DocumentOut,
    DocumentsResponse,
    DoneEvent,
    FileOut,
    HeadingOut,
    HitOut,
    IndexResponse,
    JobAccepted,
    JobOut,
    PageOut,
    PageSummary,
    PassagesEvent,
    SearchResponse,
    SentenceEvent,
)


def hit_out(hit: Hit) -> HitOut:
    return HitOut(
        chunk_id=hit.chunk.chunk_id,
        doc=hit.file_name,
        page_start=hit.chunk.page_start,
        page_end=hit.chunk.page_end,
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
    )


def ask_events(result: AskResult) -> Iterator[tuple[str, BaseModel]]:
    """A streamed answer as (event name, data): `passages`, then a `sentence` per cited
    sentence in the order of the text, or `abstained`, then `done`. A sentence is the span its
    citations give (`answer_start`, `answer_end`), so each answerer's text splits the same way."""
    answer = result.answer
    passages = [hit_out(hit) for hit in answer.passages]
    yield "passages", PassagesEvent(passages=passages)
    if answer.abstained:
        yield "abstained", AbstainedEvent(answer=answer.text, passages=passages)
    sentences: dict[tuple[int, int], list[CitationOut]] = {}
    for n, citation in enumerate(answer.citations, start=1):
        span = (citation.answer_start, citation.answer_end)
        sentences.setdefault(span, []).append(citation_out(n, citation))
    for (start, end), citations in sorted(sentences.items()):
        yield "sentence", SentenceEvent(text=answer.text[start:end], citations=citations)
    yield (
        "done",
        DoneEvent(
            collection=result.collection,
            index_version=result.index_version,
            timings_ms=result.timings_ms,
        ),
    )


def search_response(result: SearchHits) -> SearchResponse:
    return SearchResponse(
        hits=[hit_out(hit) for hit in result.hits],
        collection=result.collection,
        index_version=result.index_version,
    )


def documents_response(index: Index) -> DocumentsResponse:
    return DocumentsResponse(
        documents=[_document_out(d) for d in index.documents()], index_version=index.version
    )


def _document_out(info: DocumentInfo) -> DocumentOut:
    return DocumentOut(
        doc_id=info.doc_id,
        file_name=info.file_name,
        title=info.title,
        sha256=info.sha256,
        pages=info.page_count,
    )


def document_detail(document: Document) -> DocumentDetail:
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
