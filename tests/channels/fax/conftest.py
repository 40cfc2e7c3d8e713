"""Fixtures for the fax channel tests: real Dovecot, real Tesseract and poppler (see fax.sh)."""

from __future__ import annotations

import shutil

import pytest

from tests.servers.dovecot import dovecot

__all__ = ["dovecot", "require_fax_tools"]


@pytest.fixture(scope="session", autouse=True)
def require_fax_tools() -> None:
    """Fail (never skip) when the OCR/rendering tools are missing."""
    missing = [tool for tool in ("tesseract", "pdftoppm") if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"missing {missing}: run `bash tests/servers/fax.sh`")
