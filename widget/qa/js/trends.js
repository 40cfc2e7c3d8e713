// Agent score trends: average per day/week/month as an inline SVG line chart (no library),
// the same numbers as a table for screen readers, and the team overview for QA and supervisors.
import { get, query } from "../../inbox/js/api.js";
import { $, clear, h, replace } from "../../inbox/js/dom.js";

const SVG = "http://www.w3.org/2000/svg";
const W = 640;
const H = 220;
const PAD = { left: 36, right: 30, top: 12, bottom: 30 };

function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== null && v !== undefined) el.setAttribute(k, String(v));
  for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

const dayFmt = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric", timeZone: "UTC" });

/** The chart for trend points [{start, average, count}]. */
export function trendChart(points, agentName) {
  const n = points.length;
  const innerW = W - PAD.left - PAD.right;
  const innerH = H - PAD.top - PAD.bottom;
  const x = (i) => PAD.left + (n <= 1 ? innerW / 2 : (i * innerW) / (n - 1));
  const y = (v) => PAD.top + ((100 - v) / 100) * innerH;
  const scored = points.map((p, i) => ({ ...p, i })).filter((p) => p.average !== null);
  const maxCount = Math.max(1, ...points.map((p) => p.count));
  const summary = scored.length
    ? `${scored.length} of ${n} periods scored; latest average ${scored[scored.length - 1].average}`
    : "No evaluations in this range";
  const svg = s(
    "svg",
    { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-labelledby": "trend-svg-title trend-svg-desc", "data-testid": "trend-svg" },
    s("title", { id: "trend-svg-title" }, `QA score trend for ${agentName}`),
    s("desc", { id: "trend-svg-desc" }, summary),
  );
  for (const v of [0, 25, 50, 75, 100]) {
    svg.append(s("line", { class: "grid", x1: PAD.left, x2: W - PAD.right, y1: y(v), y2: y(v) }));
    svg.append(s("text", { class: "axis", x: PAD.left - 6, y: y(v) + 4, "text-anchor": "end" }, v));
  }
  const barW = Math.max(2, Math.min(20, innerW / Math.max(1, n) - 4, PAD.right * 2 - 8));
  const step = Math.max(1, Math.ceil(n / 8));
  points.forEach((p, i) => {
    if (p.count) {
      const bh = (p.count / maxCount) * (innerH * 0.25);
      svg.append(s("rect", { class: "bar", x: x(i) - barW / 2, y: PAD.top + innerH - bh, width: barW, height: bh }));
    }
    if (i % step === 0 || i === n - 1) {
      const anchor = n > 1 && i === n - 1 ? "end" : n > 1 && i === 0 ? "start" : "middle";
      svg.append(s("text", { class: "axis", x: x(i), y: H - 10, "text-anchor": anchor }, dayFmt.format(new Date(p.start))));
    }
  });
  if (scored.length > 1) {
    svg.append(s("polyline", { class: "line", points: scored.map((p) => `${x(p.i)},${y(p.average)}`).join(" ") }));
  }
  for (const p of scored) {
    svg.append(
      s(
        "circle",
        { class: "dot", cx: x(p.i), cy: y(p.average), r: 5, "data-testid": "trend-point", "data-average": p.average, "data-count": p.count },
        s("title", {}, `${dayFmt.format(new Date(p.start))}: ${p.average} (${p.count} evaluation${p.count === 1 ? "" : "s"})`),
      ),
    );
  }
  return svg;
}

export class Trends {
  constructor(app) {
    this.app = app;
    this.seq = 0; // a slower, older answer never overwrites a newer one
    for (const sel of ["#trend-agent", "#trend-bucket", "#trend-span"]) {
      $(sel).addEventListener("change", () => this.refresh());
    }
  }

  setup() {
    const agents = [...this.app.agents.values()];
    const mine = this.app.me.role === "agent";
    replace(
      $("#trend-agent"),
      mine
        ? h("option", { value: "me" }, "Me")
        : agents.map((a) => h("option", { value: a.id }, a.name)),
    );
    $("#team-section").hidden = mine;
  }

  /** After a score: show that agent's trend the next time the view opens (or now). */
  invalidate(agentId) {
    if (agentId && this.app.me.role !== "agent") $("#trend-agent").value = agentId;
    if (!$("#trends-view").hidden) this.refresh();
  }

  range() {
    const weeks = Math.min(104, Math.max(1, Number($("#trend-span").value) || 12));
    const to = new Date(Date.now() + 60_000); // include what was scored a moment ago
    const from = new Date(to.getTime() - weeks * 7 * 86_400_000);
    return { from: from.toISOString(), to: to.toISOString() };
  }

  async refresh() {
    const agent = $("#trend-agent").value;
    if (!agent) return;
    const range = this.range();
    const bucket = $("#trend-bucket").value;
    const seq = ++this.seq;
    let trend;
    try {
      trend = await get(`/api/qa/agents/${encodeURIComponent(agent)}/trend${query({ ...range, bucket })}`);
    } catch (err) {
      if (seq === this.seq) $("#trend-summary").textContent = err.message || "Could not load the trend.";
      return;
    }
    if (seq !== this.seq) return;
    const name = agent === "me" ? "you" : this.app.names.agent(agent);
    $("#trend-summary").textContent =
      trend.count === 0
        ? `No evaluations for ${name} in this range.`
        : `${trend.count} evaluation${trend.count === 1 ? "" : "s"} for ${name}, average ${trend.average} / 100`;
    $("#trend-summary").dataset.count = String(trend.count);
    replace($("#trend-chart"), trendChart(trend.points, name));
    replace(
      $("#trend-table"),
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Period from"), h("th", { class: "num", scope: "col" }, "Average"), h("th", { class: "num", scope: "col" }, "Evaluations"))),
      h(
        "tbody",
        {},
        trend.points.map((p) =>
          h("tr", {}, h("td", {}, p.start.slice(0, 10)), h("td", { class: "num" }, p.average ?? "—"), h("td", { class: "num" }, p.count)),
        ),
      ),
    );
    if (this.app.me.role !== "agent") await this.team(range);
  }

  async team(range) {
    const seq = this.seq;
    const body = await get(`/api/qa/team${query(range)}`);
    if (seq !== this.seq) return;
    const table = clear($("#team-table"));
    table.append(
      h("thead", {}, h("tr", {}, ["Agent", "Average", "Count", "Lowest", "Highest"].map((t, i) => h("th", { scope: "col", class: i ? "num" : null }, t)))),
      h(
        "tbody",
        {},
        body.agents.length
          ? body.agents.map((a) =>
              h(
                "tr",
                { "data-testid": "team-row" },
                h("td", {}, h("button", { type: "button", class: "link", onclick: () => this.pick(a.agent_id) }, a.name)),
                h("td", { class: "num" }, a.average),
                h("td", { class: "num" }, a.count),
                h("td", { class: "num" }, a.min),
                h("td", { class: "num" }, a.max),
              ),
            )
          : h("tr", {}, h("td", { colspan: 5, class: "muted" }, "No evaluations in this range.")),
      ),
    );
  }

  pick(agentId) {
    $("#trend-agent").value = agentId;
    this.refresh();
    $("#trend-agent").focus();
  }
}
