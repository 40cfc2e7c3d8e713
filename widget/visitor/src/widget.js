// The visitor chat UI inside a shadow root: launcher, panel, pre-chat and offline forms, the
// message log (an ARIA live region), composer with attachments, typing and read marks.
// All text from the network goes through textContent: nothing is ever parsed as HTML.
import { h, humanSize, initial, remembered, safeUrl } from "./dom.js";
import { buildForm } from "./forms.js";
import { localized } from "./i18n.js";

const ICON = '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z"/></svg>';
const CLIP = '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M16.5 6.5v10a4.5 4.5 0 0 1-9 0V5a3 3 0 0 1 6 0v10.5a1.5 1.5 0 0 1-3 0V6.5H9v9a3 3 0 0 0 6 0V5a4.5 4.5 0 0 0-9 0v11.5a6 6 0 0 0 12 0v-10z"/></svg>';

const RANK = { sending: 0, failed: 0, sent: 1, delivered: 2, read: 3 };
// file links in history are signed for at least an hour: fetch fresh ones well before that
const RELINK_MS = 45 * 60 * 1000;

export class ChatWidget {
  constructor({ root, connection, t, locale, server, position }) {
    this.conn = connection;
    this.t = t;
    this.locale = locale;
    this.server = server;
    this.site = null;
    this.prechat = {};
    this.messages = new Map(); // id or client_id -> {data, el}
    this.files = [];
    this.unread = 0;
    this.typingSentAt = 0;
    this.openKey = `contacthub:${connection.siteKey}:open`;
    this.time = new Intl.DateTimeFormat(locale, { hour: "2-digit", minute: "2-digit" });
    this.build(root, position);
  }

  build(root, position) {
    const t = this.t;
    this.launcher = h("button", { class: "launcher", type: "button", "aria-expanded": "false",
      "aria-controls": "ch-panel", "aria-label": t("open"), onclick: () => this.toggle() });
    this.launcher.innerHTML = ICON; // static markup, no data
    this.badge = h("span", { class: "badge", hidden: true, "aria-hidden": "true" });
    this.launcher.append(this.badge);
    this.avatar = h("span", { class: "avatar-box", "aria-hidden": "true" });
    this.title = h("h2", { id: "ch-title", text: t("title") });
    this.status = h("p", { text: "" });
    this.closeButton = h("button", { class: "close", type: "button", "aria-label": t("close"),
      onclick: () => this.toggle(false), text: "×" });
    this.banner = h("div", { class: "banner", role: "status", hidden: true, text: t("reconnecting") });
    this.log = h("ol", { class: "log", role: "log", "aria-live": "polite", "aria-label": t("messages") });
    this.prechatForm = h("form", { class: "card", hidden: true, novalidate: true });
    this.offlineForm = h("form", { class: "card", hidden: true, novalidate: true });
    this.offlineThanks = h("p", { class: "msg system", hidden: true, text: t("offlineThanks") });
    this.greeting = h("p", { class: "msg system", hidden: true });
    this.body = h("div", { class: "body" }, this.greeting, this.prechatForm, this.offlineForm, this.offlineThanks, this.log);
    this.typing = h("p", { class: "typing", "aria-live": "polite" });
    this.error = h("p", { class: "error", role: "alert" });
    this.textarea = h("textarea", { id: "ch-text", rows: "1", placeholder: t("compose"),
      "aria-label": t("compose"), onkeydown: (e) => this.onKey(e), oninput: () => this.onTyping() });
    this.fileInput = h("input", { type: "file", multiple: true, hidden: true, tabindex: "-1",
      "aria-hidden": "true", onchange: () => this.pickFiles() });
    this.chips = h("div", { class: "chips" });
    const attach = h("button", { class: "icon", type: "button", "aria-label": t("attach"), title: t("attach"),
      onclick: () => this.fileInput.click() });
    attach.innerHTML = CLIP; // static markup, no data
    this.composer = h("form", { class: "composer", onsubmit: (e) => { e.preventDefault(); this.submit(); } },
      this.textarea, this.fileInput, attach,
      h("button", { class: "primary", type: "submit", text: t("send") }));
    this.announcer = h("div", { class: "sr", "aria-live": "assertive" });
    this.panel = h("section", { id: "ch-panel", class: "panel", role: "dialog", "aria-labelledby": "ch-title",
      hidden: true, onkeydown: (e) => { if (e.key === "Escape") this.toggle(false); } },
      h("header", {}, this.avatar, h("div", { class: "who" }, this.title, this.status), this.closeButton),
      this.banner, this.body, this.typing, this.error, this.chips, this.composer);
    this.el = h("div", { class: position === "left" ? "root left" : "root", lang: this.locale },
      this.panel, this.launcher, this.announcer);
    root.append(this.el);
    document.addEventListener("visibilitychange", () => this.markRead());
  }

  // ---- server events ----------------------------------------------------------------

  async onSession(session) {
    this.banner.hidden = true;
    this.site = session.site;
    this.prechat = session.prechat || {};
    this.visitorId = session.visitor_id;
    const agent = session.site.agent || {};
    this.setAgent(agent.name, agent.avatar_url);
    if (session.site.name) this.title.textContent = session.site.name;
    const greeting = localized(session.site.greeting, this.locale, "");
    this.greeting.textContent = greeting;
    this.greeting.hidden = !greeting;
    this.setOnline(session.site.online);
    this.fileInput.accept = (session.site.limits.attachment_types || []).join(",");
    await this.loadHistory();
    this.renderView();
    if (remembered(this.openKey) === "1" && this.panel.hidden) this.toggle(true, false);
    this.markRead();
  }

  async loadHistory() {
    clearTimeout(this.relinkTimer);
    try {
      const history = await this.conn.request("history", {});
      for (const m of history.messages) this.upsert(m, false);
      this.relinkTimer = setTimeout(() => this.conn.ready && this.loadHistory(), RELINK_MS);
    } catch (err) {
      this.showError(err);
    }
  }

  onMessage(m) {
    const own = m.author && m.author.type === "visitor";
    this.upsert(m, !own);
    if (!own) {
      this.typing.textContent = "";
      const name = (m.author && m.author.name) || this.t("agent");
      if (this.panel.hidden || document.hidden) {
        this.unread += 1;
        this.badge.textContent = String(this.unread);
        this.badge.hidden = false;
        this.launcher.setAttribute("aria-label", `${this.t("open")} (${this.t("unread", { n: this.unread })})`);
        this.announcer.textContent = this.t("newMessage", { name });
        this.conn.signal("receipt", { ids: [m.id], status: "delivered" });
      }
      if (m.author.avatar_url) this.setAgent(name, m.author.avatar_url);
      this.markRead();
    }
    this.renderView();
  }

  onTypingEvent(e) {
    clearTimeout(this.typingTimer);
    const name = (e.author && e.author.name) || this.t("agent");
    this.typing.textContent = e.typing ? this.t("typing", { name }) : "";
    if (e.typing) this.typingTimer = setTimeout(() => (this.typing.textContent = ""), 8000);
  }

  onReceipt(r) {
    for (const id of r.ids) {
      const entry = this.messages.get(id);
      if (entry) this.setStatus(entry, r.status);
    }
  }

  setOnline(online) {
    if (this.site) this.site.online = online;
    this.status.textContent = online ? this.t("online") : this.t("offline");
    this.renderView();
  }

  onState(state) {
    this.banner.hidden = state !== "reconnecting";
  }

  setAgent(name, avatarUrl) {
    this.avatar.replaceChildren(this.avatarImage(name, avatarUrl)
      || h("span", { class: "avatar", "aria-hidden": "true" }, initial(name)));
    this.agentName = name;
  }

  // An <img> that falls back to the name's initial if the picture does not load.
  avatarImage(name, avatarUrl) {
    const url = avatarUrl && safeUrl(avatarUrl, this.server);
    if (!url) return null;
    const img = h("img", { class: "avatar", src: url, alt: "" });
    const fallback = () => img.replaceWith(h("span", { class: "avatar", "aria-hidden": "true" }, initial(name)));
    img.addEventListener("error", fallback, { once: true });
    return img;
  }

  // ---- views ------------------------------------------------------------------------

  renderView() {
    if (!this.site) return;
    // a conversation that already started (or an offline message) never goes back to a form
    const fresh = this.messages.size === 0 && this.offlineThanks.hidden;
    const needPrechat = fresh && this.site.prechat_fields.length > 0 && Object.keys(this.prechat).length === 0;
    const offline = fresh && !this.site.online;
    this.offlineForm.hidden = !offline;
    this.prechatForm.hidden = offline || !needPrechat;
    const chatting = !offline && !needPrechat;
    this.composer.hidden = !chatting;
    this.chips.hidden = !chatting;
    if (!this.prechatForm.hidden && !this.prechatForm.childElementCount) this.buildForm(this.prechatForm, "prechat");
    if (!this.offlineForm.hidden && !this.offlineForm.childElementCount) this.buildForm(this.offlineForm, "offline");
    const view = offline ? "offline" : needPrechat ? "prechat" : "chat";
    if (view !== this.view && !this.panel.hidden) this.focusFirst(); // e.g. opened before the session
    this.view = view;
  }

  focusFirst() {
    const first = this.panel.querySelector("form.card:not([hidden]) input, form.card:not([hidden]) select, form.card:not([hidden]) textarea");
    (first || this.textarea).focus();
  }

  buildForm(form, kind) {
    buildForm({
      form, kind, t: this.t, locale: this.locale,
      specs: kind === "prechat" ? this.site.prechat_fields : this.site.offline_fields,
      maxText: this.site.limits.max_text_chars,
      showError: (err, target) => this.showError(err, target),
      submit: async (fields, text) => {
        if (kind === "prechat") {
          this.prechat = (await this.conn.request("prechat", { fields })).prechat;
        } else {
          const { clientId, done } = this.conn.sendMessage({ fields, text }, "offline");
          const ack = await done;
          this.offlineThanks.hidden = false;
          this.upsert({ id: ack.id, client_id: clientId, conversation_id: ack.conversation_id, text,
            at: new Date().toISOString(), status: "sent", author: { type: "visitor" } }, false);
        }
        this.error.textContent = "";
        this.renderView();
        this.textarea.focus();
      },
    });
  }

  toggle(open = this.panel.hidden, focus = true) {
    this.panel.hidden = !open;
    this.launcher.setAttribute("aria-expanded", String(open));
    remembered(this.openKey, open ? "1" : "0");
    if (open) {
      this.unread = 0;
      this.badge.hidden = true;
      this.launcher.setAttribute("aria-label", this.t("open"));
      this.markRead();
      if (focus) this.focusFirst();
      this.scroll();
    } else if (focus) {
      this.launcher.focus();
    }
  }

  // ---- messages ---------------------------------------------------------------------

  upsert(m, fromOthers) {
    const key = m.id || m.client_id;
    let entry = this.messages.get(key) || (m.client_id && this.messages.get(m.client_id));
    if (entry) {
      entry.data = { ...entry.data, ...m };
      this.relink(entry, m.attachments);
      this.messages.set(key, entry);
      this.setStatus(entry, m.status || entry.data.status);
      return entry;
    }
    entry = { data: m, el: this.renderMessage(m) };
    this.messages.set(key, entry);
    // keep the log in time order: history fetched after a reconnect may predate pending messages
    entry.el.dataset.at = m.at || "";
    let after = this.log.lastElementChild;
    while (after && m.at && after.dataset.at && Date.parse(after.dataset.at) > Date.parse(m.at)) {
      after = after.previousElementSibling;
    }
    if (after) after.after(entry.el);
    else this.log.prepend(entry.el);
    if (fromOthers && !this.panel.hidden) this.scroll();
    return entry;
  }

  renderMessage(m) {
    const type = (m.author && m.author.type) || "system";
    const name = type === "visitor" ? this.t("you") : (m.author && m.author.name) || this.t("agent");
    const bubble = h("div", { class: "bubble" });
    if (m.text) bubble.append(h("span", { class: "sr", text: `${name}: ` }), m.text);
    const files = this.renderFiles(m.attachments);
    if (files) bubble.append(files);
    const at = m.at ? this.time.format(new Date(m.at)) : "";
    const status = h("span", { class: "status" });
    const meta = h("span", { class: "meta" }, `${name}${at ? " · " + at : ""}`, type === "visitor" ? [" · ", status] : null);
    const avatar = type === "agent" ? this.smallAvatar(m.author) : null;
    const el = h("li", { class: `msg ${type}`, "data-id": m.id || "" }, avatar, h("div", {}, bubble, meta));
    Object.assign(el, { _status: status, _bubble: bubble, _files: files, _urls: urlsOf(m.attachments) });
    this.paintStatus(status, m.status || (m.id ? "sent" : "sending"));
    return el;
  }

  smallAvatar(author) {
    const name = author && author.name;
    return this.avatarImage(name, author && author.avatar_url)
      || h("span", { class: "avatar", "aria-hidden": "true" }, initial(name));
  }

  renderFiles(list) {
    const files = (list || []).map((f) => this.renderFile(f)).filter(Boolean);
    return files.length ? h("div", { class: "files" }, files) : null;
  }

  // History brings signed links (fresh ones on every fetch): show them instead of the copies
  // made from live binary data or of links about to expire.
  relink(entry, list) {
    const urls = urlsOf(list);
    if (!urls || urls === entry.el._urls) return;
    const files = this.renderFiles(list);
    const old = entry.el._files;
    if (old) {
      for (const a of old.querySelectorAll("a[href^='blob:']")) URL.revokeObjectURL(a.href);
      old.replaceWith(...(files ? [files] : []));
    }
    else if (files) entry.el._bubble.append(files);
    Object.assign(entry.el, { _files: files, _urls: urls });
  }

  renderFile(f) {
    let url = f.url ? safeUrl(f.url, this.server) : null;
    if (!url && f.data) url = URL.createObjectURL(new Blob([f.data], { type: f.type }));
    if (!url) return null;
    const label = this.t("attachment", { name: f.name });
    if (/^image\/(png|jpeg|gif|webp)$/.test(f.type)) {
      return h("a", { href: url, target: "_blank", rel: "noopener", "aria-label": label },
        h("img", { src: url, alt: f.name }), h("span", { class: "meta", text: f.name }));
    }
    return h("a", { href: url, download: f.name, rel: "noopener", text: `${f.name} (${humanSize(f.size || 0)})` });
  }

  setStatus(entry, status) {
    if (!status || RANK[status] < RANK[entry.data.status || "sending"]) return;
    entry.data.status = status;
    if (entry.el._status) this.paintStatus(entry.el._status, status);
  }

  paintStatus(el, status) {
    el.textContent = this.t(status);
    el.dataset.status = status;
  }

  markRead() {
    if (this.panel.hidden || document.hidden || !this.conn.ready) return;
    const ids = [];
    for (const { data } of this.messages.values()) {
      if (data.author && data.author.type === "agent" && data.status !== "read" && data.id) {
        data.status = "read";
        ids.push(data.id);
      }
    }
    for (let i = 0; i < ids.length; i += 100) this.conn.signal("receipt", { ids: ids.slice(i, i + 100), status: "read" });
  }

  scroll() {
    this.body.scrollTop = this.body.scrollHeight;
  }

  // ---- composing --------------------------------------------------------------------

  onKey(e) {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      this.submit();
    }
  }

  onTyping() {
    const now = Date.now();
    if (now - this.typingSentAt > 3000) {
      this.typingSentAt = now;
      this.conn.signal("typing", { typing: true });
    }
    clearTimeout(this.stopTypingTimer);
    this.stopTypingTimer = setTimeout(() => this.stopTyping(), 4000);
  }

  stopTyping() {
    clearTimeout(this.stopTypingTimer);
    if (this.typingSentAt) this.conn.signal("typing", { typing: false });
    this.typingSentAt = 0;
  }

  pickFiles() {
    const limits = this.site.limits;
    this.error.textContent = "";
    for (const file of this.fileInput.files) {
      if (this.files.length >= limits.max_attachments) {
        this.showError({ message: this.t("tooManyFiles", { max: limits.max_attachments }) });
        break;
      }
      if (file.size > limits.max_attachment_bytes) {
        this.showError({ message: this.t("fileTooLarge", { name: file.name, max: humanSize(limits.max_attachment_bytes) }) });
      } else if (!limits.attachment_types.includes(file.type)) {
        this.showError({ message: this.t("fileType", { name: file.name }) });
      } else {
        this.files.push(file);
      }
    }
    this.fileInput.value = "";
    this.renderChips();
    this.textarea.focus();
  }

  renderChips() {
    this.chips.replaceChildren(...this.files.map((file, i) => h("span", { class: "chip" }, file.name,
      h("button", { type: "button", "aria-label": `✕ ${file.name}`, text: "✕",
        onclick: () => { this.files.splice(i, 1); this.renderChips(); this.textarea.focus(); } }))));
  }

  async submit() {
    const text = this.textarea.value;
    if (!text.trim() && !this.files.length) return;
    const files = this.files;
    this.files = [];
    this.renderChips();
    this.textarea.value = "";
    this.stopTyping();
    const attachments = await Promise.all(files.map(async (f) => ({ name: f.name, type: f.type, data: await f.arrayBuffer() })));
    const payload = { text, page_url: location.href.slice(0, 500) };
    if (attachments.length) payload.attachments = attachments;
    const { clientId, done } = this.conn.sendMessage(payload);
    const entry = this.upsert({ client_id: clientId, text, at: new Date().toISOString(), status: "sending",
      author: { type: "visitor" }, attachments: attachments.map((a, i) => ({ ...a, size: files[i].size })) }, false);
    this.scroll();
    this.renderView();
    try {
      const ack = await done;
      entry.data.id = ack.id;
      entry.el.dataset.id = ack.id;
      this.messages.set(ack.id, entry);
      this.setStatus(entry, "sent");
    } catch (err) {
      this.paintStatus(entry.el._status, "failed");
      this.showError(err);
    }
  }

  showError(err, focusTarget) {
    this.error.textContent = this.t("error", { message: (err && err.message) || "?" });
    if (focusTarget) focusTarget.focus();
  }
}

function urlsOf(list) {
  return (list || []).every((f) => f.url) ? (list || []).map((f) => f.url).join(" ") : "";
}
