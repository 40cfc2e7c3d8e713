"""The Kannel fixture itself: a missing binary fails loudly with the install hint."""

from __future__ import annotations

import shutil

import pytest

from tests.servers import kannel


def test_missing_kannel_binary_fails_with_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda *_a, **_k: None)
    with pytest.raises(RuntimeError, match=r"tests/servers/kannel\.sh"):
        kannel.find_binary("bearerbox")


def test_fake_smsc_line_decoding() -> None:
    line = kannel.parse_smsc_line("12345 +15551234567 ucs-2 %04%3F%00+%D8%3D%DE%00")
    assert (line.sender, line.receiver, line.kind) == ("12345", "+15551234567", "ucs-2")
    assert line.text == "п 😀"
    plain = kannel.parse_smsc_line("12345 +15551234567 text hello there")
    assert plain.text == "hello there"
