"""Structural removal of teasers and tickers from the page, before the main-text extractor runs.

News templates put pointers to *other* articles everywhere, including inside the article
container: "read also" boxes, "related" lists, "…more" teasers, tickers, "most read" rails. They
are recognised here by structure and links, in any language, never by their wording:

* **Teaser lists.** At least ``min_items`` sibling elements of the same kind (same tag and
  class) that each point somewhere else (a link to a distinct URL) and each *look like a teaser*:
  short, and either mostly link text, or led by a linked headline, or cut off with an ellipsis
  right before a link ("…more", "continue reading"). A body paragraph with an inline link is
  none of these: its text is long, it does not start with the link, and it is a ``<p>``, which is
  never an item here.
* **Link lines.** A short block that is a link with at most a short label in front of it
  ("Read more: <headline>", "اقرأ أيضا: <headline>").

Every removal is returned with its text and reason so that the article can say what was taken
out and why.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass

from lxml.html import HtmlElement

# Elements that hold one item of a list of teasers.
ITEM_TAGS = frozenset({"li", "div", "article", "section", "dd", "figure", "aside", "tr", "td", "span"})
# Elements that can be a one-line block on their own.
LINE_TAGS = frozenset({"p", "div", "li", "h2", "h3", "h4", "h5", "h6", "span", "strong", "em", "b"})
_BLOCK_CHILDREN = frozenset(
    {"p", "div", "ul", "ol", "li", "table", "section", "article", "aside", "h1", "h2", "h3", "h4", "h5", "h6",
     "blockquote", "figure", "header", "footer", "nav", "form", "dl", "pre"}
)
_SKIP = frozenset({"script", "style", "noscript", "template", "svg", "head"})
_ELLIPSIS = re.compile(r"(?:\.{2,}|…)\s*$")
# Scripts written without spaces between words: count characters, not words, for them.
_NO_SPACE_SCRIPT = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\u0e00-\u0e7f]")


@dataclass(frozen=True, slots=True)
class TeaserSettings:
    min_items: int = 3
    # share of a sibling group that must look like teasers for the group to go
    min_item_share: float = 0.6
    # longest teaser item (characters); a body section is longer
    max_item_chars: int = 400
    # an item whose links make up this share of its text is a link item
    link_item_density: float = 0.5
    # a headline link has at least this many words (or 3x as many characters in CJK)
    min_headline_words: int = 3
    # link line: at most this many words, and at most this many outside the link
    max_line_words: int = 30
    max_label_words: int = 4
    link_line_density: float = 0.6


@dataclass(frozen=True, slots=True)
class Removal:
    text: str
    reason: str


def _text(element: HtmlElement) -> str:
    return " ".join(element.text_content().split())


def _words(text: str) -> int:
    if _NO_SPACE_SCRIPT.search(text):
        return max(len(text.split()), len(text) // 3)
    return len(text.split())


def _target(anchor: HtmlElement) -> str | None:
    href = (anchor.get("href") or "").strip()
    if not href or href.startswith(("#", "javascript:", "mailto:", "tel:")):
        return None
    return href


def _links(element: HtmlElement) -> list[tuple[HtmlElement, str, str]]:
    found = []
    for anchor in element.iter("a"):
        target = _target(anchor)
        if target is not None:
            found.append((anchor, target, _text(anchor)))
    return found


def _signature(element: HtmlElement) -> tuple[str, str]:
    classes = " ".join(sorted((element.get("class") or "").split()))
    return element.tag, classes


def _is_teaser_item(item: HtmlElement, settings: TeaserSettings) -> str | None:
    """The item's target URL if it looks like a teaser, else None."""
    text = _text(item)
    if not text or len(text) > settings.max_item_chars:
        return None
    links = _links(item)
    if not links:
        return None
    link_chars = sum(len(link_text) for _, _, link_text in links)
    if link_chars >= settings.link_item_density * len(text):
        return links[0][1]
    for _anchor, target, link_text in links:
        if _words(link_text) >= settings.min_headline_words and text.startswith(link_text[:40]):
            return target
    last_anchor, last_target, last_text = links[-1]
    before = text[: len(text) - len(last_text)] if text.endswith(last_text) else None
    if before is not None and _ELLIPSIS.search(before):
        return last_target
    # the ellipsis may end the link text itself ("headline…" as the link, "…more" inside it)
    if _ELLIPSIS.search(last_text[:-1] if last_text else "") and text.endswith(last_text):
        return last_target
    if re.search(r"(?:\.{2,}|…)\s*\S{1,20}$", last_text) and text.endswith(last_text):
        return last_target
    return None


def _is_block(element: HtmlElement) -> bool:
    return any(isinstance(child.tag, str) and child.tag in _BLOCK_CHILDREN for child in element)


def find_teaser_lists(tree: HtmlElement, settings: TeaserSettings) -> list[HtmlElement]:
    """The items of teaser lists in the page (outermost first, none inside another)."""
    doomed: list[HtmlElement] = []
    for parent in tree.iter():
        if not isinstance(parent.tag, str) or parent.tag in _SKIP:
            continue
        groups: dict[tuple[str, str], list[HtmlElement]] = defaultdict(list)
        for child in parent:
            if isinstance(child.tag, str) and child.tag in ITEM_TAGS:
                groups[_signature(child)].append(child)
        for members in groups.values():
            if len(members) < settings.min_items:
                continue
            targets = [_is_teaser_item(member, settings) for member in members]
            teasers = [member for member, target in zip(members, targets, strict=True) if target]
            if (
                len(teasers) >= settings.min_items
                and len(teasers) >= settings.min_item_share * len(members)
                and len({target for target in targets if target}) >= settings.min_items
            ):
                doomed.extend(teasers)
    seen: set[int] = set()
    found = []
    for element in doomed:
        if any(id(ancestor) in seen for ancestor in element.iterancestors()):
            continue
        seen.add(id(element))
        found.append(element)
    return found


def find_link_lines(tree: HtmlElement, settings: TeaserSettings) -> list[HtmlElement]:
    """Short "label: <linked headline>" lines."""
    doomed = []
    for element in tree.iter(*LINE_TAGS):
        if _is_block(element):
            continue
        text = _text(element)
        if not text:
            continue
        words = _words(text)
        if words > settings.max_line_words:
            continue
        links = _links(element)
        if not links:
            continue
        link_chars = sum(len(link_text) for _, _, link_text in links)
        if link_chars < settings.link_line_density * len(text):
            continue
        if not any(_words(link_text) >= settings.min_headline_words for _, _, link_text in links):
            continue
        label = text
        for _, _, link_text in links:
            label = label.replace(link_text, " ", 1)
        label_words = _words(label.strip(" :|-–—»«>•·"))
        if label_words == 0 or label_words > settings.max_label_words:
            # a bare link (no label) is left to the extractor's own link-density tests
            continue
        doomed.append(element)
    return doomed


def _drop(element: HtmlElement) -> None:
    """Remove an element but keep its tail text (which belongs to the parent)."""
    parent = element.getparent()
    if parent is None:
        return
    tail = element.tail
    previous = element.getprevious()
    if tail and tail.strip():
        if previous is not None:
            previous.tail = (previous.tail or "") + tail
        else:
            parent.text = (parent.text or "") + tail
    parent.remove(element)


_SEGMENT_TAGS = ("p", "div", "a", "h1", "h2", "h3", "h4", "h5", "h6", "span", "li", "strong", "em", "b", "td", "dd", "dt")
# A body block that is only a substring of a teaser (not equal to a whole element of it) must be
# at least this long (normalised characters) to be matched: short texts match anywhere.
MIN_SUBSTRING_CHARS = 30


@dataclass(slots=True)
class TeaserIndex:
    """The teasers found in the page, in the normalised form the body blocks are compared in.

    The extractor runs on the untouched page (removing elements first changes which container
    it picks, sometimes for the worse); its body blocks are then matched against this index. A
    block that is also present in the page *outside* every teaser (the article's own lead
    repeated in a "most read" teaser of itself) is kept.
    """

    segments: dict[str, str]
    wholes: str
    outside: str

    @classmethod
    def build(cls, tree: HtmlElement, settings: TeaserSettings, *, lists: bool, lines: bool) -> TeaserIndex:
        from workers.stages.chrome import normalise_block

        found: list[tuple[HtmlElement, str]] = []
        if lists:
            found += [(element, "teaser_list") for element in find_teaser_lists(tree, settings)]
        if lines:
            inside = {id(element) for element, _ in found}
            for element in find_link_lines(tree, settings):
                if not any(id(a) in inside for a in element.iterancestors()) and id(element) not in inside:
                    found.append((element, "teaser_link"))
        segments: dict[str, str] = {}
        wholes = []
        for element, reason in found:
            whole = normalise_block(" ".join(element.itertext()))
            if not whole:
                continue
            segments.setdefault(whole, reason)
            if reason == "teaser_list":
                wholes.append(whole)
                for child in element.iter(*_SEGMENT_TAGS):
                    text = normalise_block(" ".join(child.itertext()))
                    if text:
                        segments.setdefault(text, reason)
        if not found:
            return cls({}, "", "")
        # the page's text outside the teasers
        marked = {id(element) for element, _ in found}
        parts: list[str] = []
        _outside_text(tree, marked, parts)
        return cls(segments, "\x00".join(wholes), normalise_block(" ".join(parts)))

    def reason_for(self, block: str) -> str | None:
        if not block or not self.segments:
            return None
        reason = self.segments.get(block)
        if reason is None and len(block) >= MIN_SUBSTRING_CHARS and block in self.wholes:
            reason = "teaser_list"
        if reason is None:
            return None
        if block in self.outside:
            return None
        return reason


def _outside_text(element: HtmlElement, marked: set[int], parts: list[str]) -> None:
    if id(element) in marked:
        if element.tail:
            parts.append(element.tail)
        return
    if isinstance(element.tag, str) and element.tag not in _SKIP and element.text:
        parts.append(element.text)
    if not isinstance(element.tag, str) or element.tag not in _SKIP:
        for child in element:
            _outside_text(child, marked, parts)
    if element.tail:
        parts.append(element.tail)
