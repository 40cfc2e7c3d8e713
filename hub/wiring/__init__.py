"""Per-medium factories for the channel host: import this package to register them all."""
