// The /agent socket.io connection: every change arrives here, nothing is polled.
// socket.io reconnects by itself after a network drop or a hub restart; each (re)connect calls
// onConnect so the page re-fetches its state and re-joins the conversation it shows.
import { io } from "../vendor/socket.io.esm.min.js";

export const EVENTS = [
  "hello",
  "offer",
  "offer.revoked",
  "interaction.created",
  "conversation.queued",
  "conversation.assigned",
  "conversation.requeued",
  "conversation.resolved",
  "conversation.transferred",
  "conversation.overflow",
  "delivery.status",
  "agent.presence",
  "queues.snapshot",
];

export class Live {
  constructor({ onEvent, onConnect, onDisconnect, onRefused }) {
    this.joined = null;
    this.socket = io("/agent", {
      withCredentials: true, // the session cookie authenticates the socket
      reconnectionDelay: 500,
      reconnectionDelayMax: 3000,
      autoConnect: false,
    });
    for (const name of EVENTS) {
      this.socket.on(name, (data) => onEvent(name, data));
    }
    this.socket.on("connect", () => {
      if (this.joined) this.join(this.joined);
      onConnect();
    });
    this.socket.on("disconnect", (reason) => onDisconnect(reason));
    this.socket.on("connect_error", (err) => {
      // a refusal by the hub (bad session) is final; a network error is retried by socket.io
      if (!this.socket.active) onRefused(err);
      else onDisconnect("connect_error");
    });
  }

  start() {
    this.socket.connect();
  }

  stop() {
    this.joined = null;
    this.socket.disconnect();
  }

  get connected() {
    return this.socket.connected;
  }

  /** Follow one conversation's timeline (delivery status is only sent to its room). */
  join(conversationId) {
    if (this.joined && this.joined !== conversationId && this.socket.connected) {
      this.socket.emit("leave", { conversation_id: this.joined });
    }
    this.joined = conversationId;
    if (this.socket.connected && conversationId) {
      this.socket.emit("join", { conversation_id: conversationId });
    }
  }
}
