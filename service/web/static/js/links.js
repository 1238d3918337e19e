// The page's addresses: "/" (ask), "/library" and the deep link to a page of a document,
// /documents/{doc_id}/pages/{n}?collection=...&quote=...&start=...&end=..., which opens
// straight at that page with the quote highlighted.

export function pageLink({ collection, docId, page, quote, start, end }) {
  const query = new URLSearchParams();
  if (collection) query.set("collection", collection);
  if (quote) query.set("quote", quote);
  if (Number.isInteger(start) && Number.isInteger(end)) {
    query.set("start", String(start));
    query.set("end", String(end));
  }
  const path = `/documents/${encodeURIComponent(docId)}/pages/${page}`;
  const search = query.toString();
  return search ? `${path}?${search}` : path;
}

export function viewLink(view, collection) {
  const path = view === "library" ? "/library" : "/";
  return collection ? `${path}?collection=${encodeURIComponent(collection)}` : path;
}

function integer(value) {
  return value !== null && /^\d+$/.test(value) ? Number(value) : null;
}

// What an address asks for: {view, collection, target}, target being the page to open
// (null when none); a malformed page number is kept as NaN, for the viewer to refuse in words.
export function parseLocation(location) {
  const query = new URLSearchParams(location.search);
  const collection = query.get("collection");
  const match = location.pathname.match(/^\/documents\/([^/]+)\/pages\/([^/]+)\/?$/);
  if (match) {
    let docId;
    try {
      docId = decodeURIComponent(match[1]);
    } catch {
      docId = match[1];
    }
    const page = /^\d+$/.test(match[2]) ? Number(match[2]) : NaN;
    const target = {
      docId,
      page,
      quote: query.get("quote") || "",
      start: integer(query.get("start")),
      end: integer(query.get("end")),
    };
    return { view: "ask", collection, target };
  }
  const view = location.pathname.replace(/\/$/, "") === "/library" ? "library" : "ask";
  return { view, collection, target: null };
}
