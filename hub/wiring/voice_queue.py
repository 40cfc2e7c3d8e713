"""The hub's side of a caller's wait: queue news for announcements, and callback work.

- :class:`QueueNews` answers a voice channel's question "where does this caller stand?" (the
  channel asks when an announcement is due, see :mod:`channels.voice.call_queue`).

  *Position* = 1 + the voice conversations of the same hub queue that the router serves before
  this caller: status queued or offered, higher ``priority`` first, then earlier arrival
  (``queued_at``, else ``created_at``: the router's ``Work.arrival``), ties by conversation id.
  That is the router's own lane order (``routing/queues.py``: ``(-priority, arrival, seq)``; the
  queue's own priority is the same for everyone in it). Callback work waiting in the queue counts:
  the router gives it to the next free agent like a caller. Not counted: work of *other* queues
  that an ``add_queue`` overflow step lets this queue's agents take (the router may serve it
  first), so the position can be optimistic when such overflow is configured.

  *Estimated wait* = app_queue's ``holdtime``: an exponentially weighted average (new = 3/4 old +
  1/4 sample) over the answered waits of the queue's most recent voice assignments, read from the
  interaction log (``assignment`` items carry the router's ``wait_s``; callback work is left
  out, its wait is not a caller's). Being in the database, it survives a restart and is the same
  in every hub process; a short per-queue cache keeps announcements from querying on every tick.
  None when no call of the queue was answered recently: then only the position is said.
- :func:`make_callback_work`: a caller who pressed 1 for a callback or left a voicemail has hung
  up, but the case is not over: the conversation goes back into its queue as *callback work*
  (``attributes.callback`` = number, why, when) so the router offers it to an agent like any
  work; accepting it dials the number (:mod:`hub.wiring.voice_callbacks`). Its overflow steps are
  marked done so the waiting time before the callback does not send it to voicemail again.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from channels.voice.call import QueueStatus
from hub.actions.conversations import conversation_event, conversation_rooms
from hub.actions.log import append, interaction_dict
from hub.channel_host import HostContext
from hub.db.base import utcnow
from hub.db.models import Conversation, Interaction
from hub.domain import ActorType, ConversationStatus, Direction, InteractionKind
from hub.events import Event

log = logging.getLogger(__name__)

EWMA_WEIGHT = 0.25  # app_queue: holdtime = (3 * holdtime + new) / 4
HOLDTIME_SAMPLES = 20  # the most recent answered waits the average is made of
HOLDTIME_WINDOW = timedelta(hours=24)  # older answers say nothing about the wait now
HOLDTIME_CACHE_S = 15.0  # announcements come every ~30 s per caller; one query per queue per 15 s
OVERFLOW_DONE = 1_000_000  # "every overflow step applied" for the router's work item
WAITING = (ConversationStatus.QUEUED.value, ConversationStatus.OFFERED.value)


async def conversation_of_call(session: AsyncSession, call_id: str) -> Conversation | None:
    """The conversation whose ``CALL`` item is Asterisk channel ``call_id``."""
    conv_id = (await session.execute(
        select(Interaction.conversation_id).where(
            Interaction.external_id == call_id, Interaction.kind == InteractionKind.CALL.value)
        .order_by(Interaction.created_at.desc()).limit(1)
    )).scalar_one_or_none()  # fmt: skip
    return await session.get(Conversation, conv_id) if conv_id else None


class QueueNews:
    """Position and estimated wait of queued calls; one per hub process (see the module
    docstring). Stateless but for the holdtime cache: the database is the truth."""

    def __init__(self, ctx: HostContext, *, cache_s: float = HOLDTIME_CACHE_S) -> None:
        self._ctx = ctx
        self._cache_s = cache_s
        self._holdtime: dict[str, tuple[float, float | None]] = {}  # queue -> (until, value)

    def answered(self, queue_id: str | None, wait_s: float) -> None:
        """A call in ``queue_id`` was answered (its wait is in the log): drop the cached value
        so the next announcement includes it."""
        del wait_s  # the assignment item in the log carries it
        if queue_id is not None:
            self._holdtime.pop(queue_id, None)

    async def holdtime(self, queue_id: str) -> float | None:
        """The queue's estimated wait in seconds (None: no answered call recently)."""
        now = time.monotonic()
        cached = self._holdtime.get(queue_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        async with self._ctx.sessions() as session:
            value = await holdtime_from_log(session, queue_id)
        self._holdtime[queue_id] = (now + self._cache_s, value)
        return value

    async def status(self, call_id: str) -> QueueStatus | None:
        """Where the caller on channel ``call_id`` stands (None: not waiting in a queue)."""
        async with self._ctx.sessions() as session:
            conv = await conversation_of_call(session, call_id)
            if conv is None or conv.queue_id is None or conv.status not in WAITING:
                return None
            arrival = func.coalesce(Conversation.queued_at, Conversation.created_at)
            mine = conv.queued_at or conv.created_at
            ahead = (await session.execute(
                select(func.count()).select_from(Conversation).where(
                    Conversation.queue_id == conv.queue_id,
                    Conversation.channel == "voice",
                    Conversation.status.in_(WAITING),
                    Conversation.id != conv.id,
                    or_(Conversation.priority > conv.priority,
                        (Conversation.priority == conv.priority) & (arrival < mine),
                        (Conversation.priority == conv.priority) & (arrival == mine)
                        & (Conversation.id < conv.id)),
                )
            )).scalar_one()  # fmt: skip
            queue_id = conv.queue_id
        return QueueStatus(int(ahead) + 1, await self.holdtime(queue_id))


async def holdtime_from_log(session: AsyncSession, queue_id: str) -> float | None:
    """app_queue's holdtime for ``queue_id`` from the log: the EWMA of the router's ``wait_s``
    over the queue's last :data:`HOLDTIME_SAMPLES` voice assignments (oldest first)."""
    rows = (await session.execute(
        select(Interaction.payload, Conversation.attributes)
        .join(Conversation, Conversation.id == Interaction.conversation_id)
        .where(Interaction.kind == InteractionKind.ASSIGNMENT.value,
               Interaction.channel == "voice",
               Interaction.created_at >= utcnow() - HOLDTIME_WINDOW,
               Conversation.queue_id == queue_id)
        .order_by(Interaction.created_at.desc(), Interaction.id.desc())
        .limit(HOLDTIME_SAMPLES * 2)  # some may be callback work, skipped below
    )).all()  # fmt: skip
    waits: list[float] = []
    for payload, attributes in rows:
        wait = (payload or {}).get("wait_s")
        if (attributes or {}).get("callback") or isinstance(wait, bool):
            continue
        if isinstance(wait, int | float) and wait >= 0:
            waits.append(float(wait))
    value: float | None = None
    for wait in reversed(waits[:HOLDTIME_SAMPLES]):
        value = wait if value is None else (1 - EWMA_WEIGHT) * value + EWMA_WEIGHT * wait
    return value


async def caller_number(session: AsyncSession, conv: Conversation) -> str | None:
    """The E.164 number of the caller of ``conv``'s latest inbound call (None: withheld)."""
    payload = (await session.execute(
        select(Interaction.payload).where(
            Interaction.conversation_id == conv.id, Interaction.kind == InteractionKind.CALL.value,
            Interaction.direction == Direction.INBOUND.value)
        .order_by(Interaction.seq.desc()).limit(1)
    )).scalar_one_or_none()  # fmt: skip
    sender = str((payload or {}).get("sender") or "")
    kind, _, value = sender.partition(":")
    return value if kind == "phone" and value.startswith("+") else None


async def make_callback_work(session: AsyncSession, conv: Conversation, *, reason: str,
                             end: dict[str, Any]) -> list[Event]:
    """Put ``conv`` back in its queue as callback work (see the module docstring). A caller
    with a withheld number cannot be called back: the conversation stays pending (visible, a
    voicemail can still be listened to) with ``callback.number`` = None."""
    if conv.status == ConversationStatus.RESOLVED.value:
        return []
    number = await caller_number(session, conv)
    callback = {"number": number, "reason": reason, "requested_at": utcnow().isoformat(),
                "wait_s": end.get("wait_s")}  # fmt: skip
    attrs = {k: v for k, v in conv.attributes.items() if k != "left_queue"}
    conv.attributes = {**attrs, "callback": callback, "overflow_done": OVERFLOW_DONE}
    routable = number is not None and conv.queue_id is not None
    conv.status = (ConversationStatus.QUEUED if routable else ConversationStatus.PENDING).value
    conv.assignee_id = None
    if routable:
        conv.queued_at = utcnow()
    row = await append(
        session, conv.id, kind=InteractionKind.STATUS, direction=Direction.INTERNAL,
        channel=conv.channel, actor_type=ActorType.SYSTEM,
        payload={"status": conv.status, "reason": f"callback_{reason}", "callback": callback},
    )  # fmt: skip
    await session.flush()
    events = [Event("interaction.created", interaction_dict(row), rooms=conversation_rooms(conv))]
    if routable:
        events.append(conversation_event("conversation.queued", conv))
    else:
        log.info("conversation %s: caller withheld their number; no callback work", conv.id)
    return events
