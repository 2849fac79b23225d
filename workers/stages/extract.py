"""Stage 2: HTML -> main text and metadata. Runs inside the extraction pool's worker processes
(see workers/pool.py), so everything here is picklable and process-local: no Redis, no network.

The steps, each measured on the evaluation sets (bench/extraction.py, numbers in bench/extraction.md):

1. Metadata from the page (workers/stages/metadata.py): title, authors, published/modified,
   site name, description, canonical URL, declared language, image, categories/tags, urgent.
2. Teasers found by structure (workers/stages/teasers.py): lists of pointers to other articles
   and "label: <linked headline>" lines, in any language. The page itself is not modified.
3. trafilatura on the page, with deliberate options (``ExtractionOptions``, measured):
   - ``include_comments=False``: reader comments are not the article.
   - ``deduplicate=False``: trafilatura's deduplication keeps a process-wide LRU cache, so the
     same page would extract differently depending on what that process saw before; replays
     would not be deterministic. Repeats *within* the page are handled here instead.
   - balanced focus, tables kept, fallback extractors on; plus a second, precision-focused run
     without fallbacks whose main region bounds the first (``precision_region``).
4. Every block of trafilatura's body is traced back to the page (workers/stages/sourcemap.py)
   and filtered by structure (workers/stages/blocks.py): teasers, link-dense blocks, blocks
   outside the main region or after the article container, datelines, captions, screen-reader
   text and small print, widget headings, contact/follow/share calls to action, small boxes named
   by their class (newsletter, advert, disclosure...), text disguised with look-alike letters,
   bare URLs, a closing "Label: value" attribution line, a closing copyright notice, the headline
   repeated as the first line (it is the title), and the page rendered twice. Then what trafilatura left
   out of an article split into segments of the same markup (it takes the first element whose
   class names it as the body): their prose paragraphs are added where they stand in the page
   (``split_body_segments``). And the standfirst (lead, deck, chapô) that trafilatura left out or
   the region filter removed: the element under the headline that shows the page's description
   (``standfirst``). How many paragraphs were added is counted on the article
   (``recovered_paragraphs``).
5. Site-learned chrome: blocks whose hash the main process passed in as ``known_chrome`` (read
   from Redis, see workers/chrome_index.py) are removed, but not from between two prose
   paragraphs (a series' background paragraph recurs there: copy), and not when that would take more than
   ``chrome_max_share`` of the body (the guard: then the statistics are wrong, not the page) or
   leave less than ``min_text_chars`` of it; the article says so (``extraction.chrome_withheld``).
6. The page's block hashes are returned (``ExtractedDocument.block_hashes``) for the main
   process to record in the chrome index. They are the hashes of the body after the structural
   filters and *before* known-chrome removal, so chrome stays known while it keeps appearing.

7. A page where steps 3-5 find no article (an empty shell rendered by JavaScript), or only a
   short text (the shell's cookie notice or menu), gets them again on the article found in the
   data of its scripts (workers/stages/embedded.py: JSON state blobs, React Server Components
   payloads), and takes it when it is much longer than what the HTML gave; the article says so
   (``body_source``, published as ``extraction.body_source``).

Every removal is listed in ``ExtractedDocument.removed`` (text and reason). A failure in steps
4-5 leaves trafilatura's body as it is: the stage is never worse than trafilatura alone.
"""

from __future__ import annotations

import bisect
import functools
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import trafilatura
from lxml.etree import ElementClassLookup, ElementDefaultClassLookup, _Element
from lxml.html import (
    HtmlComment,
    HtmlElement,
    HtmlElementClassLookup,
    HtmlEntity,
    HtmlProcessingInstruction,
)
from py3langid.langid import MODEL_FILE, LanguageIdentifier
from trafilatura import utils as trafilatura_utils
from trafilatura.utils import HTML_PARSER, load_html
from trafilatura.xml import xmltotxt

from workers.models import RemovedBlock
from workers.stages import embedded, teasers
from workers.stages.blocks import (
    Block,
    FilterSettings,
    apply_filters,
    inner_prose,
    locate,
    split_body_segments,
    standfirst,
    words,
)
from workers.stages.sourcemap import SourceMap
from workers.stages.chrome import block_hash, normalise_block, select_chrome
from workers.stages.metadata import PageMetadata, extract_page_metadata, language_code, parse_iso
from workers.stages.outcome import Dropped, Failed, Kept, StageResult

STAGE = "extract"
EXTRACTOR_VERSION = trafilatura.__version__

# Below this normalised probability the page's declared language is the better guess.
_MIN_LANGUAGE_CONFIDENCE = 0.9
# Loaded once per extraction process (unpickling the model takes ~0.3 s).
_LANGUAGE_IDENTIFIER = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
DETECTED_LANGUAGES = frozenset(_LANGUAGE_IDENTIFIER.nb_classes)
"""The language codes the detector can give an article."""
# Where the detector's model names a language otherwise than BCP 47 does now (declared
# languages are standardised, workers/stages/metadata.py): an article's language is one code
# whoever named it, or a newsroom filtering on "no" misses the Norwegian page declared "nb".
# A code standardised into another code of the detector's ("ary" into "ar", in some langcodes
# versions) is a language the detector tells apart: that one keeps its meaning. langcodes leaves
# "nb" as it is, and the detector has Norwegian as "no" only.
_DETECTOR_CODES = {
    standardised: code
    for code in DETECTED_LANGUAGES
    if (standardised := language_code(code, fallback=code)) != code and standardised not in DETECTED_LANGUAGES
} | {"nb": "no"}
# The detector's languages that ISO 639-3 puts in one macrolanguage: it spreads its probability
# over them (a short Arabic news flash: ar 0.77, arz 0.2, ary 0.03), so the confidence that the
# text is in the language it names is theirs together. Without it, 30 of 119 short Arabic articles
# on a template declaring "en" were published as English.
_MACROLANGUAGES = (
    ("ar", "ary", "arz"), ("zh", "wuu", "yue"), ("ms", "id"), ("no", "nn"), ("uz", "uzs"), ("ku", "sdh"),
    ("hr", "sr", "bs"), ("lv", "ltg"),
)
_SAME_MACROLANGUAGE = {code: group for group in _MACROLANGUAGES for code in group}
# Longest removed-block text kept on the article (the reason matters more than the full text).
_REMOVED_TEXT_CHARS = 300
# libxml2 (2.14, lxml 6) stops reading HTML nested deeper than this. Reading on (huge_tree) would
# hand trees of any depth to trafilatura and to the recursive walks here and in lxml; no real page
# comes near it (50 levels at most in the evaluation sets), so such a page fails with its reason.
_PARSER_MAX_DEPTH = 255

@functools.lru_cache(maxsize=1024)
def _printable_space_or_format(char: str) -> str:
    return char if char.isprintable() or char.isspace() or unicodedata.category(char) == "Cf" else ""


# The stage changes two things in trafilatura (2.3.1, pinned), for every tree it reads in this
# process; ``use_trafilatura_as_released`` undoes both, for measuring trafilatura as released
# (bench/).
# 1. trafilatura keeps only printable characters and spaces in the text it returns, which deletes
#    the format characters (Unicode Cf, not "printable" to Python) that are part of the text as
#    written: the zero-width non-joiner and joiner (every Persian article lost them, "می‌تواند"
#    came out "میتواند", and Sinhala and Bengali conjuncts changed), the Arabic letter mark and
#    the left-to-right and right-to-left marks that place numbers and Latin words in Arabic and
#    Hebrew lines, soft hyphens, word joiners, the tag characters of flag emoji. All are valid in
#    XML. Matching ignores them (workers/textnorm.py). Its remove_control_characters looks the
#    function up in its module, so the stage's own is put there.
# 2. lxml.html's parser picks each element's class in Python: lxml calls its lookup every time it
#    hands out an element, about 9,000 times a page in trafilatura and here, and that was 15% of
#    plain trafilatura's time. The lookup lxml runs in C gives every element, comment, processing
#    instruction and entity the class lxml.html would give it, but for the form controls (form,
#    input, select, textarea, label), which are plain HtmlElements then: their form-filling
#    properties are used by neither trafilatura nor this stage. Trees of the parser trafilatura
#    loads pages with are read through it, and the copies trafilatura makes keep it.
_RELEASED_CHARACTER_FILTER = trafilatura_utils.return_printables_and_spaces
_ELEMENT_CLASSES = ElementDefaultClassLookup(
    element=HtmlElement, comment=HtmlComment, pi=HtmlProcessingInstruction, entity=HtmlEntity
)


def _configure_trafilatura(character_filter: Callable[[str], str], element_classes: ElementClassLookup) -> None:
    trafilatura_utils.return_printables_and_spaces = character_filter
    HTML_PARSER.set_element_class_lookup(element_classes)
    # its cache of processed lines holds lines filtered the other way (its reset_caches() would
    # clear it too, and log an error for each cache charset_normalizer no longer has)
    trafilatura_utils.line_processing.cache_clear()


def _use_stage_trafilatura() -> None:
    _configure_trafilatura(_printable_space_or_format, _ELEMENT_CLASSES)


def use_trafilatura_as_released() -> None:
    """Undo the stage's changes to trafilatura in this process (for a baseline: bench/)."""
    _configure_trafilatura(_RELEASED_CHARACTER_FILTER, HtmlElementClassLookup())


_use_stage_trafilatura()


@dataclass(frozen=True, slots=True)
class ExtractionOptions:
    # trafilatura
    favor_precision: bool = False
    favor_recall: bool = False
    include_tables: bool = True
    fallback: bool = True
    min_text_chars: int = 80
    # structural teaser removal (teasers.TeaserSettings)
    remove_teasers: bool = True
    remove_link_lines: bool = True
    remove_teaser_cards: bool = True
    teaser_min_items: int = 3
    teaser_max_item_chars: int = 400
    # body post-processing (workers/stages/blocks.py)
    link_dense: float = 0.5
    precision_region: bool = True
    precision_region_min_share: float = 0.3
    drop_datelines: bool = True
    drop_captions: bool = True
    drop_hidden: bool = True
    drop_widget_headings: bool = True
    drop_contact_cta: bool = True
    drop_after_article: bool = True
    drop_boilerplate_boxes: bool = True
    drop_attribution_line: bool = True
    drop_copyright_line: bool = True
    drop_obfuscated: bool = True
    recover_split_body: bool = True
    recover_standfirst: bool = True
    drop_title_line: bool = True
    drop_repeated_blocks: bool = True
    min_repeated_run_blocks: int = 4
    min_repeated_chars: int = 400
    # site-learned chrome: longest block that known-chrome removal may take, and the largest
    # share of the body it may take on one page before the guard withholds it
    chrome_max_block_chars: int = 600
    chrome_max_share: float = 0.5
    # a page whose HTML holds no article text: look for it in the data of its scripts; also a
    # page whose body is shorter than ``embedded_below_chars`` (a shell whose only text is a
    # cookie notice or a menu), which takes the embedded article when it is at least
    # ``embedded_min_gain`` times as long
    embedded_fallback: bool = True
    embedded_below_chars: int = 500
    embedded_min_gain: float = 2.0


@dataclass(frozen=True, slots=True)
class ExtractedDocument:
    title: str | None
    text: str
    language: str | None
    declared_language: str | None
    published_at: datetime | None
    canonical_url: str | None
    authors: tuple[str, ...] = ()
    modified_at: datetime | None = None
    site_name: str | None = None
    description: str | None = None
    image: str | None = None
    categories: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    urgent: bool = False
    detected_language: str | None = None
    language_confidence: float | None = None
    removed: tuple[RemovedBlock, ...] = ()
    # hashes of the body's blocks before known-chrome removal (for the chrome index)
    block_hashes: frozenset[str] = frozenset()
    chrome_withheld: bool = False
    # "page": the page's HTML; "embedded": the data of its scripts (step 7)
    body_source: Literal["page", "embedded"] = "page"
    # paragraphs of a split body that trafilatura left out and step 4 added back
    recovered_paragraphs: int = 0


@dataclass(slots=True)
class _Body:
    text: str
    removed: tuple[RemovedBlock, ...]
    block_hashes: frozenset[str]
    chrome_withheld: bool
    recovered_paragraphs: int


def extract_document(
    html: str,
    url: str,
    options: ExtractionOptions,
    *,
    known_chrome: frozenset[str] = frozenset(),
    fetched_at: datetime | None = None,
) -> StageResult[ExtractedDocument]:
    try:
        tree = load_html(html)
        if tree is None:
            return Dropped(STAGE, "no_content", "the page has no parsable HTML")
        if too_deep := _parser_error("Excessive depth"):
            return Failed(
                STAGE, "too_deep", "ExcessiveDepth",
                f"elements nested deeper than the HTML parser's limit of {_PARSER_MAX_DEPTH} levels: it stopped "
                f"reading there and the rest of the page is lost (libxml2: {too_deep})",
            )
        if too_long := _parser_error("Resource limit exceeded"):
            return Failed(
                STAGE, "parser_limit", "ResourceLimit",
                "a single text or attribute longer than the HTML parser reads (about ten million characters: an inline"
                f" data: image, say): it stopped reading there and the rest of the page is lost (libxml2: {too_long})",
            )
        meta = extract_page_metadata(tree, url, fetched_at=fetched_at)
    except Exception as exc:  # noqa: BLE001 - lxml raises anything on hostile HTML
        return Failed.from_exception(STAGE, "extractor_error", exc)
    body = _body(tree, url, meta, options, known_chrome)
    source: Literal["page", "embedded"] = "page"
    if options.embedded_fallback and (
        isinstance(body, Dropped) or (isinstance(body, _Body) and len(body.text) < options.embedded_below_chars)
    ):
        # a page rendered by JavaScript: the article is in the data of its scripts
        try:
            fragment = embedded.article_fragment(tree, body.text if isinstance(body, _Body) else None)
            page = load_html(embedded.page_of(fragment, meta.declared_language)) if fragment else None
        except Exception:  # noqa: BLE001 - the page's own outcome stands
            page = None
        if page is not None and isinstance(found := _body(page, url, meta, options, known_chrome), _Body) and (
            not isinstance(body, _Body) or len(found.text) >= options.embedded_min_gain * len(body.text)
        ):
            body, source = found, "embedded"
    if not isinstance(body, _Body):
        return body

    detected, confidence = _detect_language(body.text)
    declared = meta.declared_language
    language = (
        detected
        if (confidence >= _MIN_LANGUAGE_CONFIDENCE or declared is None)
        else _DETECTOR_CODES.get(declared, declared)
    )
    return Kept(
        ExtractedDocument(
            title=meta.title,
            text=body.text,
            language=language,
            declared_language=declared,
            published_at=parse_iso(meta.published),
            canonical_url=meta.canonical_url,
            authors=meta.authors,
            modified_at=parse_iso(meta.modified),
            site_name=meta.site_name,
            description=meta.description,
            image=meta.image,
            categories=meta.categories,
            tags=meta.tags,
            urgent=meta.urgent,
            detected_language=detected,
            language_confidence=round(confidence, 4),
            removed=body.removed,
            block_hashes=body.block_hashes,
            chrome_withheld=body.chrome_withheld,
            body_source=source,
            recovered_paragraphs=body.recovered_paragraphs,
        )
    )


def _parser_error(kind: str) -> str | None:
    """The message of the HTML parser's last run if it stopped at one of its limits (``kind``:
    how libxml2's message starts, in the error log of the parser that trafilatura's
    ``load_html`` uses; the partial tree it returns is no sign of it)."""
    for error in HTML_PARSER.error_log:
        if error.message.startswith(kind):
            return error.message.strip()
    return None


def _body(
    tree: HtmlElement, url: str, meta: PageMetadata, options: ExtractionOptions, known_chrome: frozenset[str]
) -> _Body | Dropped | Failed:
    """Steps 2-6 of the module docstring on one page tree."""
    try:
        teaser_settings = teasers.TeaserSettings(
            min_items=options.teaser_min_items, max_item_chars=options.teaser_max_item_chars
        )
        # the lists keep the elements alive, so their id() stays valid while they are used
        page = teasers.Page(url, meta.canonical_url)
        holders = (
            teasers.link_holders(tree, page)
            if options.remove_teasers or options.remove_link_lines or options.remove_teaser_cards
            else set()
        )
        teaser_items = teasers.find_teaser_lists(tree, teaser_settings, holders, page) if options.remove_teasers else []
        link_lines = teasers.find_link_lines(tree, teaser_settings, holders, page) if options.remove_link_lines else []
        if options.remove_teaser_cards:
            teaser_items += teasers.find_teaser_cards(tree, teaser_settings, holders, page, teaser_items + link_lines)
        document = _trafilatura(tree, url, options, favor_precision=options.favor_precision)
        precision = (
            # without fallbacks: the region comes out the same on every evaluation set
            # (bench/extraction.md) at about 60% of the cost of a full run
            _trafilatura(tree, url, options, favor_precision=True, fast=True)
            if options.precision_region and not options.favor_precision and document is not None
            else None
        )
    except Exception as exc:  # noqa: BLE001 - trafilatura/lxml raise anything on hostile HTML
        return Failed.from_exception(STAGE, "extractor_error", exc)
    if document is None or document.body is None:
        return Dropped(STAGE, "no_content", "trafilatura found no main content")

    body = document.body
    units = _units(body)
    if precision is not None and precision.body is not None and _glued(units, tree):
        # the filters act on blocks: one glued block is all or nothing, the precision run's
        # blocks are the page's own paragraphs
        if len(precision_units := _units(precision.body)) > 1:
            body, units = precision.body, precision_units
    blocks = [Block(unit.element, unit.text, words(unit.text)) for unit in units]
    found = {id(block) for block in blocks}  # the blocks stay alive, so their ids stay theirs
    filter_settings: FilterSettings | None = None
    try:
        marked = frozenset(id(e) for e in (*teaser_items, *link_lines))
        source = SourceMap(tree, marked)
        precision_spans: list = []
        precision_chars = 0
        precision_texts: set[str] = set()
        if precision is not None and precision.body is not None:
            for unit in _units(precision.body):
                precision_chars += len(unit.text)
                precision_texts.add(unit.text)
                if (span := source.locate(unit.text)) is not None:
                    precision_spans.append(span)
            source.rewind()
        locate(blocks, source)
        filter_settings = FilterSettings(
            link_dense=options.link_dense,
            region=options.precision_region,
            region_min_share=options.precision_region_min_share,
            datelines=options.drop_datelines,
            captions=options.drop_captions,
            hidden=options.drop_hidden,
            widget_headings=options.drop_widget_headings,
            contact_cta=options.drop_contact_cta,
            after_article=options.drop_after_article,
            boilerplate_boxes=options.drop_boilerplate_boxes,
            attribution_line=options.drop_attribution_line,
            copyright_line=options.drop_copyright_line,
            obfuscated=options.drop_obfuscated,
        )
        apply_filters(
            blocks,
            filter_settings,
            teaser_links=frozenset(id(e) for e in link_lines),
            precision_spans=precision_spans,
            precision_chars=precision_chars,
            precision_texts=frozenset(precision_texts),
        )
        if options.recover_split_body:
            if segments := split_body_segments(blocks, filter_settings, marked):
                blocks = _insert_segments(tree, blocks, segments)
        if options.recover_standfirst:
            if lead := standfirst(tree, body, blocks, meta.description, source, filter_settings):
                blocks = _insert_segments(tree, blocks, lead)
        if options.drop_title_line and meta.title:
            _mark_title(blocks, meta.title)
        if options.drop_repeated_blocks:
            _mark_repeats(blocks, options.min_repeated_run_blocks, options.min_repeated_chars)
    except Exception:  # noqa: BLE001 - never worse than trafilatura: on a bug here, keep its body
        for block in blocks:
            block.removed = None
    live = [block for block in blocks if not block.removed]
    # lengths as the text is measured at the end (NFC): the guard compares them with min_text_chars
    hashes = [(block_hash(block.text), len(unicodedata.normalize("NFC", block.text))) for block in live]
    # Known chrome is not removed from the article's middle (see inner_prose); the hashes are
    # still recorded, the index counts what recurs.
    middle = inner_prose(live, filter_settings) if known_chrome and filter_settings is not None else frozenset()
    decision = select_chrome(
        hashes,
        known_chrome,
        max_block_chars=options.chrome_max_block_chars,
        max_share=options.chrome_max_share,
        min_kept_chars=options.min_text_chars,
        middle=middle,
    )
    for index in decision.removed:
        live[index].removed = "site_chrome"
    removed: list[RemovedBlock] = []
    for block in blocks:
        if block.removed:
            removed.append(_removed(block.text, block.removed))
            _remove_element(block.element)
    recovered = sum(1 for block in blocks if id(block) not in found and not block.removed)
    del teaser_items, link_lines, holders

    text = _clean_text(xmltotxt(body, False))
    if len(text) < options.min_text_chars:
        return Dropped(STAGE, "too_short", f"{len(text)} characters of text < {options.min_text_chars}")

    return _Body(
        text=text,
        removed=tuple(removed),
        block_hashes=frozenset(digest for digest, _ in hashes if digest),
        chrome_withheld=decision.withheld,
        recovered_paragraphs=recovered,
    )


# --- body units ---------------------------------------------------------------------------------


@dataclass(slots=True)
class _Unit:
    element: _Element
    text: str


def _element_text(element: _Element) -> str:
    return " ".join(" ".join(element.itertext()).split())


_LEAF_BLOCKS = frozenset({"p", "head", "quote", "table", "code", "item", "graphic"})
_CONTAINERS = frozenset({"div", "section", "article", "main", "body", "span", "list"})


def _units(body: _Element) -> list[_Unit]:
    """The body's blocks: paragraphs, headings, quotes, tables and list items, in order. Wrapper
    elements (the fallback extractors return a ``div`` around everything) are looked into."""
    units: list[_Unit] = []

    def visit(element: _Element) -> None:
        for child in element:
            if not isinstance(child.tag, str):
                continue
            if child.tag in _CONTAINERS and any(
                isinstance(c.tag, str) and (c.tag in _LEAF_BLOCKS or c.tag in _CONTAINERS) for c in child
            ):
                visit(child)
                continue
            text = _element_text(child)
            if text:
                units.append(_Unit(child, text))

    visit(body)
    return units


# Elements that hold a paragraph's text on a page.
_PAGE_PARAGRAPHS = ("p", "li", "blockquote", "pre", "td", "dd", "h1", "h2", "h3", "h4", "h5", "h6")


def _glued(units: list[_Unit], tree: HtmlElement) -> bool:
    """Whether the body is one block far longer than any paragraph of the page: trafilatura's
    baseline fallback joins the text of the whole article into a single ``p``."""
    if len(units) != 1:
        return False
    longest = max((len(_element_text(element)) for element in tree.iter(*_PAGE_PARAGRAPHS)), default=0)
    return len(units[0].text) > 2 * longest


def _insert_segments(
    tree: HtmlElement, blocks: list[Block], paragraphs: list[tuple[HtmlElement, str]]
) -> list[Block]:
    """The blocks with the page's ``paragraphs`` (element, text) added to the body (and to the
    blocks) where they stand in the page: after the last kept block that comes before them
    (before the first kept block when none does)."""
    elements = list(tree.iter())  # alive, so that their ids stay theirs while ``order`` is used
    order = {id(element): index for index, element in enumerate(elements)}
    # (page position, block) of the kept blocks traced to the page, in page order
    placed = sorted(
        (
            (order[id(block.span.element)], block) for block in blocks
            if not block.removed and block.span is not None and id(block.span.element) in order
        ),
        key=lambda item: item[0],
    )
    if not placed:
        return blocks
    result = list(blocks)
    for paragraph, text in paragraphs:
        position = order[id(paragraph)]
        preceding = bisect.bisect_left(placed, position, key=lambda item: item[0])
        anchor = placed[max(0, preceding - 1)][1]
        at = next(i for i, block in enumerate(result) if block is anchor)
        added = anchor.element.makeelement("p", {})
        added.text = text
        if preceding:
            _top_level(anchor.element).addnext(added)
            at += 1
        else:
            _top_level(anchor.element).addprevious(added)
        block = Block(added, text, words(text))
        result.insert(at, block)
        placed.insert(preceding, (position, block))
    return result


def _top_level(element: _Element) -> _Element:
    """The element, or the list or table holding it: where a paragraph can stand beside it."""
    while (parent := element.getparent()) is not None and parent.tag not in _CONTAINERS:
        element = parent
    return element


def _remove_element(element: _Element) -> None:
    parent = element.getparent()
    if parent is None:
        return
    tail, previous = element.tail, element.getprevious()
    parent.remove(element)  # lxml removes the element's tail with it
    if tail and tail.strip():
        # the text after the block stays where it stood: after the block before it
        if previous is not None:
            previous.tail = (previous.tail or "") + tail
        else:
            parent.text = (parent.text or "") + tail
    while parent is not None and parent.tag in _CONTAINERS and parent.tag != "body" and not len(parent) \
            and not (parent.text or "").strip() and parent.getparent() is not None:
        grand = parent.getparent()
        grand.remove(parent)
        parent = grand


def _mark_title(blocks: list[Block], title: str) -> None:
    """The headline repeated at the top of the body is the title (metadata), not body text."""
    wanted = normalise_block(title)
    for block in [b for b in blocks if not b.removed][:3]:
        if normalise_block(block.text) == wanted:
            block.removed = "title"
            return


# Shortest earlier block that counts as a piece of a glued block.
_MIN_PIECE_CHARS = 30


class _Pieces:
    """Earlier blocks, for telling how much of a block they make up. Testing each of them
    against each long block is quadratic (4 s on 5,000 paragraphs): when there are more of them
    than places in the block where one could start, the block's places are looked up instead,
    by the piece's first characters."""

    def __init__(self) -> None:
        self._times: dict[str, int] = {}  # piece -> how many earlier blocks it is
        self._by_head: dict[str, list[str]] = {}  # first _MIN_PIECE_CHARS characters -> pieces

    def add(self, piece: str) -> None:
        if piece in self._times:
            self._times[piece] += 1
            return
        self._times[piece] = 1
        self._by_head.setdefault(piece[:_MIN_PIECE_CHARS], []).append(piece)

    def covered(self, text: str) -> int:
        """The characters of the earlier blocks found in ``text``, each as many times as it is
        there: a charge listed for eight defendants, quoted once in a closing paragraph, covers
        its length once, not eight times."""
        places = len(text) - _MIN_PIECE_CHARS + 1
        candidates: Iterable[str]
        if len(self._times) <= places:
            candidates = self._times.keys()
        else:
            heads = {text[i : i + _MIN_PIECE_CHARS] for i in range(places)}
            candidates = {piece for head in heads & self._by_head.keys() for piece in self._by_head[head]}
        return sum(len(piece) * min(self._times[piece], text.count(piece)) for piece in candidates if piece in text)


def _mark_repeats(blocks: list[Block], min_run_blocks: int, min_run_chars: int) -> None:
    """A page rendered twice in the same HTML (an AMP copy, a print version, a sticky duplicate)
    repeats whole runs of blocks in the same order: such runs are kept once. A block repeated
    alone, or a short run, is content (a meal plan repeating an item, a chorus, a schedule) and
    stays, except a long paragraph repeated verbatim."""
    first_seen: dict[str, int] = {}
    keys: list[str | None] = []
    for index, block in enumerate(blocks):
        key = normalise_block(block.text, keep_numbers=True) if not block.removed else None
        keys.append(key)
        if key and key not in first_seen:
            first_seen[key] = index
    index = 0
    while index < len(blocks):
        key = keys[index]
        if not key or first_seen.get(key, index) == index:
            index += 1
            continue
        # extend a run of blocks that repeat, in order, an earlier run
        run = [index]
        origin = first_seen[key]
        nxt = index + 1
        while nxt < len(blocks) and keys[nxt] and first_seen.get(keys[nxt], nxt) < nxt \
                and first_seen[keys[nxt]] > origin:
            origin = first_seen[keys[nxt]]
            run.append(nxt)
            nxt += 1
        chars = sum(len(blocks[i].text) for i in run)
        if (len(run) >= min_run_blocks and chars >= min_run_chars) or (len(run) == 1 and chars >= min_run_chars):
            for i in run:
                if blocks[i].tag not in ("row", "cell"):
                    blocks[i].removed = "repeated_in_page"
        index = nxt
    # a long block that is earlier blocks glued together (the text again as one blob: a
    # no-script copy, a JSON rendering) repeats them too
    earlier = _Pieces()
    for index, block in enumerate(blocks):
        key = keys[index]
        if not key:
            continue
        if len(key) >= min_run_chars and earlier.covered(key) >= 0.8 * len(key):
            block.removed = "repeated_in_page"
            continue
        if len(key) >= _MIN_PIECE_CHARS:
            earlier.add(key)


def _trafilatura(
    tree: object, url: str, options: ExtractionOptions, *, favor_precision: bool, fast: bool | None = None
) -> Any:
    return trafilatura.bare_extraction(
        tree,
        url=url or None,
        include_comments=False,
        deduplicate=False,
        include_tables=options.include_tables,
        favor_precision=favor_precision,
        favor_recall=options.favor_recall and not favor_precision,
        fast=(not options.fallback) if fast is None else fast,
        with_metadata=False,
    )


def _removed(text: str, reason: str) -> RemovedBlock:
    text = " ".join(text.split())
    if len(text) > _REMOVED_TEXT_CHARS:
        text = text[: _REMOVED_TEXT_CHARS - 1] + "…"
    return RemovedBlock(text=text, reason=reason)


_BLANK_LINES = re.compile(r"\n{3,}")


def _clean_text(text: str) -> str:
    """NFC, as trafilatura's own text output (and as content hashes expect)."""
    return unicodedata.normalize("NFC", _BLANK_LINES.sub("\n\n", text or "").strip())


# --- language and metadata ---------------------------------------------------------------------


def language_probabilities(text: str) -> dict[str, float]:
    """Each language the identifier knows, with its normalised probability of having written ``text``."""
    return dict(_LANGUAGE_IDENTIFIER.rank(text))


def _detect_language(text: str) -> tuple[str | None, float]:
    """The most probable language, and the probability of it and of the other languages of its
    macrolanguage together."""
    sample = text[:3000]
    if not sample.strip():
        return None, 0.0
    ranked = _LANGUAGE_IDENTIFIER.rank(sample)
    detected = ranked[0][0]
    group = _SAME_MACROLANGUAGE.get(detected, (detected,))
    return detected, min(1.0, float(sum(probability for code, probability in ranked if code in group)))
