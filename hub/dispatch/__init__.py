"""The dispatcher: the only shell around the pure router (see ``dispatcher.py``)."""

from hub.dispatch.dispatcher import Dispatcher

__all__ = ["Dispatcher"]
