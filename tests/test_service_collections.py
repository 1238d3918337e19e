"""Collections: names that can never be paths, the folder layout, deletion, one engine each."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from service.collections import (
    DEFAULT_COLLECTION,
    NAME_PATTERN,
    Collection,
    CollectionBusyError,
    CollectionExistsError,
    CollectionNotFoundError,
    CollectionRegistry,
    InvalidCollectionNameError,
    parse_name,
)


class FakeEngine:
    def __init__(self, collection: str, root: Path) -> None:
        self.collection = collection
        self.root = root


class Opener:
    """An engine factory that counts what it opened."""

    def __init__(self) -> None:
        self.opened: list[Path] = []

    def __call__(self, collection: Collection) -> FakeEngine:
        self.opened.append(collection.index_dir)
        return FakeEngine(collection.name, collection.index_dir)


@pytest.fixture
def opener() -> Opener:
    return Opener()


@pytest.fixture
def registry(tmp_path: Path, opener: Opener) -> CollectionRegistry[FakeEngine]:
    return CollectionRegistry(tmp_path / "data", opener)


@pytest.mark.parametrize(
    "name", ["default", "a", "0", "reports-2024", "kcss_serbia", "x" * 63, "9lives"]
)
def test_good_names_are_accepted(name: str) -> None:
    assert parse_name(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "../x",
        "..",
        ".",
        "/abs",
        "a/b",
        "a\\b",
        "a\x00b",
        "x" * 64,
        "x" * 300,
        "Ünïcode",
        "ünïcode",
        "CON",
        "con",
        "nul",
        "com1",
        "lpt9",
        "Reports",
        "-leading-dash",
        "_leading_underscore",
        "has space",
        "dot.ted",
        "tab\t",
        "new\nline",
        "ａｂｃ",  # fullwidth letters: not ASCII, though they look it
    ],
)
def test_bad_names_are_refused_with_a_422(name: str) -> None:
    with pytest.raises(InvalidCollectionNameError) as caught:
        parse_name(name)
    assert caught.value.status == 422
    assert caught.value.exit_code != 0


def test_a_refusal_explains_the_pattern_and_never_echoes_a_long_name() -> None:
    with pytest.raises(InvalidCollectionNameError) as caught:
        parse_name("x" * 300)
    message = str(caught.value)
    assert "lower-case letters" in message
    assert "x" * 60 not in message


def test_an_upper_case_name_gets_a_hint() -> None:
    with pytest.raises(InvalidCollectionNameError, match="try 'reports'"):
        parse_name("Reports")


def test_a_name_that_is_not_a_string_is_refused() -> None:
    with pytest.raises(InvalidCollectionNameError):
        parse_name(42)


def test_the_documented_pattern_is_the_one_enforced() -> None:
    assert NAME_PATTERN == "^[a-z0-9][a-z0-9_-]{0,62}$"


def test_create_lays_out_the_folders(registry: CollectionRegistry[FakeEngine]) -> None:
    collection = registry.create("reports")
    assert collection.path == registry.data_root / "collections" / "reports"
    assert collection.index_dir.is_dir()
    assert collection.originals_dir.is_dir()
    assert collection.uploads_dir.is_dir()
    assert collection.version() is None


def test_create_refuses_an_existing_name_with_a_409(
    registry: CollectionRegistry[FakeEngine],
) -> None:
    registry.create("reports")
    with pytest.raises(CollectionExistsError) as caught:
        registry.create("reports")
    assert caught.value.status == 409


def test_a_bad_name_never_touches_the_disk(
    registry: CollectionRegistry[FakeEngine], tmp_path: Path
) -> None:
    for name in ("../escape", "/abs", "a\x00b"):
        for call in (registry.create, registry.get, registry.delete, registry.engine):
            with pytest.raises(InvalidCollectionNameError):
                call(name)
    assert not (tmp_path / "escape").exists()
    assert not (tmp_path / "data").exists()


def test_list_shows_collections_by_name_and_ignores_strays(
    registry: CollectionRegistry[FakeEngine],
) -> None:
    assert registry.list() == []
    registry.create("zeta")
    registry.create("alpha")
    (registry.data_root / "collections" / "Not A Name").mkdir()
    (registry.data_root / "collections" / "stray-file").write_text("x")
    assert [c.name for c in registry.list()] == ["alpha", "zeta"]


def test_get_a_missing_collection_is_a_404(registry: CollectionRegistry[FakeEngine]) -> None:
    registry.create("alpha")
    with pytest.raises(CollectionNotFoundError, match="collections: alpha") as caught:
        registry.get("beta")
    assert caught.value.status == 404


def test_version_names_the_current_index_version(
    registry: CollectionRegistry[FakeEngine],
) -> None:
    collection = registry.create("reports")
    (collection.index_dir / "v-1").mkdir()
    (collection.index_dir / "current").symlink_to("v-1")
    assert registry.get("reports").version() == "v-1"


def test_ensure_default_creates_it_once_and_repairs_missing_parts(
    registry: CollectionRegistry[FakeEngine],
) -> None:
    first = registry.ensure_default()
    assert first.name == DEFAULT_COLLECTION
    (first.index_dir / "marker").write_text("kept")
    first.uploads_dir.rmdir()
    again = registry.ensure_default()
    assert (again.index_dir / "marker").read_text() == "kept"
    assert again.uploads_dir.is_dir()


def test_delete_removes_the_collection_and_its_files(
    registry: CollectionRegistry[FakeEngine],
) -> None:
    collection = registry.create("reports")
    (collection.originals_dir / "file").write_text("x")
    registry.delete("reports")
    assert not collection.path.exists()
    assert registry.list() == []
    assert list((registry.data_root / "trash").iterdir()) == []
    with pytest.raises(CollectionNotFoundError):
        registry.delete("reports")


def test_a_deleted_name_can_be_created_again_empty(
    registry: CollectionRegistry[FakeEngine],
) -> None:
    collection = registry.create("reports")
    (collection.originals_dir / "file").write_text("x")
    registry.delete("reports")
    again = registry.create("reports")
    assert list(again.originals_dir.iterdir()) == []


def test_the_default_collection_cannot_be_deleted(
    registry: CollectionRegistry[FakeEngine],
) -> None:
    registry.ensure_default()
    with pytest.raises(CollectionBusyError) as caught:
        registry.delete(DEFAULT_COLLECTION)
    assert caught.value.status == 409
    assert registry.get(DEFAULT_COLLECTION).path.is_dir()


def test_delete_is_refused_while_jobs_of_the_collection_are_pending(
    tmp_path: Path, opener: Opener
) -> None:
    pending = {"reports"}
    registry = CollectionRegistry(tmp_path, opener, in_use=lambda name: name in pending)
    registry.create("reports")
    with pytest.raises(CollectionBusyError, match="in progress"):
        registry.delete("reports")
    assert registry.get("reports").path.is_dir()
    pending.clear()
    registry.delete("reports")
    assert registry.list() == []


def test_delete_is_refused_while_an_upload_holds_the_collection(
    registry: CollectionRegistry[FakeEngine],
) -> None:
    registry.create("reports")
    with registry.using("reports") as collection:
        with pytest.raises(CollectionBusyError):
            registry.delete("reports")
        assert collection.path.is_dir()
    registry.delete("reports")


def test_using_a_missing_collection_is_a_404(registry: CollectionRegistry[FakeEngine]) -> None:
    with pytest.raises(CollectionNotFoundError), registry.using("ghost"):
        pass
    registry.create("ghost")
    registry.delete("ghost")  # the failed `using` held nothing


def test_sweep_finishes_interrupted_deletes_and_clears_staged_uploads(
    registry: CollectionRegistry[FakeEngine],
) -> None:
    leftover = registry.data_root / "trash" / "reports-0123456789abcdef" / "index"
    leftover.mkdir(parents=True)
    collection = registry.create("reports")
    (collection.uploads_dir / "batch" / "a.txt").parent.mkdir()
    (collection.uploads_dir / "batch" / "a.txt").write_text("staged")
    (collection.originals_dir / "kept").write_text("kept")
    registry.sweep()
    assert list((registry.data_root / "trash").iterdir()) == []
    assert list(collection.uploads_dir.iterdir()) == []
    assert (collection.originals_dir / "kept").read_text() == "kept"


def test_the_engine_is_opened_lazily_once_per_collection(
    registry: CollectionRegistry[FakeEngine], opener: Opener
) -> None:
    alpha = registry.create("alpha")
    beta = registry.create("beta")
    assert opener.opened == []
    first = registry.engine("alpha")
    assert registry.engine("alpha") is first
    assert (first.collection, first.root) == ("alpha", alpha.index_dir)
    assert registry.engine("beta").root == beta.index_dir
    assert opener.opened == [alpha.index_dir, beta.index_dir]


def test_no_engine_for_a_missing_collection(
    registry: CollectionRegistry[FakeEngine], opener: Opener
) -> None:
    with pytest.raises(CollectionNotFoundError):
        registry.engine("ghost")
    assert opener.opened == []


def test_a_deleted_collection_drops_its_engine(
    registry: CollectionRegistry[FakeEngine], opener: Opener
) -> None:
    registry.create("reports")
    old = registry.engine("reports")
    registry.delete("reports")
    with pytest.raises(CollectionNotFoundError):
        registry.engine("reports")
    registry.create("reports")
    assert registry.engine("reports") is not old
    assert len(opener.opened) == 2


def test_concurrent_first_uses_open_one_engine(
    registry: CollectionRegistry[FakeEngine], opener: Opener
) -> None:
    registry.create("reports")
    threads = 8
    barrier = threading.Barrier(threads)
    engines: list[FakeEngine] = []

    def use() -> None:
        barrier.wait()
        engines.append(registry.engine("reports"))

    workers = [threading.Thread(target=use) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert len(engines) == threads
    assert all(engine is engines[0] for engine in engines)
    assert len(opener.opened) == 1


def test_concurrent_creates_of_one_name_succeed_exactly_once(
    registry: CollectionRegistry[FakeEngine],
) -> None:
    threads = 8
    barrier = threading.Barrier(threads)
    outcomes: list[str] = []

    def create() -> None:
        barrier.wait()
        try:
            registry.create("reports")
            outcomes.append("created")
        except CollectionExistsError:
            outcomes.append("exists")

    workers = [threading.Thread(target=create) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert sorted(outcomes) == ["created"] + ["exists"] * (threads - 1)
