// The page viewer: one page of a document, as an image rendered by the server with the quote's
// boxes over it (PDFs), or as its text with the quote marked (every other format, and PDFs
// whose image is not available). Previous/next page, zoom, and the page's own text to copy.
import { ApiError, getHighlights, getPage, loadImage, pageImageUrl } from "./api.js";
import { byId, clear, h, say, show } from "./dom.js";
import { pageName } from "./format.js";
import { pageLink } from "./links.js";
import { findDocument } from "./state.js";

const WIDTHS = [480, 640, 800, 1000, 1200, 1600];
const ZOOMS = [0.5, 0.75, 1, 1.25, 1.5, 2, 3];
const FIT = ZOOMS.indexOf(1);

const view = {};
let current = null;
let loads = 0;
let returnFocus = null;
let navigate = () => {};

export function setupViewer(options) {
  navigate = options.navigate;
  for (const id of [
    "page-view", "page-heading", "page-file", "page-prev", "page-next", "page-position",
    "zoom-out", "zoom-in", "zoom-level", "page-link", "page-close", "page-status", "page-error",
    "page-quote", "page-canvas", "page-sheet", "page-image", "page-boxes", "page-text",
    "page-text-toggle",
  ]) {
    view[id.replace(/-(\w)/g, (_, c) => c.toUpperCase())] = byId(id);
  }
  view.pagePrev.addEventListener("click", () => step(-1));
  view.pageNext.addEventListener("click", () => step(1));
  view.zoomIn.addEventListener("click", () => zoom(1));
  view.zoomOut.addEventListener("click", () => zoom(-1));
  view.pageClose.addEventListener("click", () => options.onClose());
  view.pageView.addEventListener("keydown", (event) => {
    if (event.key === "Escape") options.onClose();
  });
  view.pageTextToggle.addEventListener("click", () => showText(view.pageText.hidden));
  new ResizeObserver(() => current && current.mode === "image" && sizeSheet()).observe(
    view.pageCanvas,
  );
}

export function rememberFocus(element) {
  returnFocus = element;
}

export function closeViewer() {
  loads += 1;
  current = null;
  show(view.pageView, false);
  document.body.classList.remove("viewing");
  if (returnFocus && document.contains(returnFocus)) returnFocus.focus();
  returnFocus = null;
}

function step(delta) {
  if (!current) return;
  const { collection, doc } = current;
  navigate(pageLink({ collection, docId: doc.doc_id, page: current.page + delta }));
}

function zoom(delta) {
  if (!current) return;
  current.zoom = Math.max(0, Math.min(ZOOMS.length - 1, current.zoom + delta));
  applyZoom();
  // Keep the quote in sight at the new size.
  const marked = view.pageBoxes.firstElementChild || view.pageText.querySelector("mark");
  if (marked) marked.scrollIntoView({ block: "center", inline: "center" });
}

function applyZoom() {
  const factor = ZOOMS[current.zoom];
  view.zoomLevel.value = `${Math.round(factor * 100)}%`;
  view.zoomLevel.textContent = view.zoomLevel.value;
  view.zoomOut.disabled = current.zoom === 0;
  view.zoomIn.disabled = current.zoom === ZOOMS.length - 1;
  view.pageText.style.fontSize = `${factor}em`;
  if (current.mode === "image") sizeSheet();
}

function sizeSheet() {
  const fit = Math.max(200, view.pageCanvas.clientWidth - 2);
  const width = Math.round(fit * ZOOMS[current.zoom]);
  view.pageSheet.style.width = `${width}px`;
  // A rendering no smaller than the screen needs, from a few sizes the server can cache.
  const needed = width * (window.devicePixelRatio || 1);
  const render = WIDTHS.find((w) => w >= needed) || WIDTHS[WIDTHS.length - 1];
  if (render > (current.renderWidth || 0)) {
    current.renderWidth = render;
    const { collection, doc, page } = current;
    const image = view.pageImage;
    loadImage(image, pageImageUrl(collection, doc.doc_id, page, render)).catch(() => {
      // Fetched (with the key) and failed: the first rendering says so as an <img> would, and
      // the page shows the text instead; a larger one keeps the image already shown.
      if (!image.getAttribute("src")) image.dispatchEvent(new Event("error"));
    });
  }
}

// The span of the quote in the page's text: the offsets when they hold the quote, else where
// the quote stands, else where its words stand with any spacing between them.
export function quoteRange(text, { quote, start, end }) {
  const offsetsFit =
    Number.isInteger(start) && Number.isInteger(end) && start < end && end <= text.length;
  if (offsetsFit && (!quote || text.slice(start, end) === quote)) return [start, end];
  if (!quote) return null;
  const at = text.indexOf(quote);
  if (at >= 0) return [at, at + quote.length];
  const words = quote.trim().split(/\s+/).map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  const match = new RegExp(words.join("\\s+")).exec(text);
  return match ? [match.index, match.index + match[0].length] : null;
}

function renderText(text, range, testid) {
  clear(view.pageText);
  if (!range) {
    view.pageText.append(text);
    return null;
  }
  const mark = h("mark", { dataset: { testid } }, text.slice(range[0], range[1]));
  view.pageText.append(text.slice(0, range[0]), mark, text.slice(range[1]));
  return mark;
}

function showText(visible) {
  show(view.pageText, visible);
  view.pageTextToggle.setAttribute("aria-expanded", String(visible));
  say(view.pageTextToggle, visible ? "Hide the text of this page" : "Show the text of this page");
}

function canRender(doc) {
  if (typeof doc.has_page_images === "boolean") return doc.has_page_images;
  return doc.format === "pdf" || /\.pdf$/i.test(doc.file_name || "");
}

function fail(message) {
  say(view.pageStatus, "");
  say(view.pageError, message);
}

// Opens `target` ({docId, page, quote, start, end}) of `collection`.
export async function openPage(target, collection, { focus = true } = {}) {
  const load = ++loads;
  const stale = () => load !== loads;
  show(view.pageView, true);
  document.body.classList.add("viewing");
  say(view.pageError, "");
  say(view.pageStatus, "Opening the page…");
  say(view.pageHeading, "Page");
  say(view.pageFile, "");
  say(view.pagePosition, "");
  view.pageLink.href = pageLink({ collection, ...target });
  for (const control of [view.pagePrev, view.pageNext, view.zoomIn, view.zoomOut]) {
    control.disabled = true;
  }
  show(view.pageCanvas, false);
  show(view.pageQuote, false);
  show(view.pageTextToggle, false);
  showText(false);
  clear(view.pageBoxes);
  if (focus) view.pageHeading.focus({ preventScroll: true });
  scrollIntoViewIfHidden(view.pageView);

  if (!Number.isInteger(target.page) || target.page < 1) {
    fail("This link does not name a page: page numbers start at 1.");
    return;
  }
  let doc;
  let page;
  try {
    doc = await findDocument(collection, target.docId);
    if (stale()) return;
    if (!doc) {
      fail(
        `The collection “${collection}” holds no document “${target.docId}”; ` +
          "it may have been deleted.",
      );
      return;
    }
    page = await getPage(collection, doc.doc_id, target.page);
  } catch (error) {
    if (!stale()) fail(error instanceof ApiError ? error.message : String(error));
    return;
  }
  if (stale()) return;

  const previous = current;
  const keepZoom = previous && previous.doc.doc_id === doc.doc_id ? previous.zoom : FIT;
  current = { collection, doc, page: target.page, zoom: keepZoom, mode: "text", renderWidth: 0 };
  const where = pageName(target.page, page.label);
  say(view.pageHeading, `${doc.title} — ${where}`);
  say(view.pageFile, doc.file_name);
  say(view.pagePosition, `Page ${target.page} of ${doc.pages}`);
  document.title = `${doc.title}, ${where} — Chancery`;
  view.pagePrev.disabled = target.page <= 1;
  view.pageNext.disabled = target.page >= doc.pages;
  const quote = target.quote || "";
  if (quote) {
    say(view.pageQuote, quote);
    show(view.pageQuote, true);
  }
  const range = quote || Number.isInteger(target.start) ? quoteRange(page.text, target) : null;

  if (canRender(doc)) {
    current.mode = "image";
    const shown = await showImage(target, page, range, stale);
    if (stale()) return;
    if (shown) {
      applyZoom();
      return;
    }
  }
  current.mode = "text";
  const mark = renderText(page.text, range, "highlight");
  showText(true);
  applyZoom();
  settle(mark, quote || range, "The quote is marked in the page's text.");
}

async function showImage(target, page, range, stale) {
  const { collection, doc } = current;
  view.pageImage.alt = `Page ${target.page} of ${doc.title}`;
  view.pageImage.removeAttribute("src");
  show(view.pageCanvas, true);
  const loaded = new Promise((resolve) => {
    view.pageImage.onload = () => resolve(true);
    view.pageImage.onerror = () => resolve(false);
  });
  applyZoom();
  const wanted = Boolean(target.quote) || range !== null;
  const boxes = wanted
    ? getHighlights(collection, doc.doc_id, target.page, {
        quote: target.quote || page.text.slice(range[0], range[1]),
        start: range ? range[0] : null,
        end: range ? range[1] : null,
      }).then((found) => found.boxes, () => null)
    : Promise.resolve([]);
  const [ok, found] = await Promise.all([loaded, boxes]);
  if (stale()) return true;
  if (!ok) {
    show(view.pageCanvas, false);
    say(view.pageStatus, "The page image is not available, so the page's text is shown.");
    current.imageMissing = true;
    return false;
  }
  show(view.pageTextToggle, true);
  if (!wanted) {
    renderText(page.text, null, "text-highlight");
    say(view.pageStatus, "");
    return true;
  }
  if (found && found.length) {
    renderText(page.text, range, "text-highlight");
    for (const box of found) {
      const element = h("div", { class: "highlight", dataset: { testid: "highlight" } });
      Object.assign(element.style, {
        left: `${box.left * 100}%`,
        top: `${box.top * 100}%`,
        width: `${box.width * 100}%`,
        height: `${box.height * 100}%`,
      });
      view.pageBoxes.append(element);
    }
    settle(view.pageBoxes.firstElementChild, true, "The quote is highlighted on the page.");
    return true;
  }
  // The image is there but the quote's boxes are not: mark it in the text instead.
  const mark = renderText(page.text, range, "highlight");
  showText(true);
  const below = "The quote could not be placed on the image; it is marked in the page's text below.";
  settle(mark, true, below);
  return true;
}

function settle(marked, wanted, message) {
  if (marked) {
    say(view.pageStatus, message);
    marked.scrollIntoView({ block: "center", inline: "nearest" });
  } else if (wanted) {
    say(view.pageStatus, "The quote was not found on this page.");
  } else {
    say(view.pageStatus, "");
  }
}

function scrollIntoViewIfHidden(element) {
  const box = element.getBoundingClientRect();
  if (box.top < 0 || box.top > window.innerHeight - 80) {
    element.scrollIntoView({ block: "start" });
  }
}
