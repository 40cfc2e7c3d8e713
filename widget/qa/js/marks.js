// Search highlights arrive as HTML-escaped text with only <mark>…</mark> added by the hub.
// They are never given to innerHTML: the string is split on exactly those two tags, every other
// piece is entity-decoded and becomes a text node, so any other markup stays visible text.
import { h } from "../../inbox/js/dom.js";

const ENTITIES = { "&amp;": "&", "&lt;": "<", "&gt;": ">", "&quot;": '"', "&#x27;": "'", "&#39;": "'" };

function decode(text) {
  return text.replace(/&(?:amp|lt|gt|quot|#x27|#39);/g, (m) => ENTITIES[m]);
}

/** "a <mark>b</mark>" -> [{text: "a ", mark: false}, {text: "b", mark: true}] */
export function parseMarks(snippet) {
  const parts = [];
  let mark = false;
  for (const token of String(snippet || "").split(/(<mark>|<\/mark>)/)) {
    if (token === "<mark>") mark = true;
    else if (token === "</mark>") mark = false;
    else if (token) parts.push({ text: decode(token), mark });
  }
  return parts;
}

/** DOM nodes for a highlight snippet: text nodes and <mark> elements, nothing else. */
export function renderMarks(snippet) {
  return parseMarks(snippet).map((p) => (p.mark ? h("mark", {}, p.text) : document.createTextNode(p.text)));
}
