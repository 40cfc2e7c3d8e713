// The open conversation: header with actions, the timeline, the composer (reply on the
// conversation's own channel, or a private note) and the transfer dialog.
import { ApiError, get, post, query } from "./api.js";
import { renderCallControls } from "./callcontrol.js";
import { renderCallTransfer } from "./calltransfer.js";
import { ReplyFiles } from "./attach.js";
import { CannedPicker } from "./canned.js";
import { renderContactPanel } from "./contact.js";
import { $, CHANNEL_LABEL, STATUS_LABEL, contactLabel, fmtTime, h, uid } from "./dom.js";
import { deliveryBadge, renderInteraction } from "./timeline.js";

export class ConversationView {
  constructor(app) {
    this.app = app;
    this.conv = null;
    this.contact = null;
    this.items = [];
    this.mode = "reply";
    this.segmentsSupported = true;
    this.loadSeq = 0;
    this.timeline = $("#timeline");
    this.text = $("#composer-text");
    this.subject = $("#composer-subject");
    $("#composer").addEventListener("submit", (e) => {
      e.preventDefault();
      this.send();
    });
    this.text.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
        e.preventDefault();
        this.send();
      }
    });
    this.text.addEventListener("input", () => this.updateSegments());
    for (const button of document.querySelectorAll(".composer-tabs [data-mode]")) {
      button.addEventListener("click", () => this.setMode(button.dataset.mode, true));
    }
    $("#resolve-button").addEventListener("click", () => this.resolve());
    $("#reopen-button").addEventListener("click", () => this.reopen());
    $("#transfer-button").addEventListener("click", () => this.openTransfer());
    this.setupTransferDialog();
    this.canned = new CannedPicker(this);
    this.files = new ReplyFiles(this);
  }

  get id() {
    return this.conv ? this.conv.id : null;
  }

  async open(id, { focus = false } = {}) {
    const seq = ++this.loadSeq;
    // drawn, then the live events that raced the reads are applied on top (app.snapshot)
    await this.app.snapshot(
      async () => {
        const [conv, page] = await Promise.all([
          get(`/api/conversations/${encodeURIComponent(id)}`),
          get(`/api/conversations/${encodeURIComponent(id)}/interactions`),
        ]);
        return [conv, page, await this.app.contact(conv.contact_id, true)];
      },
      ([conv, page, contact]) => {
        if (seq === this.loadSeq) this.draw(conv, page, contact, focus); // else a newer open() won
      },
    );
  }

  draw(conv, page, contact, focus) {
    const switched = !this.conv || this.conv.id !== conv.id;
    this.conv = conv;
    this.contact = contact;
    this.items = page.items;
    this.app.live.join(conv.id);
    $("#empty").hidden = true;
    $("#conv-view").hidden = false;
    this.renderHead();
    this.renderTimeline();
    this.renderContact();
    if (switched) {
      this.files.clear();
      this.canned.load(conv).catch(() => {});
      this.text.value = "";
      this.setMode(this.canReply() ? "reply" : "note", false);
      $("#composer-error").textContent = "";
    } else {
      this.applyComposerState();
    }
    this.app.lists.markSelected(conv.id);
    if (focus) this.text.focus();
  }

  close() {
    this.conv = null;
    this.items = [];
    if (this.app.live) this.app.live.join(null);
    $("#conv-view").hidden = true;
    $("#empty").hidden = false;
    $("#contact-panel").replaceChildren();
  }

  /** Re-read the conversation after a status/assignment change pushed by the hub. */
  async refresh() {
    if (!this.conv) return;
    try {
      await this.open(this.conv.id);
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) this.close(); // no longer visible to me
      else throw err;
    }
  }

  canReply() {
    const me = this.app.me;
    // calls are answered on the phone; their conversation takes notes only
    if (!this.conv || this.conv.status === "resolved" || this.conv.channel === "voice") return false;
    if (me.role === "supervisor" || me.role === "admin") return true;
    return me.role === "agent" && this.conv.assignee_id && this.conv.assignee_id === me.agent_id;
  }

  canAct() {
    const me = this.app.me;
    if (!this.conv || this.conv.status === "resolved") return false;
    if (me.role === "supervisor" || me.role === "admin") return true;
    return me.role === "agent" && Boolean(this.conv.assignee_id) && this.conv.assignee_id === me.agent_id;
  }

  renderHead() {
    const c = this.conv;
    const names = this.app.names;
    const who = contactLabel(this.contact);
    $("#conv-title").textContent = c.subject ? `${who} — ${c.subject}` : who;
    $("#conv-sub").replaceChildren(
      h("span", { class: `chip ch-${c.channel}` }, CHANNEL_LABEL[c.channel] || c.channel),
      ` ${c.queue_id ? `Queue ${names.queue(c.queue_id)}` : "No queue"} · ${c.assignee_id ? `assigned to ${names.agent(c.assignee_id)}` : "unassigned"} · started ${fmtTime(c.created_at)}`,
    );
    const status = $("#conv-status");
    status.textContent = STATUS_LABEL[c.status] || c.status;
    status.dataset.status = c.status;
    const resolved = c.status === "resolved";
    const act = this.canAct();
    $("#resolve-button").hidden = resolved;
    $("#resolve-button").disabled = !act;
    $("#transfer-button").disabled = !act;
    $("#reopen-button").hidden = !resolved || this.app.me.role === "qa";
  }

  ctx() {
    return { names: this.app.names, contactName: contactLabel(this.contact) };
  }

  renderTimeline() {
    const ctx = this.ctx();
    this.timeline.replaceChildren(...this.items.map((ix) => renderInteraction(ix, ctx)));
    this.scrollToEnd();
  }

  renderContact() {
    renderContactPanel($("#contact-panel"), {
      contact: this.contact,
      conversation: this.conv,
      interactions: this.items,
      names: this.app.names,
      onOpen: (id) => this.app.openConversation(id, true),
    });
    renderCallControls($("#contact-panel"), { app: this.app, me: this.app.me, contact: this.contact, conversation: this.conv });
    renderCallTransfer($("#contact-panel"), { app: this.app, me: this.app.me, conversation: this.conv });
  }

  scrollToEnd() {
    this.timeline.scrollTop = this.timeline.scrollHeight;
  }

  /** A pushed interaction.created (or our own reply's answer): append once, in seq order. */
  add(ix) {
    if (!this.conv || ix.conversation_id !== this.conv.id) return false;
    if (this.items.some((x) => x.id === ix.id)) return false;
    this.items.push(ix);
    this.items.sort((a, b) => a.seq - b.seq);
    const el = renderInteraction(ix, this.ctx());
    const next = [...this.timeline.children].find((li) => Number(li.dataset.seq) > ix.seq);
    this.timeline.insertBefore(el, next || null);
    this.scrollToEnd();
    const callFact = ix.kind === "event" && ix.payload && ix.payload.call; // refreshes the Phone card
    if (["transfer", "assignment"].includes(ix.kind) || ix.direction === "inbound" || callFact) this.renderContact();
    return true;
  }

  setDelivery(data) {
    const ix = this.items.find((x) => x.id === data.interaction_id);
    if (!ix) return;
    ix.delivery = { status: data.status, error: data.error };
    const li = this.timeline.querySelector(`li[data-id="${CSS.escape(ix.id)}"]`);
    const old = li && li.querySelector("[data-testid=delivery]");
    if (old) old.replaceWith(deliveryBadge(ix.delivery));
    if (data.status === "failed") this.app.announce("A reply could not be delivered", true);
  }

  setMode(mode, focus) {
    this.mode = mode === "reply" && !this.canReply() ? "note" : mode;
    for (const button of document.querySelectorAll(".composer-tabs [data-mode]")) {
      button.setAttribute("aria-selected", String(button.dataset.mode === this.mode));
    }
    this.applyComposerState();
    if (focus) this.text.focus();
  }

  applyComposerState() {
    const c = this.conv;
    if (!c) return;
    const reply = this.mode === "reply";
    const canReply = this.canReply();
    $("#mode-reply").disabled = !canReply;
    $("#composer").classList.toggle("note-mode", !reply);
    $("#composer-label").textContent = reply ? "Reply" : "Private note";
    this.text.placeholder = reply
      ? `Reply by ${{ webchat: "chat", sms: "SMS", email: "email", fax: "fax" }[c.channel] || c.channel}…`
      : "Private note, visible to staff only…";
    this.subject.hidden = !(reply && c.channel === "email");
    if (!this.subject.hidden && !this.subject.value) {
      this.subject.value = c.subject ? (c.subject.startsWith("Re:") ? c.subject : `Re: ${c.subject}`) : "";
    }
    $("#reply-channel").textContent = reply
      ? `on ${CHANNEL_LABEL[c.channel] || c.channel}`
      : canReply
        ? "not sent to the customer"
        : c.status === "resolved"
          ? "resolved: reopen to reply"
          : c.channel === "voice"
            ? "calls are answered by phone"
            : "accept or be assigned to reply";
    $("#send-button").textContent = reply ? "Send" : "Add note";
    this.files.setEnabled(reply && canReply);
    this.updateSegments();
  }

  updateSegments() {
    const out = $("#segments");
    if (!this.conv || this.conv.channel !== "sms" || this.mode !== "reply" || !this.segmentsSupported) {
      out.textContent = "";
      return;
    }
    clearTimeout(this.segTimer);
    const text = this.text.value;
    this.segTimer = setTimeout(async () => {
      try {
        const s = await get(`/api/sms/segments${query({ text })}`);
        out.textContent = `${s.segments} segment${s.segments === 1 ? "" : "s"} · ${s.chars_left} left · ${s.encoding === "gsm7" ? "GSM-7" : "Unicode"}`;
      } catch (err) {
        if (err instanceof ApiError && err.status === 404) this.segmentsSupported = false;
        out.textContent = "";
      }
    }, 150);
  }

  async send() {
    const text = this.text.value.trim();
    const error = $("#composer-error");
    error.textContent = "";
    const withFiles = this.mode === "reply" && this.files.count > 0;
    if ((!text && !withFiles) || !this.conv) return;
    const id = this.conv.id;
    const button = $("#send-button");
    button.disabled = true;
    try {
      let ix;
      if (this.mode === "reply") {
        const body = { text, client_id: this.pendingClientId || (this.pendingClientId = uid()) };
        if (withFiles) body.attachments = await this.files.tokens();
        if (!text && !(body.attachments || []).length) return;
        if (!this.subject.hidden && this.subject.value.trim()) body.subject = this.subject.value.trim();
        ix = await post(`/api/conversations/${encodeURIComponent(id)}/messages`, body);
        this.pendingClientId = null;
      } else {
        ix = await post(`/api/conversations/${encodeURIComponent(id)}/notes`, { text });
      }
      this.text.value = "";
      if (this.mode === "reply") this.files.clear();
      this.add(ix);
      this.updateSegments();
      this.app.announce(this.mode === "reply" ? "Reply sent" : "Note added", false);
    } catch (err) {
      error.textContent = err.message || "Could not send";
    } finally {
      button.disabled = false;
      this.text.focus();
    }
  }

  async resolve() {
    if (!this.conv || !this.canAct()) return;
    try {
      await post(`/api/conversations/${encodeURIComponent(this.conv.id)}/resolve`);
      this.app.announce("Conversation resolved", false);
      await this.refresh();
      this.app.lists.schedule();
    } catch (err) {
      this.app.toast(err.message);
    }
  }

  async reopen() {
    if (!this.conv) return;
    try {
      await post(`/api/conversations/${encodeURIComponent(this.conv.id)}/reopen`);
      this.app.announce("Conversation reopened", false);
      await this.refresh();
      this.app.lists.schedule();
    } catch (err) {
      this.app.toast(err.message);
    }
  }

  setupTransferDialog() {
    const dialog = $("#transfer-dialog");
    const agentSel = $("#transfer-agent");
    const queueSel = $("#transfer-queue");
    const sync = () => {
      const toAgent = dialog.querySelector("input[name=target]:checked").value === "agent";
      agentSel.hidden = !toAgent;
      dialog.querySelector("label[for=transfer-agent]").hidden = !toAgent;
      queueSel.hidden = toAgent;
      dialog.querySelector("label[for=transfer-queue]").hidden = toAgent;
    };
    for (const radio of dialog.querySelectorAll("input[name=target]")) radio.addEventListener("change", sync);
    $("#transfer-cancel").addEventListener("click", () => dialog.close());
    dialog.addEventListener("close", () => $("#transfer-button").focus());
    $("#transfer-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      const toAgent = dialog.querySelector("input[name=target]:checked").value === "agent";
      const body = toAgent ? { agent_id: agentSel.value } : { queue_id: queueSel.value };
      const note = $("#transfer-note").value.trim();
      if (note) body.note = note;
      try {
        await post(`/api/conversations/${encodeURIComponent(this.conv.id)}/transfer`, body);
        dialog.close();
        this.app.announce("Conversation transferred", false);
        await this.refresh();
        this.app.lists.schedule();
      } catch (err) {
        $("#transfer-error").textContent = err.message;
      }
    });
    this.syncTransfer = sync;
  }

  openTransfer() {
    if (!this.conv || !this.canAct()) return;
    const agentSel = $("#transfer-agent");
    const queueSel = $("#transfer-queue");
    const agents = [...this.app.agents.values()].filter((a) => a.id !== this.conv.assignee_id);
    agentSel.replaceChildren(
      ...agents.map((a) => h("option", { value: a.id }, `${a.name} (${a.presence.replace("_", " ")})`)),
    );
    queueSel.replaceChildren(
      ...[...this.app.queues.values()].map((q) => h("option", { value: q.id, selected: q.id === this.conv.queue_id }, q.name)),
    );
    $("#transfer-note").value = "";
    $("#transfer-error").textContent = "";
    this.syncTransfer();
    $("#transfer-dialog").showModal();
    agentSel.focus();
  }
}
