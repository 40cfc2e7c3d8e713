// The conversation lists (mine, the queue, everything for supervisors) with their filters,
// and the queue depth panel. Lists are re-read when the hub pushes a conversation.* event;
// new messages on a listed conversation only touch it in place.
import { get, query } from "./api.js";
import { $, CHANNEL_LABEL, STATUS_LABEL, contactLabel, fmtDuration, fmtTime, h } from "./dom.js";

export class Lists {
  constructor(app) {
    this.app = app;
    this.tab = "mine";
    this.lists = { mine: [], queue: [], all: [] };
    this.readSeq = 0;
  }

  setQueues(data) {
    this.app.queues = new Map(data.items.map((q) => [q.id, q]));
    const select = $("#filter-queue");
    const chosen = select.value;
    select.replaceChildren(
      h("option", { value: "" }, "All"),
      ...data.items.map((q) => h("option", { value: q.id, selected: q.id === chosen }, q.name)),
    );
    this.renderQueueStats(
      Object.fromEntries(data.items.map((q) => [q.id, { ...(q.live || {}), depth: q.depth, oldest_wait_s: q.oldest_wait_s }])),
    );
  }

  renderQueueStats(byQueue) {
    const rows = Object.entries(byQueue || {}).filter(([id]) => this.app.queues.has(id));
    $("#queue-stats").replaceChildren(
      h("h2", {}, "Queues"),
      h(
        "ul",
        {},
        rows.map(([id, s]) =>
          h(
            "li",
            { "data-queue": id },
            h("span", { class: "qname" }, this.app.queues.get(id).name),
            h("span", { class: "qdepth", title: "waiting" }, String(s.depth ?? 0)),
            h(
              "span",
              { class: "muted" },
              [
                s.oldest_wait_s ? `oldest ${fmtDuration(s.oldest_wait_s)}` : "",
                s.agents_ready !== undefined ? `${s.agents_ready} ready` : "",
              ]
                .filter(Boolean)
                .join(" · "),
            ),
          ),
        ),
      ),
    );
  }

  listQuery(tab) {
    const status = $("#filter-status").value;
    return {
      assignee: tab === "mine" ? "me" : tab === "queue" ? "none" : "",
      status: status === "open" ? "" : status,
      channel: $("#filter-channel").value,
      queue: $("#filter-queue").value,
      limit: 100,
    };
  }

  async fetchList(tab) {
    if (tab === "mine" && !this.app.me.agent_id) return [];
    const page = await get(`/api/conversations${query(this.listQuery(tab))}`);
    const open = $("#filter-status").value === "open";
    return page.items.filter((c) => !open || c.status !== "resolved");
  }

  async refresh() {
    const tabs = this.app.me.role === "agent" ? ["mine", "queue"] : ["mine", "queue", "all"];
    const seq = ++this.readSeq; // answers can come back out of order: only the newest is drawn
    const results = await this.app.snapshot(
      () => Promise.all([get("/api/queues"), ...tabs.map((t) => this.fetchList(t))]),
      ([queues, ...lists]) => {
        if (seq !== this.readSeq) return [];
        this.setQueues(queues);
        tabs.forEach((t, i) => {
          this.lists[t] = lists[i];
        });
        $("#count-mine").textContent = this.lists.mine.length ? String(this.lists.mine.length) : "";
        $("#count-queue").textContent = this.lists.queue.length ? String(this.lists.queue.length) : "";
        this.render();
        return lists;
      },
    );
    const missing = [...new Set(results.flat().map((c) => c.contact_id))].filter((id) => !this.app.contacts.has(id));
    if (missing.length) {
      await Promise.all(missing.slice(0, 50).map((id) => this.app.contact(id)));
      this.render();
    }
  }

  /** Debounced: a burst of pushed events becomes one re-read. */
  schedule() {
    clearTimeout(this.listTimer);
    this.listTimer = setTimeout(() => this.refresh().catch(() => {}), 250);
  }

  render() {
    const list = $("#conv-list");
    const focused = list.contains(document.activeElement) ? document.activeElement.closest("li")?.dataset.id : null;
    this.draw(list);
    if (focused) list.querySelector(`li[data-id="${CSS.escape(focused)}"] button`)?.focus();
  }

  draw(list) {
    const items = this.lists[this.tab] || [];
    list.setAttribute("aria-labelledby", `tab-${this.tab}`);
    if (!items.length) {
      list.replaceChildren(h("li", { class: "list-empty muted" }, this.tab === "mine" ? "Nothing assigned to you." : "The queue is empty."));
      return;
    }
    list.replaceChildren(
      ...items.map((c) => {
        const contact = this.app.contacts.get(c.contact_id);
        const name = contact ? contactLabel(contact) : "…";
        return h(
          "li",
          { "data-id": c.id, "data-status": c.status, "data-channel": c.channel },
          h(
            "button",
            {
              type: "button",
              class: "conv-item",
              "aria-current": this.app.view.id === c.id ? "true" : "false",
              onclick: () => this.app.openConversation(c.id, true),
            },
            h("span", { class: `chip ch-${c.channel}` }, CHANNEL_LABEL[c.channel] || c.channel),
            h("span", { class: "conv-name" }, name),
            h("span", { class: "conv-time muted" }, fmtTime(c.last_message_at)),
            h("span", { class: "conv-subject" }, c.subject || this.app.names.queue(c.queue_id) || "No subject"),
            h("span", { class: `status status-sm`, "data-status": c.status }, STATUS_LABEL[c.status] || c.status),
          ),
        );
      }),
    );
  }

  /** New activity on a listed conversation: update it in place (no re-read; new work comes
   * with its own conversation.* event). */
  touch(ix) {
    let seen = false;
    for (const list of Object.values(this.lists)) {
      const c = list.find((x) => x.id === ix.conversation_id);
      if (c && ix.kind === "message") {
        c.last_message_at = ix.created_at;
        seen = true;
      }
    }
    if (seen) this.render();
  }

  markSelected(id) {
    for (const b of document.querySelectorAll("#conv-list .conv-item")) {
      b.setAttribute("aria-current", String(b.parentElement.dataset.id === id));
    }
  }

  setTab(tab) {
    if ($(`#tab-${tab}`).hidden) return;
    this.tab = tab;
    for (const b of document.querySelectorAll(".tabs [role=tab]")) {
      b.setAttribute("aria-selected", String(b.dataset.tab === tab));
    }
    this.render();
  }

  /** j / k: open the next / previous conversation of the visible list. */
  step(delta) {
    const items = this.lists[this.tab] || [];
    if (!items.length) return;
    const at = items.findIndex((c) => c.id === this.app.view.id);
    const next = items[Math.min(items.length - 1, Math.max(0, at + delta))];
    this.app.openConversation(next.id).then(() => {
      const b = document.querySelector(`#conv-list li[data-id="${CSS.escape(next.id)}"] button`);
      if (b) b.focus();
    });
  }
}
