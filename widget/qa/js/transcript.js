// Call transcripts on the QA page: the timed segments of each transcript are listed under the
// player of the recording they came from; clicking a segment (or Enter on it) seeks the audio
// there and plays, and the segment being heard is highlighted as the audio plays.
// A recording the timeline drew without a player (a voice `event` carrying the WAV) gets one.
import { attachmentUrl } from "../../inbox/js/api.js";
import { h } from "../../inbox/js/dom.js";

function clock(seconds) {
  const s = Math.max(0, Math.floor(Number(seconds) || 0));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

function audioFor(recordingEl, recording, enhancePlayer) {
  const existing = recordingEl.querySelector("audio");
  if (existing) return existing;
  const file = (recording.attachments || []).find((a) => String(a.content_type).startsWith("audio/"));
  if (!file) return null;
  const audio = h("audio", { controls: true, preload: "metadata", src: attachmentUrl(file) });
  recordingEl.append(h("figure", { class: "recording" }, audio));
  enhancePlayer(audio);
  return audio;
}

function segmentList(segments, audio) {
  const buttons = segments.map((seg) =>
    h(
      "button",
      {
        type: "button",
        class: "segment",
        "data-testid": "transcript-segment",
        "data-start": String(seg.start_s),
        title: `Play from ${clock(seg.start_s)}`,
      },
      h("span", { class: "clock" }, clock(seg.start_s)),
      seg.speaker ? h("span", { class: "speaker" }, seg.speaker) : null,
      h("span", { class: "said" }, seg.text),
    ),
  );
  for (const [i, button] of buttons.entries()) {
    button.addEventListener("click", () => {
      audio.currentTime = Number(segments[i].start_s) || 0;
      audio.play().catch(() => {}); // autoplay refusals leave the position set
    });
  }
  audio.addEventListener("timeupdate", () => {
    const t = audio.currentTime;
    for (const [i, button] of buttons.entries()) {
      const seg = segments[i];
      button.classList.toggle("current", t >= seg.start_s && t < Math.max(seg.end_s, seg.start_s + 0.5));
    }
  });
  return h(
    "div",
    { class: "transcript", role: "group", "aria-label": "Transcript" },
    h("div", { class: "muted" }, "Transcript (machine-made; click a line to hear it)"),
    h("ol", {}, buttons.map((b) => h("li", {}, b))),
  );
}

/** Put each transcript's segments under its recording's player in the rendered timeline. */
export function attachTranscripts(items, timelineEl, enhancePlayer) {
  const byId = new Map(items.map((ix) => [ix.id, ix]));
  for (const ix of items) {
    const data = ix.kind === "transcript" ? (ix.payload || {}).transcript : null;
    if (!data || !Array.isArray(data.segments) || !data.segments.length) continue;
    const recording = byId.get(data.recording_id);
    const recordingEl = recording && timelineEl.querySelector(`[data-id="${CSS.escape(recording.id)}"]`);
    if (!recordingEl) continue;
    const audio = audioFor(recordingEl, recording, enhancePlayer);
    if (!audio) continue;
    recordingEl.append(segmentList(data.segments, audio));
  }
}
