// Asking: the question box, the answer streamed in sentence by sentence with its citation
// markers, the list of sources, and the abstention with the closest passages.
import { ApiError, askStream } from "./api.js";
import { byId, clear, h, say, show } from "./dom.js";
import { opening, pageName, plural } from "./format.js";
import { pageLink } from "./links.js";
import { documentByFileName, noteIndexVersion, state } from "./state.js";

const ANSWERER_LABELS = {
  extractive: "Quotes from the documents",
  generative: "The LLM, every sentence checked against its source",
};

const view = {};
let running = null;
let openTarget = () => {};

export function setupAsk(options) {
  openTarget = options.openTarget;
  for (const id of [
    "ask-form", "question", "ask-status", "ask-error", "answer", "answer-text", "answer-notes",
    "citation-list", "abstention", "abstention-message", "passage-list", "answerer-choice",
  ]) {
    view[id.replace(/-(\w)/g, (_, c) => c.toUpperCase())] = byId(id);
  }
  view.question.addEventListener("keydown", (event) => {
    const plain = !event.shiftKey && !event.altKey && !event.ctrlKey && !event.metaKey;
    if (event.key === "Enter" && plain && !event.isComposing) {
      event.preventDefault();
      view.askForm.requestSubmit();
    }
  });
  view.askForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const question = view.question.value.trim();
    if (!question) {
      say(view.askError, "Type a question first.");
      view.question.focus();
      return;
    }
    ask(question);
  });
  offerAnswerers(state.config);
}

function offerAnswerers(config) {
  const names = config.answerers || [];
  show(view.answererChoice, names.length > 1);
  if (names.length < 2) return;
  for (const name of names) {
    const id = `answerer-${name}`;
    const input = h("input", {
      type: "radio",
      name: "answerer",
      id,
      value: name,
      checked: name === config.default_answerer,
    });
    view.answererChoice.append(
      h("div", { class: "choice" }, input, h("label", { for: id }, ANSWERER_LABELS[name] || name)),
    );
  }
}

function chosenAnswerer() {
  const chosen = view.askForm.querySelector("input[name=answerer]:checked");
  return chosen ? chosen.value : null;
}

function reset() {
  clear(view.answerText);
  clear(view.answerNotes);
  clear(view.citationList);
  clear(view.passageList);
  say(view.abstentionMessage, "");
  say(view.askError, "");
  show(view.answer, false);
  show(view.abstention, false);
}

async function ask(question) {
  if (running) running.abort();
  const controller = new AbortController();
  running = controller;
  reset();
  const collection = state.collection;
  const request = { question };
  const answerer = chosenAnswerer();
  if (answerer) request.answerer = answerer;
  const answer = { collection, sentences: 0, citations: new Map() };
  view.answer.setAttribute("aria-busy", "true");
  say(view.askStatus, "Looking through the documents…");
  try {
    const handle = (name, data) => onEvent(answer, name, data);
    await askStream(collection, request, handle, controller.signal);
  } catch (error) {
    if (error && error.name === "AbortError") return;
    say(view.askStatus, "");
    say(view.askError, error instanceof ApiError ? error.message : "The answer could not be read.");
  } finally {
    view.answer.removeAttribute("aria-busy");
    if (running === controller) running = null;
  }
}

function onEvent(answer, name, data) {
  if (name === "sentence") addSentence(answer, data);
  else if (name === "abstained") abstain(answer, data);
  else if (name === "done") finish(answer, data);
  else if (name === "error") {
    say(view.askStatus, "");
    say(view.askError, `The answer stopped before it was complete: ${data.detail}`);
  }
}

function citationTarget(answer, citation) {
  return {
    docId: citation.doc_id,
    page: citation.page,
    quote: citation.quote,
    start: citation.quote_start,
    end: citation.quote_end,
    collection: answer.collection,
  };
}

function opener(target, link) {
  return (event) => {
    if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) {
      return;
    }
    event.preventDefault();
    openTarget(target, link);
  };
}

function addSentence(answer, data) {
  show(view.answer, true);
  if (answer.sentences === 0) say(view.askStatus, "Answering…");
  answer.sentences += 1;
  if (answer.sentences > 1) view.answerText.append(" ");
  const markers = data.citations.map((citation) => {
    const target = citationTarget(answer, citation);
    const href = pageLink(target);
    const where = pageName(citation.page, citation.page_label);
    const marker = h(
      "a",
      {
        class: "marker",
        href,
        dataset: { testid: "citation", n: citation.n },
        "aria-label": `Source ${citation.n}: ${citation.title}, ${where}`,
      },
      `[${citation.n}]`,
    );
    marker.addEventListener("click", opener(target, marker));
    if (!answer.citations.has(citation.n)) {
      answer.citations.set(citation.n, citation);
      view.citationList.append(source(citation, target, href, where));
    }
    return marker;
  });
  view.answerText.append(h("span", { class: "sentence" }, data.text), " ", ...markers);
}

function source(citation, target, href, where) {
  const link = h("a", { href, dataset: { testid: "source-link" } }, citation.title);
  link.addEventListener("click", opener(target, link));
  return h(
    "li",
    { id: `source-${citation.n}`, value: citation.n, dataset: { testid: "source" } },
    h("p", { class: "source-head" }, link, h("span", { class: "source-page" }, `, ${where}`)),
    h("p", { class: "source-file" }, citation.doc),
    h("blockquote", { class: "quote" }, citation.quote),
  );
}

function abstain(answer, data) {
  show(view.abstention, true);
  // The heading says what the usual message says; anything more (a language note) is shown.
  const more = data.answer
    .replace(/^The documents do not answer this question\.\s*/, "")
    .replace(/The closest passages are listed below\.\s*/, "")
    .trim();
  say(view.abstentionMessage, more);
  show(view.abstentionMessage, more.length > 0);
  say(view.askStatus, "The documents do not answer this question.");
  for (const passage of data.passages) {
    const item = h("li", { dataset: { testid: "passage" } });
    view.passageList.append(item);
    describePassage(answer, passage, item);
  }
}

async function describePassage(answer, passage, item) {
  const doc = await documentByFileName(answer.collection, passage.doc);
  const title = doc ? doc.title : passage.doc;
  const where = passage.page_start === passage.page_end
    ? `page ${passage.page_start}`
    : `pages ${passage.page_start}–${passage.page_end}`;
  const target = {
    docId: doc ? doc.doc_id : passage.doc,
    page: passage.page_start,
    quote: opening(passage.text, passage.heading),
    collection: answer.collection,
  };
  const link = h("a", { href: pageLink(target), dataset: { testid: "passage-link" } }, title);
  link.addEventListener("click", opener(target, link));
  const shortened = passage.text.length > 400 ? `${passage.text.slice(0, 400)}…` : passage.text;
  item.append(
    h("p", { class: "source-head" }, link, h("span", { class: "source-page" }, `, ${where}`)),
    passage.heading ? h("p", { class: "source-file" }, passage.heading) : null,
    h("blockquote", { class: "quote" }, shortened),
  );
}

function finish(answer, data) {
  noteIndexVersion(answer.collection, data.index_version);
  const notes = [];
  if (data.fallback) {
    notes.push(
      `The LLM's answer could not be used (${data.fallback}); ` +
        "these sentences are quoted from the documents instead.",
    );
  } else if (data.answerer === "generative" && answer.sentences) {
    notes.push("Written by the LLM; every sentence was checked against the passage it cites.");
  }
  if (data.dropped && data.dropped.length) {
    const count = data.dropped.length;
    notes.push(
      `${plural(count, "sentence")} of the draft could not be verified and ` +
        `${count === 1 ? "was" : "were"} left out.`,
    );
  }
  for (const note of data.notes || []) notes.push(note);
  for (const note of notes) view.answerNotes.append(h("li", {}, note));
  if (answer.sentences) {
    const sources = plural(answer.citations.size, "source");
    say(view.askStatus, `Answered in ${plural(answer.sentences, "sentence")} from ${sources}.`);
  } else if (view.abstention.hidden) {
    say(view.askStatus, "No answer came back.");
  }
}
