"""The email channel: one support mailbox, read over IMAP and answered over SMTP.

Theory of operation
-------------------
*Receiving* (:meth:`EmailChannel.run`): an :class:`~channels.email.receiver.ImapReceiver` keeps
one IMAP connection to the mailbox. It waits with IDLE (RFC 2177) where the server offers it and
polls with NOOP otherwise, reconnecting with capped exponential backoff after any failure. It
reads by UID: the pair (UIDVALIDITY, last UID) is persisted through the hub's
:class:`~channels.email.state.MailboxStateStore`, so a restart resumes exactly where the last
committed message was and a UIDVALIDITY change triggers a resync of unseen mail. Messages are
fetched in batches bounded by count and bytes with ``BODY.PEEK[]`` (reading marks nothing;
a mail too big to fetch is recorded from its headers), parsed by the pure
:func:`~channels.email.parse.parse_email` (a backlog's batches in worker processes, see
:mod:`~channels.email.parse_pool`, while the previous batch is being committed), and a whole
batch is handed to the hub's sink at once (the hub group-commits it); only after the sink
returned (the ingest committed) is the message flagged ``\\Seen`` (or moved to the processed
folder, one STORE or MOVE per batch) and the UID recorded. A crash in between re-delivers;
the hub dedupes on the Message-ID, so each mail is stored once. Mail that cannot be parsed
(no usable sender, absurd size) is moved to the quarantine folder and logged, never dropped; a
sink failure stops the batch at that message and retries it after a backoff.

*Sending* (:meth:`EmailChannel.send`): the hub's outbox calls it per reply. The reply is
composed with our own Message-ID (stable per outbox item, so retries are recognisable),
In-Reply-To/References to the conversation's messages, the agent's name in From, the ticket
token in the subject, and attachments; it goes out through aiosmtplib (implicit TLS, STARTTLS
or plain, optional auth). SMTP 4xx and connection failures raise ``TransientChannelError``
(the outbox retries), 5xx ``PermanentChannelError`` (the item is marked failed for the agent).
A copy is appended to the Sent folder when configured; a failure there is logged, not raised,
because the mail already left and a retry would send it twice.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging

from channels.base import (
    AddressKind,
    ChannelKind,
    Inbound,
    Outbound,
    ParseError,
    PermanentChannelError,
    SendResult,
    Sink,
)
from channels.email.compose import compose_reply, recipients_of
from channels.email.config import EmailConfig
from channels.email.imap import ImapSession
from channels.email.parse import ParseOptions, parse_email
from channels.email.parse_pool import default_workers, parse_many
from channels.email.receiver import ImapReceiver
from channels.email.smtp import smtp_send
from channels.email.state import MailboxStateStore

log = logging.getLogger(__name__)

PARSE_IN_THREAD_BYTES = 1024 * 1024  # bigger mails are parsed off the event loop


class EmailChannel:
    """A :class:`channels.base.Channel` for one email address."""

    kind = ChannelKind.EMAIL

    def __init__(self, config: EmailConfig, state_store: MailboxStateStore) -> None:
        self.config = config
        self.channel_id = config.channel_id
        ours = {config.address.lower(), *(a.lower() for a in config.parse.our_addresses)}
        self._parse_options: ParseOptions = dataclasses.replace(
            config.parse, our_addresses=frozenset(ours)
        )
        self._workers = (default_workers() if config.parse_workers is None
                         else config.parse_workers)
        self.receiver = ImapReceiver(config.channel_id, config.imap, state_store, self.parse,
                                     self.parse_batch)

    async def parse(self, raw: bytes) -> Inbound:
        """Parse one fetched mail (in a worker thread when it is large)."""
        if len(raw) > PARSE_IN_THREAD_BYTES:
            return await asyncio.to_thread(self._parse_sync, raw)
        return self._parse_sync(raw)

    async def parse_batch(self, raws: list[bytes]) -> list[Inbound | ParseError]:
        """Parse a fetched batch; a backlog's batches go to worker processes."""
        return await parse_many(raws, self.channel_id, self.kind, self._parse_options,
                                workers=self._workers)

    def _parse_sync(self, raw: bytes) -> Inbound:
        return parse_email(raw, channel_id=self.channel_id, channel=self.kind,
                           options=self._parse_options)

    async def run(self, sink: Sink) -> None:
        await self.receiver.run(sink)

    def _domain(self) -> str:
        return self.config.message_id_domain or self.config.address.rpartition("@")[2]

    async def check_send(self, outbound: Outbound) -> None:
        """Refuse at once what :meth:`send` could never deliver (``SendPrecheck``)."""
        if self.config.smtp is None:
            raise PermanentChannelError("no SMTP server configured for this mailbox",
                                        code="no_smtp")
        if outbound.to.kind is not AddressKind.EMAIL:
            raise PermanentChannelError("email reply to a non-email address", code="bad_address")

    async def send(self, outbound: Outbound) -> SendResult:
        cfg = self.config
        await self.check_send(outbound)
        assert cfg.smtp is not None
        msg = compose_reply(outbound, address=cfg.address, display_name=cfg.display_name,
                            domain=self._domain())
        await smtp_send(cfg.smtp, msg, cfg.address, recipients_of(msg))
        message_id = str(msg["Message-ID"])
        if cfg.sent_folder:
            await self._append_sent(msg.as_bytes(), cfg.sent_folder)
        return SendResult(external_id=message_id)

    async def _append_sent(self, raw: bytes, folder: str) -> None:
        session = ImapSession(self.config.imap)
        try:
            await session.connect()
            await session.append(raw, folder)
        except Exception as exc:  # the mail is already sent: never fail (and re-send) for this
            log.warning("mailbox %s: could not append the sent copy to %s: %r",
                        self.channel_id, folder, exc)
        finally:
            await session.close()
