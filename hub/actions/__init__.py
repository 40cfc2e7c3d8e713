"""The only writers. ``check_*`` validates, ``do_*`` mutates inside a transaction, and events are
published only after the transaction committed."""
