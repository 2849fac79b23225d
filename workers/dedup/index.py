"""The deduplication and story index that every worker shares, in Redis.

:meth:`DedupIndex.classify` is called once per extracted article, before the article is
written, and says what the article is:

* ``new``: first time seen; it founds a story or joins the closest one;
* ``update``: its canonical URL was seen with another version (a URL stays known for as long as
  its article may be stored: see "A URL after its window"): its title or text differ as a reader
  sees them (its ``content_hash``; markup and spacing do not count);
* ``duplicate``: its content was seen at another URL, exactly (``similarity`` 1.0) or nearly
  (MinHash estimate of the Jaccard similarity >= ``threshold``); it takes the story of the
  article it copies and counts as one more outlet reporting it. Its ``update`` stays that
  article's copy while it still copies it; one that no longer does (a breaking-news stub, a copy of
  another stub by their boilerplate, filled in with its article) is no one's copy: indexed, and
  placed in a story by its content as a ``new`` article is, leaving the story it copied into;
* ``unchanged``: its canonical URL was seen with the same version, or it is an older version
  than the one already seen: nothing to emit (:attr:`DedupDecision.emit` is false).

Two hashes of an article serve two questions. Whether a URL's re-crawl is a new version is decided
on its ``content_hash`` (title and text as a reader sees them): a corrected headline, a misspelt
name put right ("Muller" -> "Müller") or a change of case is a version the newsroom must get.
Whether an article copies another URL's is decided on its content fingerprint
(:func:`minhash.content_fingerprint`: normalised tokens of the text, without the title), which
folds case, accents, punctuation and spelling variants: a copy under another headline or with its
accents lost is still a copy.

The agent calls it after extraction and before writing: ``decision = await
index.classify(article)``; if ``decision.emit``, it writes the article with ``status``,
``duplicate_of``, ``similarity`` and ``story_id`` from the decision. A Redis error propagates
(nothing was written, or everything was: retry the article); so does :class:`ClassifyConflict`
after :data:`MAX_ATTEMPTS` lost races.

Times are the article's ``fetched_at``, not the worker's clock, so that a replay classifies
like the first run did; expiry is absolute (EXPIREAT) from the same times, but never sooner than
its lifetime (a window, or ``K`` for a URL's doc) from the time of writing (a replay of pages
older than the window must remember them for the pages after them).

Key layout (``{p}`` is the prefix given to the constructor, ``W`` the window, ``SW`` the story
window, ``K`` the longer of the window and the article lifetime, ``article_ttl_days``: how long
the store keeps an article, ``D`` a day number, ``fetched_at // 86400``; every key has a TTL)

==========================  ======  ===========================================  ===================
key                         type    content                                      expires
==========================  ======  ===========================================  ===================
``{p}:dd:doc:{u}``          HASH    one canonical URL (``u``: 16 hex of its      K after its newest
                                    BLAKE2b): ``id`` article_id, ``v`` its       ``fetched_at``
                                    newest version (8 bytes of BLAKE2b of its
                                    ``content_hash``), ``t`` that version's
                                    fetched_at, ``story``, ``dup``
                                    duplicate_of;
                                    ``m:{minute}:{d}`` the decision made for
                                    delivery ``d`` (what a replay returns),
                                    the newest :data:`MEMOS_KEPT` of the W
                                    before the newest version, and that
                                    version's own
``{p}:dd:s8:{u}``           STRING  MinHash signature of that content,           W after its newest
                                    128 x 8 bit (not for a copy: never looked    ``fetched_at``
                                    up)
``{p}:dd:ix:{b}``           HASH    near-duplicate index, bucket ``b``: first 4  W after its last
                                    bytes of an 8-byte LSH band key (or ``=`` +  write
                                    8-byte fingerprint) -> 8-byte ``u`` of the
                                    first live article that had it + 4-byte
                                    minute it was written
``{p}:st:{s}:s``            STRING  story ``s``: header (big-endian float64      SW after ``last``
                                    ``first``, ``last`` seen and centroid time,
                                    uint32 centroid version, float64 earliest
                                    and latest ``published_at`` of its
                                    articles, +inf and -inf for none; a copy
                                    or update dated beyond a story window of
                                    them joins without widening it), then
                                    its centroid (<= 64 terms: uint32 ids, then
                                    float16 weights; none for a story of
                                    duplicates whose own story had expired)
``{p}:st:{s}:m``            ZSET    its articles: ``a:{article_id}`` ->          SW after ``last``
                                    fetched_at it joined (those of the last
                                    SW)
``{p}:st:{s}:outlets``      ZSET    its outlets: outlet -> fetched_at it first   SW after ``last``
                                    reported the story (every outlet, while
                                    the story lives); an outlet is a
                                    registrable domain (``cnn.com`` for
                                    ``edition.`` and ``amp.cnn.com``)
``{p}:st:ix:{b}``           HASH    story index, bucket ``b``: 4-byte term id    SW after its last
                                    -> (8-byte story id + 4-byte minute) of the  write
                                    last 4 stories that had it in the top
                                    terms of an article of theirs (a new one,
                                    a copy or an update), newest first
``{p}:st:df:{lang}:{D}``    STRING  document-frequency counters (<= 256 KiB),    W after the day
                                    added by each worker every ``df_refresh_s``
``{p}:st:n:{lang}:{D}``     STRING  documents counted on that day                W after the day
``{p}:st:flushed:{batch}``  STRING  empty: a worker's batch of DF counts was     2 days
                                    added to the two above (see
                                    :meth:`DedupIndex.flush`)
==========================  ======  ===========================================  ===================

Document frequencies are kept per language that the extraction stage's language detector
knows; any other language (a page's declared one, used when detection is unsure) and none share
those of ``und`` (see :data:`DF_LANGUAGES_HELD` for the worker's side).

Memory is what limits the window: about 2 KB an article, of which ~90 bytes per key of its
own is Redis's, hence one string per story (header and centroid), and 8 bits per signature
value (see :data:`minhash.STORED_BITS`). A story's outlets have a sorted set of their own (~90
bytes a story), apart from its articles: the breaking rule reads them for every article of the
story, and a big running story has thousands of articles (one set for both made each read parse
them all, and each commit walk past every outlet when trimming articles). :meth:`DedupIndex.story`
reads a story. What the layout before the last one wrote is never read: its keys (``dd:sig``,
``st:{s}`` and its ``:c``, ``:a``, ``:o``, whose outlets were host names: hence ``:outlets`` for
today's) expire by their TTLs, and its 8-byte band fields in ``dd:ix`` age out of their buckets.

After its window an article costs its URL's doc alone, until ``K`` after its newest crawl: ~250
bytes (``MEMORY USAGE`` of id, version, story and the memo of the crawl that wrote the version;
~200 without the memo; a duplicate's ~700, as its memo is longer than the 64 bytes a compact hash
holds). At the defaults (W 7 days, K 30) an article costs 7 days x 2.15 KB (``bench/dedup.py``) +
23 x 0.25 KB over its lifetime instead of 7 x 2.15 KB: about 40% more memory, for which a re-crawl
of a stored article is never taken for a new one.

Upgrade from the layout that kept a story's outlets in its members (as ``o:{outlet}`` in
``st:{s}:m``): the first article to join such a story moves them to ``st:{s}:outlets`` with their
first sightings (see ``_COMMIT``), and until then :meth:`DedupIndex.story_outlets` and
:meth:`DedupIndex.story` read them where they are. Not reading them would restart every live
story's outlets at the upgrade: the breaking rule would take the next reports of a story running
for days for a burst of first sightings. Old and new workers must not run together (README,
"Running it for real"): an old one would add outlets to the members of a story whose outlets have
moved. The move and those reads can go once the stories written before the upgrade have expired
(a story window after it).

Upgrade from the layout whose story header ended at the centroid version (no publication times):
such a story is read (:func:`_story_header`) as one whose articles' publication is not known, and
takes articles published at any time, as then; the next article to join it writes today's header,
with that article's publication. An old worker would read today's header as the start of the
centroid: old and new workers must not run together here either. The reads of the old header can
go a story window after the upgrade.

Upgrade from the layout whose docs held the content fingerprint (``fp``) of a URL's newest version
instead of its ``v``, and which identified a delivery by that fingerprint. Such a doc is compared
by fingerprint, as then: comparing versions it has not got would make the next re-crawl of every
live article an ``update``, published and matched by the alert rules again on deploy day. The
first re-crawl that finds it unchanged gives it its own ``v`` and ``t`` in place of ``fp`` (an
update does too), and from then on a headline or spelling edit is a version; one made before that
re-crawl is not seen, as it was not before. A delivery's memo is also looked for under its
identity of then: a page redelivered across the deploy (its worker stopped after classifying it,
before its ack) gets its decision back, where deciding again would find its own doc and say
``unchanged``, and the page would never be stored. Old and new workers must not run together
here either (README, "Running it for real"). Both can go a window after the upgrade: by
then each doc of the layout before has been re-crawled or has expired, and a redelivery is long
past.

A URL after its window. Its doc outlives its near-duplicate state (signature and index entries)
for as long as its article may be stored, so that a re-crawl after the window (a sitemap revisit,
a correction to an old article, a backfill) is the article it was, not a new one in a new story:
the same version is ``unchanged`` (nothing is published), and is matched as an original again,
its signature and index entries written again if its signature had expired; another version is
an ``update`` in the article's story. When that story has expired (the story window is shorter),
the update keeps the story id the newsroom has the article under, and brings the story back
holding this article, without a centroid, as a copy of an article whose story expired does:
no article joins it by its terms, so an old article's correction neither pulls today's events
into a story of weeks ago nor moves into today's story. Upgrade from the layout whose docs
expired with the window: nothing to migrate. Those docs keep their shorter TTL until the next
crawl of their URL (its commit or ``_KEEP``) gives them ``K``; a URL whose doc expired before the
upgrade is ``new`` when crawled again, as it was.

Index hashes are split into ``buckets`` so that each stays small (about 100 entries when
``buckets`` is sized as (articles per window x 33) / 100): Redis keeps a small hash as a
listpack, ~20 bytes an entry against ~70 for a key of its own. An entry carries the minute it
was written: lookups ignore entries older than the window, and a bucket drops them whenever its
size reaches a multiple of 64 (so at most 64 stale entries per bucket, and a bucket without
writes expires whole). A lookup is one HGET per band: constant time.

Concurrency. A classification reads (one Lua script: the URL's doc, the index entries and the
candidates they point to), decides in Python, then commits in one Lua script that first checks
that what the decision rests on is unchanged, and writes everything or nothing. It checks the
URL's doc (a concurrent classification of the same URL or delivery: a twin's stored decision is
returned as ours), the near-duplicate entries the article would write (the same or near-
identical content classified at the same time: the second commit fails, and its retry finds the
first as a duplicate, so one content is never ``new`` twice), the story-index entries of its
top terms (a concurrent article founding a story on the same terms: the retry joins that story
instead of founding a second one), and the version of the story it joins (concurrent centroid
updates). A failed check makes the classification start again from the reads (optimistic
concurrency; a conflict needs two articles in the same milliseconds, and the articles of one
worker that lost a race for a story retry one at a time: a big story breaking puts many of
them in flight together).
Races accepted: (1) two articles about one event that share none of their top terms and are
classified within the same milliseconds may found two stories; later articles join one of them,
and stories are never merged; (2) a worker counts its new articles in its own snapshot of the
document frequencies at once, and adds them to the shared counters (read, add, write back under
WATCH) and re-reads those every ``df_refresh_s``, so two workers may weigh terms slightly
differently for a while, and a worker killed loses its last counts (:meth:`DedupIndex.flush`).
Scripts build the index key names themselves (see ``_LOOKUP``): all keys must live on one
server (a standalone Redis >= 7.0, or one cluster slot through a hash-tagged prefix).

Replays (at-least-once delivery). A delivery is identified by (article_id, fetched_at,
version): two extractions of one crawl that differ only in their headline (a reprocess by a
pipeline whose title cleaning changed) each have their own decision. The decision made for a
delivery is stored with the URL's doc, and is what a replay returns; nothing is counted twice
(story membership is a set, DF counts only on the first decision, and a worker's batch of counts
is added once: see :meth:`DedupIndex.flush`). A recrawl (other fetched_at) of the same version is
``unchanged``. A URL keeps the decisions of its :data:`MEMOS_KEPT` newest deliveries fetched in
the window before its newest version (a page whose title or text changes at every crawl would
otherwise grow its doc for as long as it is crawled), and that of the crawl that wrote its newest
version for as long as the doc lives (a reprocess by a newer pipeline version gets it back, and
stores the article again, where deciding again it would find its own doc: ``unchanged``); a
replay of an older one finds a newer version and is ``unchanged``, which is what the store would
make of it anyway.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import secrets
import struct
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import numpy as np
import redis.asyncio as aioredis
from redis.exceptions import WatchError

from workers.dedup import minhash, stories
from workers.locks import KeyedLock
from workers.retry import Contention, is_transient
from workers.stages.extract import DETECTED_LANGUAGES
from workers.textnorm import matched_text, normalize, token_lines, tokenize
from workers.urlnorm import registrable_domain

if TYPE_CHECKING:
    from workers.models import Article
    from workers.settings import Settings

log = logging.getLogger(__name__)


class Status(StrEnum):
    NEW = "new"
    UPDATE = "update"
    DUPLICATE = "duplicate"
    UNCHANGED = "unchanged"


@dataclass(frozen=True, slots=True)
class DedupDecision:
    status: Status
    duplicate_of: str | None = None
    similarity: float | None = None
    story_id: str | None = None

    @property
    def emit(self) -> bool:
        """Whether the article is to be written and published (not for ``unchanged``)."""
        return self.status is not Status.UNCHANGED

    def applied_to(self, article: Article) -> Article:
        """The article as it is stored and published: with this decision's status, original and story."""
        return article.model_copy(
            update={
                "status": self.status.value,
                "duplicate_of": self.duplicate_of,
                "similarity": self.similarity,
                "story_id": self.story_id,
            }
        )

    def encode(self) -> bytes:
        similarity = "" if self.similarity is None else f"{self.similarity:.4f}"
        fields = (self.status.value, self.duplicate_of or "", similarity, self.story_id or "")
        return "\x1f".join(fields).encode()

    @classmethod
    def decode(cls, data: bytes) -> DedupDecision:
        status, duplicate_of, similarity, story_id = data.decode().split("\x1f")
        return cls(
            Status(status),
            duplicate_of or None,
            float(similarity) if similarity else None,
            story_id or None,
        )


@dataclass(frozen=True, slots=True)
class StoryView:
    """A story: first and last seen (``fetched_at`` of its articles), its articles of the
    story window with when each joined, and every outlet with when it first reported it."""

    first: datetime
    last: datetime
    articles: dict[str, datetime]
    outlets: dict[str, datetime]


@dataclass(frozen=True, slots=True)
class DedupConfig:
    """Tuning of the index. ``threshold`` and ``story_threshold`` were chosen on one half of
    the benchmark pairs of bench/dedup.py and checked on the other half."""

    window_days: float = 7.0
    threshold: float = 0.35
    bands: int = 32
    rows: int = 2
    buckets: int = 16384
    story_window_days: float = 3.0
    story_half_life_hours: float = 24.0
    story_threshold: float = 0.3
    df_refresh_s: float = 60.0
    article_ttl_days: float = 30.0  # the store keeps an article that long: its URL stays known

    @classmethod
    def from_settings(cls, settings: Settings) -> DedupConfig:
        return cls(
            window_days=settings.dedup_window_days,
            threshold=settings.dedup_threshold,
            bands=settings.dedup_bands,
            rows=settings.dedup_rows,
            buckets=settings.dedup_buckets,
            story_window_days=settings.story_window_days,
            story_half_life_hours=settings.story_half_life_hours,
            story_threshold=settings.story_threshold,
            df_refresh_s=settings.story_df_refresh_s,
            article_ttl_days=settings.article_ttl_days,
        )


# Where both scripts find an index entry: the bucket is the entry's last 4 bytes, as a
# big-endian number, modulo the number of buckets; the field is the entry, except that an
# LSH band key (8 bytes, dd) keeps only its first 4: its last 4 already chose the bucket, and
# a false match among the ~100 fields of a bucket only adds a candidate that the signature
# check rejects. (Fields of the old 8-byte layout are never matched: they only age out.)
_SLOT = """
local function uint32(bytes, at)
  local b1, b2, b3, b4 = string.byte(bytes, at, at + 3)
  return ((b1 * 256 + b2) * 256 + b3) * 256 + b4
end
local function slot(prefix, buckets, kind, entry)
  local key = prefix .. ':' .. kind .. ':ix:' .. (uint32(entry, #entry - 3) % buckets)
  if kind == 'dd' and #entry == 8 then return key, string.sub(entry, 1, 4) end
  return key, entry
end
"""

# What the two scripts that write an article's keys (_COMMIT, _KEEP) share: ``h`` is their JSON
# header of scalars (ARGV[1]).
_WRITE = """
local h = cjson.decode(ARGV[1])
local function minute(value) return uint32(value, 9) end
-- Sets an index entry; a new field may make the bucket drop the entries out of its window.
-- A bucket gets its expiry when created (here), so GT (later only) is enough afterwards: one
-- call instead of EXPIRETIME and EXPIREAT, for each of the ~40 entries of an article.
local function put(kind, entry, value, cutoff, expiry)
  local key, field = slot(h.prefix, h.buckets, kind, entry)
  if redis.call('HSET', key, field, value) == 1 then
    local size = redis.call('HLEN', key)
    if size == 1 then
      redis.call('EXPIREAT', key, expiry)
      return
    end
    if size % 64 == 0 then
      local all = redis.call('HGETALL', key)
      for i = 1, #all, 2 do
        if minute(all[i + 1]) < cutoff then redis.call('HDEL', key, all[i]) end
      end
    end
  end
  redis.call('EXPIREAT', key, expiry, 'GT')
end
-- Bounds a URL's memos (fields m:{minute}:{delivery}): the newest h.memos_kept, none before the
-- minute ``cutoff``. A replay of a delivery whose memo went finds a newer version: unchanged.
local function trim_memos(doc, cutoff)
  local memos = {}
  for _, name in ipairs(redis.call('HKEYS', doc)) do
    local at = string.match(name, '^m:(%d+):')
    if at then memos[#memos + 1] = {tonumber(at), name} end
  end
  table.sort(memos, function(a, b)
    if a[1] ~= b[1] then return a[1] > b[1] end
    return a[2] > b[2]
  end)
  for i, memo in ipairs(memos) do
    if i > h.memos_kept or memo[1] < cutoff then redis.call('HDEL', doc, memo[2]) end
  end
end
"""

# Read 1 of a classification (DedupIndex._lookup): everything the decision needs, in one
# round trip. KEYS[1] the URL's doc. ARGV: 1 memo field, 2 prefix, 3 number of buckets, 4 and
# 5 the oldest minute still in the window and in the story window, 6 the fingerprint entry
# ("" for none), 7 the band keys (8 bytes each) and 8 the story terms (4 bytes each),
# concatenated, 9 the article's own doc ref, 10 the most candidates to return, 11 the id of
# the story the article would found (8 bytes), 12 the memo field of the delivery as identified
# before versions (module docstring, "Upgrade").
# Returns {doc fields}, {entry, value ...} found in the near-duplicate index (the commit checks
# they are unchanged), the same for the story index, 1 if the fingerprint was found (else 0),
# the candidate originals {ref, signature, id, story ...} (the exact one alone when the
# fingerprint is found) and the candidate stories {id, story string ...}, most votes (shared
# entries) first, then the story the article would found, if it exists. The script names keys
# itself (see slot() for the index; others as DedupIndex._sig, _doc and _story do): passing them
# all would make the call several times larger.
_LOOKUP = (
    _SLOT
    + """
local p, buckets, own, limit = ARGV[2], tonumber(ARGV[3]), ARGV[9], tonumber(ARGV[10])
local doc = redis.call('HMGET', KEYS[1], ARGV[1], ARGV[12], 'id', 'v', 'fp', 't', 'story', 'dup')
local function hex(id)  -- the 8 bytes of a doc ref or story id
  return string.format('%02x%02x%02x%02x%02x%02x%02x%02x', string.byte(id, 1, 8))
end
local function split(blob, size, out)
  for i = 1, #blob, size do out[#out + 1] = string.sub(blob, i, i + size - 1) end
  return out
end
local function find(kind, entries, each)
  local found = {}
  for _, entry in ipairs(entries) do
    local key, field = slot(p, buckets, kind, entry)
    local value = redis.call('HGET', key, field)
    if value then
      found[#found + 1] = entry; found[#found + 1] = value
      each(entry, value)
    end
  end
  return found
end
local function ranked(votes)
  local ids = {}
  for id in pairs(votes) do ids[#ids + 1] = id end
  table.sort(ids, function(a, b)
    if votes[a] ~= votes[b] then return votes[a] > votes[b] end
    return a < b
  end)
  local out = {}
  for i = 1, math.min(#ids, limit) do out[i] = ids[i] end
  return out
end

local dd_cutoff, st_cutoff = tonumber(ARGV[4]), tonumber(ARGV[5])
local ref_votes, exact = {}, nil
local dd = find('dd', split(ARGV[7], 8, ARGV[6] ~= '' and {ARGV[6]} or {}), function(entry, value)
  local ref = string.sub(value, 1, 8)
  if ref == own or uint32(value, 9) < dd_cutoff then return end
  if entry == ARGV[6] then exact = ref end
  ref_votes[ref] = (ref_votes[ref] or 0) + 1
end)
local story_votes = {}
local st = find('st', split(ARGV[8], 4, {}), function(_, value)
  for i = 1, #value, 12 do
    if uint32(value, i + 8) >= st_cutoff then
      local id = string.sub(value, i, i + 7)
      story_votes[id] = (story_votes[id] or 0) + 1
    end
  end
end)

local originals = {}
for _, ref in ipairs(exact and {exact} or ranked(ref_votes)) do
  local d = redis.call('HMGET', p .. ':dd:doc:' .. hex(ref), 'id', 'story')
  originals[#originals + 1] = ref
  originals[#originals + 1] = redis.call('GET', p .. ':dd:s8:' .. hex(ref))
  originals[#originals + 1] = d[1]
  originals[#originals + 1] = d[2]
end
local stories, listed = {}, {}
for _, id in ipairs(ranked(story_votes)) do
  stories[#stories + 1] = hex(id)
  stories[#stories + 1] = redis.call('GET', p .. ':st:' .. hex(id) .. ':s')
  listed[id] = true
end
if not listed[ARGV[11]] then
  local founded = redis.call('GET', p .. ':st:' .. hex(ARGV[11]) .. ':s')
  if founded then stories[#stories + 1] = hex(ARGV[11]); stories[#stories + 1] = founded end
end
return {doc, dd, st, exact and 1 or 0, originals, stories}
"""
)

# The commit of a classification (DedupIndex._commit): checks, then writes all or nothing.
# KEYS: 1 doc, 2 signature, 3 story (header and centroid), 4 its articles, 5 its outlets, 6 the
# articles of the story that the article leaves (h.left); the index buckets are named here, as in
# _LOOKUP.
# ARGV[1] is a JSON header of the scalars (see _commit); then the binary values: 2 the decision
# (the memo), 3, 4 and 5 the doc's v, fp (a doc of the layout before versions) and t as read, 6
# the new version, 7 the signature, 8 the near-duplicate entry value (doc ref + minute), 9 the
# centroid or "", then n_dd entries, n_dd values as read, n_st terms, n_st values as read, n_st
# new values ("" when absent).
# Returns 1 when committed, 0 when a check failed (retry), or the stored decision of a twin
# delivery committed first.
_COMMIT = (
    _SLOT
    + _WRITE
    + """
local n_dd, n_st = h.n_dd, h.n_st
local function get(kind, entry)
  local key, field = slot(h.prefix, h.buckets, kind, entry)
  return redis.call('HGET', key, field) or ''
end
local memo = redis.call('HGET', KEYS[1], h.memo)
if memo then return memo end
local doc = redis.call('HMGET', KEYS[1], 'id', 'v', 'fp', 't')
if (doc[1] or '') ~= h.doc_id then return 0 end
for i = 2, 4 do  -- v, fp and t as read: ARGV[3] to ARGV[5]
  if (doc[i] or '') ~= ARGV[i + 1] then return 0 end
end
local dd, st = 9, 9 + 2 * n_dd
for i = 1, n_dd do
  if get('dd', ARGV[dd + i]) ~= ARGV[dd + n_dd + i] then return 0 end
end
for i = 1, n_st do
  if get('st', ARGV[st + i]) ~= ARGV[st + n_st + i] then return 0 end
end
-- The story: first and last seen, centroid time and version, its articles' earliest and latest
-- publication, then the centroid (h.header); or the same without publication, in the layout before
-- (h.old_header), told apart by length as DedupIndex's _story_header does.
local story = h.story ~= '' and redis.call('GET', KEYS[3])
local first, last, centroid_t, version = nil, nil, 0, 0
local earliest, latest, centroid_at = math.huge, -math.huge, 1
if story then
  if (#story - struct.size(h.old_header)) % 6 == 0 then
    first, last, centroid_t, version, centroid_at = struct.unpack(h.old_header, story)
  else
    first, last, centroid_t, version, earliest, latest, centroid_at = struct.unpack(h.header, story)
  end
end
if h.story_v and version ~= h.story_v then return 0 end

-- A key's expiry only ever moves later (EXPIRETIME is -1 without one, -2 without the key).
local function expire_at_least(key, at)
  if redis.call('EXPIRETIME', key) < at then redis.call('EXPIREAT', key, at) end
end
local fields = {h.memo, ARGV[2], 'v', ARGV[6], 't', h.at}
for _, name in ipairs({'id', 'story', 'dup'}) do
  if h[name] ~= '' then fields[#fields + 1] = name; fields[#fields + 1] = h[name] end
end
redis.call('HSET', KEYS[1], unpack(fields))
-- A copy's update that no longer copies its original (DedupIndex._same_url) is no one's copy, and
-- leaves its original's story (h.left). Its outlet stays there: that first sighting may be another
-- article's of the outlet.
if h.dup == '' then redis.call('HDEL', KEYS[1], 'dup') end
if h.left ~= '' then redis.call('ZREM', KEYS[6], 'a:' .. h.article_id) end
if ARGV[4] ~= '' then redis.call('HDEL', KEYS[1], 'fp') end  -- the layout before versions: v now
-- A URL whose text changes at every crawl (a live page, a clock or a counter in the text) adds a
-- memo each time, and its doc lives as long as its article may be stored: a new version keeps
-- the memos of the window before it. A new doc holds this one alone.
if h.doc_id ~= '' then trim_memos(KEYS[1], h.dd_cutoff) end
expire_at_least(KEYS[1], h.doc_expiry)
-- A copy is never indexed, so never looked up by its signature: stored, it was a key per copy for
-- the window, read by nothing. (Once no one's copy, it is indexed, signature too: _KEEP.)
if h.dup == '' then redis.call('SET', KEYS[2], ARGV[7], 'EXAT', h.expiry) end
for i = 1, n_dd do
  -- The first live article to have an entry keeps it (and stays findable by it).
  local old = ARGV[dd + n_dd + i]
  if old == '' or minute(old) < h.dd_cutoff then
    put('dd', ARGV[dd + i], ARGV[8], h.dd_cutoff, h.expiry)
  end
end
if story or not h.joins_story then
  for i = 1, n_st do
    put('st', ARGV[st + i], ARGV[st + 2 * n_st + i], h.st_cutoff, h.st_expiry)
  end
end
if h.story ~= '' then
  local at = tonumber(h.at)
  local centroid = story and string.sub(story, centroid_at) or ''
  if ARGV[9] ~= '' then
    centroid, centroid_t, version = ARGV[9], tonumber(h.centroid_t), version + 1
  end
  first, last = math.min(first or at, at), math.max(last or at, at)
  if h.published then
    local published = tonumber(h.published)
    -- only within a story window of the span (as _Story.published_near): a copy or an update
    -- joins without that check, and must not open the story to every date in between
    if earliest > latest or (published >= earliest - h.story_window and published <= latest + h.story_window) then
      earliest, latest = math.min(earliest, published), math.max(latest, published)
    end
  end
  local expiry = math.max(math.ceil(last + h.story_window), h.st_expiry)
  local header = struct.pack(h.header, first, last, centroid_t, version, earliest, latest)
  redis.call('SET', KEYS[3], header .. centroid, 'EXAT', expiry)
  -- A story of the layout before outlets had their own set keeps them among its articles, as
  -- 'o:{outlet}': they move, with their first sightings, once (module docstring, "Upgrade").
  if story and redis.call('EXISTS', KEYS[5]) == 0 then
    local members = redis.call('ZRANGE', KEYS[4], 0, -1, 'WITHSCORES')
    for i = 1, #members, 2 do
      if string.sub(members[i], 1, 2) == 'o:' then
        redis.call('ZADD', KEYS[5], members[i + 1], string.sub(members[i], 3))
        redis.call('ZREM', KEYS[4], members[i])
      end
    end
  end
  -- Membership is a set: a replay or a second version never counts twice. An article keeps
  -- when it joined (NX); an outlet keeps its first sighting (LT: only an earlier one, from a
  -- replay, replaces it) for as long as the story lives. The breaking rule reads first
  -- sightings: an outlet dropped and added again later would come back as a fresh report, and
  -- the follow-ups of a slow story would look like a burst.
  redis.call('ZADD', KEYS[4], 'NX', at, 'a:' .. h.article_id)
  redis.call('ZADD', KEYS[5], 'LT', at, h.outlet)
  -- Articles leave with the story window; outlets stay.
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', '(' .. (at - h.story_window))
  redis.call('EXPIREAT', KEYS[4], expiry)
  redis.call('EXPIREAT', KEYS[5], expiry)
end
return 1
"""
)

# A re-crawl decided ``unchanged`` (DedupIndex._keep): the URL stays known for as long as it is
# crawled, and its version live for near-duplicate matching. KEYS: 1 doc, 2 signature. ARGV[1] is
# a JSON header (prefix, buckets, memos_kept, doc_expiry, expiry and dd_cutoff as in _COMMIT, at);
# then 2 and 3 the doc's fp and t as read when it is of the layout before versions and the crawl
# is its newest (else ""): such a doc, unless written since, takes 4 the crawl's version and its
# fetched_at in place of its fp (module docstring, "Upgrade"); 5 the signature and 6 the
# near-duplicate entry value (doc ref + minute) of a crawl of the doc's version that is no one's
# copy ("" for another), then its entries.
_KEEP = (
    _SLOT
    + _WRITE
    + """
redis.call('EXPIREAT', KEYS[1], h.doc_expiry, 'GT')
local t = redis.call('HGET', KEYS[1], 't')
local known = t ~= false
-- The memos of the window before this crawl stay, and those of its newest version's crawl (at
-- ``t``): a reprocess by a newer pipeline version gets that decision back, and stores the article
-- again; deciding again, it would find its own doc and say unchanged.
if known then trim_memos(KEYS[1], math.min(h.dd_cutoff, math.floor(tonumber(t) / 60))) end
if ARGV[5] ~= '' and known and redis.call('EXISTS', KEYS[2]) == 0 then
  -- Its signature expired a window after its last crawl: it is matched as an original again, as
  -- a commit makes it (the first live article to have an entry keeps it).
  redis.call('SET', KEYS[2], ARGV[5], 'EXAT', h.expiry)
  for i = 7, #ARGV do
    local key, field = slot(h.prefix, h.buckets, 'dd', ARGV[i])
    local old = redis.call('HGET', key, field)
    if not old or minute(old) < h.dd_cutoff then
      put('dd', ARGV[i], ARGV[6], h.dd_cutoff, h.expiry)
    end
  end
else
  redis.call('EXPIREAT', KEYS[2], h.expiry, 'GT')
end
if ARGV[2] ~= '' then
  local doc = redis.call('HMGET', KEYS[1], 'v', 'fp', 't')
  if not doc[1] and doc[2] == ARGV[2] and doc[3] == ARGV[3] then
    redis.call('HSET', KEYS[1], 'v', ARGV[4], 't', h.at)
    redis.call('HDEL', KEYS[1], 'fp')
  end
end
"""
)

MEMOS_KEPT = 32
"""Decisions kept per URL for redeliveries and replays (the newest deliveries of the window before
its newest version): bounds the doc of a URL whose text changes at every crawl."""
MAX_ATTEMPTS = 8
"""Optimistic attempts of one classification before giving up. A conflict needs another article
touching the same entries between its reads and its commit: within a worker, articles that lost
a race for a story retry one at a time; so more means other workers' articles of that story
winning every time, or a bug."""
MAX_CANDIDATES = 16
"""Near-duplicate candidates (most shared bands first) and candidate stories (most shared top
terms first) verified per article: bounds the work on articles that share a lot with many."""
STORIES_PER_TERM = 4
"""Stories kept per term in the story index (the ones that last had it)."""
DF_DAY_S = 86400.0
"""Document frequencies are counted per day; a snapshot sums the days of the window."""
FLUSH_RESEND_S = 86400.0
"""How long a worker sends a batch of DF counts again when it is not known to be added (an
outage: see :meth:`DedupIndex.flush`)."""
FLUSHED_MARKER_S = 2 * round(FLUSH_RESEND_S)
"""How long Redis remembers that a batch was added: longer than a batch is sent again, with room
for Redis's clock, which the marker's expiry follows, running ahead of the worker's. A worker
flushes a language about once per ``df_refresh_s``: some 3,000 markers (~100 bytes each) per
worker and language at the defaults."""
_ID_BYTES = 8
_OLD_OUTLET = b"o:"
"""The tag of an outlet among a story's articles, where the layout before their own set kept them
(module docstring, "Upgrade")."""
_STORY_ITEM = _ID_BYTES + 4  # a story id and the minute it was indexed
_STORY_HEADER = struct.Struct(">dddIdd")
"""Head of a story string, before its centroid: first and last seen, the centroid's time (all
fetched_at seconds) and version, then the earliest and latest ``published_at`` of its articles
that have one (+inf and -inf while none has), each within a story window of those before it (a
copy or an update joins by its text or URL, whatever its date). _COMMIT is given the format:
Redis Lua's struct reads it alike."""
_OLD_STORY_HEADER = struct.Struct(">dddI")
"""The head of the layout before published times (module docstring, "Upgrade"). A centroid is 6
bytes a term, so the length of a story string tells the two apart: 28 + 6n bytes, or 44 + 6n."""
_NOTHING_PUBLISHED = (math.inf, -math.inf)


def _story_header(data: bytes) -> struct.Struct:
    """The layout of a story string's head (see :data:`_OLD_STORY_HEADER`)."""
    return _OLD_STORY_HEADER if (len(data) - _OLD_STORY_HEADER.size) % 6 == 0 else _STORY_HEADER
DF_LANGUAGES_HELD = 64
"""Languages whose DF snapshot (512 KiB each) a worker holds, the least recently used out first.
One read again is read from Redis, after the counts this worker made in it were added there."""


class ClassifyConflict(Contention):
    """Raised when :data:`MAX_ATTEMPTS` optimistic attempts all lost a race."""


@dataclass(slots=True)
class _Article:
    """What classification needs of an article, computed once (pure, no I/O)."""

    article_id: str
    outlet: str  # its registrable domain: one outlet's hosts (edition., amp., m.) are one reporter
    at: float
    published: float | None
    ref: bytes
    delivery: str
    old_delivery: str  # the delivery as identified before versions (module docstring, "Upgrade")
    version: bytes  # what a reader sees: 8 bytes of BLAKE2b of its content_hash
    fingerprint: bytes
    sketch: minhash.Sketch
    entries: list[bytes]
    terms: stories.TermVector  # raw term frequencies
    language: str
    founding_story: str  # the id of the story it founds when it joins none

    @property
    def memo_field(self) -> str:
        # the minute first, so that the commit can keep the newest memos without reading them
        return f"m:{_minute(self.at)}:{self.delivery}"

    @property
    def old_memo_field(self) -> str:
        return f"m:{_minute(self.at)}:{self.old_delivery}"


@dataclass(slots=True)
class _Stats:
    """A language's document frequencies as read (worker clock), with the articles this
    worker counted since then."""

    stats: stories.TermStats
    read_at: float


@dataclass(slots=True)
class _Counts:
    """The DF slots of each article this worker counted on one day in one language, not yet
    added to the shared counters; ``since``: worker clock of the first. A batch: added to the
    counters once, under ``batch`` (see :meth:`DedupIndex.flush`); ``sent``: worker clock of its
    first sending."""

    since: float
    slots: list[np.ndarray] = field(default_factory=list)
    batch: str = field(default_factory=lambda: secrets.token_hex(8))
    sent: float | None = None


@dataclass(slots=True)
class _Read:
    """What the decision rests on (read 1): the commit checks it is still so."""

    memo: bytes | None
    doc_id: bytes | None
    doc_version: bytes | None
    doc_fp: bytes | None  # a doc of the layout before versions has it instead
    doc_t: bytes | None
    doc_story: bytes | None
    doc_dup: bytes | None
    dd_found: dict[bytes, bytes]  # near-duplicate index: entry -> value, as read
    st_found: dict[bytes, bytes]  # story index: term -> value, as read
    exact: bool  # originals is the one article with the same fingerprint
    originals: list[tuple[bytes | None, bytes | None, bytes | None]]  # (signature, id, story)
    stories: list[_Story]


@dataclass(frozen=True, slots=True)
class _Story:
    """A candidate story as read: the story string's header (see :data:`_STORY_HEADER`) and
    its centroid (None for a story of duplicates only, whose own story had expired)."""

    story_id: str
    first: float
    last: float
    centroid_t: float
    version: int
    published: tuple[float, float]  # earliest and latest published_at of its articles
    centroid: stories.TermVector | None

    @classmethod
    def unpack(cls, story_id: str, data: bytes) -> _Story:
        header = _story_header(data)
        first, last, centroid_t, version, *published = header.unpack_from(data)
        packed = data[header.size :]
        centroid = stories.TermVector.unpack(packed) if packed else None
        return cls(story_id, first, last, centroid_t, version, tuple(published) or _NOTHING_PUBLISHED, centroid)

    def published_near(self, published: float | None, window_s: float) -> bool:
        """Whether an article published then (None: not known) may be of this story: within a
        story window of its articles' publication, when any of them has a known one."""
        earliest, latest = self.published
        return published is None or earliest > latest or earliest - window_s <= published <= latest + window_s

    def published_long_before(self, published: float | None, window_s: float) -> bool:
        """Whether an article published then is older than a story window before this story's
        articles, when any of them has a known publication (an archive page of its topic)."""
        earliest, latest = self.published
        return published is not None and earliest <= latest and published < earliest - window_s


@dataclass(slots=True)
class _Plan:
    """A decision and what committing it writes besides the doc, its memo and signature."""

    decision: DedupDecision
    adopts_version: bool = False  # an unchanged re-crawl's, for a doc of the layout before versions
    index_entries: bool = False  # unchanged: written again if its window has passed (see _KEEP)
    count_terms: bool = False
    centroid: stories.TermVector | None = None
    centroid_t: float = 0.0
    story_version: int | None = None  # expected version of the joined story (0 founds)
    story_terms: list[tuple[bytes, bytes]] = field(default_factory=list)  # (term, new value)

    @property
    def by_terms(self) -> bool:
        """Whether the article is placed in its story by its terms (:meth:`DedupIndex._by_story`:
        the story's centroid moves), not joining it by its text or URL (a copy, an update)."""
        return self.centroid is not None


class DedupIndex:
    """Classifies articles against the shared index; one instance per worker process."""

    def __init__(
        self,
        redis: aioredis.Redis,
        prefix: str,
        config: DedupConfig | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = redis
        self._p = prefix
        self._config = config or DedupConfig()
        self._clock = clock
        self._wall_clock = wall_clock
        self._window_s = self._config.window_days * 86400.0
        self._story_window_s = self._config.story_window_days * 86400.0
        # A URL stays known (its doc) for as long as its article may be stored: re-crawled after
        # the window, it is the same article (unchanged, or an update in its story), not a new one.
        self._known_s = max(self._window_s, self._config.article_ttl_days * 86400.0)
        self._stats: OrderedDict[str, _Stats] = OrderedDict()  # least recently used first
        self._counts: dict[tuple[str, int], _Counts] = {}  # counting, by (language, day)
        # Out of _counts to be added, in order; between flushes, those whose reply was lost.
        self._sending: list[tuple[str, int, _Counts]] = []
        self._flushing = asyncio.Lock()
        self._joining = KeyedLock()  # by story id: see classify
        # EVALSHA: the scripts' text is sent once, not with every call.
        self._lookup_script = redis.register_script(_LOOKUP)
        self._commit_script = redis.register_script(_COMMIT)
        self._keep_script = redis.register_script(_KEEP)

    # --- the entry point ---------------------------------------------------------------------

    async def classify(self, article: Article) -> DedupDecision:
        """Classify ``article`` and record it; idempotent per delivery (see module docstring)."""
        # Normalising, tokenising and hashing a text is up to a second of CPU on the longest
        # (matched_text's bound): in a thread, the event loop goes on meanwhile (heartbeats, the
        # other pages in flight), CPython handing it the GIL every few milliseconds.
        art = await asyncio.to_thread(self._prepare, article)
        stats = await self._term_stats(art.language)
        vector = stories.article_vector(art.terms, stats)
        lost_to: str | None = None
        for _ in range(MAX_ATTEMPTS):
            if lost_to is None:
                decision, lost_to = await self._attempt(art, vector, stats)
            else:
                # Lost a race for a story: this worker's articles that lost one for it go on one at
                # a time. Every article that joins a story changes its version, so the articles of
                # a big story breaking, many in flight together, would otherwise keep losing.
                async with self._joining.hold(lost_to):
                    decision, lost_to = await self._attempt(art, vector, stats)
            if decision is not None:
                return decision
        raise ClassifyConflict(f"{article.article_id}: {MAX_ATTEMPTS} attempts lost a race")

    async def story_outlets(self, story_id: str) -> dict[str, datetime]:
        """The outlets (registrable domains) reporting a story, each with when it first did (its
        article's ``fetched_at``): what the breaking-story alert rule counts."""
        outlets = await self._redis.zrange(self._story(story_id, ":outlets"), 0, -1, withscores=True)
        if outlets:
            return _members(outlets, b"")
        # None: the story has expired, or no article joined it since the upgrade (module
        # docstring): its outlets are still among its articles.
        members = await self._redis.zrange(self._story(story_id, ":m"), 0, -1, withscores=True)
        return _members(members, _OLD_OUTLET)

    async def story(self, story_id: str) -> StoryView | None:
        """A live story as the newsroom reads it (None once it has expired): its header is
        binary, its articles and outlets sorted sets (``ZRANGE {p}:st:{s}:m 0 -1 WITHSCORES``,
        the same of ``{p}:st:{s}:outlets``)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.getrange(self._story(story_id, ":s"), 0, _OLD_STORY_HEADER.size - 1)
            pipe.zrange(self._story(story_id, ":m"), 0, -1, withscores=True)
            pipe.zrange(self._story(story_id, ":outlets"), 0, -1, withscores=True)
            header, members, outlets = await pipe.execute()
        if not header:
            return None
        first, last, _, _ = _OLD_STORY_HEADER.unpack(header)  # both layouts begin alike
        return StoryView(
            first=datetime.fromtimestamp(first, UTC),
            last=datetime.fromtimestamp(last, UTC),
            articles=_members(members, b"a:"),
            # a story no article joined since the upgrade has them among its articles (as above)
            outlets=_members(outlets, b"") if outlets else _members(members, _OLD_OUTLET),
        )

    # --- pure preparation --------------------------------------------------------------------

    def _prepare(self, article: Article) -> _Article:
        """What classification needs of an article, from the article alone. Runs in a thread
        (see :meth:`classify`): all it shares with other threads is stories' term-id memo, which
        is made for that."""
        text = matched_text(article.text)
        lines = token_lines(text)
        tokens = [token for line in lines for token in line]
        fingerprint = minhash.content_fingerprint(tokens, unmatched=article.text[len(text) :])
        version = _digest(article.content_hash)
        sketch = minhash.sketch(lines)
        at = article.fetched_at.timestamp()
        # The near-duplicate index entries: the exact fingerprint (tagged, so that an exact
        # match is told from a band match) and the LSH band keys; none for a text without
        # tokens, which is nobody's duplicate.
        entries = [
            b"=" + fingerprint,
            *minhash.band_keys(sketch, self._config.bands, self._config.rows),
        ]
        return _Article(
            article_id=article.article_id,
            outlet=registrable_domain(article.domain),
            at=at,
            published=article.published_at.timestamp() if article.published_at is not None else None,
            ref=hashlib.blake2b(article.canonical_url.encode(), digest_size=_ID_BYTES).digest(),
            delivery=_digest(article.article_id, repr(at), version.hex()).hex(),
            old_delivery=_digest(article.article_id, repr(at), fingerprint.hex()).hex(),
            version=version,
            fingerprint=fingerprint,
            sketch=sketch,
            entries=entries if tokens else [],
            terms=stories.term_counts(tokenize(normalize(matched_text(article.title or ""))), tokens),
            language=_df_language(article.language),
            founding_story=_digest(article.article_id, fingerprint.hex()).hex(),
        )

    # --- keys --------------------------------------------------------------------------------

    def _doc(self, ref: bytes) -> str:
        return f"{self._p}:dd:doc:{ref.hex()}"

    def _sig(self, ref: bytes) -> str:
        return f"{self._p}:dd:s8:{ref.hex()}"

    def _story(self, story_id: str, part: str) -> str:
        return f"{self._p}:st:{story_id}{part}"

    def _df(self, language: str, day: int, kind: str = "df") -> str:
        """The day's DF counters (``df``) or number of documents counted (``n``)."""
        return f"{self._p}:st:{kind}:{language}:{day}"

    # --- document frequencies ----------------------------------------------------------------

    async def _term_stats(self, language: str) -> stories.TermStats:
        """The language's DF snapshot, re-read every ``df_refresh_s`` for the counts of the
        other workers, after adding this worker's to the shared counters (:meth:`flush`), with
        those of other languages waiting as long (a language without articles since)."""
        now = self._clock()
        cached = self._stats.get(language)
        if cached is not None and now - cached.read_at < self._config.df_refresh_s:
            self._stats.move_to_end(language)
            return cached.stats
        await self.flush(
            lambda lang, counts: lang == language or now - counts.since >= self._config.df_refresh_s
        )
        async with self._redis.pipeline(transaction=False) as pipe:
            for day in self._df_days():
                pipe.get(self._df(language, day))
                pipe.get(self._df(language, day, "n"))
            replies = await pipe.execute()
        documents = sum(int(n) for n in replies[1::2] if n is not None)
        stats = stories.TermStats.from_days(replies[0::2], documents)
        self._stats[language] = _Stats(stats, now)
        self._stats.move_to_end(language)
        if len(self._stats) > DF_LANGUAGES_HELD:
            self._stats.popitem(last=False)
        return stats

    def _df_days(self) -> range:
        """The days whose counters a snapshot sums: the window up to today, by the worker's
        clock, not an article's: one snapshot serves the articles of the next minute, whatever
        their fetched_at."""
        wall = self._wall_clock()
        return range(math.floor((wall - self._window_s) / DF_DAY_S), math.floor(wall / DF_DAY_S) + 1)

    def _count(self, art: _Article, stats: stories.TermStats) -> None:
        """Count a new article's terms in the document frequencies: in this worker's snapshot
        at once, in the shared counters at the next :meth:`flush` (adding them in Redis article
        by article cost more than all the rest of a classification: one counter increment per
        distinct term).

        An article older than the window (a replay of last month, a page just over a window old
        read by a new pipeline version's group, a crawler's zero time: year 1), by the worker's
        clock as its dedup entry's expiry is, counts nowhere. Its day may still be the window's
        first, whose counters the snapshots read for some hours more: counted, it would weigh
        there again at every reprocess of it, though no lookup finds it any more. Older still, its
        counters would expire before they were written, or, before 1970, at a time Redis refuses."""
        if art.at + self._window_s < self._wall_clock():
            return
        day = math.floor(art.at / DF_DAY_S)
        slots = stories.df_slots(art.terms.ids)
        stats.count(slots)
        self._counts.setdefault((art.language, day), _Counts(self._clock())).slots.append(slots)

    async def flush(self, which: Callable[[str, _Counts], bool] = lambda *_: True) -> None:
        """Add the document frequencies this worker counted (of the languages ``which``
        selects) to the shared counters.

        Classification does it every ``df_refresh_s``; a worker that stops without it loses
        the counts of its last minute, which only weigh terms slightly differently for a while
        (decisions already made are never revisited). Counts that Redis refuses other than in an
        outage are logged and dropped: they would be refused again at every later flush, and
        fail every classification that makes one.

        An outage or a cancellation may also end a flush after Redis added a batch, before its
        reply came: the batch goes again as it was, first at the next flush (whatever ``which``
        says), and is added once (:meth:`_add_counts`); what was counted meanwhile is a batch of
        its own. A batch not known to be added :data:`FLUSH_RESEND_S` after it was first sent
        is dropped (logged): Redis may have forgotten by then that it has it."""
        async with self._flushing:
            # Out before the awaits: what is counted meanwhile waits for the next flush.
            for (language, day), counts in list(self._counts.items()):
                if which(language, counts):
                    del self._counts[language, day]
                    self._sending.append((language, day, counts))
            while self._sending:
                language, day, counts = self._sending[0]
                now = self._clock()
                if counts.sent is None:
                    counts.sent = now
                if now - counts.sent > FLUSH_RESEND_S:
                    log.error(
                        "document frequencies of %d %s article(s) of day %d dropped: not known to be "
                        "added after %.0f s of trying, and sending them again might add them twice",
                        len(counts.slots), language, day, now - counts.sent,
                    )
                else:
                    try:
                        await self._add_counts(language, day, counts)
                    except Exception as exc:
                        if is_transient(exc):
                            raise  # an outage: sent again at the next flush
                        log.exception(
                            "document frequencies of %d %s article(s) of day %d dropped: Redis refused them",
                            len(counts.slots), language, day,
                        )
                del self._sending[0]

    async def _add_counts(self, language: str, day: int, counts: _Counts) -> None:
        """Add a batch of articles (the DF slots of each) to the day's counters, unless its
        marker says it was: read, add, write back with the marker if nobody wrote in between
        (WATCH). One read and one write of the whole array (<= 256 KiB) cost less than
        incrementing the counters of thousands of terms one by one (and than adding them in a
        script). A reply lost after the EXEC ran (a timeout, which redis-py turns into a
        WatchError while watching, or a cancellation) leaves the marker, which the next attempt
        finds."""
        key, documents = self._df(language, day), self._df(language, day, "n")
        marker = f"{self._p}:st:flushed:{counts.batch}"
        expiry = math.ceil((day + 1) * DF_DAY_S + self._window_s)
        added = np.bincount(np.concatenate(counts.slots), minlength=stories.DF_SLOTS)
        async with self._redis.pipeline(transaction=True) as pipe:
            for _ in range(MAX_ATTEMPTS):
                try:
                    await pipe.watch(key, marker)
                    if await pipe.exists(marker):
                        return
                    counters = stories.add_counts(await pipe.get(key), added)
                    pipe.multi()
                    pipe.set(key, counters, exat=expiry)
                    pipe.incrby(documents, len(counts.slots))
                    pipe.expireat(documents, expiry)
                    pipe.set(marker, b"", ex=FLUSHED_MARKER_S)
                    await pipe.execute()
                    return
                except WatchError:
                    continue
        raise ClassifyConflict(f"{key}: {MAX_ATTEMPTS} attempts to add counts lost a race")

    # --- one optimistic attempt --------------------------------------------------------------

    async def _attempt(
        self, art: _Article, vector: stories.TermVector, stats: stories.TermStats
    ) -> tuple[DedupDecision | None, str | None]:
        """Read, decide, commit; the decision, or None when the commit found the reads outdated,
        with the story the attempt joined."""
        top_terms = [int(t).to_bytes(4, "big") for t in vector.top(stories.INDEX_TERMS)]
        read = await self._lookup(art, top_terms)
        if read.memo is not None:
            return DedupDecision.decode(read.memo), None
        if read.doc_id is not None:
            plan = self._same_url(art, vector, read)
        else:
            plan = self._by_content(art, read) or self._by_story(art, vector, read)
        if plan.decision.status is Status.UNCHANGED:
            await self._keep(art, read, plan)
            return plan.decision, None
        if not plan.by_terms and plan.decision.story_id is not None:
            # A copy or an update keeps its story live (its last sighting moves on): it indexes
            # the story again, under its own terms. Indexed by new articles only, a story kept
            # going for days by copies could no longer be found a story window after its last
            # new article, and a new report on it founded a second story.
            # One that a live story refuses for its publication (a copy or an update of an archive
            # page on its topic) takes only a free place, as its original did (_by_story).
            plan.story_terms = self._story_terms(
                art, vector, read, plan.decision.story_id,
                yield_to_live=self._refused_for_publication(art, vector, read, plan.decision.story_id),
            )
        return await self._commit(art, read, plan, stats), plan.decision.story_id

    async def _lookup(self, art: _Article, terms: list[bytes]) -> _Read:
        """Read 1 (:data:`_LOOKUP`): everything the decision rests on, in one round trip."""
        doc, dd_found, st_found, exact, originals, found_stories = await self._lookup_script(
            keys=[self._doc(art.ref)],
            args=[
                art.memo_field,
                self._p,
                self._config.buckets,
                _minute(art.at - self._window_s),
                _minute(art.at - self._story_window_s),
                art.entries[0] if art.entries else b"",
                b"".join(art.entries[1:]),
                b"".join(terms),
                art.ref,
                MAX_CANDIDATES,
                bytes.fromhex(art.founding_story),
                art.old_memo_field,
            ],
        )
        memo, old_memo, doc_id, doc_version, doc_fp, doc_t, doc_story, doc_dup = doc
        return _Read(
            memo=memo if memo is not None else old_memo,
            doc_id=doc_id,
            doc_version=doc_version,
            doc_fp=doc_fp,
            doc_t=doc_t,
            doc_story=doc_story,
            doc_dup=doc_dup,
            dd_found=dict(zip(dd_found[0::2], dd_found[1::2], strict=True)),
            st_found=dict(zip(st_found[0::2], st_found[1::2], strict=True)),
            exact=bool(exact),
            originals=[
                (originals[i + 1], originals[i + 2], originals[i + 3])
                for i in range(0, len(originals), 4)
            ],
            stories=[
                _Story.unpack(found_stories[i].decode(), found_stories[i + 1])
                for i in range(0, len(found_stories), 2)
                if found_stories[i + 1] is not None
            ],
        )

    # --- deciding ----------------------------------------------------------------------------

    def _same_url(self, art: _Article, vector: stories.TermVector, read: _Read) -> _Plan:
        story, duplicate_of = _text(read.doc_story), _text(read.doc_dup)
        if read.doc_version is not None:
            same = read.doc_version == art.version
        else:
            # A doc of the layout before versions (module docstring, "Upgrade").
            same = read.doc_fp == art.fingerprint
        older = read.doc_t is not None and art.at < float(read.doc_t)
        if same or older:
            # The same version again, or an older one than the one we have: nothing new. A crawl
            # of its version that is no one's copy is matched as an original again once its
            # window has passed.
            return _Plan(
                DedupDecision(Status.UNCHANGED, duplicate_of, None, story),
                adopts_version=read.doc_version is None and same and not older,
                index_entries=same and duplicate_of is None,
            )
        if duplicate_of is not None and not self._copies(art, read, duplicate_of):
            # A copy's URL that now holds other content (a breaking-news stub, taken for a copy of
            # another stub by its boilerplate, filled in with its article) is that article's
            # original: indexed, so that its own copies are found, and placed in a story by its
            # content as a new article is. It leaves the story of the article it no longer copies
            # (see _COMMIT's ``left``): it never belonged there.
            plan = self._by_story(art, vector, read)
            return replace(plan, decision=replace(plan.decision, status=Status.UPDATE))
        # A copy's update that still copies its original stays its copy; only originals are indexed.
        return _Plan(
            DedupDecision(Status.UPDATE, duplicate_of, None, story),
            index_entries=duplicate_of is None,
        )

    def _copies(self, art: _Article, read: _Read, original: str) -> bool:
        """Whether the article is a copy of ``original`` (an article id) by the index as read. An
        original whose signature has gone (its window passed since its last crawl) is matched by
        no article any more, and a copy of it is then an original, as a new URL with its text would
        be."""
        if read.exact:
            return read.originals[0][1] == original.encode()
        return any(
            found == original.encode() and minhash.jaccard(art.sketch, signature) >= self._config.threshold
            for signature, found, _ in read.originals
            if signature is not None
        )

    def _by_content(self, art: _Article, read: _Read) -> _Plan | None:
        """An exact or near duplicate of an indexed article, or None."""
        if read.exact:
            _, original, story = read.originals[0]
            return _duplicate(original, story, 1.0)
        scored = [
            (minhash.jaccard(art.sketch, signature), original, story)
            for signature, original, story in read.originals
            if signature is not None
        ]
        # Candidates come in a fixed order (votes, then ref): max() picks the same one on
        # every worker and replay.
        best = max(scored, default=None, key=lambda s: s[0])
        if best is None or best[0] < self._config.threshold:
            return None
        return _duplicate(best[1], best[2], round(best[0], 4))

    def _by_story(self, art: _Article, vector: stories.TermVector, read: _Read) -> _Plan:
        """A new article: join the closest live story, or found one."""
        best: tuple[float, _Story] | None = None
        for story in read.stories:
            # A live story only, and not one published years before or after the article, whenever
            # it was crawled: a sitemap's archive page on the same war or election is no report of
            # today's event, and would count its outlet as breaking it.
            if not self._live(story, art) or not story.published_near(art.published, self._story_window_s):
                continue
            score = stories.cosine(vector, story.centroid)
            if score >= self._config.story_threshold and (best is None or score > best[0]):
                best = (score, story)
        # The story this content founded before can outlive its doc (its copies keep it alive)
        # and be out of reach by its terms: founding it again would find its id taken on every
        # attempt. The article rejoins it instead.
        joined = best[1] if best is not None else next(
            (story for story in read.stories if story.story_id == art.founding_story), None
        )
        if joined is None:
            story_id = art.founding_story
            centroid, centroid_t, version = stories.merge(None, 0.0, vector), art.at, 0
        else:
            story_id, old, old_t, version = joined.story_id, joined.centroid, joined.centroid_t, joined.version
            centroid, centroid_t = stories.joined(
                old, old_t, vector, art.at, self._config.story_half_life_hours * 3600.0
            )
        return _Plan(
            DedupDecision(Status.NEW, None, None, story_id),
            index_entries=True,
            count_terms=True,
            centroid=centroid,
            centroid_t=centroid_t,
            story_version=version,
            story_terms=self._story_terms(
                art, vector, read, story_id,
                yield_to_live=joined is None and self._refused_for_publication(art, vector, read, story_id),
            ),
        )

    def _live(self, story: _Story, art: _Article) -> bool:
        """Whether the article falls within a story window of the story's span. An article late by
        more than the window (a backlog, a replay) still joins the story it falls in; one more than
        a window before the story began does not: a story founded by a page dated in the future (a
        crawler's clock off by a year) would otherwise be live for every article until then, and
        swallow the events of the year."""
        window = self._story_window_s
        return story.centroid is not None and story.first - window <= art.at <= story.last + window

    def _refused_for_publication(
        self, art: _Article, vector: stories.TermVector, read: _Read, story_id: str
    ) -> bool:
        """Whether a live story other than the article's own (``story_id``), close enough in words,
        refuses the article for its publication time as older than its own articles (an archive page
        on its topic). Not a story of archive pages refusing today's report: that one would give up
        its place to them."""
        return any(
            story.story_id != story_id
            and self._live(story, art)
            and story.published_long_before(art.published, self._story_window_s)
            and stories.cosine(vector, story.centroid) >= self._config.story_threshold
            for story in read.stories
        )

    def _story_terms(
        self, art: _Article, vector: stories.TermVector, read: _Read, story_id: str, yield_to_live: bool
    ) -> list[tuple[bytes, bytes]]:
        """The story indexed under the article's top terms, with the other live stories that had
        them (up to STORIES_PER_TERM, the most recently indexed): (term, new entry)."""
        story, minute = bytes.fromhex(story_id), _minute(art.at)
        cutoff = _minute(art.at - self._story_window_s)
        story_terms = []
        for t in vector.top(stories.INDEX_TERMS):
            term = int(t).to_bytes(4, "big")
            indexed = read.st_found.get(term, b"")
            listed = [indexed[i : i + _STORY_ITEM] for i in range(0, len(indexed), _STORY_ITEM)]
            # the story's own minute never goes back: a backlog's article joining it would make it
            # look out of the window to every lookup
            own = max((int.from_bytes(it[_ID_BYTES:], "big") for it in listed if it[:_ID_BYTES] == story), default=0)
            item = story + max(minute, own).to_bytes(4, "big")
            others = [
                it for it in listed
                if it[:_ID_BYTES] != story and int.from_bytes(it[_ID_BYTES:], "big") >= cutoff
            ]
            # newest first: an entry is dropped once its first story is out of the window (_WRITE's
            # put), so a late article's story put first took the live stories after it with it
            # A story founded by an article that a live story refused for its publication (an
            # archive page on the topic) takes only a free place: four of them pushed the live
            # story out of each of its words, and its next report founded a second one.
            own_place = [] if yield_to_live and len(others) >= STORIES_PER_TERM else [item]
            items = sorted([*own_place, *others], key=lambda it: it[_ID_BYTES:_STORY_ITEM], reverse=True)
            story_terms.append((term, b"".join(items[:STORIES_PER_TERM])))
        return story_terms

    # --- committing --------------------------------------------------------------------------

    def _expiry(self, art: _Article, window_s: float) -> int:
        """When what an article writes expires: a window after its crawl, and never less than
        a window from now. A page older than the window (a reprocess after a pipeline version
        bump, a replay of last month) would otherwise write keys already expired, and the next
        old page, its copy, would find nothing and be ``new`` again. Decisions do not depend on
        it: lookups ignore entries older than the window of the article being classified."""
        return math.ceil(max(art.at, self._wall_clock()) + window_s)

    async def _keep(self, art: _Article, read: _Read, plan: _Plan) -> None:
        """Run :data:`_KEEP` for a re-crawl decided ``unchanged``: the URL stays known for as long
        as it is crawled, and a crawl of its version live for near-duplicate matching (written
        again when its window had passed); a doc of the layout before versions takes this
        crawl's, if nothing was written to it since it was read."""
        header = {
            "prefix": self._p,
            "buckets": self._config.buckets,
            "memos_kept": MEMOS_KEPT,
            "doc_expiry": self._expiry(art, self._known_s),
            "expiry": self._expiry(art, self._window_s),
            "dd_cutoff": _minute(art.at - self._window_s),
            "at": repr(art.at),
        }
        adopted = [read.doc_fp or b"", read.doc_t or b""] if plan.adopts_version else [b"", b""]
        indexed = (
            [art.sketch.stored(), art.ref + _minute(art.at).to_bytes(4, "big"), *art.entries]
            if plan.index_entries and art.entries
            else [b"", b""]
        )
        await self._keep_script(
            keys=[self._doc(art.ref), self._sig(art.ref)],
            args=[json.dumps(header), *adopted, art.version, *indexed],
        )

    async def _commit(
        self, art: _Article, read: _Read, plan: _Plan, weighed: stories.TermStats
    ) -> DedupDecision | None:
        """Run :data:`_COMMIT`: the decision (ours or a twin's), or None to retry. ``weighed``:
        the DF snapshot the article was weighed by."""
        decision = plan.decision
        dd_entries = art.entries if plan.index_entries else []
        # the story of the original that a copy's update no longer copies (_same_url)
        left = _text(read.doc_story) if read.doc_dup is not None and decision.duplicate_of is None else None
        if left == decision.story_id:
            left = None
        # A new article is counted in the language's snapshot in force, which a refresh may
        # have replaced since it was weighed; if the language has left the table meanwhile, in
        # the one it was weighed by (its count still reaches Redis before the language is read
        # again: see _term_stats).
        held = self._stats.get(art.language)
        stats = held.stats if held is not None else weighed
        counted = (
            plan.count_terms
            and art.terms.ids.size > 0
            and stories.counted_in_df(art.article_id, stats)
        )
        header: dict[str, Any] = {
            "prefix": self._p,
            "buckets": self._config.buckets,
            "memo": art.memo_field,
            "memos_kept": MEMOS_KEPT,
            "doc_id": _text(read.doc_id) or "",
            "at": repr(art.at),
            "doc_expiry": self._expiry(art, self._known_s),
            "expiry": self._expiry(art, self._window_s),
            "st_expiry": self._expiry(art, self._story_window_s),
            "dd_cutoff": _minute(art.at - self._window_s),
            "st_cutoff": _minute(art.at - self._story_window_s),
            "id": "" if read.doc_id is not None else art.article_id,
            "story": decision.story_id or "",
            "dup": decision.duplicate_of or "",
            "article_id": art.article_id,
            "outlet": art.outlet,
            "story_window": self._story_window_s,
            "header": _STORY_HEADER.format,
            "old_header": _OLD_STORY_HEADER.format,
            "centroid_t": repr(plan.centroid_t),
            "n_dd": len(dd_entries),
            "n_st": len(plan.story_terms),
            # a copy's or an update's entries: only for a story that still is (one of copies
            # whose own story expired has no centroid, and no article could join it by its terms)
            "joins_story": not plan.by_terms,
            "left": left or "",
        }
        if plan.story_version is not None:  # absent, not null: cjson's null is true in Lua
            header["story_v"] = plan.story_version
        if art.published is not None:
            header["published"] = repr(art.published)
        story_id = decision.story_id or "-"
        keys = [
            self._doc(art.ref),
            self._sig(art.ref),
            *(self._story(story_id, part) for part in (":s", ":m", ":outlets")),
            self._story(left or "-", ":m"),
        ]
        args: list[bytes | str] = [
            json.dumps(header),
            decision.encode(),
            read.doc_version or b"",
            read.doc_fp or b"",
            read.doc_t or b"",
            art.version,
            art.sketch.stored(),
            art.ref + _minute(art.at).to_bytes(4, "big"),
            plan.centroid.pack() if plan.centroid is not None else b"",
            *dd_entries,
            *(read.dd_found.get(e, b"") for e in dd_entries),
            *(t for t, _ in plan.story_terms),
            *(read.st_found.get(t, b"") for t, _ in plan.story_terms),
            *(v for _, v in plan.story_terms),
        ]
        reply = await self._commit_script(keys=keys, args=args)
        if isinstance(reply, bytes):  # a twin delivery committed first: its decision is ours
            return DedupDecision.decode(reply)
        if reply != 1:
            return None
        if counted:
            self._count(art, stats)
        return decision


def _duplicate(original: bytes | None, story: bytes | None, similarity: float) -> _Plan | None:
    """A duplicate of ``original`` (None when the original's doc has already expired)."""
    if original is None:
        return None
    return _Plan(DedupDecision(Status.DUPLICATE, original.decode(), similarity, _text(story)))


def _members(members: list[tuple[bytes, float]], kind: bytes) -> dict[str, datetime]:
    """The members tagged ``kind`` (``a:`` for articles; none for outlets, in a set of their
    own; :data:`_OLD_OUTLET` for outlets among articles) of a story's sorted set, untagged, with
    their times."""
    return {
        member[len(kind) :].decode(): datetime.fromtimestamp(at, UTC)
        for member, at in members
        if member.startswith(kind)
    }


def _df_language(language: str | None) -> str:
    """The document frequencies an article counts in and is weighed by: its language's if the
    detector knows it (so as before for every such language), else the shared ``und`` ones. A
    page's declared language, used when detection is unsure, can be any two or three letters; a
    DF array for each (512 KiB in every worker, a Redis key a day) would be memory without bound."""
    code = (language or "").lower()
    return code if code in DETECTED_LANGUAGES else "und"


def _minute(at: float) -> int:
    """Index entries carry the minute they were written (4 bytes: until the year 10136)."""
    return max(0, math.floor(at / 60.0))


def _digest(*parts: str) -> bytes:
    return hashlib.blake2b("\x1f".join(parts).encode(), digest_size=_ID_BYTES).digest()


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode()
