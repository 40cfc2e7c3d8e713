"""Opt-out / opt-in / help keywords, in several languages.

Carrier rules (CTIA in the US, similar elsewhere) require honouring STOP and friends. A keyword
only counts when it is the whole message (``"stop"``, ``"Stop."``, ``"ARRÊT"``): a sentence that
merely contains the word ("don't stop calling me") is a normal message for an agent. Matching
ignores case, accents and surrounding punctuation so ``arrêt`` and ``ARRET`` are the same.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from enum import StrEnum


class KeywordAction(StrEnum):
    """What a keyword asks for."""

    OPT_OUT = "opt_out"  # stop messaging me on this number
    OPT_OUT_ALL = "opt_out_all"  # stop messaging me on every number of this center
    OPT_IN = "opt_in"
    HELP = "help"


DEFAULT_OPT_OUT = frozenset(
    {
        "STOP", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE",
        "ARRET", "DESABONNER", "DESINSCRIRE",  # fr
        "BAJA", "PARAR", "CANCELAR",  # es, pt
        "ABMELDEN", "STOPP", "ABBESTELLEN",  # de
        "ANNULLA", "DISISCRIVI",  # it
        "AFMELDEN",  # nl
        "SAIR",  # pt
    }
)  # fmt: skip
DEFAULT_OPT_OUT_ALL = frozenset({"STOPALL", "STOP ALL"})
DEFAULT_OPT_IN = frozenset(
    {"START", "UNSTOP", "YES", "SUBSCRIBE", "ALTA", "ANMELDEN", "AANMELDEN", "REPRENDRE"}
)
DEFAULT_HELP = frozenset({"HELP", "INFO", "AIDE", "AYUDA", "HILFE", "AIUTO", "AJUDA", "HULP"})


def normalize_keyword(text: str) -> str:
    """Upper-case, strip accents, trim punctuation and collapse inner whitespace."""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    words = bare.upper().split()
    return " ".join(words).strip(" .,!?;:'\"()-")


@dataclass(frozen=True, slots=True)
class KeywordConfig:
    """Keyword sets; ``extra_*`` add to the defaults (give them in any case, with accents)."""

    opt_out: frozenset[str] = DEFAULT_OPT_OUT
    opt_out_all: frozenset[str] = DEFAULT_OPT_OUT_ALL
    opt_in: frozenset[str] = DEFAULT_OPT_IN
    help: frozenset[str] = DEFAULT_HELP
    extra_opt_out: frozenset[str] = frozenset()
    extra_opt_in: frozenset[str] = frozenset()
    extra_help: frozenset[str] = frozenset()
    _table: dict[str, KeywordAction] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        table: dict[str, KeywordAction] = {}
        groups = (
            (self.help | self.extra_help, KeywordAction.HELP),
            (self.opt_in | self.extra_opt_in, KeywordAction.OPT_IN),
            (self.opt_out | self.extra_opt_out, KeywordAction.OPT_OUT),
            (self.opt_out_all, KeywordAction.OPT_OUT_ALL),
        )
        for words, action in groups:  # later groups win: an opt-out is never downgraded
            for word in words:
                table[normalize_keyword(word)] = action
        self._table.update(table)

    def classify(self, text: str) -> tuple[str, KeywordAction] | None:
        """Return (normalized keyword, action) when the whole message is a keyword."""
        if len(text) > 40:
            return None
        key = normalize_keyword(text)
        action = self._table.get(key)
        return None if action is None else (key, action)
