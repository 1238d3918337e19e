// The HTTP API, as the page uses it. Every failure becomes an ApiError whose message is words
// a reader can act on, never the raw JSON of the response.

export class ApiError extends Error {
  constructor(status, detail) {
    super(describe(status, detail));
    this.status = status;
    this.detail = detail;
  }
}

// The API key, when the server asks for one: kept for this browser tab only (sessionStorage),
// sent as a bearer token with every call.
const KEY_STORE = "chancery-api-key";
let askForKey = async () => null;

export function apiKey() {
  try {
    return sessionStorage.getItem(KEY_STORE);
  } catch {
    return null;
  }
}

export function setApiKey(key) {
  try {
    if (key) sessionStorage.setItem(KEY_STORE, key);
    else sessionStorage.removeItem(KEY_STORE);
  } catch {
    // Storage refused (a private window): the key lasts until the page is reloaded.
  }
}

// `prompt()` resolves to a key the reader typed, or null: called when the server answers 401.
export function onKeyNeeded(prompt) {
  askForKey = prompt;
}

function withKey(options) {
  const key = apiKey();
  if (!key) return options;
  return { ...options, headers: { ...(options.headers || {}), authorization: `Bearer ${key}` } };
}

const UNREACHABLE =
  "Chancery could not be reached. Check that the server is running, then try again.";

function describe(status, detail) {
  if (status === 0) return UNREACHABLE;
  if (status >= 500 && status !== 503) {
    return "Something went wrong on the server; its log has the details.";
  }
  const said = detail ? capitalize(detail) : `The server answered with status ${status}.`;
  const lead = {
    413: "Too large: ",
    422: "Not accepted: ",
    429: "The server is busy: ",
    503: "Not available right now: ",
  }[status];
  return lead ? lead + lowerFirst(said) : said;
}

function capitalize(text) {
  const trimmed = String(text).trim();
  const sentence = trimmed.charAt(0).toUpperCase() + trimmed.slice(1);
  return /[.!?]$/.test(sentence) ? sentence : `${sentence}.`;
}

function lowerFirst(text) {
  return text.charAt(0).toLowerCase() + text.slice(1);
}

async function failure(response) {
  let detail = "";
  try {
    const body = await response.json();
    if (body && typeof body.detail === "string") detail = body.detail;
  } catch {
    // Not JSON: the status says enough.
  }
  return new ApiError(response.status, detail);
}

async function send(url, options = {}, retried = false) {
  let response;
  try {
    response = await fetch(url, withKey(options));
  } catch (error) {
    if (error && error.name === "AbortError") throw error;
    throw new ApiError(0, "");
  }
  if (response.status === 401 && !retried) {
    const key = await askForKey();
    if (key) {
      setApiKey(key);
      return send(url, options, true);
    }
  }
  if (!response.ok) throw await failure(response);
  return response;
}

// Sets an image's source: the URL itself without a key; with one, the image fetched with the
// key (an <img> cannot send it) and shown from memory.
export async function loadImage(image, url) {
  if (!apiKey()) {
    image.src = url;
    return;
  }
  const blob = await (await send(url)).blob();
  const previous = image.dataset.objectUrl;
  image.dataset.objectUrl = URL.createObjectURL(blob);
  image.src = image.dataset.objectUrl;
  if (previous) URL.revokeObjectURL(previous);
}

export async function getJson(url, options = {}) {
  return (await send(url, options)).json();
}

export async function postJson(url, body, options = {}) {
  const response = await send(url, {
    ...options,
    method: "POST",
    headers: { "content-type": "application/json", ...(options.headers || {}) },
    body: JSON.stringify(body),
  });
  return response;
}

export function collectionPath(collection) {
  return `/v1/collections/${encodeURIComponent(collection)}`;
}

export function documentPath(collection, docId) {
  return `${collectionPath(collection)}/documents/${encodeURIComponent(docId)}`;
}

export async function listCollections() {
  return (await getJson("/v1/collections")).collections;
}

// {documents, index_version}
export async function listDocuments(collection) {
  return getJson(`${collectionPath(collection)}/documents`);
}

export async function getPage(collection, docId, page) {
  return getJson(`${documentPath(collection, docId)}/pages/${page}`);
}

export function pageImageUrl(collection, docId, page, width) {
  return `${documentPath(collection, docId)}/pages/${page}/image?width=${width}`;
}

export async function getHighlights(collection, docId, page, { quote, start, end }) {
  const query = new URLSearchParams();
  if (Number.isInteger(start) && Number.isInteger(end)) {
    query.set("start", String(start));
    query.set("end", String(end));
  } else {
    query.set("quote", quote);
  }
  return getJson(`${documentPath(collection, docId)}/pages/${page}/highlights?${query}`);
}

// The answer as server-sent events: calls onEvent(name, data) for each, in order.
export async function askStream(collection, request, onEvent, signal) {
  const response = await postJson(
    `${collectionPath(collection)}/ask`,
    { ...request, stream: true },
    { signal, headers: { accept: "text/event-stream" } },
  );
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value.replace(/\r\n?/g, "\n");
    let end = buffer.indexOf("\n\n");
    while (end >= 0) {
      dispatch(buffer.slice(0, end), onEvent);
      buffer = buffer.slice(end + 2);
      end = buffer.indexOf("\n\n");
    }
  }
  if (buffer.trim()) dispatch(buffer, onEvent);
}

function dispatch(block, onEvent) {
  let name = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (line.startsWith("event:")) name = line.slice(6).trim();
    else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
  }
  if (data.length) onEvent(name, JSON.parse(data.join("\n")));
}

// An upload with progress (fetch cannot report upload progress; XMLHttpRequest can).
export function uploadFiles(collection, files, onProgress) {
  return new Promise((resolve, reject) => {
    const form = new FormData();
    for (const file of files) form.append("files", file, file.name);
    const request = new XMLHttpRequest();
    request.open("POST", `${collectionPath(collection)}/documents`);
    const key = apiKey();
    if (key) request.setRequestHeader("authorization", `Bearer ${key}`);
    request.responseType = "json";
    request.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    });
    request.addEventListener("load", () => {
      const body = request.response;
      if (request.status === 202 && body) resolve(body);
      else reject(new ApiError(request.status, body && body.detail ? String(body.detail) : ""));
    });
    request.addEventListener("error", () => reject(new ApiError(0, "")));
    request.send(form);
  });
}

export async function deleteDocument(collection, docId) {
  return (await send(documentPath(collection, docId), { method: "DELETE" })).json();
}

// Follows a job until it has finished; onState(job) sees each state it passes through.
export async function finishedJob(url, onState) {
  let wait = 250;
  for (;;) {
    const job = await getJson(url);
    onState(job);
    if (job.state === "succeeded" || job.state === "failed") return job;
    await new Promise((resolve) => setTimeout(resolve, wait));
    wait = Math.min(wait * 1.5, 2000);
  }
}
