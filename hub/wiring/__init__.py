"""Per-medium factories for the channel host: import this package to register them all."""

from hub.wiring import (
    sms,  # registers the "sms" factory
    webchat,  # registers the "webchat" factory
)

__all__ = ["sms", "webchat"]
