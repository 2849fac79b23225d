"""Alert delivery on the real Redis and broker, with a real HTTP receiver.

* Firing: once per (rule, article) and (rule, story) into the Redis stream and the ``alerts``
  topic, whatever the redelivery or replay, and a crash between firing and publishing republishes.
* Webhooks: signed POSTs, retries with backoff, dead letters on ``alerts.dlq``, no second POST
  on redelivery.

These drive the alert engine and the webhook dispatcher directly. The end-to-end test with a
worker process (pages in, alerts and webhooks out) needs the pipeline to call the engine:
``test_seed_pages_fire_once_and_a_replay_fires_nothing_new`` in tests/integration/test_replay.py.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiokafka import AIOKafkaProducer
from contract import assert_valid
from kafka.admin import KafkaAdminClient, NewTopic
from pydantic import SecretStr
from worker_harness import free_port, read_topic

from workers.alerts.engine import AlertEngine, RulesFile
from workers.alerts.ledger import AlertLedger, DeliveryState
from workers.alerts.match import StoryInfo
from workers.alerts.messages import Alert, AlertDeadLetter
from workers.alerts.webhooks import (
    ALERT_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    RetryPolicy,
    WebhookDispatcher,
    WebhookSender,
    verify,
)
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

    async def publish_dead_letter(self, letter: AlertDeadLetter) -> None:
        await self._producer.send_and_wait(
            self._dead_letters, letter.model_dump_json(by_alias=True).encode(), key=letter.alert.alert_id.encode()
        )


@dataclass
class Receiver:
    """A webhook receiver on a real local port that answers from a script of statuses (then 200)."""

    statuses: list[int] = field(default_factory=list)
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append((dict(request.headers), await request.read()))
        return web.Response(status=self.statuses.pop(0) if self.statuses else 200)

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


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    hook = Receiver()
    app = web.Application()
    app.router.add_post("/hook", hook.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    hook.url = f"http://{host}:{port}/hook"
    yield hook
    await runner.cleanup()


@dataclass
class Alerting:
    settings: Settings
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
    rules = RulesFile(rules_path, secret_names={"desk"}, check_interval_s=1)
    ledger = AlertLedger(redis_client, prefix=settings.redis_prefix, fired_ttl_s=3600, stream_maxlen=1000)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()
    topics = KafkaAlertTopics(producer, alerts_topic, dlq_topic)
    engine = AlertEngine(rules, ledger=ledger, publisher=topics, pipeline_version=1, retry_backoff_max_s=1)
    yield Alerting(settings, alerts_topic, dlq_topic, ledger, topics, engine, rules, rules_path)
    await producer.stop()


def seeds_story() -> StoryInfo:
    return StoryInfo("st-aleppo", {"irfaasawtak.example": T0, "masr-news.example": T0 + timedelta(minutes=4)})


async def stream_alerts(ledger: AlertLedger, redis_client) -> list[Alert]:
    return [Alert.model_validate_json(fields[b"json"]) for _id, fields in await redis_client.xrange(ledger.stream_key)]


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

    # Redelivery of both pages, the story seen again, a replay with and without alerts: nothing new.
    for replay in (None, ReplayMarker("r1", alerts=True), ReplayMarker("r2", alerts=False)):
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


async def test_a_copy_fires_no_article_rule_not_even_when_its_text_changes(alerting, redis_client):
    """A re-crawl of a copy with a line added is an ``update`` that is still ``duplicate_of`` the
    original: it is the same news, and fires the article rules no more than the copy did."""
    copy = OTHER.model_copy(update={"title": SEED_000.title, "text": SEED_000.text, "duplicate_of": SEED_000.article_id})
    (original,) = await alerting.engine.on_article(SEED_000, urgent=False, story=None, replay=None, source="pages.raw/0/1")
    assert await alerting.engine.on_article(
        copy.model_copy(update={"status": "duplicate"}), urgent=False, story=None, replay=None, source="pages.raw/0/2"
    ) == []
    updated = copy.model_copy(update={"status": "update", "text": copy.text + " وأضاف المسؤول أن المحادثات ستستأنف."})
    assert await alerting.engine.on_article(updated, urgent=False, story=None, replay=None, source="pages.raw/0/3") == []
    assert await stream_alerts(alerting.ledger, redis_client) == [original]


async def test_a_replay_without_alerts_fires_nothing_and_leaves_no_trace(alerting, redis_client):
    assert await alerting.engine.on_article(SEED_000, urgent=False, story=None, replay=ReplayMarker("r", alerts=False), source="pages.raw/0/7") == []
    assert await redis_client.xlen(alerting.ledger.stream_key) == 0
    # ... so the live article still fires afterwards.
    (alert,) = await alerting.engine.on_article(SEED_000, urgent=False, story=None, replay=None, source="pages.raw/0/7")
    assert alert.replay_id is None


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


def dispatcher(alerting: Alerting, session: aiohttp.ClientSession, *, max_attempts: int = 4) -> WebhookDispatcher:
    policy = RetryPolicy(max_attempts=max_attempts, backoff_base_s=0.05, backoff_max_s=0.2, timeout_s=2)
    return WebhookDispatcher(
        alerting.rules, secrets={"desk": SECRET}, ledger=alerting.ledger,
        sender=WebhookSender(session, policy, rng=random.Random(1)),
        dead_letters=alerting.topics, retry_backoff_max_s=1,
    )


async def fired_records(alerting: Alerting) -> list[bytes]:
    await alerting.engine.on_article(SEED_000, urgent=False, story=None, replay=None, source="pages.raw/0/7")
    await alerting.engine.on_article(SEED_004, urgent=False, story=seeds_story(), replay=None, source="pages.raw/0/7")
    return [r.value for r in read_topic(alerting.settings, alerting.alerts_topic, at_least=3)]


async def test_webhooks_get_signed_posts_once_even_when_the_alerts_topic_is_redelivered(alerting, receiver):
    records = await fired_records(alerting)
    async with aiohttp.ClientSession() as session:
        hooks = dispatcher(alerting, session)
        for value in records + records:  # the topic redelivered after a restart
            await hooks.dispatch(value)
    assert sorted(receiver.verified_alert_ids()) == sorted(json.loads(v)["alert_id"] for v in records)
    assert sorted(body for _headers, body in receiver.requests) == sorted(records)  # the topic's bytes, as they are
    for value in records:
        state = await alerting.ledger.delivery_state(json.loads(value)["alert_id"], "desk")
        assert state is DeliveryState.DELIVERED


async def test_failures_are_retried_with_backoff_then_dead_lettered_and_the_agent_moves_on(alerting, receiver):
    records = await fired_records(alerting)
    # The first alert: two 503s then 200. The second: a 400 (final). The third: 503 every time.
    receiver.statuses = [503, 503, 200, 400, 503, 503, 503, 503]
    async with aiohttp.ClientSession() as session:
        hooks = dispatcher(alerting, session)
        for value in records:
            await hooks.dispatch(value)
        for value in records:  # redelivered: neither the delivered nor the dead-lettered is POSTed again
            await hooks.dispatch(value)
    assert len(receiver.requests) == 3 + 1 + 4
    ids = [json.loads(v)["alert_id"] for v in records]
    assert receiver.verified_alert_ids() == [ids[0]] * 3 + [ids[1]] + [ids[2]] * 4

    letters = {r.key.decode(): r.value for r in read_topic(alerting.settings, alerting.dlq_topic, at_least=2)}
    assert set(letters) == {ids[1], ids[2]}
    rejected, exhausted = (AlertDeadLetter.model_validate_json(letters[i]) for i in ids[1:])
    assert (rejected.reason, rejected.attempts, rejected.last_status) == ("rejected", 1, 400)
    assert (exhausted.reason, exhausted.attempts, exhausted.last_status) == ("retries_exhausted", 4, 503)
    assert exhausted.alert.alert_id == ids[2] and exhausted.url == receiver.url
    for value in letters.values():
        assert_valid("alerts.dlq", value)
    assert [await alerting.ledger.delivery_state(i, "desk") for i in ids] == [
        DeliveryState.DELIVERED, DeliveryState.DEAD_LETTERED, DeliveryState.DEAD_LETTERED,
    ]


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
        deadline = asyncio.get_running_loop().time() + 10
        while asyncio.get_running_loop().time() < deadline:
            target = alerting.rules.current().ruleset.webhook("desk")
            if target is not None and target.url == unreachable:
                return True
            await asyncio.sleep(0.05)
        return False

    assert await picked_up(), "the rewritten rules file was not reloaded within 10 s"
    async with aiohttp.ClientSession() as session:
        await dispatcher(alerting, session, max_attempts=2).dispatch(records[0])
    (letter,) = read_topic(alerting.settings, alerting.dlq_topic, at_least=1)
    dead = AlertDeadLetter.model_validate_json(letter.value)
    assert (dead.reason, dead.attempts, dead.last_status) == ("retries_exhausted", 2, None)
    assert "Connect" in (dead.last_error or "")
    assert receiver.requests == []
