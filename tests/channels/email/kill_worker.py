"""Child process for the kill test: run the email receive loop into a SQLite-backed hub.

Usage: python -m tests.channels.email.kill_worker HOST PORT USER PASSWORD DB
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from channels.email.channel import EmailChannel
from channels.email.config import EmailConfig, ImapConfig
from tests.channels.email.sqlite_hub import SqliteHub


async def main(host: str, port: str, user: str, password: str, db: str) -> None:
    hub = SqliteHub(Path(db), delay_s=0.01)
    imap = ImapConfig(host=host, port=int(port), username=user, password=password,
                      security="none", allow_plaintext_auth=True, batch_size=50,
                      backoff_initial_s=0.05)
    channel = EmailChannel(EmailConfig("support", "support@contacthub.test", imap), hub)
    await channel.run(hub)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:6]))
