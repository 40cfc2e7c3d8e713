"""X-Twilio-Signature against Twilio's documented examples, and our signed Kannel DLR URLs."""

from __future__ import annotations

import pytest

from channels.sms.signature import (
    dlr_token,
    twilio_signature,
    verify_dlr_token,
    verify_twilio_signature,
)

# Twilio's documented request-validation example (auth token "12345"): the URL, POST params and
# expected signature from Twilio's "Webhooks security" page (0/KCTR...), and the earlier one
# from twilio-php's validation docs (RSOYDt4T..., callers +14158675309).
DOC_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
DOC_TOKEN = "12345"
VECTORS = [
    (
        {"CallSid": "CA1234567890ABCDE", "Caller": "+12349013030", "Digits": "1234",
         "From": "+12349013030", "To": "+18005551212"},
        "0/KCTR6DLpKmkAf8muzZqo1nDgQ=",
    ),
    (
        {"CallSid": "CA1234567890ABCDE", "Caller": "+14158675309", "Digits": "1234",
         "From": "+14158675309", "To": "+18005551212"},
        "RSOYDt4T1cUTdK1PDd93/VVr8B8=",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("params", "expected"), VECTORS)
def test_documented_vectors(params: dict[str, str], expected: str) -> None:
    assert twilio_signature(DOC_TOKEN, DOC_URL, params.items()) == expected
    # order of the POST params does not matter: they are sorted
    assert verify_twilio_signature(DOC_TOKEN, DOC_URL, reversed(list(params.items())), expected)


def test_any_change_breaks_the_signature() -> None:
    params, good = VECTORS[0]
    assert not verify_twilio_signature(DOC_TOKEN, DOC_URL, {**params, "Digits": "9"}.items(), good)
    assert not verify_twilio_signature("54321", DOC_URL, params.items(), good)
    assert not verify_twilio_signature(DOC_TOKEN, DOC_URL + "&x=1", params.items(), good)
    assert not verify_twilio_signature(DOC_TOKEN, DOC_URL, params.items(), good[:-2])
    assert not verify_twilio_signature(DOC_TOKEN, DOC_URL, params.items(), None)
    assert not verify_twilio_signature(DOC_TOKEN, DOC_URL, params.items(), "")


def test_default_port_variants_are_accepted() -> None:
    params, good = VECTORS[0]
    with_port = "https://mycompany.com:443/myapp.php?foo=1&bar=2"
    assert verify_twilio_signature(DOC_TOKEN, with_port, params.items(), good)
    signed_with_port = twilio_signature(DOC_TOKEN, with_port, params.items())
    assert verify_twilio_signature(DOC_TOKEN, DOC_URL, params.items(), signed_with_port)
    other_port = "https://mycompany.com:8443/myapp.php?foo=1&bar=2"
    assert not verify_twilio_signature(DOC_TOKEN, other_port, params.items(), good)


def test_repeated_names_sign_all_values() -> None:
    pairs = [("MediaUrl", "b"), ("MediaUrl", "a"), ("Body", "x")]
    sig = twilio_signature("t", "https://h/p", pairs)
    assert sig == twilio_signature("t", "https://h/p", [("Body", "x"), ("MediaUrl", "a"),
                                                       ("MediaUrl", "b")])  # fmt: skip
    assert not verify_twilio_signature("t", "https://h/p", pairs[:2], sig)


def test_dlr_token_binds_message_id_and_secret() -> None:
    token = dlr_token("s3cret", "m-1")
    assert verify_dlr_token("s3cret", "m-1", token)
    assert not verify_dlr_token("s3cret", "m-2", token)
    assert not verify_dlr_token("other", "m-1", token)
    assert not verify_dlr_token("s3cret", "m-1", None)
