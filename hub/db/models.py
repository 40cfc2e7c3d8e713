"""All tables in one import (``from hub.db.models import X``); defined by role elsewhere."""

from hub.db.base import Base
from hub.db.canned_models import CannedResponse
from hub.db.directory import (
    Agent,
    AgentSkill,
    ChannelInstance,
    Queue,
    RoutingRule,
    Session,
    Skill,
    User,
)
from hub.db.qa_models import QaEvaluation, QaForm, QaFormVersion
from hub.db.search_models import MediaAccess, SearchOutbox
from hub.db.transcript_models import TranscriptionJob
from hub.db.work import (
    Assignment,
    AttachmentRecord,
    ChannelState,
    Contact,
    ContactAddress,
    Conversation,
    ConversationRef,
    Interaction,
    Offer,
    OutboundDelivery,
)

__all__ = [
    "Agent",
    "AgentSkill",
    "Assignment",
    "AttachmentRecord",
    "Base",
    "CannedResponse",
    "ChannelInstance",
    "ChannelState",
    "Contact",
    "ContactAddress",
    "Conversation",
    "ConversationRef",
    "Interaction",
    "MediaAccess",
    "Offer",
    "OutboundDelivery",
    "QaEvaluation",
    "QaForm",
    "QaFormVersion",
    "Queue",
    "RoutingRule",
    "SearchOutbox",
    "Session",
    "Skill",
    "TranscriptionJob",
    "User",
]
