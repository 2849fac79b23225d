"""Where each block of the extracted body came from in the page.

trafilatura returns new elements, not the page's own, so a body block is found again in the
page by its text: the page's text nodes are laid end to end (white space collapsed) with their
owner elements, and the block's text is searched for, in order. From the span found we know
how much of the block was link text in the page and which element holds it, which is what the
structural filters need (link density, the block's container and its neighbours).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from lxml.html import HtmlElement

_SKIP = frozenset({"script", "style", "noscript", "template", "head", "title", "svg"})
_PROBE = 48


@dataclass(frozen=True, slots=True)
class Span:
    start: int
    end: int
    link_chars: int
    marked_chars: int
    element: HtmlElement | None  # deepest element holding the whole span

    @property
    def link_density(self) -> float:
        return self.link_chars / max(1, self.end - self.start)

    @property
    def marked_share(self) -> float:
        return self.marked_chars / max(1, self.end - self.start)


class SourceMap:
    """The page's text in document order, each piece with its owner element, whether it is link
    text, and whether it lies inside one of the ``marked`` elements (e.g. teaser items)."""

    def __init__(self, tree: HtmlElement, marked: frozenset[int] = frozenset()) -> None:
        parts: list[str] = []
        self._starts: list[int] = []
        self._owners: list[HtmlElement] = []
        self._links: list[bool] = []
        self._marked: list[bool] = []
        position = 0

        def add(text: str | None, owner: HtmlElement, in_link: bool, in_marked: bool) -> None:
            nonlocal position
            if not text:
                return
            collapsed = " ".join(text.split())
            if not collapsed:
                return
            parts.append(collapsed + " ")
            self._starts.append(position)
            self._owners.append(owner)
            self._links.append(in_link)
            self._marked.append(in_marked)
            position += len(collapsed) + 1

        def walk(element: HtmlElement, in_link: bool, in_marked: bool) -> None:
            tag = element.tag
            if not isinstance(tag, str) or tag in _SKIP:
                return
            here = in_link or tag == "a"
            inside = in_marked or id(element) in marked
            add(element.text, element, here, inside)
            for child in element:
                walk(child, here, inside)
                add(child.tail, element, here, in_marked or id(element) in marked)

        walk(tree, False, False)
        self.text = "".join(parts)
        self._cursor = 0

    def rewind(self) -> None:
        """Start searching from the top of the page again (for a second list of blocks)."""
        self._cursor = 0

    def locate(self, block: str) -> Span | None:
        wanted = " ".join(block.split())
        if not wanted:
            return None
        start = self._find(wanted)
        length = len(wanted)
        if start < 0 and len(wanted) > _PROBE:
            start = self._find(wanted[:_PROBE])
            if start < 0:
                tail = self._find(wanted[-_PROBE:])
                start = tail - (length - _PROBE) if tail >= 0 else -1
        if start < 0:
            return None
        start = max(0, start)
        end = min(len(self.text), start + length)
        self._cursor = end
        return self._span(start, end)

    def _find(self, needle: str) -> int:
        index = self.text.find(needle, self._cursor)
        if index < 0:
            index = self.text.find(needle)
        return index

    def _span(self, start: int, end: int) -> Span:
        first = max(0, bisect.bisect_right(self._starts, start) - 1)
        last = max(first, bisect.bisect_right(self._starts, max(start, end - 1)) - 1)
        link_chars = marked_chars = 0
        for index in range(first, last + 1):
            if not (self._links[index] or self._marked[index]):
                continue
            piece_start = self._starts[index]
            piece_end = self._starts[index + 1] if index + 1 < len(self._starts) else len(self.text)
            overlap = max(0, min(end, piece_end) - max(start, piece_start))
            if self._links[index]:
                link_chars += overlap
            if self._marked[index]:
                marked_chars += overlap
        return Span(start, end, link_chars, marked_chars, _common_ancestor(self._owners[first], self._owners[last]))


def _common_ancestor(a: HtmlElement, b: HtmlElement) -> HtmlElement | None:
    if a is b:
        return a
    ancestors = {id(a)}
    ancestors.update(id(x) for x in a.iterancestors())
    if id(b) in ancestors:
        return b
    for candidate in b.iterancestors():
        if id(candidate) in ancestors:
            return candidate
    return None
