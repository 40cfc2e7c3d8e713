// The scoring panel: pick a scorecard, answer each criterion (0..max, yes/no, or n/a), submit.
// The hub computes the weighted score; the panel only shows what the hub answered, and lists
// the conversation's evaluations (each with the form version it was scored with).
import { get, post, query } from "../../inbox/js/api.js";
import { $, clear, fmtTime, h, replace } from "../../inbox/js/dom.js";
import { scoreBadge } from "./search.js";

const TARGET_LABEL = { call: "Call", recording: "Recording", message: "Message", transcript: "Transcript" };

export class Scoring {
  constructor(app) {
    this.app = app;
    this.forms = [];
    this.conversation = null;
    $("#score-form-select").addEventListener("change", () => this.drawCriteria());
    $("#score-form").addEventListener("submit", (e) => this.submit(e));
  }

  async loadForms() {
    if (!this.app.canScore) return;
    this.forms = (await get("/api/qa/forms")).items;
    replace(
      $("#score-form-select"),
      this.forms.length
        ? this.forms.map((f) => h("option", { value: f.id }, `${f.name} (v${f.version})`))
        : h("option", { value: "" }, "No scorecards yet: a supervisor creates them"),
    );
    replace(
      $("#score-agent"),
      [...this.app.agents.values()].map((a) => h("option", { value: a.id }, a.name)),
    );
    this.drawCriteria();
  }

  get form() {
    return this.forms.find((f) => f.id === $("#score-form-select").value) || null;
  }

  drawCriteria() {
    const box = clear($("#criteria"));
    const form = this.form;
    if (!form) return;
    for (const c of form.criteria) {
      const name = `crit-${c.key}`;
      const values =
        c.kind === "yes_no"
          ? [["yes", "Yes"], ["no", "No"]]
          : Array.from({ length: c.max + 1 }, (_, i) => [String(i), String(i)]);
      if (c.na_allowed) values.push(["na", "N/A"]);
      const descId = `${name}-desc`;
      box.append(
        h(
          "fieldset",
          { "data-key": c.key, "aria-describedby": c.description ? descId : null },
          h("legend", {}, `${c.label} `, h("span", { class: "muted" }, `· weight ${c.weight}`)),
          c.description ? h("p", { class: "desc", id: descId }, c.description) : null,
          h(
            "div",
            { class: "choices" },
            values.map(([value, label]) =>
              h("label", {}, h("input", { type: "radio", name, value, "data-testid": `${name}-${value}` }), label),
            ),
          ),
        ),
      );
    }
  }

  async setConversation(conv, interactions, hitId) {
    this.conversation = conv;
    const panel = $("#score-panel");
    panel.hidden = !this.app.canScore;
    if (!this.app.canScore) return;
    const scorable = interactions.filter((ix) => ix.kind !== "note" && ix.actor && ix.kind in TARGET_LABEL);
    replace(
      $("#score-target"),
      h("option", { value: "" }, "The whole conversation"),
      scorable.map((ix) =>
        h(
          "option",
          { value: ix.id, selected: ix.id === hitId },
          `${TARGET_LABEL[ix.kind]} · ${ix.direction} · ${fmtTime(ix.created_at)}`,
        ),
      ),
    );
    if (conv.assignee_id) $("#score-agent").value = conv.assignee_id;
    $("#score-result").textContent = "";
    $("#score-error").textContent = "";
    await this.loadEvaluations();
  }

  answers() {
    const out = {};
    const missing = [];
    for (const set of document.querySelectorAll("#criteria fieldset")) {
      const checked = set.querySelector("input:checked");
      if (!checked) missing.push(set.querySelector("legend").firstChild.textContent.trim());
      else out[set.dataset.key] = /^\d+$/.test(checked.value) ? Number(checked.value) : checked.value;
    }
    return { out, missing };
  }

  async submit(event) {
    event.preventDefault();
    const error = $("#score-error");
    error.textContent = "";
    const form = this.form;
    if (!form || !this.conversation) {
      error.textContent = "Open a conversation and pick a scorecard first.";
      return;
    }
    const { out, missing } = this.answers();
    if (missing.length) {
      error.textContent = `Answer every criterion (missing: ${missing.join(", ")}).`;
      const first = document.querySelector(`#criteria fieldset:not(:has(input:checked)) input`);
      if (first) first.focus();
      return;
    }
    $("#score-submit").disabled = true;
    try {
      const ev = await post("/api/qa/evaluations", {
        form_id: form.id,
        conversation_id: this.conversation.id,
        interaction_id: $("#score-target").value || null,
        agent_id: $("#score-agent").value || null,
        answers: out,
        comment: $("#score-comment").value.trim(),
      });
      $("#score-result").textContent = `Scored ${ev.score} / 100 for ${this.app.names.agent(ev.agent_id)}`;
      $("#score-comment").value = "";
      for (const input of document.querySelectorAll("#criteria input:checked")) input.checked = false;
      await this.loadEvaluations();
      this.app.trends.invalidate(ev.agent_id);
    } catch (err) {
      error.textContent = (err.data && err.data.field ? `${err.data.field}: ` : "") + (err.message || "Scoring failed.");
    } finally {
      $("#score-submit").disabled = false;
    }
  }

  async loadEvaluations() {
    const list = clear($("#evaluations"));
    const page = await get(`/api/qa/evaluations${query({ conversation: this.conversation.id })}`);
    if (!page.items.length) list.append(h("li", { class: "muted" }, "Not scored yet."));
    for (const ev of page.items) {
      list.append(
        h(
          "li",
          { "data-testid": "evaluation" },
          scoreBadge(ev.score),
          ` ${ev.score} · ${ev.form_name} v${ev.form_version} · ${this.app.names.agent(ev.agent_id)}`,
          h("div", { class: "muted" }, `${ev.evaluator_name || "someone"}, ${fmtTime(ev.created_at)}`),
          ev.comment ? h("div", {}, ev.comment) : null,
        ),
      );
    }
  }
}
