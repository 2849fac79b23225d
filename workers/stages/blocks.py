"""Structural filters on the blocks of trafilatura's body, each block traced back to the page.

trafilatura decides *where* the article is; these filters remove, block by block, what it kept
that a reader would not call the article. Every filter is structural (links, position, the
page's own markup) and language-independent; none looks for particular words. Each removal has a
reason, recorded on the article:

* ``teaser_list`` / ``teaser_link``: the block lies inside a teaser list or is a "label: <linked
  headline>" line (workers/stages/teasers.py).
* ``link_dense``: most of the block's text is link text in the page (a menu, a list of links).
* ``outside_main_region``: trafilatura in precision mode, run on the same page, agrees on a main
  region; a block of the balanced result lying before its start or after its end is a widget
  beside the article (only when the precision result is substantial, so a precision run that
  missed the article never cuts anything).
* ``dateline``: a short block that is a date/time line ("12/08 19:32", "Published 18 November
  2019"): it is metadata (published), not body.
* ``hidden``: text for screen readers only (``visually-hidden``, ``sr-only``...).
* ``caption``: a short block inside a figure caption or a photo credit.
* ``widget_heading``: a heading after the last paragraph of the article, with nothing of the
  article after it ("Comments", "Most read", "Newsletter").
* ``title``: the headline repeated at the top of the body (it is the title).
* ``repeated_in_page``: a block rendered twice in the same page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lxml.etree import _Element
from lxml.html import HtmlElement

from workers.stages.sourcemap import SourceMap, Span

_DATE = re.compile(
    r"\b\d{1,2}[./-]\d{1,2}[./-]\d{2,4}\b"  # 08.12.2016, 12/08/16
    r"|\b\d{4}[./-]\d{1,2}[./-]\d{1,2}\b"  # 2016-12-08
    r"|\b\d{1,2}:\d{2}\b"  # 19:32
    r"|\b\d{1,2}/\d{1,2}\b"  # 12/08
    r"|\b\d{1,2}\.?\s+\w+\.?,?\s+(?:19|20)\d{2}\b"  # 8 December 2016
    r"|\b\w+\.?\s+\d{1,2},?\s+(?:19|20)\d{2}\b"  # December 8, 2016
    r"|\d{4}\s*年\s*\d{1,2}\s*月\s*\d{1,2}\s*日"  # 2016年12月8日
)
_HIDDEN = re.compile(r"(?:^|[-_\s])(?:visually-?hidden|sr-only|screen-?reader-text|element-invisible)(?:[-_\s]|$)", re.I)
_CAPTION = re.compile(r"caption|credit|copyright", re.I)


@dataclass(slots=True)
class Block:
    element: _Element
    text: str
    words: int
    span: Span | None = None
    removed: str | None = None

    @property
    def tag(self) -> str:
        return str(self.element.tag)


@dataclass(frozen=True, slots=True)
class FilterSettings:
    link_dense: float = 0.5
    teaser_share: float = 0.8
    region: bool = True
    region_min_share: float = 0.3
    dateline_max_words: int = 12
    caption_max_words: int = 30
    widget_headings: bool = True
    hidden: bool = True
    captions: bool = True
    datelines: bool = True


def words(text: str) -> int:
    count = len(text.split())
    # scripts without spaces: about three characters a word
    if count <= 2 and len(text) > 12:
        count = max(count, len(text) // 3)
    return count


def _classes(element: HtmlElement | None, depth: int) -> list[tuple[str, str]]:
    found = []
    current = element
    while current is not None and depth > 0:
        if isinstance(current.tag, str):
            found.append((current.tag, f"{current.get('class') or ''} {current.get('id') or ''}"))
        current = current.getparent()
        depth -= 1
    return found


def locate(blocks: list[Block], source: SourceMap) -> None:
    for block in blocks:
        block.span = source.locate(block.text)


def apply_filters(
    blocks: list[Block],
    settings: FilterSettings,
    *,
    teaser_links: frozenset[int],
    precision_spans: list[Span] | None,
    precision_chars: int,
    precision_texts: frozenset[str] = frozenset(),
) -> None:
    """Mark ``block.removed`` with a reason; blocks already marked are left alone."""
    total_chars = sum(len(b.text) for b in blocks) or 1
    region: tuple[int, int] | None = None
    if settings.region and precision_spans and precision_chars >= settings.region_min_share * total_chars:
        region = (min(s.start for s in precision_spans), max(s.end for s in precision_spans))
    long_blocks = [
        i for i, b in enumerate(blocks)
        if b.words >= 30 and (b.span is None or b.span.link_density < 0.3) and b.tag not in ("head",)
    ]
    last_long = max(long_blocks) if long_blocks else len(blocks)

    for index, block in enumerate(blocks):
        if block.removed:
            continue
        span = block.span
        if span is not None and span.marked_share >= settings.teaser_share:
            in_line = span.element is not None and any(
                id(e) in teaser_links for e in [span.element, *span.element.iterancestors()]
            )
            block.removed = "teaser_link" if in_line else "teaser_list"
            continue
        if span is not None and span.link_density >= settings.link_dense:
            block.removed = "link_dense"
            continue
        if region is not None and (
            (span is not None and (span.end <= region[0] or span.start >= region[1]))
            or (span is None and " ".join(block.text.split()) not in precision_texts)
        ):
            block.removed = "outside_main_region"
            continue
        if settings.datelines and block.words <= settings.dateline_max_words and block.tag in ("p", "head") \
                and _DATE.search(block.text):
            block.removed = "dateline"
            continue
        if span is not None and span.element is not None:
            ancestry = _classes(span.element, 8)
            if settings.hidden and any(_HIDDEN.search(attrs) for _, attrs in ancestry[:2]):
                block.removed = "hidden"
                continue
            if settings.captions and block.words <= settings.caption_max_words and any(
                tag == "figcaption" or _CAPTION.search(attrs) for tag, attrs in ancestry[:3]
            ):
                block.removed = "caption"
                continue
        if settings.widget_headings and block.tag == "head" and index > last_long:
            block.removed = "widget_heading"
            continue
