"""Story matching: TF-IDF term vectors and time-decayed story centroids. Pure: no I/O.

An article is a sparse vector of :func:`workers.textnorm.term` keys (light stems, character
bigrams for scripts without spaces), weighted ``(1 + ln tf) * idf`` and L2-normalised. A
story is the decayed sum of its articles' vectors (older members count less, so a story can
drift as the event unfolds), truncated to its :data:`CENTROID_TERMS` heaviest terms. An article
joins the story whose centroid is closest by cosine, if close enough.

Document frequencies come from the stream itself (topic detection and tracking's incremental
IDF): what every outlet writes about this week (a pandemic, an election) is not evidence that
two articles tell the same story. They are counted per language in a hashed array of counters
(:data:`DF_SLOTS`), whose size does not grow with the vocabulary. Every new article is counted
until :data:`DF_FULL` are, then a deterministic one in :data:`DF_SAMPLE`: IDF is the log of a
ratio, which a sample estimates as well as a census once there are enough, and counting is the
costly part (one counter increment per distinct term). :class:`TermStats` reads the counters.
"""

from __future__ import annotations

import math
import threading
import zlib
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np

from workers.textnorm import term

TITLE_WEIGHT = 2
"""A headline term counts this many extra times: the headline names what the story is."""
CENTROID_TERMS = 64
"""Terms kept in a story centroid. The article side keeps all its terms (the cosine is exact
on the centroid's support)."""
INDEX_TERMS = 8
"""An article's heaviest terms, under which its story is indexed and candidate stories are
looked up."""
DF_SLOTS = 1 << 17
"""16-bit document-frequency counters per language and day (256 KiB). A term shares its
counter with others; with a vocabulary of ~10^5 terms a week, a rare term shares one with a
frequent term (and so gets too low an IDF) in about 1% of cases."""
DF_PRIOR = 10
"""Pseudo-documents in the IDF (see :meth:`TermStats.idf`). Without them the first few
documents of a language make the words they share the least weighty: two articles on one
event, the first two seen, would look less alike than unrelated ones."""
DF_FULL = 1000
DF_SAMPLE = 8
"""Past DF_FULL documents of a language in the window, one new article in DF_SAMPLE (by
article id) is counted."""


@dataclass(frozen=True, slots=True)
class TermVector:
    """A sparse vector: sorted unique uint32 term ids and their float32 weights."""

    ids: np.ndarray
    weights: np.ndarray

    @classmethod
    def empty(cls) -> TermVector:
        return cls(np.empty(0, dtype=np.uint32), np.empty(0, dtype=np.float32))

    def norm(self) -> float:
        return float(np.sqrt(np.dot(self.weights, self.weights)))

    def top(self, n: int) -> np.ndarray:
        """Ids of the ``n`` heaviest terms, heaviest first (ties by id: deterministic)."""
        order = np.lexsort((self.ids, -self.weights))
        return self.ids[order[:n]]

    def pack(self) -> bytes:
        """Binary form for Redis: big-endian uint32 ids, then float16 weights."""
        return self.ids.astype(">u4").tobytes() + self.weights.astype(">f2").tobytes()

    @classmethod
    def unpack(cls, data: bytes) -> TermVector:
        n = len(data) // 6
        return cls(
            np.frombuffer(data, dtype=">u4", count=n).astype(np.uint32),
            np.frombuffer(data, dtype=">f2", offset=4 * n).astype(np.float32),
        )


def _term_id(token: str) -> int:
    """CRC-32 of the token's :func:`workers.textnorm.term`, or -1 for a token too short to
    mean anything alone (one-letter articles, conjunctions and initials in spaced scripts)."""
    return zlib.crc32(term(token).encode()) if len(token) > 1 else -1


_TERM_IDS: dict[str, int] = {}
_TERM_IDS_MAX = 1 << 18
_TERM_IDS_LOCK = threading.Lock()


def _term_ids(tokens: Collection[str]) -> np.ndarray:
    """:func:`_term_id` of distinct ``tokens``, memoised per process: the vocabulary is
    Zipfian (most tokens are repeats) and :func:`workers.textnorm.term` is Python code.

    The memo holds at most :data:`_TERM_IDS_MAX` terms: when an article's new ones would not
    fit, a memo of them alone replaces it (bounded memory without an LRU's bookkeeping on every
    hit), and an article with more than that keeps its own out of it. Articles are prepared in
    threads, several at once: a memo is only ever added to, never emptied, so a call finds in the
    one it started with every term it saw there; the lock makes the size check and the change
    one step."""
    global _TERM_IDS
    memo = _TERM_IDS
    missing = set(tokens).difference(memo)
    new = dict(zip(missing, map(_term_id, missing)))
    with _TERM_IDS_LOCK:
        if len(_TERM_IDS) + len(new) <= _TERM_IDS_MAX:
            _TERM_IDS.update(new)
        elif len(new) <= _TERM_IDS_MAX:
            _TERM_IDS = new
    ids = (new[token] if token in new else memo[token] for token in tokens)
    return np.fromiter(ids, dtype=np.int64, count=len(tokens))


def term_counts(title: Sequence[str], text: Sequence[str]) -> TermVector:
    """Raw term frequencies of an article given as tokens (:func:`workers.textnorm.tokenize`),
    as a vector whose weights are counts; a headline token counts ``1 + TITLE_WEIGHT`` times."""
    tokens = Counter(text)
    for token in title:
        tokens[token] += 1 + TITLE_WEIGHT
    # Distinct tokens first (Counter counts in C), then terms: several tokens make one term.
    ids = _term_ids(tokens)
    counts = np.fromiter(tokens.values(), dtype=np.float32, count=len(tokens))
    keep = ids >= 0
    unique, inverse = np.unique(ids[keep], return_inverse=True)
    weights = np.bincount(inverse, weights=counts[keep], minlength=unique.size)
    return TermVector(unique.astype(np.uint32), weights.astype(np.float32))


def counted_in_df(article_id: str, stats: TermStats) -> bool:
    """Whether a new article is counted in the document frequencies (see :data:`DF_FULL`)."""
    return stats.documents < DF_FULL or zlib.crc32(article_id.encode()) % DF_SAMPLE == 0


def _stored_counters(data: bytes) -> np.ndarray:
    """One day's counters as Redis keeps them: big-endian uint16, saturating; the string only
    as long as its highest non-zero counter, the rest reads as zero."""
    return np.frombuffer(data, dtype=">u2", count=min(len(data) // 2, DF_SLOTS))


def add_counts(counters: bytes | None, added: np.ndarray) -> bytes:
    """One day's counters as Redis keeps them (:func:`_stored_counters`) with ``added``
    (uint[DF_SLOTS]) added."""
    total = added.astype(np.uint32)
    if counters:
        old = _stored_counters(counters)
        total[: old.size] += old
    np.minimum(total, np.uint32(0xFFFF), out=total)
    used = int(np.flatnonzero(total)[-1]) + 1 if total.any() else 0
    return total[:used].astype(">u2").tobytes()


def df_slots(term_ids: np.ndarray) -> np.ndarray:
    """The counter of each term (multiply-shift hashing of the 32-bit id)."""
    mixed = term_ids.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)  # wraps mod 2**64
    return (mixed >> np.uint64(64 - DF_SLOTS.bit_length() + 1)).astype(np.uint32)


@dataclass(slots=True)
class TermStats:
    """Document frequencies of one language over the window: the sum of the days'
    counters (uint32[DF_SLOTS]) and the number of documents counted. Mutable: a worker
    counts its own articles in its snapshot at once (:meth:`count`)."""

    counters: np.ndarray
    documents: int

    @classmethod
    def empty(cls) -> TermStats:
        return cls(np.zeros(DF_SLOTS, dtype=np.uint32), 0)

    @classmethod
    def from_days(cls, days: list[bytes | None], documents: int) -> TermStats:
        """Sum the days' counters as Redis keeps them (:func:`_stored_counters`)."""
        counters = np.zeros(DF_SLOTS, dtype=np.uint32)
        for data in days:
            if data:
                values = _stored_counters(data)
                counters[: values.size] += values
        return cls(counters, documents)

    def count(self, slots: np.ndarray) -> None:
        """Count one more document, whose terms have these :func:`df_slots`."""
        shared, times = np.unique(slots, return_counts=True)  # two terms may share a slot
        self.counters[shared] += times.astype(np.uint32)
        self.documents += 1

    def idf(self, term_ids: np.ndarray) -> np.ndarray:
        """Smoothed IDF, ``ln((1 + N + P) / (1 + df + P)) + 1`` with :data:`DF_PRIOR`
        pseudo-documents that have every term: 1 for every term while nothing has been counted
        (plain TF weighting), close to it while little has, never zero or negative."""
        df = self.counters[df_slots(term_ids)]
        prior = 1.0 + DF_PRIOR
        idf: np.ndarray = np.log((prior + self.documents) / (prior + df)) + 1.0
        return idf.astype(np.float32)


def article_vector(tf: TermVector, stats: TermStats) -> TermVector:
    """The L2-normalised TF-IDF vector of an article's :func:`term_counts`."""
    if tf.ids.size == 0:
        return tf
    weights = (1.0 + np.log(tf.weights)) * stats.idf(tf.ids)
    return TermVector(tf.ids, (weights / np.linalg.norm(weights)).astype(np.float32))


def cosine(article: TermVector, centroid: TermVector) -> float:
    """Cosine of a normalised article vector and an (unnormalised) centroid."""
    norm = centroid.norm()
    if norm == 0.0 or article.ids.size == 0:
        return 0.0
    position = np.searchsorted(article.ids, centroid.ids)
    position[position == article.ids.size] = 0
    hit = article.ids[position] == centroid.ids
    return float(np.dot(article.weights[position[hit]], centroid.weights[hit])) / norm


def decay(age_s: float, half_life_s: float) -> float:
    """Weight left to evidence ``age_s`` seconds old (1 for evidence from the future)."""
    return math.pow(0.5, max(0.0, age_s) / half_life_s)


def merge(centroid: TermVector | None, kept: float, article: TermVector, added: float = 1.0) -> TermVector:
    """``kept * centroid + added * article``, truncated to the :data:`CENTROID_TERMS` heaviest terms."""
    if centroid is None or centroid.ids.size == 0:
        ids, weights = article.ids, article.weights
    else:
        ids = np.union1d(centroid.ids, article.ids).astype(np.uint32)
        weights = np.zeros(ids.size, dtype=np.float32)
        weights[np.searchsorted(ids, centroid.ids)] += kept * centroid.weights
        weights[np.searchsorted(ids, article.ids)] += added * article.weights
    if ids.size > CENTROID_TERMS:
        keep = np.sort(np.lexsort((ids, -weights))[:CENTROID_TERMS])
        ids, weights = ids[keep], weights[keep]
    return TermVector(ids, weights)


def joined(
    centroid: TermVector, centroid_t: float, article: TermVector, at: float, half_life_s: float
) -> tuple[TermVector, float]:
    """A story's centroid (as of ``centroid_t``) with an article of time ``at`` added, and its
    new time: the older of the two decayed to the newer's time, so a backlog processed out of
    order builds the centroid that processing in order would."""
    if at >= centroid_t:
        return merge(centroid, decay(at - centroid_t, half_life_s), article), at
    return merge(centroid, 1.0, article, decay(centroid_t - at, half_life_s)), centroid_t

