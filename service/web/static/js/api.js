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
// never in localStorage, a cookie or an address; sent as a bearer token with every call.
const KEY_STORE = "chancery-api-key";
let askForKey = async () => null;
const keyWatchers = [];
const acceptWatchers = [];
// Where storage is refused (some private windows): the key lasts until the page is reloaded.
let memoryKey = null;

export function apiKey() {
  try {
    return sessionStorage.getItem(KEY_STORE);
  } catch {
    return memoryKey;
  }
}

export function setApiKey(key) {
  memoryKey = key || null;
  try {
    if (key) sessionStorage.setItem(KEY_STORE, key);
    else sessionStorage.removeItem(KEY_STORE);
  } catch {
    // Kept in memory only.
  }
  for (const watcher of keyWatchers) watcher(Boolean(key));
}

// `prompt(refused)` resolves to a key the reader typed, or null: called when the server answers
// 401. `refused` is true when the key just sent was not accepted (the reader is told so).
export function onKeyNeeded(prompt) {
  askForKey = prompt;
}

// `watcher(held)` is called whenever the key is set or forgotten.
export function onKeyChange(watcher) {
  keyWatchers.push(watcher);
}

// `watcher()` is called when the server first accepts a key the reader has just typed.
export function onKeyAccepted(watcher) {
  acceptWatchers.push(watcher);
}

function withKey(options, key) {
  if (!key) return options;
  return { ...options, headers: { ...(options.headers || {}), authorization: `Bearer ${key}` } };
}

const UNREACHABLE =
  "Chancery could not be reached. Check that the server is running, then try again.";
const NO_KEY =
  "This server needs an API key. Ask your administrator for one; the page asks for it when " +
  "you try again.";

function describe(status, detail) {
  if (status === 0) return UNREACHABLE;
  if (status >= 500 && status !== 503) {
    return "Something went wrong on the server; its log has the details.";
  }
  // The server's own words name the HTTP header; a reader needs to know what to do.
  if (status === 401) return NO_KEY;
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

// After a 401 to a call that sent `sent` (a key, or null): whether to try again. The reader is
// asked for a key (told so when the one sent was refused, which is forgotten at once) unless
// another call was given a new key meanwhile. Refusals repeated too often end in the server's
// 429, said in words.
async function keyAfterRefusal(sent) {
  const now = apiKey();
  if (now && now !== sent) return true;
  if (sent) setApiKey(null);
  const given = await askForKey(Boolean(sent));
  if (!given) return false;
  setApiKey(given);
  return true;
}

// A call, with the key when there is one, asking for one as often as the server refuses it.
async function send(url, options = {}) {
  let typed = false;
  for (;;) {
    const key = apiKey();
    let response;
    try {
      response = await fetch(url, withKey(options, key));
    } catch (error) {
      if (error && error.name === "AbortError") throw error;
      throw new ApiError(0, "");
    }
    if (response.status === 401 && (await keyAfterRefusal(key))) {
      typed = true;
      continue;
    }
    if (typed && response.status !== 401 && response.status !== 429) {
      for (const watcher of acceptWatchers) watcher();
    }
    if (!response.ok) throw await failure(response);
    return response;
  }
}

// Sets an image's source: the URL itself without a key; with one, the image fetched with the
// key (an <img> cannot send it) and shown from memory. Only the latest URL asked for an image
// is shown: a slower fetch for a page left behind never replaces it.
export async function loadImage(image, url) {
  image.dataset.wanted = url;
  if (!apiKey()) {
    image.src = url;
    return;
  }
  let blob;
  try {
    blob = await (await send(url)).blob();
  } catch (error) {
    if (image.dataset.wanted === url) throw error;
    return;
  }
  if (image.dataset.wanted !== url) return;
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
export async function uploadFiles(collection, files, onProgress) {
  for (;;) {
    const key = apiKey();
    try {
      return await uploadOnce(collection, files, onProgress, key);
    } catch (error) {
      const refused = error instanceof ApiError && error.status === 401;
      if (!refused || !(await keyAfterRefusal(key))) throw error;
    }
  }
}

function uploadOnce(collection, files, onProgress, key) {
  return new Promise((resolve, reject) => {
    const form = new FormData();
    for (const file of files) form.append("files", file, file.name);
    const request = new XMLHttpRequest();
    request.open("POST", `${collectionPath(collection)}/documents`);
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
