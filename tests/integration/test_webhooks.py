"""Alert delivery on the real Redis and broker, with a real HTTP receiver.

* Firing: once per (rule, article) and (rule, story) into the Redis stream and the ``alerts``
  topic, whatever the redelivery or replay, and a crash between firing and publishing republishes.
* Webhooks: signed POSTs, retries with backoff for a span of time, dead letters on
  ``alerts.dlq`` (stripped when the topic refuses them), no second POST on redelivery or when two
  workers read the same alert at once, a delivery taken over when its worker died, a receiver that
  hangs holding up only its own deliveries, ``wirefeed alerts redrive``.

These drive the alert engine, the webhook dispatcher and its lanes directly. The end-to-end test with a
worker process (pages in, alerts and webhooks out) needs the pipeline to call the engine:
``test_seed_pages_fire_once_and_a_replay_fires_nothing_new`` in tests/integration/test_replay.py.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import os
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from yarl import URL
from aiohttp import web
from faust.types import TP
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaTimeoutError, TopicAuthorizationFailedError
from contract import assert_valid
from kafka.admin import KafkaAdminClient, NewTopic
from pydantic import SecretStr
import redis.asyncio as aioredis
from worker_harness import free_port, read_topic

from workers import cli
from workers.alerts import rules as rules_module
from workers.alerts.agent import WebhookLanes, deliver_webhooks
from workers.alerts.engine import AlertEngine, RulesFile
from workers.alerts.ledger import TAKEOVER_S, AlertLedger, DeliveryState
from workers.alerts.match import StoryInfo
from workers.alerts.messages import Alert, AlertArticle, AlertDeadLetter, AlertLetter
from workers.alerts.webhooks import (
    ALERT_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    DeliveryQueue,
    Queued,
    RetryPolicy,
    WebhookDispatcher,
    WebhookSender,
    verify,
    webhook_connector,
)
from workers.cancelling import cancel_and_wait
from workers.metrics import PipelineMetrics
from workers.models import Article, ExtractionInfo, SourcePosition
from workers.replay import ReplayMarker
from workers.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

SECRET = SecretStr("newsdesk-secret")
T0 = datetime(2016, 12, 8, 19, 40, tzinfo=UTC)


def seed_article(article_id: str, domain: str, title: str, text: str) -> Article:
    return Article(
        article_id=article_id, url=f"https://{domain}/2016/12/08/aleppo", canonical_url=f"https://{domain}/2016/12/08/aleppo",
        domain=domain, title=title, text=text, language="ar", published_at=T0, fetched_at=T0,
        content_hash="sha256:" + article_id * 2, pipeline_version=1, processed_at=T0,
        source=SourcePosition(topic="pages.raw", partition=0, offset=1),
        extraction=ExtractionInfo(extractor="trafilatura", extractor_version="2.3.1", html_bytes=1, text_chars=1, encoding="utf-8"),
    )


SEED_000 = seed_article(
    "8c96e064df17d9ace6d8a45853a86804", "irfaasawtak.example",
    "كيري: الجهود ستتواصل بشأن حلب.. والجيش السوري يستمر في التقدّم",
    "أعلن مسؤول أميركي أن وزيري الخارجية الأميركي جون كيري والروسي سيرغي لافروف لم يحققا أيّ تقدّم في محادثاتهما حول حلب.",
)
SEED_004 = seed_article(
    "2f6a1c0e9b8d7c6b5a4f3e2d1c0b9a88", "masr-news.example",
    "كيري ولافروف يفشلان في التوصل لاتفاق بشأن وقف إطلاق النار",
    "فشل وزير الخارجية الأمريكي جون كيري ونظيره الروسي سيرجي لافروف في التوصل إلى اتفاق بشأن حلب.",
)
OTHER = seed_article(
    "0123456789abcdef0123456789abcdef", "cbc.example", "Gaza ceasefire holds", "The ceasefire in Gaza held overnight."
)

RULES = """
version: 1
webhooks:
  desk: {url: "%(url)s", secret: desk}
rules:
  - {id: aleppo, kind: article, match: {terms: ["حلب"]}, deliver: {webhooks: [desk]}}
  - {id: breaking, kind: breaking_story, match: {min_outlets: 2, within_minutes: 60}, deliver: {webhooks: [desk]}}
"""


class KafkaAlertTopics:
    """The engine's and the dispatcher's publisher, on aiokafka instead of the Faust app's producer."""

    def __init__(self, producer: AIOKafkaProducer, alerts: str, dead_letters: str) -> None:
        self._producer, self._alerts, self._dead_letters = producer, alerts, dead_letters
        self.fail_next_alert = False
        self.refuse_next_alert = False

    async def publish_alert(self, alert: Alert) -> None:
        if self.fail_next_alert:
            self.fail_next_alert = False
            # the worker is stopped or dies between firing and publishing: nothing after this runs
            raise asyncio.CancelledError
        if self.refuse_next_alert:
            self.refuse_next_alert = False
            raise ValueError("the topic refuses the record for good")
        await self._producer.send_and_wait(self._alerts, alert.model_dump_json(by_alias=True).encode(), key=alert.alert_id.encode())

    async def publish_dead_letter(self, letter: AlertLetter) -> None:
        await self._producer.send_and_wait(
            self._dead_letters, letter.model_dump_json(by_alias=True).encode(), key=letter.kafka_key
        )


@dataclass
class Receiver:
    """A webhook receiver on a real local port: answers each alert from its script of statuses
    (then 200), or as ``answer`` says."""

    scripts: dict[str, list[int]] = field(default_factory=dict)
    answer: Callable[[str], Awaitable[int]] | None = None
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    answered: int = 0
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append((dict(request.headers), await request.read()))
        alert_id = request.headers[ALERT_ID_HEADER]
        script = self.scripts.get(alert_id)
        status = await self.answer(alert_id) if self.answer is not None else script.pop(0) if script else 200
        self.answered += 1
        return web.Response(status=status)

    def requested(self, alert_id: str) -> int:
        return sum(1 for headers, _body in self.requests if headers[ALERT_ID_HEADER] == alert_id)

    def verified_alert_ids(self) -> list[str]:
        ids = []
        for headers, body in self.requests:
            assert verify(
                SECRET.get_secret_value().encode(), timestamp=headers[TIMESTAMP_HEADER],
                signature=headers[SIGNATURE_HEADER], body=body, now=datetime.now(UTC).timestamp(),
            ), "a request without a valid signature"
            assert headers[ALERT_ID_HEADER] == json.loads(body)["alert_id"]
            ids.append(headers[ALERT_ID_HEADER])
        return ids


@asynccontextmanager
async def serving(hook: Receiver) -> AsyncIterator[Receiver]:
    app = web.Application()
    app.router.add_post("/hook", hook.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    hook.url = f"http://{host}:{port}/hook"
    try:
        yield hook
    finally:
        await runner.cleanup()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with serving(Receiver()) as hook:
        yield hook


@dataclass
class Alerting:
    settings: Settings
    redis: aioredis.Redis
    alerts_topic: str
    dlq_topic: str
    ledger: AlertLedger
    topics: KafkaAlertTopics
    engine: AlertEngine
    rules: RulesFile
    rules_path: Path


@pytest.fixture
async def alerting(settings: Settings, redis_client, receiver: Receiver, tmp_path: Path) -> AsyncIterator[Alerting]:
    alerts_topic, dlq_topic = f"{settings.app_name}.alerts", f"{settings.app_name}.alerts.dlq"
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    try:
        admin.create_topics([NewTopic(alerts_topic, 2, 1), NewTopic(dlq_topic, 1, 1)])
    finally:
        admin.close()
    rules_path = tmp_path / "rules.yaml"
    rules_path.write_text(RULES % {"url": receiver.url}, encoding="utf-8")
    rules = RulesFile(rules_path, secret_names={"desk"}, check_interval_s=1, allow_private_addresses=True)
    ledger = AlertLedger(redis_client, prefix=settings.redis_prefix, fired_ttl_s=3600, stream_maxlen=1000)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()
    topics = KafkaAlertTopics(producer, alerts_topic, dlq_topic)
    engine = AlertEngine(rules, ledger=ledger, publisher=topics, pipeline_version=1, retry_backoff_max_s=1)
    yield Alerting(settings, redis_client, alerts_topic, dlq_topic, ledger, topics, engine, rules, rules_path)
    await producer.stop()


def seeds_story() -> StoryInfo:
    return StoryInfo("st-aleppo", {"irfaasawtak.example": T0, "masr-news.example": T0 + timedelta(minutes=4)})


async def stream_alerts(ledger: AlertLedger, redis_client) -> list[Alert]:
    """The alerts of the Redis stream, each held to the alerts schema as stored (what a consumer
    of the stream and ``wirefeed alerts tail`` read), then parsed."""
    values = [fields[b"json"] for _id, fields in await redis_client.xrange(ledger.stream_key)]
    for value in values:
        assert_valid("alerts", value)
    return [Alert.model_validate_json(value) for value in values]


async def test_alerts_fire_once_into_the_stream_and_the_topic_whatever_the_redelivery_or_replay(alerting, redis_client):
    engine = alerting.engine
    first = await engine.on_article(SEED_000, urgent=False, story=None, replay=None, source="pages.raw/0/7")
    second = await engine.on_article(SEED_004, urgent=False, story=seeds_story(), replay=None, source="pages.raw/0/7")
    other = await engine.on_article(OTHER, urgent=False, story=None, replay=None, source="pages.raw/0/7")
    assert [a.rule_id for a in first] == ["aleppo"] and first[0].matched_terms == ["حلب"]
    assert sorted(a.rule_id for a in second) == ["aleppo", "breaking"]
    assert other == []
    breaking = next(a for a in second if a.rule_id == "breaking")
    assert breaking.story is not None and [o.domain for o in breaking.story.outlets] == ["irfaasawtak.example", "masr-news.example"]

    # Redelivery of both pages, the story seen again, a replay with alerts: nothing new.
    for replay in (None, ReplayMarker("r1", alerts=True)):
        assert await engine.on_article(SEED_000, urgent=False, story=seeds_story(), replay=replay, source="pages.raw/0/7") == []
        assert await engine.on_article(SEED_004, urgent=False, story=seeds_story(), replay=replay, source="pages.raw/0/7") == []

    fired = first + second
    in_stream = await stream_alerts(alerting.ledger, redis_client)
    assert in_stream == fired
    published = read_topic(alerting.settings, alerting.alerts_topic, at_least=len(fired))
    assert sorted(r.key.decode() for r in published) == sorted(a.alert_id for a in fired)
    for record in published:
        assert_valid("alerts", record.value)
    for alert in fired:
        assert 0 < await redis_client.ttl(alerting.ledger.alert_key(alert.alert_id)) <= 3600


async def test_a_copy_and_its_updates_fire_no_article_rule_their_original_already_fired(alerting, redis_client):
    """A copy, and a re-crawl of it with a line added (an ``update`` still ``duplicate_of`` the
    original), are matched for the original: a rule that fired for it does not fire again."""
    copy = OTHER.model_copy(update={"title": SEED_000.title, "text": SEED_000.text, "duplicate_of": SEED_000.article_id})
    (original,) = await alerting.engine.on_article(SEED_000, urgent=False, story=None, replay=None, source="pages.raw/0/1")
    assert await alerting.engine.on_article(
        copy.model_copy(update={"status": "duplicate"}), urgent=False, story=None, replay=None, source="pages.raw/0/2"
    ) == []
    updated = copy.model_copy(update={"status": "update", "text": copy.text + " وأضاف المسؤول أن المحادثات ستستأنف."})
    assert await alerting.engine.on_article(updated, urgent=False, story=None, replay=None, source="pages.raw/0/3") == []
    assert await stream_alerts(alerting.ledger, redis_client) == [original]


async def test_a_crash_between_firing_and_publishing_republishes_on_redelivery(alerting, redis_client):
    alerting.topics.fail_next_alert = True
    with pytest.raises(asyncio.CancelledError):
        await alerting.engine.on_article(SEED_000, urgent=False, story=None, replay=None, source="pages.raw/0/7")
    (in_stream,) = await stream_alerts(alerting.ledger, redis_client)  # fired, not published

    # The redelivered page: not fired again (nothing new), but published now, with the stored bytes.
    later = AlertEngine(alerting.rules, ledger=alerting.ledger, publisher=alerting.topics, pipeline_version=1,
                        retry_backoff_max_s=1, clock=lambda: datetime.now(UTC) + timedelta(hours=1))
    assert await later.on_article(SEED_000, urgent=False, story=None, replay=None, source="pages.raw/0/7") == []
    (published,) = read_topic(alerting.settings, alerting.alerts_topic, at_least=1)
    assert_valid("alerts", published.value)  # the stored bytes, published on redelivery
    assert Alert.model_validate_json(published.value) == in_stream
    assert await later.on_article(SEED_000, urgent=False, story=None, replay=None, source="pages.raw/0/7") == []
    # on_article returns once the topic acknowledged what it published: read up to the end offsets
    assert len(read_topic(alerting.settings, alerting.alerts_topic, at_least=1)) == 1
    assert await redis_client.xlen(alerting.ledger.stream_key) == 1


async def test_a_story_alert_fired_by_two_pages_at_once_is_published_by_one(alerting, redis_client):
    # Both seed pages joined the story before either evaluated the rules (pages run concurrently):
    # both fire the breaking-story alert. The first to fire owns it; its publish fails here, as if
    # it were still in flight or had crashed. The other page must not publish it too.
    # (OTHER matches no article rule: its page fires the story alert alone.)
    alerting.topics.fail_next_alert = True
    with pytest.raises(asyncio.CancelledError):
        await alerting.engine.on_article(OTHER, urgent=False, story=seeds_story(), replay=None, source="pages.raw/0/1")
    await alerting.engine.on_article(SEED_004, urgent=False, story=seeds_story(), replay=None, source="pages.raw/1/1")
    keyword_alerts = len(await stream_alerts(alerting.ledger, redis_client)) - 1
    # on_article returned: what it published is acknowledged, and read_topic reads to the end offsets
    published = read_topic(alerting.settings, alerting.alerts_topic, at_least=keyword_alerts)
    assert "breaking" not in {Alert.model_validate_json(r.value).rule_id for r in published}

    # The owner's record is redelivered (it was never acknowledged) and publishes it, once.
    await alerting.engine.on_article(OTHER, urgent=False, story=seeds_story(), replay=None, source="pages.raw/0/1")
    published = read_topic(alerting.settings, alerting.alerts_topic, at_least=keyword_alerts + 1)
    rules = [Alert.model_validate_json(r.value).rule_id for r in published]
    assert rules.count("breaking") == 1


async def test_an_alert_its_owner_could_not_publish_for_good_is_published_by_the_next_page_firing_it(
    alerting, redis_client
):
    # The owner's publish fails for good (not an outage): its page is acknowledged with the alerts
    # dead-lettered, so no redelivery will publish the alert. It hands the alert over instead.
    alerting.topics.refuse_next_alert = True
    with pytest.raises(ValueError):
        await alerting.engine.on_article(OTHER, urgent=False, story=seeds_story(), replay=None, source="pages.raw/0/1")
    assert await alerting.engine.on_article(
        SEED_004, urgent=False, story=seeds_story(), replay=None, source="pages.raw/1/1"
    )  # its own keyword alert fires; the story alert was fired already, so it is not returned
    keyword_alerts = len(await stream_alerts(alerting.ledger, redis_client)) - 1
    published = read_topic(alerting.settings, alerting.alerts_topic, at_least=keyword_alerts + 1)
    rules = [Alert.model_validate_json(r.value).rule_id for r in published]
    assert rules.count("breaking") == 1
    # and it stays published once, whoever fires it again
    await alerting.engine.on_article(OTHER, urgent=False, story=seeds_story(), replay=None, source="pages.raw/0/1")
    published = read_topic(alerting.settings, alerting.alerts_topic, at_least=keyword_alerts + 1)
    assert [Alert.model_validate_json(r.value).rule_id for r in published].count("breaking") == 1


async def test_an_alert_whose_record_came_back_too_old_to_fire_is_published_by_that_record(alerting, redis_client):
    # The worker died between firing and publishing; its record came back past
    # alert_max_record_age_s, so the page's alerts were suppressed: only counted, and the alert
    # its first run fired stayed in the stream and off the topic for good.
    alerting.topics.fail_next_alert = True
    with pytest.raises(asyncio.CancelledError):
        await alerting.engine.on_article(SEED_000, urgent=False, story=None, replay=None, source="pages.raw/0/7")
    (in_stream,) = await stream_alerts(alerting.ledger, redis_client)
    assert await alerting.engine.count_matches(SEED_000, urgent=False, story=None, source="pages.raw/0/7") == 1
    (published,) = read_topic(alerting.settings, alerting.alerts_topic, at_least=1)
    assert Alert.model_validate_json(published.value) == in_stream
    # a suppressed page fires nothing that was never fired (OTHER matches no rule; SEED_004's keyword alert)
    assert await alerting.engine.count_matches(SEED_004, urgent=False, story=None, source="pages.raw/0/8") == 1
    assert await redis_client.xlen(alerting.ledger.stream_key) == 1
    assert len(read_topic(alerting.settings, alerting.alerts_topic, at_least=1)) == 1


async def test_an_alert_held_unpublished_past_the_takeover_time_is_published_by_the_next_page_firing_it(
    alerting, redis_client
):
    # Its record will not come back to publish it (dead-lettered on its redelivery, say): a
    # later update of the article, or `replay --alerts` (whose copy has an offset of its own),
    # found it owned by that record and published nothing, for good.
    alerting.topics.fail_next_alert = True
    with pytest.raises(asyncio.CancelledError):
        await alerting.engine.on_article(SEED_000, urgent=False, story=None, replay=None, source="pages.raw/0/7")
    (in_stream,) = await stream_alerts(alerting.ledger, redis_client)
    replay = ReplayMarker("r1", alerts=True)
    # within the takeover time the owner may still be publishing it: nobody else does
    await alerting.engine.on_article(SEED_000, urgent=False, story=None, replay=replay, source="pages.raw/0/900")
    assert read_topic(alerting.settings, alerting.alerts_topic, at_least=0) == []
    key = alerting.ledger.alert_key(in_stream.alert_id)
    seconds, _micros = await redis_client.time()
    await redis_client.hset(key, "owned_at", seconds - TAKEOVER_S)  # held that long
    await alerting.engine.on_article(SEED_000, urgent=False, story=None, replay=replay, source="pages.raw/0/900")
    (published,) = read_topic(alerting.settings, alerting.alerts_topic, at_least=1)
    assert Alert.model_validate_json(published.value) == in_stream
    assert await redis_client.hget(key, "source") == b"pages.raw/0/900"
    # the owner's record, back at last, finds it published: not twice on the topic
    await alerting.engine.on_article(SEED_000, urgent=False, story=None, replay=None, source="pages.raw/0/7")
    assert len(read_topic(alerting.settings, alerting.alerts_topic, at_least=1)) == 1


async def test_an_owner_publishing_its_alert_again_is_not_taken_over_meanwhile(alerting, redis_client):
    # Its record redelivered past the takeover time re-owned the alert without renewing when it
    # took it, so another record matching the alert at that moment took it over and both published.
    alerting.topics.fail_next_alert = True
    with pytest.raises(asyncio.CancelledError):
        await alerting.engine.on_article(SEED_000, urgent=False, story=None, replay=None, source="pages.raw/0/7")
    (in_stream,) = await stream_alerts(alerting.ledger, redis_client)
    key = alerting.ledger.alert_key(in_stream.alert_id)
    seconds, _micros = await redis_client.time()
    await redis_client.hset(key, "owned_at", seconds - TAKEOVER_S - 60)
    again = await alerting.ledger.fire(in_stream, source="pages.raw/0/7")  # the redelivery, about to publish
    assert again is not None and again.owned and not again.published
    other = await alerting.ledger.fire(in_stream, source="pages.raw/3/77")
    assert other is not None and not other.owned


async def test_an_alert_fired_before_its_owner_was_timed_is_not_taken_over_at_once(alerting, redis_client):
    # Fired by a worker of the release before (no owned_at), it counted as held since 1970: the
    # first new worker matching it took it over while the old one was publishing it.
    alerting.topics.fail_next_alert = True
    with pytest.raises(asyncio.CancelledError):
        await alerting.engine.on_article(SEED_000, urgent=False, story=None, replay=None, source="pages.raw/0/7")
    (in_stream,) = await stream_alerts(alerting.ledger, redis_client)
    await redis_client.hdel(alerting.ledger.alert_key(in_stream.alert_id), "owned_at")
    other = await alerting.ledger.fire(in_stream, source="pages.raw/3/77")
    assert other is not None and not other.owned


# --- webhook delivery ------------------------------------------------------------------------

# Short retry spans and backoffs, so that a test's failing receiver is given up on soon.
FAST = RetryPolicy(give_up_after_s=0.5, backoff_base_s=0.05, backoff_max_s=0.2, timeout_s=2)
# Far more than any test waits: a request is never cut short by its timeout in these tests.
PATIENT = RetryPolicy(give_up_after_s=600, backoff_base_s=0.05, backoff_max_s=0.2, timeout_s=600)
SETTLE_TIMEOUT_S = 60


def delivery_queue(alerting: Alerting, *, lease_s: float = 60.0) -> DeliveryQueue:
    marker_ttl_s = int(timedelta(days=alerting.settings.webhook_marker_ttl_days).total_seconds())
    return DeliveryQueue(
        alerting.redis, alerting.ledger, prefix=alerting.settings.redis_prefix, marker_ttl_s=marker_ttl_s, lease_s=lease_s
    )


def make_dispatcher(
    alerting: Alerting,
    session: aiohttp.ClientSession,
    queue: DeliveryQueue,
    *,
    policy: RetryPolicy = FAST,
    dead_letters: object = None,
    rules: RulesFile | None = None,
    wall_clock: Callable[[], float] = time.time,
    metrics: PipelineMetrics | None = None,
    allow_private_addresses: bool = True,
) -> WebhookDispatcher:
    return WebhookDispatcher(
        rules or alerting.rules, secrets={"desk": SECRET}, queue=queue,
        sender=WebhookSender(session, timeout_s=policy.timeout_s, allow_private_addresses=allow_private_addresses),
        policy=policy,
        dead_letters=dead_letters or alerting.topics,  # type: ignore[arg-type]
        retry_backoff_max_s=0.05, metrics=metrics or PipelineMetrics(), wall_clock=wall_clock, rng=random.Random(1),
    )


@dataclass
class DeliveryWorker:
    """The delivery side of one worker: its dispatcher and its lanes, running."""

    queue: DeliveryQueue
    dispatcher: WebhookDispatcher
    lanes: WebhookLanes
    metrics: PipelineMetrics

    def attempts(self, webhook: str = "desk") -> dict[str, float]:
        """``wirefeed_webhook_attempts_total`` of the webhook, by outcome."""
        return {
            sample.labels["outcome"]: sample.value
            for family in self.metrics.registry.collect()
            for sample in family.samples
            if sample.name == "wirefeed_webhook_attempts_total" and sample.labels["webhook"] == webhook
        }

    async def read(self, value: bytes, *, key: bytes | None = None, offset: int = 0) -> None:
        """What the agent does with a record of the alerts topic."""
        for webhook in await queue_record(self.dispatcher, value, key=key, offset=offset):
            self.lanes.wake(webhook)


async def queue_record(dispatcher: WebhookDispatcher, value: bytes, *, key: bytes | None = None, offset: int = 0) -> list[str]:
    return await dispatcher.queue(value, key=key, source=SourcePosition(topic="alerts", partition=0, offset=offset))


@asynccontextmanager
async def delivery_worker(
    alerting: Alerting,
    session: aiohttp.ClientSession,
    *,
    lease_s: float = 60.0,
    max_in_flight: int = 4,
    **dispatcher_options: object,
) -> AsyncIterator[DeliveryWorker]:
    queue = delivery_queue(alerting, lease_s=lease_s)
    metrics = PipelineMetrics()
    dispatcher = make_dispatcher(alerting, session, queue, metrics=metrics, **dispatcher_options)  # type: ignore[arg-type]
    lanes = WebhookLanes(queue, dispatcher.attempt, max_in_flight=max_in_flight, retry_backoff_max_s=0.05, poll_s=0.05)
    running = asyncio.create_task(lanes.run())
    try:
        yield DeliveryWorker(queue, dispatcher, lanes, metrics)
    finally:
        await cancel_and_wait([running])


async def eventually(condition: Callable[[], Awaitable[bool]], what: str, timeout_s: float = SETTLE_TIMEOUT_S) -> None:
    """Wait for ``condition``; the timeout only keeps a broken build from hanging."""
    deadline = time.monotonic() + timeout_s
    while not await condition():
        assert time.monotonic() < deadline, f"not within {timeout_s:g} s: {what}"
        await asyncio.sleep(0.02)


async def settled(queue: DeliveryQueue, *webhooks: str) -> None:
    async def nothing_queued() -> bool:
        return [await queue_length(queue, webhook) for webhook in webhooks or ("desk",)] == [0] * len(webhooks or ("desk",))

    await eventually(nothing_queued, "every queued delivery ended")


async def queue_length(queue: DeliveryQueue, webhook: str) -> int:
    return await queue._redis.zcard(queue.due_key(webhook))


async def fired_records(alerting: Alerting) -> list[bytes]:
    await alerting.engine.on_article(SEED_000, urgent=False, story=None, replay=None, source="pages.raw/0/7")
    await alerting.engine.on_article(SEED_004, urgent=False, story=seeds_story(), replay=None, source="pages.raw/0/7")
    return [r.value for r in read_topic(alerting.settings, alerting.alerts_topic, at_least=3)]


def alert_ids(records: list[bytes]) -> list[str]:
    return [json.loads(value)["alert_id"] for value in records]


async def states(alerting: Alerting, ids: list[str], webhook: str = "desk") -> list[DeliveryState | None]:
    return [await alerting.ledger.delivery_state(alert_id, webhook) for alert_id in ids]


async def test_webhooks_get_signed_posts_once_even_when_the_alerts_topic_is_redelivered(alerting, receiver, redis_client):
    records = await fired_records(alerting)
    async with aiohttp.ClientSession() as session, delivery_worker(alerting, session) as worker:
        for value in records + records:  # the topic redelivered while the first copies are queued
            await worker.read(value)
        await settled(worker.queue)
        for value in records:  # and read again once delivered (a restart, another consumer group)
            await worker.read(value)
        await settled(worker.queue)
    assert sorted(receiver.verified_alert_ids()) == sorted(alert_ids(records))
    assert sorted(body for _headers, body in receiver.requests) == sorted(records)  # the topic's bytes, as they are
    assert await states(alerting, alert_ids(records)) == [DeliveryState.DELIVERED] * 3
    # The markers outlive the alerts topic's records (tests/unit/test_alert_webhooks.py checks the setting).
    for alert_id in alert_ids(records):
        ttl_s = await redis_client.ttl(alerting.ledger.webhooks_key(alert_id))
        assert timedelta(seconds=ttl_s) > timedelta(days=alerting.settings.webhook_marker_ttl_days) - timedelta(minutes=1)
    assert await redis_client.keys(f"{alerting.settings.redis_prefix}:webhook:*") == []  # nothing left queued


async def test_two_workers_reading_the_same_alert_post_it_once_even_while_it_is_being_posted(alerting, receiver):
    """The same alert twice on the topic (republished after a crash between the broker's ack and
    its marker, or read by the consumer groups of two pipeline versions), read by two workers at
    the same moment, and read again while the receiver is still answering the first POST: one POST."""
    released = asyncio.Event()

    async def when_released(_alert_id: str) -> int:
        await released.wait()
        return 200

    receiver.answer = when_released
    records = await fired_records(alerting)
    ids = alert_ids(records)
    async with (
        aiohttp.ClientSession() as session,
        delivery_worker(alerting, session) as one,
        delivery_worker(alerting, session) as other,
    ):
        await asyncio.gather(*(worker.read(value) for value in records for worker in (one, other)))

        async def all_being_posted() -> bool:
            return all(receiver.requested(alert_id) for alert_id in ids)

        await eventually(all_being_posted, "a POST of every alert under way")
        for worker in (one, other):
            for value in records:
                assert await queue_record(worker.dispatcher, value) == []  # claimed: nothing queued again
        released.set()
        await settled(one.queue)
    assert sorted(receiver.verified_alert_ids()) == sorted(ids)
    assert await states(alerting, ids) == [DeliveryState.DELIVERED] * 3


async def test_a_delivery_whose_worker_died_while_attempting_it_is_taken_over_when_its_lease_lapses(alerting, receiver):
    records = await fired_records(alerting)
    async with aiohttp.ClientSession() as session:
        dying = delivery_queue(alerting, lease_s=1.0)
        await queue_record(make_dispatcher(alerting, session, dying), records[0])
        (taken,) = await dying.lease_due("desk", now_s=time.time(), limit=10)  # ... and the worker dies
        async with delivery_worker(alerting, session) as survivor:
            await settled(survivor.queue)
    assert receiver.verified_alert_ids() == [taken.alert_id]
    assert await alerting.ledger.delivery_state(taken.alert_id, "desk") is DeliveryState.DELIVERED


async def test_failures_are_retried_with_backoff_then_dead_lettered_and_a_redelivery_posts_nothing_again(alerting, receiver):
    records = await fired_records(alerting)
    ids = alert_ids(records)
    # The first alert: two 503s then 200. The second: a 400 (final). The third: 503 every time.
    receiver.scripts = {ids[0]: [503, 503], ids[1]: [400], ids[2]: [503] * 1000}
    async with aiohttp.ClientSession() as session, delivery_worker(alerting, session) as worker:
        for value in records:
            await worker.read(value)
        await settled(worker.queue)
        requests = len(receiver.requests)
        for value in records:  # redelivered: neither the delivered nor the dead-lettered is POSTed again
            await worker.read(value)
        await settled(worker.queue)
    assert len(receiver.requests) == requests
    assert worker.attempts() == {"delivered": 1, "dead_lettered": 2, "retry": 2 + receiver.requested(ids[2]) - 1}
    assert set(receiver.verified_alert_ids()) == set(ids)  # every attempt signed
    assert (receiver.requested(ids[0]), receiver.requested(ids[1])) == (3, 1)
    assert receiver.requested(ids[2]) >= 2

    letters = {r.key.decode(): r.value for r in read_topic(alerting.settings, alerting.dlq_topic, at_least=2)}
    assert set(letters) == {ids[1], ids[2]}
    rejected, exhausted = (AlertDeadLetter.model_validate_json(letters[i]) for i in ids[1:])
    assert (rejected.reason, rejected.attempts, rejected.last_status) == ("rejected", 1, 400)
    assert (exhausted.reason, exhausted.attempts, exhausted.last_status) == ("retries_exhausted", receiver.requested(ids[2]), 503)
    assert exhausted.alert.alert_id == ids[2] and not exhausted.alert_truncated
    # the origin only: chat tools carry their token in the path (the receiver is at /hook)
    assert exhausted.url == str(URL(receiver.url).origin()) != receiver.url
    for value in letters.values():
        assert_valid("alerts.dlq", value)
    assert await states(alerting, ids) == [DeliveryState.DELIVERED, DeliveryState.DEAD_LETTERED, DeliveryState.DEAD_LETTERED]


async def test_an_unreachable_receiver_is_retried_then_dead_lettered(alerting, receiver):
    records = await fired_records(alerting)
    unreachable = f"http://127.0.0.1:{free_port()}/hook"
    before = alerting.rules_path.stat().st_mtime_ns
    alerting.rules_path.write_text(RULES % {"url": unreachable}, encoding="utf-8")
    # A change is seen in (mtime, size, inode); the same size and inode are likely here, and the
    # write may land in the same timestamp tick as the first one: move the mtime on explicitly.
    later = before + 2_000_000_000
    os.utime(alerting.rules_path, ns=(later, later))

    async def picked_up() -> bool:  # checked every second: the new URL without a restart
        target = alerting.rules.current().ruleset.webhook("desk")
        return target is not None and target.url == unreachable

    await eventually(picked_up, "the rewritten rules file reloaded", timeout_s=10)
    async with aiohttp.ClientSession() as session, delivery_worker(alerting, session) as worker:
        await worker.read(records[0])
        await settled(worker.queue)
    (letter,) = read_topic(alerting.settings, alerting.dlq_topic, at_least=1)
    dead = AlertDeadLetter.model_validate_json(letter.value)
    assert (dead.reason, dead.last_status) == ("retries_exhausted", None)
    assert dead.attempts >= 2
    assert "Connect" in (dead.last_error or "")
    assert receiver.requests == []


@dataclass
class FakeClock:
    now: float

    def __call__(self) -> float:
        return self.now


async def deliver_on_fake_time(queue: DeliveryQueue, dispatcher: WebhookDispatcher, clock: FakeClock) -> None:
    """Run the queue of ``desk`` to its end, the clock jumping to each next due attempt."""
    while True:
        leased = await queue.lease_due("desk", now_s=clock.now, limit=10)
        for pending in leased:
            await dispatcher.attempt(pending)
        if not leased:
            upcoming = await queue._redis.zrange(queue.due_key("desk"), 0, 0, withscores=True)
            if not upcoming:
                return
            clock.now = max(clock.now, upcoming[0][1] / 1000)


async def test_a_receiver_down_for_twenty_minutes_gets_its_alert_once_back_and_one_down_for_good_is_dead_lettered(
    alerting, receiver
):
    """With the default settings: a receiver restarted or redeployed comes back long before the
    retries stop; they stop once it failed for the whole retry span."""
    policy = RetryPolicy.from_settings(alerting.settings)
    records = await fired_records(alerting)
    ids = alert_ids(records)
    clock = FakeClock(time.time())
    back_at = {ids[0]: clock.now + 20 * 60, ids[1]: math.inf}

    async def down_until_back(alert_id: str) -> int:
        return 503 if clock.now < back_at[alert_id] else 200

    receiver.answer = down_until_back
    async with aiohttp.ClientSession() as session:
        queue = delivery_queue(alerting)
        dispatcher = make_dispatcher(alerting, session, queue, policy=policy, wall_clock=clock)
        for value in records[:2]:
            await queue_record(dispatcher, value)
        first_failure = clock.now
        await deliver_on_fake_time(queue, dispatcher, clock)

    assert await states(alerting, ids[:2]) == [DeliveryState.DELIVERED, DeliveryState.DEAD_LETTERED]
    assert receiver.requested(ids[0]) > 6  # more than the attempts the old budget allowed
    (letter,) = read_topic(alerting.settings, alerting.dlq_topic, at_least=1)
    dead = AlertDeadLetter.model_validate_json(letter.value)
    assert (dead.alert.alert_id, dead.reason, dead.attempts) == (ids[1], "retries_exhausted", receiver.requested(ids[1]))
    retried_for = dead.failed_at - datetime.fromtimestamp(first_failure, UTC)
    span = timedelta(seconds=policy.give_up_after_s)
    assert span - timedelta(seconds=policy.backoff_max_s) <= retried_for <= span + timedelta(seconds=1)


@dataclass
class FakeEvent:
    """What the agent reads from a Faust ``stream.noack().events()``."""

    message: object
    acked: bool = False

    def ack(self) -> None:
        self.acked = True


@dataclass
class FakeMessage:
    tp: TP
    offset: int
    value: bytes
    key: bytes | None = None


def alert_for(webhook: str, n: int) -> Alert:
    return Alert(
        alert_id=f"{n:032x}", rule_id="aleppo", rule_kind="article", fired_at=T0,
        article=AlertArticle(
            article_id=SEED_000.article_id, url=SEED_000.url, domain=SEED_000.domain, title=SEED_000.title,
            language="ar", published_at=T0, urgent=False,
        ),
        matched_terms=["حلب"], webhooks=[webhook], pipeline_version=1,
    )


async def test_a_receiver_that_hangs_holds_up_only_its_own_deliveries(alerting, receiver, tmp_path):
    """20 alerts for a receiver that answers nothing, then one for a healthy receiver, through the
    agent's reading of the topic: the healthy one is delivered while every request to the other
    still hangs, and every record is acknowledged (its deliveries wait in Redis, not the topic)."""
    released = asyncio.Event()

    async def hang(_alert_id: str) -> int:
        await released.wait()
        return 200

    async with serving(Receiver(answer=hang)) as hanging, aiohttp.ClientSession() as session:
        rules_path = tmp_path / "two-webhooks.yaml"
        rules_path.write_text(
            "version: 1\n"
            f"webhooks:\n  hanging: {{url: '{hanging.url}', secret: desk}}\n  desk: {{url: '{receiver.url}', secret: desk}}\n"
            "rules:\n  - {id: aleppo, kind: article, match: {terms: [حلب]}, deliver: {webhooks: [hanging, desk]}}\n",
            encoding="utf-8",
        )
        rules = RulesFile(rules_path, secret_names={"desk"}, check_interval_s=60, allow_private_addresses=True)
        queue = delivery_queue(alerting, lease_s=PATIENT.timeout_s + 30)
        dispatcher = make_dispatcher(alerting, session, queue, policy=PATIENT, rules=rules)
        lanes = WebhookLanes(queue, dispatcher.attempt, max_in_flight=4, retry_backoff_max_s=0.05, poll_s=0.05)
        alerts = [alert_for("hanging", n) for n in range(20)] + [alert_for("desk", 20)]
        events = [
            FakeEvent(FakeMessage(TP("alerts", 0), offset, alert.model_dump_json(by_alias=True).encode()))
            for offset, alert in enumerate(alerts)
        ]

        async def topic() -> AsyncIterator[FakeEvent]:
            for event in events:
                yield event
            await asyncio.Event().wait()  # the topic has nothing more for now

        agent = asyncio.create_task(
            deliver_webhooks(topic(), dispatcher=dispatcher, lanes=lanes, max_in_flight=4, retry_backoff_max_s=0.05)
        )
        try:
            async def healthy_delivered() -> bool:
                return await alerting.ledger.delivery_state(alerts[-1].alert_id, "desk") is DeliveryState.DELIVERED

            await eventually(healthy_delivered, "the healthy receiver's alert delivered")
            assert hanging.requests and hanging.answered == 0  # ... while the other one still hangs

            async def all_acknowledged() -> bool:
                return all(event.acked for event in events)

            await eventually(all_acknowledged, "every record of the topic acknowledged")
            released.set()
            await settled(queue, "hanging", "desk")
        finally:
            await cancel_and_wait([agent])
        assert sorted(hanging.verified_alert_ids()) == sorted(alert.alert_id for alert in alerts[:-1])
        assert receiver.verified_alert_ids() == [alerts[-1].alert_id]


class Letters:
    """An alerts.dlq that fails as told before taking letters."""

    def __init__(self, *errors: Exception, refuse_all: Exception | None = None) -> None:
        self.errors = list(errors)
        self.refuse_all = refuse_all
        self.calls = 0
        self.sent: list[AlertLetter] = []

    async def publish_dead_letter(self, letter: AlertDeadLetter) -> None:
        self.calls += 1
        if self.refuse_all is not None:
            raise self.refuse_all
        if self.errors:
            raise self.errors.pop(0)
        self.sent.append(letter)


async def test_an_outage_of_the_dead_letter_topic_is_retried_with_the_whole_letter(alerting, receiver):
    records = await fired_records(alerting)
    receiver.scripts = {alert_ids(records)[0]: [400]}
    letters = Letters(KafkaTimeoutError())
    async with aiohttp.ClientSession() as session, delivery_worker(alerting, session, dead_letters=letters) as worker:
        await worker.read(records[0])
        await settled(worker.queue)
    (letter,) = letters.sent
    assert letters.calls == 2 and not letter.alert_truncated
    assert letter.alert == Alert.model_validate_json(records[0])


async def test_a_dead_letter_topic_that_refuses_every_letter_does_not_stop_the_lane(alerting, receiver, caplog):
    records = await fired_records(alerting)
    ids = alert_ids(records)
    receiver.scripts = {ids[0]: [400]}
    letters = Letters(refuse_all=TopicAuthorizationFailedError())
    # One attempt at a time: a delivery stuck on its dead letter would hold up the next one.
    async with aiohttp.ClientSession() as session, delivery_worker(alerting, session, dead_letters=letters, max_in_flight=1) as worker:
        await worker.read(records[0])
        await settled(worker.queue)
        await worker.read(records[1])
        await settled(worker.queue)
    assert letters.calls == 2  # the letter, then the stripped letter; neither is an outage to wait out
    assert worker.attempts() == {"letter_lost": 1, "delivered": 1}
    assert await states(alerting, ids[:2]) == [DeliveryState.DEAD_LETTERED, DeliveryState.DELIVERED]
    assert any(r.levelname == "ERROR" and "NO dead letter" in r.getMessage() and ids[0] in r.getMessage() for r in caplog.records)


def run_cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, settings: Settings, *argv: str) -> int:
    """``wirefeed ARGV`` as an operator runs it, with the test's settings in the environment."""
    monkeypatch.chdir(tmp_path)  # no .env file
    monkeypatch.setattr(cli.logs, "configure", lambda log_format, level, one_shot: None)
    for name, value in {
        "KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "REDIS_URL": settings.redis_url.get_secret_value(),
        "REDIS_PREFIX": settings.redis_prefix,
        "TOPIC_ALERTS_DLQ": settings.topic_alerts_dlq,
    }.items():
        monkeypatch.setenv(f"WIREFEED_{name}", value)
    return cli.main(list(argv))


async def test_dead_lettered_deliveries_are_redriven_once_their_receiver_is_fixed(
    alerting, receiver, monkeypatch, tmp_path, capsys
):
    records = await fired_records(alerting)
    ids = alert_ids(records)
    receiver.scripts = {ids[0]: [400], ids[1]: [400]}  # refused until fixed, then 200
    settings = alerting.settings.model_copy(update={"topic_alerts_dlq": alerting.dlq_topic})

    async def redrive(*options: str) -> str:
        capsys.readouterr()
        assert await asyncio.to_thread(run_cli, monkeypatch, tmp_path, settings, "alerts", "redrive", *options) == 0
        return capsys.readouterr().out

    async with aiohttp.ClientSession() as session, delivery_worker(alerting, session) as worker:
        for value in records:
            await worker.read(value)
        await settled(worker.queue)
        assert await states(alerting, ids) == [DeliveryState.DEAD_LETTERED, DeliveryState.DEAD_LETTERED, DeliveryState.DELIVERED]
        read_topic(settings, alerting.dlq_topic, at_least=2)

        assert "1 to queue again" in await redrive("--alert-id", ids[0], "--dry-run")
        assert await states(alerting, ids[:1]) == [DeliveryState.DEAD_LETTERED]
        assert "1 queued again" in await redrive("--alert-id", ids[0], "--webhook", "desk", "--reason", "rejected")
        await eventually(lambda: alert_state(alerting, ids[0], DeliveryState.DELIVERED), "the redriven alert delivered")
        output = await redrive()  # all of them, the one redriven already included
        assert "1 delivered since" in output and "1 queued again" in output
        await eventually(lambda: alert_state(alerting, ids[1], DeliveryState.DELIVERED), "the second redriven alert delivered")
        assert "2 delivered since" in await redrive("--since", "1h")
        await settled(worker.queue)
    assert sorted(receiver.verified_alert_ids()) == sorted([ids[0], ids[0], ids[1], ids[1], ids[2]])


async def alert_state(alerting: Alerting, alert_id: str, state: DeliveryState) -> bool:
    return await alerting.ledger.delivery_state(alert_id, "desk") is state


async def test_a_dead_letter_too_large_for_its_topic_is_published_stripped_and_redriven_from_redis(
    alerting, receiver, redis_client, monkeypatch, tmp_path, capsys
):
    small_dlq = f"{alerting.dlq_topic}.small"
    admin = KafkaAdminClient(bootstrap_servers=alerting.settings.kafka_bootstrap)
    try:
        admin.create_topics([NewTopic(small_dlq, 1, 1, topic_configs={"max.message.bytes": "4096"})])
    finally:
        admin.close()
    huge = alert_for("desk", 1).model_copy(update={"article": alert_for("desk", 1).article.model_copy(update={"title": "حلب " * 5000})})
    await alerting.ledger.fire(huge, source="pages.raw/0/9")  # as the engine does: the alert as fired stays in Redis
    body = huge.model_dump_json(by_alias=True).encode()
    receiver.scripts = {huge.alert_id: [400]}
    letters = KafkaAlertTopics(alerting.topics._producer, alerting.alerts_topic, small_dlq)
    async with aiohttp.ClientSession() as session, delivery_worker(alerting, session, dead_letters=letters) as worker:
        await worker.read(body)
        await settled(worker.queue)
        (record,) = read_topic(alerting.settings, small_dlq, at_least=1)
        assert_valid("alerts.dlq", record.value)
        letter = AlertDeadLetter.model_validate_json(record.value)
        assert letter.alert_truncated and letter.alert.article.title is None
        assert (letter.alert.alert_id, letter.reason, letter.last_status) == (huge.alert_id, "rejected", 400)
        assert "MessageSizeTooLarge" in (letter.last_error or "")
        assert await alerting.ledger.delivery_state(huge.alert_id, "desk") is DeliveryState.DEAD_LETTERED

        settings = alerting.settings.model_copy(update={"topic_alerts_dlq": small_dlq})
        assert await asyncio.to_thread(run_cli, monkeypatch, tmp_path, settings, "alerts", "redrive") == 0
        assert "1 queued again" in capsys.readouterr().out
        await eventually(lambda: alert_state(alerting, huge.alert_id, DeliveryState.DELIVERED), "the redriven alert delivered")
    assert [body for _headers, body in receiver.requests] == [body, body]  # the whole alert, both times


class SlowLetters(Letters):
    """An alerts.dlq that takes a while to acknowledge (a broker catching up after an outage)."""

    def __init__(self, delay_s: float) -> None:
        super().__init__()
        self.delay_s = delay_s

    async def publish_dead_letter(self, letter: AlertDeadLetter) -> None:
        await asyncio.sleep(self.delay_s)
        await super().publish_dead_letter(letter)


async def test_a_dead_letter_slower_than_the_lease_is_sent_once_and_its_alert_posted_once(alerting, receiver):
    records = await fired_records(alerting)
    ids = alert_ids(records)
    receiver.scripts = {ids[0]: [400]}
    letters = SlowLetters(delay_s=3.0)  # three leases long: the lease must be renewed meanwhile
    async with aiohttp.ClientSession() as session, delivery_worker(
        alerting, session, lease_s=1.0, dead_letters=letters
    ) as worker:
        await worker.read(records[0])
        await settled(worker.queue)
    assert receiver.requested(ids[0]) == 1
    assert [letter.alert.alert_id for letter in letters.sent] == [ids[0]]
    assert await states(alerting, ids[:1]) == [DeliveryState.DEAD_LETTERED]
    assert worker.attempts() == {"dead_lettered": 1}


async def test_a_webhook_this_worker_does_not_know_yet_is_retried_until_its_rules_file_names_it(
    alerting, receiver, tmp_path
):
    """A rules change reaches the pods one by one: a worker whose rules file lacks a webhook
    another worker fired for retries the delivery instead of dead-lettering it."""
    rules_path = tmp_path / "late-rules.yaml"
    rules_path.write_text(RULES % {"url": receiver.url}, encoding="utf-8")
    rules = RulesFile(rules_path, secret_names={"desk"}, check_interval_s=0.1, allow_private_addresses=True)
    alert = alert_for("late", 1)
    async with aiohttp.ClientSession() as session, delivery_worker(
        alerting, session, policy=PATIENT, rules=rules
    ) as worker:
        await worker.read(alert.model_dump_json(by_alias=True).encode())

        async def retried() -> bool:
            entry = await alerting.redis.hgetall(worker.queue.entry_key("late", alert.alert_id))
            return int(entry.get(b"attempts", 0)) >= 2

        await eventually(retried, "the delivery retried")
        assert await alerting.ledger.delivery_state(alert.alert_id, "late") is None
        rules_path.write_text(
            (RULES % {"url": receiver.url}).replace(
                "  desk: {url:", f'  late: {{url: "{receiver.url}", secret: desk}}\n  desk: {{url:'
            ),
            encoding="utf-8",
        )
        await settled(worker.queue, "late")
    assert await alerting.ledger.delivery_state(alert.alert_id, "late") is DeliveryState.DELIVERED
    assert receiver.requested(alert.alert_id) == 1
    assert worker.attempts("late")["delivered"] == 1


async def dead_letters(alerting: Alerting, at_least: int) -> list[dict]:
    return [assert_valid("alerts.dlq", r.value) for r in read_topic(alerting.settings, alerting.dlq_topic, at_least=at_least)]


async def test_an_alert_with_a_field_this_release_does_not_know_is_delivered_with_its_bytes(alerting, receiver):
    """A newer release adds an optional field during a rolling upgrade: the old pods delivered
    nothing of its alerts ('not an alert on the alerts topic, skipped')."""
    (record, *_) = await fired_records(alerting)
    newer = json.dumps({**json.loads(record), "priority": "high"}, ensure_ascii=False).encode()
    async with aiohttp.ClientSession() as session, delivery_worker(alerting, session) as worker:
        await worker.read(newer)
        await settled(worker.queue)
    assert receiver.verified_alert_ids() == [json.loads(record)["alert_id"]]
    assert [body for _headers, body in receiver.requests] == [newer]
    assert worker.attempts() == {"delivered": 1}


async def test_a_record_that_is_not_an_alert_is_dead_lettered_with_its_bytes(alerting, receiver):
    """It was skipped with a log line: acknowledged, no delivery, no dead letter, no metric."""
    unreadable = [b'{"schema": "wirefeed.alert/1", "alert_id": "x"}', b"\xff\xfe not json", b""]
    async with aiohttp.ClientSession() as session, delivery_worker(alerting, session) as worker:
        for offset, value in enumerate(unreadable):
            await worker.read(value, key=b"k%d" % offset, offset=offset)
    letters = await dead_letters(alerting, at_least=3)
    assert [base64.b64decode(letter["original_value_b64"]) for letter in letters] == unreadable
    assert [letter["original_key_b64"] for letter in letters] == [base64.b64encode(b"k%d" % n).decode() for n in range(3)]
    assert [letter["source"]["offset"] for letter in letters] == [0, 1, 2]
    for letter in letters:
        assert (letter["schema"], letter["reason"], letter["original_truncated"]) == ("wirefeed.alert.unreadable/1", "unreadable_alert", False)
    assert worker.attempts("") == {"unreadable_alert": 3}
    assert receiver.requests == []


async def test_a_url_the_http_client_cannot_request_is_dead_lettered_at_once(alerting, receiver, tmp_path, monkeypatch):
    """A host that passed the rules file's old validation and failed IDNA encoding at every
    attempt: the exception escaped, the lease lapsed, and the delivery was taken again for ever."""
    bad_host = "https://hooks..newsroom.example/x"
    rules_path = tmp_path / "bad-host.yaml"
    rules_path.write_text(RULES % {"url": bad_host}, encoding="utf-8")
    # loaded as before the rules file's URLs were validated (they are now: tests/unit/test_rules.py)
    monkeypatch.setattr(rules_module, "_url_problem", lambda url, allow_private_addresses: None)
    rules = RulesFile(rules_path, secret_names={"desk"}, check_interval_s=60)
    (record, *_) = await fired_records(alerting)
    async with aiohttp.ClientSession() as session, delivery_worker(alerting, session, rules=rules) as worker:
        await worker.read(record)
        await settled(worker.queue)
    (letter,) = await dead_letters(alerting, at_least=1)
    assert (letter["reason"], letter["url"], letter["attempts"], letter["last_status"]) == (
        "rejected", "https://hooks..newsroom.example", 1, None
    )
    assert letter["last_error"].startswith("UnicodeError: ")
    assert worker.attempts() == {"dead_lettered": 1}
    assert await states(alerting, alert_ids([record])) == [DeliveryState.DEAD_LETTERED]


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_a_receiver_on_a_private_address_is_dead_lettered_and_never_posted_to(alerting, receiver, tmp_path, host):
    """By default: a literal address is refused before connecting, a name on what it resolves to
    when connecting (one rebound to an internal address since the rules were validated)."""
    url = receiver.url.replace("127.0.0.1", host)
    rules_path = tmp_path / "private.yaml"
    rules_path.write_text(RULES % {"url": url}, encoding="utf-8")
    # validated where private addresses are allowed; delivered where they are not
    rules = RulesFile(rules_path, secret_names={"desk"}, check_interval_s=60, allow_private_addresses=True)
    (record, *_) = await fired_records(alerting)
    async with aiohttp.ClientSession(connector=webhook_connector(allow_private_addresses=False)) as session, delivery_worker(
        alerting, session, rules=rules, allow_private_addresses=False
    ) as worker:
        await worker.read(record)
        await settled(worker.queue)
    (letter,) = await dead_letters(alerting, at_least=1)
    assert (letter["reason"], letter["url"], letter["last_status"]) == ("refused_address", str(URL(url).origin()), None)
    assert "public address" in letter["last_error"]
    assert_valid("alerts.dlq", letter)
    assert worker.attempts() == {"dead_lettered": 1}
    assert receiver.requests == []


async def test_an_alert_a_newer_release_stored_with_a_new_field_fires_again_without_error(alerting, redis_client):
    """The ledger reads the stored alert back on every re-fire: a new field made it raise."""
    await alerting.engine.on_article(SEED_000, urgent=False, story=None, replay=None, source="pages.raw/0/7")
    (alert,) = await stream_alerts(alerting.ledger, redis_client)
    key = alerting.ledger.alert_key(alert.alert_id)
    stored = json.loads(await redis_client.hget(key, "json"))
    await redis_client.hset(key, "json", json.dumps({**stored, "priority": "high"}))
    assert await alerting.engine.on_article(SEED_000, urgent=False, story=None, replay=None, source="pages.raw/0/7") == []


async def test_the_alert_stream_is_trimmed_to_about_its_maxlen(settings: Settings, redis_client):
    """``XADD MAXLEN ~`` drops only whole nodes of the stream's radix tree, and a node holds at most
    ``stream-node-max-entries`` entries: the stream keeps fewer than maxlen plus that many."""
    ledger = AlertLedger(redis_client, prefix=settings.redis_prefix, fired_ttl_s=3600, stream_maxlen=2)
    node_entries = int((await redis_client.config_get("stream-node-max-entries"))["stream-node-max-entries"])
    fires = 3 * (2 + node_entries)  # far past what any trimming of whole nodes could keep
    for n in range(fires):
        assert (await ledger.fire(alert_for("desk", n), source=f"pages.raw/0/{n}")).first_time
    assert await redis_client.xlen(ledger.stream_key) < 2 + node_entries
    (_id, newest), = await redis_client.xrevrange(ledger.stream_key, count=1)
    assert newest[b"alert_id"] == alert_for("desk", fires - 1).alert_id.encode()  # trimmed from the oldest


async def test_marking_an_expired_alert_published_does_not_bring_it_back(settings: Settings, redis_client):
    ledger = AlertLedger(redis_client, prefix=settings.redis_prefix, fired_ttl_s=3600, stream_maxlen=10)
    alert = alert_for("desk", 1)
    await ledger.fire(alert, source="pages.raw/0/1")
    await ledger.mark_published(alert)
    assert await redis_client.hget(ledger.alert_key(alert.alert_id), "published") == b"1"
    await redis_client.delete(ledger.alert_key(alert.alert_id))  # its fired_ttl_s ran out
    await ledger.mark_published(alert)
    assert not await redis_client.exists(ledger.alert_key(alert.alert_id))


async def test_a_webhook_keeps_its_lanes_while_a_delivery_is_queued_for_it(settings: Settings, redis_client):
    queue = DeliveryQueue.from_settings(redis_client, settings)
    alert_id = alert_for("desk", 1).alert_id
    assert await queue.queue(alert_id, "desk", b"{}", now_s=time.time()) is Queued.QUEUED
    assert await redis_client.smembers(queue.lanes_key) == {b"desk"}
    assert not await queue.retire("desk")
    assert await redis_client.smembers(queue.lanes_key) == {b"desk"}
    (pending,) = await queue.lease_due("desk", now_s=time.time(), limit=10)
    await queue.delivered(pending)
    assert await queue.retire("desk")
    assert await redis_client.smembers(queue.lanes_key) == set()
