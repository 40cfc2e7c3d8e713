"""HTML from strangers, made safe to show in the agent inbox, and plain text derived from it.

Sanitizing is allow-list based (``nh3``, the Rust ammonia sanitizer): no script, no event
handlers, no forms, no ``<style>`` blocks, and no remote loads: an ``<img>`` may only point at a
``cid:`` part of the same mail (the inbox maps those to stored attachments), because a remote
image is a read receipt for the sender. Inline ``style`` survives with only layout/colour
properties (``background-image`` and friends can load URLs). Links stay clickable, with
``rel="noopener noreferrer nofollow"``.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

import nh3

_TAGS = frozenset({
    "a", "abbr", "b", "blockquote", "br", "caption", "center", "cite", "code", "col", "colgroup",
    "dd", "del", "div", "dl", "dt", "em", "font", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i",
    "img", "ins", "kbd", "li", "ol", "p", "pre", "q", "s", "small", "span", "strike", "strong",
    "sub", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "tt", "u", "ul",
})
_COMMON_ATTRS = {"style", "title", "align", "dir", "lang"}
_ATTRS: dict[str, set[str]] = {
    "*": _COMMON_ATTRS,
    "a": {"href", "name"},
    "img": {"src", "alt", "width", "height"},
    "font": {"color", "face", "size"},
    "td": {"colspan", "rowspan", "valign", "width", "bgcolor"},
    "th": {"colspan", "rowspan", "valign", "width", "bgcolor"},
    "table": {"width", "border", "cellpadding", "cellspacing", "bgcolor"},
    "blockquote": {"type", "cite"},
    "ol": {"start", "type"},
    "col": {"span", "width"},
}
_STYLE_PROPS = frozenset({
    "color", "background-color", "font", "font-family", "font-size", "font-style", "font-weight",
    "text-align", "text-decoration", "text-indent", "line-height", "letter-spacing",
    "white-space", "vertical-align", "margin", "margin-top", "margin-bottom", "margin-left",
    "margin-right", "padding", "padding-top", "padding-bottom", "padding-left", "padding-right",
    "border", "border-top", "border-bottom", "border-left", "border-right", "border-color",
    "border-style", "border-width", "border-collapse", "width", "height", "max-width", "display",
})


class _Counter:
    """Counts what the attribute filter removed, so the caller can tell the agent."""

    def __init__(self, allow_remote_images: bool) -> None:
        self.allow_remote_images = allow_remote_images
        self.blocked_remote = 0

    def __call__(self, tag: str, attr: str, value: str) -> str | None:
        if tag == "img" and attr == "src":
            low = value.strip().lower()
            if low.startswith("cid:"):
                return value.strip()
            if self.allow_remote_images and low.startswith("https://"):
                return value
            self.blocked_remote += 1
            return None
        # cid: is only meaningful on images; everywhere else it is noise.
        if attr == "href" and value.strip().lower().startswith("cid:"):
            return None
        return value


def sanitize_html(source: str, *, allow_remote_images: bool = False) -> tuple[str, int]:
    """Return (safe HTML, number of remote images blocked)."""
    counter = _Counter(allow_remote_images)
    cleaned = nh3.clean(
        source,
        tags=set(_TAGS),
        attributes=_ATTRS,
        attribute_filter=counter,
        url_schemes={"http", "https", "mailto", "tel", "cid"},
        link_rel="noopener noreferrer nofollow",
        filter_style_properties=set(_STYLE_PROPS),
        strip_comments=True,
    )
    return cleaned.strip(), counter.blocked_remote


_BLOCK = frozenset({
    "p", "div", "br", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "table", "blockquote",
    "pre", "hr", "ul", "ol", "dl", "dt", "dd", "center", "section", "article", "header", "footer",
})
_SKIP = frozenset({"script", "style", "head", "title", "template", "noscript"})


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0
        self._quote = 0
        self._pre = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self._skip += 1
        elif tag == "blockquote":
            self._quote += 1
            self.parts.append("\n")
        elif tag == "pre":
            self._pre += 1
            self.parts.append("\n")
        elif tag == "li":
            self.parts.append("\n- ")
        elif tag in _BLOCK:
            self.parts.append("\n")
        elif tag == "img":
            alt = dict(attrs).get("alt")
            if alt:
                self.parts.append(f"[{alt}]")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self._skip = max(0, self._skip - 1)
        elif tag == "blockquote":
            self._quote = max(0, self._quote - 1)
            self.parts.append("\n")
        elif tag == "pre":
            self._pre = max(0, self._pre - 1)
            self.parts.append("\n")
        elif tag in _BLOCK and tag not in ("br", "li"):
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        text = data if self._pre else re.sub(r"\s+", " ", data)
        if self._quote:
            text = text.replace("\n", "\n" + "> " * self._quote)
            if not self.parts or self.parts[-1].endswith("\n"):
                text = "> " * self._quote + text.lstrip()
        self.parts.append(text)


def html_to_text(source: str) -> str:
    """Readable plain text from HTML: blocks become lines, blockquotes become ``>`` quotes."""
    parser = _TextExtractor()
    try:
        parser.feed(source)
        parser.close()
    except Exception:  # HTMLParser is lenient; this is a last resort for pathological input
        return html.unescape(re.sub(r"<[^>]*>", " ", source)).strip()
    text = "".join(parser.parts)
    lines = [line.strip() for line in text.replace("\xa0", " ").splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
