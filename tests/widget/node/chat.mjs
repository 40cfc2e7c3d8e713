// Holds a whole chat through the /widget protocol with the official socket.io-client:
// connect, session, message + ack, the same client_id again, a binary attachment, an agent
// reply, typing, then a reconnect with the visitor token and the history.
// Usage: node chat.mjs <hub url> <site key>. Prints one JSON line per step on stdout; the
// Python test (tests/widget/test_widget_node_client.py) plays the agent and checks them.
import { io } from "socket.io-client";

const [url, siteKey] = process.argv.slice(2);
const out = (step, data) => process.stdout.write(JSON.stringify({ step, data }) + "\n");
const once = (socket, event) => new Promise((resolve) => socket.once(event, resolve));
const PNG = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.alloc(32)]);

function connect(auth, transports = ["websocket"]) {
  const socket = io(`${url}/widget`, { auth, transports, reconnection: false, forceNew: true });
  return socket;
}

async function main() {
  const bad = connect({ site_key: "no-such-site" });
  const refused = await once(bad, "connect_error");
  out("refused", { message: refused.message, data: refused.data });
  bad.close();

  const socket = connect({ site_key: siteKey }, ["polling", "websocket"]);
  const session = await once(socket, "session");
  out("session", session);

  const first = await socket.timeout(5000).emitWithAck("message", { text: "Hello from Node", client_id: "node-1" });
  out("ack", first);
  const again = await socket.timeout(5000).emitWithAck("message", { text: "Hello from Node", client_id: "node-1" });
  out("ack-again", again);
  const file = await socket.timeout(5000).emitWithAck("message", {
    text: "a picture", client_id: "node-2", attachments: [{ name: "dot.png", type: "image/png", data: PNG }],
  });
  out("ack-file", file);
  const bogus = await socket.timeout(5000).emitWithAck("message", { text: 42 });
  out("ack-bogus", bogus);
  out("typing", await socket.timeout(5000).emitWithAck("typing", { typing: true }));

  const agentTyping = once(socket, "typing");
  const reply = once(socket, "message");
  out("waiting-for-agent", {});
  out("agent-typing", await agentTyping);
  const answer = await reply;
  out("reply", answer);
  out("receipt", await socket.timeout(5000).emitWithAck("receipt", { ids: [answer.id], status: "read" }));
  socket.close();

  const back = connect({ site_key: siteKey, visitor_token: session.visitor_token });
  out("resumed", await once(back, "session"));
  out("history", await back.timeout(5000).emitWithAck("history", { limit: 20 }));
  back.close();
}

main().then(
  () => process.exit(0),
  (err) => {
    out("failed", { message: String(err && err.stack ? err.stack : err) });
    process.exit(1);
  },
);
