"""The Redis chrome index against the real test Redis: the same answers as the in-memory index on
the same history, its key layout, bounds and expiry, and idempotency under concurrent workers."""

from __future__ import annotations

import asyncio
import random

import pytest
import redis.asyncio as aioredis

from workers.chrome_index import ChromeIndexSettings, MemoryChromeIndex, RedisChromeIndex
from workers.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


async def test_redis_and_memory_give_the_same_answers_on_the_same_history(
    redis_client: aioredis.Redis, settings: Settings
) -> None:
    chrome = ChromeIndexSettings(min_pages=3, min_share=0.1, half_life_days=2, max_blocks=40, max_pages=25)
    clock = Clock()
    in_redis = RedisChromeIndex(redis_client, settings.redis_prefix, chrome, clock=clock)
    in_memory = MemoryChromeIndex(chrome, clock=clock)
    rng = random.Random(7)
    for step in range(120):
        clock.now += rng.choice((5, 60, 3600, 6 * 3600))
        domain = rng.choice(("a.example", "b.example"))
        page = f"p{rng.randint(0, 60)}"  # pages come back: re-crawls must not count
        hashes = {f"chrome{k}" for k in range(4) if rng.random() < 0.7} | {f"{page}-{k}" for k in range(5)}
        await in_redis.observe(domain, page, hashes)
        await in_memory.observe(domain, page, hashes)
        if step % 10 == 0:
            for name in ("a.example", "b.example", "cold.example"):
                assert await in_redis.known_chrome(name) == await in_memory.known_chrome(name), (step, name)
    assert await in_redis.known_chrome("a.example")  # the scenario does produce chrome


async def test_redis_rebases_the_weights_as_memory_does(redis_client: aioredis.Redis, settings: Settings) -> None:
    """The scenario of test_rebasing_keeps_the_answers (tests/unit/test_chrome.py) on both indexes:
    the rebase leaves the answers unchanged, so the stored landmark and scores are what show it ran."""
    chrome = ChromeIndexSettings(min_pages=2, min_share=0.0, half_life_days=0.001, ttl_days=10_000)
    clock = Clock()
    in_redis = RedisChromeIndex(redis_client, settings.redis_prefix, chrome, clock=clock)
    in_memory = MemoryChromeIndex(chrome, clock=clock)
    for index in (in_redis, in_memory):
        await index.observe("site.example", "p0", ["x"])
    clock.now += chrome.half_life_s * 45  # 45 half-lives: the weights pass 2**40 and get rebased
    for page in ("p1", "p2"):
        for index in (in_redis, in_memory):
            await index.observe("site.example", page, ["x"])
    blocks, _pages, meta = in_redis.keys("site.example")
    remembered = in_memory._domains["site.example"]  # noqa: SLF001 - the stored weights are the point of the test
    assert remembered.landmark == clock.now
    assert float(await redis_client.hget(meta, "landmark")) == pytest.approx(remembered.landmark, abs=1e-6)
    assert await redis_client.zscore(blocks, "x") == pytest.approx(remembered.blocks["x"], rel=1e-9)
    assert remembered.blocks["x"] == pytest.approx(2.0, rel=1e-6)
    assert float(await redis_client.hget(meta, "pages")) == pytest.approx(remembered.pages_score, rel=1e-9)
    assert await in_redis.known_chrome("site.example") == await in_memory.known_chrome("site.example") == {"x"}


async def test_a_quiet_sites_chrome_does_not_decay_away_and_a_redesign_still_replaces_it(
    redis_client: aioredis.Redis, settings: Settings
) -> None:
    """Read as of now, the counts of a site that published nothing for ten days fell under
    min_pages: a replay of its last page came out with the chrome back, stored and published as
    an update. Read as of the site's last page, they stand until newer pages come without it."""
    chrome = ChromeIndexSettings(min_pages=3, min_share=0.0, half_life_days=7)
    clock = Clock()
    in_redis = RedisChromeIndex(redis_client, settings.redis_prefix, chrome, clock=clock)
    in_memory = MemoryChromeIndex(chrome, clock=clock)
    for n in range(4):
        for index in (in_redis, in_memory):
            await index.observe("quiet.example", f"page-{n}", ["newsletter", f"own-{n}"])
        clock.now += 600
    clock.now += 10 * 86400
    assert await in_redis.known_chrome("quiet.example") == await in_memory.known_chrome("quiet.example") == {"newsletter"}
    for n in range(3):  # the site comes back redesigned
        for index in (in_redis, in_memory):
            await index.observe("quiet.example", f"new-{n}", ["new-footer", f"new-own-{n}"])
    assert await in_redis.known_chrome("quiet.example") == await in_memory.known_chrome("quiet.example") == {"new-footer"}


async def test_key_layout_bounds_and_expiry(redis_client: aioredis.Redis, settings: Settings) -> None:
    chrome = ChromeIndexSettings(min_pages=2, min_share=0.0, max_blocks=30, max_pages=10, ttl_days=1)
    index = RedisChromeIndex(redis_client, settings.redis_prefix, chrome)
    for n in range(40):
        await index.observe("site.example", f"page-{n}", ["menu", f"x{n}", f"y{n}"])
    blocks, pages, meta = index.keys("site.example")
    assert blocks == f"{settings.redis_prefix}:chrome:site.example:blocks"
    assert await redis_client.zcard(blocks) == 30
    assert await redis_client.zcard(pages) == 10
    assert await redis_client.zscore(blocks, "menu") is not None
    assert set(await redis_client.hkeys(meta)) == {b"landmark", b"pages", b"last"}
    for key in (blocks, pages, meta):
        assert 0 < await redis_client.ttl(key) <= 86400
    assert await index.known_chrome("site.example") == frozenset({"menu"})


async def test_concurrent_workers_observing_the_same_page_count_it_once(
    redis_client: aioredis.Redis, settings: Settings
) -> None:
    chrome = ChromeIndexSettings(min_pages=2, min_share=0.0)
    workers = [RedisChromeIndex(redis_client, settings.redis_prefix, chrome) for _ in range(8)]
    await asyncio.gather(*(w.observe("race.example", "the-page", ["cta"]) for w in workers))
    assert await workers[0].known_chrome("race.example") == frozenset()
    blocks, _pages, _meta = workers[0].keys("race.example")
    assert await redis_client.zscore(blocks, "cta") == pytest.approx(1.0, rel=1e-6)
    await workers[1].observe("race.example", "another-page", ["cta"])
    assert await workers[2].known_chrome("race.example") == frozenset({"cta"})


async def test_the_servers_clock_is_every_workers_and_a_clock_off_it_cannot_make_one_page_chrome(
    redis_client: aioredis.Redis, settings: Settings
) -> None:
    chrome = ChromeIndexSettings(min_pages=3)
    index = RedisChromeIndex(redis_client, settings.redis_prefix, chrome)
    await index.observe("clock.example", "first", ["menu", "lead"])
    seconds, micros = await redis_client.time()
    _blocks, pages, meta = index.keys("clock.example")
    assert float(await redis_client.hget(meta, "landmark")) == pytest.approx(seconds + micros / 1e6, abs=5)
    assert await redis_client.zscore(pages, "first") == pytest.approx(seconds + micros / 1e6, abs=5)
    # A reader 20 days behind the landmark lowered min_pages by 2 ** (-20 / 14): both of the one
    # page's blocks were chrome.
    behind = RedisChromeIndex(redis_client, settings.redis_prefix, chrome, clock=lambda: seconds - 20 * 86400.0)
    assert await behind.known_chrome("clock.example") == frozenset()
    # A page weighed two years ahead moved the landmark there: every later page weighed nothing
    # next to it, the site learnt nothing more, and the one page's blocks were its chrome.
    ahead = RedisChromeIndex(redis_client, settings.redis_prefix, chrome, clock=lambda: seconds + 730 * 86400.0)
    await ahead.observe("future.example", "future-page", ["its-lead", "its-quote"])
    for n in range(5):
        await index.observe("future.example", f"page-{n}", ["menu", f"own-{n}"])
    assert await index.known_chrome("future.example") == frozenset({"menu"})


async def test_known_chrome_past_its_cap_keeps_the_blocks_on_most_pages(
    redis_client: aioredis.Redis, settings: Settings
) -> None:
    chrome = ChromeIndexSettings(min_pages=3, max_known=3)
    clock = Clock()
    in_redis = RedisChromeIndex(redis_client, settings.redis_prefix, chrome, clock=clock)
    in_memory = MemoryChromeIndex(chrome, clock=clock)
    for n in range(20):
        widgets = ["menu", "footer", "newsletter"] + (["tag-a", "tag-b", "tag-c"] if n < 3 else [])
        for index in (in_redis, in_memory):
            await index.observe("capped.example", f"page-{n}", widgets)
    assert await in_redis.known_chrome("capped.example") == await in_memory.known_chrome("capped.example") == {
        "menu", "footer", "newsletter"
    }


async def test_statistics_counted_by_a_clock_far_ahead_start_over(redis_client: aioredis.Redis, settings: Settings) -> None:
    # Counted before the server's clock was every worker's, by one two years ahead: every page of
    # now weighed nothing next to them and nothing decayed, so a redesigned site kept its old
    # widget as chrome for two years.
    chrome = ChromeIndexSettings(min_pages=3)
    seconds, _micros = await redis_client.time()
    ahead = RedisChromeIndex(redis_client, settings.redis_prefix, chrome, clock=lambda: seconds + 730 * 86400.0)
    for n in range(5):
        await ahead.observe("redesigned.example", f"old-{n}", ["old-widget", f"old-{n}"])
    index = RedisChromeIndex(redis_client, settings.redis_prefix, chrome)
    assert await index.known_chrome("redesigned.example") == frozenset()
    for n in range(5):
        await index.observe("redesigned.example", f"new-{n}", ["new-widget", f"new-{n}"])
    assert await index.known_chrome("redesigned.example") == frozenset({"new-widget"})
    _blocks, pages, _meta = index.keys("redesigned.example")
    assert await redis_client.zcard(pages) == 5
