// The page: reads its configuration and address, wires the parts, and keeps the address in
// step with what is shown, so that every view (and every cited page) has a link.
import {
  ApiError,
  apiKey,
  listCollections,
  onKeyAccepted,
  onKeyChange,
  onKeyNeeded,
  setApiKey,
} from "./api.js";
import { setupAsk } from "./ask.js";
import { byId, clear, h, say, show } from "./dom.js";
import { setupLibrary, showLibrary } from "./library.js";
import { parseLocation, pageLink, viewLink } from "./links.js";
import { DEFAULT_COLLECTION, state } from "./state.js";
import { closeViewer, openPage, rememberFocus, setupViewer } from "./viewer.js";

let currentView = "ask";
let collectionsFailed = false;

function navigate(url, { replace = false } = {}) {
  if (replace) window.history.replaceState(null, "", url);
  else window.history.pushState(null, "", url);
  route();
}

function openTarget(target, from) {
  rememberFocus(from || document.activeElement);
  navigate(pageLink({ collection: state.collection, ...target }));
}

async function loadCollections() {
  try {
    state.collections = await listCollections();
    collectionsFailed = false;
  } catch (error) {
    state.collections = [];
    collectionsFailed = true;
    say(byId("ask-error"), error instanceof ApiError ? error.message : String(error));
  }
  const picker = byId("collection");
  clear(picker);
  for (const collection of state.collections) {
    const count = collection.documents === 1 ? "1 document" : `${collection.documents} documents`;
    picker.append(h("option", { value: collection.name }, `${collection.name} (${count})`));
  }
  picker.value = state.collection;
  show(byId("collection-picker"), state.collections.length > 1);
}

function chooseCollection(name) {
  const known = state.collections.map((c) => c.name);
  const fallback = known.includes(DEFAULT_COLLECTION) ? DEFAULT_COLLECTION : known[0];
  state.collection = name || fallback || DEFAULT_COLLECTION;
  byId("collection").value = state.collection;
}

function route() {
  const parsed = parseLocation(window.location);
  const { collection, target } = parsed;
  chooseCollection(collection);
  // A page opened from within the page keeps the view beside it (the library, say).
  const view = target ? currentView : parsed.view;
  currentView = view;
  show(byId("ask-view"), view === "ask");
  show(byId("library-view"), view === "library");
  for (const link of document.querySelectorAll("nav a[data-view]")) {
    if (link.dataset.view === view) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
    link.href = viewLink(link.dataset.view, named());
  }
  if (view === "library") {
    document.title = "Documents — Chancery";
    showLibrary(state.collection);
  } else {
    document.title = "Chancery";
  }
  if (target) openPage(target, state.collection);
  else closeViewer();
}

// The collection, for an address: none for `default`, which keeps the usual addresses short.
function named() {
  return state.collection === DEFAULT_COLLECTION ? null : state.collection;
}

function closeAndReturn() {
  navigate(viewLink(currentView, named()));
}

async function start() {
  try {
    Object.assign(state.config, JSON.parse(byId("chancery-config").textContent));
  } catch {
    // The defaults stand: extractive answers only.
  }
  setupKeys();
  setupAsk({ openTarget });
  setupViewer({ navigate, onClose: closeAndReturn });
  setupLibrary({ onChanged: loadCollections, openTarget });
  byId("collection").addEventListener("change", (event) => {
    state.collection = event.target.value;
    navigate(viewLink(currentView, named()));
  });
  document.addEventListener("click", (event) => {
    const link = event.target.closest("a[data-route]");
    if (!link || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
    event.preventDefault();
    navigate(link.getAttribute("href"));
  });
  window.addEventListener("popstate", route);
  await loadCollections();
  route();
  document.body.dataset.ready = "true";
}

// The API key: asked for in a dialog when the server answers 401 (once, however many calls
// find it missing at the same time), and forgotten on request.
const REFUSED =
  "That key was not accepted. Check that it was copied whole, or ask your administrator " +
  "for a new one.";
let keyPrompt = null;
// Set when the reader cancels the dialog: the calls that follow (the rest of the page's own
// loading) are not asked for a key again until the reader does something.
let declined = false;

function setupKeys() {
  const dialog = byId("key-dialog");
  const input = byId("key-input");
  const problem = byId("key-error");
  for (const type of ["click", "keydown", "submit"]) {
    document.addEventListener(
      type,
      () => {
        declined = false;
      },
      true,
    );
  }
  onKeyNeeded((refused) => {
    if (keyPrompt) return keyPrompt;
    if (declined) return Promise.resolve(null);
    input.value = "";
    say(problem, refused ? REFUSED : "");
    if (refused) input.setAttribute("aria-invalid", "true");
    else input.removeAttribute("aria-invalid");
    // Escape closes the dialog without setting returnValue: clear the last one.
    dialog.returnValue = "";
    keyPrompt = new Promise((resolve) => {
      dialog.addEventListener(
        "close",
        () => {
          keyPrompt = null;
          const key = input.value.trim();
          input.value = "";
          const given = dialog.returnValue === "use" && key ? key : null;
          declined = !given;
          resolve(given);
        },
        { once: true },
      );
      dialog.showModal();
    });
    return keyPrompt;
  });
  // A page that could not list the collections without a key lists them once it has one.
  onKeyAccepted(() => {
    if (collectionsFailed) loadCollections();
  });
  const forget = byId("key-forget");
  onKeyChange((held) => show(forget, held));
  show(forget, Boolean(apiKey()));
  forget.addEventListener("click", () => {
    setApiKey(null);
    // Reloaded, the page keeps nothing it was shown with the key.
    window.location.reload();
  });
}

start();
