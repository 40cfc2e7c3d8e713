"""Channel adapters: each medium (voice, email, fax, SMS, web chat) as one normalized contact.

Adapters speak :mod:`channels.base` and never import the hub: the hub passes them a sink.
"""
