"""The session's own FETCH reader (channels/email/imap_fetch.py): the parser on hand-made
answers split at every byte, and the session against a real Dovecot (tests/servers/dovecot.py)."""

from __future__ import annotations

import asyncio

import pytest

from channels.base import TransientChannelError
from channels.email.imap import ImapSession
from channels.email.imap_fetch import FetchFailedError, FetchReader
from tests.servers.dovecot import Dovecot

from .conftest import imap_config, make_mail

# A body that looks like protocol: a tagged line, a FETCH start and a literal marker inside it.
TRICKY = b"A1 OK not the end\r\n* 9 FETCH (UID 99 BODY[] {5}\r\n)\r\nend\r\n"
ANSWER = (
    b"* 3 EXISTS\r\n"
    b"* 1 FETCH (UID 7 BODY[] {" + str(len(TRICKY)).encode() + b"}\r\n" + TRICKY + b")\r\n"
    b"* 2 FETCH (FLAGS (\\Seen))\r\n"
    b"* 3 FETCH (BODY[] {3}\r\nabc UID 9)\r\n"
    b"* 4 FETCH (UID 11 BODY[] {0}\r\n)\r\n"
    b"A1 OK Fetch completed.\r\n"
)
AFTER = b"* 4 EXISTS\r\n"  # what came after our tagged line: aioimaplib's again


def _answers_of(chunks: list[bytes]) -> tuple[list[tuple[bytes, bytes | None]], bytes]:
    loop = asyncio.new_event_loop()
    try:
        reader = FetchReader("A1", loop)
        rest: bytes | None = None
        for chunk in chunks:
            if rest is None:
                rest = reader.feed(chunk)
            else:  # the reader is done: later reads go to aioimaplib (FastFetch._route)
                rest += chunk
        assert rest is not None and reader.done.done()
        return reader.done.result(), rest
    finally:
        loop.close()


def test_reader_parses_literals_and_skips_other_untagged_lines() -> None:
    answers, rest = _answers_of([ANSWER + AFTER])
    assert [body for _, body in answers] == [TRICKY, None, b"abc", b""]
    assert [text.split(b" FETCH")[0] for text, _ in answers] == [b"* 1", b"* 2", b"* 3", b"* 4"]
    assert b"UID 9)" in answers[2][0]  # UID after the literal is still in the text
    assert rest == AFTER


def test_reader_gives_the_same_answer_however_the_bytes_are_split() -> None:
    whole, whole_rest = _answers_of([ANSWER + AFTER])
    data = ANSWER + AFTER
    for cut in range(1, len(data)):
        assert _answers_of([data[:cut], data[cut:]]) == (whole, whole_rest), cut
    assert _answers_of([data[i : i + 1] for i in range(len(data))]) == (whole, whole_rest)


def test_reader_reports_no_and_bad() -> None:
    loop = asyncio.new_event_loop()
    try:
        reader = FetchReader("A1", loop)
        answer = b"* 1 FETCH (UID 1 BODY[] {1}\r\nx)\r\nA1 NO [SERVERBUG] oops\r\n"
        assert reader.feed(answer) == b""
        with pytest.raises(FetchFailedError) as failed:
            reader.done.result()
        assert failed.value.status == "NO"
    finally:
        loop.close()


async def test_session_fetches_exact_bytes_and_sizes(dovecot: Dovecot) -> None:
    user = dovecot.add_user()
    tricky = make_mail(2, body=TRICKY.decode() + "x" * 20_000)
    mails = [make_mail(1), tricky, make_mail(3, body="\u00e9t\u00e9 ok")]
    dovecot.append(user, mails)
    session = ImapSession(imap_config(dovecot, user).imap)
    await session.connect()
    try:
        await session.select("INBOX")
        uids = await session.uid_search("ALL")
        fetched = dict(await session.fetch(uids))
        sizes = await session.sizes(uids)
        headers = dict(await session.fetch(uids[1:2], headers_only=True))
        await session.noop()  # aioimaplib reads the connection again after our FETCHes
        await session.flag(uids[:1], "\\Flagged")
    finally:
        await session.close()
    # Dovecot stores what was appended; the bytes come back unchanged, in UID order
    assert [fetched[u] for u in uids] == mails
    assert sizes == {u: len(m) for u, m in zip(uids, mails, strict=True)}
    assert headers[uids[1]] == tricky.split(b"\r\n\r\n")[0] + b"\r\n\r\n"


async def test_lost_connection_fails_the_fetch_at_once(dovecot: Dovecot) -> None:
    user = dovecot.add_user()
    dovecot.append(user, [make_mail(i, body="y" * 50_000) for i in range(200)])
    session = ImapSession(imap_config(dovecot, user, timeout_s=60.0).imap)
    await session.connect()
    try:
        await session.select("INBOX")
        uids = await session.uid_search("ALL")
        fetching = asyncio.ensure_future(session.fetch(uids))
        await asyncio.sleep(0)  # the command is sent
        session.client.protocol.transport.abort()  # the peer vanishes mid-answer
        with pytest.raises(TransientChannelError):
            await asyncio.wait_for(fetching, 5)  # not after the 60 s inactivity timeout
    finally:
        await session.close()
