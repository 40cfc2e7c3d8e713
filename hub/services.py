"""The objects the lifespan builds once and every request, socket and loop shares."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncEngine

from hub.actions.ingest import Ingestor, MediaPut
from hub.auth.ratelimit import SlidingWindowLimiter
from hub.db.engine import SessionFactory
from hub.events import EventBus
from hub.settings import Settings

if TYPE_CHECKING:
    from hub.metrics import Metrics


@dataclass
class Services:
    settings: Settings
    engine: AsyncEngine
    sessions: SessionFactory
    bus: EventBus
    ingestor: Ingestor
    media_put: MediaPut
    login_limiter: SlidingWindowLimiter
    metrics: Metrics
    extras: dict[str, Any] = field(default_factory=dict)  # later subsystems (dispatcher, ...)
