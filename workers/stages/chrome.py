"""Text blocks of an extracted body: normalisation, hashing, and removal of known site chrome.

A *block* is one unit of the extracted body: a paragraph, a heading, a list item, a table row,
a quote. Site chrome (call-to-action boxes, author boxes, "follow us" lines, section rails,
widget headings) is the same block on many different pages of one site, so the site-learned
chrome index (``workers/chrome_index.py``) keeps, per domain, how many *distinct pages* carried
each block hash; the blocks that recur are passed back into extraction as ``known_chrome`` and
removed here.

Everything in this module is pure and deterministic (same text, same hash, in every process and
on every replay), because hashes are computed in the extraction pool's worker processes and
compared with statistics that every worker shares through Redis.

Normalisation before hashing folds what varies between two renderings of one chrome block:
Unicode compatibility forms and case, Arabic diacritics, tatweel and letter variants (أ إ آ → ا,
ى → ي, ة → ه), digits of any script (to ASCII), and punctuation and white space. The hash keeps
the digits' values: a block whose figures change from page to page is data (today's exchange
rate in a daily report's lead), not chrome, and must not match yesterday's.
``normalise_block`` (title and repeat matching within one page) folds the values too.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from workers.textnorm import COMBINING_MARKS, strip_format_characters

# Arabic: harakat, Quranic marks, superscript alef; tatweel.
_ARABIC_MARKS = re.compile("[\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06ed\u0640]")
_ARABIC_LETTERS = str.maketrans({"أ": "ا", "إ": "ا", "آ": "ا", "ٱ": "ا", "ى": "ي", "ة": "ه", "ی": "ي", "ک": "ك"})
# \W alone would take a vowel sign or tone mark for a separator: ข่าว ("news") and ข้าว ("rice")
# would both be "ข าว"
_NON_WORD = re.compile(f"(?:_|[^\\w{COMBINING_MARKS}])+")
_DIGITS = re.compile(r"\d+")
_DIGIT = re.compile(r"\d")

# Blocks shorter than this (normalised characters) carry too little to be recognised alone:
# "Share", "1", "|". They are still hashed (a widget heading like "Comments" is chrome), but a
# block must have at least one letter or digit.
MIN_BLOCK_CHARS = 1
# Hash length: 64 bits, so a domain's few thousand blocks never collide in practice.
_DIGEST_BYTES = 8


def _normalise(text: str) -> str:
    """Compatibility forms, case, Arabic marks and letter variants, punctuation and white space
    folded; digits of every script written in ASCII."""
    # a soft hyphen or a bidirectional mark must not split a word of the block
    text = strip_format_characters(unicodedata.normalize("NFKC", text).casefold())
    text = _ARABIC_MARKS.sub("", text).translate(_ARABIC_LETTERS)
    text = _DIGIT.sub(lambda digit: str(unicodedata.digit(digit.group())), text)
    return " ".join(_NON_WORD.sub(" ", text).split())


def normalise_block(text: str, *, keep_numbers: bool = False) -> str:
    """The matching form of a block: what two renderings of the same block have in common, a
    date or a counter in it aside (unless ``keep_numbers``: two lists of a page that differ only
    in their figures are two lists)."""
    return _normalise(text) if keep_numbers else _DIGITS.sub("0", _normalise(text))


def block_hash(text: str) -> str | None:
    """A short stable hash of the block's normalised text, figures included, or None for a block
    with no words."""
    normal = _normalise(text)
    if len(normal) < MIN_BLOCK_CHARS:
        return None
    return hashlib.blake2b(normal.encode("utf-8"), digest_size=_DIGEST_BYTES).hexdigest()


@dataclass(frozen=True, slots=True)
class ChromeDecision:
    """What known-chrome removal did on one page: which blocks went and whether the guard held it back."""

    removed: tuple[int, ...]
    withheld: bool


def select_chrome(
    blocks: Iterable[tuple[str | None, int]],
    known_chrome: frozenset[str],
    *,
    max_block_chars: int,
    max_share: float,
    min_kept_chars: int = 0,
    middle: frozenset[int] = frozenset(),
) -> ChromeDecision:
    """Which blocks (by index) to remove as known chrome.

    ``blocks`` is (hash, length in characters) per block, in body order. A block is removed when
    its hash is known chrome for the domain and it is not longer than ``max_block_chars`` (a long
    paragraph that recurs is more likely syndicated copy than a widget). The guard: if the removal
    would take away more than ``max_share`` of the body's characters, nothing is removed (the
    statistics are then more likely wrong, e.g. the same article under many URLs, than the page
    being mostly chrome), and the decision says so. Likewise when what would be left is shorter than
    ``min_kept_chars`` while the whole body is not: a one-line flash beside the site's recurring
    "developing story" line is an article, and without the line it would be dropped as too short.
    Blocks of ``middle`` (the article's inner prose paragraphs) are never removed, but count for
    the guard: statistics that call them chrome are as wrong as those calling the ends chrome.
    """
    items = list(blocks)
    if not known_chrome or not items:
        return ChromeDecision((), False)
    body_chars = sum(length for _, length in items)
    known = [
        index
        for index, (digest, length) in enumerate(items)
        if digest is not None and digest in known_chrome and length <= max_block_chars
    ]
    chosen = tuple(index for index in known if index not in middle)
    removed_chars = sum(items[index][1] for index in chosen)
    kept_chars = body_chars - removed_chars
    if chosen and (
        sum(items[index][1] for index in known) > max_share * body_chars
        or kept_chars < min_kept_chars <= kept_chars + removed_chars
    ):
        return ChromeDecision((), True)
    return ChromeDecision(chosen, False)
