"""Structural detection of teasers and tickers in the page (what the body filters then remove).

News templates put pointers to *other* articles everywhere, including inside the article
container: "read also" boxes, "related" lists, "…more" teasers, tickers, "most read" rails. They
are recognised here by structure and links, in any language, never by their wording:

* **Teaser lists.** At least ``min_items`` sibling elements of the same kind (same tag and
  class) that each point somewhere else (a link to a distinct URL) and each *look like a teaser*:
  short, and either mostly link text, or led by a linked headline that stands as a line of its
  own (the summary after it is a separate text, not the same sentence carrying on: "<a>Anna
  Berg</a> said the deal..." is a list of facts), or cut off with an ellipsis right before a
  link ("…more", "continue reading"). A table row or cell counts only when it is nothing but
  links: a table whose rows link a name among their figures (standings, results) is data.
  Paragraphs (``<p>``) count only by the ellipsis, and only as a run of ``min_items``
  consecutive siblings cut off so: a body paragraph with an inline link does not end in one.
* **Link lines.** A short block that is a link with at most a short label in front of it
  ("Read more: <headline>", "اقرأ أيضا: <headline>"); not a sentence that runs around its
  links ("<a>Prime Minister X</a> met <a>President Y</a> in Washington.").
* **Teaser cards.** One box for one other article set in the page ("Read more" over a
  linked headline and its summary, between two paragraphs of the article): a box element
  (``div``, ``aside``, ``section``, ``article``, ``figure``) whose linked headline is a line of
  its own (no text before or after it up to the next block element), which points to at most
  ``max_card_targets`` places (the article, its section), and holds besides its links at most
  ``max_card_words`` words, some of them (a label, a summary: a bare link is left to the
  extractor's own link-density tests). The outermost such box is the card. A paragraph that
  ends with a link ("…published in <a>the journal Nature</a>.") has text on the link's line,
  and a section of the article is longer.

A link back to the page itself (a live blog's permalink to one of its posts, ``…/live#post-3``)
points nowhere else: it makes nothing a teaser.

The page is not modified: the elements found are marked in the source map
(workers/stages/sourcemap.py), and body blocks that come from them are removed with the reason
``teaser_list`` or ``teaser_link`` (workers/stages/blocks.py).
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from urllib.parse import urldefrag, urljoin

from lxml.html import HtmlElement

from workers.stages.blocks import NO_SPACE_SCRIPT, SENTENCE_TERMINAL

# Elements that hold one item of a list of teasers.
ITEM_TAGS = frozenset({"li", "div", "article", "section", "dd", "figure", "aside", "tr", "td", "span"})
# Elements that box a single teaser card.
CARD_TAGS = frozenset({"div", "aside", "section", "article", "figure"})
# Elements that can be a one-line block on their own.
LINE_TAGS = frozenset({"p", "div", "li", "h2", "h3", "h4", "h5", "h6", "span", "strong", "em", "b"})
_BLOCK_CHILDREN = frozenset(
    {"p", "div", "ul", "ol", "li", "table", "section", "article", "aside", "h1", "h2", "h3", "h4", "h5", "h6",
     "blockquote", "figure", "header", "footer", "nav", "form", "dl", "pre"}
)
_SKIP = frozenset({"script", "style", "noscript", "template", "svg", "head"})
_ELLIPSIS = re.compile(r"(?:\.{2,}|…)\s*$")
_TABLE_ITEMS = frozenset({"tr", "td"})
# What may stand between a headline link and the summary after it ("<a>Headline</a> – summary",
# "<a>Headline</a>. Summary", "<a>ርዕስ</a>። ማጠቃለያ"): a separator or the end of the headline's
# sentence, in any script (blocks.SENTENCE_TERMINAL).
_HEADLINE_SEPARATORS = "-–—|•·/"
_WORD_CHARS = re.compile(r"[\W_]+")
_WORD_CHAR = re.compile(r"[^\W_]")


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
    # teaser card: places it may point to (the article, its section) and words besides its links
    max_card_targets: int = 2
    max_card_words: int = 40


def _text(element: HtmlElement) -> str:
    return " ".join(element.text_content().split())


def _words(text: str) -> int:
    # scripts written without spaces between words (blocks.NO_SPACE_SCRIPT): count characters
    if NO_SPACE_SCRIPT.search(text):
        return max(len(text.split()), len(text) // 3)
    return len(text.split())


@dataclass(frozen=True, slots=True)
class Page:
    """Where the page is: a link back to it (a live blog's permalink to one of its posts,
    ``…/live#post-3``) points nowhere else."""

    url: str
    canonical_url: str | None = None
    # its addresses without fragment, read once for all the page's links
    _addresses: frozenset[str] = field(init=False, repr=False, compare=False)
    # the answer for each href asked: the finders ask for every link once per element that holds
    # it, and resolving an href (urljoin) was a tenth of the extraction stage's time
    _answers: dict[str, bool] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        addresses = frozenset(urldefrag(address).url for address in (self.url, self.canonical_url) if address)
        object.__setattr__(self, "_addresses", addresses)
        object.__setattr__(self, "_answers", {})

    def is_itself(self, href: str) -> bool:
        answer = self._answers.get(href)
        if answer is None:
            try:
                answer = urldefrag(urljoin(self.url, href)).url in self._addresses
            except ValueError:  # an href urllib cannot read ("http://[::1"): not the page
                answer = False
            self._answers[href] = answer
        return answer


def _target(anchor: HtmlElement, page: Page) -> str | None:
    href = (anchor.get("href") or "").strip()
    if not href or href.startswith(("#", "javascript:", "mailto:", "tel:")) or page.is_itself(href):
        return None
    return href


def _links(element: HtmlElement, page: Page) -> list[tuple[HtmlElement, str, str]]:
    found = []
    for anchor in element.iter("a"):
        target = _target(anchor, page)
        if target is not None:
            found.append((anchor, target, _text(anchor)))
    return found


def _signature(element: HtmlElement) -> tuple[str, str]:
    classes = " ".join(sorted((element.get("class") or "").split()))
    return element.tag, classes


def _stands_alone(anchor: HtmlElement, item: HtmlElement) -> bool:
    """Whether the link is a line of its own in the item: no text carries its sentence on after
    it (up to the block element that holds it), unless behind a separator or a full stop."""
    block = anchor
    while block is not item and block.tag not in _BLOCK_CHILDREN:
        block = block.getparent()
    # the text after it, in its tail or in the elements after it ("<a><span>Name</span></a><span>
    # said…</span>", as pasted from a word processor)
    after = _text_after(anchor, block, line=True)
    return not after or after[0] in _HEADLINE_SEPARATORS or bool(SENTENCE_TERMINAL.match(after))


def _is_teaser_item(item: HtmlElement, settings: TeaserSettings, page: Page) -> str | None:
    """The item's target URL if it looks like a teaser, else None."""
    text = _text(item)
    if not text or len(text) > settings.max_item_chars:
        return None
    links = _links(item, page)
    if not links:
        return None
    if item.tag == "p":
        return _cut_before_link(item, text, links)
    if item.tag in _TABLE_ITEMS:
        linked = "".join(link_text for _, _, link_text in links)
        return links[0][1] if len(_WORD_CHARS.sub("", linked)) >= len(_WORD_CHARS.sub("", text)) else None
    link_chars = sum(len(link_text) for _, _, link_text in links)
    if link_chars >= settings.link_item_density * len(text):
        return links[0][1]
    for anchor, target, link_text in links:
        if (
            _words(link_text) >= settings.min_headline_words and text.startswith(link_text[:40])
            and _stands_alone(anchor, item)
        ):
            return target
    return _cut_before_link(item, text, links)


def _cut_before_link(item: HtmlElement, text: str, links: list[tuple[HtmlElement, str, str]]) -> str | None:
    """The last link's target when the item's text is cut off with an ellipsis at that link
    ("summary… <a>more</a>", "<a>headline…</a>", "summary… <a><img></a>"), else None."""
    last, last_target, last_text = links[-1]
    # a link without text (an icon) ends the item only when no text follows it
    if not (text.endswith(last_text) if last_text else not _text_after(last, item)):
        return None
    if _ELLIPSIS.search(text[: len(text) - len(last_text)]):
        return last_target
    # the ellipsis may end the link text itself ("headline…" as the link, "…more" inside it)
    if last_text and (_ELLIPSIS.search(last_text) or re.search(r"(?:\.{2,}|…)\s*\S{1,20}$", last_text)):
        return last_target
    return None


def _text_after(anchor: HtmlElement, item: HtmlElement, *, line: bool = False) -> str:
    """The item's text after the anchor; with ``line``, up to the next block element (a summary
    in a paragraph of its own is another line)."""
    after = []
    node = anchor
    while node is not item:
        after.append(node.tail or "")
        for sibling in node.itersiblings():
            if line and sibling.tag in _BLOCK_CHILDREN:
                return "".join(after).strip()
            after.append(sibling.text_content() if isinstance(sibling.tag, str) else "")
            after.append(sibling.tail or "")
        node = node.getparent()
    return "".join(after).strip()


def link_holders(tree: HtmlElement, page: Page) -> set[HtmlElement]:
    """Every element that holds a link to somewhere else (the link included), for both finders: most
    elements of a page hold none, and are skipped without reading their text. The set keeps the
    elements alive, so they stay the same objects while the finders walk the tree."""
    holders: set[HtmlElement] = set()
    for anchor in tree.iter("a"):
        if _target(anchor, page) is None:
            continue
        for element in (anchor, *anchor.iterancestors()):
            if element in holders:
                break
            holders.add(element)
    return holders


def _is_block(element: HtmlElement) -> bool:
    return any(isinstance(child.tag, str) and child.tag in _BLOCK_CHILDREN for child in element)


def find_teaser_lists(
    tree: HtmlElement, settings: TeaserSettings, holders: set[HtmlElement], page: Page
) -> list[HtmlElement]:
    """The items of teaser lists in the page (outermost first, none inside another);
    ``holders``: :func:`link_holders` of the page."""
    doomed: list[HtmlElement] = []
    for parent in tree.iter():
        if parent not in holders or not isinstance(parent.tag, str) or parent.tag in _SKIP:
            continue
        groups: dict[tuple[str, str], list[HtmlElement]] = defaultdict(list)
        for child in parent:
            if isinstance(child.tag, str) and child.tag in ITEM_TAGS:
                groups[_signature(child)].append(child)
        doomed.extend(_paragraph_teasers(parent, settings, holders, page))
        for members in groups.values():
            if sum(1 for member in members if member in holders) < settings.min_items:
                continue
            targets = [_is_teaser_item(member, settings, page) if member in holders else None for member in members]
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


def _paragraph_teasers(
    parent: HtmlElement, settings: TeaserSettings, holders: set[HtmlElement], page: Page
) -> list[HtmlElement]:
    """The runs of at least ``min_items`` consecutive paragraphs of the parent that are each cut
    off with an ellipsis at a link to a distinct URL (the teasers of a "related" box that a site
    lays out as bare paragraphs after the article's own)."""
    found: list[HtmlElement] = []
    run: list[tuple[HtmlElement, str]] = []
    for child in (*parent, None):
        if child is not None and not isinstance(child.tag, str):
            continue
        target = (
            _is_teaser_item(child, settings, page) if child is not None and child.tag == "p" and child in holders else None
        )
        if target:
            run.append((child, target))
            continue
        if len(run) >= settings.min_items and len({target for _, target in run}) >= settings.min_items:
            found.extend(paragraph for paragraph, _ in run)
        run = []
    return found


def find_link_lines(
    tree: HtmlElement, settings: TeaserSettings, holders: set[HtmlElement], page: Page
) -> list[HtmlElement]:
    """Short "label: <linked headline>" lines; ``holders``: :func:`link_holders` of the page."""
    doomed = []
    for element in tree.iter(*LINE_TAGS):
        if element not in holders or _is_block(element):
            continue
        text = _text(element)
        if not text:
            continue
        words = _words(text)
        if words > settings.max_line_words:
            continue
        links = _links(element, page)
        if not links:
            continue
        link_chars = sum(len(link_text) for _, _, link_text in links)
        if link_chars < settings.link_line_density * len(text):
            continue
        if not any(_words(link_text) >= settings.min_headline_words for _, _, link_text in links):
            continue
        if _words_around(text, [link_text for _, _, link_text in links]):
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


def _words_around(text: str, link_texts: list[str]) -> bool:
    """Whether words stand between two of the links, or both before and after two or more, in the text:
    a label stands on one side of them, and between them only separators do ("Read also: <a>…</a>
    | <a>…</a>"). "<a>Prime Minister X</a> met <a>President Y</a> in Washington." is a sentence."""
    position = 0
    spans = []
    for link_text in link_texts:
        found = text.find(link_text, position) if link_text else -1
        if found < 0:
            continue
        if spans and _WORD_CHAR.search(text, spans[-1][1], found):
            return True
        position = found + len(link_text)
        spans.append((found, position))
    # one link with a word after it is a label and its note ("Read also: <a>…</a> (video)")
    return len(spans) > 1 and bool(_WORD_CHAR.search(text, 0, spans[0][0])) and bool(_WORD_CHAR.search(text, spans[-1][1]))


def find_teaser_cards(
    tree: HtmlElement, settings: TeaserSettings, holders: set[HtmlElement], page: Page, found: list[HtmlElement]
) -> list[HtmlElement]:
    """Single teaser cards (outermost first, none inside another); ``holders``: :func:`link_holders`
    of the page; ``found``: what the other finders found (a card inside one of them is theirs)."""
    taken = {id(element) for element in found}
    # each element's length, places pointed to and words besides its links, for all the page's
    # headlines: the walks up from the headlines of one box pass the same elements
    measured: dict[HtmlElement, tuple[int, int, int]] = {}
    cards: list[HtmlElement] = []
    for anchor in tree.iter("a"):
        if anchor not in holders or _target(anchor, page) is None:
            continue
        if _words(_text(anchor)) < settings.min_headline_words or not _alone_on_line(anchor):
            continue
        card = None
        for element in anchor.iterancestors():
            if id(element) in taken or element.tag in ("body", "html"):
                card = None
                break
            if (measure := measured.get(element)) is None:
                measure = measured[element] = _measure(element, settings, page)
            chars, places, words = measure
            if chars > settings.max_item_chars or places > settings.max_card_targets or words > settings.max_card_words:
                break
            if words and element.tag in CARD_TAGS:
                card = element
        if card is not None:
            cards.append(card)
    ids = {id(card) for card in cards}
    outermost = [card for card in cards if not any(id(ancestor) in ids for ancestor in card.iterancestors())]
    return list({id(card): card for card in outermost}.values())


def _measure(element: HtmlElement, settings: TeaserSettings, page: Page) -> tuple[int, int, int]:
    """An element's length in characters, the places its links point to, and its words besides
    them (the places and words only when it is short enough to be a card)."""
    text = _text(element)
    if len(text) > settings.max_item_chars:
        return len(text), 0, 0
    links = _links(element, page)
    rest = text
    for _, _, link_text in links:
        rest = rest.replace(link_text, " ", 1)
    return len(text), len({target for _, target, _ in links}), _words(rest.strip())


def _alone_on_line(anchor: HtmlElement) -> bool:
    """Whether no text stands before or after the link up to the block elements around it (up to
    the next block element or the end of the block that holds it, and the same backwards)."""
    node = anchor
    while (parent := node.getparent()) is not None:
        if (node.tail or "").strip():
            return False
        for sibling in node.itersiblings():
            if isinstance(sibling.tag, str) and sibling.tag in _BLOCK_CHILDREN:
                break
            if _holds_text(sibling):
                return False
        at_block = False
        for sibling in node.itersiblings(preceding=True):
            if (sibling.tail or "").strip():
                return False
            if isinstance(sibling.tag, str) and sibling.tag in _BLOCK_CHILDREN:
                at_block = True
                break
            if _holds_text(sibling):
                return False
        if not at_block and (parent.text or "").strip():
            return False
        if parent.tag in _BLOCK_CHILDREN:
            return True
        node = parent
    return True


def _holds_text(node: HtmlElement) -> bool:
    """An inline sibling with text of its own or after it (a comment holds none a reader sees)."""
    return bool((node.tail or "").strip()) or (isinstance(node.tag, str) and bool(node.text_content().strip()))
