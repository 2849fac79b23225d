"""Articles and page outcomes in Redis: deterministic keys, versioned records, atomic writes.

Key layout (``{p}`` is ``settings.redis_prefix``, default ``wf``):

| key | type | content | TTL |
| --- | --- | --- | --- |
| ``{p}:article:{article_id}`` | hash | ``json`` (the Article as on the ``articles`` topic), ``content_hash``, ``pipeline_version``, ``domain``, ``published_ts``, ``first_seen_ts``, ``fetched_ts`` (when the crawl that wrote, withdrew or restored this version was fetched, or a later one that found its page gone again, Unix seconds), ``seen_ts`` (when the newest crawl that found the page unchanged was fetched, if after ``fetched_ts``: a withdrawal crawled before it is stale), ``withdrawn`` (only while the article is withdrawn: the JSON of the article's ``withdrawn`` field, ``{"at": fetched_at of the crawl that found the page gone, "http_status": 404, 410 or 451}``; ``json`` then carries it too), ``published`` (the marker last sent to ``articles``: ``content_hash|pipeline_version``, then ``|`` and the ``withdrawn`` JSON for a withdrawn version), ``writer`` (``topic/partition/offset`` of the record that wrote this version: the only one that publishes it; emptied when it could not, and the next record saving that version takes it over), ``last_partition`` (``topic/partition``), ``last_offset``, ``last_published`` (where ``articles`` took this article's newest record, and its marker: a worker whose older version the topic took after a newer one sends the newer one again), ``publishing:{record}`` (the marker a record of pages.raw, ``topic/partition/offset``, is sending: set before the send, deleted by its last mark; a redelivery of a record whose field is still there, killed or revoked after the send, sends the version Redis holds again, as the one it sent may have reached the topic after it) | ``article_ttl_days``, renewed on every sighting |
| ``{p}:idx:time`` | sorted set | current article ids (a withdrawn one leaves it, and comes back when restored) scored by :func:`index_score`: publication time (fetch time when the page has none, at most a day after the fetch), Unix seconds | capped at ``time_index_max_articles``, the oldest dropped first |
| ``{p}:idx:domain:{domain}`` | sorted set | the same, per domain (withdrawn ids left out too) | capped at ``domain_index_max_articles``; the key expires ``article_ttl_days`` after the domain's last article |
| ``{p}:page:{url_id}`` | hash | outcome of the page URL's newest record (by ``source_ts_ms``; a replay of an older range leaves it): ``url``, ``outcome``, ``stage``, ``reason``, ``article_id`` (the article the URL made; kept on a page dropped for its HTTP status, which may withdraw it: :meth:`ArticleStore.withdraw`; a newer record of the URL that made no article, a failed re-crawl, keeps it too, whichever was handled first), ``withdrawal`` and ``withdrawal_ts`` (the newest withdrawal the URL's crawls found, its JSON and fetched_at, until a crawl after it makes an article: an older crawl that saves the article later withdraws it), ``topic``, ``partition``, ``offset``, ``source_ts_ms`` (the Kafka record's timestamp, so a replay rewrites the same bytes) | ``article_ttl_days`` while it names an article (so that a 404 crawled weeks later still finds the article to withdraw), else ``page_status_ttl_days`` |

``url_id`` is the first 32 hex digits of SHA-256 of the page URL as crawled, in the form
``pages.raw`` messages are parsed to (``workers.models.crawled_url``: lowercase host, punycode,
percent-encoded path), which is also what the ``url`` field holds: a page dead-lettered before its
message was parsed and the same URL crawled again later share one record.

Indexes are scored by publication time, not by arrival, so that a replay writes the same bytes and
old pages replayed today sort where they belong. They are bounded by count, not by the articles'
lifetime: an id stays until the cap pushes it out, after its article record expired, and readers
skip ids whose hash is gone (README: size the caps to the article TTL times the daily rate).

A write replaces the stored article only when it comes from a newer crawl, or from the same crawl
with a newer pipeline version or changed content, all inside one Lua script: a redelivery or
replay of the same page leaves the record byte-for-byte as it was, a replay of an older crawl
never puts back content that a newer crawl replaced, and concurrent workers cannot interleave
half-writes. The
``published`` field is set only after the ``articles`` topic acknowledged the record, which makes
the publish decision survive a crash between the two writes; the ``publishing:`` field, set before
the send, makes the order of the topic survive one: a record killed between its send and its mark
cannot leave an older version as the topic's last record of the article.

A page whose re-crawl answers 404, 410 or 451 withdraws the article its page record names
(:meth:`ArticleStore.withdraw`): a new version of the article, the same json with ``withdrawn``
appended, written and published as any version is (the same writer, marker and mark), unless a
newer crawl stored the version Redis holds. A later crawl with the same content makes it current
again as it was (:meth:`ArticleStore.touch`, or a save of the same version), one with another
content is an update; either leaves ``withdrawn`` behind. Both are decided on the crawls'
``fetched_at`` against ``fetched_ts`` (and ``seen_ts``, for a withdrawal), so a redelivery or replay
decides alike. Withdrawn ids
leave the indexes, so that readers listing current articles do not list them; the hash keeps the
article (text, title, withdrawal) for its TTL, renewed by every crawl of the gone page.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

import redis
import redis.asyncio as aioredis

from workers.models import Article, SourcePosition, Withdrawal, crawled_url
from workers.settings import Settings
from workers.urlnorm import url_digest

# Shared by the scripts that write or mark an article's version. A version's marker names what a
# consumer of ``articles`` gets: its content, pipeline version and, once it is withdrawn, the
# withdrawal (the ``withdrawn`` field, the JSON the Article's ``withdrawn`` dumps to). The json of a
# withdrawn article is the json before, with that field appended: the Article model has it last,
# so the bytes are what the model dumps, and taking the field off restores the bytes before.
_VERSIONS = """
local function marker_of(content_hash, version, withdrawn)
  if withdrawn then
    return content_hash .. '|' .. version .. '|' .. withdrawn
  end
  return content_hash .. '|' .. version
end

local function withdrawn_suffix(withdrawn)
  return ',"withdrawn":' .. withdrawn .. '}'
end

-- A crawl that found the page with the content deduplication knows for it: a withdrawal crawled
-- before it, delivered late, is stale (_WITHDRAW_ARTICLE). Kept apart from ``fetched_ts``, which
-- saves compare with: an update crawled before such a sighting and saved after it must not be
-- stale, as deduplication already holds it as the page's content and would never let it be saved
-- again. Only a newer crawl writes, so a redelivery or replay leaves the same bytes.
local function note_sighting(article_key, fetched, stored_fetched, stored_seen)
  if fetched > math.max(stored_fetched, tonumber(stored_seen) or 0) then
    redis.call('HSET', article_key, 'seen_ts', fetched)
  end
end

-- The article as it was before its withdrawal, current again and written by this record (a
-- newer crawl found its page, with the same content); back in the indexes.
local function restore(article_key, time_index, domain_index, article_id, withdrawn, writer, fetched,
                       time_cap, domain_cap)
  local held = redis.call('HMGET', article_key, 'json', 'published_ts')
  local suffix = withdrawn_suffix(withdrawn)
  if string.sub(held[1], -#suffix) ~= suffix then
    error('the json of withdrawn article ' .. article_id .. ' does not end with its withdrawal')
  end
  redis.call('HSET', article_key, 'json', string.sub(held[1], 1, -#suffix - 1) .. '}', 'writer', writer,
             'fetched_ts', fetched)
  redis.call('HDEL', article_key, 'withdrawn')
  redis.call('ZADD', time_index, held[2], article_id)
  redis.call('ZADD', domain_index, held[2], article_id)
  redis.call('ZREMRANGEBYRANK', time_index, 0, -time_cap - 1)
  redis.call('ZREMRANGEBYRANK', domain_index, 0, -domain_cap - 1)
end

-- Only the record that wrote the version publishes it: another record of the same page in flight
-- at the same moment (a replay copy, a re-crawl) would publish it a second time. If the writer
-- crashes before publishing, its record is redelivered and publishes then. ``own``: the version
-- is the caller's article as it sent it (else the json Redis holds is returned to be sent).
local function to_publish(article_key, result, marker, published, stored_writer, writer, own)
  local sending = 'publishing:' .. writer
  if result ~= 'stale' and published ~= marker and stored_writer == writer then
    -- said before the record is sent, so that a redelivery knows it may be on the topic (below)
    redis.call('HSET', article_key, sending, marker)
    if own then
      return {result, 'own'}
    end
    return {result, 'held', redis.call('HGET', article_key, 'json'), marker, writer}
  end
  if redis.call('HEXISTS', article_key, sending) == 1 then
    -- A delivery of this record sent a version and was killed or revoked before its mark: the
    -- broker may have taken that record after a newer version's, and no mark knows of it. Sending
    -- the version Redis holds again puts it last.
    local held = redis.call('HMGET', article_key, 'json', 'content_hash', 'pipeline_version', 'writer', 'withdrawn')
    return {result, 'held', held[1], marker_of(held[2], held[3], held[5]), held[4] or ''}
  end
  return {result}
end
"""

_SAVE_ARTICLE = _VERSIONS + """
local article_key, time_index, domain_index = KEYS[1], KEYS[2], KEYS[3]
local json, content_hash, version = ARGV[1], ARGV[2], tonumber(ARGV[3])
local domain, score, now, ttl = ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local article_id, time_cap, domain_cap, writer = ARGV[8], tonumber(ARGV[9]), tonumber(ARGV[10]), ARGV[11]
local fetched = tonumber(ARGV[12])

local stored = redis.call('HMGET', article_key, 'content_hash', 'pipeline_version', 'published', 'writer', 'fetched_ts',
                         'withdrawn', 'seen_ts')
local result
if not stored[1] then
  result = 'new'
else
  local stored_version, stored_fetched, withdrawn = tonumber(stored[2]), tonumber(stored[5]) or 0, stored[6]
  if fetched < stored_fetched or (fetched == stored_fetched and (withdrawn or stored_version > version)) then
    -- an older crawl (a replay of an earlier range), or an older pipeline's run of this crawl; a
    -- crawl as old as the withdrawal (which wins a tie, whatever the order they come in)
    result = 'stale'
  elseif withdrawn and stored[1] == content_hash and stored_version == version then
    result = 'restored'
    restore(article_key, time_index, domain_index, article_id, withdrawn, writer, fetched, time_cap, domain_cap)
    stored[4] = writer
  elseif stored[1] == content_hash and stored_version == version then
    result = 'unchanged'
    note_sighting(article_key, fetched, stored_fetched, stored[7])
    if (stored[4] or '') == '' then
      -- released by a record that could not publish it (ArticleStore.release): this one takes over
      redis.call('HSET', article_key, 'writer', writer)
      stored[4] = writer
    end
    if stored[4] == writer and stored[3] ~= content_hash .. '|' .. version then
      -- this record is about to publish the version (a takeover, or its own redelivery after a
      -- crash before publishing): Redis holds what the topic will, to the processing time
      redis.call('HSET', article_key, 'json', json)
    end
  else
    result = 'updated'
  end
end
if result == 'new' or result == 'updated' then
  redis.call('HSET', article_key, 'json', json, 'content_hash', content_hash, 'pipeline_version', version,
             'domain', domain, 'published_ts', score, 'writer', writer, 'fetched_ts', fetched)
  -- a newer crawl with another content: the page is back, as this version
  redis.call('HDEL', article_key, 'withdrawn')
  stored[4] = writer
  redis.call('HSETNX', article_key, 'first_seen_ts', now)
  redis.call('ZADD', time_index, score, article_id)
  redis.call('ZADD', domain_index, score, article_id)
  redis.call('ZREMRANGEBYRANK', time_index, 0, -time_cap - 1)
  redis.call('ZREMRANGEBYRANK', domain_index, 0, -domain_cap - 1)
end
redis.call('EXPIRE', article_key, ttl)
redis.call('EXPIRE', domain_index, ttl)
-- a restored article goes out as it was before its withdrawal, which Redis holds
local own = result ~= 'restored'
return to_publish(article_key, result, content_hash .. '|' .. version, stored[3], stored[4], writer, own)
"""

# A sighting of the same content (deduplication found it unchanged): the article and its domain
# index live on, and the record itself is left byte-for-byte as it was but for ``seen_ts`` (a
# newer crawl found the page: note_sighting), unless the article is
# withdrawn, this crawl is newer than its withdrawal and saw the content stored: then it is
# current again (restored), and this record publishes it. A crawl that saw other content (a newer
# version that deduplication knows and whose record has not saved it yet) restores nothing: the
# text stored is not what the page shows, and that record's save makes the article current.
# KEYS[1] the article, KEYS[2] the time index, KEYS[3] its domain's; ARGV[1] the TTL, ARGV[2] the
# sighting record, ARGV[3] its fetched_at, ARGV[4] the article id, ARGV[5] and ARGV[6] the index
# caps, ARGV[7] the content hash the sighting saw.
_TOUCH_ARTICLE = _VERSIONS + """
local article_key, ttl, writer, fetched = KEYS[1], ARGV[1], ARGV[2], tonumber(ARGV[3])
if redis.call('EXPIRE', article_key, ttl) == 0 then
  return {'unchanged'}
end
local stored = redis.call('HMGET', article_key, 'content_hash', 'pipeline_version', 'published', 'writer', 'fetched_ts',
                          'withdrawn', 'seen_ts')
local result, withdrawn = 'unchanged', stored[6]
if withdrawn and fetched > tonumber(stored[5]) and stored[1] == ARGV[7] then
  result = 'restored'
  restore(article_key, KEYS[2], KEYS[3], ARGV[4], withdrawn, writer, fetched, tonumber(ARGV[5]), tonumber(ARGV[6]))
  stored[4], withdrawn = writer, nil
else
  note_sighting(article_key, fetched, tonumber(stored[5]), stored[7])
end
-- after a restore, which recreates a domain index that the withdrawal emptied (and Redis deleted)
redis.call('EXPIRE', KEYS[3], ttl)
return to_publish(article_key, result, marker_of(stored[1], stored[2], withdrawn), stored[3], stored[4], writer, false)
"""

# A page that says its publisher withdrew the article (ArticleStore.withdraw). The newest crawl
# decides, as for a save: a withdrawal older than the stored version, or than a crawl that found
# the page unchanged since (``seen_ts``), is stale (a replay of an earlier range, a crawl delivered
# late), and a withdrawal as old as it wins the tie (as in
# _SAVE_ARTICLE). An article already withdrawn keeps its first withdrawal (a redelivery or a later
# crawl of the gone page writes the same bytes and publishes nothing), but a later crawl moves
# ``fetched_ts``: only a crawl after the last one that found the page gone restores it. Withdrawn
# ids leave the indexes (readers list current articles from them); the hash keeps the article.
# KEYS[1] the article, KEYS[2] the time index, KEYS[3] its domain's; ARGV[1] the withdrawal's JSON,
# ARGV[2] its fetched_at, ARGV[3] the withdrawing record, ARGV[4] the article id, ARGV[5] the TTL.
_WITHDRAW_ARTICLE = _VERSIONS + """
local article_key, withdrawal, fetched, writer = KEYS[1], ARGV[1], tonumber(ARGV[2]), ARGV[3]
local stored = redis.call('HMGET', article_key, 'json', 'content_hash', 'pipeline_version', 'published', 'writer',
                          'fetched_ts', 'withdrawn', 'seen_ts')
if not stored[1] then
  return {'missing'}
end
local result, withdrawn, stored_fetched = 'unchanged', stored[7], tonumber(stored[6]) or 0
if fetched < math.max(stored_fetched, tonumber(stored[8]) or 0) then
  result = 'stale'
elseif withdrawn then
  if fetched > stored_fetched then
    redis.call('HSET', article_key, 'fetched_ts', fetched)
  end
  if (stored[5] or '') == '' then
    -- released by a record that could not publish it (ArticleStore.release): this one takes over
    redis.call('HSET', article_key, 'writer', writer)
    stored[5] = writer
  end
else
  result, withdrawn, stored[5] = 'withdrawn', withdrawal, writer
  redis.call('HSET', article_key, 'json', string.sub(stored[1], 1, -2) .. withdrawn_suffix(withdrawal),
             'withdrawn', withdrawal, 'writer', writer, 'fetched_ts', fetched)
  redis.call('ZREM', KEYS[2], ARGV[4])
  redis.call('ZREM', KEYS[3], ARGV[4])
end
redis.call('EXPIRE', article_key, ARGV[5])
return to_publish(article_key, result, marker_of(stored[2], stored[3], withdrawn), stored[4], stored[5], writer, false)
"""

# A page's last outcome is the outcome of its newest record (by the Kafka timestamp, which the
# crawler's produce sets and a replay's copy keeps), not of the last one handled: a replay of an
# older range must not put an old failure over a later success. Records sent in the same
# millisecond (one producer batch) are ordered by offset: a URL's records share a partition.
# The article the URL made stays named when a newer record made none (a re-crawl that failed or
# was dropped): the URL still made it, and a later 404 of the URL must find it. That holds whatever
# order the two are handled in: a worker finishes a partition's records out of order (a failed
# re-crawl needs no extraction), so an older record that made the article still names it. A record
# naming an article lives as long as an article may (renewed by each crawl), others for the page TTL.
# The newest withdrawal the URL's crawls found (``withdrawal``, ``withdrawal_ts``) is kept too, by
# fetched_at, for a crawl of the page in flight with it: one that had made no article yet when the
# gone page was handled (which found nothing to withdraw). Whichever of the two records comes here
# second gets the withdrawal back with the article, and applies it (ArticleStore.withdraw, where
# the newest crawl decides); a kept crawl after the withdrawal forgets it.
# KEYS[1] the page hash; ARGV[1] its TTL without an article, ARGV[2] with one, ARGV[3] the
# record's timestamp ('' when it has none: written, as nothing orders it), ARGV[4] its offset,
# ARGV[5] the article id ('' for none), ARGV[6] the fetched_at of a kept page ('' for another
# outcome), ARGV[7] the withdrawal the page says ('' for none) and ARGV[8] its fetched_at, then the
# other fields and values.
_RECORD_PAGE_OUTCOME = """
local held = redis.call('HMGET', KEYS[1], 'source_ts_ms', 'offset', 'article_id', 'withdrawal', 'withdrawal_ts')
local stored, ts = tonumber(held[1] or ''), tonumber(ARGV[3])
local article_id, wrote = held[3] or '', true
if ts and stored and (stored > ts or (stored == ts and tonumber(held[2]) > tonumber(ARGV[4]))) then
  -- an older record: the outcome stays the newer one's, and so does its TTL unless this one adds
  wrote = false
  if article_id == '' and ARGV[5] ~= '' then
    article_id, wrote = ARGV[5], true
    redis.call('HSET', KEYS[1], 'article_id', article_id)
  end
else
  if ARGV[5] ~= '' then
    article_id = ARGV[5]
  end
  redis.call('HSET', KEYS[1], 'article_id', article_id, unpack(ARGV, 9))
end
local withdrawal, withdrawal_ts = held[4], tonumber(held[5] or '')
local kept_fetched, says_gone = tonumber(ARGV[6]), tonumber(ARGV[8])
if says_gone and (not withdrawal_ts or says_gone > withdrawal_ts) then
  withdrawal, withdrawal_ts, wrote = ARGV[7], says_gone, true
  redis.call('HSET', KEYS[1], 'withdrawal', withdrawal, 'withdrawal_ts', ARGV[8])
elseif kept_fetched and withdrawal_ts and kept_fetched > withdrawal_ts then
  withdrawal, withdrawal_ts, wrote = nil, nil, true
  redis.call('HDEL', KEYS[1], 'withdrawal', 'withdrawal_ts')
end
if wrote then
  redis.call('EXPIRE', KEYS[1], article_id == '' and ARGV[1] or ARGV[2])
end
if withdrawal and article_id ~= '' and (kept_fetched or says_gone) then
  return {article_id, withdrawal}
end
return false
"""

# Only the record that wrote the version lets it go (a newer crawl may have written since). A
# version the topic refused once Redis said it was published (a resend, below) is no longer so.
# The record that was sending it is dead-lettered and acknowledged: no delivery of it comes back.
# KEYS[1] the article; ARGV[1] the version's writer, ARGV[2] its marker, ARGV[3] the sending record.
_RELEASE_ARTICLE = """
if redis.call('HGET', KEYS[1], 'writer') == ARGV[1] then
  redis.call('HSET', KEYS[1], 'writer', '')
end
if redis.call('HGET', KEYS[1], 'published') == ARGV[2] then
  redis.call('HSET', KEYS[1], 'published', '')
end
redis.call('HDEL', KEYS[1], 'publishing:' .. ARGV[3])
"""

# Two workers can publish two versions of one article at once (two crawled URLs with one
# canonical URL sit in different partitions of pages.raw), and the broker may take the older one
# last: the compacted topic would keep it for good. Each publish is marked with where the topic
# put it, and the record at the highest offset decides: if it is not the version Redis holds,
# the version Redis holds is sent again (the script returns it), by whichever of the two marks
# finds that out. KEYS[1] the article; ARGV[1] the published marker, ARGV[2] the topic and
# partition it went to, ARGV[3] its offset, ARGV[4] '1' for a resend, ARGV[5] the record of
# pages.raw that sent it, whose ``publishing:`` field goes once nothing is left for it to send
# (_SAVE_ARTICLE: a mark that never comes is made up by its redelivery). Offsets compare within one
# topic partition only (a renamed topic, a changed partition count: the record just published is
# the newest). A resend went out after the mark that asked for it read the newest position, so
# it is newer than that; taking it as the newest also ends the resends if the topic's offsets
# went back (the topic recreated or truncated), where every record looks older than the last.
_MARK_PUBLISHED = _VERSIONS + """
local ours, partition, offset, resent = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4] == '1'
local function to_resend()
  local held = redis.call('HMGET', KEYS[1], 'content_hash', 'pipeline_version', 'published',
                          'last_partition', 'last_offset', 'last_published', 'withdrawn')
  if not held[1] then
    return false
  end
  local current = marker_of(held[1], held[2], held[7])
  local function held_version()
    local stored = redis.call('HMGET', KEYS[1], 'json', 'writer')
    return {stored[1], current, stored[2] or ''}
  end
  if not resent and held[4] == partition and tonumber(held[5]) > offset then
    -- a record the topic took after ours: resend only if it is older than ours, which Redis holds
    if ours == current and held[6] ~= current then
      return held_version()
    end
    return false
  end
  redis.call('HSET', KEYS[1], 'last_partition', partition, 'last_offset', offset, 'last_published', ours)
  if ours == current then
    redis.call('HSET', KEYS[1], 'published', ours)
    return false
  end
  if held[3] == current then
    -- the version Redis holds reached the topic before ours did
    return held_version()
  end
  return false
end
local resend = to_resend()
if not resend then
  redis.call('HDEL', KEYS[1], 'publishing:' .. ARGV[5])
end
return resend
"""


class SaveResult(StrEnum):
    NEW = "new"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    STALE = "stale"
    # a withdrawn article current again, as it was before (a newer crawl of the same content)
    RESTORED = "restored"
    WITHDRAWN = "withdrawn"


@dataclass(frozen=True, slots=True)
class SavedArticle:
    """What the save did, and what the saving record sends to ``articles`` (None: nothing)."""

    result: SaveResult
    to_publish: ArticleVersion | None


@dataclass(frozen=True, slots=True)
class OwedWithdrawal:
    """A withdrawal a crawl of a page found, for the article the page's record names, which may
    not have had it: that article was saved by a crawl in flight with it (ArticleStore.record_page_outcome)."""

    article_id: str
    withdrawal: Withdrawal


@dataclass(frozen=True, slots=True)
class ArticleVersion:
    """A version of an article as the ``articles`` topic gets it: the record's key and value, its
    publish marker, and the record of pages.raw that wrote it (the one that publishes it). A
    version resent from Redis goes as Redis holds it, byte for byte: a newer pipeline's worker may
    have written fields this one's model does not know."""

    article_id: str
    value: bytes
    marker: str
    writer: str

    @classmethod
    def of(cls, article: Article) -> ArticleVersion:
        return cls(
            article.article_id, article.model_dump_json(by_alias=True).encode(), publish_marker(article), article.source.label
        )


def _saved(article_id: str, result: bytes, sends: list[bytes], *, own: Article | None = None) -> SavedArticle:
    """A script's reply: its result, then nothing to send, ``own`` (the saved article as given),
    or the version Redis holds (json, marker, writer)."""
    saved = SaveResult(result.decode())
    if not sends:
        return SavedArticle(saved, None)
    if sends == [b"own"] and own is not None:
        return SavedArticle(saved, ArticleVersion.of(own))
    _, value, marker, writer = sends
    return SavedArticle(saved, ArticleVersion(article_id, value, marker.decode(), writer.decode()))


def connect(settings: Settings) -> aioredis.Redis:
    """A worker's Redis client."""
    return aioredis.Redis.from_url(
        settings.redis_url.get_secret_value(),
        socket_timeout=settings.redis_timeout_s,
        socket_connect_timeout=settings.redis_timeout_s,
    )


def connect_blocking(settings: Settings, timeout_s: float) -> redis.Redis:
    """A blocking client for a command or a probe that asks Redis once; ``timeout_s`` bounds its
    connect and every call."""
    return redis.Redis.from_url(
        settings.redis_url.get_secret_value(), socket_connect_timeout=timeout_s, socket_timeout=timeout_s
    )


# What Redis does when full. Any other policy evicts keys with a TTL (volatile-*) or any key
# (allkeys-*): the once-only alert ledger among them, so an alert fires again, and dedup state, so
# a copy is published as new. Under noeviction a full Redis refuses writes (OOM), which the
# pipeline waits out as an outage, and a script's writes are all or nothing.
REQUIRED_EVICTION_POLICY = "noeviction"


def eviction_policy_problem(settings: Settings, timeout_s: float) -> str | None:
    """Why this Redis may lose wirefeed's keys when full (its ``maxmemory-policy``), or None. A
    Redis that does not say (INFO refused by an ACL) is taken at its word: None. Raises
    ``redis.RedisError`` when Redis does not answer."""
    client = connect_blocking(settings, timeout_s)
    try:
        policy = client.info("memory").get("maxmemory_policy")
    except redis.ResponseError:
        return None
    finally:
        client.close()
    if policy is None or policy == REQUIRED_EVICTION_POLICY:
        return None
    return (
        f"maxmemory-policy is {policy}: when Redis is full it evicts keys, the once-only alert "
        f"ledger's too, and alerts fire again; set it to {REQUIRED_EVICTION_POLICY}"
    )


# How far after its fetch a page's publication time may be and still order the indexes: an outlet
# dates in its own zone, up to 14 hours ahead of UTC. A CMS's wrong year (2099) would otherwise
# stay at the top of the indexes for good, since trimming takes the lowest scores.
_PUBLISHED_AHEAD_OF_FETCH = timedelta(days=1)


def index_score(article: Article) -> float:
    """Where the article sorts in the time and domain indexes: its publication time (its fetch
    time when it has none), at most a day after its fetch."""
    published = article.published_at or article.fetched_at
    return min(published, article.fetched_at + _PUBLISHED_AHEAD_OF_FETCH).timestamp()


def page_key(prefix: str, url: str) -> str:
    """The key of a page URL's last outcome (the demo and the tests read it too)."""
    return f"{prefix}:page:{url_digest(crawled_url(url))}"


def publish_marker(article: Article) -> str:
    """What the ``published`` field says once this version is on ``articles`` (marker_of in the
    scripts)."""
    marker = f"{article.content_hash}|{article.pipeline_version}"
    if article.withdrawn is not None:
        marker += f"|{article.withdrawn.model_dump_json()}"
    return marker


class ArticleStore:
    def __init__(
        self,
        client: aioredis.Redis,
        *,
        prefix: str,
        article_ttl_s: int,
        page_status_ttl_s: int,
        time_index_max_articles: int,
        domain_index_max_articles: int,
    ) -> None:
        self._redis = client
        self._prefix = prefix
        self._article_ttl_s = article_ttl_s
        self._page_status_ttl_s = page_status_ttl_s
        self._index_caps = (time_index_max_articles, domain_index_max_articles)
        self._save = client.register_script(_SAVE_ARTICLE)
        self._mark = client.register_script(_MARK_PUBLISHED)
        self._touch = client.register_script(_TOUCH_ARTICLE)
        self._withdraw = client.register_script(_WITHDRAW_ARTICLE)
        self._release = client.register_script(_RELEASE_ARTICLE)
        self._record_outcome = client.register_script(_RECORD_PAGE_OUTCOME)

    @classmethod
    def from_settings(cls, client: aioredis.Redis, settings: Settings) -> ArticleStore:
        return cls(
            client,
            prefix=settings.redis_prefix,
            article_ttl_s=int(timedelta(days=settings.article_ttl_days).total_seconds()),
            page_status_ttl_s=int(timedelta(days=settings.page_status_ttl_days).total_seconds()),
            time_index_max_articles=settings.time_index_max_articles,
            domain_index_max_articles=settings.domain_index_max_articles,
        )

    def article_key(self, article_id: str) -> str:
        return f"{self._prefix}:article:{article_id}"

    def page_key(self, url: str) -> str:
        return page_key(self._prefix, url)

    @property
    def time_index_key(self) -> str:
        return f"{self._prefix}:idx:time"

    def domain_index_key(self, domain: str) -> str:
        return f"{self._prefix}:idx:domain:{domain}"

    async def save(self, article: Article, *, now: datetime) -> SavedArticle:
        """Store the article if it is newer than the stored one, and say what its record sends to
        ``articles``: its own version when it wrote it and it is not published yet, the version
        Redis holds when an earlier delivery of the record sent one and never marked it."""
        score = index_score(article)
        result, *sends = await self._save(
            keys=[self.article_key(article.article_id), self.time_index_key, self.domain_index_key(article.domain)],
            args=[
                article.model_dump_json(by_alias=True),
                article.content_hash,
                article.pipeline_version,
                article.domain,
                score,
                int(now.timestamp()),
                self._article_ttl_s,
                article.article_id,
                *self._index_caps,
                article.source.label,
                article.fetched_at.timestamp(),
            ],
        )
        return _saved(article.article_id, result, sends, own=article)

    async def touch(self, article: Article) -> SavedArticle:
        """A sighting of the stored version's content (deduplication found it unchanged): renew
        the stored article's TTL, and if it is withdrawn and ``article`` was crawled after its
        withdrawal with the content stored, make it current again (RESTORED) and say what the
        sighting record sends."""
        result, *sends = await self._touch(
            keys=[self.article_key(article.article_id), self.time_index_key, self.domain_index_key(article.domain)],
            args=[
                self._article_ttl_s,
                article.source.label,
                article.fetched_at.timestamp(),
                article.article_id,
                *self._index_caps,
                article.content_hash,
            ],
        )
        return _saved(article.article_id, result, sends)

    async def linked_article(self, url: str) -> str | None:
        """The article id the page record of ``url`` names: the article the URL made last."""
        article_id = await self._redis.hget(self.page_key(url), "article_id")
        return article_id.decode() if article_id else None

    async def withdraw(self, article_id: str, withdrawal: Withdrawal, *, writer: SourcePosition) -> SavedArticle | None:
        """Withdraw the stored article (``writer``: the record of the page that says it is gone):
        WITHDRAWN and what the record sends, or UNCHANGED (withdrawn already), or STALE (a newer
        crawl stored the version Redis holds). None when no such article is stored."""
        domain = await self._redis.hget(self.article_key(article_id), "domain")
        if domain is None:
            return None
        # An article's domain is its canonical URL's host, which its id hashes: read outside the
        # script, it cannot have changed inside.
        result, *sends = await self._withdraw(
            keys=[self.article_key(article_id), self.time_index_key, self.domain_index_key(domain.decode())],
            args=[
                withdrawal.model_dump_json(), withdrawal.at.timestamp(), writer.label, article_id, self._article_ttl_s
            ],
        )
        if result == b"missing":
            return None
        return _saved(article_id, result, sends)

    async def release(self, version: ArticleVersion, *, sender: SourcePosition) -> None:
        """Give up publishing ``version`` (the topic refused it for good; ``sender`` the record
        that was sending it): the next record that saves the same version (a replay of its
        writer's offset) publishes it."""
        await self._release(
            keys=[self.article_key(version.article_id)], args=[version.writer, version.marker, sender.label]
        )

    async def mark_published(
        self, version: ArticleVersion, at: SourcePosition, *, resent: bool, sender: SourcePosition
    ) -> ArticleVersion | None:
        """Record that ``version`` is on the ``articles`` topic at ``at`` (``resent``: sent again
        because a mark returned it; ``sender`` the record of pages.raw that sent it). Returns the
        version Redis holds when that one must be sent again, for the topic's newest record of the
        article to be it."""
        held = await self._mark(
            keys=[self.article_key(version.article_id)],
            args=[version.marker, f"{at.topic}/{at.partition}", at.offset, "1" if resent else "0", sender.label],
        )
        if not held:
            return None
        value, marker, writer = held
        return ArticleVersion(version.article_id, value, marker.decode(), writer.decode())

    async def record_page_outcome(
        self,
        url: str,
        *,
        outcome: str,
        stage: str,
        reason: str,
        article_id: str | None,
        source: SourcePosition,
        source_ts_ms: int | None,
        kept_fetched_at: datetime | None = None,
        withdrawal: Withdrawal | None = None,
    ) -> OwedWithdrawal | None:
        """Record the page's outcome if its record is the URL's newest (``kept_fetched_at``: the
        crawl's fetched_at when it made an article; ``withdrawal``: what a page dropped for its
        HTTP status says). Returns the newest withdrawal the URL's crawls found, with the article
        the page record names, when this kept crawl is not newer than it or this record found the
        page gone: the other record of the two may have come first, and found no article."""
        timestamp = source_ts_ms if source_ts_ms is not None else ""
        fields = {
            "url": crawled_url(url),
            "outcome": outcome,
            "stage": stage,
            "reason": reason,
            "topic": source.topic,
            "partition": source.partition,
            "offset": source.offset,
            "source_ts_ms": timestamp,
        }
        owed = await self._record_outcome(
            keys=[self.page_key(url)],
            args=[
                self._page_status_ttl_s, self._article_ttl_s, timestamp, source.offset, article_id or "",
                kept_fetched_at.timestamp() if kept_fetched_at is not None else "",
                withdrawal.model_dump_json() if withdrawal is not None else "",
                withdrawal.at.timestamp() if withdrawal is not None else "",
                *(item for pair in fields.items() for item in pair),
            ],
        )
        if not owed:
            return None
        owed_article, owed_withdrawal = owed
        return OwedWithdrawal(owed_article.decode(), Withdrawal.model_validate_json(owed_withdrawal))
