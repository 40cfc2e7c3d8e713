"""The recorder: search over recorded interactions, media storage, transcription/OCR hooks.

Leaf package: it never imports ``hub``, ``channels`` or ``routing``. The hub owns the
append-only interaction log and the outbox in its DB and feeds :mod:`recorder.search`;
:mod:`recorder.media` stores recordings and attachments by content hash.
"""
