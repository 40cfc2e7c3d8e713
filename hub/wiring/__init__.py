"""Per-medium factories for the channel host: import this package to register them all."""

from hub.wiring import (
    email,  # registers the "email" and "fax" factories
    sms,  # registers the "sms" factory
    voice,  # registers the "voice" factory
    webchat,  # registers the "webchat" factory
)

__all__ = ["email", "sms", "voice", "webchat"]
