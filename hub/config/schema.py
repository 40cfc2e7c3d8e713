"""The declarative configuration file (``contacthub apply``), as pydantic models.

Every model forbids unknown fields, so a typo (``offer_tll_s``) is an error with a line number
instead of a silently ignored setting. Values are normalized here (emails lower-cased, phone numbers
to E.164) so the stored form matches what the channel adapters and ingest compare against, and
re-applying the same file is a no-op. Cross-references between sections are checked in
:mod:`hub.config.load`, which knows the line of every value.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from channels.addresses import normalize_email, normalize_phone
from channels.base import ChannelKind, ParseError
from hub import canned
from hub.domain import Distribution, Role
from hub.rules import ALLOWED_CONDITIONS

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_ENV_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_SITE_KEY_RE = re.compile(r"^[A-Za-z0-9_-]{4,128}$")
_ENDPOINT_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,19}/[^\s,&()]{1,180}$")


def _name(value: str) -> str:
    if not _NAME_RE.match(value):
        raise ValueError(
            f"{value!r} is not a valid name (1-100 of letters, digits, '_', '.', '-', "
            "starting with a letter or digit)"
        )
    return value


def _env_name(value: str) -> str:
    if not _ENV_RE.match(value):
        raise ValueError(f"{value!r} is not an environment variable name")
    return value


def _email(value: str) -> str:
    try:
        return normalize_email(value)
    except ParseError as exc:
        raise ValueError(str(exc)) from None


def _phone(value: str) -> str:
    if not value.strip().startswith(("+", "00")):
        raise ValueError(f"{value!r}: write phone numbers in international form, e.g. +14155550100")
    try:
        return normalize_phone(value)
    except ParseError as exc:
        raise ValueError(str(exc)) from None


def _voice_endpoint(value: str) -> str:
    if not _ENDPOINT_RE.match(value):
        raise ValueError(
            f"{value!r} is not an Asterisk dial string such as PJSIP/agent1 or PJSIP/1001@trunk"
        )
    return value


Name = Annotated[str, AfterValidator(_name)]
VoiceEndpoint = Annotated[str, AfterValidator(_voice_endpoint)]
EnvName = Annotated[str, AfterValidator(_env_name)]
Email = Annotated[str, AfterValidator(_email)]
Level = Annotated[int, Field(ge=1, le=5)]
Seconds = Annotated[int, Field(ge=0, le=7 * 86400)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RequiredSkill(_Model):
    skill: Name
    min_level: Level = 1


class ServiceLevel(_Model):
    """Answer ``target_pct`` percent of the work within ``target_s`` seconds."""

    target_pct: Annotated[int, Field(ge=1, le=100)] = 80
    target_s: Annotated[int, Field(gt=0, le=7 * 86400)] = 20


OverflowAction = Literal["relax_skills", "add_queue", "escalate", "voicemail", "callback"]
_ACTION_FIELD = {"add_queue": "queue", "escalate": "tier", "relax_skills": "min_level"}


class OverflowStep(_Model):
    """After ``after_s`` seconds of waiting, widen who may take the work (or offer a way out)."""

    after_s: Seconds
    action: OverflowAction
    queue: Name | None = None  # add_queue: also offer to agents of this queue
    tier: Annotated[int, Field(ge=1, le=9)] | None = None  # escalate: to agents of this tier
    min_level: Level | None = None  # relax_skills: lower every required level to this

    @field_validator("queue", "tier", "min_level")
    @classmethod
    def _fits_action(cls, value: object, info: ValidationInfo) -> object:
        action = info.data.get("action")
        wrong = action is not None and _ACTION_FIELD.get(action) != info.field_name
        if value is not None and wrong:
            raise ValueError(f"does not apply to action {action}")
        return value

    @model_validator(mode="after")
    def _queue_given(self) -> OverflowStep:
        if self.action == "add_queue" and self.queue is None:
            raise ValueError("action add_queue needs a queue")
        return self


class QueueSpec(_Model):
    name: Name
    description: Annotated[str, Field(max_length=500)] = ""
    required_skills: list[RequiredSkill] = []
    distribution: Distribution = Distribution.LONGEST_IDLE
    priority: Annotated[int, Field(ge=-1000, le=1000)] = 0
    offer_ttl_s: Annotated[int, Field(gt=0, le=3600)] = 30
    service_level: ServiceLevel = ServiceLevel()
    wrap_up_s: Seconds = 0
    overflow: list[OverflowStep] = []
    requeue_on_disconnect: bool = True
    disconnect_grace_s: Seconds = 120
    preferred_agent_window_s: Seconds = 0

    @model_validator(mode="after")
    def _overflow_in_order(self) -> QueueSpec:
        waits = [step.after_s for step in self.overflow]
        if waits != sorted(waits):
            raise ValueError("overflow steps must be listed in increasing after_s order")
        return self


class Capacity(_Model):
    """How many items of each kind an agent handles at once (0: never offered that kind)."""

    voice: Annotated[int, Field(ge=0, le=1)] = 0
    email: Annotated[int, Field(ge=0, le=100)] = 0
    fax: Annotated[int, Field(ge=0, le=100)] = 0
    sms: Annotated[int, Field(ge=0, le=100)] = 0
    webchat: Annotated[int, Field(ge=0, le=100)] = 0


class AgentSpec(_Model):
    email: Email
    name: Annotated[str, Field(min_length=1, max_length=200)]
    role: Role = Role.AGENT
    skills: dict[Name, Level] = {}
    capacity: Capacity = Capacity()
    call_blocks_all: bool = True  # while on a call, offer nothing else
    tier: Annotated[int, Field(ge=1, le=9)] = 1
    active: bool = True
    password_env: EnvName | None = None  # initial password only; never overwrites one
    voice_endpoint: VoiceEndpoint | None = None  # the agent's phone, e.g. "PJSIP/agent1"


class ChannelSpec(_Model):
    """One mailbox, number, fax line or web-chat site; ``address`` is what ingest matches on.

    Top-level ``config`` keys ending in ``_env`` name environment variables: ``password_env: X``
    is stored as ``password`` with the value of ``X`` (secrets stay out of the file).
    """

    kind: ChannelKind
    name: Name
    address: Annotated[str, Field(min_length=1, max_length=320)]
    queue: Name | None = None
    config: dict[str, Any] = {}
    enabled: bool = True

    @field_validator("address")
    @classmethod
    def _normalize_address(cls, raw: str, info: ValidationInfo) -> str:
        kind = info.data.get("kind")
        if kind is ChannelKind.EMAIL or (kind is ChannelKind.FAX and "@" in raw):
            return _email(raw)
        if kind is ChannelKind.WEBCHAT:
            if not _SITE_KEY_RE.match(raw):
                raise ValueError("a webchat address is a site key: 4-128 of [A-Za-z0-9_-]")
            return raw
        return _phone(raw) if kind is not None else raw

    @field_validator("config")
    @classmethod
    def _env_keys(cls, config: dict[str, Any]) -> dict[str, Any]:
        for key, var in config.items():
            if key.endswith("_env") and not (isinstance(var, str) and _ENV_RE.match(var)):
                raise ValueError(f"{key} must name an environment variable")
        return config


def _one_or_many(value: Any) -> Any:
    return value if isinstance(value, list) else [value]


Scalar = str | int | float | bool | None


class RuleWhen(_Model):
    """Conditions of a routing rule; the fields are exactly :data:`hub.rules.ALLOWED_CONDITIONS`."""

    channel: list[ChannelKind] | None = None
    address: list[Annotated[str, Field(min_length=1)]] | None = None
    keywords: list[Annotated[str, Field(min_length=1)]] | None = None
    contact: dict[str, Scalar] | None = None
    metadata: dict[str, Scalar] | None = None

    @model_validator(mode="before")
    @classmethod
    def _lists(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {
                k: _one_or_many(v) if k in {"channel", "address", "keywords"} else v
                for k, v in data.items()
            }
        return data

    @field_validator("address")
    @classmethod
    def _normalize_addresses(cls, values: list[str] | None) -> list[str] | None:
        return None if values is None else [_normalize_rule_address(a) for a in values]

    def conditions(self) -> dict[str, Any]:
        """The stored form: only given conditions; addresses normalized like channel addresses."""
        out: dict[str, Any] = {}
        if self.channel is not None:
            out["channel"] = [c.value for c in self.channel]
        if self.address is not None:
            out["address"] = list(self.address)
        if self.keywords is not None:
            out["keywords"] = list(self.keywords)
        if self.contact is not None:
            out["contact"] = dict(self.contact)
        if self.metadata is not None:
            out["metadata"] = dict(self.metadata)
        return out


def _normalize_rule_address(raw: str) -> str:
    if "@" in raw:
        return _email(raw)
    if raw.strip().startswith("+"):
        return _phone(raw)
    return raw


assert set(RuleWhen.model_fields) == ALLOWED_CONDITIONS, "RuleWhen out of sync with hub.rules"


class RuleSpec(_Model):
    name: Annotated[str, Field(min_length=1, max_length=100)]
    position: int | None = None  # default: the rule's index in the file, times 10
    when: RuleWhen = RuleWhen()
    queue: Name | None = None
    priority: Annotated[int, Field(ge=-1000, le=1000)] = 0
    stop: bool = True

    @model_validator(mode="after")
    def _does_something(self) -> RuleSpec:
        if self.queue is None and self.priority == 0:
            raise ValueError("a rule needs a queue or a non-zero priority, or it does nothing")
        return self


class CannedSpec(_Model):
    """A canned response: team-wide, or personal to ``owner`` (a user's email)."""

    shortcut: Annotated[str, AfterValidator(canned.check_shortcut)]
    title: Annotated[str, Field(min_length=1, max_length=200)]
    body: Annotated[
        str, Field(min_length=1, max_length=canned.MAX_BODY), AfterValidator(canned.check_body)
    ]
    channels: list[ChannelKind] = []  # empty: every channel
    owner: Email | None = None


class ConfigFile(_Model):
    """The whole file. Every section is optional; what a section lists is created or updated."""

    skills: list[Name] = []
    queues: list[QueueSpec] = []
    agents: list[AgentSpec] = []
    channels: list[ChannelSpec] = []
    routing_rules: list[RuleSpec] = []
    canned_responses: list[CannedSpec] = []
