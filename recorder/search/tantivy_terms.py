"""Query words and common word pairs exactly as tantivy's ``en_stem`` analyzer indexes them.

Why this exists: the snapshot's shortcuts look terms up by document frequency, so they need
the indexed term of a query word; and the ``pairs`` field turns a phrase of two *common* words
("thank you", "for the") into one term lookup. That phrase is the expensive one: tantivy reads
positions of every document holding both words, a large share of the index for two common
words, while a phrase with a rarer word only visits that word's few documents. So, like
Lucene's CommonGrams, only adjacent pairs of two words of :data:`COMMON_WORDS` are indexed, as
``a_b`` terms of their stems (Elasticsearch's ``index_phrases`` indexes *every* pair: measured
here, that made bulk indexing 2.5-4x slower, mostly Python work per word). A pair term must be
in a document exactly when a phrase query matches those two words there (tests compare both
ways); tantivy has no shingle filter, so pairs are built here at index time.

``en_stem`` is: simple tokenizer (runs of ``char::is_alphanumeric``), drop tokens of 40 bytes
or more (a dropped token keeps its position, so it breaks adjacency), lowercase, English
Snowball stemmer. ASCII text (the usual case) is tokenized with ``str`` methods and each
word's class (its stem if common, else ``""``) is cached; other text goes through tantivy's
analyzers. This Python work is the whole cost of the field at index time, paid on the one
thread that feeds tantivy: measured at 100k documents of ~38 words, ~5 us per document, of
which ~4 us is tokenizing and looking every word up (hashing each new word string) and ~1 us
the pairing loop; a regex over the class string, or ``itertools`` pipelines, were slower.
Changing :data:`COMMON_WORDS` changes what is indexed: bump the schema version.
"""

from __future__ import annotations

from collections.abc import Iterable

import tantivy

LONG_BYTES = 40  # tantivy's en_stem drops tokens of this many bytes or more
_CACHE_MAX = 500_000
# Function words and a contact center's courtesy words: the words frequent enough that a
# phrase of two of them is expensive without its pair term (see the module docstring).
COMMON_WORDS = frozenset({
    "a", "about", "after", "again", "all", "also", "am", "an", "and", "any", "are", "as", "at",
    "back", "be", "because", "been", "before", "but", "by", "call", "can", "could", "did", "do",
    "does", "for", "from", "get", "go", "good", "had", "has", "have", "he", "hello", "help", "her",
    "here", "hi", "him", "his", "how", "i", "if", "in", "into", "is", "it", "its", "just", "know",
    "like", "me", "more", "my", "no", "not", "now", "of", "ok", "okay", "on", "one", "or", "our",
    "out", "please", "really", "right", "see", "she", "so", "some", "sorry", "than", "thank",
    "thanks", "that", "the", "their", "them", "then", "there", "these", "they", "this", "to", "up",
    "us", "very", "was", "way", "we", "well", "were", "what", "when", "where", "which", "who",
    "why", "will", "with", "would", "yes", "you", "your"
})


def _analyzer(*filters: tantivy.Filter) -> tantivy.TextAnalyzer:
    builder = tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
    for f in filters:
        builder = builder.filter(f)
    return builder.build()


_EN_STEM = _analyzer(tantivy.Filter.remove_long(LONG_BYTES), tantivy.Filter.lowercase(),
                     tantivy.Filter.stemmer("english"))
# The same without the length filter, and the bare tokenizer: zipped, one token each, so a
# dropped long token shows as a gap.
_STEM_ALL = _analyzer(tantivy.Filter.lowercase(), tantivy.Filter.stemmer("english"))
_RAW = _analyzer()
# ASCII letters lowercased, digits kept, everything else a separator.
_TOKENS = str.maketrans({c: c.lower() if c.isalnum() else " " for c in map(chr, range(128))})
COMMON_STEMS = frozenset(_STEM_ALL.analyze(w)[0] for w in COMMON_WORDS)
_kinds: dict[str, str] = {}


def analyze_word(word: str) -> str | None:
    """The one indexed term of ``word``, or ``None`` if it analyzes to zero or several."""
    tokens = _EN_STEM.analyze(word)
    return tokens[0] if len(tokens) == 1 else None


def _classify(word: str) -> str:
    """The stem of a lowercase ASCII alphanumeric word if it is common, else ``""``."""
    stem = "" if len(word) >= LONG_BYTES else _STEM_ALL.analyze(word)[0]
    kind = stem if stem in COMMON_STEMS else ""
    if len(_kinds) >= _CACHE_MAX:
        _kinds.clear()
    _kinds[word] = kind
    return kind


def _classes(text: str) -> list[str]:
    """Each position of ``text`` as its stem if common, else ``""`` (dropped long tokens
    included, as ``""``: they break adjacency)."""
    if text.isascii():
        words = text.translate(_TOKENS).split()  # the simple tokenizer + lowercase, on ASCII
        return [_kinds[w] if w in _kinds else _classify(w) for w in words]
    return _classes_by_tantivy(text)


def _classes_by_tantivy(text: str) -> list[str]:
    """:func:`_classes` through tantivy's own analyzers (any text; slower)."""
    raw, analyzed = _RAW.analyze(text), _STEM_ALL.analyze(text)
    if len(raw) != len(analyzed):  # cannot happen (the filters drop nothing); stay exact anyway
        raise ValueError("tokenizer mismatch")
    return ["" if len(token.encode()) >= LONG_BYTES or stem not in COMMON_STEMS else stem
            for token, stem in zip(raw, analyzed, strict=True)]


def _pairs_into(out: list[str], classes: Iterable[str]) -> None:
    prev = ""
    for stem in classes:
        if stem and prev:
            out.append(prev + "_" + stem)
        prev = stem


def common_pairs(text: str) -> list[str]:
    """The pair terms (``a_b``; ``_`` never occurs in a term) of adjacent common words."""
    out: list[str] = []
    _pairs_into(out, _classes(text))
    return out


def pair_field(*texts: str) -> str:
    """The value of the ``pairs`` field for a document's texts (whitespace-tokenized).

    This runs for every indexed document on the indexing thread, so the usual case (ASCII,
    every word seen before) stays in C but for one Python step per word: ``translate`` +
    ``split`` tokenize, ``map`` over the cache classifies, and only the pairing loop is
    Python. A new word raises ``KeyError`` inside ``map``; then the text is classified again
    on the slower path that fills the cache.
    """
    out: list[str] = []
    for text in texts:
        if not text:
            continue
        if text.isascii():
            words = text.translate(_TOKENS).split()
            mark = len(out)
            try:
                _pairs_into(out, map(_kinds.__getitem__, words))
                continue
            except KeyError:  # a word seen for the first time
                del out[mark:]
        _pairs_into(out, _classes(text))
    return " ".join(out)


def phrase_pair(phrase: str) -> str | None:
    """The pair term of ``phrase`` if it is exactly two adjacent common words, else ``None``
    (then the phrase query itself is needed for the exact set)."""
    pairs = common_pairs(phrase)
    return pairs[0] if len(pairs) == 1 and len(_RAW.analyze(phrase)) == 2 else None
