// The agent inbox: login, presence, offers, lists, the open conversation, live updates.
// State comes from the REST API; every change afterwards is pushed over the /agent socket and
// triggers a targeted re-read. On every (re)connect the page re-reads everything, so it comes
// back by itself after a network drop or a hub restart.
import { ApiError, get, post, put, setUnauthorizedHandler } from "./api.js";
import { ConversationView } from "./conversation.js";
import { $, contactLabel, h, isTyping } from "./dom.js";
import { Lists } from "./lists.js";
import { Live } from "./live.js";
import { OfferCard } from "./offer.js";

class InboxApp {
  constructor() {
    this.me = null;
    this.agents = new Map();
    this.userNames = new Map();
    this.queues = new Map();
    this.contacts = new Map();
    this.live = null;
    this.racing = new Set(); // what each API read in flight has missed (see snapshot())
    this.names = {
      agent: (id) => (id && this.agents.get(id) ? this.agents.get(id).name : id ? "an agent" : ""),
      user: (id) => (id && this.userNames.get(id)) || "",
      queue: (id) => (id && this.queues.get(id) ? this.queues.get(id).name : id ? "another queue" : ""),
    };
    this.lists = new Lists(this);
    this.view = new ConversationView(this);
    this.offers = new OfferCard($("#offer-slot"), {
      onAccept: (offer) => this.accept(offer),
      onDecline: (offer) => this.decline(offer),
      queueName: (id) => this.names.queue(id),
      queueTtl: (id) => (this.queues.get(id) ? this.queues.get(id).offer_ttl_s : null),
      announce: (text, urgent) => this.announce(text, urgent),
    });
    this.bindChrome();
    setUnauthorizedHandler(() => {
      if (this.live) this.signedOut("Your session ended. Please sign in again.");
    });
  }

  // ---- boot, login, logout -----------------------------------------------------------

  async boot() {
    try {
      this.me = await get("/api/auth/me");
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) return this.showLogin();
      this.showLogin("The hub is not reachable. Try again in a moment.");
      return;
    }
    this.start();
  }

  showLogin(message) {
    $("#app-view").hidden = true;
    $("#login-view").hidden = false;
    $("#login-error").textContent = message || "";
    $("#login-email").focus();
  }

  async login(event) {
    event.preventDefault();
    const email = $("#login-email").value.trim();
    const password = $("#login-password").value;
    const error = $("#login-error");
    error.textContent = "";
    if (!email || !password) {
      error.textContent = "Enter your email and password.";
      return;
    }
    try {
      const out = await post("/api/auth/login", { email, password });
      this.me = out.user;
      $("#login-password").value = "";
      this.start();
    } catch (err) {
      error.textContent =
        err.code === "invalid_credentials" ? "Wrong email or password." : err.message || "Sign-in failed.";
    }
  }

  start() {
    $("#login-view").hidden = true;
    $("#app-view").hidden = false;
    $("#me-name").textContent = this.me.name;
    $("#me-role").textContent = this.me.role;
    $("#presence").hidden = !this.me.agent_id;
    $("#tab-all").hidden = this.me.role === "agent";
    $("#tab-mine").hidden = !this.me.agent_id; // QA and admins hold no work of their own
    if (!this.me.agent_id) this.lists.setTab("all");
    this.live = new Live({
      onEvent: (name, data) => this.onEvent(name, data),
      onConnect: () => this.onConnect(),
      onDisconnect: () => this.setConn("down"),
      onRefused: () => this.signedOut("Your session ended. Please sign in again."),
    });
    this.live.start();
    this.refreshAll().catch((err) => this.toast(err.message));
    $("#conv-list").focus();
  }

  async logout() {
    try {
      await post("/api/auth/logout");
    } catch {
      /* signing out locally anyway */
    }
    this.signedOut();
  }

  signedOut(message) {
    if (this.live) this.live.stop();
    this.live = null;
    this.offers.hide();
    this.view.close();
    this.showLogin(message);
  }

  // ---- state ---------------------------------------------------------------------------

  async refreshAll() {
    await this.snapshot(
      () => get("/api/agents"),
      (agents) => {
        this.agents = new Map(agents.items.map((a) => [a.id, a]));
        this.userNames = new Map(agents.items.map((a) => [a.user_id, a.name]));
        this.userNames.set(this.me.id, this.me.name);
        this.renderPresence();
      },
    );
    await this.lists.refresh();
    if (this.me.agent_id) {
      await this.snapshot(
        () => get("/api/offers"),
        (offers) => {
          if (offers.items.length) this.offers.show(offers.items[0]);
          else this.offers.hide();
        },
      );
    }
    if (this.view.id) await this.view.refresh();
  }

  /**
   * Read state with `read` and draw it with `draw`, then apply again every live event that came
   * in while the read was in flight. Why: a GET sent before an event may be answered after it,
   * and drawing that older answer undid the event: an offer card shown by `offer` was removed by
   * the reconnect's stale offer list, a message pushed during a timeline re-read vanished, an
   * agent who had just gone ready was drawn not ready. Every handler is idempotent, and replayed
   * events announce nothing (they were announced when they came). Returns what `draw` returned.
   */
  async snapshot(read, draw) {
    const missed = [];
    this.racing.add(missed);
    let data;
    try {
      data = await read();
    } finally {
      this.racing.delete(missed);
    }
    const drawn = draw(data);
    for (const [name, event] of missed) this.onEvent(name, event, true);
    return drawn;
  }

  async contact(id, fresh = false) {
    if (!id) return null;
    if (!fresh && this.contacts.has(id)) return this.contacts.get(id);
    try {
      const c = await get(`/api/contacts/${encodeURIComponent(id)}`);
      this.contacts.set(id, c);
      return c;
    } catch {
      return null;
    }
  }

  async openConversation(id, focus = false) {
    try {
      await this.view.open(id, { focus });
    } catch (err) {
      this.toast(err.message);
    }
  }

  // ---- presence and offers ---------------------------------------------------------------

  renderPresence() {
    const mine = this.me.agent_id && this.agents.get(this.me.agent_id);
    if (!mine) return;
    const select = $("#presence-select");
    select.value = mine.presence;
    $("#presence-reason").hidden = mine.presence !== "not_ready";
    if (mine.presence === "not_ready" && mine.presence_reason) {
      const reason = $("#presence-reason");
      if (![...reason.options].some((o) => o.value === mine.presence_reason)) {
        reason.append(h("option", { value: mine.presence_reason }, mine.presence_reason));
      }
      reason.value = mine.presence_reason;
    }
    $("#presence-dot").dataset.presence = mine.presence;
    $("#presence").dataset.presence = mine.presence;
  }

  /** Presence changes go out one at a time, in order, so the last choice is what the hub keeps. */
  setPresence(presence) {
    const body = { presence };
    if (presence === "not_ready") body.reason = $("#presence-reason").value;
    this.presenceChain = (this.presenceChain || Promise.resolve()).then(() => this.putPresence(body));
    return this.presenceChain;
  }

  async putPresence(body) {
    const { presence } = body;
    try {
      const agent = await put("/api/agents/me/presence", body);
      this.agents.set(agent.id, agent);
      this.renderPresence();
      this.announce(`You are ${presence.replace("_", " ")}`, false);
    } catch (err) {
      this.toast(err.message);
      this.renderPresence();
    }
  }

  async accept(offer) {
    try {
      await post(`/api/offers/${encodeURIComponent(offer.offer_id)}/accept`);
      this.offers.hide(offer.offer_id);
      this.lists.setTab("mine");
      await this.openConversation(offer.conversation_id, true);
      this.lists.schedule();
    } catch (err) {
      this.offers.hide(offer.offer_id, "The offer is no longer available");
      this.toast(err.code === "offer_not_live" ? "Too late: the offer expired or was withdrawn." : err.message);
    }
  }

  async decline(offer) {
    this.offers.hide(offer.offer_id, "Offer declined");
    try {
      await post(`/api/offers/${encodeURIComponent(offer.offer_id)}/decline`);
    } catch {
      /* already gone: nothing to do */
    }
  }

  // ---- live events ---------------------------------------------------------------------

  onConnect() {
    this.setConn("up");
    this.refreshAll().catch((err) => this.toast(err.message));
  }

  onEvent(name, data, replayed = false) {
    if (!replayed) for (const missed of this.racing) missed.push([name, data]);
    switch (name) {
      case "offer":
        this.offers.show(data);
        break;
      case "offer.revoked":
        this.offers.hide(data.offer_id, replayed ? undefined : "The offer expired and went to another agent");
        break;
      case "interaction.created":
        if (this.view.add(data) && data.direction === "inbound" && !replayed) {
          this.announce(`New message from ${contactLabel(this.view.contact)}`, false);
        }
        this.lists.touch(data);
        break;
      case "delivery.status":
        if (data.conversation_id === this.view.id) this.view.setDelivery(data);
        break;
      case "agent.presence": {
        const agent = this.agents.get(data.id);
        if (agent) Object.assign(agent, { presence: data.presence, presence_reason: data.presence_reason });
        if (data.id === this.me.agent_id) {
          this.renderPresence();
          if (data.presence === "not_ready" && data.reason && !replayed) this.announce("You were set to not ready after a missed offer", true);
        }
        break;
      }
      case "queues.snapshot":
        this.lists.renderQueueStats(data.queues);
        break;
      default:
        if (name.startsWith("conversation.")) {
          const mine = name === "conversation.assigned" && data.assignee_id === this.me.agent_id;
          if (mine && data.id !== this.view.id && !replayed) {
            this.announce("A conversation was assigned to you", true);
          }
          if (data.id === this.view.id) this.view.refresh().catch(() => {});
          this.lists.schedule();
        }
    }
  }

  setConn(state) {
    const el = $("#conn");
    el.dataset.state = state;
    el.textContent = state === "up" ? "Live" : "Reconnecting…";
  }

  // ---- feedback ------------------------------------------------------------------------

  announce(text, urgent) {
    const region = urgent ? $("#alerter") : $("#announcer");
    region.textContent = "";
    requestAnimationFrame(() => {
      region.textContent = text;
    });
  }

  toast(text) {
    if (!text) return;
    const t = h("div", { class: "toast", role: "alert" }, text);
    document.body.append(t);
    setTimeout(() => t.remove(), 5000);
  }

  // ---- chrome: buttons, filters, shortcuts ------------------------------------------------

  bindChrome() {
    $("#login-form").addEventListener("submit", (e) => this.login(e));
    $("#logout-button").addEventListener("click", () => this.logout());
    $("#help-button").addEventListener("click", () => $("#help-dialog").showModal());
    $("#presence-select").addEventListener("change", (e) => {
      $("#presence-reason").hidden = e.target.value !== "not_ready";
      this.setPresence(e.target.value);
    });
    $("#presence-reason").addEventListener("change", () => this.setPresence("not_ready"));
    for (const b of document.querySelectorAll(".tabs [role=tab]")) {
      b.addEventListener("click", () => this.lists.setTab(b.dataset.tab));
    }
    for (const tablist of document.querySelectorAll("[role=tablist]")) {
      tablist.addEventListener("keydown", (e) => arrowTabs(e, tablist));
    }
    for (const id of ["#filter-status", "#filter-channel", "#filter-queue"]) {
      $(id).addEventListener("change", () => this.lists.refresh().catch((err) => this.toast(err.message)));
    }
    document.addEventListener("keydown", (e) => this.shortcut(e));
  }

  shortcut(e) {
    if (!this.me || $("#app-view").hidden) return;
    const offer = this.offers.current;
    if (e.altKey && !e.ctrlKey && !e.metaKey) {
      const key = e.code.replace(/^Key/, "").toLowerCase(); // Alt+A types "å" on a Mac: use the key's position
      if (key === "a" && offer) return stop(e, () => this.accept(offer));
      if (key === "d" && offer) return stop(e, () => this.decline(offer));
      if (key === "r" && this.me.agent_id) {
        const mine = this.agents.get(this.me.agent_id);
        return stop(e, () => this.setPresence(mine && mine.presence === "ready" ? "not_ready" : "ready"));
      }
      return undefined;
    }
    if (e.ctrlKey || e.metaKey || isTyping(e) || document.querySelector("dialog[open]")) return undefined;
    switch (e.key) {
      case "?":
        return stop(e, () => $("#help-dialog").showModal());
      case "j":
      case "k":
        return stop(e, () => this.lists.step(e.key === "j" ? 1 : -1));
      case "1":
      case "2":
      case "3":
        return stop(e, () => this.lists.setTab(["mine", "queue", "all"][Number(e.key) - 1]));
      case "r":
        return this.view.id ? stop(e, () => this.view.setMode("reply", true)) : undefined;
      case "n":
        return this.view.id ? stop(e, () => this.view.setMode("note", true)) : undefined;
      case "t":
        return this.view.id ? stop(e, () => this.view.openTransfer()) : undefined;
      case "e":
        if (!this.view.id) return undefined;
        return stop(e, () => (this.view.conv.status === "resolved" ? this.view.reopen() : this.view.resolve()));
      default:
        return undefined;
    }
  }
}

/** The ARIA tabs pattern: Left/Right move between tabs (and activate them). */
function arrowTabs(event, tablist) {
  if (event.key !== "ArrowRight" && event.key !== "ArrowLeft") return;
  const tabs = [...tablist.querySelectorAll("[role=tab]")].filter((t) => !t.hidden && !t.disabled);
  const at = tabs.indexOf(document.activeElement);
  if (at < 0) return;
  event.preventDefault();
  const next = tabs[(at + (event.key === "ArrowRight" ? 1 : tabs.length - 1)) % tabs.length];
  next.focus();
  next.click();
}

function stop(event, fn) {
  event.preventDefault();
  fn();
}

new InboxApp().boot();
