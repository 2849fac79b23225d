"""``wirefeed replay`` on the real broker and Redis, with real worker processes: the plan (time
and offset ranges, per partition), the dry run, the copies (key, partition, timestamp, headers),
the pipeline's idempotence under replay (Redis byte-for-byte but for the page outcomes, which name
the copies; after a version bump, the new group's reprocessing of the retained log updates each
article once, and a replay on top changes nothing), records that retention deletes after the plan
(counted, the rest copied, exit 3), a topic to copy into that does not exist, and alerts end to end
(keyword and breaking-story rules, signed webhooks, nothing new on replay, nothing for the old
pages a version bump reprocesses)."""

from __future__ import annotations

import argparse
import hashlib
import hmac
import io
import json
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from contract import assert_valid
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.record.default_records import DefaultRecordBatchBuilder
from pydantic import SecretStr
from worker_harness import (
    WorkerProcess,
    read_topic,
    scrape_metrics,
    stored_values,
    sync_redis,
    wait_for,
    wait_for_outcomes,
    wait_until_handled,
)

from tests.builders import PARAGRAPHS
from workers import SAMPLE_PAGES
from workers.feed import Record, make_producer, produce, records_from_paths, require_topic
from workers.kafka_clients import kafka_client_options
from workers.replay import (
    REPLAY_ALERTS_HEADER,
    REPLAY_HEADER,
    PartitionRange,
    Progress,
    ReplayMarker,
    TokenBucket,
    feed,
    plan_replay,
    register,
    run,
)
from workers.settings import Settings
from workers.sinks.redis_store import page_key
from workers.urlnorm import domain_of
from workers.topics import ensure_topics

pytestmark = pytest.mark.integration

BASE_URL = "https://samples.wirefeed.invalid/"
SECRET = "newsdesk-secret"


def replay_everything(settings: Settings, *, alerts: bool = False) -> int:
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap)
    try:
        plan = plan_replay(consumer, settings.topic_pages_raw)
    finally:
        consumer.close()
    marker = ReplayMarker(f"test-{time.monotonic_ns()}", alerts=alerts)
    result = feed(settings, plan, into=settings.topic_pages_raw, marker=marker, rate=None, progress=Progress(plan.total))
    return result.copied


def cli(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    return parser.parse_args(["replay", *argv])


def page(n: int) -> Record:
    url = f"https://outlet{n % 3}.example/{n}"
    return Record(url.encode(), json.dumps({"url": url, "fetched_at": "2026-11-22T09:00:00Z", "html": "<p>x</p>"}).encode())


def test_plans_by_time_and_offset_dry_run_and_copies_that_keep_key_partition_time_and_headers(settings: Settings, capsys):
    ensure_topics(settings)
    producer = make_producer(settings)
    # An hour ago, on a minute: records stamped long ago are past pages.raw's 14-day retention, and
    # the broker's next retention check (every 5 minutes) deleted them in the middle of the test.
    t0 = (int(time.time()) // 60 - 60) * 60_000
    for n in range(12):  # partition n % 2, one record a minute
        producer.send(settings.topic_pages_raw, key=page(n).key, value=page(n).value, partition=n % 2,
                      timestamp_ms=t0 + n * 60_000, headers=[("crawler", b"c1")])
    producer.flush()
    producer.close()

    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap)
    try:
        since, until = datetime.fromtimestamp((t0 + 4 * 60_000) / 1000, UTC), datetime.fromtimestamp((t0 + 8 * 60_000) / 1000, UTC)
        by_time = plan_replay(consumer, settings.topic_pages_raw, since=since, until=until)
        assert [(r.partition, r.start, r.end) for r in by_time.ranges] == [(0, 2, 4), (1, 2, 4)]  # minutes 4..7
        one_partition = plan_replay(consumer, settings.topic_pages_raw, start_offset=1, end_offset=100, partitions=[1])
        assert [(r.partition, r.start, r.end) for r in one_partition.ranges] == [(1, 1, 6)]
        with pytest.raises(ValueError, match="no partition 7"):
            plan_replay(consumer, settings.topic_pages_raw, partitions=[7])
        with pytest.raises(ValueError, match="does not exist"):
            plan_replay(consumer, "no-such-topic-" + settings.app_name)
    finally:
        consumer.close()

    assert run(settings, cli("--dry-run", "--since", since.isoformat(), "--until", until.isoformat())) == 0
    out = capsys.readouterr().out
    assert "4 record(s) in 2 partition(s)" in out and "dry run: would copy up to 4 record(s)" in out
    assert len(read_topic(settings, settings.topic_pages_raw, at_least=12)) == 12  # nothing copied

    assert run(settings, cli("--since", since.isoformat(), "--until", until.isoformat(), "--rate", "20")) == 0
    records = read_topic(settings, settings.topic_pages_raw, at_least=16)
    originals = {(r.key, r.partition, r.timestamp) for r in records if r.offset in (2, 3)}
    copies = [r for r in records if any(name == REPLAY_HEADER for name, _ in r.headers)]
    assert {(r.key, r.partition, r.timestamp) for r in copies} == originals
    for copy in copies:
        headers = dict(copy.headers)
        assert headers["crawler"] == b"c1" and headers[REPLAY_ALERTS_HEADER] == b"0"
        assert ReplayMarker.from_headers(copy.headers) is not None
    # A replay of everything skips the copies made by the first one.
    assert run(settings, cli()) == 0
    assert "skipped 4 copies of earlier replays" in capsys.readouterr().out
    assert len(read_topic(settings, settings.topic_pages_raw, at_least=28)) == 12 + 4 + 12
    # An explicit offset range names its records: a copy there (partition 0, offset 6, from the
    # first replay) is replayed again, under this replay's marker alone.
    assert run(settings, cli("--partition", "0", "--from-offset", "6", "--to-offset", "7", "--alerts")) == 0
    assert "copied 1 record(s)" in capsys.readouterr().out
    again = max((r for r in read_topic(settings, settings.topic_pages_raw, at_least=29) if r.partition == 0), key=lambda r: r.offset)
    names = [name for name, _ in again.headers]
    assert names.count(REPLAY_HEADER) == 1 and dict(again.headers)[REPLAY_ALERTS_HEADER] == b"1"


def retention_deletes(settings: Settings, log_starts: dict[int, int]) -> None:
    """What retention does to pages.raw at its 14-day edge: each partition's log start moves up to
    the offset given, and the records before it are gone."""
    admin = KafkaAdminClient(**kafka_client_options(settings))
    try:
        admin.delete_records({TopicPartition(settings.topic_pages_raw, p): offset for p, offset in log_starts.items()})
    finally:
        admin.close()


def test_records_deleted_by_retention_after_the_plan_are_counted_and_the_rest_is_copied(settings: Settings):
    ensure_topics(settings)
    produce(settings, [page(n) for n in range(20)], partition=0)
    produce(settings, [page(n) for n in range(20, 24)], partition=1)
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap)
    try:
        plan = plan_replay(consumer, settings.topic_pages_raw)
    finally:
        consumer.close()
    retention_deletes(settings, {0: 5, 1: 4})  # partition 1: every record planned

    out = io.StringIO()
    marker = ReplayMarker("test-retention", alerts=False)
    result = feed(settings, plan, into=settings.topic_pages_raw, marker=marker, rate=None, progress=Progress(plan.total, out=out))
    assert result.copied == 15
    assert set(result.deleted) == {PartitionRange(0, 0, 5), PartitionRange(1, 0, 4)}
    assert result.deleted_by_retention == 9
    assert out.getvalue().splitlines()[-1].endswith("; 9 deleted by retention before they could be copied")
    copies = [r for r in read_topic(settings, settings.topic_pages_raw, at_least=30) if REPLAY_HEADER in dict(r.headers)]
    assert sorted(r.key for r in copies) == sorted(page(n).key for n in range(5, 20))


def test_a_replay_that_lost_records_to_retention_says_which_and_exits_3(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    ensure_topics(settings)
    produce(settings, [page(n) for n in range(10)], partition=0)

    def plan_then_retention(*args, **kwargs):
        planned = plan_replay(*args, **kwargs)
        retention_deletes(settings, {0: 3})
        return planned

    monkeypatch.setattr("workers.replay.plan_replay", plan_then_retention)
    assert run(settings, cli("--partition", "0")) == 3
    out = capsys.readouterr().out
    assert "copied 7 record(s)" in out
    assert out.rstrip().endswith(
        "; 3 planned record(s) deleted by retention before they could be copied (partition 0: offsets 0..3): "
        "replay incomplete"
    )


def test_a_topic_to_copy_into_that_does_not_exist_is_refused_before_anything_is_copied(
    settings: Settings, capsys: pytest.CaptureFixture[str]
):
    ensure_topics(settings)
    produce(settings, [page(0)])
    missing = f"{settings.topic_pages_raw}.typo"
    for dry_run in (["--dry-run"], []):
        assert run(settings, cli("--into", missing, *dry_run)) == 2
        captured = capsys.readouterr()
        assert captured.err.splitlines() == [
            f"wirefeed replay: topic {missing!r} does not exist (`wirefeed topics create` creates the topics of the settings)"
        ]
        assert "would copy" not in captured.out
    assert len(read_topic(settings, settings.topic_pages_raw, at_least=1)) == 1


async def produce_as_a_crawler(
    settings: Settings,
    records: list[Record],
    *,
    compression: str | None,
    max_request_size: int = 1048576,
    headers: list[tuple[str, bytes | None]] | None = None,
) -> None:
    """Records sent to pages.raw's partition 0 the way a crawler's own client sends them (aiokafka
    here, franz-go or librdkafka in production), with its codec and its size limit."""
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap, compression_type=compression, max_request_size=max_request_size
    )
    await producer.start()
    try:
        for record in records:
            await producer.send_and_wait(
                settings.topic_pages_raw, key=record.key, value=record.value, partition=0, headers=headers
            )
    finally:
        await producer.stop()


def copies_on_partition_0(settings: Settings, at_least: int) -> list[ConsumerRecord]:
    records = read_topic(settings, settings.topic_pages_raw, at_least=at_least)
    return [r for r in records if r.partition == 0 and REPLAY_HEADER in dict(r.headers)]


async def test_records_compressed_with_every_codec_a_crawler_may_use_are_replayed(
    settings: Settings, capsys: pytest.CaptureFixture[str]
):
    # The topic keeps each batch as its producer compressed it (compression.type=producer);
    # snappy is franz-go's default.
    ensure_topics(settings)
    codecs = ["gzip", "snappy", "lz4", "zstd"]
    for n, codec in enumerate(codecs):
        await produce_as_a_crawler(settings, [page(n)], compression=codec)

    assert run(settings, cli("--partition", "0")) == 0
    assert f"copied {len(codecs)} record(s)" in capsys.readouterr().out
    copies = copies_on_partition_0(settings, at_least=2 * len(codecs))
    assert [(r.key, r.value) for r in copies] == [(page(n).key, page(n).value) for n in range(len(codecs))]


async def test_a_record_with_a_header_of_null_value_is_replayed_with_it_empty(
    settings: Settings, capsys: pytest.CaptureFixture[str]
):
    # Kafka allows a header without a value (Java's RecordHeader(name, null)); kafka-python
    # reads it as None and its producer refuses None: the replay died there with a TypeError
    # traceback, at the same record every time, and copied nothing after it.
    ensure_topics(settings)
    await produce_as_a_crawler(settings, [page(0)], compression=None)
    await produce_as_a_crawler(settings, [page(1)], compression=None, headers=[("crawler", b"c1"), ("x-trace", None)])
    await produce_as_a_crawler(settings, [page(2)], compression=None)
    originals = read_topic(settings, settings.topic_pages_raw, at_least=3)
    assert ("x-trace", None) in originals[1].headers

    assert run(settings, cli("--partition", "0")) == 0
    assert "copied 3 record(s)" in capsys.readouterr().out
    copies = copies_on_partition_0(settings, at_least=6)
    assert [(r.key, r.value) for r in copies] == [(page(n).key, page(n).value) for n in range(3)]
    crawlers = [(name, value) for name, value in copies[1].headers if not name.startswith("wirefeed-replay")]
    assert crawlers == [("crawler", b"c1"), ("x-trace", b"")]


def incompressible_record(settings: Settings, *, room: int) -> Record:
    """A record ``room`` bytes under the topic's limit uncompressed, of random bytes that no codec
    makes smaller."""
    key, target = b"https://outlet0.example/incompressible", settings.max_message_bytes - room
    value = random.Random(7).randbytes(target)
    value = value[: len(value) - (DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, []) - target)]
    assert target - 4 <= DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, []) <= target
    return Record(key, value)


async def sizes_a_crawler_may_send(settings: Settings) -> list[Record]:
    """On pages.raw's partition 0: a page, one three times the topic's limit before compression
    (a crawler whose client allows it, zstd, which the broker accepts: only the compressed batch
    counts), one whose copy is over the limit (the replay's headers on a record just under it,
    which a crawler that does not compress sent), a page."""
    story = " ".join(PARAGRAPHS)
    html = f"<html><body>{story * (3 * settings.max_message_bytes // len(story))}</body></html>"
    url = "https://outlet1.example/big"
    big = Record(url.encode(), json.dumps({"url": url, "fetched_at": "2026-11-22T09:00:00Z", "html": html}).encode())
    assert len(big.value) > 3 * settings.max_message_bytes - len(story)
    near_the_limit = incompressible_record(settings, room=32)
    crawler_limit = 8 * settings.max_message_bytes
    await produce_as_a_crawler(settings, [page(0), big], compression="zstd", max_request_size=crawler_limit)
    await produce_as_a_crawler(settings, [near_the_limit], compression=None, max_request_size=crawler_limit)
    await produce_as_a_crawler(settings, [page(1)], compression="zstd", max_request_size=crawler_limit)
    return [page(0), big, near_the_limit, page(1)]


async def test_a_record_the_broker_accepted_is_replayed_whatever_its_size_before_compression_and_one_it_refuses_is_named(
    settings: Settings, capsys: pytest.CaptureFixture[str]
):
    # 1 MiB topics, so that a record several times the limit stays small for a test.
    settings = settings.model_copy(update={"max_message_bytes": 1024 * 1024})
    ensure_topics(settings)
    records = await sizes_a_crawler_may_send(settings)

    assert run(settings, cli("--partition", "0")) == 3
    captured = capsys.readouterr()
    assert "partition 0 offset 2: too large to copy, refused by the broker" in captured.err
    assert captured.err.splitlines()[-1].endswith("; 1 too large to copy")
    assert "copied 3 record(s)" in captured.out
    assert captured.out.rstrip().endswith(
        f"; 1 record(s) too large to copy into {settings.topic_pages_raw} (partition 0 offset 2): replay incomplete"
    )
    copies = copies_on_partition_0(settings, at_least=len(records) + 3)
    assert [(r.key, r.value) for r in copies] == [(r.key, r.value) for r in records if r is not records[2]]


async def test_a_record_too_large_for_the_replay_producer_itself_is_named_and_the_rest_copied(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    settings = settings.model_copy(update={"max_message_bytes": 1024 * 1024})
    ensure_topics(settings)
    records = await sizes_a_crawler_may_send(settings)
    # as if the record three times the limit were larger than REPLAY_MAX_REQUEST_BYTES
    monkeypatch.setattr("workers.replay.REPLAY_MAX_REQUEST_BYTES", 2 * settings.max_message_bytes)

    assert run(settings, cli("--partition", "0")) == 3
    captured = capsys.readouterr()
    assert "partition 0 offset 1: too large to copy, refused by the producer" in captured.err
    assert captured.out.rstrip().endswith(
        f"; 2 record(s) too large to copy into {settings.topic_pages_raw} (partition 0 offset 1, partition 0 offset 2): "
        "replay incomplete"
    )
    copies = copies_on_partition_0(settings, at_least=len(records) + 2)
    assert [(r.key, r.value) for r in copies] == [(r.key, r.value) for r in (records[0], records[3])]


@pytest.fixture
def samples(settings: Settings) -> list[Record]:
    ensure_topics(settings)
    return list(records_from_paths([SAMPLE_PAGES], base_url=BASE_URL))


def wait_until_replayed(settings: Settings, samples: list[Record], *, replays: int, worker: WorkerProcess) -> None:
    """Every record on pages.raw, the originals and the copies of ``replays`` replays, handled by
    the worker (not "every page's last outcome comes from its latest copy": an original and its
    copy in flight at once may finish in either order)."""
    records = read_topic(settings, settings.topic_pages_raw, at_least=len(samples) * (1 + replays))
    assert len(records) == len(samples) * (1 + replays)
    wait_until_handled(worker, settings.topic_pages_raw)


def redis_contents(client, settings: Settings) -> dict[bytes, object]:
    return stored_values(client, sorted(client.scan_iter(match=f"{settings.redis_prefix}:*")))


def decided_by_the_latest_copies(before: dict[bytes, object], settings: Settings, replays: int, samples) -> dict[bytes, object]:
    """What Redis holds after ``replays`` replays of unchanged pages: what it held before, but
    each page outcome names the record that last decided the page, the latest replay's copy (the
    original's timestamp, a higher offset); its outcome, reason and article are the original's."""
    records = read_topic(settings, settings.topic_pages_raw, at_least=len(samples) * (1 + replays))
    latest: dict[bytes, int] = {}
    for record in records:
        if REPLAY_HEADER in dict(record.headers):
            latest[record.key] = max(record.offset, latest.get(record.key, -1))
    assert len(latest) == len(samples)
    expected = dict(before)
    for url, offset in latest.items():
        outcome = page_key(settings.redis_prefix, url.decode()).encode()
        expected[outcome] = {**before[outcome], b"offset": str(offset).encode()}  # type: ignore[dict-item]
    return expected


def test_replaying_the_same_range_twice_leaves_redis_byte_for_byte_the_same(settings: Settings, samples, tmp_path: Path):
    # Byte-for-byte because nothing extraction reads changed between the first run and the
    # replays: each sample is the only page of its domain, below chrome_min_pages, so no site
    # chrome is learned, before or after. A page first processed during its site's cold start
    # would come out cleaner on a replay once the chrome is learned, and be stored and
    # published as an update (README, Replay).
    assert max(Counter(domain_of(r.key.decode()) for r in samples).values()) < settings.chrome_min_pages
    # Document frequencies go to Redis once a language's counts are this old: on a slow machine,
    # a refresh between the two reads would be a change the replays did not make.
    settings = settings.model_copy(update={"story_df_refresh_s": 3600.0})
    client = sync_redis(settings)
    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    try:
        sent = produce(settings, samples)
        wait_for_outcomes(client, settings, samples, sent, worker=worker)
        before = redis_contents(client, settings)
        assert len([k for k in before if b":page:" in k]) == len(samples)
        published = read_topic(settings, settings.topic_articles, at_least=len(samples))

        for replay in (1, 2):
            assert replay_everything(settings) == len(samples)  # the copies of the first are skipped
            wait_until_replayed(settings, samples, replays=replay, worker=worker)
            assert redis_contents(client, settings) == decided_by_the_latest_copies(before, settings, replay, samples)
        # Every copy was handled, and a page's article is published before the page is done with:
        # whatever the replays published is on the topic now, read up to its end offsets.
        assert len(read_topic(settings, settings.topic_articles, at_least=len(published))) == len(published)
    finally:
        exit_code = worker.stop()
    assert exit_code == 0


def test_a_version_bump_reprocesses_the_log_by_itself_and_a_replay_after_it_updates_nothing_more(
    settings: Settings, samples, tmp_path: Path
):
    client = sync_redis(settings)
    v1 = WorkerProcess(settings, tmp_path / "v1.log").start()
    try:
        sent = produce(settings, samples)
        wait_for_outcomes(client, settings, samples, sent, worker=v1)
    finally:
        v1_exit = v1.stop()
    assert v1_exit == 0
    article_ids = {k.split(b":")[-1] for k in client.scan_iter(match=f"{settings.redis_prefix}:article:*")}

    bumped = settings.model_copy(update={"pipeline_version": settings.pipeline_version + 1})
    v2 = WorkerProcess(bumped, tmp_path / "v2.log").start()
    try:
        def all_v2() -> bool:
            version = str(bumped.pipeline_version).encode()
            return all(client.hget(f"{settings.redis_prefix}:article:{i.decode()}", "pipeline_version") == version for i in article_ids)

        # No replay: the v2 group is new, so it reads pages.raw from the start of what the log
        # retains, and that updates every article.
        wait_for(all_v2, timeout_s=180, what="every article at the new version", worker=v2)
        wait_until_handled(v2, settings.topic_pages_raw)
        # A replay on top (what an operator might wrongly add) processes the same pages a second
        # time, and finds nothing new.
        replay_everything(settings)
        wait_until_replayed(settings, samples, replays=1, worker=v2)
        assert all_v2()
    finally:
        v2_exit = v2.stop()
    assert v2_exit == 0
    # The worker is stopped: everything it published is on the topic, read up to its end offsets.
    published = read_topic(settings, settings.topic_articles, at_least=2 * len(article_ids), timeout_s=60)
    per_article = Counter(r.key for r in published)
    assert per_article == {i: 2 for i in article_ids}  # the first version, then exactly one update
    versions = sorted(assert_valid("articles", r.value)["pipeline_version"] for r in published)
    assert versions == [settings.pipeline_version] * len(article_ids) + [bumped.pipeline_version] * len(article_ids)


def alerting(settings: Settings, **changes: object) -> Settings:
    """The test's settings with alerts on topics of its own, created."""
    settings = settings.model_copy(update={
        "topic_alerts": f"{settings.topic_pages_raw}.alerts",
        "topic_alerts_dlq": f"{settings.topic_pages_raw}.alerts.dlq",
        **changes,
    })
    ensure_topics(settings)
    return settings


class _Receiver(BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], bytes]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((dict(self.headers), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    received: list[tuple[dict[str, str], bytes]] = []
    handler = type("Receiver", (_Receiver,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    server.shutdown()
    server.server_close()


def test_seed_pages_fire_once_and_a_replay_fires_nothing_new(settings: Settings, samples, receiver, tmp_path: Path):
    """The two seed pages are one story from two outlets: the breaking-story rule (N=2) fires
    once for it, the keyword rule once per article, and replays (with or without --alerts) fire
    nothing new."""
    url, received = receiver
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        f"""
version: 1
webhooks: {{desk: {{url: "{url}", secret: desk}}}}
rules:
  - {{id: aleppo, kind: article, match: {{terms: ["حلب"]}}, deliver: {{webhooks: [desk]}}}}
  - {{id: breaking, kind: breaking_story, match: {{min_outlets: 2, within_minutes: 60}}, deliver: {{webhooks: [desk]}}}}
""",
        encoding="utf-8",
    )
    settings = alerting(
        settings,
        alert_rules_path=rules,
        alert_webhook_secrets={"desk": SecretStr(SECRET)},
        alert_webhook_allow_private_addresses=True,  # the receiver is on 127.0.0.1
    )
    client = sync_redis(settings)
    stream = f"{settings.redis_prefix}:alerts"
    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    try:
        sent = produce(settings, samples)
        outcomes = wait_for_outcomes(client, settings, samples, sent, worker=worker)
        seeds = {outcomes[r.key.decode()]["article_id"] for r in samples if b"/2016/12/08/" in r.key}
        assert len(seeds) == 2

        def alerts_by_rule() -> Counter[str]:
            return Counter(fields[b"rule_id"].decode() for _id, fields in client.xrange(stream))

        wait_for(lambda: alerts_by_rule()["breaking"] == 1 and alerts_by_rule()["aleppo"] >= 2,
                 timeout_s=60, what="the keyword and breaking-story alerts", worker=worker)
        fired = [assert_valid("alerts", fields[b"json"]) for _id, fields in client.xrange(stream)]
        aleppo = [a for a in fired if a["rule_id"] == "aleppo"]
        assert seeds <= {a["article"]["article_id"] for a in aleppo}
        assert len({a["article"]["article_id"] for a in aleppo}) == len(aleppo)  # once per article
        (breaking,) = [a for a in fired if a["rule_id"] == "breaking"]
        assert {o["domain"] for o in breaking["story"]["outlets"]} == {"irfaasawtak.example", "masr-news.example"}

        wait_for(lambda: len(received) >= len(fired), timeout_s=60, what="the webhook POSTs", worker=worker)
        for headers, body in received:
            timestamp, signature = headers["X-Wirefeed-Timestamp"], headers["X-Wirefeed-Signature"]
            expected = hmac.new(SECRET.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
            assert signature == f"sha256={expected}"
            assert headers["X-Wirefeed-Alert-Id"] == json.loads(body)["alert_id"]
        assert sorted(h["X-Wirefeed-Alert-Id"] for h, _ in received) == sorted(a["alert_id"] for a in fired)

        # Replays, without and with alerts: processed, and nothing new anywhere. A page's alerts are
        # fired into the stream and acknowledged by the topic before the page is done with, so once
        # every copy was handled anything wrongly fired is there to be seen; a webhook POST
        # follows only a record on the alerts topic.
        for alerts in (False, True):
            replay_everything(settings, alerts=alerts)
        wait_until_replayed(settings, samples, replays=2, worker=worker)
        assert client.xlen(stream) == len(fired)
        assert len(read_topic(settings, settings.topic_alerts, at_least=len(fired))) == len(fired)
        assert len(received) == len(fired)
    finally:
        exit_code = worker.stop()
    assert exit_code == 0


def fresh_page_about_aleppo(url: str) -> Record:
    """A page crawled now, about Aleppo, of a domain and a text no other test page has."""
    paragraphs = [*PARAGRAPHS, "Aid convoys reached Aleppo on Tuesday, the first in a month."]
    html = f"<html><head><title>Aid reaches Aleppo</title></head><body><article>{''.join(f'<p>{p}</p>' for p in paragraphs)}</article></body></html>"
    message = {"url": url, "fetched_at": datetime.now(UTC).isoformat(), "html": html}
    return Record(url.encode(), json.dumps(message).encode())


def test_a_version_bump_fires_no_alert_for_the_old_pages_it_reprocesses_and_fires_for_new_ones(
    settings: Settings, samples, tmp_path: Path
):
    """v1 runs with a rule that matches nothing; v2 (the version bumped) has rules that match the
    sample pages (a keyword in the seeds, and their story: two outlets). Its new group reads the
    retained pages.raw from the start, stores every article again, and fires nothing for those
    pages: their records are older than alert_max_record_age_s (here 30 s, for the default 6 h).
    A page crawled while v2 runs fires."""
    quiet, watching = tmp_path / "v1-rules.yaml", tmp_path / "v2-rules.yaml"
    quiet.write_text("version: 1\nrules: [{id: nothing, kind: article, match: {terms: [zanzibarnowhere]}}]\n", encoding="utf-8")
    watching.write_text(
        """
version: 1
rules:
  - {id: aleppo, kind: article, match: {terms: ["حلب", "Aleppo"]}}
  - {id: breaking, kind: breaking_story, match: {min_outlets: 2, within_minutes: 60}}
""",
        encoding="utf-8",
    )
    v1_settings = alerting(settings, alert_rules_path=quiet, alert_max_record_age_s=30.0)
    client = sync_redis(settings)
    stream = f"{settings.redis_prefix}:alerts"
    v1 = WorkerProcess(v1_settings, tmp_path / "v1.log").start()
    try:
        sent = produce(v1_settings, samples)
        wait_for_outcomes(client, v1_settings, samples, sent, worker=v1)
        wait_until_handled(v1, settings.topic_pages_raw)
    finally:
        v1_exit = v1.stop()
    assert v1_exit == 0
    assert client.xlen(stream) == 0
    # Every sample record older than the limit before v2 reads it: a wait of at most the 30 s.
    time.sleep(max(0.0, max(m.timestamp for m in sent) / 1000 + v1_settings.alert_max_record_age_s + 1 - time.time()))

    v2_settings = v1_settings.model_copy(update={
        "pipeline_version": settings.pipeline_version + 1, "alert_rules_path": watching,
    })
    v2 = WorkerProcess(v2_settings, tmp_path / "v2.log").start()
    try:
        wait_until_handled(v2, settings.topic_pages_raw)  # every sample page, again, by the v2 group
        version = str(v2_settings.pipeline_version).encode()
        article_keys = list(client.scan_iter(match=f"{settings.redis_prefix}:article:*"))
        assert article_keys and all(client.hget(k, "pipeline_version") == version for k in article_keys)
        assert client.xlen(stream) == 0

        fresh = fresh_page_about_aleppo("https://fresh-wire.example/world/aid-reaches-aleppo")
        produce(v2_settings, [fresh])
        wait_for(lambda: client.xlen(stream) >= 1, timeout_s=60, what="the fresh page's alert", worker=v2)
        wait_until_handled(v2, settings.topic_pages_raw)
        fired = [assert_valid("alerts", fields[b"json"]) for _id, fields in client.xrange(stream)]
        # Its keyword; and its story's, if it joined the seeds' (a new outlet on it, now): for it alone.
        assert "aleppo" in {a["rule_id"] for a in fired}
        assert {(a["article"]["url"], a["replay_id"]) for a in fired} == {(fresh.key.decode(), None)}
        suppressed = {
            sample.labels["reason"]: sample.value
            for sample in scrape_metrics(v2)["wirefeed_alerts_suppressed"].samples
            if sample.name == "wirefeed_alerts_suppressed_total"
        }
        # the keyword in both seeds, and their story; replays: none
        assert set(suppressed) == {"stale_record"} and suppressed["stale_record"] >= 3
    finally:
        v2_exit = v2.stop()
    assert v2_exit == 0
    assert len(read_topic(v2_settings, v2_settings.topic_alerts, at_least=len(fired))) == len(fired)


# --- found by a review of `wirefeed replay` (the twenty-seventh session) ---------------------------------


async def test_a_record_with_neither_key_nor_value_is_copied_empty_and_the_rest_after_it(
    settings: Settings, capsys: pytest.CaptureFixture[str]
):
    # Java's and librdkafka's producers send one; kafka-python's send() refuses it, and the replay
    # ended there with a traceback, nothing after it copied in any partition.
    ensure_topics(settings)
    await produce_as_a_crawler(settings, [page(0)], compression=None)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    await producer.start()
    try:
        batch = producer.create_batch()
        assert batch.append(key=None, value=None, timestamp=None) is not None
        batch.close()
        await (await producer.send_batch(batch, settings.topic_pages_raw, partition=0))
    finally:
        await producer.stop()
    await produce_as_a_crawler(settings, [page(1)], compression=None)

    assert run(settings, cli("--partition", "0")) == 0
    assert "copied 3 record(s)" in capsys.readouterr().out
    copies = copies_on_partition_0(settings, at_least=6)
    assert [(r.key, r.value) for r in copies] == [(page(0).key, page(0).value), (None, b""), (page(1).key, page(1).value)]


def test_a_topic_the_broker_refuses_by_its_name_is_refused_in_one_line(settings: Settings):
    # INVALID_TOPIC_EXCEPTION, not UNKNOWN_TOPIC_OR_PARTITION: the check passed it, and the first
    # send raised (a name from the settings, which the command line's check does not see)
    with pytest.raises(ValueError, match=r"^topic 'pages\.raw ': the broker refuses it: INVALID_TOPIC \("):
        require_topic(settings, "pages.raw ")


def test_a_replay_stopped_by_ctrl_c_says_its_id_and_how_far_it_got_and_exits_130(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    # a KeyboardInterrupt traceback, without the replay id or what had been copied
    ensure_topics(settings)
    produce(settings, [page(n) for n in range(10)], partition=0)
    taken = 0

    def ctrl_c_at_the_fourth_record(bucket: TokenBucket) -> None:
        nonlocal taken
        taken += 1
        if taken == 4:
            raise KeyboardInterrupt

    monkeypatch.setattr(TokenBucket, "take", ctrl_c_at_the_fourth_record)
    assert run(settings, cli("--partition", "0", "--rate", "1000")) == 130
    (summary,) = capsys.readouterr().out.splitlines()[-1:]
    assert re.fullmatch(
        rf"replay \d{{8}}T\d{{6}}Z-[0-9a-f]{{6}}: copied 3 record\(s\) into {re.escape(settings.topic_pages_raw)} .*; "
        r"interrupted after 3 of 10 planned record\(s\): replay incomplete",
        summary,
    )
    copies = copies_on_partition_0(settings, at_least=13)
    assert [r.key for r in copies] == [page(n).key for n in range(3)]
