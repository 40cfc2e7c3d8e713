"""What to do after the events stream (re)connected: pure planning, the channel carries it out.

Asterisk delivers no events while the WebSocket is down, so after every (re)connect the channel
compares what ARI has with what it knows:

- every known call gets a ``Resync`` with the live channels (caller back to MOH, lost agent
  legs reported);
- a caller in our app that no worker knows (the hub restarted) is adopted: back into its bridge
  when an agent is still with it, otherwise back into the queue. Its conversation is still in the
  database (ingest committed it before anything could ring), so it is offered again: no caller
  is lost, however early the hub rang before the restart;
- an agent leg in our app that no call owns any more is hung up, so no phone stays off-hook.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from channels.voice.events import BridgeInfo, ChannelInfo


@dataclass(frozen=True, slots=True)
class Adoption:
    caller: ChannelInfo
    bridge_id: str | None  # set with agent_channel: the caller is still talking to an agent
    agent_channel: str | None


@dataclass(frozen=True, slots=True)
class Plan:
    live: dict[str, str]  # channel id -> state, for every known call's Resync
    adopt: list[Adoption] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)  # agent legs to hang up


def plan(app: str, channels: list[ChannelInfo], bridges: list[BridgeInfo],
         owned: set[str]) -> Plan:  # fmt: skip
    """``owned``: the channel and bridge ids the channel's workers already route."""
    in_bridge = {cid: b for b in bridges for cid in b.channels}
    prefix = f"{app},"
    out = Plan(live={c.id: c.state for c in channels})
    for c in channels:
        if c.id in owned or c.app_name != "Stasis" or not c.app_data.startswith(prefix):
            continue
        role = c.app_data[len(prefix) :].partition(",")[0]
        if role == "inbound":
            bridge = in_bridge.get(c.id)
            others = [x for x in bridge.channels if x != c.id] if bridge else []
            out.adopt.append(Adoption(c, bridge.id if bridge and others else None,
                                      others[0] if others else None))  # fmt: skip
    adopted_agents = {a.agent_channel for a in out.adopt if a.agent_channel}
    out.orphans.extend(
        c.id for c in channels
        if c.app_data.startswith(f"{prefix}agent") and c.id not in owned
        and c.id not in adopted_agents
    )  # fmt: skip
    return out
