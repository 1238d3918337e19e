"""The `chancery` command. Errors end as one sentence on stderr and a non-zero exit code.

Each command imports what it needs when it runs: `chancery --help` should answer at once, and
the index, model and evaluation libraries take seconds to import.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from typer.core import TyperArgument, TyperCommand

from index.modes import Mode
from service.cli_admin import audit_app, keys_app

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from pydantic import BaseModel
    from typer import _click

    from index.update import UpdateResult
    from ingest.models import Chunk, Document
    from service.collections import CollectionRegistry
    from service.ray_ingest import RayWorkers
    from service.settings import Settings
    from service.uploads import Originals

_PREVIEW_CHARS = 90
Request = TypeVar("Request", bound="BaseModel")


class _Command(TyperCommand):
    """Usage lines in the usual notation (`ingest [OPTIONS] PATHS...`): typer writes a
    required argument as `{paths}`, which reads like a placeholder for a literal brace."""

    def collect_usage_pieces(self, ctx: _click.Context) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if isinstance(param, TyperArgument):
                name = param.display_name_raw
                if param.metavar is None:
                    name = name.upper() + ("..." if param.nargs != 1 else "")
                pieces.append(name if param.required else f"[{name}]")
        return pieces


app = typer.Typer(
    name="chancery",
    help="Question answering over reports, every claim cited to a page.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    # Typer's Rich help prints `<bool>` after every flag, as if it took a value; its plain help
    # does not, and it needs no Rich import either. Plain help cuts a command's summary to one
    # line, hence the short_help of the commands whose docstring is longer.
    rich_markup_mode=None,
)


class _Invocation:
    """What the commands of one invocation share: the settings, read from the environment once,
    when a command first asks. Not before: the root callback runs even for `chancery ingest
    --help`, which must neither wait for nor fail on them."""

    @cached_property
    def settings(self) -> Settings:
        from service.settings import Settings

        return Settings()


@app.callback()
def _root(ctx: typer.Context) -> None:
    """Question answering over reports, every claim cited to a page."""
    ctx.obj = _Invocation()


def _settings(ctx: typer.Context) -> Settings:
    """This invocation's settings."""
    invocation = ctx.find_object(_Invocation)
    assert invocation is not None, "the root callback sets it"
    return invocation.settings


def _target(
    ctx: typer.Context, index: Path | None, collection: str | None
) -> tuple[Settings, Path]:
    """The settings and the index folder a command works on: `--index DIR`, the index of
    `--collection NAME` in the data root, or else CHANCERY_INDEX_DIR or the collection
    `default`. The settings name that folder as their `index_dir`."""
    if index is not None and collection is not None:
        raise typer.BadParameter(
            "give --index DIR (a bare index folder) or --collection NAME (a collection of the "
            "data root), not both"
        )
    from service.build import collection_index, index_folder
    from service.collections import CollectionNotFoundError
    from service.errors import NotFoundError

    settings = _settings(ctx)
    if index is not None:
        root = index
    elif collection is not None:
        try:
            root = collection_index(settings, collection)
        except CollectionNotFoundError as exc:
            raise NotFoundError(
                f"no collection '{collection}' in {settings.data_dir}; create it with "
                f"`chancery collections create {collection}`"
            ) from exc
    else:
        root = index_folder(settings)
    return settings.model_copy(update={"index_dir": root}), root


def _originals(ctx: typer.Context, index: Path | None, collection: str | None) -> Originals | None:
    """Where ingest keeps the files it read: the collection's originals, as uploads are kept,
    so that the page viewer can show their pages. A bare index folder keeps none."""
    settings = _settings(ctx)
    if index is not None or (collection is None and settings.index_dir is not None):
        return None
    from service.collections import DEFAULT_COLLECTION, CollectionRegistry
    from service.uploads import Originals

    registry: CollectionRegistry[None] = CollectionRegistry(settings.data_dir, lambda _: None)
    return Originals(registry.get(collection or DEFAULT_COLLECTION).originals_dir)


@app.command(cls=_Command)
def inspect(
    ctx: typer.Context,
    file: Annotated[
        Path, typer.Argument(metavar="FILE", help="A PDF, text, Markdown, HTML or DOCX file.")
    ],
    chunks: Annotated[bool, typer.Option("--chunks", help="Show chunks instead of pages.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Show what the ingester sees in FILE: its pages, or its chunks."""
    from ingest.loaders import load_document
    from ingest.raw import LoadError
    from service.build import build_chunking
    from service.errors import InvalidRequestError

    settings = _settings(ctx)
    try:
        loaded = load_document(file, settings.max_file_bytes)
    except LoadError as exc:
        raise InvalidRequestError(f"cannot read {file}: {exc}") from exc
    document = loaded.document
    document_chunks = build_chunking(settings).chunk(document) if chunks else []
    if as_json:
        payload: dict[str, Any] = {
            "document": _document_json(document),
            "warnings": list(loaded.warnings),
        }
        if chunks:
            payload["chunks"] = [asdict(chunk) for chunk in document_chunks]
        typer.echo(json.dumps(payload, ensure_ascii=False, indent=2))
        return
    typer.echo(
        f"{document.file_name}: {document.title!r}, {len(document.pages)} pages, "
        f"sha256 {document.sha256[:12]}…"
    )
    for warning in loaded.warnings:
        typer.echo(f"warning: {warning}", err=True)
    if chunks:
        _print_chunks(document_chunks)
    else:
        _print_pages(document)


IndexOption = Annotated[
    Path | None,
    typer.Option(
        "--index",
        help="A bare index folder (default: CHANCERY_INDEX_DIR, else the collection 'default').",
    ),
]
CollectionOption = Annotated[
    str | None,
    typer.Option(
        "--collection",
        metavar="NAME",
        help="A collection of the data root (CHANCERY_DATA_DIR) instead of --index.",
    ),
]


class AnswererChoice(StrEnum):
    EXTRACTIVE = "extractive"
    GENERATIVE = "generative"


AnswererOption = Annotated[
    AnswererChoice | None,
    typer.Option(
        "--answerer",
        help="extractive (quotes) or generative (an LLM's verified sentences; needs "
        "CHANCERY_LLM_BASE_URL and CHANCERY_LLM_MODEL). Default: CHANCERY_ANSWERER.",
    ),
]


@app.command(cls=_Command, short_help="Add new or changed files to an index.")
def ingest(
    ctx: typer.Context,
    paths: Annotated[
        list[Path],
        typer.Argument(metavar="PATHS...", help="Files or folders (searched recursively)."),
    ],
    index: IndexOption = None,
    collection: CollectionOption = None,
    rebuild: Annotated[
        bool, typer.Option("--rebuild", help="Re-embed everything (after a model change).")
    ] = False,
    ray: Annotated[
        str | None,
        typer.Option(
            "--ray",
            metavar="ADDRESS",
            help="Parse and embed on this Ray cluster (HOST:PORT, or auto: the one `ray start` "
            "runs here, else a new local one). Default: CHANCERY_RAY_ADDRESS, else in this "
            "process.",
        ),
    ] = None,
) -> None:
    """Add new or changed files to an index; unchanged files are not embedded again."""
    from contextlib import nullcontext

    from service.build import build_embedder, build_ingester
    from service.progress import IngestProgress

    settings, root = _target(ctx, index, collection)
    # Cheap: the model loads when the ingester first embeds, so an ingest that finds nothing
    # new to embed (or nothing readable) never waits for it.
    embedder = build_embedder(settings)
    address = ray or settings.ray_address
    workers: AbstractContextManager[RayWorkers | None] = nullcontext()
    if address:
        from service.ray_ingest import ray_workers

        workers = ray_workers(settings, embedder.identity, address)
    with workers as cluster:
        ingester = build_ingester(settings, embedder, cluster)
        progress = IngestProgress()
        ingested = ingester.parse(paths, on_file=progress.file_done)
        failures = ingested.report.failed
        try:
            outcome = ingester.update(root, ingested.documents, rebuild=rebuild, progress=progress)
        finally:
            progress.close()
    notes = [] if embedder.load_seconds is None else [f"model load {embedder.load_seconds:.1f} s"]
    if address:
        notes.append(f"parsed and embedded on Ray ({address})")
    notes.append(f"version {outcome.version.name}" if outcome.version else "no change written")
    typer.echo(
        f"{root}: {len(outcome.added)} added, {len(outcome.replaced)} replaced, "
        f"{len(outcome.unchanged)} unchanged, {len(failures)} failed, "
        f"{len(ingested.report.skipped)} skipped; "
        f"{progress.pages} pages, {_embedded_summary(outcome)} "
        f"in {progress.elapsed:.1f} s ({'; '.join(notes)})"
    )
    originals = _originals(ctx, index, collection)
    if originals is not None:
        from service.originals import keep_ingested

        # Report and documents list the files that loaded in the same order.
        loaded = zip(ingested.report.ok, ingested.documents, strict=True)
        kept = [(report.path, document) for report, (document, _) in loaded]
        # A server's job collecting garbage now may have read which files the versions name
        # before this ingest's version existed; it would remove these as they arrive.
        with originals.in_use():
            notes = keep_ingested(originals, kept)
        for note in notes:
            typer.echo(f"note: {note}", err=True)
    for failure in failures:
        typer.echo(f"failed: {failure.path}: {failure.reason}", err=True)
    for skipped in ingested.report.skipped:
        typer.echo(f"skipped: {skipped.path}: {skipped.reason}", err=True)
    if failures:
        raise typer.Exit(1)


def _embedded_summary(outcome: UpdateResult) -> str:
    """How many chunks were embedded, and, when an edit left most of a file as it was, how
    few of its chunks that is: "3 chunks embedded (909 of 912 unchanged, reused)"."""
    count = outcome.embedded_chunks
    summary = f"{count} chunk{'' if count == 1 else 's'} embedded"
    if outcome.reused_chunks:
        total = outcome.embedded_chunks + outcome.reused_chunks
        summary += f" ({outcome.reused_chunks} of {total} unchanged, reused)"
    return summary


@app.command(cls=_Command)
def remove(
    ctx: typer.Context,
    doc: Annotated[str, typer.Argument(metavar="DOC", help="Document id or file name.")],
    index: IndexOption = None,
    collection: CollectionOption = None,
) -> None:
    """Remove one document from an index."""
    from index.retrieve import Retriever
    from index.store import load_index, require_index
    from index.update import update_index
    from service.build import build_embedder

    settings, root = _target(ctx, index, collection)
    require_index(root)
    embedder = build_embedder(settings)  # for its identity: removing embeds nothing
    loaded = load_index(root, embedder.identity)
    try:
        doc_id = Retriever(loaded, embedder).resolve_documents([doc])[0]
        chunking = loaded.manifest.chunking
    finally:
        loaded.close()
    outcome = update_index(root, [], embedder, chunking, remove=[doc_id])
    typer.echo(
        f"{root}: removed {doc_id}"
        + (f" (version {outcome.version.name})" if outcome.version else "")
    )


@app.command(cls=_Command)
def search(
    ctx: typer.Context,
    question: Annotated[
        str, typer.Argument(metavar="QUESTION", help="The question, in plain words.")
    ],
    index: IndexOption = None,
    collection: CollectionOption = None,
    k: Annotated[int, typer.Option("-k", min=1, max=100, help="How many hits.")] = 10,
    mode: Annotated[Mode, typer.Option("--mode", help="Retrieval mode.")] = Mode.HYBRID,
    doc: Annotated[
        list[str] | None, typer.Option("--doc", help="Only this document (repeatable).")
    ] = None,
    pages: Annotated[
        bool,
        typer.Option(
            "--distinct-pages/--every-passage",
            help="At most one hit per page (the best), or every passage however many share one.",
        ),
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Search an index and print the best passages with their pages."""
    from index.store import require_index
    from service.build import build_embedder, build_engine
    from service.routers.mapping import search_response
    from service.schemas import SearchRequest

    request = _validated(
        SearchRequest, question=question, k=k, mode=mode, docs=doc, distinct_pages=pages
    )
    settings, root = _target(ctx, index, collection)
    require_index(root)
    # The model loads only if the mode embeds the question (not for bm25).
    engine = build_engine(settings, build_embedder(settings))
    response = search_response(
        engine.search(
            request.question, request.k, request.mode, request.docs, request.distinct_pages
        )
    )
    if as_json:
        typer.echo(response.model_dump_json())
        return
    if not response.hits:
        typer.echo("no passage matches the question")
    for rank, hit in enumerate(response.hits, start=1):
        span = _span(hit.page_start, hit.page_end)
        typer.echo(f"[{rank}] {hit.doc} {span}  score {hit.score:.4f}  {hit.heading}")
        typer.echo(f"    {_preview(hit.text, 400)}\n")


@app.command(cls=_Command, short_help="Answer a question, citing a page for every sentence.")
def ask(
    ctx: typer.Context,
    question: Annotated[
        str, typer.Argument(metavar="QUESTION", help="The question, in plain words.")
    ],
    index: IndexOption = None,
    collection: CollectionOption = None,
    k: Annotated[int, typer.Option("-k", min=1, max=50, help="Passages to read.")] = 8,
    doc: Annotated[
        list[str] | None, typer.Option("--doc", help="Only this document (repeatable).")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print exactly the /v1/ask response body.")
    ] = False,
    answerer: AnswererOption = None,
) -> None:
    """Answer a question from the documents, citing a page for every sentence."""
    from index.store import require_index
    from service.build import build_embedder, build_engine
    from service.routers.mapping import ask_response
    from service.schemas import AskRequest

    request = _validated(
        AskRequest, question=question, k=k, docs=doc, answerer=answerer.value if answerer else None
    )
    settings, root = _target(ctx, index, collection)
    require_index(root)
    engine = build_engine(settings, build_embedder(settings))
    response = ask_response(engine.ask(request.question, request.k, request.docs, request.answerer))
    if as_json:
        typer.echo(response.model_dump_json())
        return
    typer.echo(response.answer)
    if response.citations:
        typer.echo("")
    for citation in response.citations:
        label = f" (printed {citation.page_label})" if citation.page_label else ""
        typer.echo(f"[{citation.n}] {citation.doc}, p. {citation.page}{label}: “{citation.quote}”")
    if response.fallback:
        typer.echo(f"\n(answered by the {response.answerer} answerer: {response.fallback})")
    for note in response.notes:
        typer.echo(f"\n({note})")
    if response.abstained:
        for rank, passage in enumerate(response.passages[:3], start=1):
            pages = _span(passage.page_start, passage.page_end)
            typer.echo(f"\n({rank}) {passage.doc} {pages}: {_preview(passage.text, 300)}")


@app.command(cls=_Command, short_help="Serve the HTTP API over the data root or one index.")
def serve(
    ctx: typer.Context,
    index: Annotated[
        Path | None,
        typer.Option(
            "--index",
            help="Serve this bare index folder alone, as the collection 'default' (read-only "
            "over HTTP) instead of the data root.",
        ),
    ] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
    insecure: Annotated[
        bool,
        typer.Option(
            "--insecure",
            help="Listen beyond loopback although no API key exists (anyone who can reach the "
            "port can then read every document).",
        ),
    ] = False,
) -> None:
    """Serve the HTTP API (and its docs at /docs) over every collection of the data root
    (CHANCERY_DATA_DIR; 'default' is created), or over one index folder with --index."""
    import uvicorn

    from service.bind_check import check_bind
    from service.build import build_app
    from service.keys import KeyStore
    from service.request_context import configure_logging

    settings = _settings(ctx)
    keys = KeyStore(settings.data_dir)
    try:
        check_bind(host, keys.any_keys(), insecure)
    finally:
        keys.close()
    if index is None:
        served = build_app(settings, data_root=True)
    else:
        served = build_app(settings.model_copy(update={"index_dir": index}))
    # uvicorn's own lines go through the same handler, with the request id (JSON in a log file).
    configure_logging(json_lines=settings.log_json)
    uvicorn.run(served, host=host, port=port, log_level="info", log_config=None)


@app.command(cls=_Command, short_help="Serve the MCP tools over stdio, for an assistant.")
def mcp(ctx: typer.Context, index: IndexOption = None, collection: CollectionOption = None) -> None:
    """Serve search, answers with their citations, pages and documents as MCP tools over
    stdin and stdout, for the one collection named (as a desktop assistant starts a server);
    `chancery serve` serves them over HTTP at /mcp for every collection."""
    from index.store import require_index
    from service.collections import DEFAULT_COLLECTION
    from service.mcp_stdio import serve_stdio

    settings, root = _target(ctx, index, collection)
    if index is not None:
        # A mistyped folder fails here, in the assistant's log, not at the first question.
        require_index(root)
    name = collection or DEFAULT_COLLECTION
    serve_stdio(settings, root, name, _originals(ctx, index, collection))


collections_app = typer.Typer(
    help="The collections of the data root (CHANCERY_DATA_DIR).", no_args_is_help=True
)
app.add_typer(collections_app, name="collections")
NameArgument = Annotated[
    str,
    typer.Argument(
        metavar="NAME", help="1-63 characters: a-z, 0-9, '-' and '_', starting with a-z or 0-9."
    ),
]


@collections_app.command("list", cls=_Command)
def collections_list(
    ctx: typer.Context,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print what GET /v1/collections returns.")
    ] = False,
) -> None:
    """Each collection with its index version and document count."""
    from service.library import collection_info
    from service.routers.mapping import collection_out
    from service.schemas import CollectionsResponse

    registry = _registry(ctx)
    response = CollectionsResponse(
        collections=[collection_out(collection_info(c.name, c.index_dir)) for c in registry.list()]
    )
    if as_json:
        typer.echo(response.model_dump_json())
        return
    if not response.collections:
        typer.echo(f"no collections in {registry.data_root}; `chancery serve` creates 'default'")
    for listed in response.collections:
        version = listed.index_version or "no index yet"
        typer.echo(f"{listed.name}  {listed.documents} documents  {version}")


@collections_app.command("create", cls=_Command)
def collections_create(ctx: typer.Context, name: NameArgument) -> None:
    """Create an empty collection; fill it with `chancery ingest --collection NAME`."""
    collection = _registry(ctx).create(name)
    typer.echo(f"created the collection {name} ({collection.path})")


@collections_app.command("delete", cls=_Command)
def collections_delete(ctx: typer.Context, name: NameArgument) -> None:
    """Delete a collection: its index and uploaded originals.

    Refused while a writer (an ingest, a job of a running server) holds its index; a running
    server's queued jobs are not visible from here: delete over HTTP while it serves.
    """
    from service.data_root import delete_collection

    delete_collection(_registry(ctx), name)
    typer.echo(f"deleted the collection {name}")


def _registry(ctx: typer.Context) -> CollectionRegistry[None]:
    from service.collections import CollectionRegistry

    return CollectionRegistry(_settings(ctx).data_dir, lambda _: None)


eval_app = typer.Typer(help="Score Chancery against gold answers.", no_args_is_help=True)
app.add_typer(eval_app, name="eval")
app.add_typer(keys_app, name="keys")
app.add_typer(audit_app, name="audit")


@eval_app.command("run", cls=_Command, short_help="Score a gold set; write run.json and reports.")
def eval_run(
    ctx: typer.Context,
    gold: Annotated[Path, typer.Argument(metavar="GOLD", help="Gold set (JSON Lines).")],
    out: Annotated[Path, typer.Option("--out", help="Folder for run.json and the reports.")],
    index: IndexOption = None,
    collection: CollectionOption = None,
    url: Annotated[
        str | None, typer.Option("--url", help="A running service instead of --index.")
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key",
            envvar="CHANCERY_API_KEY",
            help="The key a --url service with keys needs (a read key for the collection).",
        ),
    ] = None,
    mode: Annotated[Mode, typer.Option("--mode", help="Retrieval mode to score.")] = Mode.HYBRID,
    answerer: AnswererOption = None,
) -> None:
    """Run every gold question through the public API; write run.json, report.md, report.html.

    With `--answerer generative`, the in-process service needs an LLM (CHANCERY_LLM_BASE_URL
    and CHANCERY_LLM_MODEL, any OpenAI-compatible server); with --url, the service's own."""
    import httpx

    from eval.gold import GoldError
    from eval.harness import RunOptions, run_gold
    from eval.report import write_reports
    from eval.similarity import model_similarity
    from eval.targets import TargetError, http_target, in_process_target
    from index.store import require_index
    from service.build import build_app, model_dir
    from service.errors import InvalidRequestError, UnavailableError

    if url is None:
        settings, root = _target(ctx, index, collection)
        require_index(root)
    else:
        settings = _settings(ctx)
    # eval sees only the public API: in-process, it drives the app this process builds, whose
    # one client is this command, so the rate limit meant for network clients is off.
    target = (
        http_target(url, api_key)
        if url
        else in_process_target(build_app(settings.model_copy(update={"rate_limit_rps": None})))
    )
    options = RunOptions(
        mode=mode.value,
        progress=sys.stderr.isatty(),
        answerer=answerer.value if answerer else None,
    )
    try:
        with target as live:
            run = run_gold(gold, live, out, model_similarity(model_dir(settings)), options)
    except GoldError as exc:
        raise InvalidRequestError(str(exc)) from exc
    except (TargetError, httpx.HTTPError) as exc:
        raise UnavailableError(f"the service did not answer: {exc}") from exc
    markdown, html = write_reports(out)
    overall = run["aggregates"]["overall"]
    for name in ("hit@1", "hit@5", "mrr@10", "ndcg@10", "citation_precision", "token_f1"):
        value = overall.get(name, {})
        typer.echo(
            f"{name:>20} {value.get('mean', float('nan')):.3f} "
            f"[{value.get('low', float('nan')):.3f}, {value.get('high', float('nan')):.3f}]"
        )
    abstention = run["aggregates"]["abstention"]
    typer.echo(f"{'abstained (unans.)':>20} {abstention['abstain_rate_unanswerable']:.3f}")
    typer.echo(f"{'false abstentions':>20} {abstention['false_abstain_rate']:.3f}")
    typer.echo(f"reports: {markdown} and {html}")


@eval_app.command("compare", cls=_Command, short_help="Metric deltas between two runs.")
def eval_compare(
    run_a: Annotated[Path, typer.Argument(metavar="RUN_A", help="The baseline run folder.")],
    run_b: Annotated[Path, typer.Argument(metavar="RUN_B", help="The run to compare with it.")],
) -> None:
    """Per-metric deltas (B - A) with intervals, and the questions that changed."""
    from eval.compare import compare_runs, format_comparison
    from service.errors import NotFoundError

    for folder in (run_a, run_b):
        if not (folder / "run.json").is_file():
            raise NotFoundError(f"{folder} holds no run.json; make one with `chancery eval run`")
    typer.echo(format_comparison(compare_runs(run_a, run_b)))


def _validated(model: type[Request], **fields: Any) -> Request:
    """The request the HTTP API would build, or its first complaint as a CLI error."""
    from pydantic import ValidationError

    from service.errors import InvalidRequestError

    try:
        return model(**fields)
    except ValidationError as exc:
        message = exc.errors()[0]["msg"].removeprefix("Value error, ")
        raise InvalidRequestError(message) from exc


def _span(start: int, end: int) -> str:
    return f"p. {start}" if start == end else f"pp. {start}-{end}"


def _document_json(document: Document) -> dict[str, Any]:
    data = asdict(document)
    for page in data["pages"]:
        page["headings"] = [
            {"text": h["text"], "level": h["level"], "start": h["start"]} for h in page["headings"]
        ]
    return data


def _print_pages(document: Document) -> None:
    typer.echo(f"{'page':>4}  {'label':<6} first words / headings")
    for page in document.pages:
        label = page.label or "-"
        preview = _preview(page.body) or "(no text)"
        typer.echo(f"{page.number:>4}  {label:<6} {preview}")
        for heading in page.headings:
            indent = "  " * (heading.level - 1)
            typer.echo(f"{'':>4}  {'':<6} {indent}# {heading.text}")


def _print_chunks(chunks: list[Chunk]) -> None:
    for number, chunk in enumerate(chunks, start=1):
        pages = (
            f"p. {chunk.page_start}"
            if chunk.page_start == chunk.page_end
            else f"pp. {chunk.page_start}-{chunk.page_end}"
        )
        heading = " > ".join(chunk.heading_path) or "(no heading)"
        typer.echo(f"[{number}] {chunk.chunk_id}  {pages}  {chunk.token_count} tokens  {heading}")
        typer.echo(f"    {chunk.text}\n")


def _preview(text: str, limit: int = _PREVIEW_CHARS) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def run(argv: list[str] | None = None) -> int:
    """Run the command line and return its exit code; errors are printed as one sentence."""
    try:
        code = app(args=argv, standalone_mode=False)
    except typer.Abort:
        typer.echo("chancery: aborted", err=True)
        return 130
    except (typer.Exit, SystemExit) as exc:
        code = getattr(exc, "exit_code", getattr(exc, "code", 0))
    except Exception as exc:
        return _report(exc)
    return code if isinstance(code, int) else 0


def _report(exc: Exception) -> int:
    """Print a failure as one sentence and return its exit code."""
    # click's usage errors arrive here in non-standalone mode and carry their own message.
    show = getattr(exc, "format_message", None)
    if callable(show):
        typer.echo(f"chancery: {show()}", err=True)
        return 2
    from service.errors import translate

    error = translate(exc)
    if error is None:
        typer.echo(f"chancery: internal error: {type(exc).__name__}: {exc}", err=True)
        return 2
    typer.echo(f"chancery: {error}", err=True)
    return error.exit_code


def main() -> None:
    sys.exit(run())


if __name__ == "__main__":
    main()
