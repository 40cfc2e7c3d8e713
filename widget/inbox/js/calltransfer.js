// Transfer a live call from the contact panel: blind (to a ready agent, a queue, or a phone
// number) or attended (consult an agent or a number while the caller is on hold, then complete
// or cancel). Everything goes through POST /api/calls/{id}/transfer[/complete|/cancel]; each
// step also lands on the conversation's timeline.
import { ApiError, get, post } from "./api.js";
import { voiceStatus } from "./callcontrol.js";
import { h } from "./dom.js";

const ERRORS = {
  agent_unavailable: "That agent is not ready for a call.",
  no_voice_endpoint: "That agent has no phone.",
  same_agent: "The call is already theirs.",
  outbound_not_configured: "This line cannot dial outside numbers.",
  target_unavailable: "No answer: the caller is still on hold.",
  consult_pending: "Finish the current consultation first.",
  bad_call_state: "The call cannot be transferred right now.",
  invalid_transfer: "Choose one target.",
  no_live_call: "The call is over.",
};

const TALKING = new Set(["connected", "held", "consulting", "consulted"]);

function message(err) {
  return (err instanceof ApiError && ERRORS[err.code]) || err.message || "Something went wrong.";
}

/** Append the transfer card for a live call the user may control (assignee or supervisor). */
export function renderCallTransfer(panel, { app, me, conversation }) {
  if (!conversation || conversation.channel !== "voice" || conversation.status === "resolved") return;
  const mine = me.agent_id && conversation.assignee_id === me.agent_id;
  if (!mine && me.role !== "supervisor" && me.role !== "admin") return;
  const card = h("section", { class: "card", "aria-labelledby": "transfer-card", "data-testid": "call-transfer", hidden: true });
  const status = h("p", { class: "muted", role: "status", "data-testid": "transfer-status" });
  const body = h("div");
  card.append(h("h3", { id: "transfer-card" }, "Transfer call"), body, status);
  panel.append(card);
  refresh({ app, me, conversation, card, body, status }).catch(() => {});
}

async function refresh(ctx) {
  const { conversation, card, body } = ctx;
  if (!(await voiceStatus()).connected) {
    card.hidden = true; // no voice line here: nothing to transfer (and no 503 to provoke)
    return;
  }
  let call;
  try {
    call = await get(`/api/calls/${encodeURIComponent(conversation.id)}`);
  } catch {
    card.hidden = true;
    return;
  }
  if (call.direction !== "inbound" || !TALKING.has(call.state)) {
    card.hidden = true;
    return;
  }
  card.hidden = false;
  const url = `/api/calls/${encodeURIComponent(conversation.id)}/transfer`;
  if (call.state === "consulted" || call.state === "consulting") {
    body.replaceChildren(
      h("p", { "data-testid": "transfer-consulting" }, call.state === "consulted" ? "Talking to the transfer target; the caller is on hold." : "Ringing the transfer target…"),
      h("button", { type: "button", class: "primary", "data-testid": "transfer-complete", disabled: call.state !== "consulted", onclick: () => act(ctx, () => post(`${url}/complete`), "Transferred.") }, "Complete transfer"),
      " ",
      h("button", { type: "button", "data-testid": "transfer-cancel", onclick: () => act(ctx, () => post(`${url}/cancel`), "Back with the caller.") }, "Cancel"),
    );
    return;
  }
  const [agents, queues] = await Promise.all([get("/api/agents").catch(() => ({ items: [] })), get("/api/queues").catch(() => ({ items: [] }))]);
  const kind = h(
    "select",
    { "aria-label": "Transfer to", "data-testid": "transfer-kind" },
    h("option", { value: "agent" }, "Agent"),
    h("option", { value: "queue" }, "Queue"),
    h("option", { value: "number" }, "Phone number"),
  );
  const agentSel = h(
    "select",
    { "aria-label": "Agent", "data-testid": "transfer-agent" },
    (agents.items || [])
      .filter((a) => a.id !== ctx.conversation.assignee_id)
      .map((a) => h("option", { value: a.id }, `${a.name} (${a.presence})`)),
  );
  const queueSel = h("select", { "aria-label": "Queue", "data-testid": "transfer-queue", hidden: true }, (queues.items || []).map((q) => h("option", { value: q.id }, q.name)));
  const number = h("input", { type: "tel", "aria-label": "Phone number", placeholder: "+1 415 555 0100", maxlength: "40", "data-testid": "transfer-number", hidden: true });
  const consult = h("button", { type: "button", "data-testid": "transfer-consult" }, "Consult first");
  const show = () => {
    agentSel.hidden = kind.value !== "agent";
    queueSel.hidden = kind.value !== "queue";
    number.hidden = kind.value !== "number";
    consult.disabled = kind.value === "queue"; // a queue has nobody to talk to yet
  };
  kind.addEventListener("change", show);
  const target = () =>
    kind.value === "agent" ? { agent_id: agentSel.value } : kind.value === "queue" ? { queue_id: queueSel.value } : { number: number.value.trim() };
  consult.addEventListener("click", () => act(ctx, () => post(url, { mode: "attended", ...target() }), "", "Ringing the target; the caller is on hold…"));
  body.replaceChildren(
    h("div", { class: "row" }, kind, " ", agentSel, queueSel, number),
    h("button", { type: "button", class: "primary", "data-testid": "transfer-blind", onclick: () => act(ctx, () => post(url, { mode: "blind", ...target() }), "Transferred: you are off the call.") }, "Transfer now"),
    " ",
    consult,
  );
  show();
}

async function act(ctx, request, done = "", pending = "") {
  for (const b of ctx.body.querySelectorAll("button")) b.disabled = true;
  ctx.status.textContent = pending;
  try {
    await request();
    ctx.status.textContent = done;
    if (done) ctx.app.announce(done, false);
  } catch (err) {
    ctx.status.textContent = message(err);
    ctx.app.toast(message(err));
  }
  await refresh(ctx);
}
