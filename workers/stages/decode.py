"""Stage 1: raw Kafka bytes -> a validated page with its HTML as text.

Charset policy, in order: a byte-order mark; valid UTF-8 with non-ASCII in it (a legacy encoding
practically never produces it by accident, and pages re-saved as UTF-8 keep their old ``<meta
charset>``: trafilatura decides the same way); the charset the crawler declared (its ``charset``
field, then the charset of the Content-Type); the page's own ``<meta charset>``. The first that
decodes the bytes *strictly* wins, with one exception: UTF-8 with a few invalid sequences (a
CMS's substr() cutting a letter in half in a description, a body cut inside its last character)
is read as UTF-8 with U+FFFD for each, as browsers read it, and logged, when the page says it is
UTF-8 (a byte-order mark, any label) or says nothing more than a default Latin label. Labels are
read as browsers read them (WHATWG Encoding Standard): one browsers do not know is ignored, as
they ignore it, and no codec outside the standard ever decodes a page (Python's utf-7,
unicode_escape or rot13 would turn plain ASCII into other text). A declared ISO-8859-1, US-ASCII
or windows-1252 is tried last, and only if detection finds no better encoding: HTTP clients
report ISO-8859-1 for any text/html without a charset, and those encodings decode nearly any
bytes, so the label would always win over the page's own (right) ``<meta charset>``, and turn a
windows-1256 page without one into Latin mojibake. With no usable declaration, statistical
detection among the standard's encodings; of the encodings it finds about as good (it orders
equals by name: windows-1250 before a Turkish page's windows-1254; the others of their script,
which it skips after a similar one, are asked of it one by one), the one whose words, in the
page's text outside its markup, read as words (no symbol among letters, no letters of two scripts
in one word), then whose letters are those of the page's language (declared unless no reading is
written in it, else identified), and a page whose best reading is still mojibake fails. A
declared charset that does not decode the bytes, with no other that does, fails the page (beyond
those few invalid UTF-8 sequences): guessing would publish mojibake into a newsroom feed, which
is worse than a dead letter someone can look at.

The message itself is strict UTF-8 JSON. A lone UTF-16 surrogate in ``html`` (a JSON
``"\\ud83d"``: a string cut inside an emoji by a JavaScript crawler, or text decoded with
surrogateescape) is no character, and lxml stops parsing at it, losing the rest of the page: it
becomes U+FFFD, as a browser shows it, and is logged.
"""

from __future__ import annotations

import binascii
import codecs
import functools
import json
import logging
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import get_args

import charset_normalizer
import regex
from babel import Locale, UnknownLocaleError, localedata
from pydantic import ValidationError

from workers.models import MAX_HEADERS, RawPage
from workers.stages.outcome import Dropped, Failed, Kept, StageResult

log = logging.getLogger(__name__)

STAGE = "decode"

_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))
# HTML's prescan for a charset (WHATWG HTML 13.2.3.2): <meta> tags outside comments, with a
# charset attribute, or an http-equiv="content-type" whose content names one.
_META_TAG = re.compile(rb"<meta[\s/]([^>]*)", re.IGNORECASE)
_ATTRIBUTE = re.compile(rb"""([^\s=/>]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]*)))?""")
_LABEL = re.compile(rb"""\s*["']?\s*([A-Za-z0-9_.:-]+)""")
_CONTENT_TYPE_CHARSET = re.compile(r"""charset\s*=\s*["']?\s*([^"';,\s]+)""", re.IGNORECASE)
_HTML_TYPES = ("text/html", "application/xhtml+xml")
# The start of the text that tells a page from binary bytes or another kind of document.
_SNIFFED_CHARS = 4096
# C0 controls other than white space: binary bytes decoded as text are full of them, a text page
# has none, or a stray one (a NUL in a headline, a CMS's bug) that must not cost the article.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f]")
_MAX_CONTROL_SHARE = 0.01
# What may come before the first element: an XML declaration, processing instructions, comments
# and a doctype, each matched alone (as one repeated group, a text of comments that no element
# follows took exponential time: 26 comments, 41 s of a blocked event loop).
_PROLOG_ITEM = re.compile(r"<\?.*?\?>|<!--.*?-->|<!doctype[^>]*>", re.DOTALL | re.IGNORECASE)
_ELEMENT_NAME = re.compile(r"<([a-z][\w:.-]*)", re.IGNORECASE)
_FEED_ROOTS = frozenset({"rss", "feed", "rdf:rdf"})
# How far a crawl's fetched_at may lie after the time its record was sent. Dedup and stories run
# on fetched_at: one page dated a year ahead would found a story that never ends.
_MAX_CLOCK_SKEW = timedelta(minutes=10)
# The earliest fetched_at a page may have. Crawlers that leave the time unset send their
# language's zero (Go's and .NET's 0001-01-01T00:00:00Z, the Unix epoch, 1900-01-01 of NTP and
# spreadsheets), and dedup writes its keys to expire a window after fetched_at: such a page is
# written already expired (and once made Redis refuse the statistics every later page needs).
# The crawls this system reads (news sites' live pages, or archives of such crawls replayed) are
# never older than 2000, so this refuses every zero time and no real fetch.
OLDEST_FETCH = datetime(2000, 1, 1, tzinfo=UTC)
_META = "<meta charset>"
# The pages.raw versions this worker reads, as RawPage's "schema" field takes them. A message that
# names another version of the contract is told from a malformed one: its fix is not the crawler's
# but an upgrade of the workers, then a replay of its offsets.
_READ_VERSIONS: tuple[str, ...] = get_args(RawPage.model_fields["schema_"].annotation)
_CONTRACT_NAME = "wirefeed.pages.raw/"
# The top-level names of pages.raw (the schema's, "schema" rather than "schema_").
_FIELD_NAMES = frozenset(field.alias or name for name, field in RawPage.model_fields.items())
# Left over in text json.loads read from strict UTF-8: it joins an escaped pair into its character.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
# Input echoed in a reason's detail (a content type, a charset label, a field name) is cut to
# this: the dead letter repeats the detail, and a dead letter must fit its topic.
_MAX_ECHO_CHARS = 100

# The WHATWG Encoding Standard's labels (https://encoding.spec.whatwg.org/#names-and-labels), each
# group with the Python codec that decodes it as browsers do. Browsers decode several with a
# superset, and pages rely on it: a page labelled GB2312 routinely contains GBK characters, one
# labelled ISO-8859-1 uses windows-1252 quotes, Shift_JIS and EUC-KR pages use Microsoft's
# extensions.
_WHATWG_ENCODINGS: tuple[tuple[str, str], ...] = (
    ("utf-8", "unicode-1-1-utf-8 unicode11utf8 unicode20utf8 utf-8 utf8 x-unicode20utf8"),
    ("cp866", "866 cp866 csibm866 ibm866"),
    ("iso8859-2", "csisolatin2 iso-8859-2 iso-ir-101 iso8859-2 iso88592 iso_8859-2 iso_8859-2:1987 l2 latin2"),
    ("iso8859-3", "csisolatin3 iso-8859-3 iso-ir-109 iso8859-3 iso88593 iso_8859-3 iso_8859-3:1988 l3 latin3"),
    ("iso8859-4", "csisolatin4 iso-8859-4 iso-ir-110 iso8859-4 iso88594 iso_8859-4 iso_8859-4:1988 l4 latin4"),
    ("iso8859-5", "csisolatincyrillic cyrillic iso-8859-5 iso-ir-144 iso8859-5 iso88595 iso_8859-5 iso_8859-5:1988"),
    (
        "iso8859-6",
        "arabic asmo-708 csiso88596e csiso88596i csisolatinarabic ecma-114 iso-8859-6 iso-8859-6-e iso-8859-6-i"
        " iso-ir-127 iso8859-6 iso88596 iso_8859-6 iso_8859-6:1987",
    ),
    (
        "iso8859-7",
        "csisolatingreek ecma-118 elot_928 greek greek8 iso-8859-7 iso-ir-126 iso8859-7 iso88597 iso_8859-7"
        " iso_8859-7:1987 sun_eu_greek",
    ),
    (
        "iso8859-8",
        "csiso88598e csisolatinhebrew hebrew iso-8859-8 iso-8859-8-e iso-ir-138 iso8859-8 iso88598 iso_8859-8"
        " iso_8859-8:1988 visual csiso88598i iso-8859-8-i logical",
    ),
    ("iso8859-10", "csisolatin6 iso-8859-10 iso-ir-157 iso8859-10 iso885910 l6 latin6"),
    ("iso8859-13", "iso-8859-13 iso8859-13 iso885913"),
    ("iso8859-14", "iso-8859-14 iso8859-14 iso885914"),
    ("iso8859-15", "csisolatin9 iso-8859-15 iso8859-15 iso885915 iso_8859-15 l9"),
    ("iso8859-16", "iso-8859-16"),
    ("koi8-r", "cskoi8r koi koi8 koi8-r koi8_r"),
    ("koi8-u", "koi8-ru koi8-u"),
    ("mac-roman", "csmacintosh mac macintosh x-mac-roman"),
    ("cp874", "dos-874 iso-8859-11 iso8859-11 iso885911 tis-620 windows-874"),
    ("cp1250", "cp1250 windows-1250 x-cp1250"),
    ("cp1251", "cp1251 windows-1251 x-cp1251"),
    (
        "cp1252",
        "ansi_x3.4-1968 ascii cp1252 cp819 csisolatin1 ibm819 iso-8859-1 iso-ir-100 iso8859-1 iso88591 iso_8859-1"
        " iso_8859-1:1987 l1 latin1 us-ascii windows-1252 x-cp1252",
    ),
    # As HTML reads it in a <meta>: its own decoder maps bytes to private-use characters, for
    # binary data, never for a page.
    ("cp1252", "x-user-defined"),
    ("cp1253", "cp1253 windows-1253 x-cp1253"),
    (
        "cp1254",
        "cp1254 csisolatin5 iso-8859-9 iso-ir-148 iso8859-9 iso88599 iso_8859-9 iso_8859-9:1989 l5 latin5"
        " windows-1254 x-cp1254",
    ),
    ("cp1255", "cp1255 windows-1255 x-cp1255"),
    ("cp1256", "cp1256 windows-1256 x-cp1256"),
    ("cp1257", "cp1257 windows-1257 x-cp1257"),
    ("cp1258", "cp1258 windows-1258 x-cp1258"),
    ("mac-cyrillic", "x-mac-cyrillic x-mac-ukrainian"),
    ("gb18030", "chinese csgb2312 csiso58gb231280 gb2312 gb_2312 gb_2312-80 gbk iso-ir-58 x-gbk gb18030"),
    ("big5hkscs", "big5 big5-hkscs cn-big5 csbig5 x-x-big5"),
    ("euc_jp", "cseucpkdfmtjapanese euc-jp x-euc-jp"),
    ("iso2022_jp", "csiso2022jp iso-2022-jp"),
    ("cp932", "csshiftjis ms932 ms_kanji shift-jis shift_jis sjis windows-31j x-sjis"),
    (
        "cp949",
        "cseuckr csksc56011987 euc-kr iso-ir-149 korean ks_c_5601-1987 ks_c_5601-1989 ksc5601 ksc_5601 windows-949",
    ),
    ("utf-16-be", "unicodefffe utf-16be"),
    ("utf-16-le", "csunicode iso-10646-ucs-2 ucs-2 unicode unicodefeff utf-16 utf-16le"),
)
_CODECS = {label: codec for codec, labels in _WHATWG_ENCODINGS for label in labels.split()}
# The standard's "replacement" encoding: browsers refuse to decode these (their escape sequences
# can hide markup from anything that reads the bytes as ASCII).
_REFUSED_LABELS = frozenset("csiso2022kr hz-gb-2312 iso-2022-cn iso-2022-cn-ext iso-2022-kr replacement".split())
# The bytes a <meta> was found in are ASCII-compatible, so HTML reads a <meta> naming UTF-16 as UTF-8.
_META_OVERRIDES = {"utf-16-le": "utf-8", "utf-16-be": "utf-8"}
# What ISO-8859-1, US-ASCII and windows-1252 decode with: HTTP clients report one of them for
# any page whose Content-Type names no charset.
_WEAK_CODEC = "cp1252"
# Detection chooses among the standard's encodings only: left free, it may answer EBCDIC or UTF-7.
_DETECTABLE = sorted(set(_CODECS.values()))
# Its single-byte encodings by the script they write (codecs' own names).
_SCRIPT_FAMILIES = tuple(
    frozenset(codecs.lookup(codec).name for codec in family.split())
    for family in (
        "cp1250 cp1252 cp1254 cp1257 cp1258 iso8859-2 iso8859-3 iso8859-4 iso8859-10 iso8859-13 iso8859-14"
        " iso8859-15 iso8859-16 mac-roman",
        "cp1251 cp866 iso8859-5 koi8-r koi8-u mac-cyrillic",
        "cp1253 iso8859-7",
        "cp1255 iso8859-8",
        "cp1256 iso8859-6",
    )
)
# UTF-8 that is not valid is read with U+FFFD for each invalid sequence when there are at most
# this many, and each is outweighed by this many valid non-ASCII characters (about 1% of them lost
# at most). Why: a CMS that cuts an excerpt inside a letter repeats it in the description,
# og:description, twitter:description, JSON-LD, sometimes the title: a handful of sequences. Bytes
# in another encoding labelled UTF-8 make nearly every non-ASCII character invalid (by accident,
# Persian in windows-1256, Thai or Shift_JIS make under one valid sequence for three invalid
# ones), and a page mixing two encodings makes one for each character of its legacy part: both stay
# dead letters, not text full of holes. Not 0.1%: a short article page (690 Arabic letters) with
# one cut letter is 0.15%.
_MAX_INVALID_UTF8 = 8
_VALID_PER_INVALID_UTF8 = 100
_ASCII_BYTES = bytes(range(0x80))
# Detection scores encodings by how chaotic their text looks, and orders those it finds equally
# good by name: windows-1250 came before the windows-1252 of a French page, the windows-1254 of a
# Turkish one and the ISO-8859-2 of a Polish one, windows-1253 before the ISO-8859-7 of a Greek
# one, all as mojibake. Encodings within this much chaos of its best are told apart by their text.
_CHAOS_TIE = 0.01
# Share of a reading's letters beyond ASCII that its language's alphabet must have for the reading
# to be of that language at all (CLDR's alphabets miss a few rare letters: Polish ć, French ù).
_MIN_IN_ALPHABET = 0.5
_HTML_LANG = re.compile(rb"""<html\b[^>]*?\slang\s*=\s*["']?\s*([A-Za-z]{2,3}(?:[-_][A-Za-z0-9]+)*)""", re.IGNORECASE)
# What is read of a page to judge a reading of it: the first this many bytes of its text outside
# markup, scripts and styles (see _judged_bytes). Not the first bytes of the page: a page's head of
# scripts and styles is often longer (a Spanish page's first 100,000 characters held two words
# beyond ASCII, é and í, the same in windows-1250, which came first by name, and its ñ read as ń).
_JUDGED_BYTES = 100_000
# ... and detection reads them, not the whole page, when they hold at least this many bytes beyond
# ASCII (ten words of Arabic or Cyrillic; the whole page otherwise, whose links and attributes say
# more about a shorter text's encoding).
_MIN_JUDGED_BYTES = 64
# ... read in this much of the page at most: it is read on the event loop, and a page's head is
# rarely over a few hundred kilobytes.
_SCANNED_BYTES = 1_000_000
# A run of anything but white space, ASCII digits and punctuation, and the letters, punctuation
# and full-width forms of scripts written without spaces between words (each is a word of its own).
_WORD = regex.compile(r"[^\s!-@\[-`{-~\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}\p{Thai}\u3000-\u303f\uff00-\uffef]+")
_IDENTIFIED_CHARS = 3000
# Unicode categories no word has inside it: symbols (±, ¶'s neighbours ¤ ¦, box drawing), superscript
# digits, C1 controls and private use. Bytes read in the wrong single-byte encoding turn letters
# into them (ISO-8859-2's ą ś ź as windows-1250's ± ¶ ź, KOI8-R's letters as box drawing).
_NOT_IN_WORDS = frozenset({"Sm", "Sc", "Sk", "So", "No", "Cc", "Co", "Cn"})
# The scripts of the encodings detection chooses among, for telling a word that mixes two.
_SCRIPTS = tuple(regex.compile(rf"\p{{{script}}}") for script in ("Latin", "Cyrillic", "Greek", "Arabic", "Hebrew"))
# A reading with more of its words broken than this (and at least _MAX_BROKEN_WORDS) is no text:
# mojibake a newsroom would publish, so the page is a dead letter.
_MAX_BROKEN_SHARE = 0.02
_MAX_BROKEN_WORDS = 3


@dataclass(frozen=True, slots=True)
class DecodedPage:
    page: RawPage
    html: str
    encoding: str
    html_bytes: int
    # characters of the page replaced by U+FFFD: invalid UTF-8 sequences in html_b64, lone
    # surrogates in html (0: the page was text as it came)
    replaced: int = 0

    @property
    def effective_url(self) -> str:
        return str(self.page.final_url or self.page.url)


def decode_message(
    value: bytes | None, *, max_html_bytes: int, sent_at_ms: int | None = None
) -> StageResult[DecodedPage]:
    """The crawled page in a ``pages.raw`` record; ``sent_at_ms`` is the record's timestamp."""
    if not value:
        return Failed(STAGE, "empty_message", "EmptyMessage", "the message value is empty")
    # json.loads(bytes) would also read UTF-16 and UTF-32 (told by NUL bytes in the first four, as
    # RFC 4627 did), and surrogates encoded one by one (CESU-8, Java's modified UTF-8): neither is
    # the UTF-8 the contract names, and a lone half left in a string breaks whatever reads it.
    if b"\x00" in value[:4]:
        return Failed(
            STAGE, "not_utf8", "UnicodeDecodeError", "NUL bytes in the first four: UTF-16 or UTF-32, not UTF-8 JSON"
        )
    try:
        # "-sig": a byte-order mark is skipped, as json.loads(bytes) and RFC 8259 allow
        text = value.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return Failed.from_exception(STAGE, "not_utf8", exc)
    try:
        payload = json.loads(text, object_pairs_hook=_without_conflicting_names)
    except _ConflictingName as exc:
        return Failed(STAGE, "schema", "ConflictingName", str(exc))
    except (ValueError, RecursionError) as exc:
        # ValueError: not JSON, or an integer of over 4300 digits (Python's limit);
        # RecursionError: arrays or objects nested thousands deep.
        return Failed.from_exception(STAGE, "not_json", exc)
    if not isinstance(payload, dict):
        return Failed(STAGE, "not_an_object", "TypeError", f"expected a JSON object, got {type(payload).__name__}")
    result = _page_in(payload, max_html_bytes=max_html_bytes, sent_at_ms=sent_at_ms)
    url = payload.get("url")
    if isinstance(result, Kept) or not isinstance(url, str):
        return result
    # for its dead letter: a record without a key is named by it without parsing the value again,
    # which takes seconds for a hostile one of 32 MiB
    return replace(result, url=url)


class _ConflictingName(ValueError):
    pass


def _without_conflicting_names(pairs: list[tuple[str, object]]) -> dict[str, object]:
    """A JSON object, refused when a name in it has two different values: JSON keeps the last one
    without a word, and {"charset": "windows-1256", "charset": "windows-1251"} read the Arabic page
    as Cyrillic mojibake (as two spellings of a header are refused: a wrong charset is mojibake)."""
    result: dict[str, object] = {}
    for name, value in pairs:
        if name in result and result[name] != value:
            raise _ConflictingName(f"{_echo(name)!r} appears twice in one object, with different values")
        result[name] = value
    return result


def _page_in(payload: dict[str, object], *, max_html_bytes: int, sent_at_ms: int | None) -> StageResult[DecodedPage]:
    """The page a pages.raw message read as JSON holds."""
    if (version := _unsupported_version(payload)) is not None:
        return Failed(
            STAGE, "unsupported_version", "UnsupportedVersion",
            f"schema {_echo(version)!r} is a version this worker does not read; it reads {', '.join(_READ_VERSIONS)}",
        )
    if (too_many := _too_many_entries(payload)) is not None:
        return Failed(STAGE, "schema", "ValidationError", too_many)
    try:
        page = RawPage.model_validate(payload)
    except ValidationError as exc:
        return Failed(STAGE, "schema", "ValidationError", summarise_validation_error(exc))
    if page.fetched_at < OLDEST_FETCH:
        return Failed(
            STAGE, "fetched_in_past", "ImplausibleFetchTime",
            f"fetched_at {page.fetched_at.isoformat()} is before {OLDEST_FETCH.isoformat()}, earlier than any crawl"
            " this system reads: a zero or default time the crawler did not set",
        )
    if sent_at_ms is not None:
        try:
            sent_at = datetime.fromtimestamp(sent_at_ms / 1000, UTC)
        except (OverflowError, OSError, ValueError):
            # Kafka's CreateTime is whatever the producer set (microseconds, a year past 9999)
            return Failed(
                STAGE, "bad_record_timestamp", "ImplausibleRecordTime",
                f"the record's timestamp {sent_at_ms} ms is not a time (the producer's clock or its unit is wrong):"
                " fetched_at cannot be checked against it",
            )
        if page.fetched_at - sent_at > _MAX_CLOCK_SKEW:
            return Failed(
                STAGE, "fetched_in_future", "ClockSkew",
                f"fetched_at {page.fetched_at.isoformat()} is after the record was sent ({sent_at.isoformat()}): "
                "the crawler's clock is wrong",
            )

    if not 200 <= page.status < 300:
        return Dropped(STAGE, "http_status", f"HTTP status {page.status}", page=page)
    content_type = page.content_type or page.headers.get("content-type")
    if content_type and not content_type.split(";")[0].strip().lower().startswith(_HTML_TYPES):
        return Dropped(STAGE, "not_html", f"content type {_echo(content_type)!r}")

    replaced = 0
    if page.html is not None:
        html, encoding = page.html, "utf-8"
        try:
            size = len(html.encode("utf-8"))
        except UnicodeEncodeError:
            # U+FFFD is three bytes in UTF-8, as the surrogate it replaces was in the message
            html, replaced = _LONE_SURROGATE.subn("\ufffd", html)
            size = len(html.encode("utf-8"))
            log.warning("%s: %d lone UTF-16 surrogates in html replaced by U+FFFD", _echo(str(page.url)), replaced)
        if size > max_html_bytes:
            return Dropped(STAGE, "too_large", f"{size} bytes of HTML > limit {max_html_bytes}")
    else:
        if (page.html_b64 or "").endswith("==="):
            # strict mode takes padding after a whole last group ("PHA+====")
            return Failed(STAGE, "bad_base64", "Error", "more than two padding characters (=) at the end")
        try:
            # binascii's strict mode validates in C; base64.b64decode(validate=True) runs a regex
            # over the whole page first and cost a fifth of the worker's CPU.
            raw = binascii.a2b_base64(page.html_b64 or "", strict_mode=True)
        except ValueError as exc:  # binascii.Error, or a plain ValueError for non-ASCII text
            return Failed.from_exception(STAGE, "bad_base64", exc)
        size = len(raw)
        if size > max_html_bytes:
            return Dropped(STAGE, "too_large", f"{size} bytes of HTML > limit {max_html_bytes}")
        decoded = _decode_bytes(raw, page.charset, _content_type_charset(page), page.headers.get("content-language"))
        if isinstance(decoded, Failed):
            return decoded
        html, encoding, replaced = decoded
        if replaced:
            log.warning("%s: %d invalid UTF-8 sequences replaced by U+FFFD", _echo(str(page.url)), replaced)

    if not html.strip():
        return Dropped(STAGE, "empty_html", "the page has no content")
    start = html[:_SNIFFED_CHARS]
    if len(_CONTROL.findall(start)) > _MAX_CONTROL_SHARE * len(start):
        return Failed(
            STAGE, "binary_content", "BinaryContent",
            f"control characters (NUL, ...) make up over {_MAX_CONTROL_SHARE:.0%} of the page's start: not HTML text",
        )
    if other := _other_document(html):
        return Dropped(STAGE, "not_html", f"{other}, not a page")
    if nuls := html.count("\x00"):
        # a stray NUL in a text page (a CMS's bug): U+FFFD, as browsers show it
        html, replaced = html.replace("\x00", "\ufffd"), replaced + nuls
        log.warning("%s: %d NUL characters replaced by U+FFFD", _echo(str(page.url)), nuls)
    return Kept(DecodedPage(page=page, html=html, encoding=encoding, html_bytes=size, replaced=replaced))


def _other_document(html: str) -> str | None:
    """What the text is when it is a feed or JSON rather than a page (a crawler that sent it as
    text/html, or with no content type): its entries would be glued into one "article"."""
    stripped = html[:_SNIFFED_CHARS].lstrip("\ufeff \t\r\n")
    if stripped[:1] in ("{", "["):
        try:  # a page may start with a template's leftovers ("{{ header }}", "[if IE]")
            json.loads(html.lstrip("\ufeff"))
        except ValueError:
            return None
        except RecursionError:
            return "a JSON document (nested deeper than the parser reads)"
        return "a JSON document"
    if (root := _root_element(stripped)) and root.lower() in _FEED_ROOTS:
        return f"an RSS or Atom feed (root element <{root}>)"
    return None


def _root_element(text: str) -> str | None:
    """The name of the first element of ``text``, after its prolog."""
    at = 0
    while True:
        while at < len(text) and text[at].isspace():
            at += 1
        if (item := _PROLOG_ITEM.match(text, at)) is None:
            break
        at = item.end()
    element = _ELEMENT_NAME.match(text, at)
    return element.group(1) if element else None


def decode_html_bytes(
    raw: bytes, declared: str | None, content_type_charset: str | None = None, content_language: str | None = None
) -> tuple[str, str] | Failed:
    """The page's bytes as text and the Python name of the codec that decoded them."""
    decoded = _decode_bytes(raw, declared, content_type_charset, content_language)
    return decoded if isinstance(decoded, Failed) else decoded[:2]


def _decode_bytes(
    raw: bytes, declared: str | None, content_type_charset: str | None, content_language: str | None = None
) -> tuple[str, str, int] | Failed:
    """As decode_html_bytes, with the number of invalid UTF-8 sequences replaced by U+FFFD."""
    for bom, encoding in _BOMS:
        if raw.startswith(bom):
            body = raw[len(bom) :]
            if (text := _strict(body, encoding)) is not None:
                return text, encoding, 0
            damaged = _damaged_utf8(body) if encoding == "utf-8" else None
            if damaged is not None and damaged.tolerable:
                return damaged.text, encoding, damaged.invalid
            return _mismatch(encoding, "byte-order mark")
    if not raw.isascii() and (text := _strict(raw, "utf-8")) is not None:
        return text, "utf-8", 0
    http = ((declared, "declared by the crawler"), (content_type_charset, "Content-Type"))
    candidates, ignored = _candidates(raw, http)
    damaged = None
    # Not valid UTF-8 (else it would have won above): read as UTF-8 all the same when only a few
    # sequences are invalid (an excerpt cut inside a letter), whatever the labels say, as valid
    # UTF-8 is: a page re-saved as UTF-8 keeps its old <meta charset>, which decoded it strictly,
    # as mojibake. A page in a legacy encoding is no such UTF-8: its letters beyond ASCII make
    # invalid sequences by the hundred.
    if not raw.isascii():
        damaged = _damaged_utf8(raw)
        if damaged.tolerable:
            return damaged.text, "utf-8", damaged.invalid
    for candidate in candidates:
        if candidate.weak:  # sorted last: no label that says more decodes the bytes
            if (decoded := _weak_label_or_detected(raw, content_language)) is not None:
                return decoded if isinstance(decoded, Failed) else (*decoded, 0)
            break
        if candidate.codec and (text := _strict(raw, candidate.codec)) is not None:
            return text, candidate.codec, 0
    if candidates:
        first = candidates[0]
        if first.codec is None:
            return Failed(
                STAGE,
                "unsupported_charset",
                "LookupError",
                f"{first.label!r} ({first.origin}) is an encoding browsers refuse to decode (WHATWG 'replacement'),"
                " and no other declared charset decodes the bytes",
            )
        return _mismatch(first.label, first.origin)
    if raw.isascii():
        return raw.decode("ascii"), "ascii", 0
    if (typographic := _typographic(_strict(raw, _WEAK_CODEC))) is not None:
        return typographic, _WEAK_CODEC, 0
    reading = _best_reading(raw, _detect(raw), content_language)
    # None too for an encoding of the page's text that the rest of its bytes are not in
    text = None if reading is None or reading.garbled else _strict(raw, reading.codec)
    if reading is None or (text is None and not reading.garbled):
        # Any bytes decode in some single-byte encoding: what fails is finding one in which they
        # read as text.
        as_utf8 = f"; {damaged.summary}" if damaged is not None and damaged.valid else ""
        unknown = f" (unknown charset labels ignored: {', '.join(map(repr, ignored))})" if ignored else ""
        return Failed(
            STAGE, "undetectable_charset", "UnicodeDecodeError",
            "no charset label browsers know, and detection found no encoding in which these bytes read as text"
            f"{as_utf8}{unknown}",
        )
    if text is None:
        return _garbled(reading)
    return text, reading.codec, 0


@dataclass(frozen=True, slots=True)
class _DamagedUtf8:
    """Bytes decoded as UTF-8 with U+FFFD for each invalid sequence (as browsers decode them,
    WHATWG's 'maximal subpart' rule, which Python follows), and how many of their non-ASCII
    characters are valid and invalid."""

    text: str
    invalid: int
    valid: int

    @property
    def tolerable(self) -> bool:
        return 0 < self.invalid <= _MAX_INVALID_UTF8 and self.valid >= _VALID_PER_INVALID_UTF8 * self.invalid

    @property
    def summary(self) -> str:
        return (
            f"as UTF-8, {self.invalid} invalid sequences against {self.valid} valid non-ASCII characters;"
            f" U+FFFD replaces at most {_MAX_INVALID_UTF8}, each against {_VALID_PER_INVALID_UTF8} valid"
        )


def _damaged_utf8(raw: bytes) -> _DamagedUtf8:
    text = raw.decode("utf-8", errors="replace")
    # a valid EF BF BD is a U+FFFD the page itself holds; no invalid sequence takes part of one
    invalid = text.count("\ufffd") - raw.count(b"\xef\xbf\xbd")
    ascii_chars = len(raw) - _beyond_ascii(raw)
    return _DamagedUtf8(text, invalid, len(text) - ascii_chars - invalid)


def _weak_label_or_detected(raw: bytes, content_language: str | None) -> tuple[str, str] | Failed | None:
    """The bytes as windows-1252, which a weak label names, unless detection finds an encoding
    that reads them better (None: neither decodes them). The label is as likely an HTTP client's
    default as the server's word. Detection cannot tell Latin encodings apart by a few accented
    letters, and finds windows-1252 as good as its own pick for a French or German page, so there
    the label decides; a page in another script reads as nonsense in windows-1252, which it sees."""
    text = _strict(raw, _WEAK_CODEC)
    if raw.isascii():
        return text, _WEAK_CODEC
    if (typographic := _typographic(text)) is not None:
        return typographic, _WEAK_CODEC
    matches = _detect(raw)
    best = matches.best()
    if best is None or any(
        _WEAK_CODEC in match.could_be_from_charset for match in matches if match.chaos <= best.chaos
    ):
        return (text, _WEAK_CODEC) if text is not None else None
    reading = _best_reading(raw, matches, content_language)
    if reading is None or reading.garbled:
        return _garbled(reading) if reading else None
    # None when the rest of the page's bytes are not in the encoding of its text
    decoded = _strict(raw, reading.codec)
    return None if decoded is None else (decoded, reading.codec)


def _detect(raw: bytes, among: list[str] = _DETECTABLE) -> charset_normalizer.CharsetMatches:
    """The encodings that read the page's text outside markup (_judged_bytes; the whole page when
    that holds fewer than _MIN_JUDGED_BYTES bytes beyond ASCII) as text. Not the whole page:
    detection samples it, and a head of ASCII scripts and styles reads as well in every single-byte
    encoding, so the first by name won: an Arabic page in windows-1256 with 4 KB of analytics
    scripts in its head came out as ISO-8859-16, a Russian one in windows-1251 as ISO-8859-10."""
    judged = _judged_bytes(raw)
    # a short text says less than the page's other words beyond ASCII (its links, its attributes)
    return charset_normalizer.from_bytes(raw if _beyond_ascii(judged) < _MIN_JUDGED_BYTES else judged, cp_isolation=among)


def _beyond_ascii(data: bytes) -> int:
    """How many of ``data``'s bytes are beyond ASCII."""
    return len(data.translate(None, _ASCII_BYTES))


@dataclass(frozen=True, slots=True)
class _Reading:
    """The page's bytes read in one encoding detection found, and how its words read: how many
    hold letters, how many of those are broken (letters of two scripts, or a symbol, in one word),
    and what share of its letters beyond ASCII the alphabet of the page's language (declared,
    else the one it reads as) has."""

    match: charset_normalizer.CharsetMatch
    codec: str
    words: int
    broken: int
    language: str | None
    in_alphabet: float
    letters: int

    @property
    def of_language(self) -> bool:
        return self.in_alphabet >= _MIN_IN_ALPHABET

    @property
    def garbled(self) -> bool:
        return self.broken >= _MAX_BROKEN_WORDS and self.broken > _MAX_BROKEN_SHARE * self.words


def _best_reading(
    raw: bytes, matches: charset_normalizer.CharsetMatches, content_language: str | None
) -> _Reading | None:
    """Detection's best encoding, unless another it finds about as good, or another of their
    script it did not answer, reads the page better: fewer broken words, then more of its letters
    in the alphabet of the page's declared language (else of the language the best reading reads
    as). Equals keep detection's order."""
    best = matches.best()
    if best is None:
        return None
    close = [best] + [match for match in matches if match is not best and match.chaos <= best.chaos + _CHAOS_TIE]
    judged = _judged_bytes(raw)
    # Detection skips an encoding like one whose text it found chaotic: ISO-8859-2 went with
    # windows-1250, which reads Polish ą ś as ± ¶, and a Polish page was left to ISO-8859-10's ķ.
    # So the others of the script of those it found are asked of it one by one.
    answered = {codecs.lookup(name).name for match in matches for name in (match.encoding, *match.could_be_from_charset)}
    found_close = {codecs.lookup(match.encoding).name for match in close}
    close += [
        match
        for family in _SCRIPT_FAMILIES
        if found_close & family
        for codec in sorted(family - answered)
        if (match := _detect(raw, among=[codec]).best()) is not None
        and match.chaos <= best.chaos + _CHAOS_TIE
    ]

    words = [_words(match, judged) for match in close]

    def readings_as(language: str | None) -> list[_Reading]:
        first = _reading(best, words[0], language)
        return [first] + [_reading(match, of, first.language) for match, of in zip(close[1:], words[1:], strict=True)]

    declared = _declared_language(raw, content_language)
    readings = readings_as(declared)
    if len(readings) == 1:
        return readings[0]
    if declared is not None and not any(reading.of_language for reading in readings):
        # No reading is written in the declared language: the template's, not the article's (a
        # Polish page with lang="en", whose ś read as ISO-8859-10's ķ as well as ISO-8859-2's ś),
        # so the language the text reads as judges them.
        readings = readings_as(None)

    # A reading whose letters are mostly not the language's is another script's (a Greek page in
    # windows-1251 is Cyrillic, and reads with fewer broken words than in its own encoding, whose
    # sign Ά is a pilcrow in the other Greek one), however whole its words look. Last, among
    # readings of the language, the one with more letters: two encodings of one script differ in a
    # few signs, and a letter read in the wrong one is a symbol (ISO-8859-7's Ά is windows-1253's
    # ¶, windows-1253's Ά its ’). Not among others: a sign read as another script's letter is more
    # letters too (an Italian ’ or « in ISO-8859-3).
    def rank(reading: _Reading) -> tuple[bool, int, float, int]:
        return (
            not reading.of_language,
            reading.broken,
            -reading.in_alphabet,
            -reading.letters if reading.of_language else 0,
        )

    return min(readings, key=rank)


def _judged_bytes(raw: bytes) -> bytes:
    """The first _JUDGED_BYTES of the text outside markup in the first _SCANNED_BYTES of the
    page, the same bytes in every encoding detection chooses among here: their markup is ASCII,
    and no byte of a multi-byte character is a "<" or a ">" (Latin-1 reads each byte as one
    character, to find the markup; ISO-2022-JP, whose bytes are all ASCII, is never detected, as
    a page of ASCII bytes is read as ASCII). Its end may cut a character: see _words."""
    return _outside_markup(raw[:_SCANNED_BYTES].decode("latin-1")).encode("latin-1")[:_JUDGED_BYTES]


@dataclass(frozen=True, slots=True)
class _Words:
    """The words beyond ASCII of a page's judged text read in one encoding: those holding letters,
    how many of them are broken, and their letters beyond ASCII."""

    words: list[str]
    lettered: int
    broken: int
    letters: list[str]


def _words(match: charset_normalizer.CharsetMatch, judged: bytes) -> _Words:
    # A character cut at the end of the judged bytes is held back, not replaced: a U+FFFD would
    # be a broken word in each multi-byte reading.
    decoder = codecs.getincrementaldecoder(match.encoding)(errors="replace")
    # NFC: a tone mark written apart (Vietnamese in windows-1258) is one letter with its vowel
    text = unicodedata.normalize("NFC", decoder.decode(judged, final=False))
    words = [word for word in _WORD.findall(text) if not word.isascii()]
    lettered = [word for word in words if any(char.isalpha() for char in word)]
    # A mark left over is a letter of no alphabet: windows-1258 reads a Spanish ò as a dot below
    # the letter before it, which hid the ò from the count, and the Spanish page read better so.
    letters = [
        char for word in lettered for char in word.lower()
        if not char.isascii() and (char.isalpha() or unicodedata.category(char) == "Mn")
    ]
    return _Words(words, len(lettered), sum(1 for word in lettered if _broken(word)), letters)


def _reading(match: charset_normalizer.CharsetMatch, words: _Words, language: str | None) -> _Reading:
    """``match``, whose judged text has ``words``, judged as text of ``language`` (None: of the
    language it reads as)."""
    if language is None and words.words:
        # imported here: the language model and trafilatura take seconds to load, and the
        # readiness probe imports this module (only an undeclared legacy page needs them)
        from workers.stages.extract import language_probabilities

        probabilities = language_probabilities(" ".join(words.words)[:_IDENTIFIED_CHARS])
        language = max(probabilities, key=probabilities.__getitem__)
    alphabet = _alphabet(language) if language else frozenset()
    letters = words.letters
    in_alphabet = sum(1 for char in letters if char in alphabet) / len(letters) if letters else 0.0
    return _Reading(
        match, codecs.lookup(match.encoding).name, words.lettered, words.broken, language, in_alphabet, len(letters)
    )


# What opens an element whose content is not text, and what closes it, by the opener's group
# (not by its text: "<ſtyle" opens a style as the pattern reads it, and lower-cased it is no key).
_OPENER = re.compile(r"(<!--)|(<script\b)|(<style\b)", re.IGNORECASE)
_CLOSERS = {
    1: re.compile(r"-->"),
    2: re.compile(r"</script\s*>", re.IGNORECASE),
    3: re.compile(r"</style\s*>", re.IGNORECASE),
}
_TAG_END = re.compile(">")
# Text and tags up to the next opener or the next "<" that no ">" follows (each tag ends at the
# first ">" after its "<", so nothing backtracks).
_TEXT_AND_TAGS = re.compile(r"(?:[^<]*<(?!!--|script\b|style\b)[^>]*>)*", re.IGNORECASE)
_TAG = re.compile(r"<[^>]*>")


def _outside_markup(text: str) -> str:
    """``text`` with its comments, scripts, styles and tags each replaced by a space, as the
    pattern of them would (``<script\\b.*?</script\\s*>|...|<!--.*?-->|<[^>]*>``): one that is not
    closed is a tag up to the next ">", else text. In linear time: no closer is looked for again
    before a position it was found after (the pattern scanned the rest of the page again at each
    unclosed comment: 2,000 of them in 78 KB, 3 s of a blocked event loop), and the runs of plain
    tags between openers are replaced by the regular expression engine, not a loop in Python."""
    found: dict[re.Pattern[str], tuple[int, int] | None] = {}  # closer -> its next (start, end), None: no more

    def closed_at(closer: re.Pattern[str], after: int) -> int:
        if closer not in found or ((span := found[closer]) is not None and span[0] < after):
            match = closer.search(text, after)
            found[closer] = match.span() if match else None
        span = found[closer]
        return span[1] if span is not None else -1

    parts: list[str] = []
    at = 0
    while True:
        tags_end = _TEXT_AND_TAGS.match(text, at).end()  # type: ignore[union-attr]  # matches empty at worst
        parts.append(_TAG.sub(" ", text[at:tags_end]))
        at = tags_end
        if (start := text.find("<", at)) == -1:
            break
        # an opener, or a "<" no ">" follows
        opener = _OPENER.match(text, start)
        end = closed_at(_CLOSERS[opener.lastindex or 0], opener.end()) if opener else -1
        if end == -1 and (end := closed_at(_TAG_END, start + 1)) == -1:
            break
        parts.append(text[at:start])
        parts.append(" ")
        at = end
    parts.append(text[at:])
    return "".join(parts)


@functools.lru_cache(maxsize=256)
def _alphabet(language: str) -> frozenset[str]:
    """The letters beyond ASCII a language writes with, as CLDR spells its own names of languages,
    territories, months and days in it (empty: a language CLDR does not know)."""
    try:
        locale = Locale.parse(language)
        names = [*locale.languages.values(), *locale.territories.values()]
        names += [str(name) for width in ("wide", "abbreviated") for name in locale.months["format"][width].values()]
        names += [str(name) for name in locale.days["format"]["wide"].values()]
    except (UnknownLocaleError, ValueError):
        return frozenset()
    finally:
        _forget_locale_data()
    return frozenset(char for char in " ".join(names).lower() if char.isalpha() and not char.isascii())


def _forget_locale_data() -> None:
    """babel keeps each locale's CLDR data it loads for the life of the process (about 450 KB a
    language: 140 MB once a long-running worker has met every language), with no public way to
    let go of it; the alphabets, cached above, are all this process reads of it."""
    with localedata._cache_lock:
        localedata._cache.clear()


def _broken(word: str) -> bool:
    """Whether a word holds what no word of any language holds: a symbol among its letters, or
    letters of two scripts (Latin-1 letters in a Cyrillic word)."""
    if any(not char.isascii() and unicodedata.category(char) in _NOT_IN_WORDS for char in word):
        return True
    return sum(1 for script in _SCRIPTS if script.search(word)) > 1


def _declared_language(raw: bytes, content_language: str | None) -> str | None:
    """The language the page declares (Content-Language, else ``<html lang>``), as a primary subtag."""
    declared = content_language.split(",")[0].strip() if content_language else None
    if not declared and (match := _HTML_LANG.search(raw[:8192])):
        declared = match.group(1).decode("ascii")
    if not declared:
        return None
    from workers.stages.metadata import language_code  # imported here: see _reading

    return language_code(declared, fallback=re.split(r"[-_]", declared)[0])


def _garbled(reading: _Reading) -> Failed:
    return Failed(
        STAGE, "undetectable_charset", "UnicodeDecodeError",
        f"no charset label browsers know, and the best encoding detection found, {reading.codec}, reads"
        f" {reading.broken} of the page's {reading.words} words as mojibake (letters of two scripts, or"
        " symbols, in one word)",
    )


@dataclass(frozen=True, slots=True)
class _Charset:
    """A charset label the page came with, where it came from, and the codec browsers decode it
    with (None: a label they refuse to decode)."""

    label: str
    origin: str
    codec: str | None

    @property
    def weak(self) -> bool:
        return self.codec == _WEAK_CODEC and self.origin != _META


def _candidates(raw: bytes, http: Iterable[tuple[str | None, str]]) -> tuple[list[_Charset], list[str]]:
    """The charsets to try, in order: the declared ones, then the first <meta> label browsers
    know, a weak declared one last; and the labels ignored, as browsers ignore them."""
    labels = [(label, origin) for label, origin in http if label]
    labels += [(label, _META) for label in _meta_charsets(raw[:8192])]
    found: list[_Charset] = []
    ignored: list[str] = []
    for label, origin in labels:
        charset = _charset(label, origin)
        if charset is None:
            ignored.append(_echo(label))
            continue
        found.append(charset)
        if origin == _META:
            break
    return sorted(found, key=lambda charset: charset.weak), ignored


def _meta_charsets(head: bytes) -> list[str]:
    """The charset labels of the <meta> tags in ``head``, in order; none in a comment (a template's
    commented-out tag), none from another attribute ("description" content naming a charset)."""
    labels: list[str] = []
    at = 0
    while (start := head.find(b"<", at)) != -1:
        if head.startswith(b"<!--", start):
            if (end := head.find(b"-->", start + 4)) == -1:
                break
            at = end + 3
            continue
        at = start + 1
        if (tag := _META_TAG.match(head, start)) is None:
            continue
        attributes: dict[bytes, bytes] = {}
        for attribute in _ATTRIBUTE.finditer(tag.group(1)):
            value = next((v for v in attribute.group(2, 3, 4) if v is not None), b"")
            attributes.setdefault(attribute.group(1).lower(), value)
        if b"charset" in attributes:
            value = attributes[b"charset"]
        elif attributes.get(b"http-equiv", b"").strip().lower() == b"content-type" and (
            found := re.search(rb"charset\s*=", attributes.get(b"content", b""), re.IGNORECASE)
        ):
            value = attributes[b"content"][found.end() :]
        else:
            continue
        if label := _LABEL.match(value):
            labels.append(label.group(1).decode("ascii"))
        at = tag.end()
    return labels


def _charset(label: str, origin: str) -> _Charset | None:
    # quotes too: crawlers copy a Content-Type parameter as it was written
    name = label.strip(" \t\n\f\r\"'").lower()
    if name in _REFUSED_LABELS:
        return _Charset(_echo(label), origin, None)
    codec = _CODECS.get(name)
    if codec is None:
        return None
    return _Charset(_echo(label), origin, _META_OVERRIDES.get(codec, codec) if origin == _META else codec)


def _content_type_charset(page: RawPage) -> str | None:
    """The charset parameter of the page's Content-Type: the field, else the header."""
    for content_type in (page.content_type, page.headers.get("content-type")):
        if content_type and (match := _CONTENT_TYPE_CHARSET.search(content_type)):
            return match.group(1)
    return None


def _too_many_entries(payload: dict[str, object]) -> str | None:
    """Why the message has more fields or headers than pages.raw allows, if it has. Pydantic
    checks every one, building an error for each bad one, before it counts them: two million
    headers in a 32 MiB message held the event loop for 20 s."""
    if len(payload) > len(_FIELD_NAMES):
        unknown = ", ".join(repr(_echo(name)) for name in islice((n for n in payload if n not in _FIELD_NAMES), 3))
        return f"<root>: {len(payload)} fields, more than the {len(_FIELD_NAMES)} pages.raw has (unknown: {unknown}…)"
    headers = payload.get("headers")
    if isinstance(headers, dict) and len(headers) > MAX_HEADERS:
        return f"headers: {len(headers)} headers, more than the {MAX_HEADERS} pages.raw allows"
    return None


def _unsupported_version(payload: dict[str, object]) -> str | None:
    """The version of pages.raw the message names when this worker does not read it. Any other
    value of the field (not a version of this contract) is a schema error like any malformed field."""
    named = payload.get("schema")
    if isinstance(named, str) and named.startswith(_CONTRACT_NAME) and named not in _READ_VERSIONS:
        return named
    return None


def _strict(raw: bytes, codec: str) -> str | None:
    try:
        return raw.decode(codec, _C1_FOR_UNASSIGNED if codec in _WINDOWS_SINGLE_BYTE else "strict")
    except UnicodeDecodeError:
        return None


# Python's windows-125x and windows-874 codecs leave a few bytes of 0x80-0x9F unassigned (0x81,
# 0x8D, 0x8F, 0x90, 0x9D in windows-1252); the standard's decoders, and so browsers, read each as
# the C1 control of its number. A page labelled windows-1252 with one stray 0x81 is read as
# browsers show it, not dead-lettered as not being windows-1252.
_WINDOWS_SINGLE_BYTE = frozenset({"cp874", *(f"cp{n}" for n in range(1250, 1259))})
_C1_FOR_UNASSIGNED = "wirefeed-c1-for-unassigned"


def _c1_for_unassigned(error: UnicodeError) -> tuple[str, int]:
    if not isinstance(error, UnicodeDecodeError):
        raise error
    unassigned = error.object[error.start : error.end]
    if not all(0x80 <= byte <= 0x9F for byte in unassigned):
        raise error
    return "".join(map(chr, unassigned)), error.end


codecs.register_error(_C1_FOR_UNASSIGNED, _c1_for_unassigned)


# A page whose only characters beyond ASCII are windows-1252's typographic signs (’ “ ” – — € …
# © ° ½, the soft hyphen), each standing alone or with one or two others (“‘ ’”), is English or another text that
# writes with ASCII letters: read in any other encoding those bytes turn into letters inside its
# words ("wasnít", "Ä5 per litre", "Talks resumed Ц and"), which detection scores as well on a
# short page. A legacy page of another script has letters beyond ASCII in windows-1252 (its letters
# are bytes from 0xC0 up), and the two-byte encodings of East Asia make runs of them.
_MAX_SIGN_RUN = 3
_SIGN_CATEGORIES = frozenset("PSNZ")


def _typographic(text: str | None) -> str | None:
    """``text`` (the bytes read as windows-1252, None when they are not) if it is such a page, else
    None. A byte windows-1252 leaves unassigned, read as a C1 control, is no sign."""
    if text is None:
        return None
    run = 0
    for char in text:
        if char.isascii():
            run = 0
            continue
        run += 1
        if run > _MAX_SIGN_RUN or (unicodedata.category(char)[0] not in _SIGN_CATEGORIES and char != "\xad"):
            return None
    return text


def _mismatch(charset: str, origin: str) -> Failed:
    return Failed(
        STAGE,
        "charset_mismatch",
        "UnicodeDecodeError",
        f"the bytes are not valid {charset} ({origin}), and no other declared charset decodes them",
    )


def _echo(value: str) -> str:
    return value if len(value) <= _MAX_ECHO_CHARS else value[:_MAX_ECHO_CHARS] + "…"


def summarise_validation_error(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(_echo(str(part)) for part in e['loc']) or '<root>'}: {_echo(e['msg'])}" for e in exc.errors()[:10]
    )
