"""Separating the new part of an HTML mail from its quoted history and signature.

Mail clients mark what they quote, but each its own way, and the marks are classes and ids that
the sanitizer removes; so the split is made on the *raw* HTML, and each part is sanitized on its
own afterwards. Recognised (first one in document order wins):

- Gmail: ``<div class="gmail_quote">`` (also ``gmail_quote_container``, ``<blockquote
  class="gmail_quote">``); signature ``<div class="gmail_signature">``;
- Outlook (web and Windows): ``<div id="divRplyFwdMsg">`` header block, Outlook for Mac's
  ``OLK_SRC_BODY_SECTION``, the Windows "From: ... Sent: ..." block (a block element whose text
  starts with ``From:`` and names ``Sent:``/``Date:`` and ``To:``/``Subject:``), and the
  ``<hr>`` (or ``appendonsend`` marker) that directly precedes them; everything from the mark
  to the end is history;
- Apple Mail: ``<blockquote type="cite">`` (with the "On ..., X wrote:" line before it);
- Thunderbird: ``<div class="moz-cite-prefix">`` then ``<blockquote type="cite">``; signature
  ``moz-signature``.

Like the plain-text split it is conservative: a quote followed by more of the sender's own text
(an interleaved reply) is not cut, and when nothing new would remain nothing is cut.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser

_VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
                   "param", "source", "track", "wbr"})
_BLOCKS = frozenset({"div", "p", "table", "td", "blockquote", "span", "font"})
_FROM = re.compile(r"^\s*(From|Von|De|Da|Van)\s*:", re.IGNORECASE)
_SENT = re.compile(r"\b(Sent|Date|Gesendet|Datum|Envoy[ée]|Enviado|Inviato|Verzonden)\s*:",
                   re.IGNORECASE)
_TO = re.compile(r"\b(To|An|À|Para|A|Aan|Subject|Betreff|Objet|Asunto|Oggetto|Onderwerp)\s*:",
                 re.IGNORECASE)
_TEXT_RUN = re.compile(r"[^\s\xa0]")


@dataclass(slots=True)
class _Element:
    tag: str
    start: int  # offset of "<" of the start tag
    classes: frozenset[str]
    ident: str
    attrs: dict[str, str]
    end: int = -1  # offset just after the end tag (-1: never closed, i.e. to the end)
    text: str = ""  # the first ~300 characters of text inside


class _Scanner(HTMLParser):
    """Records every element with its source span, for the markers below."""

    def __init__(self, source: str) -> None:
        super().__init__(convert_charrefs=True)
        self.source = source
        self._line_starts = [0]
        for match in re.finditer("\n", source):
            self._line_starts.append(match.end())
        self.elements: list[_Element] = []
        self._open: list[_Element] = []

    def _offset(self) -> int:
        line, col = self.getpos()
        return self._line_starts[line - 1] + col

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        element = _Element(tag, self._offset(), frozenset(values.get("class", "").split()),
                           values.get("id", ""), values)
        self.elements.append(element)
        if tag not in _VOID:
            self._open.append(element)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in _VOID and self._open and self._open[-1].tag == tag:
            self._open.pop().end = self._offset() + len(self.get_starttag_text() or "")

    def handle_endtag(self, tag: str) -> None:
        for index in range(len(self._open) - 1, -1, -1):
            if self._open[index].tag == tag:
                end = self.source.find(">", self._offset())
                for element in self._open[index:]:
                    element.end = len(self.source) if end < 0 else end + 1
                del self._open[index:]
                return

    def handle_data(self, data: str) -> None:
        for element in self._open:
            if len(element.text) < 300:
                element.text += data


@dataclass(frozen=True, slots=True)
class HtmlSplit:
    """Raw (unsanitized) HTML of the new part, the quoted history and the signature."""

    new: str
    quoted: str
    signature: str
    marker: str  # which client's mark was found ("" when nothing was split)


def _has_text(fragment: str) -> bool:
    """Whether ``fragment`` shows any text (tags, comments and whitespace do not count)."""
    stripped = re.sub(r"<!--.*?-->|<[^>]*>|&nbsp;|&#160;", "", fragment, flags=re.DOTALL)
    return bool(_TEXT_RUN.search(stripped))


def _is_quote(element: _Element) -> bool:
    return bool(element.classes & {"gmail_quote", "gmail_quote_container"}) or (
        element.tag == "blockquote" and element.attrs.get("type", "").lower() == "cite"
    )


def _text_outside_quotes(source: str, end: int, elements: list[_Element]) -> bool:
    """Whether text follows ``end`` outside further quotes (an interleaved reply does).

    Apple Mail puts the attribution in one cite blockquote and the history in the next, so
    later quotes do not count as new text."""
    pieces: list[str] = []
    at = end
    for element in elements:
        if element.start >= at and _is_quote(element):
            pieces.append(source[at : element.start])
            at = element.end if element.end != -1 else len(source)
    pieces.append(source[at:])
    return _has_text("".join(pieces))


def _quote_mark(elements: list[_Element]) -> tuple[_Element, str, bool] | None:
    """The first quote mark: (element, client, whether the history runs to the end)."""
    for element in elements:
        classes, ident = element.classes, element.ident
        if classes & {"gmail_quote", "gmail_quote_container"}:
            return element, "gmail", False
        if ident == "divRplyFwdMsg" or ident.startswith("OLK_SRC_BODY_SECTION"):
            return element, "outlook", True
        if "moz-cite-prefix" in classes:
            return element, "thunderbird", False
        if element.tag == "blockquote" and element.attrs.get("type", "").lower() == "cite":
            return element, "apple", False
        if element.tag in _BLOCKS and _FROM.match(element.text) and _SENT.search(element.text) \
                and _TO.search(element.text):
            return element, "outlook", True
    return None


def _with_attribution(source: str, elements: list[_Element], mark: _Element) -> int:
    """Move the cut back over what introduces the quote: an Outlook ``<hr>`` or
    ``appendonsend`` marker, or an "On ... wrote:" line just before a cite blockquote."""
    start = mark.start
    before = [e for e in elements if e.end != -1 and e.end <= start]
    for element in reversed(before[-3:]):
        between = source[element.end:start]
        if _has_text(between):
            break
        text = element.text.strip()
        if element.tag == "hr" or element.ident == "appendonsend" or (
            mark.tag == "blockquote" and text.endswith(("wrote:", "écrit :", "écrit:"))
            and len(text) < 300
        ):
            start = element.start
    if mark.tag == "hr":
        return start
    # an <hr> is void: it has no end, so look for one directly before the cut as well
    hr = source.rfind("<hr", 0, start)
    if hr >= 0 and not _has_text(source[source.find(">", hr) + 1 : start]):
        start = hr
    return start


def _signature_span(elements: list[_Element], start: int, stop: int) -> tuple[int, int] | None:
    for index, element in enumerate(elements):
        if element.start < start or element.start >= stop:
            continue
        classes = element.classes
        if "gmail_signature_prefix" in classes:  # the "-- " before Gmail's signature block
            after = [e for e in elements[index + 1 :] if "gmail_signature" in e.classes]
            if after and after[0].end != -1:
                return element.start, min(after[0].end, stop)
        if classes & {"gmail_signature", "moz-signature"} or element.ident in (
            "Signature", "signature"
        ):
            end = element.end if element.end != -1 else stop
            return element.start, min(end, stop)
    return None


def split_html_quotes(source: str) -> HtmlSplit:
    """Split raw HTML into new part, quoted history and signature (see the module docstring)."""
    scanner = _Scanner(source)
    try:
        scanner.feed(source)
        scanner.close()
    except Exception:  # HTMLParser is lenient; pathological input is simply not split
        return HtmlSplit(source, "", "", "")
    elements = scanner.elements
    quote_at, quote_end, marker = len(source), len(source), ""
    found = _quote_mark(elements)
    if found is not None:
        mark, client, to_end = found
        end = mark.end if mark.end != -1 else len(source)
        if to_end or not _text_outside_quotes(source, end, elements):
            quote_at, marker = _with_attribution(source, elements, mark), client
    new = source[:quote_at]
    if not _has_text(new):
        return HtmlSplit(source, "", "", "")
    quoted = source[quote_at:quote_end]
    signature = ""
    span = _signature_span(elements, 0, quote_at)
    if span is not None:
        rest = source[: span[0]] + source[span[1] : quote_at]
        if _has_text(rest):
            signature, new = source[span[0] : span[1]], rest
            marker = marker or "signature"
    return HtmlSplit(new, quoted, signature, marker)

