"""REST API under ``/api``: endpoints declared with their roles and schemas (see framework)."""
