"""Structural filters on the blocks of trafilatura's body, each block traced back to the page.

trafilatura decides *where* the article is; these filters remove, block by block, what it kept
that a reader would not call the article. Every filter is structural (links, position, the
page's own markup) and language-independent; none looks for particular words. Each removal has a
reason, recorded on the article:

* ``teaser_list`` / ``teaser_link``: the block lies inside a teaser list or is a "label: <linked
  headline>" line (workers/stages/teasers.py).
* ``link_dense``: most of the block's text is link text in the page (a menu, a list of links).
  A paragraph of the page written as sentences keeps its inline links up to a higher density
  (``prose_link_dense``): reports cite and link as they go, menus do not end in a full stop.
* ``outside_main_region``: trafilatura in precision mode, run on the same page, agrees on a main
  region; a block of the balanced result lying before its start or after its end is a widget
  beside the article (only when the precision result is substantial, so a precision run that
  missed the article never cuts anything).
* ``obfuscated``: a block whose words mix Latin letters with Cyrillic or Greek look-alikes inside
  the same word ("Аdvеrtіѕе" with a Cyrillic А, е, і, ѕ): text disguised so that filters
  reading words miss it, which is what advertising inserts do; no language writes words so. Only
  as a minority of the body: a site that disguises its whole article against copying keeps it.
* ``dateline``: a short block that is a date/time line ("12/08 19:32", "Published 18 November
  2019"): it is metadata (published), not body. Only a block that is almost nothing but the date
  (``dateline_label_words`` words besides it), or, above the first prose paragraph, where the
  byline sits, a short line of a few more (``dateline_lead_label_words``: "Posted by X, 5:45 AM
  PST 11/19/2019"). A sentence that names a date ("Doors open at 18:30.") or a ticker entry
  led by its time is the article's, and so is a short one that ends after a word ("The quake
  struck at 03:17 local time.", "地震于2024年1月1日发生。"), where a dateline ends with its date, time
  or zone ("Updated at 1:23 p.m.", "… 11:34 GMT."). A span of time is no date: opening hours or
  a schedule ("10:00-18:00"), a race time with seconds and no date ("2:01:09").
* ``url_line``: a bare URL printed as text (a print header, a meta block), not prose.
* ``hidden``: text for screen readers only (``visually-hidden``, ``sr-only``...).
* ``caption``: a short block inside a figure caption or a photo credit, or closed by a credit
  element of its own (a photo's summary line ending "By AGENCY").
* ``small_print``: a short block set entirely in ``<small>`` or ``<sub>`` (figure captions,
  credits and notes that the page marks by typography rather than by a class; switched with
  ``caption``). Only when the page's long paragraphs are not set that way: a site that sets its
  whole text small keeps it.
* ``contact_cta``: a short block whose own links are contact schemes (mail, phone, messengers)
  or the profile or share pages of social networks: "write to us", "follow us", "share this".
* ``after_article``: a block of at most ``after_article_max_words`` after the end of the
  article's container (the deepest element holding most of the body) and outside it: the
  site's boxes below the article ("about the company", a donation appeal, share tools). A
  prose paragraph in a copy of the container's markup nearby is the article continued after
  an advert or an embed, and stays; so does a sentence paragraph written as the article's
  paragraphs before the container, beside it (the container is then a group inside the body,
  WordPress's ``wp-block-group`` holding most of the text).
* ``widget_heading``: a heading after the last paragraph of the article, with nothing of the
  article after it ("Comments", "Most read", "Newsletter").
* ``attribution_line``: a short "Label: value" line that closes the body and is not a sentence
  ("Photo credits: X", "Filed under: Y", "Short URL: ...", "（責任編輯：Z）"): a note about the
  article (credits, source, editor, tags), not its text. Only a paragraph, never a list item,
  and only the last kept block: the same shape inside the article is a list of facts. A value
  holding a figure ("Deadline: 31 March") is a fact too: credits name people and sources.
* ``copyright_line``: a short closing paragraph with a copyright sign among its first words
  ("© 2019 Science X Network", "Copyright © 2023 The Washington Times, LLC."): the site's or the
  agency's notice, not the article. The sign is the same in every language; one in the middle of
  a sentence, or anywhere but the closing paragraph, is the article's.
* ``embed_call``: a short closing paragraph that ends as a call (a colon, an exclamation mark)
  and that the page follows with an embedded player or frame (iframe, video, audio) before any
  other text: the embed's call to watch, listen or click, which means nothing without the
  embed (switched with ``contact_cta``). A closing sentence followed by an advert's frame ends
  with a full stop and stays.
* ``title``: the headline repeated at the top of the body (it is the title).
* ``repeated_in_page``: a block rendered twice in the same page.
* ``boilerplate_box``: a short block inside a small page element whose class or id names it
  as a box of the site's own (newsletter sign-up, donation appeal, promotion, advert,
  affiliate disclosure, share bar, related links, cookie consent...). Class names are the
  markup's conventions, not the text's wording; the element must be small, so a container that
  wraps the article itself never counts. Paywall and subscription classes do not count: sites
  put them on the article's own paragraphs behind the wall as often as on the notice.

One addition, ``split_body_segments``: the paragraphs of an article whose body the site split
into segments of the same markup, which the extractor left out because it takes the first
segment as the article.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

import regex
from lxml import etree
from lxml.etree import _Element
from lxml.html import HtmlElement

from workers.stages.sourcemap import SourceMap, Span
from workers.textnorm import LETTER

_DATE = re.compile(
    r"\b\d{1,2}[./-]\d{1,2}[./-]\d{2,4}\b"  # 08.12.2016, 12/08/16
    r"|\b\d{4}[./-]\d{1,2}[./-]\d{1,2}\b"  # 2016-12-08
    r"|\b(?:[01]?\d|2[0-3]):[0-5]\d\b(?:\s?[aApP]\.?[mM]\b\.?)?"  # 19:32, 7:32 pm (not a score: 98:95)
    r"|\b\d{1,2}/\d{1,2}\b"  # 12/08
    r"|\b\d{1,2}(?:[^\W\d_]{1,2}\b)?\.?\s+\w+\.?,?\s+(?:19|20)\d{2}\b"  # 8 December 2016, 8th December 2016
    r"|\b\w+\.?\s+\d{1,2},?\s+(?:19|20)\d{2}\b"  # December 8, 2016
    r"|\d{4}\s*年\s*\d{1,2}\s*月\s*\d{1,2}\s*日"  # 2016年12月8日
)
# A span of time, not a moment: opening hours, a schedule ("10:00-18:00", "9:00 – 17:30"), and a
# duration with seconds ("2:01:09", a race time).
_TIME_RANGE = re.compile(r"\b(?:[01]?\d|2[0-3]):[0-5]\d\s*[-–—~〜]\s*(?:[01]?\d|2[0-3]):[0-5]\d\b")
_CLOCK_WITH_SECONDS = re.compile(r"\b\d{1,2}:[0-5]\d:[0-5]\d\b")
# "Label: value": a label of at most 25 characters holding a letter (so not a time like 03:15),
# an ASCII or full-width colon, and something after it.
_LABEL_LINE = re.compile(r"^(?=[^:：]*[^\W\d_])[^:：]{1,25}\s?[:：]\s?\S")
_LATIN = re.compile(r"[A-Za-z]")
_WORD = re.compile(r"[^\W_]")
_DIGIT = re.compile(r"\d")
# a table of fewer rows is a bar of links as often as data
_DATA_TABLE_MIN_ROWS = 3
# Greek and Cyrillic, but Greek μ and Ω: unit symbols (μg/m³, kΩ) that science writes beside
# Latin letters, not a disguise
_LOOK_ALIKE = re.compile(r"[\u0370-\u03a8\u03aa-\u03bb\u03bd-\u03ff\u0400-\u04ff]")
_BARE_URL = re.compile(r"^(?:https?://|www\.)\S+$", re.I)
_HIDDEN = re.compile(r"(?:^|[-_\s])(?:visually-?hidden|sr-only|screen-?reader-text|element-invisible)(?:[-_\s]|$)", re.I)
_CAPTION = re.compile(r"caption|credit|copyright", re.I)
_TAXONOMY_CLASS = re.compile(r"(?:^|(?<=\s))(?:category|tag)-\S*")
# Elements of a block's own looked through for a closing credit (a caption line holds a handful).
_CREDIT_MAX_DESCENDANTS = 64
_SMALL_PRINT_TAGS = ("small", "sub")
# Words of class names and ids (split at -, _, spaces and camelCase) that name a site's own
# boxes rather than the article's text.
# Not "paywall", "premium" or "subscription": sites put those on the paragraphs *behind* the
# wall (the article itself), as much as on the notice. Not "disclaimer": an editorial note
# ("the views expressed...") is the article's; an affiliate "disclosure" is commercial.
_BOILERPLATE_WORDS = frozenset({
    "ad", "ads", "advert", "advertisement", "advertising", "sponsor", "sponsored", "promo", "promotion",
    "newsletter", "signup", "subscribe", "donate", "donation", "disclosure", "share", "sharing",
    "social", "related", "recommended", "cta", "popup", "toast", "tooltip", "consent", "cookie",
    "placeholder",
})
_CLASS_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])")
# Links that make a block a call to action: write to us, call us, follow us, share this. Contact
# schemes, and the *profile* or *share* pages of social networks (not a post, a video or a
# tweet, which an article may quote).
_CONTACT = re.compile(r"^(?:mailto:|tel:|sms:|whatsapp:|viber:|skype:)", re.I)
_SOCIAL = re.compile(
    r"^(?:https?:)?//(?:[a-z0-9-]+\.)*(?:facebook\.com|fb\.me|twitter\.com|x\.com|instagram\.com|youtube\.com|"
    r"t\.me|telegram\.me|wa\.me|whatsapp\.com|linkedin\.com|tiktok\.com|pinterest\.com|flipboard\.com|"
    r"news\.google\.com|threads\.net|bsky\.app|vk\.com|ok\.ru|snapchat\.com)"
    r"(?:/(?:channel/|c/|user/|@)?[^/?#]*)?/?(?:[?#].*)?$",
    re.I,
)
_SHARE = re.compile(r"/sharer|/intent/|/share\?|/share/|addtoany|sharethis|api\.whatsapp\.com/send", re.I)
# A post, a video, a photo, a search: what an article cites (VK's walls and videos name them
# "wall-<group>_<post>", Facebook's old links permalink.php?story_fbid=...).
_EMBED = re.compile(
    r"ref_src=twsrc|/status/|/watch|/p/|/reel/|/video/|/posts?/|/(?:wall|video|photo|clip)-?\d+_\d+"
    r"|/(?:permalink|photo|story)\.php|/search\b",
    re.I,
)


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
    prose_link_dense: float = 0.75
    prose_min_words: int = 12
    teaser_share: float = 0.8
    region: bool = True
    region_min_share: float = 0.3
    region_lead_words: int = 15
    dateline_max_words: int = 12
    # words of a dateline besides its dates and times, in the body and above its first paragraph
    dateline_label_words: int = 2
    dateline_lead_label_words: int = 8
    caption_max_words: int = 30
    cta_max_words: int = 40
    after_article_max_words: int = 150
    box_max_words: int = 60
    box_element_max_words: int = 120
    box_depth: int = 4
    main_container_share: float = 0.6
    segment_min_paragraphs: int = 2
    # words mixing scripts that make a block obfuscated: at least this many, and this share
    obfuscated_min_words: int = 3
    obfuscated_min_share: float = 0.2
    attribution_max_words: int = 6
    copyright_max_words: int = 60
    contact_cta: bool = True
    after_article: bool = True
    widget_headings: bool = True
    hidden: bool = True
    captions: bool = True
    datelines: bool = True
    boilerplate_boxes: bool = True
    attribution_line: bool = True
    copyright_line: bool = True
    obfuscated: bool = True


# Tibetan (\u0f00-\u0fff) separates syllables with a tsheg, not words with spaces: counted by
# spaces, a paragraph of forty syllables was two or three words, never a prose paragraph.
NO_SPACE_SCRIPT = re.compile(
    r"[\u0e00-\u0eff\u0f00-\u0fff\u1000-\u109f\u1780-\u17ff"
    r"\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]"
)


def words(text: str) -> int:
    count = len(text.split())
    # scripts written without spaces (Chinese, Japanese, Thai...): about two characters a word
    if NO_SPACE_SCRIPT.search(text):
        count = max(count, len(NO_SPACE_SCRIPT.findall(text)) // 2)
    return count


def _attrs(element: HtmlElement) -> str:
    """The element's class and id, the names the markup gives it, but the classes that name the
    article's categories and tags (WordPress puts ``category-<slug>`` and ``tag-<slug>`` on every
    post's element): "tag-credit-suisse" names no credit line, "category-social-affairs" no
    sharing box."""
    classes = element.get("class") or ""
    if "category-" in classes or "tag-" in classes:
        classes = _TAXONOMY_CLASS.sub(" ", classes)
    return f"{classes} {element.get('id') or ''}"


def _classes(element: HtmlElement | None, depth: int) -> list[tuple[str, str]]:
    found = []
    current = element
    while current is not None and depth > 0:
        if isinstance(current.tag, str):
            found.append((current.tag, _attrs(current)))
        current = current.getparent()
        depth -= 1
    return found


def _ends_in_credit(element: HtmlElement, text: str) -> bool:
    """Whether the block closes with an element of its own named as a credit or caption: a photo's
    summary line with its "By AGENCY" credit, in a box whose class names neither."""
    closing = " ".join(text.split())
    # a short block's element is small; when it is not (a span spread over a whole container),
    # looking through all of it for every short block would make a large page quadratic
    for inner in itertools.islice(element.iterdescendants(), _CREDIT_MAX_DESCENDANTS):
        if isinstance(inner.tag, str) and _CAPTION.search(_attrs(inner)):
            credit = " ".join(inner.text_content().split())
            if credit and closing.endswith(credit):
                return True
    return False


def _class_words(element: HtmlElement) -> set[str]:
    return {word.lower() for word in _CLASS_WORD.findall(_attrs(element))}


def _in_boilerplate_box(element: HtmlElement, settings: FilterSettings, box_words: dict[HtmlElement, int]) -> bool:
    """Whether one of the element's nearest ancestors (itself included) is a small box whose
    class or id names it as the site's own (see ``_BOILERPLATE_WORDS``). ``box_words``: the words
    of the boxes met so far on the page, each counted once (a live blog whose wrapper is named
    "has-social-share" was counted again for each of its thousands of entries)."""
    current: HtmlElement | None = element
    for _ in range(settings.box_depth):
        if current is None or not isinstance(current.tag, str):
            return False
        if _class_words(current) & _BOILERPLATE_WORDS:
            if current not in box_words:
                box_words[current] = words(current.text_content())
            return box_words[current] <= settings.box_element_max_words
        current = current.getparent()
    return False


# What may close a sentence after its end mark: quotation marks and closing brackets of any script
# (”, », 」, 』, ）, 】). The patterns anchored at the end search from it ((?r)).
_CLOSERS = r"[\p{Pe}\p{Pf}\p{Quotation_Mark}]*"
# The marks Unicode names sentence terminals in every script (. ! ? 。 ؟ ۔ । ॥ ። ፧ ፨ ။ ។ ։ ...), and
# Tibetan's shads: Unicode leaves them out because a shad closes clauses too, but it is the only
# full stop Tibetan writes.
_TERMINALS = r"[\p{Sentence_Terminal}།༎]"
SENTENCE_TERMINAL = regex.compile(_TERMINALS)
_SENTENCE_END = regex.compile(rf"(?r){_TERMINALS}{_CLOSERS}$")
# Greek writes its question mark as ';' (U+037E, which NFC turns into ';'): in any other script the
# same sign ends a clause, not a sentence.
_SEMICOLON_END = regex.compile(rf"(?r)[;\u037e]{_CLOSERS}$")
_WORD_END = regex.compile(rf"(?r)[\p{{L}}\p{{M}}\p{{N}}]{_CLOSERS}\s*$")
# A sentence's end right after a word ("... at 03:17 local time.", "... عند الساعة 19:32 مساء.",
# "地震于2024年1月1日发生。"), not after a date, a time, a zone or an abbreviation, as datelines end
# ("on March 3, 2024.", "1:23 p.m.", "5:45 p.m. ET.").
_SENTENCE_AFTER_WORD = regex.compile(
    rf"(?:(?<![\p{{L}}\p{{M}}\p{{N}}.])(?![A-Z]+\.)[\p{{L}}\p{{M}}]{{2,}}|[\p{{Han}}\p{{Hiragana}}\p{{Katakana}}])"
    rf"{_TERMINALS}{_CLOSERS}\s*$"
)
# runs of letters (with their combining marks), all of them or those of one script
_LETTERS = regex.compile(r"[\p{L}\p{M}]+")
_GREEK_LETTERS = regex.compile(r"[\p{Greek}&&[\p{L}\p{M}]]+", regex.V1)
_UNMARKED_SCRIPT = regex.compile(r"[\p{Thai}\p{Lao}]")
_UNMARKED_SCRIPT_LETTERS = regex.compile(r"[[\p{Thai}\p{Lao}]&&[\p{L}\p{M}]]+", regex.V1)


def _is_obfuscated(text: str, settings: FilterSettings) -> bool:
    if not _LOOK_ALIKE.search(text):
        return False
    tokens = re.findall(r"\w+", text)
    mixed = sum(1 for token in tokens if _LATIN.search(token) and _LOOK_ALIKE.search(token))
    return mixed >= settings.obfuscated_min_words and mixed >= settings.obfuscated_min_share * len(tokens)


def _minority(blocks: list[Block], test: Callable[[Block], bool], *, max_words: int | None = None) -> set[int]:
    """Indexes of the blocks that pass ``test``, when they are a minority of the text and none is
    longer than ``max_words``; else none: what the whole page does is the site's way of writing
    its article (all text in small print, all text disguised against copying), not a box in it."""
    found, chars, total = set(), 0, 0
    for index, block in enumerate(blocks):
        total += len(block.text)
        if not test(block):
            continue
        if max_words is not None and block.words > max_words:
            return set()
        found.add(index)
        chars += len(block.text)
    return found if 2 * chars < total else set()


def _in_small_print(element: HtmlElement) -> bool:
    # the element itself, inside <small> (<small><p>, <small><div><p>), or all its text in them
    if any(e.tag in _SMALL_PRINT_TAGS for e in itertools.islice(element.iterancestors(), 2)) or (
        element.tag in _SMALL_PRINT_TAGS
    ):
        return True
    text = "".join(element.text_content().split())
    small = "".join(
        "".join(e.text_content().split()) for e in element.iterdescendants(*_SMALL_PRINT_TAGS)
        # the outermost ones only, or nested text would count twice
        if not any(a.tag in _SMALL_PRINT_TAGS for a in itertools.takewhile(lambda a: a is not element, e.iterancestors()))
    )
    return bool(text) and small == text


def _mostly_in(text: str, script_letters: regex.Pattern[str]) -> bool:
    """Whether most of the text's letters are in the runs of ``script_letters``."""
    return 2 * sum(map(len, script_letters.findall(text))) > sum(map(len, _LETTERS.findall(text)))


def _ends_as_sentence(text: str) -> bool:
    """Whether the text ends as a sentence ends, in any script; an end mark after the full stop
    (a magazine's closing ♦ or ■) does not count against it."""
    end = len(text)
    while end and (text[end - 1].isspace() or unicodedata.category(text[end - 1]).startswith("S")):
        end -= 1
    text = text[:end]
    if _SENTENCE_END.search(text):
        return True
    return bool(_SEMICOLON_END.search(text)) and _mostly_in(text, _GREEK_LETTERS)


def _written_as_sentences(text: str, link_share: float, settings: FilterSettings) -> bool:
    """Whether a paragraph's text (``link_share`` of it link text) reads as sentences: it ends as a
    sentence ends, or it is prose of a script that marks no sentence end."""
    if _ends_as_sentence(text):
        return True
    # Thai and Lao mark no sentence end (a space separates sentences; a paragraph ends with its last
    # word), so only what else the paragraph shows tells their prose from chrome: the length of
    # prose, and text of its own. A linked headline with its time stamp or a "read more" line is
    # as long as a sentence and ends as one does; a short sentence of these scripts cannot be told
    # from a label, and is judged as one.
    return (
        link_share < settings.link_dense and bool(_UNMARKED_SCRIPT.search(text))
        and words(text) >= settings.prose_min_words and bool(_WORD_END.search(text))
        and _mostly_in(text, _UNMARKED_SCRIPT_LETTERS)
    )


def _is_sentence_paragraph(block: Block, settings: FilterSettings) -> bool:
    """A paragraph of the page (``p`` in the source, not a list item or a heading) written as
    sentences (:func:`_written_as_sentences`)."""
    span = block.span
    return (
        span is not None and span.element is not None and span.element.tag == "p" and block.tag == "p"
        and _written_as_sentences(block.text, span.link_density, settings)
    )


def _is_prose_paragraph(block: Block, settings: FilterSettings) -> bool:
    """A sentence paragraph (:func:`_is_sentence_paragraph`) of at least ``prose_min_words`` words."""
    return block.words >= settings.prose_min_words and _is_sentence_paragraph(block, settings)


def inner_prose(blocks: list[Block], settings: FilterSettings) -> frozenset[int]:
    """The indexes of the sentence paragraphs and quotes that stand between two prose paragraphs:
    the article's middle, where a paragraph a site repeats (a series' background, a wire
    paragraph, a statement quoted in every report of a story: "“We will not back down,” the mayor
    said.") is copy, while the chrome repeated in prose (a disclaimer, an author's note) stands at
    an end."""
    prose = [index for index, block in enumerate(blocks) if _is_prose_paragraph(block, settings)]
    if len(prose) < 2:
        return frozenset()
    return frozenset(
        index for index in range(prose[0] + 1, prose[-1])
        if blocks[index].tag == "quote" or _is_sentence_paragraph(blocks[index], settings)
    )


def _is_data_table(element: HtmlElement) -> bool:
    """A table most of whose rows hold a cell of text without a link (figures beside a linked
    name: standings, results, prices), not a grid of links."""
    table = element if element.tag == "table" else next(element.iterancestors("table"), None)
    if table is None:
        return False
    rows = list(table.iter("tr"))
    with_data = sum(
        1 for row in rows
        if any(_WORD.search(cell.text_content()) and next(cell.iter("a"), None) is None for cell in row.iter("td"))
    )
    return len(rows) >= _DATA_TABLE_MIN_ROWS and 2 * with_data > len(rows)


def _dateline_label_words(text: str) -> int | None:
    """How many words the block has besides its dates and times (those with a letter), or None
    when it names no date or time: a span of time alone (hours, a schedule, a duration with
    seconds and no date) is none."""
    if _TIME_RANGE.search(text) or not _DATE.search(_CLOCK_WITH_SECONDS.sub(" ", text)):
        return None
    return words(" ".join(token for token in _DATE.sub(" ", text).split() if LETTER.search(token)))


def _is_cta_link(href: str) -> bool:
    href = href.strip()
    if not href or _EMBED.search(href):
        return False
    return bool(_CONTACT.match(href) or _SHARE.search(href) or _SOCIAL.match(href))


def _block_links(block: Block) -> list[str]:
    """The link targets of the block's own element (when that element is the block, not a
    larger container that happens to hold it)."""
    span = block.span
    if span is None or span.element is None:
        return []
    element = span.element
    if len(" ".join(element.text_content().split())) > 2 * len(block.text) + 20:
        return []
    hrefs = [a.get("href") or "" for a in element.iter("a")]
    hrefs += [a.get("href") or "" for a in element.iterancestors("a")]
    return hrefs


def _longest_link_share(block: Block) -> float:
    """The share of the block's text in its longest link (of its own element, see
    :func:`_block_links`)."""
    span = block.span
    if span is None or span.element is None or not block.text:
        return 0.0
    longest = max((len(" ".join(a.text_content().split())) for a in span.element.iter("a")), default=0)
    return longest / len(block.text)


def _main_container(blocks: list[Block], share: float) -> tuple[HtmlElement | None, int | None]:
    """The article's container: the deepest page element holding ``share`` of the body's located
    text and more than one of its blocks, and where in the page text its last body block ends."""
    weights: dict[int, int] = {}
    counts: dict[int, int] = {}
    elements: dict[int, HtmlElement] = {}
    total = 0
    for block in blocks:
        span = block.span
        if span is None or span.element is None:
            continue
        total += len(block.text)
        for element in (span.element, *span.element.iterancestors()):
            weights[id(element)] = weights.get(id(element), 0) + len(block.text)
            counts[id(element)] = counts.get(id(element), 0) + 1
            elements[id(element)] = element
    if not total:
        return None, None
    best, depth = None, -1
    for key, weight in weights.items():
        if weight >= share * total:
            element = elements[key]
            level = sum(1 for _ in element.iterancestors())
            if level > depth:
                best, depth = element, level
    if best is None:
        return None, None
    if counts[id(best)] == 1 and best.getparent() is not None:
        # one long paragraph can outweigh the rest of a short body: it is not the container, and
        # the paragraphs beside it are not "after the article"
        best = best.getparent()
    ends = [
        b.span.end for b in blocks
        if b.span is not None and b.span.element is not None
        and (b.span.element is best or any(a is best for a in b.span.element.iterancestors()))
    ]
    return best, max(ends) if ends else None


def _class_kinds(element: HtmlElement) -> frozenset[str]:
    """The element's class names without their BEM modifiers ("text-block--first" is a
    "text-block")."""
    return frozenset(name.split("--")[0] for name in (element.get("class") or "").split())


def _markup(element: HtmlElement) -> tuple[HtmlElement | None, str, frozenset[str]]:
    """Where and how a paragraph is written: its parent, its tag and its class names. (The
    element itself, not its id: lxml makes a new proxy, maybe at an old proxy's address, for an
    element no Python object holds.)"""
    return element.getparent(), element.tag, _class_kinds(element)


def _lead_markup(
    blocks: list[Block], main: HtmlElement, settings: FilterSettings
) -> frozenset[tuple[HtmlElement | None, str, frozenset[str]]]:
    """The markup of the article's sentence paragraphs that come before its container beside it
    (in an element that holds the container too): the container is then a group inside the
    article's body (WordPress's ``wp-block-group`` holding most of the text), and paragraphs
    after it in the same markup are the article going on."""
    holders = {ancestor: child for child, ancestor in itertools.pairwise((main, *main.iterancestors()))}
    lead = set()
    for block in blocks:
        span = block.span
        if span is None or span.element is None or not _is_sentence_paragraph(block, settings):
            continue
        parent = span.element.getparent()
        holding = holders.get(parent) if parent is not None else None
        if holding is not None and any(sibling is holding for sibling in span.element.itersiblings()):
            lead.add(_markup(span.element))
    return frozenset(lead)


def _continues(element: HtmlElement, main: HtmlElement, levels: int = 4) -> bool:
    """Whether the element lies in a copy of the article's container: an element with the
    container's tag and class names, modifiers aside ("text-block" beside "text-block
    text-block--first"), under the same ancestor within ``levels`` levels. Sites
    split the body into segments of the same markup around an advert, a teaser box or an embed
    (a paragraph written as sentences there is the article continued; a short credit line in
    the same markup is not, hence only sentences are kept this way, and short ones only between
    prose paragraphs)."""
    kinds = _class_kinds(main)
    if not kinds:
        return False
    near = list(itertools.islice(main.iterancestors(), levels))
    for candidate in (element, *element.iterancestors()):
        if candidate is main:
            return False
        if candidate.tag == main.tag and _class_kinds(candidate) == kinds:
            return any(a is b for a in itertools.islice(candidate.iterancestors(), levels) for b in near)
    return False


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
    first_prose = next((i for i, b in enumerate(blocks) if _is_prose_paragraph(b, settings)), len(blocks))
    late_headings: list[int] = []
    late_calls: list[int] = []
    # short sentences that stay only between two prose paragraphs of the article that stay: the
    # reason each goes for otherwise
    within_prose: dict[int, str] = {}
    box_words: dict[HtmlElement, int] = {}
    main, main_end = _main_container(blocks, settings.main_container_share) if settings.after_article else (None, None)
    lead_markup = _lead_markup(blocks, main, settings) if main is not None else frozenset()
    small_print = _minority(
        blocks, lambda b: b.span is not None and b.span.element is not None and _in_small_print(b.span.element),
        max_words=settings.caption_max_words,
    ) if settings.captions else set()
    obfuscated = _minority(blocks, lambda b: _is_obfuscated(b.text, settings)) if settings.obfuscated else set()

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
        if span is not None and span.link_density >= settings.link_dense and not (
            span.element is not None and block.tag == "table" and _is_data_table(span.element)
        ):
            if span.link_density >= settings.prose_link_dense or not _is_sentence_paragraph(
                block, settings
            ):
                block.removed = "link_dense"
                continue
            if not _is_prose_paragraph(block, settings):
                # a short sentence naming linked people or places is the article's between its
                # prose; one whose link is most of it ("Read our <a>live coverage</a>.") or a call
                # to follow a profile is a promotion
                if _longest_link_share(block) >= settings.link_dense or any(
                    _is_cta_link(href) for href in _block_links(block)
                ):
                    block.removed = "link_dense"
                    continue
                within_prose[index] = "link_dense"
        if region is not None and (
            (span is not None and span.start >= region[1])
            # before the region: the standfirst (lead) sits there too; only short blocks go
            or (span is not None and span.end <= region[0]
                and (block.words < settings.region_lead_words or block.tag != "p"))
            or (span is None and " ".join(block.text.split()) not in precision_texts)
        ):
            block.removed = "outside_main_region"
            continue
        if index in obfuscated:
            block.removed = "obfuscated"
            continue
        if _BARE_URL.match(block.text.strip()):
            # a URL printed as text (the canonical or image address of a print or meta block)
            block.removed = "url_line"
            continue
        if settings.datelines and block.words <= settings.dateline_max_words and block.tag in ("p", "head") and (
            label := _dateline_label_words(block.text)
        ) is not None and label <= (
            settings.dateline_lead_label_words if index < first_prose else settings.dateline_label_words
        ) and not _SENTENCE_AFTER_WORD.search(block.text):
            block.removed = "dateline"
            continue
        if span is not None and span.element is not None:
            ancestry = _classes(span.element, 8)
            if settings.hidden and any(_HIDDEN.search(attrs) for _, attrs in ancestry[:2]):
                block.removed = "hidden"
                continue
            if settings.boilerplate_boxes and block.words <= settings.box_max_words and _in_boilerplate_box(
                span.element, settings, box_words
            ):
                block.removed = "boilerplate_box"
                continue
            if settings.captions and block.words <= settings.caption_max_words and (
                any(tag == "figcaption" or _CAPTION.search(attrs) for tag, attrs in ancestry[:3])
                or _ends_in_credit(span.element, block.text)
            ):
                block.removed = "caption"
                continue
            if index in small_print:
                block.removed = "small_print"
                continue
        if settings.widget_headings and block.tag == "head" and index > last_long:
            late_headings.append(index)
            continue
        if settings.contact_cta and block.words <= settings.cta_max_words and any(
            _is_cta_link(href) for href in _block_links(block)
        ):
            if not _is_sentence_paragraph(block, settings):
                block.removed = "contact_cta"
                continue
            # a sentence linking an address or a profile: the article's, unless it closes it
            if _is_prose_paragraph(block, settings):
                late_calls.append(index)
            else:
                within_prose[index] = "contact_cta"
        if (
            main is not None and main_end is not None and span is not None and span.element is not None
            and block.words <= settings.after_article_max_words and span.start >= main_end
            and not (span.element is main or any(a is main for a in span.element.iterancestors()))
        ):
            sentence = _is_sentence_paragraph(block, settings)
            if sentence and _markup(span.element) in lead_markup:
                pass  # the article's paragraphs around a group of its own (its container)
            elif not (sentence and _continues(span.element, main)):
                block.removed = "after_article"
                continue
            elif not _is_prose_paragraph(block, settings):
                within_prose[index] = "after_article"

    # a heading after the last long paragraph is a widget's ("Comments", "Most read") unless a
    # paragraph of the article that stays comes after it (a subheading over short paragraphs), or
    # a list that stays (a closing list of points: a widget's list is links, and went)
    # ("Email the author at ...", "Follow us on ...": the calls to action close the article too)
    calls = set(late_calls)
    last_prose = max(
        (
            i for i, b in enumerate(blocks)
            if not b.removed and i not in calls and _is_prose_paragraph(b, settings)
        ),
        default=-1,
    )
    kept_prose = [i for i, b in enumerate(blocks) if not b.removed and _is_prose_paragraph(b, settings)]
    for index, reason in within_prose.items():
        if not blocks[index].removed and not (kept_prose and kept_prose[0] < index < kept_prose[-1]):
            blocks[index].removed = reason
    for index in late_headings:
        if not blocks[index].removed and index > last_prose and not _heads_kept_content(blocks, index):
            blocks[index].removed = "widget_heading"
    for index in late_calls:
        if not blocks[index].removed and index > last_prose:
            blocks[index].removed = "contact_cta"

    if settings.contact_cta:
        _mark_closing_note(blocks, lambda block: _introduces_embed(block, settings), "embed_call")
    if settings.copyright_line:
        _mark_closing_note(blocks, lambda block: _is_copyright_line(block, settings), "copyright_line")
    if settings.attribution_line:
        _mark_closing_note(blocks, lambda block: _is_attribution_line(block, settings), "attribution_line")


_TABLE_PARTS = frozenset({"table", "row", "cell"})


def _heads_kept_content(blocks: list[Block], heading: int) -> bool:
    """Whether what a heading of the article's own heads at its end follows it, before the next
    heading, and stays: list items, a quote, a table of data (standings, results; a table of
    links is a widget's)."""
    for block in blocks[heading + 1:]:
        if block.tag == "head":
            return False
        if block.removed:
            continue
        if block.tag in ("item", "quote") or (
            block.tag in _TABLE_PARTS and block.span is not None and block.span.element is not None
            and _is_data_table(block.span.element)
        ):
            return True
    return False


def _mark_closing_note(blocks: list[Block], is_note: Callable[[Block], bool], reason: str) -> None:
    """The last kept block goes when it is such a note (never the only block)."""
    kept = [block for block in blocks if not block.removed]
    if len(kept) > 1 and is_note(kept[-1]):
        kept[-1].removed = reason


# The first element after a block, in page order, that is an embedded player or frame or holds
# text of its own (scripts and styles hold none a reader sees).
_NEXT_EMBED_OR_TEXT = etree.XPath(
    "following::*[self::iframe or self::video or self::audio or self::embed or self::object"
    " or (normalize-space(text()) and not(self::script or self::style or self::noscript))][1]"
)
_EMBED_TAGS = frozenset({"iframe", "video", "audio", "embed", "object"})


# How a call ends: it points at what follows ("...log in here:") or urges ("Subscribe to our channel!").
_CALL_END = re.compile(r"[:!：！]\W*$")


def _introduces_embed(block: Block, settings: FilterSettings) -> bool:
    """A short closing block that ends as a call (a colon, an exclamation mark) and that the page
    follows with an embedded player or frame before any other text: the embed's call ("Watch our
    channel!", "This button adds the episode to your list:"); the embed itself is not text. A
    closing sentence of the article followed by an advert's frame ends with a full stop."""
    if (
        block.tag != "p" or block.words > settings.cta_max_words or block.span is None
        or block.span.element is None or not _CALL_END.search(block.text)
    ):
        return False
    following = _NEXT_EMBED_OR_TEXT(block.span.element)
    return bool(following) and following[0].tag in _EMBED_TAGS


def _is_copyright_line(block: Block, settings: FilterSettings) -> bool:
    """A short closing block that starts with a copyright sign, or has one among its first few
    words ("Copyright © 2022 X", "© 2022, X. Reprinting..."): the site's notice, in any language."""
    if block.tag != "p" or block.words > settings.copyright_max_words or "©" not in block.text:
        return False
    # words as any script counts them: a Chinese sentence is one "word" between spaces
    return words(block.text[: block.text.index("©")]) <= 3


def _is_attribution_line(block: Block, settings: FilterSettings) -> bool:
    text = " ".join(block.text.split())
    label = _LABEL_LINE.match(text)
    return (
        block.tag == "p" and block.words <= settings.attribution_max_words
        and label is not None and not _ends_as_sentence(text)
        # a figure in the value makes it a fact of the article ("Deadline: 31 March", "Price: 20 €"),
        # not a credit
        and not _DIGIT.search(text, label.end() - 1)
    )


def split_body_segments(
    blocks: list[Block], settings: FilterSettings, marked: frozenset[int]
) -> list[tuple[HtmlElement, str]]:
    """The article's paragraphs that the extractor left out because the site split its body into
    segments of identical markup (an advert or a newsletter box between them, each segment in a
    section of the page grid of its own): the extractor takes one segment as the article.

    The segments are the elements with the tag and class of the container of the kept body,
    inside the same ``article`` (or ``main``) element, that hold no headline of their own (the
    next article of an endless-scroll page has one). From each, the prose paragraphs not yet in
    the body (``p``, ``prose_min_words`` words, ending as a sentence ends, not mostly link text,
    not in a form, not in a teaser: ``marked``), when it holds at least ``segment_min_paragraphs``
    of them: a segment of the article continues it, a widget holds one line. In page order, each
    with its text (white space collapsed)."""
    live = [block for block in blocks if not block.removed]
    main, _ = _main_container(live, settings.main_container_share)
    # class names as _continues compares them: "article-body article-body--first" and
    # "article-body" are segments of one body
    classes = _class_kinds(main) if main is not None else None
    if main is None or not classes:
        return []
    # proxies kept alive so that the identity tests below compare elements, not recycled ids
    above = list(main.iterancestors())
    scope = next((element for element in above if element.tag in ("article", "main")), None)
    if scope is None:
        return []
    present = "".join("".join(block.text.split()) for block in blocks)
    found: list[tuple[HtmlElement, str]] = []
    for segment in scope.iter(main.tag):
        if segment is main or _class_kinds(segment) != classes or any(segment is a for a in above):
            continue
        if any(a is main for a in segment.iterancestors()) or next(segment.iter("h1"), None) is not None:
            continue
        paragraphs = [
            (p, text) for p in segment.iter("p")
            if (text := _article_paragraph_text(p, segment, present, marked, settings))
        ]
        if len(paragraphs) >= settings.segment_min_paragraphs:
            found.extend(item for item in paragraphs if not any(item[0] is p for p, _ in found))
    return found


def _article_paragraph_text(
    paragraph: HtmlElement, segment: HtmlElement, present: str, marked: frozenset[int], settings: FilterSettings
) -> str | None:
    """The paragraph's text when it continues the article, else None."""
    text = " ".join(paragraph.text_content().split())
    if not text or "".join(text.split()) in present:
        return None
    link_chars = sum(len(" ".join(a.text_content().split())) for a in paragraph.iter("a"))
    if words(text) < settings.prose_min_words or link_chars > settings.link_dense * len(text):
        return None
    if not _written_as_sentences(text, link_chars / len(text), settings):
        return None
    for element in (paragraph, *paragraph.iterancestors()):
        if element is segment:
            return text
        if element.tag == "form" or id(element) in marked:
            return None
    return text


# Where a standfirst is never shown: outside the page's content, or not as text.
_NOT_CONTENT = frozenset({
    "head", "script", "style", "noscript", "template", "nav", "footer", "aside", "form", "button", "select", "textarea",
})
# How much of the description's start (white space left out) locates the element that shows it.
_STANDFIRST_KEY_CHARS = 60


def standfirst(
    tree: HtmlElement,
    body: _Element,
    blocks: list[Block],
    description: str | None,
    source: SourceMap,
    settings: FilterSettings,
) -> list[tuple[HtmlElement, str]]:
    """The article's standfirst (lead, deck, chapô) when the extractor left it out: the element of
    the page that shows the page's own description (og:description, the description meta tag), as
    the deepest element whose text begins with it (found in ``source``, where an occurrence outside
    a teaser comes first), under the page's headline (its first ``h1``) and
    above the body's first paragraph. Sites set it apart by class ("intro", "lead", "teaser-text",
    "chapo"), and extractors drop such boxes as teasers of other articles. Returned as
    :func:`split_body_segments` returns paragraphs.

    Not when the description is not prose (``prose_min_words`` words), when the element is in a
    teaser, a form, navigation or a footer, when it is mostly link text, or when its
    text is in the extractor's ``body`` already, kept or removed by a filter: but a standfirst in
    the body above its first paragraph that the region filter removed (the precision run's region
    begins under it) is kept, in place."""
    if not description:
        return []
    wanted = " ".join(description.split()).rstrip(" .…")
    if words(wanted) < settings.prose_min_words:
        return []
    key = "".join(wanted.split())[:_STANDFIRST_KEY_CHARS]
    headline = next(tree.iter("h1"), None)
    # the body's first paragraph: a heading the extractor kept (the headline) comes before the standfirst
    opening = next((block for block in blocks if _is_first_paragraph(block)), None)
    if opening is None or opening.span is None or opening.span.element is None:
        return []
    first = opening.span.element
    for block in blocks:
        if _is_first_paragraph(block):
            break
        if block.removed == "outside_main_region" and "".join(block.text.split()).startswith(key):
            block.removed = None
            return []
    source.rewind()
    shown = source.locate(key)
    if shown is None or shown.element is None or shown.marked_share > 0:
        return []
    element = shown.element
    text = " ".join(element.text_content().split())
    squashed = "".join(text.split())
    if not squashed.startswith(key) or len(squashed) > 3 * len("".join(wanted.split())):
        return []
    # all of the body's text, not only its blocks: text between them is the body's too
    present = "".join("".join(body.itertext()).split())
    if squashed in present or key in present:
        return []
    link_chars = sum(len(" ".join(a.text_content().split())) for a in element.iter("a"))
    if link_chars > settings.link_dense * len(text):
        return []
    # the blocks keep their elements alive: their ids stay theirs
    kept = {id(block.span.element) for block in blocks if not block.removed and block.span is not None}
    for holder in (element, *element.iterancestors()):
        if holder.tag in _NOT_CONTENT or id(holder) in kept:  # kept: a part of a paragraph the body has
            return []
    order = _in_page_order(tree, (headline, element, first))
    if order.index(element) > order.index(first):
        return []
    # above the headline: the site's tagline (its description, declared by pages without their own)
    if headline is not None and order.index(element) < order.index(headline) < order.index(first):
        return []
    return [(element, text)]


def _is_first_paragraph(block: Block) -> bool:
    """Whether the block, if it is the first kept one, is the body's first paragraph."""
    return not block.removed and block.element.tag != "head" and block.span is not None


def _in_page_order(tree: HtmlElement, elements: tuple[HtmlElement | None, ...]) -> list[HtmlElement]:
    """``elements`` (None left out) in page order."""
    wanted = [element for element in elements if element is not None]
    found: list[HtmlElement] = []
    for element in tree.iter():
        for candidate in wanted:
            if candidate is element and not any(candidate is f for f in found):
                found.append(candidate)
        if len(found) == len(wanted):
            break
    return found
