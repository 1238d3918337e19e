// What the page's parts share: the configuration, the collection in use, and the documents
// of each collection (fetched once, forgotten when a job changes them).
import { listDocuments } from "./api.js";

export const DEFAULT_COLLECTION = "default";

export const state = {
  config: { answerers: ["extractive"], default_answerer: "extractive" },
  collections: [],
  collection: DEFAULT_COLLECTION,
};

const documents = new Map();

export function documentsOf(collection) {
  if (!documents.has(collection)) {
    const pending = listDocuments(collection).then((body) => body.documents);
    documents.set(collection, pending);
    pending.catch(() => documents.delete(collection));
  }
  return documents.get(collection);
}

export function forgetDocuments(collection) {
  documents.delete(collection);
}

export async function findDocument(collection, docId) {
  let found = (await documentsOf(collection)).find((d) => d.doc_id === docId);
  if (!found) {
    // Perhaps added since the list was fetched.
    forgetDocuments(collection);
    found = (await documentsOf(collection)).find((d) => d.doc_id === docId);
  }
  return found || null;
}

export async function documentByFileName(collection, fileName) {
  try {
    return (await documentsOf(collection)).find((d) => d.file_name === fileName) || null;
  } catch {
    return null;
  }
}

const versions = new Map();

// An answer names the index version it came from: a new one may hold other documents.
export function noteIndexVersion(collection, version) {
  if (versions.has(collection) && versions.get(collection) !== version) {
    forgetDocuments(collection);
  }
  versions.set(collection, version);
}

// After a job: the server answers from the previous index version until it has loaded the one
// the job wrote, so the list is fetched again until it comes from that version.
export async function documentsAfterJob(collection, version) {
  forgetDocuments(collection);
  let wait = 150;
  for (let tries = 0; version && tries < 60; tries += 1) {
    try {
      const body = await listDocuments(collection);
      if (body.index_version === version) break;
    } catch {
      break; // The error is the library's to show.
    }
    await new Promise((resolve) => setTimeout(resolve, wait));
    wait = Math.min(wait * 1.5, 1000);
  }
  if (version) versions.set(collection, version);
  forgetDocuments(collection);
}
