"""The hub: the application and the only composition root (settings, DB, actions, API, realtime)."""
