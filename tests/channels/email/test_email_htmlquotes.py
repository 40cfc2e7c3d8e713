"""Edge cases of the HTML quote split (channels/email/htmlquotes.py); the corpus covers clients."""

from __future__ import annotations

from channels.email.display import display_parts
from channels.email.htmlquotes import split_html_quotes


def test_all_quote_is_not_split() -> None:
    source = '<div class="gmail_quote"><div>---------- Forwarded message ---------</div>x</div>'
    split = split_html_quotes(source)
    assert (split.new, split.quoted, split.marker) == (source, "", "")


def test_unclosed_quote_runs_to_the_end() -> None:
    split = split_html_quotes('<p>Yes.</p><div class="gmail_quote">On Monday X wrote:<p>Q?')
    assert split.marker == "gmail"
    assert split.new == "<p>Yes.</p>"
    assert split.quoted.endswith("<p>Q?")


def test_from_line_without_sent_and_to_is_not_a_quote() -> None:
    split = split_html_quotes("<p>Hi.</p><p>From: my phone, as usual. Thanks</p>")
    assert split.marker == ""


def test_display_folds_and_sanitizes_every_part() -> None:
    raw = ('<p>New <script>alert(1)</script>text</p><div class="gmail_quote">'
           '<img src="https://tracker.example/p.gif"><p>old</p></div>')
    shown = display_parts(raw, "", "Re: x", allow_remote_images=False)
    assert shown.html.startswith("<p>New text</p><details class=\"ch-quoted\">")
    assert "script" not in shown.html and "tracker.example" not in shown.html
    assert shown.blocked_remote == 1
    assert shown.text.new == "New text" and shown.text.quoted == "old"


def test_forward_is_labelled_as_such() -> None:
    raw = ('<p>FYI, see below.</p><div class="gmail_quote"><div>---------- Forwarded message'
           ' ---------<br>From: Shop</div><p>Shipped.</p></div>')
    shown = display_parts(raw, "", "Fwd: order", allow_remote_images=False)
    assert shown.text.forwarded
    assert "<summary>Forwarded message</summary>" in shown.html
