"""The official Node ``socket.io-client`` (npm) holds a whole chat through the /widget protocol.

Node and the npm package are real (``bash tests/servers/browser.sh`` installs them); the Python
side runs the real server and plays the agent through ``WebchatChannel.send``.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from channels.base import ChannelKind, Outbound
from channels.webchat.config import SiteConfig
from channels.webchat.devserver import dev_stack

NODE_DIR = Path(__file__).parent / "node"


def node_or_fail() -> str:
    node = shutil.which("node")
    if node is None or not (NODE_DIR / "node_modules" / "socket.io-client").is_dir():
        pytest.fail(
            "node and tests/widget/node/node_modules/socket.io-client are needed: "
            "run `bash tests/servers/browser.sh`"
        )
    return node


async def test_node_socketio_client_holds_a_whole_chat() -> None:
    node = node_or_fail()
    async with dev_stack(SiteConfig("site-node", agent_name="Ada")) as stack:
        proc = await asyncio.create_subprocess_exec(
            node,
            str(NODE_DIR / "chat.mjs"),
            stack.url,
            "site-node",
            cwd=NODE_DIR,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert proc.stdout is not None
        steps: dict[str, Any] = {}
        try:
            async with asyncio.timeout(30):
                while line := await proc.stdout.readline():
                    item = json.loads(line)
                    steps[item["step"]] = item["data"]
                    if item["step"] == "waiting-for-agent":
                        first = stack.ingest.inbounds[0]
                        receipt = stack.ingest.receipts[("site-node", first.external_id)]
                        await stack.channel.send_typing(
                            "site-node", first.sender.value, True, "Ada"
                        )
                        await stack.channel.send(
                            Outbound(
                                channel=ChannelKind.WEBCHAT,
                                channel_id="site-node",
                                conversation_id=receipt.conversation_id,
                                to=first.sender,
                                text="Hi Node, Ada here",
                                idempotency_key="reply-1",
                                metadata={"message_id": "agent-msg-1"},
                            )
                        )
                await proc.wait()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        stderr = (await proc.stderr.read()).decode() if proc.stderr else ""
        assert proc.returncode == 0, (steps.get("failed"), stderr)

        assert steps["refused"]["data"]["code"] == "bad_site_key"
        session = steps["session"]
        assert session["resumed"] is False and session["site"]["agent"]["name"] == "Ada"
        ack = steps["ack"]
        assert set(ack) == {"id", "conversation_id"}
        assert steps["ack-again"] == ack  # the same client_id: same ids, stored once
        assert steps["ack-file"]["conversation_id"] == ack["conversation_id"]
        assert steps["ack-bogus"]["error"]["code"] == "invalid_payload"
        assert steps["typing"] == {"ok": True}
        assert steps["agent-typing"] == {"typing": True, "author": {"type": "agent", "name": "Ada"}}
        reply = steps["reply"]
        assert reply["id"] == "agent-msg-1" and reply["text"] == "Hi Node, Ada here"
        assert reply["conversation_id"] == ack["conversation_id"]
        assert reply["author"]["type"] == "agent" and reply["author"]["name"] == "Ada"
        assert steps["receipt"] == {"ok": True}
        resumed = steps["resumed"]
        assert resumed["resumed"] is True and resumed["visitor_id"] == session["visitor_id"]
        history = steps["history"]["messages"]
        assert [m["text"] for m in history] == ["Hello from Node", "a picture", "Hi Node, Ada here"]
        assert history[2]["status"] == "read"

        texts = [i.text for i in stack.ingest.inbounds]
        assert texts == ["Hello from Node", "a picture"]
        [png] = stack.ingest.inbounds[1].attachments
        assert png.content_type == "image/png" and png.data.startswith(b"\x89PNG")
        assert [s.kind for s in stack.signals.signals] == ["typing", "read"]
