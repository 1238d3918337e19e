// How numbers, sizes, dates and page numbers read on the page.

export function pageName(page, label) {
  return label && label !== String(page) ? `page ${page} (printed ${label})` : `page ${page}`;
}

export function bytes(count) {
  if (typeof count !== "number") return "—";
  if (count < 1024) return `${count} bytes`;
  const units = ["KB", "MB", "GB"];
  let value = count / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value >= 10 ? Math.round(value) : value.toFixed(1)} ${units[unit]}`;
}

export function when(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "—";
  return date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

export function plural(count, one, many = `${one}s`) {
  return `${count} ${count === 1 ? one : many}`;
}

// `text` ending as a sentence does.
export function sentence(text) {
  const trimmed = String(text || "no reason was given").trim();
  return /[.!?]$/.test(trimmed) ? trimmed : `${trimmed}.`;
}

// What a link to a passage asks the viewer to find on the passage's first page: its first
// paragraph that is not one of its headings, cut after a sentence (or a word) near `limit`.
export function opening(text, heading = "", limit = 400) {
  const headings = new Set(heading.split(" > ").map((part) => part.trim()));
  const lines = text.split("\n").map((line) => line.trim()).filter(Boolean);
  const first = lines.find((line) => !headings.has(line)) || lines[0] || "";
  if (first.length <= limit) return first;
  const stop = first.lastIndexOf(". ", limit);
  if (stop > limit / 3) return first.slice(0, stop + 1);
  const cut = first.lastIndexOf(" ", limit);
  return first.slice(0, cut > limit / 2 ? cut : limit).trim();
}
