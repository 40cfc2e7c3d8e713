// The QA page: login, the two views (search & review, agent trends) and shared lookups.
// Built like the inbox (plain modules, no framework) and reusing its REST and DOM helpers.
import { ApiError, get, post, setUnauthorizedHandler } from "../../inbox/js/api.js";
import { $, h, isTyping, replace } from "../../inbox/js/dom.js";
import { Review } from "./review.js";
import { Scoring } from "./scoring.js";
import { Search } from "./search.js";
import { Trends } from "./trends.js";

class QaApp {
  constructor() {
    this.me = null;
    this.agents = new Map();
    this.queues = new Map();
    this.names = {
      agent: (id) => (id && this.agents.get(id) ? this.agents.get(id).name : id ? "an agent" : ""),
      user: () => "",
      queue: (id) => (id && this.queues.get(id) ? this.queues.get(id).name : id || ""),
    };
    this.scoring = new Scoring(this);
    this.review = new Review(this);
    this.search = new Search(this);
    this.trends = new Trends(this);
    $("#login-form").addEventListener("submit", (e) => this.login(e));
    $("#logout-button").addEventListener("click", () => this.logout());
    $("#tab-search").addEventListener("click", () => this.show("search"));
    $("#tab-trends").addEventListener("click", () => this.show("trends"));
    $(".qa-tabs").addEventListener("keydown", (e) => this.tabKeys(e));
    document.addEventListener("keydown", (e) => this.keys(e));
    setUnauthorizedHandler(() => this.showLogin("Your session ended. Please sign in again."));
  }

  async boot() {
    try {
      this.me = await get("/api/auth/me");
    } catch (err) {
      this.showLogin(err instanceof ApiError && err.status === 401 ? "" : "The hub is not reachable.");
      return;
    }
    await this.start();
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
    $("#login-error").textContent = "";
    if (!email || !password) {
      $("#login-error").textContent = "Enter your email and password.";
      return;
    }
    try {
      this.me = (await post("/api/auth/login", { email, password })).user;
      $("#login-password").value = "";
      await this.start();
    } catch (err) {
      $("#login-error").textContent =
        err.code === "invalid_credentials" ? "Wrong email or password." : err.message || "Sign-in failed.";
    }
  }

  async logout() {
    try {
      await post("/api/auth/logout");
    } catch {
      /* signing out locally anyway */
    }
    this.showLogin();
  }

  get canScore() {
    return this.me && this.me.role !== "agent";
  }

  async start() {
    $("#login-view").hidden = true;
    $("#app-view").hidden = false;
    $("#me-name").textContent = this.me.name;
    $("#me-role").textContent = this.me.role;
    const [agents, queues] = await Promise.all([get("/api/agents"), get("/api/queues")]);
    this.agents = new Map(agents.items.map((a) => [a.id, a]));
    this.queues = new Map(queues.items.map((q) => [q.id, q]));
    const agentOptions = [...this.agents.values()].map((a) => h("option", { value: a.id }, a.name));
    replace($("#f-agent"), h("option", { value: "" }, "All"), agentOptions);
    replace(
      $("#f-queue"),
      h("option", { value: "" }, "All"),
      [...this.queues.values()].map((q) => h("option", { value: q.id }, q.name)),
    );
    await this.scoring.loadForms();
    this.trends.setup();
    this.show("search");
    $("#q").focus();
  }

  show(view) {
    const search = view === "search";
    $("#search-view").hidden = !search;
    $("#trends-view").hidden = search;
    for (const [tab, on] of [["#tab-search", search], ["#tab-trends", !search]]) {
      $(tab).setAttribute("aria-selected", String(on));
      $(tab).tabIndex = on ? 0 : -1;
    }
    if (!search) this.trends.refresh();
  }

  tabKeys(event) {
    if (event.key !== "ArrowRight" && event.key !== "ArrowLeft") return;
    const next = $("#tab-search").getAttribute("aria-selected") === "true" ? "trends" : "search";
    this.show(next);
    $(`#tab-${next}`).focus();
  }

  keys(event) {
    if (event.key === "/" && !isTyping(event) && !$("#app-view").hidden) {
      event.preventDefault();
      this.show("search");
      $("#q").focus();
    }
  }

  announce(text) {
    $("#announcer").textContent = text;
  }
}

// module scripts run after the document is parsed: the DOM is there
new QaApp().boot();
