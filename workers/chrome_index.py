"""Site-learned chrome: per-domain statistics of body blocks, shared by every worker through Redis.

A block (paragraph, list item, heading of the extracted body, see workers/stages/chrome.py) that
recurs on many *different* pages of one domain is that site's chrome: a call-to-action box, an
author box, "follow us", a widget heading. The extraction stage removes such blocks from later
pages of the domain.

How the pipeline uses it (extraction runs in pool processes that have no Redis)::

    domain = domain_of(decoded.effective_url)
    known = await index.known_chrome(domain)                    # one round trip
    result = await pool.extract(html, url, options, known_chrome=known)
    ...
    # a copy counts as its original: decision.duplicate_of (workers/pipeline.py)
    await index.observe(domain, decision.duplicate_of or article.article_id, result.value.block_hashes)

Counting. Each page counts once per block, whatever the number of times it is seen: ``observe``
is idempotent per page id (a re-crawl, a redelivery or a replay of the same article adds
nothing), and a page's hashes are a set. Counts decay exponentially (half-life
``half_life_days``), so a site redesign is learned and old chrome forgotten. The decay runs on
the domain's own time: the counts are read as of its last observation, so chrome is forgotten
as newer pages come without it, never while the site is quiet (a redelivery or replay of a
quiet site's page days later finds the chrome its page was extracted with). A block is *chrome*
when its decayed count of distinct pages rounds to at least ``min_pages`` and is at least
``min_share`` of the domain's decayed page count. A domain with fewer than ``min_pages`` pages seen has no chrome:
a cold domain is extracted exactly as without the index.

Decay is *forward decay*: an observation at time t adds ``2 ** ((t - landmark) / half_life)``
instead of 1, so stored scores never need to be rewritten as time passes (the decayed count at
time now is ``score / 2 ** ((now - landmark) / half_life)``); when the weights grow large the
domain is rebased (scores divided, landmark moved), which happens once every 40 half-lives.

Redis key layout (``{prefix}`` is ``Settings.redis_prefix``, ``{domain}`` the article domain)::

    {prefix}:chrome:{domain}:blocks   ZSET  member = block hash (16 hex), score = forward-decayed
                                            number of distinct pages carrying the block
    {prefix}:chrome:{domain}:pages    ZSET  member = page id (article id), score = unix time seen;
                                            makes observe idempotent per page
    {prefix}:chrome:{domain}:meta     HASH  landmark = unix time of the decay landmark,
                                            pages = forward-decayed number of pages observed,
                                            last = unix time of the latest observation (the
                                            counts are read as of it; statistics kept before
                                            it was written are read as of now)

Bounded memory: at most ``max_blocks`` hashes per domain (the lowest scores, i.e. the blocks seen
on fewest pages and longest ago, are evicted first), at most ``max_pages`` page ids per domain
(oldest first; a page re-crawled after its id was evicted counts again, which the thresholds
absorb), every key expires ``ttl_days`` after the domain's last observation, and
``known_chrome`` returns at most ``max_known`` hashes. Both operations are single Lua scripts:
atomic with respect to every other worker, one round trip each.

``MemoryChromeIndex`` is the same statistics in process memory, for the benchmark and for tests
without Redis; a parity test checks that both give the same answers.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import redis.asyncio as aioredis

_REBASE_EXPONENT = 40.0  # rebase when the current weight exceeds 2**40
# A landmark further ahead than this was set by a clock that was wrong: the domain starts over.
# (Nearer, as after the server's clock stepped back, now counts as the landmark.)
_FUTURE_LANDMARK_S = 86400


@dataclass(frozen=True, slots=True)
class ChromeIndexSettings:
    min_pages: int = 3
    min_share: float = 0.05
    half_life_days: float = 14.0
    max_blocks: int = 5000
    max_pages: int = 5000
    max_known: int = 1000
    ttl_days: float = 30.0

    @property
    def half_life_s(self) -> float:
        return self.half_life_days * 86400.0

    @property
    def ttl_s(self) -> int:
        return max(1, int(self.ttl_days * 86400))


def weight(now: float, landmark: float, half_life_s: float) -> float:
    return 2.0 ** ((now - landmark) / half_life_s)


def threshold(pages_score: float, current_weight: float, settings: ChromeIndexSettings) -> float:
    """The score (in forward-decay units) a block needs to count as chrome: a decayed count of
    distinct pages that rounds to ``min_pages`` (pages seen seconds apart have decayed a little),
    and ``min_share`` of the domain's decayed page count."""
    return max((settings.min_pages - 0.5) * current_weight, settings.min_share * pages_score)


class ChromeIndex:
    """The interface the pipeline and the benchmark use."""

    async def known_chrome(self, domain: str) -> frozenset[str]:  # pragma: no cover - interface
        raise NotImplementedError

    async def observe(self, domain: str, page_id: str, block_hashes: Iterable[str]) -> None:  # pragma: no cover
        raise NotImplementedError


# --- Redis ----------------------------------------------------------------------------------------

# Both scripts take ``now`` from the caller when it passes one (tests simulate time) and from
# the Redis server's clock otherwise: one clock for every worker, so a worker whose clock is days
# behind cannot lower the threshold, nor one ahead move the landmark into the future (after
# which every other worker's pages would weigh nothing). A clock behind the landmark counts as at it.
_NOW = """
local now = tonumber(ARGV[1])
if not now then
  local time = redis.call('TIME')
  now = tonumber(time[1]) + tonumber(time[2]) / 1000000
end
"""

_OBSERVE = _NOW + """
local half_life = tonumber(ARGV[3])
local max_blocks = tonumber(ARGV[4])
local max_pages = tonumber(ARGV[5])
local ttl = tonumber(ARGV[6])
local landmark = tonumber(redis.call('HGET', KEYS[3], 'landmark'))
if landmark and landmark > now + tonumber(ARGV[8]) then
  -- counted by a clock far ahead (a worker's, before the server's was everyone's): next to its
  -- pages every page of now weighs nothing, and nothing would decay until that time came
  redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
  landmark = nil
end
if redis.call('ZADD', KEYS[2], 'NX', now, ARGV[2]) == 0 then
  return 0
end
if not landmark then
  landmark = now
  redis.call('HSET', KEYS[3], 'landmark', string.format('%.6f', now), 'pages', '0')
end
now = math.max(now, landmark)
local w = 2 ^ ((now - landmark) / half_life)
if w > 2 ^ tonumber(ARGV[7]) then
  local members = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
  for i = 1, #members, 2 do
    redis.call('ZADD', KEYS[1], tonumber(members[i + 1]) / w, members[i])
  end
  local pages = tonumber(redis.call('HGET', KEYS[3], 'pages') or '0')
  redis.call('HSET', KEYS[3], 'landmark', string.format('%.6f', now), 'pages', string.format('%.17g', pages / w))
  w = 1
end
for i = 9, #ARGV do
  redis.call('ZINCRBY', KEYS[1], w, ARGV[i])
end
redis.call('HINCRBYFLOAT', KEYS[3], 'pages', w)
local last = tonumber(redis.call('HGET', KEYS[3], 'last'))
if not last or now > last then
  redis.call('HSET', KEYS[3], 'last', string.format('%.6f', now))
end
local card = redis.call('ZCARD', KEYS[1])
if card > max_blocks then
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, card - max_blocks - 1)
end
local npages = redis.call('ZCARD', KEYS[2])
if npages > max_pages then
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, npages - max_pages - 1)
end
redis.call('EXPIRE', KEYS[1], ttl)
redis.call('EXPIRE', KEYS[2], ttl)
redis.call('EXPIRE', KEYS[3], ttl)
return 1
"""

_KNOWN = _NOW + """
local half_life = tonumber(ARGV[2])
local min_pages = tonumber(ARGV[3])
local min_share = tonumber(ARGV[4])
local limit = tonumber(ARGV[5])
local landmark = tonumber(redis.call('HGET', KEYS[2], 'landmark'))
if not landmark or landmark > now + tonumber(ARGV[6]) then
  return {}
end
local pages = tonumber(redis.call('HGET', KEYS[2], 'pages') or '0')
-- as of the domain's latest observation: a quiet site's chrome does not decay away
local at = tonumber(redis.call('HGET', KEYS[2], 'last')) or now
local w = 2 ^ ((math.max(at, landmark) - landmark) / half_life)
local need = math.max((min_pages - 0.5) * w, min_share * pages)
return redis.call('ZREVRANGEBYSCORE', KEYS[1], '+inf', need, 'LIMIT', 0, limit)
"""


class RedisChromeIndex(ChromeIndex):
    def __init__(
        self,
        client: aioredis.Redis,
        prefix: str,
        settings: ChromeIndexSettings | None = None,
        *,
        clock: Callable[[], float] | None = None,
    ) -> None:
        """``clock``: seconds since the epoch; by default the Redis server's (one clock for all workers)."""
        self._client = client
        self._prefix = prefix
        self._settings = settings or ChromeIndexSettings()
        self._clock = clock
        self._observe = client.register_script(_OBSERVE)
        self._known = client.register_script(_KNOWN)

    def _now(self) -> str:
        return "" if self._clock is None else repr(self._clock())

    def keys(self, domain: str) -> tuple[str, str, str]:
        base = f"{self._prefix}:chrome:{domain}"
        return f"{base}:blocks", f"{base}:pages", f"{base}:meta"

    async def known_chrome(self, domain: str) -> frozenset[str]:
        blocks, _pages, meta = self.keys(domain)
        s = self._settings
        members = await self._known(
            keys=[blocks, meta],
            args=[self._now(), repr(s.half_life_s), s.min_pages, repr(s.min_share), s.max_known, _FUTURE_LANDMARK_S],
        )
        return frozenset(m.decode() if isinstance(m, bytes) else str(m) for m in members)

    async def observe(self, domain: str, page_id: str, block_hashes: Iterable[str]) -> None:
        s = self._settings
        hashes = sorted(set(block_hashes))
        await self._observe(
            keys=list(self.keys(domain)),
            args=[self._now(), page_id, repr(s.half_life_s), s.max_blocks, s.max_pages, s.ttl_s,
                  repr(_REBASE_EXPONENT), _FUTURE_LANDMARK_S, *hashes],
        )


# --- in memory ------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Domain:
    landmark: float
    pages_score: float = 0.0
    blocks: dict[str, float] = field(default_factory=dict)
    pages: dict[str, float] = field(default_factory=dict)
    last_seen: float = 0.0


class MemoryChromeIndex(ChromeIndex):
    """The same statistics as RedisChromeIndex, in one process (benchmark, tests)."""

    def __init__(self, settings: ChromeIndexSettings | None = None, *, clock: Callable[[], float] = time.time) -> None:
        self._settings = settings or ChromeIndexSettings()
        self._clock = clock
        self._domains: dict[str, _Domain] = {}

    def _live(self, domain: str, now: float) -> _Domain | None:
        state = self._domains.get(domain)
        if state is not None and (
            now - state.last_seen > self._settings.ttl_s or state.landmark > now + _FUTURE_LANDMARK_S
        ):
            del self._domains[domain]
            return None
        return state

    async def known_chrome(self, domain: str) -> frozenset[str]:
        now = self._clock()
        state = self._live(domain, now)
        if state is None:
            return frozenset()
        s = self._settings
        # as of the domain's latest observation: a quiet site's chrome does not decay away
        at = max(state.last_seen, state.landmark)
        need = threshold(state.pages_score, weight(at, state.landmark, s.half_life_s), s)
        # like ZREVRANGEBYSCORE: the blocks on most pages first, ties by member
        chosen = sorted(((score, digest) for digest, score in state.blocks.items() if score >= need), reverse=True)
        return frozenset(digest for _, digest in chosen[: s.max_known])

    async def observe(self, domain: str, page_id: str, block_hashes: Iterable[str]) -> None:
        now = self._clock()
        s = self._settings
        state = self._live(domain, now)
        if state is None:
            state = self._domains[domain] = _Domain(landmark=now)
        if page_id in state.pages:
            return
        state.pages[page_id] = now
        w = weight(max(now, state.landmark), state.landmark, s.half_life_s)
        if w > 2.0**_REBASE_EXPONENT:
            state.blocks = {digest: score / w for digest, score in state.blocks.items()}
            state.pages_score /= w
            state.landmark = now
            w = 1.0
        for digest in set(block_hashes):
            state.blocks[digest] = state.blocks.get(digest, 0.0) + w
        state.pages_score += w
        if len(state.blocks) > s.max_blocks:
            # like ZREMRANGEBYRANK: lowest scores first, ties by member
            ranked = sorted(state.blocks.items(), key=lambda item: (item[1], item[0]))
            for digest, _ in ranked[: len(state.blocks) - s.max_blocks]:
                del state.blocks[digest]
        if len(state.pages) > s.max_pages:
            ranked_pages = sorted(state.pages.items(), key=lambda item: (item[1], item[0]))
            for page, _ in ranked_pages[: len(state.pages) - s.max_pages]:
                del state.pages[page]
        state.last_seen = max(state.last_seen, now)

    def decayed_count(self, domain: str, digest: str) -> float:
        state = self._domains.get(domain)
        if state is None or digest not in state.blocks:
            return 0.0
        return state.blocks[digest] / weight(self._clock(), state.landmark, self._settings.half_life_s)


def settings_from(values: object) -> ChromeIndexSettings:
    """Build from a Settings-like object with ``chrome_*`` fields (missing fields keep defaults)."""
    defaults = ChromeIndexSettings()
    names = ("min_pages", "min_share", "half_life_days", "max_blocks", "max_pages", "max_known", "ttl_days")
    kwargs = {name: getattr(values, f"chrome_{name}", getattr(defaults, name)) for name in names}
    return ChromeIndexSettings(**kwargs)


__all__ = [
    "ChromeIndex",
    "ChromeIndexSettings",
    "MemoryChromeIndex",
    "RedisChromeIndex",
    "settings_from",
    "threshold",
    "weight",
]

