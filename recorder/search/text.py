"""The engine-neutral query-text syntax and the ``<mark>`` snippet rendering.

User text is parsed here into clauses (word or phrase, maybe negated) and rebuilt in each
engine's syntax with every clause quoted. Nothing of the engines' own languages (fields,
boolean operators, regexes) reaches them, so a query cannot reach fields the hub did not mean
to expose and a stray quote is never a syntax error.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from dataclasses import dataclass

_TOKEN_RE = re.compile(r'(-?)"([^"]*)"?|(-?)([^\s"]+)')
_WORD_CHAR_RE = re.compile(r"\w")
_STRIP_RE = re.compile(r'["\\]')


@dataclass(frozen=True, slots=True)
class Clause:
    """One part of the query text: a word or a phrase that must (or must not) match."""

    text: str
    phrase: bool
    negated: bool


def parse_text(text: str) -> tuple[Clause, ...]:
    """Split ``text`` into clauses; clauses without any word character are dropped, and an
    unclosed quote runs to the end of the text."""
    clauses: list[Clause] = []
    for match in _TOKEN_RE.finditer(text):
        if match.group(2) is not None:
            negated, body, phrase = match.group(1) == "-", match.group(2), True
        else:
            negated, body, phrase = match.group(3) == "-", match.group(4), False
        body = " ".join(_STRIP_RE.sub(" ", body).split())
        if not _WORD_CHAR_RE.search(body):
            continue
        clauses.append(Clause(body, phrase and " " in body, negated))
    return tuple(clauses)


def positive(clauses: Iterable[Clause]) -> bool:
    """Whether any clause must match (a query of only exclusions matches everything else)."""
    return any(not c.negated for c in clauses)


def render_ranges(fragment: bytes, ranges: Iterable[tuple[int, int]], *, before: bool,
                  after: bool) -> str:
    """HTML for a snippet: ``fragment`` escaped, byte ``ranges`` wrapped in ``<mark>``, and an
    ellipsis where the fragment was cut from a longer text."""
    out: list[str] = ["\u2026"] if before else []
    pos = 0
    for start, end in sorted(ranges):
        if start < pos or end <= start:
            continue
        out.append(html.escape(fragment[pos:start].decode("utf-8", "replace")))
        marked = html.escape(fragment[start:end].decode("utf-8", "replace"))
        out.append(f"<mark>{marked}</mark>")
        pos = end
    out.append(html.escape(fragment[pos:].decode("utf-8", "replace")))
    if after:
        out.append("\u2026")
    return "".join(out)


def render_sentinels(text: str, pre: str, post: str) -> str:
    """HTML for a snippet an engine marked with the sentinel strings ``pre``/``post``."""
    escaped = html.escape(text)
    return escaped.replace(html.escape(pre), "<mark>").replace(html.escape(post), "</mark>")
