"""Persistence: SQLAlchemy 2 async models, the engine factory and migrations."""
