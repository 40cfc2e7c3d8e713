// Entry point: <script src="https://hub.example/widget/loader.js" data-site-key="KEY" async>.
// Optional attributes: data-locale ("fr"), data-server (hub URL, default: where this script
// came from), data-position ("left"), data-color (accent colour).
import css from "./styles.css";
import { ChatConnection } from "./connection.js";
import { pickLocale, translator } from "./i18n.js";
import { ChatWidget } from "./widget.js";

function currentScript() {
  return document.currentScript || document.querySelector("script[data-site-key][src*='loader']");
}

function boot(script) {
  const siteKey = script && script.dataset.siteKey;
  if (!siteKey) {
    console.warn("contacthub widget: data-site-key is missing on the script tag");
    return;
  }
  if (window.__contacthubWidget) return; // the snippet was pasted twice
  const server = (script.dataset.server || new URL(script.src, location.href).origin).replace(/\/$/, "");
  const locale = pickLocale(script.dataset.locale, navigator.languages || [navigator.language]);
  const t = translator(locale);

  const host = document.createElement("div");
  host.id = "contacthub-widget";
  const root = host.attachShadow({ mode: "open" });
  const style = document.createElement("style");
  style.textContent = css;
  root.append(style);
  document.body.append(host);

  let widget;
  const connection = new ChatConnection({
    server,
    siteKey,
    handlers: {
      session: (s) => widget.onSession(s),
      message: (m) => widget.onMessage(m),
      typing: (e) => widget.onTypingEvent(e),
      receipt: (r) => widget.onReceipt(r),
      availability: (a) => widget.setOnline(a.online),
      state: (s) => widget.onState(s),
      fatal: (code, message) => {
        console.warn(`contacthub widget disabled: ${code} (${message})`);
        host.remove();
      },
    },
  });
  widget = new ChatWidget({ root, connection, t, locale, server, position: script.dataset.position });
  if (script.dataset.color && CSS.supports("color", script.dataset.color)) {
    widget.el.style.setProperty("--accent", script.dataset.color);
  }
  window.__contacthubWidget = { widget, connection };
  connection.start();
}

const script = currentScript();
if (document.body) boot(script);
else document.addEventListener("DOMContentLoaded", () => boot(script), { once: true });
