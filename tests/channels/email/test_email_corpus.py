"""Table-driven test over the hand-written corpus in tests/fixtures/email/*.eml.

Every fixture has an entry (a test fails for a fixture without expectations), and each entry
states the fields that make that mail tricky.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from channels.base import ParseError
from channels.email.body import Limits
from channels.email.parse import ParseOptions, parse_email

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "email"
OURS = ("support@contacthub.test", "sales@contacthub.test")

# Keys: sender, name, subject, text (exact), text_has, html_has, html_lacks, atts (filenames),
# inline (filenames with cid), refs, auto (kind or None), quoted_has, signature_has, fallback,
# omitted, error (ParseError field), meta (subset of metadata), recipient, external_id,
# html_new / html_new_lacks (the HTML shown before any folded <details> part).
CASES: dict[str, dict[str, Any]] = {
    "plain_ascii": {"sender": "alice@example.com", "name": "Alice Example",
                    "subject": "Printer does not print", "external_id": "<plain-1@example.com>",
                    "text_has": ["printer stopped printing"], "auto": None, "refs": ()},
    "latin1_qp": {"name": "François Léger", "subject": "Facture erronée",
                  "text_has": ["J'ai reçu une facture erronée"], "fallback": False},
    "windows1252_8bit": {"text_has": ["\u201cpremium\u201d plan costs 20\u20ac \u2013 that\u2019s"],
                         "fallback": False},
    "shift_jis": {"name": "田中太郎", "subject": "注文について",
                  "text": "お世話になっております。\n注文番号は①です。"},
    "iso2022jp": {"subject": "返品", "text": "こんにちは、返品したいです。"},
    "koi8r": {"name": "Иван", "subject": "Заказ не пришёл", "text_has": ["Мой заказ не пришёл."]},
    "utf8_rfc2047_subject": {"name": "Zoë", "subject": "Café order \U0001F600 and more",
                             "text": "Two croissants, s'il vous plaît — \U0001F950"},
    "utf8_base64_body": {"text": "Grüße aus München, die Lieferung ist beschädigt."},
    "mislabelled_utf8_as_ascii": {"text": "Hälsningar från Göteborg", "fallback": True},
    "unknown_charset": {"text": "Café crème please", "fallback": True},
    "mislabelled_cp1252_as_utf8": {"text": "Naïve résumé \u2013 price 5€", "fallback": True},
    "raw_utf8_headers": {"name": "Jürgen Müller", "subject": "Rückfrage zur Bestellung",
                         "text": "Bitte um Rückruf."},
    "gb2312": {"subject": "退款申请", "text_has": ["我想退款", "镕"]},
    "outlook_reply_thread_index": {
        "sender": "john.smith@corp.example", "name": "Smith, John",
        "text": "Thanks, that fixed it.\n\nJohn Smith | Accounts",
        "quoted_has": ["Sent: Monday, November 9, 2026", "Please try again now."],
        "refs": ("<ch-reply-1@contacthub.test>", "<first@corp.example>",
                 "thread-index:AQIDBAUGBwgJCgsMDQ4PEBESExQVFg==", "ticket:77"),
        "html_has": ["Thanks, that fixed it."], "html_lacks": ["<style", "MsoNormal {"],
    },
    "outlook_thread_index_only": {"refs": ("thread-index:MjM0NTY3ODk6Ozw9Pj9AQUJDREVGRw==",)},
    "apple_mail_inline_image": {
        "text": "Here is a photo of the screen.", "quoted_has": ["Could you send a photo?"],
        "inline": ["screen.png"], "html_has": ['src="cid:F00D-1@example.com"'],
        "refs": ("<case-9@contacthub.test>",),
        "external_id": "<A1B2C3D4-1111-2222-3333-444455556666@example.com>",
    },
    "apple_mail_mixed_interleaved": {"text": "First the box:\n\nand then the label.",
                                     "atts": ["box.png"], "inline": []},
    "gmail_forward": {"text": "This never arrived, can you check?",
                      "quoted_has": ["Your order 5521 has shipped."], "meta": {"forwarded": True}},
    "gmail_reply_quoted_flowed": {
        "text": "Yes please refund to the original card, it is the one ending in 4242.",
        "quoted_has": ["> Shall we refund"],
        "refs": ("<ch-out-5@contacthub.test>", "<orig-5@gmail.example>"),
    },
    "forward_as_attachment": {"text": "See the attached mail from my colleague.",
                              "atts": ["The broken delivery.eml"], "refs": ()},
    "dsn_bounce": {
        "auto": "bounce", "sender": "mailer-daemon@mx.contacthub.test",
        "refs": ("<ch-out-314@contacthub.test>",), "text_has": ["could not\nbe delivered"],
        "meta": {"dsn": {"reporting-mta": "dns; mx.contacthub.test", "action": "failed",
                         "status": "5.1.1", "final-recipient": "rfc822; nobody@gone.example",
                         "diagnostic-code": "smtp; 550 5.1.1 User unknown"}},
    },
    "dsn_headers_only": {"auto": "bounce", "refs": ("<ch-out-900@contacthub.test>",),
                         "meta": {"dsn": {"reporting-mta": "dns; relay.example",
                                          "action": "delayed", "status": "4.4.7",
                                          "final-recipient": "rfc822; slow@far.example"}}},
    "ooo_auto_submitted": {"auto": "auto_reply",
                           "refs": ("<ch-out-55@contacthub.test>", "ticket:55")},
    "ooo_x_autoreply": {"auto": "auto_reply", "meta": {"auto_reasons": ["x-autoreply"]}},
    "x_autorespond": {"auto": "auto_reply", "meta": {"auto_reasons": ["x-autorespond"]}},
    "precedence_bulk": {"auto": "bulk"},
    "mailing_list": {"auto": "list", "recipient": "users@lists.example.net"},
    "null_return_path": {"auto": "bounce", "meta": {"auto_reasons": ["null-return-path"]}},
    "huge_attachment": {
        "atts": ["shot.png"], "text": "Full logs attached, plus a screenshot.",
        "omitted": [{"filename": "logs.bin", "content_type": "application/octet-stream",
                     "size": 300000, "reason": "too_large"}],
    },
    "nested_multipart": {"text": "Contract attached, logo inline.",
                         "atts": ["part-1.png", "contract.pdf", "data.csv"],
                         "inline": ["part-1.png"], "html_has": ['src="cid:logo@nest"']},
    "broken_boundary": {"text": "The first part is fine.", "atts": ["cut.pdf"],
                        "meta": {"defects": ["CloseBoundaryNotFoundDefect"]}},
    "missing_boundary_param": {"text": "Where did my boundary go?", "atts": []},
    "missing_message_id": {"external_id_prefix": "sha256:"},
    "html_only_script_remote": {
        "text": "Hello & welcome\n\nPlease verify your account.\n\n- One\n- Two",
        "html_has": ['<a href="https://shady.example/account" rel="noopener noreferrer nofollow">',
                     '<p style="color:red">'],
        "html_lacks": ["script", "evil.example", "tracker.example", "cdn.example", "onload",
                       "onclick", "javascript:", "<iframe", "<form", "<input", "<svg", "<link",
                       "background"],
        "meta": {"html_only": True, "blocked_remote_images": 2},
    },
    "html_only_qp_cp1252": {"text": "Votre commande n° 12 est expédiée \u2013 merci !",
                            "meta": {"html_only": True}},
    "inline_cid_image": {"text": "The error:", "inline": ["err.png"],
                         "html_has": ['<img src="cid:err.png@01D9">']},
    "winmail_dat": {"atts": ["winmail.dat"], "meta": {"tnef": True}},
    "calendar_invite": {"atts": ["invite.ics"],
                        "meta": {"calendar": {"method": "REQUEST", "summary": "Onboarding call",
                                              "dtstart": "20261120T100000Z",
                                              "uid": "evt-123@corp.example"}}},
    "rfc2231_filename": {"atts": ["Rechnung März.pdf"]},
    "encoded_word_filename": {"atts": ["été.png"]},
    "broken_base64": {"text": "Hello world"},
    "ticket_token_subject": {"refs": ("ticket:1042",), "auto": None},
    "reply_from_cc": {"sender": "colleague@example.com",
                      "refs": ("<ch-out-1042@contacthub.test>", "<plain-1@example.com>"),
                      "meta": {"cc": ["alice@example.com"]}},
    "signature_dashes": {"text": "Can you call me back?", "signature_has": ["Head of Things"]},
    "mobile_sent_from_iphone": {"text": "OK thanks", "signature_has": ["Sent from my iPhone"],
                                "quoted_has": ["Your order is on its way."]},
    "no_from": {"error": "from"},
    "invalid_from": {"error": "from"},
    "garbage_binary": {"error": "from"},
    "lowercase_headers_crlf": {"sender": "low@example.com", "subject": "lowercase headers",
                               "text": "header names in lower case, CRLF line ends."},
    "utf7": {"text": "Hi Mom ☺-!"},
    "no_mime_8bit_latin1": {"text": "Straße und Grüße, no MIME headers at all.", "fallback": True},
    "deep_nesting": {"meta": {"truncated_depth": True}},
    "multiple_from": {"sender": "first@example.com", "name": "First",
                      "meta": {"to": ["support@contacthub.test", "other@contacthub.test"],
                               "reply_to": ["replies@example.com"]}},
    # HTML quote marks (channels/email/htmlquotes.py): new part shown, the rest folded
    "html_gmail_reply": {
        "text": "The refund arrived, thank you!", "signature_has": ["Reyes Bakery"],
        "quoted_has": ["> Your refund was issued today."], "meta": {"quote_marker": "gmail"},
        "html_has": ['<details class="ch-signature"><summary>Signature</summary>',
                     '<details class="ch-quoted"><summary>Quoted text</summary>'],
        "html_new": "The refund arrived, thank you!", "html_new_lacks": ["Reyes", "issued", "--"],
    },
    "html_outlook_web_reply": {
        "text": "Please send the corrected invoice to our accounts team.",
        "signature_has": ["Chidi Okafor | Procurement"],
        "quoted_has": ["Sent: Monday, November 16, 2026 4:00 PM", "Here is invoice 8812"],
        "meta": {"quote_marker": "outlook", "html_only": True},
        "html_new": "Please send the corrected invoice", "html_new_lacks": ["<hr", "8812"],
    },
    "html_outlook_desktop_reply": {
        "text": "Die Lieferung ist heute angekommen, vielen Dank.",
        "quoted_has": ["Gesendet: Montag", "Ihre Lieferung 4471 ist unterwegs."],
        "meta": {"quote_marker": "outlook"}, "html_new_lacks": ["Von:", "unterwegs"],
    },
    "html_outlook_mac_reply": {
        "text": "It works again, you can close this.",
        "quoted_has": ["Subject: Account locked", "We unlocked your account"],
        "meta": {"quote_marker": "outlook"}, "html_new_lacks": ["unlocked"],
    },
    "html_apple_reply": {
        "text": "Tuesday afternoon works for me.", "refs": ("<ch-out-301@contacthub.test>",),
        "quoted_has": ["wrote:", "Which day suits you"], "meta": {"quote_marker": "apple"},
        "html_new_lacks": ["wrote:", "Which day"],
    },
    "html_thunderbird_reply": {
        "text": "The reset link expired before I could use it.",
        "signature_has": ["Lars Berg, Berg Consulting"],
        "quoted_has": ["On 16.11.26 10:00, Acme Support wrote:", "Here is your reset link."],
        "meta": {"quote_marker": "thunderbird"}, "html_new_lacks": ["reset link.", "Berg"],
    },
    "html_apple_interleaved": {  # answers between the quotes: nothing is cut
        "text": "Answers below.\n\n> Which colour?\n\nBlue.\n\n> Which size?\n\nLarge.",
        "meta": {"quote_marker": "", "quoted_text": ""}, "html_lacks": ["<details"],
    },
    "german_outlook_quote": {"text": "Danke, passt so.", "quoted_has": ["Betreff: Lieferung"]},
    "invalid_date": {"no_date_header": True},
    "bcc_delivered_to": {"recipient": "sales@contacthub.test"},
    "long_subject_folded_mixed_encodings": {"name": "Döe, Jöhn",
                                            "subject": "Grüße aus Köln und Привет"},
}


def test_corpus_is_large_and_fully_specified() -> None:
    names = {p.stem for p in FIXTURES.glob("*.eml")}
    assert len(names) >= 40
    assert names == set(CASES), f"unspecified: {names - set(CASES)}, missing: {set(CASES) - names}"


def _check(exp: dict[str, Any], name: str) -> None:
    raw = (FIXTURES / f"{name}.eml").read_bytes()
    opts = ParseOptions(limits=Limits(max_attachment_bytes=256 * 1024), our_addresses=OURS)
    if "error" in exp:
        with pytest.raises(ParseError) as info:
            parse_email(raw, channel_id="mb", options=opts)
        assert info.value.field == exp["error"]
        return
    ib = parse_email(raw, channel_id="mb", options=opts)
    md = ib.metadata
    simple = {"sender": ib.sender.value, "name": ib.sender_name, "subject": ib.subject,
              "text": ib.text, "refs": ib.thread_refs, "auto": md["auto_kind"],
              "fallback": md["charset_fallback"], "omitted": md["omitted_attachments"],
              "recipient": ib.recipient, "external_id": ib.external_id}
    for key, actual in simple.items():
        if key in exp:
            assert actual == exp[key], f"{name}: {key}"
    assert ib.auto_generated is (md["auto_kind"] is not None)
    for part in exp.get("text_has", []):
        assert part in ib.text, name
    for part in exp.get("html_has", []):
        assert part in (ib.html or ""), name
    for part in exp.get("html_lacks", []):
        assert part not in (ib.html or "").lower(), f"{name}: {part}"
    shown_first = (ib.html or "").split("<details", 1)[0]  # what is visible before unfolding
    if "html_new" in exp:
        assert exp["html_new"] in shown_first, name
    for part in exp.get("html_new_lacks", []):
        assert part not in shown_first, f"{name}: {part}"
        assert part in (ib.html or ""), f"{name}: {part} must still be there, folded"
    for part in exp.get("quoted_has", []):
        assert part in md["quoted_text"], name
        assert part not in ib.text, name
    for part in exp.get("signature_has", []):
        assert part in md["signature"], name
        assert part not in ib.text, name
    if "atts" in exp:
        assert [a.filename for a in ib.attachments] == exp["atts"], name
    if "inline" in exp:
        inline = [a.filename for a in ib.attachments if a.inline]
        assert inline == exp["inline"], name
        assert all(a.content_id for a in ib.attachments if a.inline)
    for key, value in exp.get("meta", {}).items():
        assert md[key] == value, f"{name}: metadata {key}"
    if "external_id_prefix" in exp:
        assert ib.external_id.startswith(exp["external_id_prefix"])
        assert parse_email(raw, channel_id="mb").external_id == ib.external_id  # stable
    if exp.get("no_date_header"):
        assert "date_header" not in md
    assert ib.received_at.tzinfo is not None


@pytest.mark.parametrize("name", sorted(CASES))
def test_corpus_message(name: str) -> None:
    _check(CASES[name], name)
