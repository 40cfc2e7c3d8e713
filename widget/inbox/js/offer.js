// The incoming-offer card: what is offered, a countdown to its expiry, accept / decline.
// The countdown is only a display; the hub's router decides expiry and says so with
// `offer.revoked`, which removes the card.
import { CHANNEL_LABEL, h } from "./dom.js";

export class OfferCard {
  constructor(slot, { onAccept, onDecline, queueName, queueTtl, announce }) {
    this.queueTtl = queueTtl;
    this.slot = slot;
    this.onAccept = onAccept;
    this.onDecline = onDecline;
    this.queueName = queueName;
    this.announce = announce;
    this.offer = null;
    this.timer = null;
  }

  get current() {
    return this.offer;
  }

  show(offer) {
    if (this.offer && this.offer.offer_id === offer.offer_id) return;
    this.offer = offer;
    // The deadline is the hub's; a skewed desk clock must not show 0 s or 5 minutes, so the
    // remaining time is capped by the queue's offer TTL and then counted on this clock.
    const ttl = this.queueTtl(offer.queue_id);
    let total = Math.max(1, (new Date(offer.expires_at) - Date.now()) / 1000);
    if (ttl) total = Math.min(total, ttl);
    this.total = total;
    this.deadline = Date.now() + total * 1000;
    this.count = h("span", { class: "countdown-num", "data-testid": "offer-countdown" }, "");
    this.bar = h("span", { class: "countdown-bar" });
    const channel = CHANNEL_LABEL[offer.channel] || offer.channel;
    this.acceptButton = h(
      "button",
      { type: "button", class: "primary", "data-testid": "offer-accept", onclick: () => this.onAccept(offer) },
      "Accept ",
      h("kbd", {}, "Alt+A"),
    );
    const card = h(
      "section",
      {
        class: `offer ch-${offer.channel}`,
        role: "region", // not a dialog: it never steals focus from an agent who is typing
        "aria-labelledby": "offer-title",
        "aria-describedby": "offer-desc",
        "data-testid": "offer",
        "data-offer-id": offer.offer_id,
      },
      h("div", { class: "offer-icon", "aria-hidden": "true" }, channel.slice(0, 1)),
      h(
        "div",
        { class: "offer-body" },
        h("h2", { id: "offer-title" }, `Incoming ${channel.toLowerCase()}`),
        h(
          "p",
          { id: "offer-desc" },
          offer.subject ? `${offer.subject} · ` : "",
          `Queue ${this.queueName(offer.queue_id) || "—"}`,
          offer.priority ? ` · priority ${offer.priority}` : "",
        ),
        h("div", { class: "countdown", "aria-hidden": "true" }, this.bar),
      ),
      h("div", { class: "offer-time" }, this.count, h("span", { class: "muted" }, "s left")),
      h(
        "div",
        { class: "offer-actions" },
        this.acceptButton,
        h(
          "button",
          { type: "button", "data-testid": "offer-decline", onclick: () => this.onDecline(offer) },
          "Decline ",
          h("kbd", {}, "Alt+D"),
        ),
      ),
    );
    this.slot.replaceChildren(card);
    this.tick();
    clearInterval(this.timer);
    this.timer = setInterval(() => this.tick(), 250);
    this.announce(`Incoming ${channel} offer. ${Math.round(total)} seconds to accept. Press Alt+A to accept, Alt+D to decline.`, true);
  }

  tick() {
    if (!this.offer) return;
    const left = Math.max(0, (this.deadline - Date.now()) / 1000);
    this.count.textContent = String(Math.ceil(left));
    this.bar.style.width = `${Math.min(100, (left / this.total) * 100)}%`;
    this.slot.firstChild?.classList.toggle("urgent", left <= 5);
    if (left <= 0) {
      clearInterval(this.timer);
      this.slot.firstChild?.classList.add("expired");
    }
  }

  hide(offerId, message) {
    if (!this.offer || (offerId && this.offer.offer_id !== offerId)) return;
    clearInterval(this.timer);
    this.offer = null;
    this.slot.replaceChildren();
    if (message) this.announce(message, false);
  }
}
