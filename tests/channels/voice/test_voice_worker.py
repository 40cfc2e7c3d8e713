"""The per-call worker and the reconnect plan, without Asterisk: a stub REST side records what
the worker asks for, so the order of ARI calls and sink items is checked exactly."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, cast

from channels.base import Address, AddressKind, Inbound, IngestReceipt, Sink
from channels.voice import call as sm
from channels.voice import events as ev
from channels.voice.ari import AriClient
from channels.voice.ivr import IvrConfig
from channels.voice.reconcile import plan
from channels.voice.settings import VoiceSettings
from channels.voice.worker import CallWorker

TS = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)
CALL = "1700000000.7"
CALLER = ev.ChannelInfo(CALL, "PJSIP/caller-7", "Ring", ev.CallerId("Ann", "+14155550123"),
                        ev.CallerId("", ""), "inbound", "100", "Stasis", "app,inbound,100")


class StubAri:
    """Answers every ARI call at once and remembers it as (method, first argument, kwargs)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any, dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Any:
        async def call(*args: Any, **kwargs: Any) -> None:
            self.calls.append((name, args[0] if args else None, kwargs))

        return call


class Host:
    """What the channel gives its workers (channels.voice.worker.WorkerHost)."""

    def __init__(self, sink: Sink) -> None:
        self.settings = VoiceSettings("http://pbx/ari", "u", "p", app="app", channel_id="+1415",
                                      ivr=IvrConfig(menu=None, default_queue="general"))
        self.stub = StubAri()
        self.ari = cast(AriClient, self.stub)
        self.queue_status: Callable[[str], Awaitable[sm.QueueStatus | None]] | None = None
        self._sink = sink
        self.owned: dict[str, str] = {}
        self.forgotten = asyncio.Event()

    def now(self) -> float:
        return 0.0

    def sink(self) -> Sink | None:
        return self._sink

    def own(self, key: str, call_id: str) -> None:
        self.owned[key] = call_id

    def forget(self, worker: CallWorker) -> None:
        self.forgotten.set()


async def _offered_and_rung(host: Host) -> tuple[CallWorker, asyncio.Future[str]]:
    """A new call's worker, offered to agent 1, once it sent the agent's originate (and the
    offer's future, which the hub awaits)."""
    call, first = sm.new_call(CALL, host.settings.ivr, 0.0)
    worker = CallWorker(host, call, CALLER, Address(AddressKind.PHONE, "+14155550123"), TS)
    worker.start(first)
    worker.offer = offer = asyncio.get_running_loop().create_future()
    await worker.inbox.put((sm.Offer("PJSIP/agent1", "agent-1", 15, "+14155550123"), None))
    async with asyncio.timeout(5):
        while not any(name == "originate" for name, _, _ in host.stub.calls):
            await asyncio.sleep(0.01)
    return worker, offer


async def test_offer_is_rung_while_the_call_item_is_still_with_the_sink_items_keep_order() -> None:
    """The hub offers a call as soon as its router decided, which happens *inside* the sink
    call for the call's own item (ingest publishes, the dispatcher routes). The worker must
    take that offer without waiting for the sink, yet hand the call's items over in order."""
    release = asyncio.Event()
    items: list[Inbound] = []

    async def slow_sink(item: Inbound, /) -> IngestReceipt:
        if item.external_id == CALL:
            await release.wait()  # ingest + routing still running
        items.append(item)
        return IngestReceipt("i", "c", "contact", True)

    host = Host(slow_sink)
    worker, offer = await _offered_and_rung(host)
    async with asyncio.timeout(5):  # answer and MOH run beside the ring (their own task)
        while len(host.stub.calls) < 3:
            await asyncio.sleep(0.01)
    names = [name for name, _, _ in host.stub.calls]
    assert sorted(names) == ["answer", "originate", "start_moh"]
    assert names.index("answer") < names.index("start_moh")
    _, endpoint, kwargs = next(c for c in host.stub.calls if c[0] == "originate")
    assert endpoint == "PJSIP/agent1" and kwargs["channel_id"] == "agent-1"
    assert kwargs["app_args"] == ("agent", CALL) and kwargs["originator"] == CALL
    assert kwargs["caller_id"] == "+14155550123"  # the agent's phone shows the caller
    assert host.owned["agent-1"] == CALL
    assert items == []  # the call item is still with the sink

    gone = ev.ChannelHangupRequest("ChannelHangupRequest", "app", TS, CALLER, 16)
    await worker.inbox.put((gone, None))  # the caller leaves while the agent rings
    await asyncio.sleep(0.05)
    assert items == []  # the end item waits behind the call item
    release.set()
    async with asyncio.timeout(5):
        await host.forgotten.wait()
    assert [i.external_id for i in items] == [CALL, f"{CALL}:end"]
    assert offer.done() and offer.exception() is not None  # the ring was told


class SlowAnswerAri(StubAri):
    """The caller's answer hangs until ``answered`` is set (a busy Asterisk)."""

    def __init__(self) -> None:
        super().__init__()
        self.answered = asyncio.Event()

    async def answer(self, channel: str) -> None:
        self.calls.append(("answer", channel, {}))
        await self.answered.wait()
        self.calls.append(("answer_done", channel, {}))


async def test_the_agent_rings_while_the_callers_answer_is_in_flight_bridging_waits() -> None:
    """An offer that arrives while the new call's answer request is still out is rung at once
    (the originate is a new channel); what concerns the caller's channel (MOH, then the bridge
    once the agent answered) still waits for the answer, in order."""

    async def sink(item: Inbound, /) -> IngestReceipt:
        return IngestReceipt("i", "c", "contact", True)

    host = Host(sink)
    host.stub = SlowAnswerAri()
    host.ari = cast(AriClient, host.stub)
    worker, offer = await _offered_and_rung(host)
    assert sorted(name for name, _, _ in host.stub.calls) == ["answer", "originate"]

    leg = ev.ChannelInfo("agent-1", "PJSIP/agent1-1", "Up", ev.CallerId("", ""),
                         ev.CallerId("", ""), "agent", "", "Stasis", f"app,agent,{CALL}")
    await worker.inbox.put((ev.StasisStart("StasisStart", "app", TS, leg, ("agent", CALL)), None))
    await asyncio.sleep(0.05)
    names = [name for name, _, _ in host.stub.calls]
    assert sorted(names) == ["answer", "originate"]  # the bridge waits for the caller's answer
    host.stub.answered.set()
    async with asyncio.timeout(5):
        await offer
    names = [name for name, _, _ in host.stub.calls]
    assert names[2:4] == ["answer_done", "start_moh"]  # MOH after the answer, as before
    assert len(names) > 4  # then the bridge with the agent
    assert worker.task is not None
    worker.task.cancel()


def _chan(cid: str, app_data: str, state: str = "Up") -> ev.ChannelInfo:
    return ev.ChannelInfo(cid, f"PJSIP/{cid}", state, ev.CallerId("", ""), ev.CallerId("", ""),
                          app_name="Stasis" if app_data else "", app_data=app_data)


def test_reconnect_plan_adopts_unknown_callers_and_hangs_up_unowned_agent_legs() -> None:
    channels = [
        _chan("known", "app,inbound,100"),
        _chan("waiting", "app,inbound,100"),
        _chan("talking", "app,inbound,100"),
        _chan("agent-talking", "app,agent,talking"),
        _chan("agent-orphan", "app,agent,gone"),
        _chan("agent-ringing", "", state="Ringing"),  # originated, not in the app yet
        _chan("other-app", "other,inbound,100"),
    ]
    bridges = [ev.BridgeInfo("b1", "mixing", "simple_bridge", ("talking", "agent-talking"))]
    todo = plan("app", channels, bridges, owned={"known"})
    assert todo.live["agent-ringing"] == "Ringing" and len(todo.live) == len(channels)
    adopted = {a.caller.id: (a.bridge_id, a.agent_channel) for a in todo.adopt}
    assert adopted == {"waiting": (None, None), "talking": ("b1", "agent-talking")}
    assert todo.orphans == ["agent-orphan"]
