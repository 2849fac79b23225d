"""The article as the page's scripts carry it, for pages rendered by JavaScript.

A page built in the browser (a Next.js or Nuxt application, a client-side template) may send an
empty shell: trafilatura finds no text in it, yet the article is in the page, as data for the
script that renders it. This module finds it there, in any language (the JSON-LD
``articleBody`` is not searched: trafilatura's own last resort already reads it):

* ``<script type="application/json">`` blobs (``__NEXT_DATA__``, ``__NUXT_DATA__``, state
  objects): any string that is an HTML fragment of paragraphs;
* React Server Components payloads (``self.__next_f.push([1, "..."])``): their text rows
  (``<id>:T<hex length>,<text>``) and JSON rows, searched the same way.

The candidate with the most paragraph text wins. The result is an HTML fragment that the
extraction stage runs through trafilatura and the structural filters like any page, so captions,
advert markers and teasers inside it go the usual way. Pure: no network, no state.
"""

from __future__ import annotations

import html
import json
import re
import unicodedata
from collections.abc import Iterator
from typing import Any

from lxml.etree import ParserError
from lxml.html import HtmlElement, fragment_fromstring

# A fragment must carry at least this much paragraph text to be taken for the article.
MIN_PARAGRAPH_CHARS = 200
# the words of the page's own text looked for in a candidate (its article's start)
_OPENING_WORDS = 8
_MAX_CANDIDATE_CHARS = 2_000_000
_FLIGHT_PUSH = re.compile(r"self\.__next_f\.push\(\[1,\s*(\"(?:[^\"\\]|\\.)*\")\s*\]\)", re.S)
_FLIGHT_ROW = re.compile(r"([0-9a-f]+):")
_PARAGRAPH_MARKUP = re.compile(r"<p[\s>]", re.I)
# where the site's renderer inserts an advert or a widget into the stored text
_PLACEHOLDER = re.compile(r"\$\$[A-Z0-9_]+\$\$|%%[A-Z0-9_]+%%|\[\[[A-Z0-9_]+\]\]|\{\{[A-Z0-9_]+\}\}")


def article_fragment(tree: HtmlElement, shown: str | None = None) -> str | None:
    """The HTML fragment of the article found in the page's embedded data, or None: the longest,
    or, when the page shows some text (``shown``), the longest that holds its start. A state blob
    holds other articles too (a related story's body), and one longer than a short news flash
    would have replaced it."""
    opening = " ".join((shown or "").split()[:_OPENING_WORDS])
    best, best_chars, holds_opening = None, 0, False
    for fragment in _candidates(tree):
        text = _paragraph_text(fragment)
        if len(text) < MIN_PARAGRAPH_CHARS:
            continue
        holds = bool(opening) and opening in text
        if (holds, len(text)) > (holds_opening, best_chars):
            best, best_chars, holds_opening = fragment, len(text), holds
    return best


def page_of(fragment: str, lang: str | None = None) -> str:
    """A page holding only the fragment (without the renderer's placeholders), for the
    extraction to run on."""
    fragment = _PLACEHOLDER.sub("", fragment)
    lang_attr = f' lang="{html.escape(lang)}"' if lang else ""
    return f"<!DOCTYPE html><html{lang_attr}><head><meta charset=\"utf-8\"></head><body><article>{fragment}</article></body></html>"


def _candidates(tree: HtmlElement) -> Iterator[str]:
    # a payload's rows run across scripts: the pushes are joined before they are read
    flight: list[str] = []
    for script in tree.iter("script"):
        text = script.text or ""
        if not text or len(text) > _MAX_CANDIDATE_CHARS:
            continue
        kind = (script.get("type") or "").strip().lower()
        if kind == "application/json":
            yield from _html_strings(_loads(text))
        elif "__next_f" in text:
            flight.extend(chunk for chunk in map(_loads, _FLIGHT_PUSH.findall(text)) if isinstance(chunk, str))
    if flight:
        yield from _flight_rows("".join(flight))


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        # not JSON, or nested deeper than the parser goes: the page's other scripts may hold
        # the article
        return None


def _html_strings(node: Any) -> Iterator[str]:
    """Strings of a JSON value that are HTML with paragraphs (iterative: state blobs nest deep)."""
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, str):
            if len(current) >= MIN_PARAGRAPH_CHARS and _PARAGRAPH_MARKUP.search(current):
                yield current
        elif isinstance(current, dict):
            stack.extend(current.values())
        elif isinstance(current, list):
            stack.extend(current)


def _flight_rows(payload: str) -> Iterator[str]:
    """Rows of a React Server Components payload: ``<id>:T<hex>,<text of hex UTF-8 bytes>`` text
    rows, and ``<id>:<JSON>`` lines."""
    data = payload.encode("utf-8")
    position = 0
    while position < len(data):
        head = data[position:position + 24].decode("ascii", "ignore")
        row = _FLIGHT_ROW.match(head)
        if row and head[row.end():row.end() + 1] == "T" and "," in head[row.end():]:
            comma = head.index(",", row.end())
            try:
                length = int(head[row.end() + 1:comma], 16)
            except ValueError:
                length = -1
            if length >= 0:
                start = position + comma + 1
                text = data[start:start + length].decode("utf-8", "replace")
                if len(text) >= MIN_PARAGRAPH_CHARS and _PARAGRAPH_MARKUP.search(text):
                    yield text
                position = start + length
                continue
        line_end = data.find(b"\n", position)
        end = len(data) if line_end < 0 else line_end
        if row:
            yield from _html_strings(_loads(data[position + row.end():end].decode("utf-8", "replace")))
        position = end + 1


def _paragraph_text(fragment: str) -> str:
    try:
        root = fragment_fromstring(fragment, create_parent="div")
    except (ParserError, ValueError):
        return ""
    return unicodedata.normalize("NFC", " ".join(" ".join(p.text_content().split()) for p in root.iter("p")))
