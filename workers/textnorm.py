"""Text normalisation and tokenising for *matching* (deduplication, stories), never for display.

Three layers, each pure and deterministic (the same text gives the same output in every process,
on every worker, on every replay):

* :func:`normalize` folds the variation that carries no meaning for matching: Unicode NFKC,
  case folding, accents of Latin/Greek/Cyrillic, every decimal digit to ASCII, the Arabic
  orthographic variants (diacritics, tatweel, alef forms, alef maqsura, taa marbuta) and Hebrew
  points and cantillation marks.
* :func:`tokenize` splits a normalised text into tokens for any script: words where the script
  separates words with spaces, overlapping character n-grams for runs of scripts that do not
  (Han, Hiragana, Katakana, Thai, Lao, Khmer, Myanmar), where a word segmenter would be needed
  otherwise and would be language-specific, slow and a dependency.
* :func:`term` reduces a token to a coarser key for *topic* matching (stories): a light stem, so
  that inflected and re-spelled forms of one name or word meet. Deduplication does not use it:
  a copy keeps its exact wording, and stemming would only make different texts look alike.

Matching reads the first :data:`MATCHED_CHARS` characters of a text (:func:`matched_text`).
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence

# --- normalize -------------------------------------------------------------------------------

_ARABIC_DIACRITICS = (
    "\u0610-\u061a"  # honorific signs above/below letters
    "\u064b-\u065f"  # harakat, shadda, sukun, hamza above/below ...
    "\u0670"  # superscript (dagger) alef
    "\u06d6-\u06dc\u06df-\u06e4\u06e7\u06e8\u06ea-\u06ed"  # Quranic annotation marks
)
_TATWEEL = "\u0640"
# Hebrew vowel points, dagesh, shin/sin dots and cantillation marks: news, like most modern
# Hebrew, is written without them, and a pointed quotation or name must meet the plain spelling.
# Not the maqaf (U+05BE), paseq (U+05C0), sof pasuq (U+05C3) and nun hafukha (U+05C6), which are
# punctuation.
_HEBREW_POINTS = "\u0591-\u05bd\u05bf\u05c1\u05c2\u05c4\u05c5\u05c7"
# Accents are the combining marks of Latin, Greek and Cyrillic (é, ç, ğ, ά once decomposed):
# headlines in capitals often drop them. Indic vowel signs and other marks are letters.
_ACCENTS = "\u0300-\u036f"


def _category_ranges(categories: tuple[str, ...], code_points: Iterable[int]) -> Iterator[tuple[int, int]]:
    """Ranges of ``code_points`` (ascending) whose Unicode general category starts with one of
    ``categories`` ("Cf" the format characters, "M" every kind of combining mark)."""
    start = previous = None
    for c in code_points:
        wanted = unicodedata.category(chr(c)).startswith(categories)
        if start is not None and (not wanted or c != previous + 1):
            yield start, previous
            start = None
        if wanted and start is None:
            start = c
        previous = c
    if start is not None:
        yield start, previous


def _char_class(ranges: Iterable[tuple[int, int]]) -> str:
    return "".join(f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in ranges)


# Format characters are invisible and shape how text is shown, not what it says: the soft hyphen
# ("Über­le­bens"), the zero-width non-joiner and joiner (Persian writes "تحریم‌ها" with one,
# without, or with a space), bidirectional marks, the zero-width space. The displayed text keeps
# them; matching meets every spelling with and without them.
# Unicode places them in the first two planes and in plane 14 (the tag characters) only.
_FORMAT_CHARACTERS = _char_class(_category_ranges(("Cf",), itertools.chain(range(0x20000), range(0xE0000, 0xE1000))))
_FORMAT = re.compile(f"[{_FORMAT_CHARACTERS}]")
# Combining marks: Thai and Indic vowel signs, tone marks, viramas are part of their words
# (ข่าว "news" and ข้าว "rice" differ by one), so a word-splitting pattern must keep them. Not the
# enclosing marks (the keycap) nor the variation selectors, which choose how a sign is drawn
# ("➡️" and "➡" are one arrow).
_VARIATION_SELECTORS = {*range(0xFE00, 0xFE10), *range(0xE0100, 0xE01F0)}
COMBINING_MARKS = _char_class(_category_ranges(
    ("Mn", "Mc"),
    (c for c in itertools.chain(range(0x20000), range(0xE0000, 0xE1000)) if c not in _VARIATION_SELECTORS),
))
_DELETE = re.compile(f"[{_ARABIC_DIACRITICS}{_TATWEEL}{_HEBREW_POINTS}{_ACCENTS}{_FORMAT_CHARACTERS}]")


def strip_format_characters(text: str) -> str:
    """``text`` without its invisible format characters (Unicode Cf): what a reader sees."""
    return _FORMAT.sub("", text)


# Arabic letters written interchangeably.
_ARABIC_LETTERS = {
    # Alef with hamza above/below, with madda, wasla: writers use them inconsistently.
    "أ": "ا",
    "إ": "ا",
    "آ": "ا",
    "ٱ": "ا",
    # Final alef maqsura and final yeh are swapped freely (الرئيسى / الرئيسي).
    "ى": "ي",
    # Taa marbuta and final heh are confused in informal and some Egyptian writing.
    "ة": "ه",
    # Persian-keyboard forms of yeh and kaf appear in Arabic text typed on such layouts.
    "ی": "ي",
    "ک": "ك",
    # The seat of hamza varies with spelling convention (مسئول / مسؤول, رئيس / رءيس).
    "ؤ": "ء",
    "ئ": "ء",
}


# Decimal digits of every script but ASCII's (whose digits stay as they are).
_OTHER_DIGITS = re.compile(r"[^\D0-9]")


def _fold_arabic_letters(text: str) -> str:
    # One C-level replace per variant present: no letter is mapped to another variant, so the
    # order of the replacements does not matter.
    for variant, letter in _ARABIC_LETTERS.items():
        if variant in text:
            text = text.replace(variant, letter)
    return text


def _ascii_digit(match: re.Match[str]) -> str:
    return str(unicodedata.decimal(match.group()))


def _reference_normalize(text: str) -> str:
    """The definition of :func:`normalize`: full passes over the text, each one C-level call
    (a few times the cost of normalize's single pass, which only text within the BMP takes)."""
    text = _fold_arabic_letters(unicodedata.normalize("NFKC", text).casefold())
    text = _DELETE.sub("", unicodedata.normalize("NFD", text))
    return unicodedata.normalize("NFC", _OTHER_DIGITS.sub(_ascii_digit, text))


# What normalize() does to each BMP character besides deletion, case folding and the Arabic
# letters, computed from the reference: compatibility forms (NBSP, ligatures, fullwidth,
# Arabic presentation forms), digits of every script ("٢٠١٦" is "2016"), accented letters.
_FOLD = {
    c: folded
    for c in map(chr, range(0x80, 0x10000))
    if not _DELETE.match(c)
    and c not in _ARABIC_LETTERS
    and (folded := _reference_normalize(c)) != c.casefold()
}
_FOLDABLE = re.compile("[" + "".join(map(re.escape, _FOLD)) + "]")
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")


def _fold(match: re.Match[str]) -> str:
    return _FOLD[match.group()]


def normalize(text: str) -> str:
    """Fold ``text`` for matching: NFKC, case folding, accents, digits, Arabic variants, Hebrew points.

    Equal to :func:`_reference_normalize` (tests check it) but up to several times faster: full
    NFKC and NFD passes cost hundreds of microseconds on an article, and only a few characters
    of a text ever change. Each kind of change uses the cheapest C-level primitive: a regex
    deletion, ``str.replace`` for the Arabic letters, and a per-character table for the rest.
    """
    # The table covers the BMP only, and folds one character at a time: a text not in NFC (a
    # hamza written as a combining mark, "مسؤول" decomposed), with half-width kana's voicing
    # marks ("ｶﾞｿﾘﾝ") or with Hangul letters written apart ("ㅎㅏㄴ", half-width "ﾡￂ", which
    # NFKC makes syllables: 하ㄴ, 가) composes across characters, as NFKC does in the reference.
    if _ASTRAL.search(text) or _COMPOSING.search(text) or not unicodedata.is_normalized("NFC", text):
        return _reference_normalize(text)
    return _FOLDABLE.sub(_fold, _fold_arabic_letters(_DELETE.sub("", text.casefold())))


# half-width kana voicing marks, Hangul compatibility letters and their half-width forms
_COMPOSING = re.compile("[\uff9e\uff9f\u3131-\u318e\uffa0-\uffdc]")


def fold_dotless_i(normalized: str) -> str:
    """``normalize``-d text with Turkish dotless ı as i, for matching a query (alert terms), where
    no hash is kept (normalize's output never changes): once folded, a capital I and İ are both
    i, and "DİYARBAKIR" must meet "Diyarbakır"."""
    return normalized.replace("ı", "i")


# --- tokenize --------------------------------------------------------------------------------

# Scripts that do not put spaces between words, and Hangul: Korean spaces its phrases, but a
# particle is written joined to its noun (북한이, 북한의, 북한은 are all "North Korea"), so its
# words are matched as syllable bigrams like the others.
_NO_SPACE_RANGES = (
    (0x0E00, 0x0EFF),  # Thai, Lao
    (0x1000, 0x109F),  # Myanmar
    (0x1100, 0x11FF),  # Hangul Jamo
    (0x3130, 0x318F),  # Hangul compatibility Jamo
    (0xA960, 0xA97F),  # Hangul Jamo extended A
    (0xAC00, 0xD7AF),  # Hangul syllables
    (0xD7B0, 0xD7FF),  # Hangul Jamo extended B
    (0x1780, 0x17FF),  # Khmer
    (0x3005, 0x3007),  # the ideographic iteration mark, closing mark and zero (佐々木, 〆切, 二〇二四)
    (0x303B, 0x303B),  # the vertical ideographic iteration mark
    (0x3040, 0x30FF),  # Hiragana, Katakana (incl. the prolonged sound mark)
    (0x3400, 0x4DBF),  # CJK extension A
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0x20000, 0x323AF),  # CJK extensions B..I (H: Unicode 15, read as letters from Python 3.12)
)


_NO_SPACE = _char_class(_NO_SPACE_RANGES)
_HAS_NO_SPACE = re.compile(f"[{_NO_SPACE}]")
# "_" is a word character to the regex engine, and never part of a word in prose.
# Combining marks in the BMP: Python's ``\w`` excludes them, and they are part of words in
# Devanagari, Bengali, Tamil, Hebrew points and others.
_WORD = re.compile(rf"[\w{_char_class(_category_ranges(('M',), range(0x10000)))}]+")
_RUNS = re.compile(f"([{_NO_SPACE}]+)")

LETTER = re.compile(r"[^\W\d_]")
"""A letter of any script: a word character that is neither a digit nor the underscore."""

NGRAM = 2
"""Character n-gram size for scripts without spaces. Bigrams: most Chinese words are two
characters long, and bigram indexing is the standard baseline for CJK retrieval."""


def tokenize(normalized: str) -> list[str]:
    """Tokens of an already :func:`normalize`-d text, in order.

    Words for spaced scripts (digits included; punctuation and ``_`` never). A run of a script
    without spaces becomes its overlapping :data:`NGRAM`-character grams ("北京大学" gives 北京,
    京大, 大学); a run shorter than that is one token.
    """
    words = _WORD.findall(normalized.replace("_", " "))
    if not _HAS_NO_SPACE.search(normalized):  # the common case: one regex pass
        return words
    out: list[str] = []
    for word in words:
        # split() with a capturing group alternates text outside the runs (even indexes)
        # and the runs themselves (odd indexes).
        for i, part in enumerate(_RUNS.split(word)):
            if i % 2 == 0 or len(part) <= NGRAM:
                if part:
                    out.append(part)
            else:
                out.extend(part[j : j + NGRAM] for j in range(len(part) - NGRAM + 1))
    return out


def is_unspaced(token: str) -> bool:
    """``token`` is of a script written without spaces (a run or a gram of :func:`tokenize`)."""
    return _HAS_NO_SPACE.match(token) is not None


def word_count(tokens: Sequence[str]) -> float:
    """How many words ``tokens`` stand for, in any script: a character n-gram of a script
    without spaces stands for 1 / NGRAM of a word (n characters give n - 1 bigrams, and words
    of those scripts are about two characters long)."""
    grams = (
        sum(1 for t in tokens if is_unspaced(t))
        if _HAS_NO_SPACE.search("".join(tokens))
        else 0
    )
    return len(tokens) - grams + grams / NGRAM


def token_lines(text: str) -> list[list[str]]:
    """The tokens of each non-empty line of ``text`` (normalised here), in order."""
    normalized = normalize(text)
    if _HAS_NO_SPACE.search(normalized):
        lines = map(tokenize, normalized.splitlines())
    else:  # the common case: one C-level regex call per line, no Python loop over tokens
        lines = map(_WORD.findall, normalized.replace("_", " ").splitlines())
    return [tokens for tokens in lines if tokens]


MATCHED_CHARS = 200_000
"""Characters of an article's text (and title) that matching reads: deduplication, stories and
alerts. About 30,000 words, several times the longest news article; the bound keeps the work
and memory of one article bounded whatever the page (a transcript, a live blog, megabytes of
Chinese characters, each pair of which is a token)."""
_WORD_CUT_REACH = 100


def matched_text(text: str) -> str:
    """The beginning of ``text`` that matching reads: all of it up to :data:`MATCHED_CHARS`,
    else cut there, before the word the cut falls in when a space or line break comes within
    the last :data:`_WORD_CUT_REACH` characters (the first letters of a word would be a token as
    if written so, and could match a shorter keyword). Scripts without spaces are cut at the
    bound: their tokens are character pairs, all of which are in the text."""
    if len(text) <= MATCHED_CHARS:
        return text
    head = text[:MATCHED_CHARS]
    reach = MATCHED_CHARS - _WORD_CUT_REACH
    cut = max(head.rfind(" ", reach), head.rfind("\n", reach))
    return head[:cut] if cut > 0 else head


# --- term ------------------------------------------------------------------------------------

# Light stemming for Arabic in the style of Larkey et al.'s "light10" (prefixes: conjunction,
# prepositions, article; suffixes: dual/plural/feminine/possessive), written for text that
# normalize() has already folded (ة is ه, ى is ي, أ is ا).
_AR_PREFIXES = ("وال", "بال", "كال", "فال", "لل", "ال", "و")
_AR_SUFFIXES = ("ها", "ان", "ات", "ون", "ين", "يه", "ه", "ي")
_AR_LETTERS = re.compile("^[\u0621-\u064a]+$")
# Long vowels written inside a word vary with transliteration and dialect (اميركي / امريكي,
# ميلكونيان / ملكونيان); dropping them inside the word leaves the consonant skeleton. Only
# in stems of _AR_SKELETON_MIN letters or more: the variation is in long, mostly foreign,
# words, while short native ones would merge (كاتب, كتب).
_AR_INNER_VOWELS = re.compile("(?<=.)[اوي](?=.)")
_AR_SKELETON_MIN = 5

TERM_PREFIX = 6
"""Tokens in other scripts are cut to this many characters: prefix truncation is a
language-independent stemmer that works about as well as a real one for topic matching
(Turkish in particular, whose suffixes carry case and possession: İstanbul'da, Türkiye'nin)."""


def term(token: str) -> str:
    """The topic-matching key of a :func:`tokenize` token (see module docstring)."""
    if _AR_LETTERS.match(token):
        for prefix in _AR_PREFIXES:
            if token.startswith(prefix) and len(token) - len(prefix) >= 3:
                token = token[len(prefix) :]
                break
        for suffix in _AR_SUFFIXES:
            if token.endswith(suffix) and len(token) - len(suffix) >= 3:
                token = token[: -len(suffix)]
                break
        return _AR_INNER_VOWELS.sub("", token) if len(token) >= _AR_SKELETON_MIN else token
    return token[:TERM_PREFIX]
