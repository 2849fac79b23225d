"""At-least-once, proven on the real broker: where the commit point is, and what redelivery does."""

from __future__ import annotations

from pathlib import Path

import pytest
from worker_harness import (
    WorkerProcess,
    committed_offsets,
    outcomes_for,
    page_status,
    read_topic,
    slow_page,
    stored_values,
    sync_redis,
    wait_for,
    wait_for_outcomes,
)

from workers import SAMPLE_PAGES
from workers.feed import produce, records_from_paths
from workers.settings import Settings
from workers.topics import ensure_topics

pytestmark = pytest.mark.integration

MB = 1024 * 1024


def test_a_crash_never_loses_the_page_still_in_flight(settings: Settings, tmp_path: Path):
    # The slow page is the head of partition 0 and the fast ones finish behind it. faust-streaming
    # 0.15 would commit past the head here (faust#606); the worker must not. Partition 1 carries a
    # page sent once the fast ones are done: its commit proves a commit ran after them.
    settings = settings.model_copy(update={
        "pages_raw_partitions": 2, "max_html_bytes": 24 * MB, "extraction_timeout_s": 300.0, "commit_interval_s": 0.5,
    })
    ensure_topics(settings)
    head = slow_page("https://slow.example/head", 30000)
    fast = list(records_from_paths([SAMPLE_PAGES], base_url="https://samples.wirefeed.invalid/"))
    sent = produce(settings, [head, *fast], partition=0)
    head_offset = sent[0].offset
    client = sync_redis(settings)

    worker = WorkerProcess(settings, tmp_path / "worker-1.log").start()
    try:
        wait_for_outcomes(client, settings, fast, sent[1:], worker=worker)
        later = slow_page("https://fast.example/later", 3)
        [landed] = produce(settings, [later], partition=1)
        wait_for(
            lambda: committed_offsets(settings, settings.topic_pages_raw).get(1) == landed.offset + 1,
            timeout_s=30, what="a commit after the fast pages were done", worker=worker,
        )
        assert not page_status(client, settings, "https://slow.example/head"), "the head page finished too soon to test anything"
        committed = committed_offsets(settings, settings.topic_pages_raw).get(0)
        assert committed is None or committed <= head_offset, f"committed {committed} past the in-flight page {head_offset}"
    finally:
        worker.kill()

    restarted = WorkerProcess(settings, tmp_path / "worker-2.log").start()
    try:
        outcomes = wait_for_outcomes(client, settings, [head, *fast], sent, worker=restarted, timeout_s=180)
        assert outcomes["https://slow.example/head"]["outcome"] == "kept"
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
