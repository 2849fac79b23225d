"""Where each block of the extracted body came from in the page.

trafilatura returns new elements, not the page's own, so a body block is found again in the
page by its text: the page's text nodes are laid end to end (white space collapsed) with their
owner elements, and the block's text is searched for, in order. From the span found we know
how much of the block was link text in the page and which element holds it, which is what the
structural filters need (link density, the block's container and its neighbours).

Each block is looked for in the whole page (its first occurrences, see ``locate``): a pass over
the page per block, 100 s for a live blog of 10,000 paragraphs. So a page's searches share a
budget of characters; once it is spent, a block is only looked for in a window after the
previous one, where the extractor's blocks, which come in page order, usually are.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

from lxml.html import HtmlElement

_SKIP = frozenset({"script", "style", "noscript", "template", "head", "title", "svg"})
_WORD = re.compile(r"[^ ]+")
_PROBE = 48
_MAX_OCCURRENCES = 12
# Characters that a page's searches may scan in all: about a second of str.find at its slowest
# (text with a character outside the BMP is stored 4 bytes a character), 25 times what the
# evaluation sets' most searched page uses (20 million), so that pages come out as searched
# whole; a live blog of 10,000 paragraphs would use 50 billion.
_SEARCH_BUDGET_CHARS = 500_000_000
# Once the budget is spent: how far after the previous block a block is still looked for.
_WINDOW_CHARS = 10_000


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
        # the same text without any white space, for matching: inline markup makes the page say
        # "NEW DELHI : Their" where the extractor says "NEW DELHI: Their"
        # (the pieces are collapsed, so a single space is the only white space in the text)
        self._squeezed_at: list[int] = []
        for word in _WORD.finditer(self.text):
            self._squeezed_at.extend(range(*word.span()))
        self._squeezed = self.text.replace(" ", "")
        self._cursor = 0
        self._budget = _SEARCH_BUDGET_CHARS

    def rewind(self) -> None:
        """Start searching from the top of the page again (for a second list of blocks)."""
        self._cursor = 0

    def locate(self, block: str) -> Span | None:
        """Where the block is in the page. When its text occurs several times (the article's
        lead also quoted in a teaser of itself, a headline in a "most read" list), the
        occurrence outside the marked elements wins, then the first one after the previous
        block's."""
        wanted = "".join(block.split())
        if not wanted:
            return None
        length = len(wanted)
        low, high = self._searched(length)
        starts = self._occurrences(wanted, low, high)
        if not starts and length > _PROBE:
            # the extractor changed the text a little: anchor on its beginning (or end), keep
            # the occurrences that agree longest with the block
            scored = [
                (self._agreement(start, wanted), start) for start in self._occurrences(wanted[:_PROBE], low, high)
            ]
            if not scored:
                scored = [
                    (self._agreement(tail - (length - _PROBE), wanted), tail - (length - _PROBE))
                    for tail in self._occurrences(wanted[-_PROBE:], low, high)
                ]
            if scored:
                best = max(score for score, _ in scored)
                starts = [start for score, start in scored if score == best]
        if not starts:
            return None
        spans = []
        for start in starts:
            first = max(0, start)
            last = min(len(self._squeezed_at), first + length) - 1
            if last < first:
                continue
            spans.append(self._span(self._squeezed_at[first], self._squeezed_at[last] + 1))
        if not spans:
            return None
        chosen = min(spans, key=lambda span: (span.marked_share > 0.5, span.start < self._cursor, span.start))
        self._cursor = chosen.end
        return chosen

    def _searched(self, length: int) -> tuple[int, int]:
        """Where in the squeezed text a block of ``length`` characters is looked for: the whole
        page while the budget lasts, then the window after the previous block."""
        if self._budget > 0:
            return 0, len(self._squeezed)
        low = bisect.bisect_left(self._squeezed_at, self._cursor)
        return low, min(len(self._squeezed), low + _WINDOW_CHARS + length)

    def _occurrences(self, needle: str, start: int, end: int) -> list[int]:
        """Where ``needle`` starts in the squeezed text, lying whole between ``start`` and
        ``end``: the first ``_MAX_OCCURRENCES``. The characters searched are taken from the
        budget."""
        found: list[int] = []
        while len(found) < _MAX_OCCURRENCES:
            index = self._squeezed.find(needle, start, end)
            self._budget -= (end if index < 0 else index + len(needle)) - start
            if index < 0:
                break
            found.append(index)
            start = index + 1
        return found

    def _agreement(self, start: int, wanted: str) -> int:
        """How many characters of ``wanted`` the (squeezed) page text repeats from ``start``."""
        if start < 0:
            return 0
        count = 0
        for a, b in zip(self._squeezed[start : start + len(wanted)], wanted, strict=False):
            if a != b:
                break
            count += 1
        return count

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
    # the list keeps the ancestors' proxies alive: lxml makes a new proxy object for an element
    # each time one is asked for, so the id() of a proxy already dropped can be reused by another
    # element's, and a set of such ids matches elements that are no ancestors at all
    ancestors = [a, *a.iterancestors()]
    known = {id(element) for element in ancestors}
    for candidate in (b, *b.iterancestors()):
        if id(candidate) in known:
            return candidate
    return None
