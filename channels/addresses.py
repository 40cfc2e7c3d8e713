"""Address normalization shared by every adapter and the hub's contact resolution.

The same person calling, texting and faxing from one number must become one contact, so every
phone number is reduced to E.164 and every email address to a lower-cased canonical form.
"""

from __future__ import annotations

import re

import phonenumbers

from channels.base import Address, AddressKind, ParseError

_EMAIL_RE = re.compile(r"^[^@\s<>()\[\],;:\"]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$")
_VISITOR_RE = re.compile(r"^[A-Za-z0-9_-]{8,128}$")


def normalize_email(raw: str) -> str:
    """Lower-case and strip an email address; reject anything that is not one mailbox."""
    value = raw.strip().strip("<>").strip()
    if len(value) > 320 or not _EMAIL_RE.match(value):
        raise ParseError(f"not an email address: {value[:80]!r}", field="email")
    return value.lower()


def normalize_phone(raw: str, default_region: str = "US") -> str:
    """Return the E.164 form of a phone number written in any common notation.

    ``default_region`` applies to numbers written without a country code (a gateway in France sends
    ``0612345678``). Raises :class:`ParseError` for anything that is not a possible number.
    """
    value = raw.strip()
    if value.startswith("00"):
        value = "+" + value[2:]
    try:
        parsed = phonenumbers.parse(value, None if value.startswith("+") else default_region)
    except phonenumbers.NumberParseException as exc:
        raise ParseError(f"not a phone number: {raw[:40]!r}", field="phone") from exc
    if not phonenumbers.is_possible_number(parsed):
        raise ParseError(f"not a possible phone number: {raw[:40]!r}", field="phone")
    return str(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))


def normalize_address(kind: AddressKind, raw: str, default_region: str = "US") -> Address:
    """Normalize ``raw`` as an address of ``kind``."""
    if kind is AddressKind.EMAIL:
        return Address(kind, normalize_email(raw))
    if kind is AddressKind.PHONE:
        return Address(kind, normalize_phone(raw, default_region))
    value = raw.strip()
    if not _VISITOR_RE.match(value):
        raise ParseError("visitor id must be 8-128 characters of [A-Za-z0-9_-]", field="visitor")
    return Address(kind, value)
