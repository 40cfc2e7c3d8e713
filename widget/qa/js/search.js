// The search column: query box, facet filters (with counts from the hub), highlighted results,
// paging by cursor, and keyboard movement through the results.
import { get, query } from "../../inbox/js/api.js";
import { $, CHANNEL_LABEL, clear, fmtTime, h } from "../../inbox/js/dom.js";
import { renderMarks } from "./marks.js";

const FACETS = "channel,queue,agent,direction,kind";

export function scoreBadge(score) {
  if (score === null || score === undefined) return null;
  const tone = score < 60 ? "score-low" : score < 80 ? "score-mid" : "score-high";
  return h("span", { class: `badge ${tone}`, "data-testid": "hit-score" }, `QA ${Number(score).toFixed(0)}`);
}

function dayIso(value, endOfDay) {
  if (!value) return undefined;
  const d = new Date(`${value}T00:00:00Z`);
  if (endOfDay) d.setUTCDate(d.getUTCDate() + 1);
  return d.toISOString();
}

export class Search {
  constructor(app) {
    this.app = app;
    this.cursor = null;
    this.params = null;
    this.seq = 0; // only the latest search may draw: an older, slower answer is dropped
    $("#search-form").addEventListener("submit", (e) => {
      e.preventDefault();
      this.run();
    });
    for (const el of document.querySelectorAll(".facets select, .facets input")) {
      el.addEventListener("change", () => this.run());
    }
    $("#more-button").addEventListener("click", () => this.run(true));
    $("#results").addEventListener("keydown", (e) => this.move(e));
  }

  currentParams() {
    const v = (sel) => $(sel).value.trim();
    return {
      text: v("#q"),
      channel: v("#f-channel"),
      queue: v("#f-queue"),
      agent: v("#f-agent"),
      direction: v("#f-direction"),
      has_recording: $("#f-recording").checked ? "true" : "",
      qa_min: v("#f-qa-min"),
      qa_max: v("#f-qa-max"),
      from: dayIso(v("#f-from"), false),
      to: dayIso(v("#f-to"), true),
      sort: v("#f-sort"),
      facets: FACETS,
      limit: 25,
    };
  }

  async run(more = false) {
    const list = $("#results");
    $("#search-error").textContent = "";
    if (!more) {
      this.params = this.currentParams();
      this.cursor = null;
    }
    const seq = ++this.seq;
    let body;
    try {
      body = await get(`/api/search${query({ ...this.params, cursor: more ? this.cursor : "" })}`);
    } catch (err) {
      if (seq === this.seq) $("#search-error").textContent = err.message || "Search failed.";
      return;
    }
    if (seq !== this.seq) return;
    if (!more) clear(list);
    for (const hit of body.hits) list.append(this.item(hit));
    this.cursor = body.next_cursor;
    $("#more-button").hidden = !this.cursor;
    const total = `${body.total}${body.total_exact ? "" : "+"}`;
    $("#result-summary").textContent = body.total ? `${total} result${body.total === 1 ? "" : "s"}` : "No results";
    if (!more) this.showFacetCounts(body.facets || {});
  }

  /** Counts next to each option ("Email (3)") so the filters show where the hits are. */
  showFacetCounts(facets) {
    for (const select of document.querySelectorAll(".facets select[data-facet]")) {
      const counts = facets[select.dataset.facet] || {};
      for (const option of select.options) {
        if (!option.value) continue;
        option.dataset.label = option.dataset.label || option.textContent;
        const n = counts[option.value];
        option.textContent = n ? `${option.dataset.label} (${n})` : option.dataset.label;
      }
    }
  }

  item(hit) {
    const marks = hit.highlights || {};
    const agent = hit.agent ? this.app.names.agent(hit.agent) : "";
    const button = h(
      "button",
      {
        type: "button",
        class: "hit",
        "data-testid": "hit",
        "data-id": hit.id,
        onclick: () => this.open(hit, button),
      },
      h(
        "div",
        { class: "hit-head" },
        h("span", { class: "hit-kind" }, hit.kind),
        h("span", {}, CHANNEL_LABEL[hit.channel] || hit.channel),
        h("span", {}, hit.direction),
        agent ? h("span", {}, `· ${agent}`) : null,
        hit.has_recording ? h("span", { class: "badge", title: "Has a recording" }, "♪ recording") : null,
        scoreBadge(hit.qa_score),
        h("span", { class: "spacer" }),
        h("time", { datetime: hit.at }, fmtTime(hit.at)),
      ),
      marks.subject || hit.subject
        ? h("div", { class: "hit-subject" }, marks.subject ? renderMarks(marks.subject) : hit.subject)
        : null,
      h("div", { class: "hit-text", "data-testid": "hit-text" }, marks.text ? renderMarks(marks.text) : hit.text),
    );
    return h("li", {}, button);
  }

  open(hit, button) {
    for (const b of document.querySelectorAll("#results .hit")) b.removeAttribute("aria-current");
    button.setAttribute("aria-current", "true");
    this.app.review.open(hit.conversation_id, hit.id);
  }

  move(event) {
    if (event.key !== "ArrowDown" && event.key !== "ArrowUp") return;
    const buttons = [...document.querySelectorAll("#results .hit")];
    const at = buttons.indexOf(document.activeElement);
    const next = buttons[at + (event.key === "ArrowDown" ? 1 : -1)];
    if (next) {
      event.preventDefault();
      next.focus();
    }
  }
}
