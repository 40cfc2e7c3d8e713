// One conversation's timeline, each channel drawn the way its medium looks: chat and SMS as
// bubbles, email as a message with headers (its HTML only inside a sandboxed iframe without
// scripts), fax with its page images, calls with a player for the recording. Everything is
// built with textContent; customer HTML never touches this document.
import { attachmentUrl } from "./api.js";
import { fmtBytes, fmtDuration, fmtTime, h } from "./dom.js";

const DELIVERY_LABEL = {
  pending: "Queued",
  sending: "Sending…",
  sent: "Sent",
  delivered: "Delivered",
  read: "Read",
  failed: "Failed",
};

// Shown inline; TIFF (common for fax) is not displayable by browsers, so it is a download.
const IMAGE_TYPES = new Set(["image/png", "image/jpeg", "image/gif", "image/webp"]);

function baseType(contentType) {
  return String(contentType || "").split(";")[0].trim().toLowerCase();
}

export function deliveryBadge(delivery) {
  const status = (delivery && delivery.status) || "pending";
  return h(
    "span",
    {
      class: `delivery delivery-${status}`,
      "data-testid": "delivery",
      "data-status": status,
      title: delivery && delivery.error ? `Last error: ${delivery.error}` : "",
    },
    status === "pending" && delivery && delivery.error ? "Retrying" : DELIVERY_LABEL[status] || status,
  );
}

function authorName(ix, ctx) {
  const p = ix.payload || {};
  if (ix.actor.type === "contact") return p.sender_name || ctx.contactName || "Customer";
  if (ix.actor.type === "system") return "System";
  return p.author_name || ctx.names.agent(ix.actor.id) || "Agent";
}

function attachmentList(ix) {
  const files = ix.attachments || [];
  if (!files.length) return null;
  return h(
    "ul",
    { class: "attachments", "aria-label": "Attachments" },
    files.map((a) => {
      const type = baseType(a.content_type);
      const link = h(
        "a",
        { href: attachmentUrl(a, { download: true }), rel: "noopener noreferrer", download: a.filename },
        a.filename || "attachment",
      );
      const item = h("li", { class: "attachment" }, link, h("span", { class: "muted" }, ` ${fmtBytes(a.size)}`));
      if (IMAGE_TYPES.has(type)) {
        item.prepend(
          h("img", { class: "thumb", src: attachmentUrl(a), alt: a.filename || "image", loading: "lazy" }),
        );
      }
      return item;
    }),
  );
}

function bubble(ix, ctx) {
  const outbound = ix.direction === "outbound";
  const meta = h(
    "div",
    { class: "meta" },
    h("span", { class: "who" }, authorName(ix, ctx)),
    h("time", { datetime: ix.created_at }, fmtTime(ix.created_at)),
    outbound ? deliveryBadge(ix.delivery) : null,
  );
  return h(
    "li",
    { class: `item bubble ${outbound ? "out" : "in"} ch-${ix.channel}` },
    meta,
    ix.text ? h("div", { class: "text" }, ix.text) : null, // attachment-only: no empty bubble
    attachmentList(ix),
  );
}

/** Customer HTML inside an iframe with no script permission: srcdoc + an empty sandbox. */
function emailFrame(html) {
  const frame = h("iframe", {
    class: "email-html",
    title: "Email content",
    sandbox: "", // no allow-scripts, no allow-same-origin: an opaque, script-less document
    referrerpolicy: "no-referrer",
    loading: "lazy",
  });
  // a CSP meta inside the document too: even a browser ignoring sandbox runs no script
  frame.srcdoc =
    '<!doctype html><html><head><meta charset="utf-8">' +
    "<meta http-equiv=\"Content-Security-Policy\" content=\"script-src 'none'; img-src data:\">" +
    '<base target="_blank"><style>body{font:14px/1.5 system-ui,sans-serif;margin:8px;color:#1d2433}' +
    "img{max-width:100%}</style></head><body>" +
    html +
    "</body></html>";
  return frame;
}

function email(ix, ctx) {
  const p = ix.payload || {};
  const outbound = ix.direction === "outbound";
  const from = outbound ? authorName(ix, ctx) : `${authorName(ix, ctx)} <${addressValue(p.sender)}>`;
  return h(
    "li",
    { class: `item email ${outbound ? "out" : "in"}` },
    h(
      "div",
      { class: "email-head" },
      h("div", { class: "subject" }, ix.subject || "(no subject)"),
      h(
        "div",
        { class: "meta" },
        h("span", { class: "who" }, outbound ? `To ${addressValue(p.to)}` : `From ${from}`),
        h("time", { datetime: ix.created_at }, fmtTime(ix.created_at)),
        outbound ? deliveryBadge(ix.delivery) : null,
      ),
    ),
    ix.html ? emailFrame(ix.html) : h("div", { class: "email-text" }, ix.text),
    attachmentList(ix),
  );
}

function addressValue(address) {
  const s = String(address || "");
  const i = s.indexOf(":");
  return i >= 0 ? s.slice(i + 1) : s;
}

function fax(ix, ctx) {
  const pages = (ix.attachments || []).filter((a) => IMAGE_TYPES.has(baseType(a.content_type)));
  const others = (ix.attachments || []).filter((a) => !IMAGE_TYPES.has(baseType(a.content_type)));
  const p = ix.payload || {};
  const count = (p.metadata && p.metadata.pages) || pages.length || others.length;
  return h(
    "li",
    { class: "item fax in" },
    h(
      "div",
      { class: "meta" },
      h("span", { class: "who" }, `Fax from ${addressValue(p.sender) || authorName(ix, ctx)}`),
      h("span", { class: "muted" }, count ? `${count} page${count === 1 ? "" : "s"}` : ""),
      h("time", { datetime: ix.created_at }, fmtTime(ix.created_at)),
    ),
    pages.length
      ? h(
          "div",
          { class: "fax-pages" },
          pages.map((a, i) =>
            h(
              "a",
              { href: attachmentUrl(a), target: "_blank", rel: "noopener noreferrer" },
              h("img", { class: "fax-page", src: attachmentUrl(a), alt: `Fax page ${i + 1}`, loading: "lazy" }),
            ),
          ),
        )
      : null,
    ix.text
      ? h("details", { class: "ocr" }, h("summary", {}, "Recognized text"), h("div", { class: "text" }, ix.text))
      : null,
    others.length ? attachmentList({ attachments: others }) : null,
  );
}

function call(ix, ctx) {
  const p = ix.payload || {};
  const md = p.metadata || {};
  const audio = (ix.attachments || []).filter((a) => baseType(a.content_type).startsWith("audio/"));
  const duration = p.duration_s ?? md.duration_s ?? md.duration;
  const label =
    ix.kind === "recording"
      ? "Call recording"
      : ix.direction === "outbound"
        ? "Outbound call"
        : `Call from ${addressValue(p.sender) || authorName(ix, ctx)}`;
  return h(
    "li",
    { class: "item call" },
    h(
      "div",
      { class: "meta" },
      h("span", { class: "who" }, label),
      duration !== undefined ? h("span", { class: "muted" }, fmtDuration(Number(duration))) : null,
      h("time", { datetime: ix.created_at }, fmtTime(ix.created_at)),
    ),
    ix.text ? h("div", { class: "text" }, ix.text) : null,
    audio.map((a) =>
      h(
        "figure",
        { class: "recording" },
        h("audio", { controls: true, preload: "metadata", src: attachmentUrl(a) }),
        h("figcaption", { class: "muted" }, `${a.filename} · ${fmtBytes(a.size)}`),
      ),
    ),
  );
}

function note(ix, ctx) {
  return h(
    "li",
    { class: "item note" },
    h(
      "div",
      { class: "meta" },
      h("span", { class: "who" }, `Private note · ${authorName(ix, ctx)}`),
      h("time", { datetime: ix.created_at }, fmtTime(ix.created_at)),
    ),
    h("div", { class: "text" }, ix.text),
  );
}

function systemLine(text, ix, extra) {
  return h(
    "li",
    { class: `item system kind-${ix.kind}` },
    h("span", {}, text),
    extra ? h("span", { class: "muted" }, ` — ${extra}`) : null,
    h("time", { datetime: ix.created_at }, ` ${fmtTime(ix.created_at)}`),
  );
}

export function transferText(ix, ctx) {
  const p = ix.payload || {};
  const by = ctx.names.user(p.by) || ctx.names.agent(ix.actor.id) || "someone";
  const from = p.from || {};
  const to = p.to || {};
  const fromText = from.agent_id
    ? ctx.names.agent(from.agent_id)
    : from.queue_id
      ? `queue ${ctx.names.queue(from.queue_id)}`
      : "";
  const toText = to.agent_id ? ctx.names.agent(to.agent_id) : `queue ${ctx.names.queue(to.queue_id)}`;
  return `Transferred by ${by}${fromText ? ` from ${fromText}` : ""} to ${toText}`;
}

function system(ix, ctx) {
  const p = ix.payload || {};
  switch (ix.kind) {
    case "transfer":
      return systemLine(transferText(ix, ctx), ix, ix.text);
    case "offer":
      if (p.outcome) return systemLine(`Offer to ${ctx.names.agent(p.agent_id)} ${p.outcome}`, ix);
      return systemLine(`Offered to ${ctx.names.agent(p.agent_id)}`, ix);
    case "assignment":
      return systemLine(
        `Assigned to ${ctx.names.agent(p.agent_id)}`,
        ix,
        p.wait_s !== undefined ? `waited ${fmtDuration(p.wait_s)}` : "",
      );
    case "status":
      return systemLine(
        p.status === "resolved"
          ? `Resolved by ${authorName(ix, ctx)}`
          : p.reason === "reopened"
            ? "Reopened"
            : `Status: ${p.status}`,
        ix,
      );
    case "merge":
      return systemLine("Contacts merged", ix);
    case "transcript":
      return h(
        "li",
        { class: "item system" },
        h("details", {}, h("summary", {}, "Call transcript"), h("div", { class: "text" }, ix.text)),
      );
    default:
      if (p.overflow) return systemLine(`Overflow: ${p.overflow.action}`, ix);
      return systemLine(ix.text || `Event: ${ix.kind}`, ix);
  }
}

export function renderInteraction(ix, ctx) {
  let el;
  if (ix.kind === "note") el = note(ix, ctx);
  else if (ix.kind === "call" || ix.kind === "recording" || (ix.channel === "voice" && ix.kind === "message"))
    el = call(ix, ctx);
  else if (ix.kind === "message" && ix.channel === "email") el = email(ix, ctx);
  else if (ix.kind === "message" && ix.channel === "fax") el = fax(ix, ctx);
  else if (ix.kind === "message") el = bubble(ix, ctx);
  else el = system(ix, ctx);
  el.dataset.id = ix.id;
  el.dataset.kind = ix.kind;
  el.dataset.seq = ix.seq;
  el.dataset.channel = ix.channel;
  return el;
}
