// The library: the documents of the collection, upload by file picker or drag and drop (with
// progress, then each file's result from the job), and delete with a confirmation.
import { ApiError, deleteDocument, finishedJob, uploadFiles } from "./api.js";
import { byId, clear, h, say, show } from "./dom.js";
import { bytes, plural, sentence, when } from "./format.js";
import { pageLink } from "./links.js";
import { documentsAfterJob, documentsOf, state } from "./state.js";

const view = {};
let onChanged = () => {};
let openTarget = () => {};
let shown = 0;

export function setupLibrary(options) {
  onChanged = options.onChanged;
  openTarget = options.openTarget;
  for (const id of [
    "library-heading", "library-summary", "library-error", "library-table", "library-caption",
    "library-rows", "drop-zone", "file-input", "upload-progress", "upload-bar", "upload-label",
    "upload-status", "upload-results", "confirm-dialog", "confirm-text",
  ]) {
    view[id.replace(/-(\w)/g, (_, c) => c.toUpperCase())] = byId(id);
  }
  view.fileInput.addEventListener("change", () => {
    const files = [...view.fileInput.files];
    view.fileInput.value = "";
    if (files.length) upload(files);
  });
  const zone = view.dropZone;
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    event.dataTransfer.dropEffect = "copy";
    zone.classList.add("dragging");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("dragging");
    const files = [...(event.dataTransfer ? event.dataTransfer.files : [])];
    if (files.length) upload(files);
  });
  // A file dropped beside the zone must not replace the page with the file.
  window.addEventListener("dragover", (event) => event.preventDefault());
  window.addEventListener("drop", (event) => event.preventDefault());
}

export async function showLibrary(collection) {
  const load = ++shown;
  say(view.libraryHeading, `Documents in “${collection}”`);
  say(view.libraryCaption, `Documents in the collection ${collection}`);
  say(view.libraryError, "");
  let documents;
  try {
    documents = await documentsOf(collection);
  } catch (error) {
    if (load !== shown) return;
    show(view.libraryTable, false);
    if (error instanceof ApiError && error.status === 503) {
      say(view.librarySummary, "No documents yet. Add some below.");
    } else {
      say(view.librarySummary, "");
      say(view.libraryError, error instanceof ApiError ? error.message : String(error));
    }
    return;
  }
  if (load !== shown) return;
  render(collection, documents);
}

function render(collection, documents) {
  clear(view.libraryRows);
  const sorted = [...documents].sort((a, b) => a.title.localeCompare(b.title));
  for (const doc of sorted) view.libraryRows.append(row(collection, doc));
  show(view.libraryTable, sorted.length > 0);
  const pages = sorted.reduce((sum, doc) => sum + doc.pages, 0);
  say(
    view.librarySummary,
    sorted.length
      ? `${plural(sorted.length, "document")}, ${plural(pages, "page")}.`
      : "No documents yet. Add some below.",
  );
}

function row(collection, doc) {
  const target = { collection, docId: doc.doc_id, page: 1 };
  const open = h("a", { href: pageLink(target) }, doc.title);
  open.addEventListener("click", (event) => {
    if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    event.preventDefault();
    openTarget(target, open);
  });
  const remove = h(
    "button",
    { type: "button", class: "danger", "aria-label": `Delete ${doc.title}` },
    "Delete",
  );
  remove.addEventListener("click", () => confirmDelete(collection, doc, remove));
  return h(
    "tr",
    { dataset: { testid: "library-row", docId: doc.doc_id } },
    h("th", { scope: "row", "data-label": "Title" }, open),
    h("td", { "data-label": "File" }, doc.file_name),
    h("td", { "data-label": "Pages" }, String(doc.pages)),
    h("td", { "data-label": "Size" }, bytes(doc.bytes)),
    h("td", { "data-label": "Added" }, when(doc.ingested_at)),
    h("td", {}, remove),
  );
}

function confirmDelete(collection, doc, button) {
  const dialog = view.confirmDialog;
  say(
    view.confirmText,
    `“${doc.title}” (${doc.file_name}) will be removed from the collection “${collection}”; ` +
      "answers will no longer cite it.",
  );
  dialog.returnValue = "";
  dialog.addEventListener(
    "close",
    () => {
      if (dialog.returnValue === "delete") remove(collection, doc);
      else button.focus();
    },
    { once: true },
  );
  dialog.showModal();
}

async function remove(collection, doc) {
  say(view.libraryError, "");
  say(view.uploadStatus, `Deleting “${doc.title}”…`);
  let version = null;
  try {
    const accepted = await deleteDocument(collection, doc.doc_id);
    const job = await finishedJob(accepted.url, () => {});
    version = job.index_version;
    if (job.state === "failed") {
      say(view.uploadStatus, "");
      const why = job.error || "the job failed";
      say(view.libraryError, `“${doc.title}” could not be deleted: ${why}.`);
    } else {
      say(view.uploadStatus, `“${doc.title}” was deleted.`);
    }
  } catch (error) {
    say(view.uploadStatus, "");
    say(view.libraryError, error instanceof ApiError ? error.message : String(error));
  }
  await refresh(collection, version);
  view.libraryHeading.focus();
}

async function refresh(collection, version) {
  await documentsAfterJob(collection, version);
  await Promise.all([showLibrary(collection), onChanged()]);
}

const STATES = {
  queued: "Waiting for the server to take the files…",
  running: "Reading and indexing the files…",
};

async function upload(files) {
  const collection = state.collection;
  clear(view.uploadResults);
  say(view.libraryError, "");
  const count = plural(files.length, "file");
  show(view.uploadProgress, true);
  view.uploadBar.value = 0;
  say(view.uploadLabel, `Uploading ${count}`);
  say(view.uploadStatus, `Uploading ${count}…`);
  let version = null;
  try {
    const accepted = await uploadFiles(collection, files, (share) => {
      view.uploadBar.value = Math.round(share * 100);
      say(view.uploadLabel, `Uploading ${count}: ${Math.round(share * 100)}%`);
    });
    view.uploadBar.value = 100;
    let last = "";
    const job = await finishedJob(accepted.url, (progress) => {
      if (STATES[progress.state] && progress.state !== last) {
        last = progress.state;
        say(view.uploadStatus, STATES[progress.state]);
      }
    });
    version = job.index_version;
    results(job);
  } catch (error) {
    say(view.uploadStatus, "");
    say(view.libraryError, error instanceof ApiError ? error.message : String(error));
  } finally {
    show(view.uploadProgress, false);
  }
  await refresh(collection, version);
}

function results(job) {
  const added = job.files.filter((file) => file.status === "ok").length;
  for (const file of job.files) {
    const outcome = file.status === "skipped" ? "skipped" : "not added";
    const text = file.status === "ok"
      ? `${file.name}: added (${plural(file.pages, "page")}).`
      : `${file.name}: ${outcome}: ${sentence(file.reason)}`;
    view.uploadResults.append(
      h("li", { class: `result-${file.status}`, dataset: { testid: "upload-result" } }, text),
    );
  }
  if (job.state === "failed") {
    say(view.uploadStatus, "");
    say(view.libraryError, `The upload failed: ${job.error || "the server log has the details"}.`);
  } else {
    say(view.uploadStatus, `${plural(added, "file")} of ${job.files.length} added.`);
  }
}
