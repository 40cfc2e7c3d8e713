"""Email through the real hub: Dovecot IMAP -> hub -> router -> agent -> reply over real SMTP
-> the customer's answer threads back. SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import email
from email.utils import make_msgid

from tests.conftest import Db
from tests.hub.email_helpers import accepted_mail, apply_mail_center, imap, reply_sent
from tests.servers.dovecot import Dovecot
from tests.servers.smtpd_server import smtp_server

__all__ = ["imap"]  # fixture


def mail(sender: str, to: str, msgid: str, subject: str, body: str, extra: str = "") -> bytes:
    return (
        f"From: Carla Customer <{sender}>\r\nTo: {to}\r\nSubject: {subject}\r\n"
        f"Message-ID: {msgid}\r\nDate: Tue, 24 Nov 2026 09:00:00 +0000\r\n{extra}"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    ).encode()


async def test_mail_in_reply_out_answer_threads_back(db: Db, imap: Dovecot) -> None:
    with smtp_server() as smtp:
        user = imap.add_user()
        await apply_mail_center(db, user, f"""
            imap_host: {imap.host}
            imap_port: {imap.port}
            imap_security: none
            allow_plaintext_auth: true
            password: "{imap.users[user]}"
            poll_interval_s: 0.2
            smtp_host: {smtp.host}
            smtp_port: {smtp.port}
            smtp_security: none
            smtp_auth: false
            display_name: Acme Support
            """)
        first_id = make_msgid(domain="example.org")
        first = mail("carla@example.org", user, first_id, "Broken kettle",
                     "My kettle arrived broken.")
        async with accepted_mail(db, imap, user, first) as (c, conv_id):
            sent = await reply_sent(c, conv_id, smtp)
            out = email.message_from_bytes(sent.content)
            assert sent.rcpt_tos == ["carla@example.org"]
            assert out["In-Reply-To"] == first_id
            assert "Acme Support" in out["From"]
            body = out.get_payload(decode=True)
            assert isinstance(body, bytes) and "A new one is on its way." in body.decode()
            # Carla answers our reply: it threads into the same conversation
            imap.append(user, [mail("carla@example.org", user, make_msgid(domain="example.org"),
                                    f"Re: {out['Subject']}", "Thanks!",
                                    extra=f"In-Reply-To: {out['Message-ID']}\r\n")])
            for _ in range(200):
                items = (await c.get(f"/api/conversations/{conv_id}/interactions")).json()["items"]
                if any(i["text"].startswith("Thanks!") for i in items):
                    break
                await asyncio.sleep(0.05)
            texts = [i["text"] for i in items if i["kind"] == "message"]
            assert texts[0].startswith("My kettle arrived broken.")
            assert texts[-1].startswith("Thanks!")
            sent_delivery = next(i for i in items if i["direction"] == "outbound")
            assert sent_delivery["delivery"]["status"] == "sent"
    # both mails were flagged \Seen only after they were committed
    conn = imap.client(user)
    conn.select("INBOX")
    _, data = conn.search(None, "UNSEEN")
    assert data == [b""]
    conn.logout()
