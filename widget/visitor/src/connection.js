// The /widget protocol client (see docs/widget-protocol.md): session and token persistence,
// an outbox that resends unacknowledged messages with the same client_id (the server stores a
// resend once), and typed callbacks for what the server pushes.
import { io } from "socket.io-client";

const FATAL = new Set(["bad_site_key", "origin_not_allowed", "invalid_payload"]);
const ACK_TIMEOUT_MS = 15000;

function randomId() {
  if (globalThis.crypto && crypto.randomUUID) return crypto.randomUUID();
  return Date.now().toString(36) + Math.random().toString(36).slice(2, 12);
}

function safeStorage() {
  try {
    const probe = "__contacthub__";
    localStorage.setItem(probe, probe);
    localStorage.removeItem(probe);
    return localStorage;
  } catch {
    const memory = new Map(); // private mode or blocked storage: resume within this page only
    return {
      getItem: (k) => (memory.has(k) ? memory.get(k) : null),
      setItem: (k, v) => memory.set(k, String(v)),
      removeItem: (k) => memory.delete(k),
    };
  }
}

export class ChatConnection {
  constructor({ server, siteKey, handlers }) {
    this.server = server;
    this.siteKey = siteKey;
    this.on = handlers;
    this.storage = safeStorage();
    this.tokenKey = `contacthub:${siteKey}:visitor_token`;
    this.outbox = new Map(); // client_id -> {event, payload, resolve, reject}
    this.socket = null;
    this.ready = false;
  }

  start() {
    this.socket = io(`${this.server}/widget`, {
      auth: (cb) => cb({ site_key: this.siteKey, visitor_token: this.storage.getItem(this.tokenKey) || undefined }),
      transports: ["websocket", "polling"],
      reconnectionDelayMax: 10000,
    });
    const s = this.socket;
    s.on("session", (session) => {
      this.storage.setItem(this.tokenKey, session.visitor_token);
      this.ready = true;
      this.on.session(session);
      this.flush();
    });
    s.on("message", (m) => this.on.message(m));
    s.on("typing", (t) => this.on.typing(t));
    s.on("receipt", (r) => this.on.receipt(r));
    s.on("availability", (a) => this.on.availability(a));
    s.on("disconnect", (reason) => {
      this.ready = false;
      this.on.state("reconnecting");
      // socket.io does not come back by itself after the server closed the socket
      if (reason === "io server disconnect") setTimeout(() => s.connect(), 3000);
    });
    s.on("connect_error", (err) => {
      const code = err && err.data && err.data.code;
      if (FATAL.has(code)) {
        this.on.fatal(code, err.message);
        return;
      }
      this.on.state("reconnecting");
      // a refusal by the namespace (rate limit, outage) is not retried by socket.io itself
      if (!s.active) {
        const wait = Math.max(2, (err.data && err.data.retry_after) || 5);
        setTimeout(() => s.connect(), wait * 1000);
      }
    });
  }

  // Resolves with the ack {id, conversation_id}, or rejects with {code, message}.
  sendMessage(payload, event = "message") {
    const clientId = payload.client_id || randomId();
    const item = { event, payload: { ...payload, client_id: clientId } };
    const done = new Promise((resolve, reject) => Object.assign(item, { resolve, reject }));
    this.outbox.set(clientId, item);
    if (this.ready) this.attempt(clientId, item);
    return { clientId, done };
  }

  async attempt(clientId, item) {
    let ack;
    try {
      ack = await this.socket.timeout(ACK_TIMEOUT_MS).emitWithAck(item.event, item.payload);
    } catch {
      return; // no answer: stays in the outbox and goes again after the next session
    }
    if (ack && ack.error && ack.error.retryable) return;
    this.outbox.delete(clientId);
    if (ack && ack.error) item.reject(ack.error);
    else item.resolve(ack);
  }

  flush() {
    for (const [clientId, item] of this.outbox) this.attempt(clientId, item);
  }

  // Fire-and-check requests (prechat, history, typing, receipt): reject on an error ack.
  async request(event, payload) {
    if (!this.ready) throw { code: "offline", message: "not connected" };
    const ack = await this.socket.timeout(ACK_TIMEOUT_MS).emitWithAck(event, payload);
    if (ack && ack.error) throw ack.error;
    return ack;
  }

  signal(event, payload) {
    if (this.ready) this.socket.emit(event, payload);
  }
}
