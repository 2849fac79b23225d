"""At-least-once, proven on the real broker: where the commit point is, and what redelivery does."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hanging_pages import HANGING_HOST, PREAMBLE
from worker_harness import (
    STOP_BOUND_S,
    WorkerProcess,
    committed_offsets,
    hanging_page,
    outcomes_for,
    page_status,
    read_topic,
    slow_page,
    stored_values,
    sync_redis,
    unacknowledged_gauges,
    wait_for,
    wait_for_outcomes,
    wait_until_handled,
)

from tests.builders import PARAGRAPHS
from workers import SAMPLE_PAGES
from workers.feed import Record, produce, records_from_paths
from workers.app import STOP_DEADLINE_S
from workers.settings import Settings
from workers.topics import ensure_topics

pytestmark = pytest.mark.integration


def test_a_crash_never_loses_the_page_still_in_flight(settings: Settings, tmp_path: Path):
    # The head of partition 0 never ends extracting in the first worker (hanging_pages) and the
    # fast ones finish behind it. faust-streaming 0.15 would commit past the head here
    # (faust#606); the worker must not. Partition 1 carries a page sent once the fast ones are
    # done: its commit proves a commit ran after them. The next worker extracts the head.
    settings = settings.model_copy(update={"pages_raw_partitions": 2, "extraction_timeout_s": 300.0, "commit_interval_s": 0.5})
    ensure_topics(settings)
    head = hanging_page("head")
    head_url = head.key.decode()
    fast = list(records_from_paths([SAMPLE_PAGES], base_url="https://samples.wirefeed.invalid/"))
    sent = produce(settings, [head, *fast], partition=0)
    head_offset = sent[0].offset
    client = sync_redis(settings)

    worker = WorkerProcess(settings, tmp_path / "worker-1.log", preamble=PREAMBLE).start()
    try:
        wait_for_outcomes(client, settings, fast, sent[1:], worker=worker)
        later = slow_page("https://fast.example/later", 3)
        [landed] = produce(settings, [later], partition=1)
        wait_for(
            lambda: committed_offsets(settings, settings.topic_pages_raw).get(1) == landed.offset + 1,
            timeout_s=30, what="a commit after the fast pages were done", worker=worker,
        )
        assert not page_status(client, settings, head_url), "the head page finished"
        committed = committed_offsets(settings, settings.topic_pages_raw).get(0)
        assert committed is None or committed <= head_offset, f"committed {committed} past the in-flight page {head_offset}"
    finally:
        worker.kill()

    restarted = WorkerProcess(settings, tmp_path / "worker-2.log").start()
    try:
        outcomes = wait_for_outcomes(client, settings, [head, *fast], sent, worker=restarted, timeout_s=180)
        assert outcomes[head_url]["outcome"] == "kept"
        wait_for(
            lambda: committed_offsets(settings, settings.topic_pages_raw).get(0) == sent[-1].offset + 1,
            timeout_s=30, what="the final commit",
        )
    finally:
        restarted.stop()

    # Redelivered pages overwrote, never duplicated: one record per article, one message each.
    article_keys = list(client.scan_iter(match=f"{settings.redis_prefix}:article:*"))
    assert len(article_keys) == len([head, *fast, later])
    published = read_topic(settings, settings.topic_articles, at_least=len(article_keys))
    assert sorted(r.key for r in published) == sorted(k.split(b":")[-1] for k in article_keys)


def test_sigterm_does_not_wait_for_the_pages_in_flight_and_the_next_worker_processes_them(settings: Settings, tmp_path: Path):
    # The slow pages never end extracting (hanging_pages) until a ten-minute timeout; waiting for
    # the ones in flight, a stop took minutes, past any grace period (Kubernetes: 60 s, then SIGKILL).
    settings = settings.model_copy(update={"pages_raw_partitions": 2, "extraction_timeout_s": 600.0, "commit_interval_s": 0.5})
    ensure_topics(settings)
    sent, fast, slow = {}, {}, {}
    for partition in (0, 1):
        # an empty page: dropped before extraction, whatever the slow pages keep busy
        url = f"https://fast.example/{partition}"
        fast[partition] = Record(url.encode(), json.dumps({"url": url, "fetched_at": datetime.now(UTC).isoformat(), "html": ""}).encode())
        slow[partition] = [hanging_page(f"{partition}/{i}") for i in range(3)]
        sent[partition] = produce(settings, [fast[partition], *slow[partition]], partition=partition)
    records = [record for partition in (0, 1) for record in (fast[partition], *slow[partition])]
    metas = [meta for partition in (0, 1) for meta in sent[partition]]
    first_slow = {partition: sent[partition][1].offset for partition in (0, 1)}
    client = sync_redis(settings)

    worker = WorkerProcess(settings, tmp_path / "worker-1.log", preamble=PREAMBLE).start()
    try:
        # The page at the head of each partition is done and committed, so the slow ones behind
        # it were taken too (the worker works on up to 16 at once).
        wait_for(
            lambda: committed_offsets(settings, settings.topic_pages_raw) == first_slow,
            timeout_s=120, what="the fast pages committed", worker=worker,
        )
        wait_for(
            lambda: unacknowledged_gauges(worker)["wirefeed_unacknowledged"] == 6,
            timeout_s=60, what="the six slow pages in flight", worker=worker,
        )
        code, took = worker.terminate(timeout_s=STOP_BOUND_S)
        assert code == 0, f"exit code {code} {took:.1f} s after SIGTERM:\n{worker.log_tail()}"
        assert not outcomes_for(client, settings, records[1:4] + records[5:], metas[1:4] + metas[5:]), (
            "a slow page finished: the stop could have waited for it"
        )
        # nothing committed past a page that was not processed
        assert committed_offsets(settings, settings.topic_pages_raw) == first_slow
    finally:
        worker.kill()

    # The next worker gets them all again; with a short timeout, each is dead-lettered at once.
    restarted = WorkerProcess(
        settings.model_copy(update={"extraction_timeout_s": 2.0}), tmp_path / "worker-2.log", preamble=PREAMBLE
    ).start()
    try:
        outcomes = wait_for_outcomes(client, settings, records, metas, worker=restarted, timeout_s=180)
        wait_until_handled(restarted, settings.topic_pages_raw, timeout_s=60)
    finally:
        restarted.stop()
    assert {url: status["reason"] for url, status in outcomes.items() if url.startswith(f"https://{HANGING_HOST}/")} == {
        record.key.decode(): "timeout" for partition in (0, 1) for record in slow[partition]
    }
    letters = read_topic(settings, settings.topic_dlq, at_least=len(records))
    assert sorted(json.loads(letter.value)["url"] for letter in letters) == sorted(
        record.key.decode() for record in records
    ), "each page handled once: the slow ones by the second worker"


# From the moment it is told to stop, the worker's producer gets no answer from the broker (the
# test's broker is not hung: the shared stack must stay up for the other tests).
BROKER_HANGS_AT_STOP = """
import asyncio
from faust.transport.drivers import aiokafka as driver

_flush = driver.Producer.flush

async def flush(self):
    if self.app.should_stop:
        await asyncio.Event().wait()
    await _flush(self)

driver.Producer.flush = flush
"""


def test_a_stop_that_the_broker_holds_up_ends_at_the_deadline(settings: Settings, tmp_path: Path):
    settings = settings.model_copy(update={"commit_interval_s": 0.5})
    ensure_topics(settings)
    records = list(records_from_paths([SAMPLE_PAGES], base_url="https://samples.wirefeed.invalid/"))[:2]
    client = sync_redis(settings)
    worker = WorkerProcess(settings, tmp_path / "worker-1.log", preamble=BROKER_HANGS_AT_STOP).start()
    try:
        sent = produce(settings, records)
        wait_for_outcomes(client, settings, records, sent, worker=worker)
        wait_until_handled(worker, settings.topic_pages_raw, timeout_s=60)
        code, took = worker.terminate(timeout_s=STOP_BOUND_S)
    finally:
        worker.kill()
    log = worker.log_path.read_text(errors="replace")
    assert code == 70, f"exit code {code} {took:.1f} s after SIGTERM:\n{worker.log_tail()}"
    assert took >= STOP_DEADLINE_S
    assert f"did not stop within {STOP_DEADLINE_S:g} s" in log


def test_redelivery_leaves_redis_byte_for_byte_the_same_and_publishes_nothing_new(settings: Settings, tmp_path: Path):
    # Document frequencies go to Redis once a language's counts are this old: on a slow machine,
    # a refresh between the two reads would be a change the redelivery did not make.
    settings = settings.model_copy(update={"story_df_refresh_s": 3600.0})
    ensure_topics(settings)
    records = list(records_from_paths([SAMPLE_PAGES], base_url="https://samples.wirefeed.invalid/"))
    client = sync_redis(settings)
    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    try:
        first = produce(settings, records)
        wait_for_outcomes(client, settings, records, first, worker=worker)
        keys = sorted(client.scan_iter(match=f"{settings.redis_prefix}:*"))
        article_and_index_keys = [k for k in keys if b":page:" not in k]
        before = stored_values(client, article_and_index_keys)
        published_before = read_topic(settings, settings.topic_articles, at_least=len(records))

        again = produce(settings, records)  # the same pages, delivered a second time
        wait_for_outcomes(client, settings, records, again, worker=worker)
        assert outcomes_for(client, settings, records, again)
        after = stored_values(client, article_and_index_keys)
        assert after == before
        assert sorted(client.scan_iter(match=f"{settings.redis_prefix}:*")) == keys
        # an outcome is recorded only after its article's publish was acknowledged: nothing more can come
        assert len(read_topic(settings, settings.topic_articles, at_least=len(published_before))) == len(published_before)
    finally:
        worker.stop()


# The worker's first article is sent once another version of it was published and marked, and the
# worker is killed as soon as the broker has taken it: before its mark, like a worker killed, or
# whose partition is revoked, between the two.
SENT_AFTER_A_NEWER_VERSION_THEN_KILLED = """
import asyncio, os, signal
import redis.asyncio as aioredis
from workers import app as worker_app

_publish = worker_app.TopicPublisher.publish_article

async def publish_article(self, version):
    client = aioredis.Redis.from_url(os.environ["WIREFEED_REDIS_URL"])
    key = f"{os.environ['WIREFEED_REDIS_PREFIX']}:article:{version.article_id}"
    while await client.hget(key, "published") in (None, b"", version.marker.encode()):
        await asyncio.sleep(0.05)
    await _publish(self, version)
    os.kill(os.getpid(), signal.SIGKILL)

worker_app.TopicPublisher.publish_article = publish_article
"""


def test_a_worker_killed_after_the_broker_took_its_older_version_leaves_the_newer_last_on_the_topic(
    settings: Settings, tmp_path: Path
):
    # Two crawled URLs with one canonical URL: two partitions of pages.raw, two workers. Here each
    # worker reads a topic of its own (its own group), so that which worker handles which crawl
    # does not depend on the group's assignment. The older crawl is saved first and sent last, and
    # its worker dies before marking it. Its record, delivered again, finds its version stale: it
    # used to send nothing, and the compacted topic kept the older text for good.
    older_settings = settings.model_copy(update={"data_dir": tmp_path / "older-1"})
    newer_settings = settings.model_copy(update={
        "app_name": f"{settings.app_name}-newer", "topic_pages_raw": f"{settings.topic_pages_raw}.newer",
        "data_dir": tmp_path / "newer",
    })
    ensure_topics(older_settings)
    ensure_topics(newer_settings)
    canonical, now = "https://story.example/city-budget", datetime.now(UTC)

    def crawl(url: str, paragraphs: list[str], fetched_at: datetime) -> Record:
        html = (
            f'<html><head><title>City budget</title><link rel="canonical" href="{canonical}"></head><body><article>'
            + "".join(f"<p>{paragraph}</p>" for paragraph in paragraphs) + "</article></body></html>"
        )
        return Record(url.encode(), json.dumps({"url": url, "fetched_at": fetched_at.isoformat(), "html": html}).encode())

    older = crawl(f"{canonical}?ref=rss", PARAGRAPHS[:3], now - timedelta(minutes=10))
    newer = crawl(canonical, PARAGRAPHS, now - timedelta(minutes=5))
    client = sync_redis(settings)

    older_worker = WorkerProcess(older_settings, tmp_path / "older-1.log", preamble=SENT_AFTER_A_NEWER_VERSION_THEN_KILLED)
    newer_worker = WorkerProcess(newer_settings, tmp_path / "newer.log")
    restarted = WorkerProcess(older_settings.model_copy(update={"data_dir": tmp_path / "older-2"}), tmp_path / "older-2.log")
    try:
        older_worker.start()
        newer_worker.start()
        [older_sent] = produce(older_settings, [older], partition=0)
        [article_key] = wait_for(
            lambda: list(client.scan_iter(match=f"{settings.redis_prefix}:article:*")),
            timeout_s=90, what="the older crawl saved", worker=older_worker,
        )
        produce(newer_settings, [newer], partition=0)
        wait_for(lambda: not older_worker.alive, timeout_s=90, what="the older crawl's worker killed after its send")
        article_id = article_key.decode().rsplit(":", 1)[1].encode()
        fetched = [
            json.loads(record.value)["fetched_at"]
            for record in read_topic(settings, settings.topic_articles, at_least=2) if record.key == article_id
        ]
        newer_fetched, older_fetched = json.loads(client.hget(article_key, "json"))["fetched_at"], fetched[-1]
        assert fetched == [newer_fetched, older_fetched] and older_fetched < newer_fetched, "not the case to test"

        restarted.start()  # the older crawl's record is delivered again
        wait_for_outcomes(client, settings, [older], [older_sent], worker=restarted, timeout_s=120)
        published = [
            record.value for record in read_topic(settings, settings.topic_articles, at_least=2) if record.key == article_id
        ]
    finally:
        for worker in (older_worker, newer_worker, restarted):
            worker.kill()
    stored = client.hgetall(article_key)
    assert [json.loads(value)["fetched_at"] for value in published] == [newer_fetched, older_fetched, newer_fetched]
    assert published[-1] == stored[b"json"]  # what the compacted topic keeps is what Redis holds
    assert not [field for field in stored if field.startswith(b"publishing:")]
