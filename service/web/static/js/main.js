// The page: reads its configuration and address, wires the parts, and keeps the address in
// step with what is shown, so that every view (and every cited page) has a link.
import { ApiError, listCollections, onKeyNeeded } from "./api.js";
import { setupAsk } from "./ask.js";
import { byId, clear, h, say, show } from "./dom.js";
import { setupLibrary, showLibrary } from "./library.js";
import { parseLocation, pageLink, viewLink } from "./links.js";
import { DEFAULT_COLLECTION, state } from "./state.js";
import { closeViewer, openPage, rememberFocus, setupViewer } from "./viewer.js";

let currentView = "ask";

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
  } catch (error) {
    state.collections = [];
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

start();

// Asked once however many calls find the key missing at the same time.
let keyPrompt = null;
onKeyNeeded(() => {
  if (keyPrompt) return keyPrompt;
  const dialog = byId("key-dialog");
  const input = byId("key-input");
  input.value = "";
  keyPrompt = new Promise((resolve) => {
    dialog.addEventListener(
      "close",
      () => {
        keyPrompt = null;
        const key = input.value.trim();
        resolve(dialog.returnValue === "use" && key ? key : null);
      },
      { once: true },
    );
    dialog.showModal();
  });
  return keyPrompt;
});
