// The screen pop: who this is on every channel, what they did before, and for the open
// conversation how long they waited, what they chose in the IVR or pre-chat form, and whether
// (and from whom) it was transferred.
import { CHANNEL_LABEL, STATUS_LABEL, contactLabel, fmtDuration, fmtTime, h } from "./dom.js";
import { transferText } from "./timeline.js";

const ADDRESS_LABEL = { email: "Email", phone: "Phone", visitor: "Web visitor" };

function valueText(value) {
  if (value === null || value === undefined) return "—";
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

function pairs(object, label) {
  const entries = Object.entries(object || {});
  if (!entries.length) return h("p", { class: "muted" }, `No ${label}.`);
  return h(
    "dl",
    { class: "pairs" },
    entries.flatMap(([k, v]) => {
      if (v && typeof v === "object" && !Array.isArray(v)) {
        return Object.entries(v).flatMap(([k2, v2]) => [h("dt", {}, `${k} · ${k2}`), h("dd", {}, valueText(v2))]);
      }
      return [h("dt", {}, k), h("dd", {}, valueText(v))];
    }),
  );
}

// What the customer chose before reaching an agent, from the first inbound item's metadata:
// known keys get a label (an IVR path reads as a path); transport details are left out.
const ANSWER_LABEL = {
  ivr_path: "IVR path",
  ivr: "IVR choice",
  digits: "Keys pressed",
  queue: "IVR queue",
  dialed: "Number dialed",
  offline_form: "Offline form",
  page_url: "Page",
};
const NOT_ANSWERS = new Set(["asterisk_channel", "client_id", "message_id", "keyword", "pages", "event", "duration_s"]);

function answers(metadata) {
  const out = {};
  for (const [key, value] of Object.entries(metadata || {})) {
    if (NOT_ANSWERS.has(key) || value === null || value === undefined || value === "") continue;
    if (Array.isArray(value) && !value.length) continue;
    const label = ANSWER_LABEL[key] || key;
    out[label] = key === "ivr_path" && Array.isArray(value) ? value.join(" › ") : value;
  }
  if (out.offline === true) out.offline = "yes: no agent was available";
  return out;
}

/** Facts about this conversation derived from its timeline. */
export function conversationFacts(conversation, interactions) {
  const firstInbound = interactions.find((ix) => ix.direction === "inbound");
  const assignments = interactions.filter((ix) => ix.kind === "assignment");
  const transfers = interactions.filter((ix) => ix.kind === "transfer");
  let wait = null;
  let waiting = false;
  if (assignments.length && assignments[0].payload && assignments[0].payload.wait_s !== undefined) {
    wait = Number(assignments[0].payload.wait_s);
  } else if (assignments.length || transfers.length) {
    const first = (assignments[0] || transfers[0]).created_at;
    wait = (new Date(first) - new Date(conversation.created_at)) / 1000;
  } else if (conversation.status === "queued" || conversation.status === "offered") {
    wait = (Date.now() - new Date(conversation.created_at)) / 1000;
    waiting = true;
  }
  const metadata = (firstInbound && firstInbound.payload && firstInbound.payload.metadata) || {};
  return { wait, waiting, metadata, transfers };
}

export function renderContactPanel(panel, { contact, conversation, interactions, names, onOpen }) {
  const facts = conversationFacts(conversation, interactions);
  const name = contactLabel(contact);
  const history = ((contact && contact.history) || []).filter((c) => c.id !== conversation.id);
  panel.replaceChildren(
    h(
      "section",
      { class: "card", "aria-labelledby": "contact-name" },
      h("div", { class: "avatar", "aria-hidden": "true" }, initials(name)),
      h("h2", { id: "contact-name", "data-testid": "contact-name" }, name),
      h(
        "ul",
        { class: "addresses", "aria-label": "Addresses" },
        ((contact && contact.addresses) || []).map((a) =>
          h(
            "li",
            { "data-testid": "address" },
            h("span", { class: "tag" }, ADDRESS_LABEL[a.kind] || a.kind),
            " ",
            a.value,
          ),
        ),
      ),
    ),
    h(
      "section",
      { class: "card", "aria-labelledby": "this-conv" },
      h("h3", { id: "this-conv" }, "This conversation"),
      h(
        "dl",
        { class: "pairs" },
        h("dt", {}, facts.waiting ? "Waiting" : "Waited"),
        h("dd", { "data-testid": "wait-time" }, fmtDuration(facts.wait)),
        h("dt", {}, "Channel"),
        h("dd", {}, CHANNEL_LABEL[conversation.channel] || conversation.channel),
        h("dt", {}, "Queue"),
        h("dd", {}, conversation.queue_id ? names.queue(conversation.queue_id) : "No queue"),
        h("dt", {}, "Transferred"),
        h(
          "dd",
          { "data-testid": "transferred" },
          facts.transfers.length ? facts.transfers.map((t) => h("div", {}, transferText(t, { names }))) : "No",
        ),
      ),
      h("h4", {}, "IVR / pre-chat answers"),
      h("div", { "data-testid": "metadata" }, pairs(answers(facts.metadata), "answers")),
    ),
    h(
      "section",
      { class: "card", "aria-labelledby": "attrs" },
      h("h3", { id: "attrs" }, "Attributes"),
      pairs(contact && contact.attributes, "custom attributes"),
    ),
    h(
      "section",
      { class: "card", "aria-labelledby": "history" },
      h("h3", { id: "history" }, "History on every channel"),
      history.length
        ? h(
            "ul",
            { class: "history", "data-testid": "history" },
            history.map((c) =>
              h(
                "li",
                {},
                h(
                  "button",
                  { type: "button", class: "link", onclick: () => onOpen(c.id) },
                  h("span", { class: `chip ch-${c.channel}` }, CHANNEL_LABEL[c.channel] || c.channel),
                  " ",
                  c.subject || "(no subject)",
                ),
                h("span", { class: "muted" }, ` ${STATUS_LABEL[c.status] || c.status} · ${fmtTime(c.last_message_at)}`),
              ),
            ),
          )
        : h("p", { class: "muted" }, "No other conversations."),
    ),
  );
}

function initials(name) {
  const parts = String(name).trim().split(/\s+/).filter((p) => /^\p{L}/u.test(p));
  if (!parts.length) return "#"; // a bare number or address
  return (parts[0][0] + (parts.length > 1 ? parts[parts.length - 1][0] : "")).toUpperCase();
}
