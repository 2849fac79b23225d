"""Outages and refusals on the real services, with a real worker process.

* Redis hung (SIGSTOP) or crashed (SIGKILL, then restarted) while pages are in flight: a Redis of
  the test alone (the shared one is never touched), with the shared broker. Nothing is
  dead-lettered (an outage is not the page's fault), no offset is committed past a page that had
  not finished when Redis stopped, and afterwards every page is kept once: one article in Redis,
  one record on ``articles``.
* Redis refusing writes for a while (``NOREPLICAS``): the same, pages wait and are kept after.
* A topic that refuses a record for good (``max.message.bytes`` below the record, on the real
  broker): a dead letter too big for ``pages.dlq`` goes without the original, keyed by its source
  offset, and the partition moves on; an article too big for ``articles`` costs its page a
  ``sink_error`` dead letter and is released, so that a replay of that offset publishes it once
  the topic takes it.

Which pages had finished when Redis stopped is read from Redis's own append-only file: the private
server fsyncs it before every reply, so it holds every write the worker was told was done (and
perhaps a few more it was not), exactly at the moment the process stopped.
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis
from contract import assert_valid
from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic
from kafka.producer.future import RecordMetadata
from pydantic import SecretStr
from worker_harness import (
    STOP_BOUND_S,
    PrivateRedis,
    WorkerProcess,
    committed_offsets,
    outcomes_for,
    page_status,
    read_topic,
    slow_page,
    sync_redis,
    unacknowledged_gauges,
    wait_for,
    wait_for_outcomes,
    wait_until_handled,
)

from tests.shared_data import BENCH

from workers import SAMPLE_PAGES
from workers.feed import Record, make_producer, records_from_paths
from workers.kafka_clients import kafka_client_options
from workers.replay import register
from workers.replay import run as run_replay
from workers.settings import Settings
from workers.topics import ensure_topics, topic_specs

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

# Longer than the consumer session of the test stack (6 s) and many commit intervals.
OUTAGE_S = 8.0
# Below the 16 KiB batches of the worker's producer, far above a dead letter without its original
# (~2 KB) or a common article (< 4 KB compressed), far below the records refused here.
SMALL_LIMIT = 20_000
BIG_ARTICLE_PAGE = BENCH / "scrapinghub" / "3c6d3381ef52ca26be2fbde19c1b0fe17d85682b726dfecf5e300c1ca34546b1.html"


# --- helpers --------------------------------------------------------------------------------


def raw_page(url: str, **fields: object) -> Record:
    message = {"url": url, "fetched_at": datetime.now(UTC).isoformat()} | fields
    return Record(url.encode(), json.dumps(message, ensure_ascii=False).encode())


def produce_to(settings: Settings, placed: list[tuple[int, Record]]) -> list[RecordMetadata]:
    """``workers.feed.produce`` into chosen partitions of pages.raw, in this order."""
    producer = make_producer(settings)
    try:
        futures = [
            producer.send(settings.topic_pages_raw, key=record.key, value=record.value, partition=partition)
            for partition, record in placed
        ]
        producer.flush()
        return [future.get(timeout=30) for future in futures]
    finally:
        producer.close()


def create_topic_with_limit(settings: Settings, name: str, max_message_bytes: int) -> None:
    """The topic as ``wirefeed topics create`` makes it, with a smaller record limit; the worker's
    own ``ensure_topics`` then leaves it as it is."""
    (spec,) = [spec for spec in topic_specs(settings) if spec.name == name]
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    try:
        admin.create_topics([NewTopic(
            spec.name, spec.partitions, settings.replication_factor,
            topic_configs=spec.config | {"max.message.bytes": str(max_message_bytes)},
        )])
    finally:
        admin.close()


def topic_limit(settings: Settings, name: str) -> int:
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    try:
        described = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name, configs={"max.message.bytes": None})])
    finally:
        admin.close()
    return int(described["topic"][name]["max.message.bytes"]["value"])


def raise_topic_limit(settings: Settings, name: str, max_message_bytes: int) -> None:
    """What an operator does once the refusal is understood (this test's own topic, not the broker)."""
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    try:
        admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, name, configs={"max.message.bytes": str(max_message_bytes)})])
    finally:
        admin.close()
    wait_for(lambda: topic_limit(settings, name) == max_message_bytes, timeout_s=30, what=f"the new limit of {name}")


def replay_offset(settings: Settings, partition: int, offset: int) -> None:
    """``wirefeed replay --partition P --from-offset O --to-offset O+1``."""
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(
        ["replay", "--partition", str(partition), "--from-offset", str(offset), "--to-offset", str(offset + 1)]
    )
    assert run_replay(settings, args) == 0


def letters_by_key(settings: Settings, *, at_least: int) -> dict[bytes, dict]:
    letters = read_topic(settings, settings.topic_dlq, at_least=at_least)
    documents = {letter.key: assert_valid("pages.dlq", letter.value) for letter in letters}
    assert len(documents) == len(letters), f"two dead letters under one key: {[letter.key for letter in letters]}"
    return documents


# --- a Redis of the test's own --------------------------------------------------------------


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path / "private-redis").start()
    try:
        yield server
    finally:
        server.stop()


def on_private_redis(settings: Settings, private_redis: PrivateRedis, **changes: object) -> Settings:
    """The settings on the test's own Redis, committing every half second (every chance to commit
    whatever it would during an outage) and retrying within a second of the end of one."""
    settings = settings.model_copy(update={
        "redis_url": SecretStr(private_redis.url), "commit_interval_s": 0.5, "retry_backoff_max_s": 1.0, **changes,
    })
    ensure_topics(settings)
    return settings


def scrapinghub_records(count: int) -> list[Record]:
    return list(records_from_paths(
        sorted((BENCH / "scrapinghub").glob("*.html"))[:count], base_url="https://bench.wirefeed.invalid/scrapinghub/"
    ))


@contextmanager
def writes_failing(admin: redis.Redis, outage: str) -> Iterator[None]:
    """Writes paused: a Redis that holds every write unanswered (``CLIENT PAUSE WRITE``, as during
    a failover). Writes refused: one that answers ``NOREPLICAS`` (its replica link is down under
    ``min-replicas-to-write``; MISCONF and BUSY are alike)."""
    if outage == "writes paused":
        admin.execute_command("CLIENT", "PAUSE", str(300_000), "WRITE")
    else:
        admin.config_set("min-replicas-to-write", 1)
    try:
        yield
    finally:
        if outage == "writes paused":
            admin.execute_command("CLIENT", "UNPAUSE")
        else:
            admin.config_set("min-replicas-to-write", 0)


# --- 1. Redis outages -----------------------------------------------------------------------


def test_private_redis_append_only_file_names_the_finished_pages(private_redis: PrivateRedis, settings: Settings):
    """The oracle of the outage tests, checked on its own: the page outcome script's effects as
    the append-only file records them (MULTI, HSET, PEXPIREAT, EXEC)."""
    settings = settings.model_copy(update={"redis_url": SecretStr(private_redis.url)})
    client = sync_redis(settings)
    record_outcome = client.register_script(
        "redis.call('HSET', KEYS[1], unpack(ARGV, 2)) redis.call('EXPIRE', KEYS[1], ARGV[1]) return 1"
    )
    record_outcome(keys=[f"{settings.redis_prefix}:page:abc"], args=[
        60, "outcome", "kept", "topic", settings.topic_pages_raw, "partition", 1, "offset", 41,
    ])
    client.hset(f"{settings.redis_prefix}:page:def", mapping={"topic": "elsewhere", "partition": 0, "offset": 3})
    client.close()
    private_redis.hang()
    try:
        assert private_redis.finished_pages(settings) == {(1, 41)}
    finally:
        private_redis.resume()


@pytest.mark.parametrize("outage", ["hung", "crashed"])
def test_pages_in_flight_through_a_redis_outage_are_kept_once_and_never_committed_early(
    settings: Settings, private_redis: PrivateRedis, tmp_path: Path, outage: str
):
    settings = on_private_redis(settings, private_redis, extraction_timeout_s=120.0)
    # Partition 0: a slow head, real pages behind it that finish first (the commit point must stay
    # at the head); partition 1: real pages of the evaluation set.
    head = slow_page("https://slow.example/outage-head")
    behind = list(records_from_paths([SAMPLE_PAGES], base_url="https://samples.wirefeed.invalid/"))
    others = scrapinghub_records(8)
    placed = [(0, head), *((0, record) for record in behind), *((1, record) for record in others)]
    records = [record for _, record in placed]
    assert len({record.key for record in records}) == len(records)
    sent = produce_to(settings, placed)
    positions = [(meta.partition, meta.offset) for meta in sent]
    head_position, behind_sent = positions[0], sent[1:1 + len(behind)]
    end = {partition: max(o for p, o in positions if p == partition) + 1 for partition, _ in positions}
    client = sync_redis(settings)

    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    try:
        wait_for(
            lambda: len(outcomes_for(client, settings, behind, behind_sent)) >= 2,
            timeout_s=150, what="two pages behind the head finished", worker=worker, interval_s=0.1,
        )
        if outage == "hung":
            private_redis.hang()
        else:
            private_redis.crash()
        try:
            finished = private_redis.finished_pages(settings)
            unfinished = [position for position in positions if position not in finished]
            assert head_position in unfinished, "the head page finished before the outage: nothing to test"
            assert any(position in finished for position in positions[1:1 + len(behind)])
            # Nothing finishes while Redis is away (a page's outcome is its last write): no offset
            # may be committed past the first page of its partition not finished at the stop.
            limit = {
                partition: min((o for p, o in unfinished if p == partition), default=end[partition])
                for partition in end
            }
            deadline = time.monotonic() + OUTAGE_S
            while time.monotonic() < deadline:
                committed = committed_offsets(settings, settings.topic_pages_raw)
                past = {p: (offset, limit[p]) for p, offset in committed.items() if offset > limit[p]}
                assert not past, f"committed past unfinished pages during the outage (committed, limit): {past}"
                assert worker.alive, f"the worker died during the outage:\n{worker.log_tail()}"
                time.sleep(0.25)
        finally:
            if outage == "hung":
                private_redis.resume()
            else:
                private_redis.start()

        outcomes = wait_for_outcomes(client, settings, records, sent, worker=worker, timeout_s=120)
        wait_until_handled(worker, settings.topic_pages_raw, timeout_s=60)
    finally:
        worker.stop()

    assert read_topic(settings, settings.topic_dlq, at_least=0) == [], "an outage dead-lettered pages"
    assert {(s["outcome"], s["stage"], s["reason"]) for s in outcomes.values()} == {("kept", "sink", "new")}, outcomes
    article_ids = {status["article_id"] for status in outcomes.values()}
    assert len(article_ids) == len(records)
    stored_ids = {key.decode().rsplit(":", 1)[1] for key in client.scan_iter(match=f"{settings.redis_prefix}:article:*")}
    assert stored_ids == article_ids
    published = read_topic(settings, settings.topic_articles, at_least=len(article_ids))
    assert Counter(record.key.decode() for record in published) == Counter(article_ids)  # once each
    for record in published:
        stored = client.hgetall(f"{settings.redis_prefix}:article:{record.key.decode()}")
        assert record.value == stored[b"json"]
        article = json.loads(stored[b"json"])
        assert stored[b"published"].decode() == f"{article['content_hash']}|{article['pipeline_version']}"
    # The outage was felt, not merely waited out: Redis calls failed and were retried (a hung
    # server too: redis-py's 5 s socket timeout, shorter than the outage, ends the wait).
    assert "failed (attempt" in worker.log_path.read_text(errors="replace")


def test_pages_wait_while_redis_refuses_writes_and_are_kept_after(
    settings: Settings, private_redis: PrivateRedis, tmp_path: Path
):
    """A Redis that answers but refuses writes for a while is an outage too: the pages wait,
    uncommitted, and are kept once it passes. They were dead-lettered and acknowledged at full
    speed: redis-py has no class for these replies."""
    settings = on_private_redis(settings, private_redis)
    first, *refused = scrapinghub_records(3)
    admin = redis.Redis.from_url(private_redis.url)
    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    try:
        wait_for_outcomes(admin, settings, [first], produce_to(settings, [(0, first)]), worker=worker)
        with writes_failing(admin, "writes refused"):
            sent = produce_to(settings, [(0, record) for record in refused])
            wait_for(
                lambda: "errorstat_NOREPLICAS" in admin.info("errorstats"),
                timeout_s=60, what="a write refused", worker=worker,
            )
            deadline = time.monotonic() + OUTAGE_S
            while time.monotonic() < deadline:
                assert outcomes_for(admin, settings, refused, sent) == {}
                assert committed_offsets(settings, settings.topic_pages_raw).get(0, 0) <= sent[0].offset
                assert worker.alive, worker.log_tail()
                time.sleep(0.25)
            # The stall shows on /metrics as it lasts, before any page is done.
            during = unacknowledged_gauges(worker)
            assert during["wirefeed_unacknowledged"] == len(refused), during
            assert during["wirefeed_oldest_unacknowledged_seconds"] >= OUTAGE_S, during
        outcomes = wait_for_outcomes(admin, settings, refused, sent, worker=worker, timeout_s=60)
        wait_until_handled(worker, settings.topic_pages_raw, timeout_s=60)
        after = unacknowledged_gauges(worker)
        assert after == {"wirefeed_unacknowledged": 0, "wirefeed_oldest_unacknowledged_seconds": 0}, after
    finally:
        worker.stop()
    assert read_topic(settings, settings.topic_dlq, at_least=0) == [], "refused writes dead-lettered pages"
    assert {status["outcome"] for status in outcomes.values()} == {"kept"}, outcomes


@pytest.mark.parametrize("outage", ["writes paused", "writes refused"])
def test_sigterm_during_a_redis_outage_stops_the_worker_at_once_and_the_pages_are_redelivered(
    settings: Settings, private_redis: PrivateRedis, tmp_path: Path, outage: str
):
    """The pages in flight retry their writes for as long as the outage lasts; a stop does not
    wait for them (it waited for ever: until Redis came back)."""
    settings = on_private_redis(settings, private_redis)
    first, *waiting = scrapinghub_records(4)
    admin = redis.Redis.from_url(private_redis.url)
    worker = WorkerProcess(settings, tmp_path / "worker-1.log").start()
    try:
        wait_for_outcomes(admin, settings, [first], produce_to(settings, [(0, first)]), worker=worker)
        failures = worker.log_path.read_text(errors="replace").count("failed (attempt")
        with writes_failing(admin, outage):
            sent = produce_to(settings, [(0, record) for record in waiting])
            wait_for(
                lambda: worker.log_path.read_text(errors="replace").count("failed (attempt") > failures,
                timeout_s=60, what="a write failed and retried", worker=worker,
            )
            code, took = worker.terminate(timeout_s=STOP_BOUND_S)
            assert code == 0, f"exit code {code} {took:.1f} s after SIGTERM:\n{worker.log_tail()}"
            assert outcomes_for(admin, settings, waiting, sent) == {}
            assert committed_offsets(settings, settings.topic_pages_raw).get(0, 0) <= sent[0].offset
    finally:
        worker.kill()

    restarted = WorkerProcess(settings, tmp_path / "worker-2.log").start()
    try:
        outcomes = wait_for_outcomes(admin, settings, waiting, sent, worker=restarted, timeout_s=120)
        wait_until_handled(restarted, settings.topic_pages_raw, timeout_s=60)
    finally:
        restarted.stop()
    assert {status["outcome"] for status in outcomes.values()} == {"kept"}, outcomes
    assert read_topic(settings, settings.topic_dlq, at_least=0) == [], "the outage dead-lettered pages"


# --- 2. Records a topic refuses for good ----------------------------------------------------


def test_a_dead_letter_the_topic_refuses_goes_without_the_original_and_the_partition_moves_on(
    settings: Settings, redis_client, tmp_path: Path
):
    settings = settings.model_copy(update={"pages_raw_partitions": 1, "commit_interval_s": 0.5})
    create_topic_with_limit(settings, settings.topic_dlq, SMALL_LIMIT)
    ensure_topics(settings)
    # A crawler that fetched a PDF: dropped (not_html); its dead letter, with the 200 kB original
    # (incompressible), is ten times what pages.dlq takes.
    pdf = raw_page(
        "https://refused.example/report.pdf", content_type="application/pdf",
        html_b64=base64.b64encode(random.Random(20261122).randbytes(150_000)).decode(),
    )
    small_bad = Record(b"https://refused.example/not-json", b"<html>this is not JSON</html>")
    (good,) = records_from_paths([SAMPLE_PAGES / "seed-004-masr-news.html"], base_url="https://samples.wirefeed.invalid/")
    sent = produce_to(settings, [(0, pdf), (0, small_bad), (0, good)])
    client = sync_redis(settings)

    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    try:
        wait_until_handled(worker, settings.topic_pages_raw, timeout_s=120)  # committed past all three
        assert wait_for_outcomes(client, settings, [good], sent[2:], worker=worker)[good.key.decode()]["outcome"] == "kept"
        assert worker.alive
    finally:
        worker.stop()

    letters = letters_by_key(settings, at_least=2)
    refused_key = f"{settings.topic_pages_raw}:0:{sent[0].offset}".encode()
    assert set(letters) == {refused_key, small_bad.key}
    refused = letters[refused_key]
    assert (refused["outcome"], refused["stage"], refused["reason"]) == ("dropped", "decode", "not_html")
    assert (refused["url"], refused["original_key_b64"], refused["original_value_b64"], refused["original_truncated"]) == (
        None, None, "", True
    )
    assert refused["original_value_bytes"] == len(pdf.value)
    assert "refused" in refused["error_message"]
    assert (refused["source"]["topic"], refused["source"]["partition"], refused["source"]["offset"]) == (
        settings.topic_pages_raw, 0, sent[0].offset
    )
    # the refusal was this letter's, not the topic's: the next one keeps its original
    assert base64.b64decode(letters[small_bad.key]["original_value_b64"]) == small_bad.value
    assert letters[small_bad.key]["reason"] == "not_json"
    # and the good page behind both is stored and published
    assert len(read_topic(settings, settings.topic_articles, at_least=1)) == 1


def test_a_page_whose_dead_letter_was_refused_still_has_its_outcome_in_redis(
    settings: Settings, redis_client, tmp_path: Path
):
    """README: ``{p}:page:{url_id}`` holds the outcome of a URL's newest record. A dead letter
    sent without its original (the topic refused it) must not leave that record unwritten, nor an
    older crawl's outcome in its place."""
    settings = settings.model_copy(update={"pages_raw_partitions": 1, "commit_interval_s": 0.5})
    create_topic_with_limit(settings, settings.topic_dlq, SMALL_LIMIT)
    ensure_topics(settings)
    url = "https://refused.example/report"
    (earlier,) = records_from_paths([SAMPLE_PAGES / "seed-004-masr-news.html"], base_url="https://x.invalid/")
    earlier = Record(url.encode(), json.dumps(json.loads(earlier.value) | {"url": url}).encode())
    pdf = raw_page(
        url, content_type="application/pdf",
        html_b64=base64.b64encode(random.Random(20261123).randbytes(150_000)).decode(),
    )
    sent = produce_to(settings, [(0, earlier), (0, pdf)])
    client = sync_redis(settings)

    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    try:
        wait_until_handled(worker, settings.topic_pages_raw, timeout_s=120)
    finally:
        worker.stop()

    assert f"{settings.topic_pages_raw}:0:{sent[1].offset}".encode() in letters_by_key(settings, at_least=1)
    status = page_status(client, settings, url)
    assert (status.get("outcome"), status.get("reason"), status.get("offset")) == (
        "dropped", "not_html", str(sent[1].offset)
    ), f"the page record of {url} after its newest crawl was dead-lettered: {status}"


def test_an_article_the_topic_refuses_is_dead_lettered_released_and_published_by_a_replay(
    settings: Settings, redis_client, tmp_path: Path
):
    settings = settings.model_copy(update={"pages_raw_partitions": 1, "commit_interval_s": 0.5})
    create_topic_with_limit(settings, settings.topic_articles, SMALL_LIMIT)
    ensure_topics(settings)
    # A long Russian article (98 kB of JSON, ~28 kB compressed) and a short Arabic one (~3 kB).
    (big,) = records_from_paths([BIG_ARTICLE_PAGE], base_url="https://bench.wirefeed.invalid/scrapinghub/")
    (good,) = records_from_paths([SAMPLE_PAGES / "seed-004-masr-news.html"], base_url="https://samples.wirefeed.invalid/")
    sent = produce_to(settings, [(0, big), (0, good)])
    client = sync_redis(settings)
    big_url = big.key.decode()

    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    try:
        outcomes = wait_for_outcomes(client, settings, [big, good], sent, worker=worker, timeout_s=120)
        wait_until_handled(worker, settings.topic_pages_raw, timeout_s=60)
        assert (outcomes[big_url]["outcome"], outcomes[big_url]["stage"], outcomes[big_url]["reason"]) == (
            "failed", "sink", "sink_error"
        )
        assert outcomes[good.key.decode()]["outcome"] == "kept"  # the partition did not stall

        (letter,) = letters_by_key(settings, at_least=1).values()
        assert (letter["stage"], letter["reason"], letter["url"]) == ("sink", "sink_error", big_url)
        assert base64.b64decode(letter["original_value_b64"]) == big.value
        assert letter["source"]["offset"] == sent[0].offset
        assert "MessageSizeTooLarge" in letter["error_class"] + letter["error_message"], letter["error_message"]

        # The article is stored, but released: no record is its writer, nothing was published.
        (big_key,) = [
            key for key in client.scan_iter(match=f"{settings.redis_prefix}:article:*")
            if json.loads(client.hget(key, "json"))["url"] == big_url
        ]
        stored = client.hgetall(big_key)
        assert stored[b"writer"] == b"" and not stored.get(b"published"), stored.keys()
        article_id = big_key.decode().rsplit(":", 1)[1]
        before = read_topic(settings, settings.topic_articles, at_least=1)
        assert [record.key.decode() for record in before] == [outcomes[good.key.decode()]["article_id"]]

        # Once the topic takes it, a replay of that offset publishes it, and only once.
        raise_topic_limit(settings, settings.topic_articles, settings.max_message_bytes)
        for replay in (1, 2):
            replay_offset(settings, 0, sent[0].offset)
            wait_until_handled(worker, settings.topic_pages_raw, timeout_s=60)
            published = read_topic(settings, settings.topic_articles, at_least=2)
            assert Counter(record.key.decode() for record in published) == Counter(
                [article_id, outcomes[good.key.decode()]["article_id"]]
            ), f"after replay {replay}"
    finally:
        worker.stop()

    (record,) = [record for record in published if record.key.decode() == article_id]
    stored = client.hgetall(big_key)
    article = json.loads(stored[b"json"])
    assert stored[b"published"].decode() == f"{article['content_hash']}|{article['pipeline_version']}"
    assert page_status(client, settings, big_url)["outcome"] == "kept"
    assert len(letters_by_key(settings, at_least=1)) == 1  # no second dead letter
    assert json.loads(record.value)["content_hash"] == article["content_hash"]


def test_an_article_published_by_a_replay_after_a_refusal_is_the_one_redis_holds(
    settings: Settings, redis_client, tmp_path: Path
):
    """README: the article hash's ``json`` is "the article, as on ``articles``". The replay copy
    that takes the publishing over saves nothing (same crawl, same content): what it publishes
    must be the stored version, not its own copy of it."""
    settings = settings.model_copy(update={"pages_raw_partitions": 1, "commit_interval_s": 0.5})
    create_topic_with_limit(settings, settings.topic_articles, SMALL_LIMIT)
    ensure_topics(settings)
    (big,) = records_from_paths([BIG_ARTICLE_PAGE], base_url="https://bench.wirefeed.invalid/scrapinghub/")
    sent = produce_to(settings, [(0, big)])
    client = sync_redis(settings)

    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    try:
        (status,) = wait_for_outcomes(client, settings, [big], sent, worker=worker, timeout_s=120).values()
        assert (status["outcome"], status["reason"]) == ("failed", "sink_error")
        raise_topic_limit(settings, settings.topic_articles, settings.max_message_bytes)
        replay_offset(settings, 0, sent[0].offset)
        wait_until_handled(worker, settings.topic_pages_raw, timeout_s=60)
    finally:
        worker.stop()

    (record,) = read_topic(settings, settings.topic_articles, at_least=1)
    on_topic = json.loads(record.value)
    stored = json.loads(client.hget(f"{settings.redis_prefix}:article:{record.key.decode()}", "json"))
    differing = {key: (on_topic.get(key), stored.get(key)) for key in on_topic.keys() | stored.keys()
                 if on_topic.get(key) != stored.get(key)}
    assert not differing, f"fields published by the replay copy (on the topic, in Redis): {differing}"


def _group_members(settings: Settings) -> set[str]:
    admin = KafkaAdminClient(**kafka_client_options(settings))
    try:
        group = admin.describe_groups([settings.group_id])[settings.group_id]
        return {member["member_id"] for member in group["members"]}
    finally:
        admin.close()


def test_a_redis_outage_longer_than_the_poll_interval_keeps_the_worker_in_its_group(
    settings: Settings, private_redis: PrivateRedis, tmp_path: Path
):
    """The consumer leaves its group when it fetches nothing for max_poll_interval_s (1000 s by
    default): an outage that long, with more pages waiting than the worker takes in (max_in_flight
    and Faust's buffer of 4 x that), must not end its membership, or each long outage would end in
    a rebalance."""
    settings = on_private_redis(settings, private_redis, max_poll_interval_s=3.0, max_in_flight=2)
    first, *stalled = scrapinghub_records(20)
    assert len(stalled) > 5 * settings.max_in_flight  # more than in flight and in Faust's buffer
    admin = redis.Redis.from_url(private_redis.url)
    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    try:
        wait_for_outcomes(admin, settings, [first], produce_to(settings, [(0, first)]), worker=worker)
        members = _group_members(settings)
        assert len(members) == 1
        private_redis.hang()
        try:
            sent = produce_to(settings, [(0, record) for record in stalled])
            time.sleep(4 * settings.max_poll_interval_s)
            assert _group_members(settings) == members
            assert worker.alive, worker.log_tail()
        finally:
            private_redis.resume()
        outcomes = wait_for_outcomes(admin, settings, stalled, sent, worker=worker, timeout_s=120)
        assert _group_members(settings) == members
    finally:
        worker.stop()
    assert {status["outcome"] for status in outcomes.values()} == {"kept"}, outcomes
    assert read_topic(settings, settings.topic_dlq, at_least=0) == [], "an outage dead-lettered pages"
    assert "failed (attempt" in worker.log_path.read_text(errors="replace")  # the outage was felt
