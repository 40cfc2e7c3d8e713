"""Errors of the declarative configuration: every problem names the file, the line and the field.

Problems are collected, not raised one at a time, so an operator fixes a whole file in one pass.
"""

from __future__ import annotations

from dataclasses import dataclass

Loc = tuple[str | int, ...]


def format_loc(loc: Loc) -> str:
    """``("queues", 1, "offer_ttl_s")`` -> ``queues[1].offer_ttl_s`` (the way a reader names it)."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    """One problem: ``source:line: path: message`` (line is 1-based; 0 when unknown)."""

    source: str
    line: int
    loc: Loc
    message: str

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line else self.source
        path = format_loc(self.loc)
        return f"{where}: {path}: {self.message}" if path else f"{where}: {self.message}"


class ConfigError(ValueError):
    """The configuration cannot be applied; ``issues`` lists every problem found (in file order).

    ``code`` is stable for the API/CLI (``config_invalid``); the message holds one issue per line.
    """

    code = "config_invalid"

    def __init__(self, issues: list[ConfigIssue]) -> None:
        self.issues = sorted(issues, key=lambda i: (i.line, format_loc(i.loc)))
        super().__init__("\n".join(str(i) for i in self.issues))
