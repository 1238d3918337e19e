"""`ChanceryRetriever` in an LCEL chain, in process and against the app under uvicorn, sync and
async: the passages reach the chat model, and their metadata say where each stands.

The sample documents are indexed here with the real model, which the served app shares; the
in-process retriever loads its own, as a pipeline would. The chat model is langchain_core's fake:
the retriever is what is under test.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.documents import Document
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import BaseMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import Runnable, RunnableLambda, RunnablePassthrough
from pydantic import ValidationError

from index.embedder import SentenceTransformerEmbedder
from index.store import Index, current_version, read_manifest
from service.build import build_app, build_embedder, build_ingester, collection_index
from service.errors import InvalidRequestError, NotFoundError, UnavailableError
from service.langchain import ChanceryRetriever, _Catalog
from service.settings import Settings
from service.subprocess_server import free_port
from tests.conftest import SAMPLES
from tests.served import Served

SAMPLE_FILES = [
    SAMPLES / "northland-national-security-strategy.pdf",
    SAMPLES / "northland-energy-brief.md",
]
QUESTION = "Who is responsible for coordinating the implementation of the strategy?"
ENERGY_DOC = "northland-energy-brief.md"
REPLY = "The Minister of Defence coordinates it."
PROMPT = ChatPromptTemplate.from_messages(
    [
        ("system", "Answer from these passages only, citing them:\n\n{context}"),
        ("human", "{question}"),
    ]
)
METADATA = {
    "doc_id",
    "doc",
    "title",
    "page_start",
    "page_end",
    "page_label",
    "heading",
    "chunk_id",
    "score",
    "collection",
    "index_version",
}


@pytest.fixture(scope="module")
def embedder() -> SentenceTransformerEmbedder:
    return build_embedder(Settings()).load()


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(data_dir=tmp_path_factory.mktemp("langchain-data"))


@pytest.fixture(scope="module")
def index_dir(settings: Settings, embedder: SentenceTransformerEmbedder) -> Path:
    root = collection_index(settings, "default")
    ingester = build_ingester(settings, embedder)
    parsed = ingester.parse(SAMPLE_FILES)
    assert not parsed.report.failed
    ingester.update(root, parsed.documents)
    return root


@pytest.fixture(scope="module")
def stored(index_dir: Path) -> Iterator[Index]:
    """The index as stored, to check the metadata against."""
    version = current_version(index_dir)
    assert version is not None
    index = Index(version, read_manifest(version))
    yield index
    index.records.close()


@pytest.fixture(scope="module")
def base_url(
    settings: Settings, index_dir: Path, embedder: SentenceTransformerEmbedder
) -> Iterator[str]:
    with Served(build_app(settings, embedder=embedder, data_root=True)) as url:
        yield url


@pytest.fixture(scope="module")
def local(settings: Settings, index_dir: Path) -> ChanceryRetriever:
    return ChanceryRetriever(index=index_dir, settings=settings, k=4)


@pytest.fixture(scope="module")
def remote(base_url: str) -> ChanceryRetriever:
    return ChanceryRetriever(url=base_url, k=4)


@pytest.fixture(params=["in-process", "remote"])
def retriever(request: pytest.FixtureRequest) -> ChanceryRetriever:
    found: ChanceryRetriever = request.getfixturevalue(
        "local" if request.param == "in-process" else "remote"
    )
    return found


class PromptRecorder(BaseCallbackHandler):
    """The messages each chat model run was given."""

    def __init__(self) -> None:
        self.prompts: list[list[BaseMessage]] = []

    def on_chat_model_start(
        self, serialized: dict[str, Any], messages: list[list[BaseMessage]], **_: Any
    ) -> None:
        self.prompts.extend(messages)


def _format(documents: list[Document]) -> str:
    return "\n\n".join(
        f"[{n}] {d.metadata['title']}, page {d.metadata['page_start']} "
        f"({d.metadata['doc_id']}):\n{d.page_content}"
        for n, d in enumerate(documents, start=1)
    )


def _chain(retriever: ChanceryRetriever) -> Runnable[str, str]:
    return (
        {"context": retriever | RunnableLambda(_format), "question": RunnablePassthrough()}
        | PROMPT
        | FakeListChatModel(responses=[REPLY])
        | StrOutputParser()
    )


def _check_metadata(documents: list[Document], stored: Index, k: int = 4) -> None:
    assert 1 <= len(documents) <= k
    titles = {d.doc_id: (d.file_name, d.title, d.page_count) for d in stored.documents()}
    for document in documents:
        meta = document.metadata
        assert set(meta) == METADATA
        file_name, title, pages = titles[meta["doc_id"]]
        assert (meta["doc"], meta["title"]) == (file_name, title)
        assert 1 <= meta["page_start"] <= meta["page_end"] <= pages
        page = stored.records.page(meta["doc_id"], meta["page_start"])
        assert page is not None and meta["page_label"] == page.label
        assert document.page_content  # the passage, as the index holds it
        chunk = next(
            c for _, c in stored.records.chunks_of(meta["doc_id"]) if c.chunk_id == meta["chunk_id"]
        )
        assert (chunk.text, chunk.page_start, chunk.page_end) == (
            document.page_content,
            meta["page_start"],
            meta["page_end"],
        )
        assert meta["heading"] == " > ".join(chunk.heading_path)
        assert document.id == meta["chunk_id"]
        assert meta["collection"] == "default" and meta["index_version"] == stored.version
    scores = [d.metadata["score"] for d in documents]
    assert scores == sorted(scores, reverse=True)


def test_in_a_chain_the_passages_reach_the_chat_model(
    retriever: ChanceryRetriever, stored: Index
) -> None:
    recorder = PromptRecorder()
    reply = _chain(retriever).invoke(QUESTION, config={"callbacks": [recorder]})
    assert reply == REPLY
    (system, human), *_ = recorder.prompts
    assert human.content == QUESTION
    assert "Minister of Defence" in str(system.content)
    assert "National Security Strategy of the Republic of Northland" in str(system.content)
    documents = retriever.invoke(QUESTION)
    _check_metadata(documents, stored)
    assert documents[0].page_content in str(system.content)


def test_in_a_chain_asynchronously(retriever: ChanceryRetriever, stored: Index) -> None:
    recorder = PromptRecorder()
    reply = asyncio.run(_chain(retriever).ainvoke(QUESTION, config={"callbacks": [recorder]}))
    assert reply == REPLY
    assert "Minister of Defence" in str(recorder.prompts[0][0].content)
    _check_metadata(asyncio.run(retriever.ainvoke(QUESTION)), stored)


def test_the_printed_page_label_comes_with_the_passage(retriever: ChanceryRetriever) -> None:
    # The strategy's page 3 is printed "1" (roman front matter before it).
    documents = retriever.invoke(QUESTION)
    first = next(d for d in documents if "Minister of Defence" in d.page_content)
    assert (first.metadata["page_start"], first.metadata["page_label"]) == (3, "1")


def test_in_process_and_remote_return_the_same_documents(
    local: ChanceryRetriever, remote: ChanceryRetriever
) -> None:
    for question in (QUESTION, "gas storage"):
        assert local.invoke(question) == remote.invoke(question)


def test_parameters_pick_the_passages(local: ChanceryRetriever, base_url: str) -> None:
    for parameters in ({"index": local.index, "settings": local.settings}, {"url": base_url}):
        narrowed = ChanceryRetriever(k=2, mode="bm25", docs=[ENERGY_DOC], **parameters)
        documents = narrowed.invoke("gas storage")
        assert len(documents) == 2
        assert {d.metadata["doc_id"] for d in documents} == {ENERGY_DOC}
    named = ChanceryRetriever(url=base_url, collection="default", k=1)
    assert named.invoke("gas storage")[0].metadata["collection"] == "default"


def test_a_collection_of_the_data_root_in_process(
    settings: Settings, index_dir: Path, local: ChanceryRetriever
) -> None:
    by_name = ChanceryRetriever(collection="default", settings=settings, k=4)
    assert by_name.invoke(QUESTION) == local.invoke(QUESTION)


def test_errors_say_what_is_wrong(retriever: ChanceryRetriever) -> None:
    with pytest.raises(InvalidRequestError, match="the question is empty"):
        retriever.invoke("   ")
    with pytest.raises(NotFoundError, match=r"nowhere\.pdf"):
        retriever.model_copy(update={"docs": ["nowhere.pdf"]}).invoke(QUESTION)


def test_an_unknown_collection_of_a_service(base_url: str) -> None:
    with pytest.raises(NotFoundError, match="nowhere"):
        ChanceryRetriever(url=base_url, collection="nowhere").invoke(QUESTION)
    with pytest.raises(NotFoundError, match="nowhere"):
        asyncio.run(ChanceryRetriever(url=base_url, collection="nowhere").ainvoke(QUESTION))


def test_a_service_that_does_not_answer() -> None:
    silent = ChanceryRetriever(url=f"http://127.0.0.1:{free_port()}", timeout_s=5)
    with pytest.raises(UnavailableError, match="did not answer"):
        silent.invoke(QUESTION)
    with pytest.raises(UnavailableError, match="did not answer"):
        asyncio.run(silent.ainvoke(QUESTION))


def test_an_index_folder_without_an_index(tmp_path: Path, settings: Settings) -> None:
    empty = ChanceryRetriever(index=tmp_path, settings=settings)
    with pytest.raises(UnavailableError, match="no documents yet"):
        empty.invoke(QUESTION)


def test_one_source_at_a_time(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="not both"):
        ChanceryRetriever(url="http://127.0.0.1:8000", index=tmp_path)
    with pytest.raises(ValidationError, match="not both"):
        ChanceryRetriever(index=tmp_path, collection="default")
    with pytest.raises(ValidationError):
        ChanceryRetriever(url="http://127.0.0.1:8000", k=0)


def test_hits_that_name_their_document_need_no_further_requests() -> None:
    # A service whose hits carry the document's id, title and page label (as the MCP tools'
    # passages do) is asked for nothing more than the search.
    hit = {
        "chunk_id": "c1",
        "doc_id": "report~0123456789.pdf",
        "doc": "Report.pdf",
        "title": "A report",
        "page_start": 2,
        "page_end": 3,
        "page_label": "ii",
        "heading": "",
        "text": "Some text.",
        "score": 0.5,
    }
    payload = {"hits": [hit], "collection": "default", "index_version": "v-1"}
    catalog = _Catalog("/v1", "v-1")
    assert catalog.wanted(payload["hits"]) == []
    (passage,) = catalog.passages(payload).passages
    assert (passage.doc_id, passage.title, passage.page_label) == (
        "report~0123456789.pdf",
        "A report",
        "ii",
    )


def test_hits_without_ids_are_completed_from_the_documents_routes() -> None:
    hit = {
        "chunk_id": "c1",
        "doc": "Report.pdf",
        "page_start": 2,
        "page_end": 2,
        "heading": "",
        "text": "Some text.",
        "score": 0.5,
    }
    catalog = _Catalog("/v1/collections/serbia", "v-1")
    assert catalog.wanted([hit]) == ["/v1/collections/serbia/documents"]
    listing = {"file_name": "Report.pdf", "doc_id": "report~01.pdf", "title": "A report"}
    catalog.learn({"documents": [listing]})
    assert catalog.wanted([hit]) == ["/v1/collections/serbia/documents/report~01.pdf"]
    pages = [{"number": 1, "label": "i"}, {"number": 2, "label": "ii"}]
    catalog.learn({"doc_id": "report~01.pdf", "page_list": pages})
    assert catalog.wanted([hit]) == []
    (passage,) = catalog.passages(
        {"hits": [hit], "collection": "serbia", "index_version": "v-1"}
    ).passages
    assert (passage.doc_id, passage.title, passage.page_label) == (
        "report~01.pdf",
        "A report",
        "ii",
    )
