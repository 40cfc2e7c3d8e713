"""Request and response bodies. Requests forbid unknown fields so typos fail loudly."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hub.domain import ConversationStatus, Presence, Role


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class LoginIn(Strict):
    email: str = Field(min_length=3, max_length=320)
    password: str = Field(min_length=1, max_length=1024)


class UserOut(BaseModel):
    id: str
    email: str
    name: str
    role: Role
    agent_id: str | None = None


class LoginOut(BaseModel):
    token: str
    user: UserOut


class ConversationQuery(Strict):
    status: ConversationStatus | None = None
    channel: Literal["voice", "email", "fax", "sms", "webchat"] | None = None
    queue: str | None = None
    assignee: str | None = Field(default=None, description="agent id, or 'me', or 'none'")
    contact: str | None = None
    limit: int = Field(default=50, ge=1, le=200)
    cursor: str | None = Field(default=None, description="`next_cursor` of the previous page")


class ConversationOut(BaseModel):
    id: str
    contact_id: str
    channel: str
    queue_id: str | None
    status: str
    assignee_id: str | None
    priority: int
    subject: str | None
    attributes: dict[str, Any]
    created_at: str
    last_message_at: str
    resolved_at: str | None


class ConversationPage(BaseModel):
    items: list[ConversationOut]
    next_cursor: str | None


class InteractionPage(BaseModel):
    items: list[dict[str, Any]]


class ReplyIn(Strict):
    text: str = Field(default="", max_length=100_000)
    html: str | None = Field(default=None, max_length=500_000)
    subject: str | None = Field(default=None, max_length=998)
    client_id: str | None = Field(
        default=None, max_length=100, description="idempotency key: the same id is stored once"
    )
    attachments: list[str] = Field(
        default=[], max_length=10, description="upload tokens from POST /api/attachments"
    )

    @model_validator(mode="after")
    def _not_empty(self) -> ReplyIn:
        if not self.text and not self.attachments:
            raise ValueError("a reply needs text or at least one attachment")
        return self


class NoteIn(Strict):
    text: str = Field(min_length=1, max_length=100_000)


class TransferIn(Strict):
    agent_id: str | None = None
    queue_id: str | None = None
    note: str | None = Field(default=None, max_length=10_000)


class ContactPatch(Strict):
    name: str | None = Field(default=None, max_length=200)
    attributes: dict[str, Any] | None = None


class MergeIn(Strict):
    other_id: str = Field(description="contact merged INTO this one (its addresses and cases move)")


class PresenceIn(Strict):
    presence: Presence
    reason: str | None = Field(default=None, max_length=100)


class UserCreateIn(Strict):
    email: str = Field(min_length=3, max_length=320)
    name: str = Field(min_length=1, max_length=200)
    role: Role
    password: str = Field(min_length=8, max_length=1024)


class OkOut(BaseModel):
    ok: bool = True
