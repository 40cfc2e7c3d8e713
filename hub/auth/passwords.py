"""Password hashing with argon2id (parameters from argon2-cffi's RFC 9106 low-memory profile)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_hasher = PasswordHasher()

MIN_PASSWORD_LENGTH = 8
UNUSABLE = "!"  # a hash no password verifies against (user must get one set by an admin)


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
    return str(_hasher.hash(password))


def verify_password(stored_hash: str, password: str) -> bool:
    """Constant-time check; a malformed or unusable stored hash simply fails."""
    if stored_hash == UNUSABLE:
        return False
    try:
        return bool(_hasher.verify(stored_hash, password))
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


# A real hash of a random password, verified against when the user does not exist so that
# "no such user" and "wrong password" take the same time.
DUMMY_HASH = _hasher.hash("dummy-password-for-timing")
