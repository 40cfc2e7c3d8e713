// Phone controls in the contact panel: click-to-call a contact's number (agents with a phone),
// hang up a live call, and for supervisors listen / whisper / barge on a live call.
// Everything goes through the REST API (POST /api/calls, /api/calls/{id}/hangup and
// /api/calls/{id}/monitor); the outcome of a call (answered, busy, no answer) arrives on the
// conversation's timeline like any other item. Before touching the call endpoints the card asks
// GET /api/voice/status (always 200): in a hub without a connected voice line (``make demo``) it
// says "Voice not connected" instead of requesting endpoints that would answer 503.
import { ApiError, api, get, post, put } from "./api.js";
import { h } from "./dom.js";

const MODES = [
  ["listen", "Listen", "Hear the call; nobody hears you"],
  ["whisper", "Whisper", "Only the agent hears you"],
  ["barge", "Barge", "Join the call: everyone hears you"],
];

const ERRORS = {
  no_voice_endpoint: "You have no phone set up (voice endpoint).",
  agent_offline: "Set your presence before calling out.",
  agent_busy: "You are already on a call.",
  no_voice_capacity: "Your profile takes no calls.",
  outbound_not_configured: "No phone line can call out.",
  number_not_of_contact: "That number is not this contact's.",
  voice_not_connected: "The phone system is not reachable.",
  already_monitoring: "Stop your other monitoring first.",
  call_not_connected: "The call is not connected to an agent yet.",
  no_live_call: "The call is over.",
};

function message(err) {
  return (err instanceof ApiError && ERRORS[err.code]) || err.message || "Something went wrong.";
}

const STATUS_TTL_MS = 10000;
let statusCache = null; // { at, promise }

/** Whether this hub runs a connected voice line: { connected, lines: [{ name, connected, outbound }] }. */
export function voiceStatus() {
  const now = Date.now();
  if (!statusCache || now - statusCache.at > STATUS_TTL_MS) {
    statusCache = { at: now, promise: get("/api/voice/status").catch(() => ({ connected: false, lines: [] })) };
  }
  return statusCache.promise;
}

function isSupervisor(me) {
  return me.role === "supervisor" || me.role === "admin";
}

/**
 * Append the phone card to the contact panel. ``app`` is the inbox (toast, announce,
 * openConversation), ``me`` the signed-in user.
 */
export function renderCallControls(panel, { app, me, contact, conversation }) {
  const card = h("section", { class: "card", "aria-labelledby": "phone-card", "data-testid": "call-controls" });
  const status = h("p", { class: "muted", role: "status", "data-testid": "call-status" });
  card.append(h("h3", { id: "phone-card" }, "Phone"));
  const phones = ((contact && contact.addresses) || []).filter((a) => a.kind === "phone");
  if (me.agent_id && phones.length) {
    card.append(
      h(
        "ul",
        { class: "addresses" },
        phones.map((a) =>
          h(
            "li",
            {},
            h(
              "button",
              {
                type: "button",
                class: "primary",
                "data-testid": "click-to-call",
                "aria-label": `Call ${a.value}`,
                onclick: (event) => dial(event.currentTarget, app, contact, a.value, status),
              },
              "Call",
            ),
            " ",
            a.value,
          ),
        ),
      ),
    );
  }
  if (conversation && conversation.channel === "voice" && conversation.status !== "resolved") {
    const live = h("div", { class: "call-live" });
    card.append(live);
    refreshLive(live, { app, me, conversation, status }).catch(() => {});
  }
  if (card.children.length === 1) return; // nothing to offer here
  card.append(status);
  panel.append(card);
  voiceStatus().then((voice) => {
    const canDial = voice.lines.some((l) => l.connected && l.outbound);
    for (const b of card.querySelectorAll('[data-testid="click-to-call"]')) {
      b.disabled = !canDial;
      if (!canDial) b.title = voice.connected ? "No phone line can call out" : "Voice not connected";
    }
    if (!voice.connected) {
      status.textContent = "Voice not connected";
      status.dataset.voice = "offline";
    }
  });
}

async function dial(button, app, contact, number, status) {
  button.disabled = true;
  status.textContent = `Calling ${number}: your phone rings first…`;
  try {
    const out = await post("/api/calls", { number, contact_id: contact.id });
    app.announce(`Calling ${number}`, false);
    await app.openConversation(out.conversation_id, true);
  } catch (err) {
    status.textContent = message(err);
    app.toast(message(err));
  } finally {
    button.disabled = false;
  }
}

async function refreshLive(box, ctx) {
  const { me, conversation } = ctx;
  if (!(await voiceStatus()).connected) {
    box.replaceChildren(); // the card's status line says "Voice not connected"
    return;
  }
  let call;
  try {
    call = await get(`/api/calls/${encodeURIComponent(conversation.id)}`);
  } catch {
    box.replaceChildren();
    return; // no live call (or no voice line here)
  }
  const rows = [h("p", { "data-testid": "call-state" }, `Call: ${call.state.replace("_", " ")}`)];
  const mine = me.agent_id && conversation.assignee_id === me.agent_id;
  if (mine || isSupervisor(me)) {
    rows.push(
      h(
        "button",
        { type: "button", "data-testid": "call-hangup", onclick: () => act(ctx, box, () => post(`/api/calls/${conversation.id}/hangup`)) },
        "Hang up",
      ),
    );
  }
  if (isSupervisor(me) && call.state === "connected") rows.push(await monitorControls(ctx, box));
  box.replaceChildren(...rows);
}

async function monitorControls(ctx, box) {
  const url = `/api/calls/${encodeURIComponent(ctx.conversation.id)}/monitor`;
  let current = null;
  try {
    current = await get(url);
  } catch {
    current = null; // 404: not monitoring this call
  }
  const group = h("div", { role: "group", "aria-label": "Monitor this call", "data-testid": "monitor" });
  for (const [mode, label, hint] of MODES) {
    const active = current && current.mode === mode;
    group.append(
      h(
        "button",
        {
          type: "button",
          title: hint,
          "aria-pressed": active ? "true" : "false",
          "data-testid": `monitor-${mode}`,
          onclick: () =>
            act(ctx, box, () => (current ? put(url, { mode }) : post(url, { mode })), current ? "" : "Your phone rings: pick it up…"),
        },
        label,
      ),
    );
  }
  if (current) {
    group.append(
      h("button", { type: "button", "data-testid": "monitor-stop", onclick: () => act(ctx, box, () => api("DELETE", url)) }, "Stop"),
    );
  }
  return group;
}

async function act(ctx, box, request, pending = "") {
  for (const b of box.querySelectorAll("button")) b.disabled = true;
  if (pending) ctx.status.textContent = pending;
  try {
    await request();
    ctx.status.textContent = "";
  } catch (err) {
    ctx.status.textContent = message(err);
    ctx.app.toast(message(err));
  }
  await refreshLive(box, ctx);
}
