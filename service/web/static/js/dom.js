// Small DOM helpers: build elements without innerHTML, so no text from a document or the
// server is ever parsed as markup.

export function byId(id) {
  const element = document.getElementById(id);
  if (!element) throw new Error(`the page has no #${id}`);
  return element;
}

// h("a", {href: "/", class: "x", dataset: {testid: "y"}}, "text", child)
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "dataset") Object.assign(element.dataset, value);
    else if (name === "class") element.className = value;
    else if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  element.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return element;
}

export function clear(element) {
  element.replaceChildren();
  return element;
}

export function show(element, visible = true) {
  element.hidden = !visible;
}

export function say(element, text) {
  element.textContent = text || "";
}
