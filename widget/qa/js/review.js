// The review column: one conversation's timeline drawn by the inbox's renderers (email in a
// sandboxed iframe, fax page images, call recordings), with a fuller player on every
// recording: play/pause, ±5 s, a seek slider (the hub serves media with Range, so seeking
// fetches only what is needed) and playback speed 0.5-2x.
import { get } from "../../inbox/js/api.js";
import { $, CHANNEL_LABEL, contactLabel, fmtTime, h, replace } from "../../inbox/js/dom.js";
import { renderInteraction } from "../../inbox/js/timeline.js";
import { attachTranscripts } from "./transcript.js";

const SPEEDS = [0.5, 0.75, 1, 1.25, 1.5, 2];

function clock(seconds) {
  if (!Number.isFinite(seconds)) return "0:00";
  const s = Math.max(0, seconds);
  return `${Math.floor(s / 60)}:${String(Math.floor(s % 60)).padStart(2, "0")}`;
}

/** Controls around a native <audio> element (which keeps its own controls as a fallback). */
export function enhancePlayer(audio) {
  const play = h("button", { type: "button", "data-testid": "play", "aria-label": "Play recording" }, "▶ Play");
  const back = h("button", { type: "button", "aria-label": "Back 5 seconds" }, "−5 s");
  const fwd = h("button", { type: "button", "aria-label": "Forward 5 seconds" }, "+5 s");
  const seek = h("input", {
    type: "range",
    min: "0",
    max: "0",
    step: "0.05",
    value: "0",
    "aria-label": "Seek",
    "data-testid": "seek",
  });
  const time = h("span", { class: "clock", "data-testid": "clock", "aria-live": "off" }, "0:00 / 0:00");
  const speed = h(
    "select",
    { "aria-label": "Playback speed", "data-testid": "speed" },
    SPEEDS.map((r) => h("option", { value: String(r), selected: r === 1 }, `${r}×`)),
  );
  const show = () => {
    time.textContent = `${clock(audio.currentTime)} / ${clock(audio.duration)}`;
    if (document.activeElement !== seek) seek.value = String(audio.currentTime);
  };
  const jump = (delta) => {
    const end = Number.isFinite(audio.duration) ? audio.duration : audio.currentTime + delta;
    audio.currentTime = Math.min(Math.max(0, audio.currentTime + delta), end);
  };
  play.addEventListener("click", () => (audio.paused ? audio.play() : audio.pause()));
  back.addEventListener("click", () => jump(-5));
  fwd.addEventListener("click", () => jump(5));
  seek.addEventListener("input", () => {
    audio.currentTime = Number(seek.value);
  });
  speed.addEventListener("change", () => {
    audio.playbackRate = Number(speed.value);
  });
  audio.addEventListener("loadedmetadata", () => {
    seek.max = String(audio.duration || 0);
    show();
  });
  audio.addEventListener("timeupdate", show);
  audio.addEventListener("play", () => {
    play.textContent = "⏸ Pause";
    play.setAttribute("aria-label", "Pause recording");
  });
  audio.addEventListener("pause", () => {
    play.textContent = "▶ Play";
    play.setAttribute("aria-label", "Play recording");
  });
  audio.addEventListener("ratechange", () => {
    speed.value = String(audio.playbackRate);
  });
  const bar = h("div", { class: "player", role: "group", "aria-label": "Recording player" }, play, back, seek, fwd, time, h("label", {}, "Speed ", speed));
  audio.after(bar);
  return bar;
}

export class Review {
  constructor(app) {
    this.app = app;
    this.conversation = null;
    this.seq = 0; // the last result opened wins, whatever order the answers arrive in
  }

  async open(conversationId, hitId) {
    const seq = ++this.seq;
    const [conv, timeline] = await Promise.all([
      get(`/api/conversations/${encodeURIComponent(conversationId)}`),
      get(`/api/conversations/${encodeURIComponent(conversationId)}/interactions`),
    ]);
    let contact = null;
    try {
      contact = await get(`/api/contacts/${encodeURIComponent(conv.contact_id)}`);
    } catch {
      /* the timeline is still useful without the contact's name */
    }
    if (seq !== this.seq) return;
    this.conversation = conv;
    $("#review-empty").hidden = true;
    $("#review-view").hidden = false;
    const who = contactLabel(contact);
    $("#review-title").textContent = `${CHANNEL_LABEL[conv.channel] || conv.channel} with ${who}`;
    const agent = conv.assignee_id ? this.app.names.agent(conv.assignee_id) : "unassigned";
    $("#review-sub").textContent = [
      `Queue ${this.app.names.queue(conv.queue_id) || "—"}`,
      `Agent ${agent}`,
      conv.status,
      `Started ${fmtTime(conv.created_at)}`,
    ].join(" · ");
    const ctx = { names: this.app.names, contactName: contact && contact.name };
    const items = timeline.items.map((ix) => renderInteraction(ix, ctx));
    replace($("#timeline"), items);
    for (const audio of document.querySelectorAll("#timeline audio")) enhancePlayer(audio);
    attachTranscripts(timeline.items, $("#timeline"), enhancePlayer);
    const target = hitId ? items.find((el) => el.dataset.id === hitId) : null;
    if (target) {
      target.classList.add("hit-target");
      target.scrollIntoView({ block: "center" });
    }
    $("#review-title").focus();
    this.app.announce(`Opened ${$("#review-title").textContent}, ${timeline.items.length} entries`);
    await this.app.scoring.setConversation(conv, timeline.items, hitId);
  }
}
