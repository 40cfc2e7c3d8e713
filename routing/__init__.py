"""The unified router: pure, standard library only (see ``routing.router`` for how it works).

The dispatcher builds a :class:`Router`, feeds it :mod:`routing.events`, executes the
:mod:`routing.commands` it returns, and sends :class:`Tick` at :meth:`Router.next_deadline`.
"""

from routing.commands import (
    Assign,
    Callback,
    Command,
    Escalate,
    Overflow,
    Rejected,
    Requeue,
    RevokeOffer,
    SendOffer,
    SetPresence,
    Voicemail,
)
from routing.erlang import erlang_b, erlang_c, service_level
from routing.events import (
    AgentDisconnected,
    AgentLoggedIn,
    AgentLoggedOut,
    AgentReconnected,
    AssignmentRestored,
    CapacityChanged,
    Event,
    OfferAccepted,
    OfferDeclined,
    OfferRestored,
    PresenceChanged,
    QueueConfigured,
    ServiceLevelReset,
    SkillsChanged,
    Tick,
    WorkFinished,
    WorkQueued,
    WorkWithdrawn,
)
from routing.model import (
    AgentProfile,
    Candidate,
    Capacity,
    ConfigError,
    DuplicateWork,
    Medium,
    Mode,
    OverflowAction,
    OverflowStep,
    Presence,
    QueueConfig,
    Reason,
    RouterConfig,
    RoutingError,
    SkillReq,
    UnknownAgent,
    UnknownQueue,
    UnknownWork,
    Work,
)
from routing.router import Router
from routing.snapshot import AgentView, QueueSnapshot, Snapshot, WorkView

__all__ = [
    "AgentDisconnected", "AgentLoggedIn", "AgentLoggedOut", "AgentProfile", "AgentReconnected",
    "AgentView", "Assign", "AssignmentRestored", "Callback", "Candidate", "Capacity",
    "CapacityChanged", "Command", "ConfigError", "DuplicateWork", "Escalate", "Event", "Medium",
    "Mode", "OfferAccepted", "OfferDeclined", "OfferRestored", "Overflow", "OverflowAction",
    "OverflowStep", "Presence", "PresenceChanged", "QueueConfig", "QueueConfigured",
    "QueueSnapshot", "Reason", "Rejected", "Requeue", "RevokeOffer", "Router", "RouterConfig",
    "RoutingError", "SendOffer", "ServiceLevelReset", "SetPresence", "SkillReq",
    "SkillsChanged", "Snapshot", "Tick", "UnknownAgent", "UnknownQueue", "UnknownWork",
    "Voicemail", "Work", "WorkFinished", "WorkQueued", "WorkView", "WorkWithdrawn", "erlang_b",
    "erlang_c", "service_level",
]
