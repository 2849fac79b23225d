"""Article metadata from the page: what the publisher declared, cross-checked with what it shows.

Sources, most specific first: schema.org JSON-LD of the article (``NewsArticle`` & co.), the
OpenGraph / ``article:*`` / Dublin Core meta tags, the visible page (``<h1>``, ``<time>``), and
trafilatura's and htmldate's own heuristics as the fallback. Everything here is pure and runs in
the extraction process.

* title: the visible headline (``<h1>``) when it agrees with a declared title (JSON-LD headline,
  og:title, ``<title>``), else the declared title with the site name cut off ("Headline | Site").
* authors: a list of names (JSON-LD author objects, author meta tags, trafilatura's byline).
* published / modified: JSON-LD ``datePublished``/``dateModified`` and ``article:*_time`` with
  their time and offset (one declared without an offset takes that of the page's statement of the
  same time that has one, a ``<time datetime>``, else of the other date); for the publication
  date, htmldate's search when the page declares none, and when that finds only a year, the
  dateline written in words under the headline, read in the page's language (Levantine Arabic month
  names and Thai Buddhist-era years included); else no date rather than 1 January. The
  modification date is only taken when declared.
* urgent: the *article* is flagged as breaking news (a marker in its headline, a breaking/urgent
  badge in the article header, or a "breaking" tag), not a ticker somewhere on the page.
"""

from __future__ import annotations

import codecs
import html
import itertools
import json
import re
import unicodedata
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urljoin, urlsplit

import dateutil.parser
from dateparser.search import search_dates
from htmldate import find_date
from langcodes import LanguageTagError, standardize_tag
from lxml.etree import XPath
from lxml.html import HtmlElement
from trafilatura.json_metadata import normalize_authors
from trafilatura.metadata import extract_catstags, extract_sitename

from workers.models import _MAX_URL_CHARS
from workers.textnorm import LETTER, normalize
from workers.urlnorm import domain_of, is_home_page, normalized_url

_ARTICLE_TYPES = {
    "article", "newsarticle", "reportagenewsarticle", "analysisnewsarticle", "opinionnewsarticle",
    "backgroundnewsarticle", "reviewnewsarticle", "blogposting", "liveblogposting", "socialmediaposting",
    "scholarlyarticle", "techarticle", "satiricalarticle", "advertisercontentarticle", "report",
    "askpublicnewsarticle", "webpage",
}
# Between the keywords of a meta tag or JSON-LD string: commas of any script ("،" Arabic, "，" and
# "、" Chinese and Japanese), and semicolons.
_KEYWORD_SEPARATORS = re.compile(r"[,;،؛，、；]")
# Separators between a headline and the site name in <title> and og:title.
_TITLE_SEPARATORS = re.compile(r"\s+[|\-–—:·•»/]\s+|\s*[｜：ㅣ]\s*|\s+::\s+|\s*--\s*")
# Not the zero-width non-joiner and joiner (U+200C, U+200D): letters of Persian words
# ("می‌تواند"), Sinhala and Bengali conjuncts and emoji sequences, not formatting.
_ZERO_WIDTH = re.compile("[\u00ad\u200b\u200e\u200f\u2060\ufeff]")
# Control characters that are not white space (ESC, BEL, DEL, C1): a page's title "\x1b]0;...\x07"
# (from a JSON-LD "\u001b" or an HTML "&#x1b;") would drive the terminal of whoever prints it.
_CONTROL = re.compile("[\x00-\x08\x0e-\x1f\x7f-\x9f]")
# "Breaking news" in the languages a newsroom feed meets. These are words for the *concept*,
# used only on the article's own headline, header badge and tags, never to remove text. Each is
# compared in its matching form (textnorm.normalize: any case, width and accent, Arabic and
# Hebrew marks), so one spelling stands for "ΕΚΤΑΚΤΟ", "ÚLTIMA HORA" and "عاجل جداً"; none is
# listed whose matching form is another word: Vietnamese "khẩn" alone would be the name "Khan".
_URGENT_WORDS = (
    "breaking", "breaking news", "urgent", "just in", "developing",
    "عاجل", "خبر عاجل", "عاجل جدا",
    "eilmeldung", "eil", "dringend", "net binnen", "just nu",
    "urgente", "última hora", "ultima ora", "ultim'ora", "ultim’ora",
    "dernière minute", "alerte", "flash",
    "pilne", "hitno", "хитно", "срочно", "молния", "терміново",
    "son dakika", "flaş", "flaş haber", "έκτακτο", "έκτακτη είδηση",
    "בהול", "דחוף", "מבזק", "فوری", "خبر فوری", "بریکنگ نیوز",
    "अभी अभी", "ब्रेकिंग", "ब्रेकिंग न्यूज़", "ब्रेकिंग न्यूज", "ব্রেকিং", "ব্রেকিং নিউজ",
    "ด่วน", "ข่าวด่วน", "tin nóng", "tin khẩn", "ሰበር ዜና",
    "突发", "突發", "快讯", "快訊", "速報", "ニュース速報", "緊急速報", "속보", "긴급",
)
_URGENT_WORD_BY_FORM = {normalize(word): word for word in _URGENT_WORDS}
# Class names that name urgency itself. "alert" and "flash" also name notices, sign-up buttons
# ("topic-alert-button") and Bootstrap/Rails messages ("alert alert-info", "flash-notice"): an
# element so named is a badge only when its text is an urgent word.
_URGENT_CLASS = re.compile(r"breaking|urgent|eilmeldung|ajel|عاجل|flash-?news", re.IGNORECASE)
_NOTICE_CLASS = re.compile(r"alert|flash", re.IGNORECASE)
_TICKER_CLASS = re.compile(r"ticker|marquee|crawl|scroll|rail|sidebar|nav|menu|footer|header-top|top-bar", re.IGNORECASE)
# "di" (Italian) and "ved" (Danish) start names too ("Di Stefano", "Ved Prakash"): only as
# written in a byline, in lower case or with a colon.
_AUTHOR_CLEAN = re.compile(
    r"^(?:(?i:by|von|par|por|door|av|af|от|autor|autorin|author|text|texto|reporter|بقلم|كتب|كتبت|تأليف)\s*[:\-]?"
    r"|(?:di|ved)|(?i:di|ved)\s*:)\s+"
)
_AUTHOR_PAREN = re.compile(r"\s*\([^)]*\)\s*")
# A declaration names a language only by a code: a tag, or a value that starts with one
# ("en_US.UTF-8"). A word is no code: "Malay" read by its letters would be "mal", Malayalam.
_HTML_LANG = re.compile(r"^[A-Za-z]{2,3}(?![A-Za-z])")
# Meta tags (name, property or itemprop) declaring the article's authors, dates and keywords.
_AUTHOR_KEYS = (
    "author", "article:author", "authors", "dc.creator", "dc:creator", "dcterms.creator", "citation_author", "byl",
    "sailthru.author", "parsely-author", "creator", "rbauthors", "atc-metaauthor", "dcsext.author",
)
_PUBLISHED_KEYS = (
    "article:published_time", "og:published_time", "datepublished", "pubdate", "publishdate", "dc.date.issued",
    "dcterms.created", "date", "sailthru.date", "parsely-pub-date",
)
_MODIFIED_KEYS = ("article:modified_time", "og:updated_time", "datemodified", "lastmod", "dcterms.modified")
_TAG_KEYS = ("news_keywords", "keywords", "parsely-tags", "citation_keywords", "dcterms.subject", "tags")


@dataclass(frozen=True, slots=True)
class PageMetadata:
    title: str | None = None
    authors: tuple[str, ...] = ()
    published: str | None = None  # ISO 8601 as declared (with offset when the page gives one)
    modified: str | None = None
    site_name: str | None = None
    description: str | None = None
    canonical_url: str | None = None
    declared_language: str | None = None
    image: str | None = None
    categories: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    urgent: bool = False
    urgent_signal: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def clean_text(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    text = " ".join(_CONTROL.sub("", _ZERO_WIDTH.sub("", unicodedata.normalize("NFC", value))).split())
    return text or None


def _unescaped(value: object) -> str | None:
    """JSON-LD strings and meta tags sometimes carry HTML entities (&quot;, &uuml;, &amp;):
    escaped twice by their CMS."""
    text = clean_text(value)
    return clean_text(html.unescape(text)) if text and "&" in text else text


# --- JSON-LD ------------------------------------------------------------------------------------


def _walk(node: Any) -> Iterator[tuple[dict[str, Any], int]]:
    """The objects of a JSON value with the number of typed objects around each (a @graph's
    wrapper has no type), each before those inside it, in document order (iterative: JSON that
    the parser reads can nest deeper than Python's recursion goes)."""
    stack: list[tuple[Any, int]] = [(node, 0)]
    while stack:
        current, depth = stack.pop()
        if isinstance(current, dict):
            yield current, depth
            inner = depth + 1 if "@type" in current else depth
            stack.extend((value, inner) for value in reversed(current.values()))
        elif isinstance(current, list):
            stack.extend((item, depth) for item in reversed(current))


def _items(value: Any) -> Iterator[Any]:
    """The value, or the items of the list and of the lists inside it, in order (iterative, as
    ``_walk``)."""
    stack = [value]
    while stack:
        current = stack.pop()
        if isinstance(current, list):
            stack.extend(reversed(current))
        else:
            yield current


def _types(node: dict[str, Any]) -> set[str]:
    value = node.get("@type")
    values = value if isinstance(value, list) else [value]
    return {str(v).rsplit("/", 1)[-1].casefold() for v in values if v}


def json_ld_article(tree: HtmlElement) -> dict[str, Any] | None:
    """The page's main JSON-LD article object: the one with a headline and a date, and of several
    the outermost (a live blog's updates, a list's related articles are inside other objects),
    the first of equals. Its author, creator, publisher and image, when they are references to
    another object of the page ({"@id": ...}, as Yoast's @graph writes them), are that object."""
    best: dict[str, Any] | None = None
    best_score: tuple[int, int, int] = (-1, 0, 0)
    by_id: dict[str, dict[str, Any]] = {}
    for script in tree.iter("script"):
        if (script.get("type") or "").strip().lower() != "application/ld+json" or not script.text:
            continue
        try:
            try:
                data = json.loads(script.text)
            except ValueError:
                data = json.loads(re.sub(r"[\x00-\x1f]", " ", script.text))
        except (ValueError, RecursionError):
            # not JSON, or nested deeper than the parser goes (no article's data is): the page is
            # read without this script
            continue
        for node, depth in _walk(data):
            if isinstance(ident := node.get("@id"), str) and len(node) > len(by_id.get(ident, ())):
                by_id[ident] = node
            types = _types(node)
            if not types & _ARTICLE_TYPES:
                continue
            # an article of the page's own before one inside it: a live blog's update or a related
            # article nested in it has a date where the page's may be in a meta tag only
            score = (
                2 if types - {"webpage"} else 0,
                -depth,
                (1 if node.get("headline") else 0) + (1 if node.get("datePublished") else 0),
            )
            if score > best_score:
                best, best_score = node, score
    if best is None:
        return None
    return {key: _resolved(value, by_id) if key in _REFERENCED else value for key, value in best.items()}


_REFERENCED = frozenset({"author", "creator", "publisher", "image"})


def _resolved(value: Any, by_id: dict[str, dict[str, Any]]) -> Any:
    """``value`` (or each item of it, a list) with a reference ({"@id": ...} and nothing else but
    a type) replaced by the object of that id, when the page has one."""

    def resolved(item: Any) -> Any:
        if isinstance(item, dict) and isinstance(ref := item.get("@id"), str) and set(item) <= {"@id", "@type"}:
            return by_id.get(ref, item)
        return item

    return [resolved(item) for item in value] if isinstance(value, list) else resolved(value)


_ORGANISATIONS = {"organization", "newsmediaorganization", "corporation"}


def _names(value: Any, *, organisations: bool = False) -> list[str]:
    """Author names; organisations only when asked (a byline of the outlet or an agency)."""
    names = []
    for item in _items(value):
        if isinstance(item, str):
            names.append(item)
        elif isinstance(item, dict) and (organisations or not _types(item) & _ORGANISATIONS):
            name = item.get("name")
            if isinstance(name, str):
                names.append(name)
            elif parts := [item[key] for key in ("givenName", "familyName") if isinstance(item.get(key), str)]:
                names.append(" ".join(parts))
    return names


def _strings(value: Any, keys: tuple[str, ...] = ("name",)) -> list[str]:
    """The strings of a JSON-LD value, and of its objects the first of ``keys`` each has (an @id
    names an object, it is neither its name nor its address)."""
    strings = []
    for item in _items(value):
        if isinstance(item, str):
            strings.append(item)
        elif isinstance(item, dict):
            named = next((item[key] for key in keys if isinstance(item.get(key), str)), None)
            if named is not None:
                strings.append(named)
    return strings


# --- meta tags ----------------------------------------------------------------------------------


def _meta(tree: HtmlElement) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for element in tree.iter("meta"):
        key = (element.get("property") or element.get("name") or element.get("itemprop") or "").strip().lower()
        content = element.get("content")
        if key and content and content.strip():
            found.setdefault(key, []).append(content.strip())
        equiv = (element.get("http-equiv") or "").strip().lower()
        if equiv == "content-language" and content:
            found.setdefault("content-language", []).append(content.strip())
    return found


def _first(meta: dict[str, list[str]], *keys: str) -> str | None:
    for key in keys:
        for value in meta.get(key, []):
            if cleaned := clean_text(value):
                return cleaned
    return None


# --- title --------------------------------------------------------------------------------------


def _uncut_attribute(value: str | None, texts: tuple[str | None, ...]) -> str | None:
    """A meta tag's value, or the text it was cut from: a quotation mark left unescaped in the
    attribute (content="Sieger und "royaler Besuch"", or an apostrophe in content='...') ends
    the value there, and a page's headline or <title>, element text, goes on past it with that
    quotation mark."""
    if not value:
        return value
    for text in texts:
        if text and text.startswith(value) and text[len(value) :].lstrip().startswith(('"', "'")):
            return text
    return value


def _squashed(text: str) -> str:
    """Lower case, no accents, no spaces or punctuation: "Seznam Zprávy" ~ "seznamzpravy"."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if c.isalnum())


def strip_site_name(title: str, site_names: list[str]) -> str:
    """Cut "| Site", "- Site" (or "Site: ") off a declared title; without spaces ("标题_新华网",
    as Chinese sites write it) only a site name itself."""
    parts = [part for part in _TITLE_SEPARATORS.split(title) if part.strip()]
    if len(parts) < 2:
        return _strip_joined_site_name(title, site_names)
    sites = [_squashed(name) for name in site_names if name]

    def is_site(part: str) -> bool:
        norm = _squashed(part)
        if not norm:
            return True
        return any(
            norm == site
            or (site and len(norm) >= 3 and ((site in norm and len(norm) <= len(site) + 12) or norm in site))
            for site in sites
        )

    # remove site-name parts at either end
    while len(parts) > 1 and is_site(parts[-1]):
        parts.pop()
    while len(parts) > 1 and is_site(parts[0]):
        parts.pop(0)
    if len(parts) == len(_TITLE_SEPARATORS.split(title)):
        return title
    # rebuild from the original string to keep the separators inside the headline
    start = title.find(parts[0])
    end = title.rfind(parts[-1]) + len(parts[-1])
    return title[start:end].strip() if 0 <= start < end else title


# Separators that join a site name to a headline without spaces.
_JOINING_SEPARATORS = frozenset("_|-–—·•:：｜")


def _strip_joined_site_name(title: str, site_names: list[str]) -> str:
    folded = title.casefold()
    for name in site_names:
        site = (name or "").strip().casefold()
        if not site or len(folded) <= len(site) + 1 or len(folded) != len(title):
            continue
        if folded.endswith(site) and folded[-len(site) - 1] in _JOINING_SEPARATORS:
            return title[: -len(site) - 1].strip()
        if folded.startswith(site) and folded[len(site)] in _JOINING_SEPARATORS:
            return title[len(site) + 1 :].strip()
    return title


# A logo or site title set as an h1 ("<h1 class="logo"><a href="/">Site</a></h1>").
_SITE_MARK_CLASS = re.compile(r"logo|brand|masthead|site-?(?:title|name)", re.IGNORECASE)


def _names_the_site(heading: HtmlElement, site_names: list[str], page_url: str | None) -> bool:
    """Whether an h1 is the site's name rather than a headline: its text is a site name, it links
    to the home page, or it (or what it holds) is marked as the logo."""
    text = _squashed(heading.text_content())
    if text and text in {_squashed(name) for name in site_names}:
        return True
    for element in heading.iter():
        if not isinstance(element.tag, str):
            continue
        if _SITE_MARK_CLASS.search(" ".join(filter(None, (element.get("class"), element.get("id"))))):
            return True
        if element.tag == "a" and (href := element.get("href")) is not None and _is_home(href, page_url):
            return True
    return False


def _is_home(href: str, page_url: str | None) -> bool:
    """Whether a link goes to the site's home page ("/", "https://www.site/", "/index.html")."""
    href = href.strip()
    if not href or href.startswith("#"):
        return False
    try:
        target = urljoin(page_url, href) if page_url else href
        if not is_home_page(target):
            return False
        host = domain_of(target)
        return not page_url or not host or host == domain_of(page_url)
    except ValueError:  # a link that does not parse ("http://[oops/") goes nowhere
        return False


def _headings(tree: HtmlElement, site_names: list[str], url: str | None) -> list[HtmlElement]:
    """The page's h1 elements that may be the article's headline (not the site's name)."""
    found = []
    for element in tree.iter("h1"):
        text = clean_text(element.text_content())
        if text and len(text) > 3 and not _names_the_site(element, site_names, url):
            found.append(element)
        if len(found) >= 5:
            break
    return found


def _declared_heading(headings: list[HtmlElement], declared: list[str]) -> str | None:
    """The text of the first h1 that a declared title has as a run of its parts (a section's name
    set as an h1 above the article's comes first on some pages), else of the first h1."""
    texts = [text for heading in headings if (text := clean_text(heading.text_content()))]
    runs = [_Runs.of(title) for title in declared]
    return next((text for text in texts if any(text in run for run in runs)), texts[0] if texts else None)


# Where a title splits into parts for agreement between sources: the site-name separators and "*"
# ("Headline * Site * by Author"). Not a kicker's colon: "Kicker: Headline" is as often the title.
_PART_SEPARATORS = re.compile(_TITLE_SEPARATORS.pattern + r"|\s+\*\s+")
# How much a source's agreement counts. twitter:title and <title> are mostly copies of og:title
# made by the same CMS field, not independent evidence: they count half.
_SOURCE_WEIGHT = {"ld": 1.0, "og": 1.0, "h1": 1.0, "tw": 0.5, "tt": 0.5}


@dataclass(frozen=True, slots=True)
class _Runs:
    """A title's runs of parts between separators ("A | B - C" has A | B - C, A | B, B - C, A, B
    and C), told by where runs can start and end: listing them is cubic in the separators (96 s
    for a 7 KB title of 1,000 of them)."""

    title: str
    starts: frozenset[int]  # the title's start and the ends of its separators
    ends: frozenset[int]  # the starts of its separators and the title's end

    @classmethod
    def of(cls, title: str) -> _Runs:
        separators = list(_PART_SEPARATORS.finditer(title))
        return cls(
            title,
            frozenset((0, *(match.end() for match in separators))),
            frozenset((len(title), *(match.start() for match in separators))),
        )

    def __contains__(self, text: str) -> bool:
        """Whether ``text`` (clean, as ``clean_text`` gives it) is one of the runs. The title is
        clean too, so a run that is ``text`` is an occurrence of it with at most a space on
        either side, between a start and an end."""
        title = self.title
        at = title.find(text)
        while at >= 0:
            after = at + len(text)
            for start in (at, at - 1):
                for end in (after, after + 1):
                    if start in self.starts and end in self.ends and clean_text(title[start:end]) == text:
                        return True
            at = title.find(text, at + 1)
        return False


def _title_options(values: dict[str, str], site_names: list[str]) -> list[tuple[str, str]]:
    """(source, option): each source's text, and the declared titles without the site name."""
    options = []
    for key, value in values.items():
        options.append((key, value))
        if key in ("og", "tw", "tt"):
            options.append((key, clean_text(strip_site_name(value, site_names)) or value))
    return options


def choose_title(candidates: dict[str, str], site_names: list[str]) -> str | None:
    """The title most sources agree on.

    ``candidates`` maps a source (``ld`` JSON-LD headline, ``og`` og:title, ``h1`` the visible
    headline, ``tw`` twitter:title, ``tt`` <title>) to its text, in order of preference. Each
    source's text, and the declared ones with the site name cut off, is a candidate; a candidate
    is supported, by the source's weight, by every source whose text is it or has it as a run of
    parts between separators ("Kicker | Headline - Section | Site" supports "Headline"). The best
    supported wins; ties go to the preferred source, and then to its text without the site name.
    """
    values = {key: text for key, value in candidates.items() if value and (text := clean_text(value))}
    if not values:
        return None
    runs = {key: _Runs.of(value) for key, value in values.items()}
    order = list(values)
    best: tuple[float, int, str] | None = None
    for key, option in _title_options(values, site_names):
        # a source supports its own text without the site name, also one joined to it ("标题_新华网")
        support = sum(
            _SOURCE_WEIGHT.get(other, 1.0) for other, its_runs in runs.items() if other == key or option in its_runs
        )
        # equal support: the preferred source, and of its texts the one without the site name
        score = (support, -order.index(key), option != values[key], option)
        if best is None or score[:3] > best[:3]:
            best = score
    return best[3] if best else None


# --- dates --------------------------------------------------------------------------------------


# Zones written in ways ISO 8601 does not: "GMT+3", "UTC", and Java's "+03:00[Asia/Riyadh]".
_NAMED_OFFSET = re.compile(r"\s*(?:GMT|UTC)(?:\s*([+-])(\d{1,2})(?::?(\d{2}))?)?$", re.IGNORECASE)
_ZONE_ID = re.compile(r"\[[^\]]*\]$")
_MIDNIGHT_24 = re.compile(r"([T ])24:00(?::00)?(?=\D|$)")


def parse_iso(value: str | None) -> datetime | None:
    """A declared date as an aware datetime; one without a zone is taken as UTC (the page did not say)."""
    parsed = _declared_time(value)
    return parsed if parsed is None or parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _declared_time(value: str | None) -> datetime | None:
    """A declared date, naive when it states no zone. A time with a zone that cannot be read keeps
    its day only, rather than an hour off by the zone. ISO 8601 as most sites write it, else the
    other formats they do (:func:`_iso_from_other_format`)."""
    if not value:
        return None
    parsed = _iso_time(value)
    if parsed is not None and (parsed.time() != datetime.min.time() or parsed.tzinfo or len(value.strip()) <= 10):
        return parsed
    # not ISO, or only its day was: "2019-11-20 4:00:00 -0600" (an hour of one digit)
    other = _iso_from_other_format(value)
    return _iso_time(other) if other is not None else parsed


def _iso_time(value: str) -> datetime | None:
    text = _ZONE_ID.sub("", value.strip()).replace("Z", "+00:00")
    text = _NAMED_OFFSET.sub(lambda m: f"{m[1]}{int(m[2]):02d}:{m[3] or '00'}" if m[1] else "+00:00", text)
    text = re.sub(r"\s*([+-]\d{2}):?(\d{2})$", r"\1:\2", text)
    text = re.sub(r"\.\d+", "", text)
    next_day = bool(_MIDNIGHT_24.search(text))  # 24:00 ends the day: the next one's 00:00
    text = _MIDNIGHT_24.sub(r"\g<1>00:00:00", text)
    # a time followed by anything but a readable zone keeps only its day
    for candidate in (text, text[:19] if not text[19:].strip() else text[:10], text[:10]):
        try:
            parsed = datetime.fromisoformat(candidate)
        except ValueError:
            continue
        if next_day and len(candidate) > 10:
            try:
                return parsed + timedelta(days=1)
            except OverflowError:  # 9999-12-31T24:00: no next day to be
                return None
        return parsed
    return None


# Declared dates in other formats than ISO 8601 are read only when they name a month or lead with
# the year, and hold the year: "04/05/2019" is April or May, and a date without its year would be
# given this one.
_MONTH_NAME = re.compile(r"\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?(?![a-z])", re.IGNORECASE)
_YEAR_FIRST = re.compile(r"\d{4}[-/.]\d")
_FOUR_DIGIT_YEAR = re.compile(r"(?<!\d)(?:19|20)\d{2}(?!\d)")
_EPOCH = re.compile(r"\d{10}(?:\d{3})?")
_ISO_BASIC = re.compile(r"(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})?(Z|[+-]\d{4})?Z?")
_CLOCK = re.compile(r"\d{1,2}:\d{2}")
# "GMT+0300" is three hours ahead of GMT as sites mean it; dateutil reads it the POSIX way, behind.
_GMT_OFFSET = re.compile(r"\b(?:GMT|UTC)\s*([+-]\d{2}):?(\d{2})\b")
_ZONE_WORD = re.compile(r"(?<![A-Za-z])[A-Z]{2,5}(?![A-Za-z])")
_NOT_ZONES = frozenset({"AM", "PM", "MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"})
# Zone abbreviations that name one offset (seconds east of UTC). CST, IST, BST and the like name
# several (US Central and China, India and Ireland and Israel): a time in one of them keeps its day.
_ZONE_OFFSETS = {
    "UT": 0, "UTC": 0, "GMT": 0, "WET": 0, "WEST": 3600, "CET": 3600, "CEST": 7200, "MEZ": 3600, "MESZ": 7200,
    "EET": 7200, "EEST": 10800, "MSK": 10800, "JST": 32400, "KST": 32400, "HKT": 28800, "SGT": 28800,
    "AEST": 36000, "AEDT": 39600, "NZST": 43200, "NZDT": 46800, "EST": -18000, "EDT": -14400, "CDT": -18000,
    "MST": -25200, "MDT": -21600, "PST": -28800, "PDT": -25200, "AKST": -32400, "AKDT": -28800, "HST": -36000,
}


def _iso_from_other_format(value: str) -> str | None:
    """A declared date that is not ISO 8601, as ISO 8601 text: digits of any script ("২০২০-০৮-২৯"),
    Unix time in seconds or milliseconds, ISO's basic format ("20120104T1205+0400"), RFC 2822
    ("Mon, 18 Nov 2019 16:07:38 -0600") and the other formats that name a month ("November 19, 2019,
    07:47 PM EST", "Tue Nov 19 2019 03:05:46 GMT+0000", Java's "Fri Apr 28 19:20:36 CEST 2023").
    A time whose zone is not one offset keeps its day; a time with no zone stays without one."""
    text = "".join(str(unicodedata.decimal(c)) if unicodedata.category(c) == "Nd" else c for c in value).strip()
    if text != value.strip() and _iso_time(text) is not None:
        return text
    if _EPOCH.fullmatch(text):
        moment = datetime.fromtimestamp(int(text) / (1000 if len(text) == 13 else 1), UTC)
        return moment.isoformat() if 1995 <= moment.year <= 2100 else None
    if basic := _ISO_BASIC.fullmatch(text):
        year, month, day, hour, minute, second, zone = basic.groups()
        offset = "+00:00" if zone in (None, "Z") else f"{zone[:3]}:{zone[3:]}"
        return f"{year}-{month}-{day}T{hour}:{minute}:{second or '00'}{offset}"
    if not _FOUR_DIGIT_YEAR.search(text) or not (_MONTH_NAME.search(text) or _YEAR_FIRST.match(text)):
        return None
    text = _GMT_OFFSET.sub(r"\1\2", text)
    zones = {word for word in _ZONE_WORD.findall(text) if word not in _NOT_ZONES and not _MONTH_NAME.fullmatch(word)}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # dateutil's UnknownTimezoneWarning: handled below
            # what dateutil does not find it takes from the default: two defaults tell a day it made up
            parsed, other = (
                dateutil.parser.parse(text, tzinfos=_ZONE_OFFSETS, default=datetime(2000, 1, day)) for day in (1, 2)
            )
    except (ValueError, OverflowError):
        return None
    if parsed != other:
        return None
    if not _CLOCK.search(text) or any(zone not in _ZONE_OFFSETS for zone in zones):
        return parsed.date().isoformat()
    try:
        return parsed.isoformat()
    except ValueError:  # an offset of a day or more ("+2500"): no zone's
        return parsed.date().isoformat()


_DATE_FORMAT = "%Y-%m-%dT%H:%M:%S%z"
# The latest local time anywhere is UTC+14's (Kiribati).
_LATEST_ZONE_AHEAD = timedelta(hours=14)


def latest_local_date(now: datetime) -> str:
    """The latest date it is anywhere on earth at ``now``. A page dated in its outlet's own zone
    (Tokyo, the Gulf) is dated "tomorrow" in UTC for hours after its local midnight: capped at
    today's UTC date, htmldate passes over that date for an older one on the page, or none."""
    return (now.astimezone(UTC) + _LATEST_ZONE_AHEAD).strftime("%Y-%m-%d")


def _searched_date(tree: HtmlElement, url: str | None, language: str | None, now: datetime) -> str | None:
    """htmldate's guess at the publication date, for pages that declare none. Its quick search
    (markup, URL, date patterns) first; the extensive one (free text, dateparser) costs several
    times more and runs only when the quick one finds nothing. A guess of 1 January at midnight is
    a year found alone (a copyright line, a URL's year); for it, as when neither search finds a
    date, the day is read from the dateline under the headline, or the date stays unknown
    rather than made up."""
    for extensive in (False, True):
        try:
            found = find_date(
                tree,
                url=url,
                original_date=True,
                extensive_search=extensive,
                outputformat=_DATE_FORMAT,
                max_date=latest_local_date(now),
            )
        except Exception:  # noqa: BLE001 - htmldate raises anything on odd markup
            found = None
        if found:
            year_alone = found[4:].startswith("-01-01T00:00:00")
            return _dateline_date(tree, language) if year_alone else found
    return _dateline_date(tree, language)


# Levantine and Iraqi month names, which dateparser does not read; sites often write both forms
# ("آب/أغسطس"), so a Levantine name followed by "/" is dropped for the other. Whole words only:
# "آب" (August) begins "آباء" (fathers) and "آبار" (wells).
_LEVANTINE_MONTHS = {
    "كانون الثاني": "يناير", "شباط": "فبراير", "آذار": "مارس", "نيسان": "أبريل", "أيار": "مايو",
    "حزيران": "يونيو", "تموز": "يوليو", "آب": "أغسطس", "أيلول": "سبتمبر", "تشرين الأول": "أكتوبر",
    "تشرين الثاني": "نوفمبر", "كانون الأول": "ديسمبر",
}
_LEVANTINE_MONTH = re.compile(
    r"(?<!\w)(" + "|".join(sorted(_LEVANTINE_MONTHS, key=len, reverse=True)) + r")(?!\w)(\s*/\s*)?"
)
_YEAR = re.compile(r"(?<!\d)(?:19|20)\d\d(?!\d)|(?<![٠-٩])[١٢][٠٩][٠-٩][٠-٩](?![٠-٩])")
# The Arabic era markers written after a year ("2024م", "1446 هـ"): dateparser stops reading a
# date at them. Lines often carry both calendars ("10 ربيع الآخر 1446هـ - 13 أكتوبر 2024م",
# "... الموافق ..."): each part is read on its own, and a Hijri part never gives a Gregorian date
# (its year is not a plausible one).
_ERA_MARKER = re.compile(r"(?<=[0-9٠-٩])\s*(?:م|هـ|ه)(?!\w)")
# A dot that ends an abbreviation ("Okt.", "окт.", "ต.ค.", "p.m.") or marks an ordinal ("13.
# oktobris", "2024. október"): dateparser's search reads no date across one ("13. Okt. 2024",
# "13 ต.ค. 2024", "13. oktober 2024" give none) and reads them all without it. A dot between
# figures ("13.10.2024", "14.05") is the date's or the time's own.
_MARK_DOT = re.compile(r"(?<=[^\W\d_])\.|(?<=\d)\.(?!\d)")
# Words naming the unit of the figure before them, written in the language's long date (CLDR's
# pattern) and not in dateparser's data: Lithuanian "2024 m. spalio 13 d." (metai, diena),
# Latvian "2024. gada 13. oktobris" ("of the year"). Read once the dots are gone.
_DATE_UNIT_WORDS = {
    "lt": re.compile(r"(?<=\d)\s+[md](?!\w)"),
    "lv": re.compile(r"(?<=\d)\s+gada(?!\w)"),
}
# A Thai year of the Buddhist era, with or without its marker "พ.ศ.": 2567 BE is 2024 CE. Years
# from 2400 on: no Thai page dates an article in the 25th century CE.
_BUDDHIST_ERA_YEAR = re.compile(r"(?:พ\.?\s*ศ\.?\s*)?(?<!\d)(2[4-6]\d\d)(?!\d)")
_BUDDHIST_ERA_OFFSET = 543
_DATELINE_PARTS = re.compile(r"\s+[-–—]\s+|\s*\|\s*|\s+الموافق\s+")
# Absolute dates only: a relative one ("3 days ago", and "3 ቀን 2017", Amharic's "day 3 of 2017",
# read as one) would be resolved against the worker's clock, and differ on every replay.
_DATEPARSER_SETTINGS = {
    "REQUIRE_PARTS": ["day", "month", "year"],
    "RETURN_AS_TIMEZONE_AWARE": False,
    "PARSERS": ["custom-formats", "absolute-time"],
}
# How far below the headline a dateline is looked for, and how long it may be.
_DATELINE_ELEMENTS = 80
_DATELINE_MAX_CHARS = 120


def _dateline_date(tree: HtmlElement, language: str | None) -> str | None:
    """The date written in words in a short line under the headline ("الأربعاء، 28
    آب/اغسطس 2013", "5 stycznia 2012"), read by dateparser in the page's declared language (only
    then: guessing the language of a short line is slow and unreliable; a date in figures alone,
    "05/01/2012", is ambiguous and not read)."""
    if not language:
        return None
    # the article's headline: the longest h1 (the first is often the site's logo)
    headline = max(tree.iter("h1"), key=lambda h: len(clean_text(h.text_content()) or ""), default=None)
    if headline is None:
        return None
    code = language.split("-")[0]
    tried: set[str] = set()  # a wrapper and its only child hold the same line
    for element in itertools.islice(_following(headline), _DATELINE_ELEMENTS):
        text = clean_text(element.text_content())
        if not text or len(text) > _DATELINE_MAX_CHARS or text in tried:
            continue
        tried.add(text)
        text = _readable_dateline(text, code)
        if not _YEAR.search(text):
            continue
        for part in _DATELINE_PARTS.split(text):
            if not _YEAR.search(part):
                continue
            try:
                found = search_dates(part, languages=[code], settings=_DATEPARSER_SETTINGS)
            except Exception:  # noqa: BLE001 - dateparser raises on some inputs and unknown languages
                return None
            for matched, value in found or ():
                # a month written in words and the year in the matched text itself: not a
                # weekday or "today" alone, which dateparser resolves against the clock
                if _YEAR.search(matched) and any(c.isalpha() for c in matched):
                    return value.strftime(_DATE_FORMAT)
    return None


def _readable_dateline(text: str, language: str) -> str:
    """The dateline as dateparser reads it: standard month names, no era markers, abbreviation and
    ordinal dots or unit words, and a Thai year of the Buddhist era as the Gregorian one (read as it
    is, 2567 would be no plausible year and the date would be lost)."""
    text = _ERA_MARKER.sub("", standard_month_names(text))
    if language == "th":
        text = _BUDDHIST_ERA_YEAR.sub(lambda m: str(int(m[1]) - _BUDDHIST_ERA_OFFSET), text)
    text = _MARK_DOT.sub("", text)
    unit_words = _DATE_UNIT_WORDS.get(language)
    return unit_words.sub("", text) if unit_words else text


def standard_month_names(text: str) -> str:
    """The text with its Levantine month names replaced by the names dateparser reads."""
    return _LEVANTINE_MONTH.sub(lambda m: "" if m.group(2) else _LEVANTINE_MONTHS[m.group(1)], text)


def _following(element: HtmlElement) -> Iterator[HtmlElement]:
    """The elements after ``element`` in document order (not its own descendants)."""
    current = element
    while current is not None:
        for sibling in current.itersiblings():
            if isinstance(sibling.tag, str):
                yield sibling
                yield from (e for e in sibling.iterdescendants() if isinstance(e.tag, str))
        current = current.getparent()


# A page that was fetched is published: a date further ahead of now than the widest zone offset
# (a local time read as UTC) and a crawler's clock can put it is a typo ("2027" for "2026") or
# a placeholder, not the article's date; the page's other statements of it are read instead.
_MAX_AHEAD = timedelta(days=1)


def _declared_times(
    tree: HtmlElement, meta: dict[str, list[str]], ld_value: Any, keys: tuple[str, ...]
) -> Iterator[str | None]:
    """The page's statements of one date: the JSON-LD value, the meta tags of ``keys``, then the
    ``datetime`` of every ``<time>`` element (read lazily: only a date without a zone asks)."""
    yield clean_text(ld_value)
    for key in keys:
        yield from meta.get(key, ())
    for element in tree.iter("time"):
        yield element.get("datetime")


def _zoned_by_sibling(value: str | None, siblings: Iterator[str | None]) -> str | None:
    """``value``, when it states no zone, in the zone of another statement on the page of the same
    local time that does: the meta tag "2025-03-04T08:30:00" and the visible ``<time
    datetime="2025-03-04T08:30:00+09:00">`` are one moment in Tokyo, not 08:30 UTC.

    Only the same wall time (to the second) lends a zone. A statement of the same moment in UTC
    ("23:30" beside "08:30+09:00") says the value was UTC: it is returned so, and the other
    date's zone is not lent to it (``_in_one_zone``). A statement of another time may be another
    item's date (a related article's, a comment's, the update's): which one the article's is
    cannot be told from the page, so the value stands as declared, read as UTC as before."""
    declared = _declared_time(value)
    if declared is None or declared.tzinfo is not None:
        return value
    as_utc = declared.replace(tzinfo=UTC)
    for sibling in siblings:
        zoned = _declared_time(sibling)
        if zoned is None or not zoned.tzinfo:
            continue
        if zoned.replace(tzinfo=None) == declared:
            return zoned.isoformat()
        if zoned == as_utc and len(value.strip()) > 10:
            return as_utc.isoformat()
    return value


def _in_one_zone(published: str | None, modified: str | None) -> tuple[str | None, str | None]:
    """The two dates, one without a zone given the other's: a CMS that writes one with its offset
    and one without means its own zone for both (taken as UTC, a page in Tokyo would be published
    9 hours ahead, and its real modification time dropped as earlier than that)."""
    first, second = _declared_time(published), _declared_time(modified)
    if first is None or second is None or (first.tzinfo is None) == (second.tzinfo is None):
        return published, modified
    if first.tzinfo is None:
        return first.replace(tzinfo=second.tzinfo).isoformat(), modified
    return published, second.replace(tzinfo=first.tzinfo).isoformat()


# Placeholders a CMS writes for "no date": a zero year, 1900-01-01, the Unix epoch. Real archive
# articles are older than the web (an outlet's 1989 piece republished online keeps its date).
_PLACEHOLDER_DAYS = frozenset({date(1900, 1, 1), date(1970, 1, 1)})


def plausible_date(value: str | None, *, now: datetime) -> str | None:
    parsed = parse_iso(value)
    if (
        parsed is None
        or parsed.year < 1900
        or parsed > now + _MAX_AHEAD
        or parsed.astimezone(UTC).date() in _PLACEHOLDER_DAYS  # after the bound: 9999-12-31T23:00-05 overflows
        or parsed.date() in _PLACEHOLDER_DAYS
    ):
        return None
    return value


# --- authors ------------------------------------------------------------------------------------


def clean_authors(names: list[str]) -> tuple[str, ...]:
    """Names, one per entry: split on ";", "|", "and"-words and on commas between full names;
    bylines ("By ...", "Autor: ...") and parenthesised initials or credits removed; e-mails, URLs
    and slug spellings of a name already there dropped."""
    result: list[str] = []
    seen: set[str] = set()
    splitter = re.compile(
        r"\s*(?:;|\||,\s*(?=\S+\s+\S+)|\s+(?:and|und|et|y|e|og|och|en|и|و)\s+|\s+&\s+)\s*", re.IGNORECASE
    )
    for raw in names:
        for name in splitter.split(raw):
            text = clean_text(_AUTHOR_PAREN.sub(" ", name or ""))
            if not text:
                continue
            text = _AUTHOR_CLEAN.sub("", text).strip(" ,;:-–—")
            # a name holds a letter: "105092" is a CMS's user number
            if not text or "@" in text or text.startswith("http") or len(text) > 80 or not LETTER.search(text):
                continue
            key = _squashed(text)
            if not key or key in seen:
                continue
            seen.add(key)
            result.append(text)
    return tuple(result)


# --- urgent -------------------------------------------------------------------------------------


# Where a headline's marker ends: a colon or a bar, full-width ones too ("突发：", "速報｜"), and
# Hebrew's sof pasuq, a colon to the eye; an exclamation mark ("ด่วน! ...", "突发！..."); a quote;
# two spaces; an ellipsis ("عاجل.. انفجار", "BREAKING... Explosion"); a slash or an Arabic comma
# with a space after it ("عاجل/ ...", "عاجل، ..."). A dash only with spaces around it: joined, it
# makes a compound word ("Flash-flood", "Urgent-care", "Eil-Zustellung"), and with a space after
# it only, the first half of a German pair ("Eil- und Expressdienste"). Not a single space: "Flash flood warnings ..." starts with an
# urgent word and has no marker.
_MARKER_END = re.compile(r"\s*[:：|｜׃፥፦!！«»\"“]\s*|\s+[-–—]\s+|\s{2,}|\s*(?:\.{2,}|…)\s*|/\s+|،\s+")
# Scripts that write no space between words, where a space ends a phrase: "ด่วน นายกฯ ...",
# "速報 首相が..." are set off as a colon sets them off elsewhere. Not Hangul: Korean spaces its
# words, and "긴급 회의" is an urgent meeting.
_UNSPACED_PHRASE = re.compile("[\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff]+")
# Brackets that Unicode files as math symbols, not as opening and closing punctuation: "<速報>".
_ANGLE_PAIRS = {"<": ">", "＜": "＞"}
# Marks that belong to the emoji before them, not to a word: "BREAKING ⚡️" ends in one.
_EMOJI_MARKS = "\ufe0e\ufe0f\u200d\u20e3"


def _urgent_word(text: str) -> str | None:
    """``text`` as the urgent word it is ("[BREAKING]", "Eilmeldung!", "ΕΚΤΑΚΤΟ"), as listed,
    else None. Punctuation, symbols and spaces around the word are not part of it; combining
    marks after it are (Devanagari and Thai vowel signs end words)."""
    start, end = 0, len(text)
    while start < end and unicodedata.category(text[start])[0] not in "LN":
        start += 1
    while end > start and (unicodedata.category(text[end - 1])[0] not in "LNM" or text[end - 1] in _EMOJI_MARKS):
        end -= 1
    return _URGENT_WORD_BY_FORM.get(normalize(text[start:end]))


def _urgent_marker(text: str | None) -> str | None:
    """The urgent word a headline starts with, set off from it by a separator ("عاجل: ...",
    "BREAKING | ...", "EIL - ...", "突发：...", "ด่วน! ...") or by brackets of any script ("[속보] ...",
    "【速報】...", "(Urgent) ..."), also after other bracketed labels ("【動画】【速報】...")."""
    if not text:
        return None
    text = text.strip()
    start = 0
    while start < len(text) and (
        unicodedata.category(opener := text[start]) == "Ps" or opener in _ANGLE_PAIRS
    ):
        closes = (
            (lambda c: c == _ANGLE_PAIRS[opener])
            if opener in _ANGLE_PAIRS
            else (lambda c: unicodedata.category(c) == "Pe")
        )
        if (close := next((i for i in range(start + 1, len(text)) if closes(text[i])), None)) is None:
            break
        if word := _urgent_word(text[start + 1 : close]):
            return word
        start = close + 1
        while start < len(text) and text[start].isspace():
            start += 1
    rest = text[start:]
    if word := _urgent_word(_MARKER_END.split(rest, maxsplit=1)[0]):
        return word
    phrase = rest.split(maxsplit=1)
    return _urgent_word(phrase[0]) if len(phrase) == 2 and _UNSPACED_PHRASE.fullmatch(phrase[0]) else None


def _headline_element(tree: HtmlElement, headings: list[HtmlElement], title: str | None) -> HtmlElement | None:
    """The element that shows the chosen title: the h1 (else an h2 or h3) whose text it is, else
    the first h1 that may be the headline."""
    if title:
        for element in itertools.chain(headings, tree.iter("h2", "h3")):
            if clean_text(element.text_content()) == title:
                return element
    return headings[0] if headings else None


# Page chrome a badge can sit in when it is not around the headline.
_CHROME_TAGS = {"nav", "aside", "footer", "header", "marquee"}


def _links_a_story(element: HtmlElement, badge: HtmlElement) -> bool:
    """Whether ``element`` holds, beside the badge, a link whose text reads as a headline: a bar
    of headlines (a ticker, whatever its class). The badge's own links count when they are more
    than its urgent word: a bar named "breaking-news" that links a story is a ticker, not a badge."""
    for link in element.iter("a"):
        if link in badge.iterancestors():
            continue
        text = clean_text(link.text_content()) or ""
        if (link is badge or badge in link.iterancestors()) and _urgent_word(text):
            continue
        if len(text.split()) >= 4 or len(text) >= 12:
            return True
    return False


def _in_page_chrome(badge: HtmlElement, container: HtmlElement, headline: HtmlElement) -> bool:
    """Whether the badge, inside ``container`` (around the headline), sits in a ticker, a site
    header or navigation rather than in the article's header."""
    around_headline = set(headline.iterancestors())
    for element in (badge, *badge.iterancestors()):
        if element is container:
            return False
        marker = " ".join(filter(None, (element.get("class"), element.get("id"))))
        if _TICKER_CLASS.search(marker):
            return True
        if element not in around_headline and (
            element.tag in _CHROME_TAGS or _links_a_story(element, badge) or _awaits_its_items(element)
        ):
            return True
    return False


def _awaits_its_items(element: HtmlElement) -> bool:
    """Whether the element holds an empty list: a ticker whose items a script loads, its label alone
    in the HTML ("<div class="breaking-news"><span>عاجل</span><ul id="items"></ul></div>")."""
    return any(len(listing) == 0 and not (listing.text or "").strip() for listing in element.iter("ul", "ol"))


def _header_badge(headline: HtmlElement | None) -> str | None:
    """A breaking/urgent badge next to the article's headline: in its parent or grandparent, never
    beyond the article element, and not in the page's chrome (tickers, site header)."""
    container = headline.getparent() if headline is not None else None
    for _ in range(2):
        if container is None or container.tag in ("body", "html"):
            break
        for element in container.iter():
            if element is headline or not isinstance(element.tag, str):
                continue
            marker = " ".join(filter(None, (element.get("class"), element.get("id"))))
            names_urgency = bool(_URGENT_CLASS.search(marker))
            if not names_urgency and not _NOTICE_CLASS.search(marker):
                continue
            if _in_page_chrome(element, container, headline):
                continue
            text = clean_text(element.text_content())
            # a badge is a label; a bar named "breaking-news" that also holds a headline ("عاجل
            # انفجار في الميناء") is a ticker beside the article's own headline
            if text and (_urgent_word(text) or (names_urgency and len(text.split()) <= 2 and len(text) <= 20)):
                return text
        if container.tag == "article":
            break
        container = container.getparent()
    return None


# --- markup fallbacks ----------------------------------------------------------------------------
# For pages that declare no author, site name, categories or tags. trafilatura's own search
# (``extract_metadata``) costs more than everything else here together (a copy of the whole tree,
# XPaths with regular expressions run on every element, htmldate's extensive date search) and
# computes all fields when one is missing: these run one field at a time, only when needed.

# Byline markup, trafilatura's three expressions (``trafilatura.xpaths.AUTHOR_XPATHS``) in its
# order of preference, each as a test of one element's attributes. One pass over the elements with
# one plain regular expression finds the few candidates (an XPath with trafilatura's regular
# expressions, or even with as many contains(), costs several times more on large pages).
_BYLINE_HINT = re.compile(r"uthor|yline|byl|BBL|name|writer|zuozhe|bianji|xiaobian|-by")


def _byline_candidate(element: HtmlElement) -> bool:
    get = element.get
    return bool(
        element.tag == "author" or _BYLINE_HINT.search(get("class") or "") or _BYLINE_HINT.search(get("id") or "")
        or "author" in (get("itemprop") or "") or get("rel") == "author"
        or get("data-testid") in ("AuthorCard", "AuthorURL") or "Byline" in (get("data-component") or "")
    )


_BYLINE_TIERS: tuple[tuple[frozenset[str] | None, Any], ...] = (
    (
        frozenset({"a", "address", "div", "link", "p", "span", "strong"}),
        lambda e: e.get("rel") == "author" or e.get("id") == "author" or e.get("class") == "author"
        or e.get("itemprop") == "author name" or e.get("data-testid") in ("AuthorCard", "AuthorURL")
        or re.search(r"author-?name|AuthorName|authorName", e.get("class") or ""),
    ),
    (
        frozenset({"a", "div", "h3", "h4", "p", "span"}),
        lambda e: e.get("class") in ("byline", "username", "byl", "BBL") or "author" in (e.get("itemprop") or "")
        or re.search(r"author|zuozhe|bianji|xiaobian", e.get("id") or "")
        or re.search(
            r"author|channel-name|zuozhe|bianji|xiaobian|submitted-by|posted-by|journalist-name", e.get("class") or ""
        ),
    ),
    (
        None,
        lambda e: "Byline" in (e.get("data-component") or "") or "author" in (e.get("itemprop") or "")
        or re.search(r"[Aa]uthor", e.get("id") or "")
        or re.search(r"[Aa]uthor|screenname|writer|[Bb]yline", e.get("class") or ""),
    ),
)
# Where a name is not the article's byline (trafilatura.xpaths.AUTHOR_DISCARD_XPATHS): comments,
# sidebars, quotes, dates, figures.
_BYLINE_DISCARD_CLASS = re.compile(
    r"^[Cc]omments|commentlist|comments-list|sidebar|is-hidden|quote|embedly-instagram|article-(?:share|support)"
    r"|print|category|meta-date|meta-reviewer"
)
_BYLINE_DISCARD_ID = re.compile(r"^comments|comment-?list|ProductReviews")


def _off_byline(element: HtmlElement) -> bool:
    tag = element.tag
    if tag in ("time", "figure") or element.get("itemprop") in ("url", "logo", "image"):
        return True  # (a publisher's microdata logo in the byline read "Sputnik https; Cdnarabic; I; Logo Png")
    if tag not in ("a", "div", "section", "span"):
        return False
    css, ident = element.get("class") or "", element.get("id") or ""
    return (
        css in ("comments", "title", "date") or ident == "comments" or bool(_BYLINE_DISCARD_CLASS.search(css))
        or bool(_BYLINE_DISCARD_ID.search(ident)) or "Figure" in (element.get("data-component") or "")
    )


def _byline_text(element: HtmlElement) -> str:
    """The element's text without the parts that are no byline (a <time> inside it...)."""
    parts = [element.text or ""]
    for child in element:
        if isinstance(child.tag, str) and not _off_byline(child):
            parts.append(_byline_text(child))
        parts.append(child.tail or "")
    return " ".join(parts)


def byline(tree: HtmlElement) -> str | None:
    """The author names of the page's byline markup ("Jane Doe; John Roe"), as trafilatura's
    ``extract_author`` finds them."""
    candidates = [
        e for e in tree.iter()
        if isinstance(e.tag, str) and _byline_candidate(e) and not any(_off_byline(a) for a in (e, *e.iterancestors()))
    ]
    for tags, matches in _BYLINE_TIERS:
        for element in candidates:
            if (tags is None or element.tag in tags) and matches(element):
                text = " ".join(_byline_text(element).split())
                if 2 < len(text) < 120:
                    return normalize_authors(None, text)
    return None


# trafilatura's category and tag markup only keeps links to /category/... or /tag/... pages: a page
# without such a link has none, and most pages have none.
_TERM_LINKS = XPath("//a/@href[contains(., '/categor') or contains(., '/tag')]")


def _linked_terms(tree: HtmlElement, kind: str, term_links: list[str]) -> list[str]:
    """``term_links``: the page's ``_TERM_LINKS``, read once for both kinds."""
    marker = "/categor" if kind == "category" else "/tag"
    if not any(marker in href for href in term_links):
        return []
    try:
        return extract_catstags(kind, tree)
    except Exception:  # noqa: BLE001 - trafilatura's heuristics raise on odd markup
        return []


def _declared_site_name(meta: dict[str, list[str]], ld: dict[str, Any]) -> str | None:
    """The site name the publisher declares (meta tags, the JSON-LD publisher). Not its Twitter
    account (twitter:site): a handle ("AJENews" for Al Jazeera, "tazgezwitscher" for taz) or a
    profile's address, no outlet's name."""
    publisher = ld.get("publisher")
    name = _first(meta, "og:site_name", "application-name") or (
        _unescaped(publisher.get("name")) if isinstance(publisher, dict) else None
    )
    return (name.lstrip("@") or None) if name else None


def _site_name(tree: HtmlElement, declared: str | None, domain: str) -> str | None:
    """The declared site name; else the part of <title> that looks like a domain ("News - site.com")
    or the page's domain."""
    name = declared or clean_text(extract_sitename(tree))
    if name:
        return name.lstrip("@") or None
    return domain or None


# --- the whole ----------------------------------------------------------------------------------


def declared_language(tree: HtmlElement, meta: dict[str, list[str]], ld: dict[str, Any] | None) -> str | None:
    candidates = [tree.get("lang"), tree.get("xml:lang"), tree.get("{http://www.w3.org/XML/1998/namespace}lang")]
    candidates += [_first(meta, "og:locale"), _first(meta, "content-language", "language", "dc.language")]
    if ld and isinstance(ld.get("inLanguage"), str):
        candidates.append(ld["inLanguage"])
    for value in candidates:
        if value and not _is_charset(value) and (match := _HTML_LANG.match(value.strip())):
            # "undetermined" and "multiple languages" say nothing: the next declaration may
            if (code := language_code(value.strip(), fallback=match.group(0))) not in ("und", "mul"):
                return code
    return None


def language_code(value: str, *, fallback: str) -> str:
    """The primary subtag as BCP 47 has it now: retired codes ("iw", "in", "ji"), ISO 639-2
    codes ("ara", "ger"), locales ("ar_AR") and individual languages of a macrolanguage ("arb",
    "cmn") name the language the detector and every other page call it ("he", "ar", "zh"); a
    value that is no tag but starts with a code ("en_US.UTF-8") is read by that code."""
    for candidate in (value.replace("_", "-"), fallback):
        try:
            code = standardize_tag(candidate, macro=True).split("-")[0]
        except LanguageTagError:
            continue
        if _HTML_LANG.fullmatch(code):
            return code.lower()
    return fallback.lower()


def _is_charset(value: str) -> bool:
    """Pages put their charset where the language belongs (``Content-Language: utf-8``, seen on a
    People's Daily page); "utf" is no language. Only names with a digit count: "hz" is both a
    codec and Herero."""
    value = value.strip()
    if not any(char.isdigit() for char in value):
        return False
    try:
        codecs.lookup(value)
    except LookupError:
        return False
    return True


def declared_canonical(tree: HtmlElement, url: str | None) -> str | None:
    """The page's canonical URL as it declares it (``<link rel=canonical>``, else ``og:url``),
    resolved against ``url`` and normalised."""
    return canonical(tree, _meta(tree), url)


def canonical(tree: HtmlElement, meta: dict[str, list[str]], url: str | None) -> str | None:
    candidates = []
    for link in tree.iter("link"):
        if "canonical" in (link.get("rel") or "").lower().split() and link.get("href"):
            candidates.append(link.get("href").strip())
    if og := _first(meta, "og:url"):
        candidates.append(og)
    for candidate in candidates:
        # a link longer than a crawled URL may be is no page's address: normalising it, here and
        # again for the article's identity, costs seconds (a 6 MB link of 400,000 parameters)
        if len(candidate) > _MAX_URL_CHARS:
            continue
        try:  # a link that does not parse ("http://[::1/x") is no page's address
            absolute = urljoin(url, candidate) if url else candidate
            if len(absolute) > _MAX_URL_CHARS or urlsplit(absolute).scheme not in ("http", "https"):
                continue
            normalized = normalized_url(absolute)
        except (ValueError, TypeError):
            continue
        # percent-encoding makes a long non-Latin path three times longer: no crawled URL could be it
        if len(normalized) <= _MAX_URL_CHARS:
            return normalized
    return None


def extract_page_metadata(tree: HtmlElement, url: str | None, *, fetched_at: datetime | None = None) -> PageMetadata:
    """``fetched_at``: when the page was fetched, the "now" a date is judged by (not ahead of it),
    so that a replay or a redelivery weeks later finds the same date as the live run; the time of
    the call when not given (a page without its crawl)."""
    now = fetched_at or datetime.now(UTC)
    meta = _meta(tree)
    ld = json_ld_article(tree) or {}

    domain = domain_of(url) if url else ""
    declared_site_name = _declared_site_name(meta, ld)
    site_name = _site_name(tree, declared_site_name, domain)
    domain_names = [domain, domain.split(".")[0]] if domain else []
    site_names = [s for s in (site_name, *domain_names) if s]

    title_tag = None
    for element in tree.iter("title"):
        title_tag = clean_text(element.text_content())
        break
    # trafilatura's guess of the site name is often the headline: only declared names count here
    headings = _headings(tree, [s for s in (declared_site_name, *domain_names) if s], url)
    ld_title = _unescaped(ld.get("headline")) or _unescaped(ld.get("name"))
    og_title, tw_title = _first(meta, "og:title", "dc.title"), _first(meta, "twitter:title")
    title_sources = {
        "ld": ld_title,
        "og": og_title,
        "h1": _declared_heading(headings, [t for t in (ld_title, og_title, tw_title, title_tag) if t]),
        "tw": tw_title,
        "tt": title_tag,
    }
    for key in ("og", "tw"):
        title_sources[key] = _uncut_attribute(title_sources[key], (title_sources["h1"], title_tag))
    declared_titles = [t for t in title_sources.values() if t]
    title = choose_title(title_sources, site_names)

    author_names = _names(ld.get("author")) or _names(ld.get("creator"))
    if not author_names:
        author_names = [v for key in _AUTHOR_KEYS for v in meta.get(key, []) if not v.startswith("http")]
    if not author_names and (names := byline(tree)):
        author_names = names.split("; ")
    if not author_names:
        author_names = _names(ld.get("author"), organisations=True)
    authors = clean_authors(author_names)

    language = declared_language(tree, meta, ld or None)
    published = (
        # a live blog's is when its coverage started (its updates carry their own dates)
        plausible_date(clean_text(ld.get("datePublished") or ld.get("coverageStartTime")), now=now)
        or plausible_date(_first(meta, *_PUBLISHED_KEYS), now=now)
        or plausible_date(_searched_date(tree, url, language, now), now=now)
    )
    # only a declared one: guessing it would be a second date search of the page
    modified = plausible_date(clean_text(ld.get("dateModified")), now=now) or plausible_date(
        _first(meta, *_MODIFIED_KEYS), now=now
    )
    published = _zoned_by_sibling(
        published, _declared_times(tree, meta, ld.get("datePublished"), _PUBLISHED_KEYS)
    )
    modified = _zoned_by_sibling(
        modified, _declared_times(tree, meta, ld.get("dateModified"), _MODIFIED_KEYS)
    )
    published, modified = _in_one_zone(published, modified)
    if modified and published and (parse_iso(modified) or datetime.min.replace(tzinfo=UTC)) < (
        parse_iso(published) or datetime.min.replace(tzinfo=UTC)
    ):
        modified = published

    # meta tags and JSON-LD escaped twice ("CD&amp;V" once read) are read once more
    description = _unescaped(_first(meta, "og:description", "description", "twitter:description") or ld.get("description"))
    image = _first(meta, "og:image", "og:image:url", "twitter:image", "twitter:image:src")
    if not image:
        images = _strings(ld.get("image"), ("url", "contentUrl"))
        image = images[0] if images else None
    if image:
        try:  # an address that does not parse ("http://[::1/logo.png") is no image's
            image = urljoin(url, image) if url else image
            urlsplit(image)
        except ValueError:
            image = None

    categories = [*_strings(ld.get("articleSection")), *meta.get("article:section", [])]
    keywords = ld.get("keywords")
    tag_values = _strings(keywords) if not isinstance(keywords, str) else _KEYWORD_SEPARATORS.split(keywords)
    tag_values += meta.get("article:tag", [])
    # what the page declares for the article itself; links to tag pages may be the site's menu,
    # and the keywords meta tags (below) are the page's search terms, which many sites fill with
    # the same list on every page ("news, breaking news, weather, tv"): an alert on each article
    article_terms = _unique([*tag_values, *categories])
    for key in _TAG_KEYS:
        for value in meta.get(key, []):
            tag_values += _KEYWORD_SEPARATORS.split(value)
    if not categories or not tag_values:
        term_links = _TERM_LINKS(tree)
        categories = categories or _linked_terms(tree, "category", term_links)
        tag_values = tag_values or _linked_terms(tree, "tag", term_links)
    categories_clean = _unique(categories)
    tags_clean = _unique(tag_values)

    urgent_signal = None
    for candidate in (title, *declared_titles):
        if marker := _urgent_marker(candidate):
            urgent_signal = f"headline:{marker}"
            break
    if urgent_signal is None and (badge := _header_badge(_headline_element(tree, headings, title))):
        urgent_signal = f"header_badge:{badge}"
    if urgent_signal is None:
        for tag in article_terms:
            if _urgent_word(tag):
                urgent_signal = f"tag:{tag}"
                break

    return PageMetadata(
        title=title,
        authors=authors,
        published=published,
        modified=modified,
        site_name=site_name,
        description=description,
        canonical_url=canonical(tree, meta, url),
        declared_language=language,
        image=image,
        categories=categories_clean,
        tags=tags_clean,
        urgent=urgent_signal is not None,
        urgent_signal=urgent_signal,
    )


def _unique(values: list[str], limit: int = 30) -> tuple[str, ...]:
    result: list[str] = []
    seen: set[str] = set()
    for value in values:
        text = _unescaped(value)
        if not text or len(text) > 100:
            continue
        key = text.casefold()
        if key not in seen:
            seen.add(key)
            result.append(text)
        if len(result) >= limit:
            break
    return tuple(result)
