"""What the pipeline does when something other than the page goes wrong, on the real Redis: a bug
in any stage costs that page a dead letter (``internal_error``), never the worker and never the
next page; alerts that fail after the article was stored leave the page kept, its article stored
and published once, and the alerts dead-lettered for a replay with ``--alerts``; a URL's outcomes
land on one page record whichever stage recorded them.

The pipeline is driven directly (no Faust, no broker): what is checked is its routing, with the
real store, dedup, chrome and alert ledger on Redis. The Kafka side of dead letters is covered by
tests/integration/test_pipeline.py on the real broker."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import logging
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from aiokafka.errors import MessageSizeTooLargeError
from contract import assert_valid
from worker_harness import page_status, sync_redis

from tests.builders import PARAGRAPHS, expire_until
from workers import SAMPLE_PAGES
from workers import pipeline as pipeline_module
from workers.alerts.engine import AlertEngine, RulesFile
from workers.alerts.ledger import AlertLedger
from workers.alerts.messages import Alert
from workers.chrome_index import RedisChromeIndex
from workers.chrome_index import settings_from as chrome_settings_from
from workers.dedup.index import DedupConfig, DedupIndex
from workers.feed import records_from_paths
from workers.metrics import PipelineMetrics
from workers.models import Article, DeadLetter, Outcome, SourcePosition, Withdrawal, crawled_url
from workers.pipeline import PagePipeline, SourceRecord
from workers.pool import PoolUnavailable
from workers.replay import ReplayMarker
from workers.settings import Settings
from workers.sinks.redis_store import ArticleStore, ArticleVersion
from workers.stages.deadletter import record_key
from workers.stages.decode import decode_message
from workers.stages.extract import ExtractionOptions, extract_document
from workers.stages.outcome import StageResult

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

SEED_PAGE = SAMPLE_PAGES / "seed-004-masr-news.html"
OTHER_PAGE = SAMPLE_PAGES / "en-cbc-gaza-ceasefire.html"


class RecordingPublisher:
    """``articles`` as one partition: the broker's order is the order of ``articles``. ``values``
    are the records' values, the bytes the worker's publisher sends as they are (workers/app.py)."""

    def __init__(self) -> None:
        self.articles: list[Article] = []
        self.values: list[bytes] = []
        self.dead_letters: list[DeadLetter] = []

    async def publish_article(self, version: ArticleVersion) -> SourcePosition:
        self.articles.append(Article.model_validate_json(version.value))
        self.values.append(version.value)
        return SourcePosition(topic="articles", partition=0, offset=len(self.articles) - 1)

    async def publish_dead_letter(self, record: DeadLetter) -> None:
        self.dead_letters.append(record)


class RefusingArticlePublisher(RecordingPublisher):
    """The ``articles`` topic refusing the next record for good (not an outage: not retried)."""

    def __init__(self) -> None:
        super().__init__()
        self.refuse_next = True

    async def publish_article(self, version: ArticleVersion) -> SourcePosition:
        if self.refuse_next:
            self.refuse_next = False
            raise ValueError("the articles topic refused the record")
        return await super().publish_article(version)


class InProcessPool:
    """The extraction stage itself, in this process; ``broken_for`` URLs raise as a bug would."""

    def __init__(self, broken_for: frozenset[str] = frozenset()) -> None:
        self._broken_for = broken_for

    async def extract(
        self, html: str, url: str, options: ExtractionOptions, *, known_chrome: frozenset[str], fetched_at: datetime
    ) -> StageResult:
        if url in self._broken_for:
            raise RuntimeError("a bug in the extraction adapter")
        return extract_document(html, url, options, known_chrome=known_chrome, fetched_at=fetched_at)


class UnavailableFirstPool(InProcessPool):
    """A pool that cannot start its processes for the first ``failures`` pages it is given."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    async def extract(
        self, html: str, url: str, options: ExtractionOptions, *, known_chrome: frozenset[str], fetched_at: datetime
    ) -> StageResult:
        if self.failures:
            self.failures -= 1
            raise PoolUnavailable("no extraction process could be started")
        return await super().extract(html, url, options, known_chrome=known_chrome, fetched_at=fetched_at)


class RecordingAlertPublisher:
    def __init__(self) -> None:
        self.alerts: list[Alert] = []

    async def publish_alert(self, alert: Alert) -> None:
        self.alerts.append(alert)


class RefusingAlertPublisher:
    """The ``alerts`` topic refusing the record for good (not an outage: not retried)."""

    def __init__(self) -> None:
        self.attempts = 0

    async def publish_alert(self, alert: Alert) -> None:
        self.attempts += 1
        raise ValueError("the alerts topic refused the record")


def counted(metrics: PipelineMetrics) -> dict[tuple[str, tuple[str, ...]], float]:
    """The non-zero counters of the metrics, by sample name and label values."""
    return {
        (sample.name, tuple(sample.labels.values())): sample.value
        for family in metrics.registry.collect()
        if family.type == "counter"
        for sample in family.samples
        if sample.name.endswith("_total") and sample.value
    }


def delays_observed(metrics: PipelineMetrics) -> float:
    return metrics.registry.get_sample_value("wirefeed_page_delay_seconds_count") or 0.0


def source_record(path: Path, offset: int) -> SourceRecord:
    """The page as crawled now, sent a moment later."""
    (record,) = records_from_paths([path], base_url="https://routing.wirefeed.invalid/")
    return SourceRecord(
        topic="pages.raw", partition=0, offset=offset, key=record.key, value=record.value,
        timestamp_ms=int(time.time() * 1000),
    )


@pytest.fixture
async def build_pipeline(settings: Settings, redis_client: aioredis.Redis, tmp_path: Path):
    rules = tmp_path / "rules.yaml"
    # the seed page is about the Syrian talks in Arabic: every Arabic article matches
    rules.write_text("version: 1\nrules: [{id: arabic, kind: article, match: {languages: [ar]}}]\n", encoding="utf-8")

    def build(
        pool: InProcessPool,
        alert_publisher: RefusingAlertPublisher | RecordingAlertPublisher,
        publisher: RecordingPublisher | None = None,
    ) -> tuple[PagePipeline, RecordingPublisher, PipelineMetrics]:
        publisher, metrics = publisher or RecordingPublisher(), PipelineMetrics()
        pipeline = PagePipeline(
            settings,
            pool=pool,  # type: ignore[arg-type]
            store=ArticleStore.from_settings(redis_client, settings),
            publisher=publisher,
            chrome=RedisChromeIndex(redis_client, settings.redis_prefix, chrome_settings_from(settings)),
            dedup=DedupIndex(redis_client, settings.redis_prefix, DedupConfig.from_settings(settings)),
            alerts=AlertEngine(
                RulesFile(rules, secret_names=(), check_interval_s=60),
                ledger=AlertLedger.from_settings(redis_client, settings),
                publisher=alert_publisher,
                pipeline_version=settings.pipeline_version,
                retry_backoff_max_s=0.1,
            ),
            metrics=metrics,
        )
        return pipeline, publisher, metrics

    return build


async def test_a_bug_in_a_stage_costs_the_page_a_dead_letter_and_the_next_page_goes_through(
    settings: Settings, build_pipeline
):
    broken = source_record(OTHER_PAGE, offset=7)
    pipeline, publisher, metrics = build_pipeline(
        InProcessPool(broken_for=frozenset({broken.key.decode()})), RefusingAlertPublisher()
    )

    assert await pipeline.handle(broken) is Outcome.FAILED
    (letter,) = publisher.dead_letters
    assert (letter.stage, letter.reason, letter.error_class) == ("pipeline", "internal_error", "RuntimeError")
    assert "a bug in the extraction adapter" in letter.error_message
    assert base64.b64decode(letter.original_value_b64) == broken.value
    assert (letter.source.partition, letter.source.offset) == (0, 7)
    assert_valid("pages.dlq", letter.model_dump_json(by_alias=True))
    assert publisher.articles == []

    following = source_record(SEED_PAGE, offset=8)
    assert await pipeline.handle(following) is Outcome.KEPT
    assert [article.url for article in publisher.articles] == [following.key.decode()]
    assert counted(metrics) == {
        ("wirefeed_pages_total", ("failed", "pipeline", "internal_error")): 1,
        ("wirefeed_pages_total", ("kept", "sink", "new")): 1,
        ("wirefeed_dead_letters_total", ("pipeline", "internal_error")): 1,
        # the alerts of the page kept (an Arabic article) are refused too
        ("wirefeed_dead_letters_total", ("alerts", "alert_error")): 1,
    }
    assert metrics.pages_by_outcome() == {"failed": 1, "kept": 1}  # what a stopping worker logs


async def test_the_event_loop_runs_while_a_page_is_decoded(
    settings: Settings, build_pipeline, monkeypatch: pytest.MonkeyPatch
):
    # Detecting the charset of a page of megabytes takes about a second: on the event loop, it
    # would stop the consumer's heartbeats and every other page in flight. Here the decoding waits
    # for the loop to run a callback, which it can do only while the decoding runs elsewhere.
    loop = asyncio.get_running_loop()

    def decode_once_the_loop_has_run(value: bytes, **limits: object) -> StageResult:
        loop_ran = threading.Event()
        loop.call_soon_threadsafe(loop_ran.set)
        assert loop_ran.wait(timeout=5), "the event loop did not run while the page was decoded"
        return decode_message(value, **limits)

    monkeypatch.setattr(pipeline_module, "decode_message", decode_once_the_loop_has_run)
    pipeline, publisher, _ = build_pipeline(InProcessPool(), RecordingAlertPublisher())
    assert await pipeline.handle(source_record(SEED_PAGE, offset=3)) is Outcome.KEPT
    assert len(publisher.articles) == 1


async def test_pages_in_flight_are_decoded_one_at_a_time(settings: Settings, build_pipeline, monkeypatch: pytest.MonkeyPatch):
    # A decode holds several copies of its record (up to max_message_bytes) at once: the pages in
    # flight decoded together multiplied the worker's peak memory, and their threads took the GIL
    # from the loop as long as decoding on it did.
    decoding, most_at_once, lock = 0, 0, threading.Lock()

    def decode_counted(value: bytes, **limits: object) -> StageResult:
        nonlocal decoding, most_at_once
        with lock:
            decoding += 1
            most_at_once = max(most_at_once, decoding)
        time.sleep(0.05)  # long enough for the other pages' decodes to start, were they allowed to
        try:
            return decode_message(value, **limits)
        finally:
            with lock:
                decoding -= 1

    monkeypatch.setattr(pipeline_module, "decode_message", decode_counted)
    pipeline, publisher, _ = build_pipeline(InProcessPool(), RecordingAlertPublisher())
    outcomes = await asyncio.gather(*(pipeline.handle(source_record(SEED_PAGE, offset=offset)) for offset in range(4)))
    assert outcomes == [Outcome.KEPT] * 4
    assert most_at_once == 1


async def test_alerts_failing_after_the_article_is_stored_leave_the_page_kept_and_dead_letter_the_alerts(
    settings: Settings, build_pipeline
):
    refusing = RefusingAlertPublisher()
    pipeline, publisher, metrics = build_pipeline(InProcessPool(), refusing)
    record = source_record(SEED_PAGE, offset=3)

    assert await pipeline.handle(record) is Outcome.KEPT
    assert refusing.attempts == 1  # it did try to fire: the rule matched
    (article,) = publisher.articles
    (letter,) = publisher.dead_letters
    assert (letter.outcome, letter.stage, letter.reason, letter.error_class) == (
        "failed", "alerts", "alert_error", "ValueError"
    )
    assert base64.b64decode(letter.original_value_b64) == record.value
    assert (letter.source.partition, letter.source.offset) == (0, 3)
    assert_valid("pages.dlq", letter.model_dump_json(by_alias=True))

    client = sync_redis(settings)
    stored = client.hget(f"{settings.redis_prefix}:article:{article.article_id}", "json")
    assert stored is not None
    outcome = page_status(client, settings, article.url)
    assert (outcome["outcome"], outcome["article_id"]) == ("kept", article.article_id)
    assert counted(metrics) == {
        ("wirefeed_pages_total", ("kept", "sink", "new")): 1,
        ("wirefeed_dead_letters_total", ("alerts", "alert_error")): 1,
    }

    # Once the topic takes alerts again, a replay of that offset with --alerts fires what the page
    # owed, once, and changes nothing else: no second article record, no second alert.
    delivered = RecordingAlertPublisher()
    replaying, replay_publisher, replay_metrics = build_pipeline(InProcessPool(), delivered)
    replay = dataclasses.replace(record, offset=40, headers=tuple(ReplayMarker("r1", alerts=True).headers()))
    for _ in range(2):
        assert await replaying.handle(replay) is Outcome.KEPT
    assert [(alert.rule_id, alert.article.article_id) for alert in delivered.alerts] == [("arabic", article.article_id)]
    assert replay_publisher.articles == [] and replay_publisher.dead_letters == []
    # a replay copy keeps the original's timestamp: it is not "behind the input" by that much
    assert (delays_observed(metrics), delays_observed(replay_metrics)) == (1, 0)


async def test_a_url_dead_lettered_before_parsing_and_kept_later_has_one_page_record(
    settings: Settings, build_pipeline, redis_client: aioredis.Redis
):
    # As a crawler writes it: mixed-case host, an Arabic path; the parsed form differs from it.
    url = "https://Masr-News.example/مصر/حلب"
    page = base64.b64encode(SEED_PAGE.read_bytes()).decode("ascii")

    def crawl(offset: int, status: int) -> SourceRecord:
        message = {"url": url, "fetched_at": f"2026-11-22T10:0{offset}:00+00:00", "status": status, "html_b64": page}
        return SourceRecord(
            topic="pages.raw", partition=0, offset=offset, key=url.encode(),
            value=json.dumps(message, ensure_ascii=False).encode(), timestamp_ms=None,
        )

    pipeline, publisher, _ = build_pipeline(InProcessPool(), RefusingAlertPublisher())
    assert await pipeline.handle(crawl(1, 503)) is Outcome.DROPPED
    assert publisher.dead_letters[0].url == url  # the dead letter keeps the URL as sent
    pages = [key async for key in redis_client.scan_iter(match=f"{settings.redis_prefix}:page:*")]
    assert len(pages) == 1
    assert await pipeline.handle(crawl(2, 200)) is Outcome.KEPT

    assert [key async for key in redis_client.scan_iter(match=f"{settings.redis_prefix}:page:*")] == pages
    outcome = page_status(sync_redis(settings), settings, url)
    assert (outcome["outcome"], outcome["offset"]) == ("kept", "2")
    assert outcome["url"] == crawled_url(url) == "https://masr-news.example/%D9%85%D8%B5%D8%B1/%D8%AD%D9%84%D8%A8"


async def test_an_article_the_topic_refused_for_good_is_published_by_a_replay_of_its_offset(
    settings: Settings, build_pipeline
):
    refusing = RefusingArticlePublisher()
    pipeline, publisher, _ = build_pipeline(InProcessPool(), RecordingAlertPublisher(), refusing)
    record = source_record(OTHER_PAGE, offset=5)
    assert await pipeline.handle(record) is Outcome.FAILED
    (letter,) = publisher.dead_letters
    assert (letter.stage, letter.reason) == ("sink", "sink_error")
    assert publisher.articles == []

    # The article is stored; a replay copy of the offset (another record) saves the same version
    # and publishes it, once.
    replay = dataclasses.replace(record, offset=50, headers=tuple(ReplayMarker("r1", alerts=False).headers()))
    for _ in range(2):
        assert await pipeline.handle(replay) is Outcome.KEPT
    assert [article.url for article in publisher.articles] == [record.key.decode()]


class HeldFirstPublisher(RecordingPublisher):
    """The first article's publish waits until the test lets it go (a broker that answers
    slowly, or retries); the others go through at once."""

    def __init__(self) -> None:
        super().__init__()
        self.first: Article | None = None
        self.first_started = asyncio.Event()
        self.let_first_go = asyncio.Event()

    async def publish_article(self, version: ArticleVersion) -> SourcePosition:
        if self.first is None:
            self.first = Article.model_validate_json(version.value)
            self.first_started.set()
            await self.let_first_go.wait()
        return await super().publish_article(version)


CBC_URL = "https://www.cbc.ca/news/world/gaza-israel-ceasefire-negotiations-sinwar-1.7287711"  # its canonical URL
CBC_HTML = OTHER_PAGE.read_bytes()
CBC_NEWER_HTML = CBC_HTML.replace(b"many in Gaza wondered", b"many in Gaza, and in Cairo, wondered")


def cbc_crawl(
    offset: int, minute: int, page: bytes, *, url: str = CBC_URL, partition: int = 0, day: datetime | None = None
) -> SourceRecord:
    """The CBC page fetched at 10:``minute`` on 2026-11-22 (or on ``day``)."""
    fetched_at = (day or datetime(2026, 11, 22, tzinfo=UTC)).replace(hour=10, minute=minute, second=0, microsecond=0)
    message = {"url": url, "fetched_at": fetched_at.isoformat(), "html_b64": base64.b64encode(page).decode()}
    return SourceRecord(
        topic="pages.raw", partition=partition, offset=offset, key=url.encode(),
        value=json.dumps(message).encode(), timestamp_ms=None,
    )


async def test_two_crawls_of_a_url_in_flight_together_leave_the_newer_last_on_the_topic(
    settings: Settings, build_pipeline
):
    assert CBC_NEWER_HTML != CBC_HTML
    publisher = HeldFirstPublisher()
    pipeline, _, _ = build_pipeline(InProcessPool(), RecordingAlertPublisher(), publisher)
    older = asyncio.create_task(pipeline.handle(cbc_crawl(10, 0, CBC_HTML)))
    await asyncio.wait_for(publisher.first_started.wait(), timeout=60)
    newer = asyncio.create_task(pipeline.handle(cbc_crawl(11, 5, CBC_NEWER_HTML)))
    assert publisher.first is not None

    def newer_waits_or_went_past() -> bool:
        # Without one writer per article, the newer crawl saves and publishes while the older
        # one's publish hangs; with it, the newer waits for the older to finish.
        _, users = pipeline._writing._locks.get(publisher.first.article_id, (None, 0))
        return users == 2 or len(publisher.articles) > 0 or newer.done()

    async def until_newer_waits_or_went_past() -> None:
        while not newer_waits_or_went_past():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(until_newer_waits_or_went_past(), timeout=60)
    publisher.let_first_go.set()
    assert await asyncio.gather(older, newer) == [Outcome.KEPT, Outcome.KEPT]
    assert "in Cairo" in publisher.articles[-1].text  # what the compacted topic keeps
    assert [assert_valid("articles", value)["status"] for value in publisher.values] == ["new", "update"]


async def test_two_workers_publishing_two_versions_at_once_leave_the_newer_last_on_the_topic(
    settings: Settings, build_pipeline, redis_client: aioredis.Redis
):
    # Two crawled URLs with one canonical URL: two partitions, so two workers. The older crawl's
    # publish is taken by the broker after the newer one's, which a lock in one worker cannot
    # prevent: the worker that finds out sends the newer version again.
    publisher = HeldFirstPublisher()
    worker_a, _, _ = build_pipeline(InProcessPool(), RecordingAlertPublisher(), publisher)
    worker_b, _, _ = build_pipeline(InProcessPool(), RecordingAlertPublisher(), publisher)
    older = asyncio.create_task(worker_a.handle(cbc_crawl(10, 0, CBC_HTML, url=CBC_URL + "?utm_source=feed")))
    await asyncio.wait_for(publisher.first_started.wait(), timeout=60)
    newer = await asyncio.wait_for(worker_b.handle(cbc_crawl(20, 5, CBC_NEWER_HTML, partition=1)), timeout=60)
    publisher.let_first_go.set()
    assert [await asyncio.wait_for(older, timeout=60), newer] == [Outcome.KEPT, Outcome.KEPT]
    assert len({article.article_id for article in publisher.articles}) == 1
    assert ["in Cairo" in article.text for article in publisher.articles] == [True, False, True]
    # The resend is the version Redis holds, byte for byte, and holds to the schema as it is.
    held = await redis_client.hget(f"{settings.redis_prefix}:article:{publisher.articles[0].article_id}", "json")
    assert publisher.values[2] == held
    assert [assert_valid("articles", value)["status"] for value in publisher.values] == ["update", "new", "update"]


async def test_a_copy_and_a_recrawl_of_the_copy_are_published_and_stored_as_their_schema_describes(
    settings: Settings, build_pipeline, redis_client: aioredis.Redis
):
    # The CBC page, then the same page crawled on another outlet (its canonical link names another
    # host: the copy is an article of its own), then the copy crawled again with a line changed.
    mirror = "https://mirror.example/world/gaza-ceasefire"
    pipeline, publisher, _ = build_pipeline(InProcessPool(), RecordingAlertPublisher())
    crawls = [cbc_crawl(1, 0, CBC_HTML), cbc_crawl(2, 5, CBC_HTML, url=mirror), cbc_crawl(3, 20, CBC_NEWER_HTML, url=mirror)]
    for published, crawl in enumerate(crawls, start=1):
        assert await pipeline.handle(crawl) is Outcome.KEPT
        assert len(publisher.values) == published
        # Redis holds what was published, byte for byte (the json a resend would send)
        held = await redis_client.hget(f"{settings.redis_prefix}:article:{publisher.articles[-1].article_id}", "json")
        assert held == publisher.values[-1]
    original, copy, recrawled = (assert_valid("articles", value) for value in publisher.values)
    assert (original["status"], original["duplicate_of"], original["similarity"]) == ("new", None, None)
    assert (copy["status"], copy["duplicate_of"], copy["similarity"]) == ("duplicate", original["article_id"], 1.0)
    assert copy["article_id"] != original["article_id"] and copy["story_id"] == original["story_id"]
    # an update of a copy is still a copy: its original, no similarity
    assert (recrawled["status"], recrawled["duplicate_of"], recrawled["similarity"]) == ("update", original["article_id"], None)
    assert recrawled["article_id"] == copy["article_id"] and "in Cairo" in recrawled["text"]


FLOOD_PARAGRAPHS = [
    "Heavy rain flooded the lower town on Tuesday night, forcing the evacuation of about 300 residents from homes along the river.",
    "The mayor said the emergency shelters at the sports hall and the primary school would stay open for as long as they were needed.",
    "Firefighters rescued two people from a car trapped on the river road shortly after midnight, the fire service said in a statement.",
    "The weather service expects more rain on Thursday and has kept its amber warning in place for the whole valley until Friday.",
]
FLOOD_UPDATE = [
    "The river peaked on Wednesday afternoon at its highest level since records began, the environment agency said.",
    "Hundreds of volunteers filled sandbags through the night at the depot on the industrial estate, organisers said.",
    "The regional government promised emergency funds for households and businesses whose ground floors were flooded.",
    "Schools in the lower town will stay closed until Monday while engineers check the buildings for damage, officials said.",
    "Insurers said they had already received more than 500 claims, most of them for flooded cellars and damaged cars.",
]


def local_news_page(title: str, paragraphs: list[str]) -> bytes:
    """A small site's story page with no canonical link."""
    body = "".join(f"<p>{paragraph}</p>" for paragraph in paragraphs)
    return (
        f"<html><head><title>{title}</title></head><body>"
        '<nav><a href="/">Home</a> <a href="/news">News</a> <a href="/sport">Sport</a></nav>'
        f"<article><h1>{title}</h1>{body}</article>"
        "<footer><p>Local Example News, 1 Market Square</p></footer></body></html>"
    ).encode()


async def test_one_story_crawled_at_several_urls_is_one_page_of_its_site_for_the_learnt_chrome(
    settings: Settings, build_pipeline
):
    # The story shared with a parameter the URL keeps (?CMP=...): three URLs, three article ids,
    # one text. Counted as three pages of the site, its every paragraph was the site's chrome, and
    # the story's update was published without its first four paragraphs.
    pipeline, publisher, _ = build_pipeline(InProcessPool(), RecordingAlertPublisher())
    story = "https://local.example/news/floods-lower-town"
    first = local_news_page("Floods force hundreds from their homes", FLOOD_PARAGRAPHS)
    for offset, url in enumerate((story, f"{story}?CMP=share_btn_fb", f"{story}?CMP=share_btn_wa")):
        assert await pipeline.handle(cbc_crawl(offset, offset, first, url=url)) is Outcome.KEPT
    assert [article.status for article in publisher.articles] == ["new", "duplicate", "duplicate"]
    updated = local_news_page("Floods: river peaks, schools closed", FLOOD_UPDATE + FLOOD_PARAGRAPHS)
    assert await pipeline.handle(cbc_crawl(3, 30, updated, url=story)) is Outcome.KEPT
    update = publisher.articles[-1]
    assert (update.status, update.article_id) == ("update", publisher.articles[0].article_id)
    assert [block.text for block in update.extraction.removed if block.reason == "site_chrome"] == []
    assert all(paragraph in update.text for paragraph in FLOOD_PARAGRAPHS)


async def test_a_recrawl_whose_only_change_is_its_headline_is_published_as_a_new_version(
    settings: Settings, build_pipeline, redis_client: aioredis.Redis
):
    # The text is the same word for word: compared by the text's fingerprint, the corrected
    # headline was "unchanged", and the topic and Redis kept the old one for ever.
    retitled_html = CBC_HTML.replace(b"appointment as Hamas political head?", b"appointment as the new leader of Hamas?")
    pipeline, publisher, _ = build_pipeline(InProcessPool(), RecordingAlertPublisher())
    assert await pipeline.handle(cbc_crawl(1, 0, CBC_HTML)) is Outcome.KEPT
    assert await pipeline.handle(cbc_crawl(2, 30, retitled_html)) is Outcome.KEPT
    first, retitled = (assert_valid("articles", value) for value in publisher.values)
    assert (first["status"], retitled["status"]) == ("new", "update")
    assert retitled["article_id"] == first["article_id"] and retitled["text"] == first["text"]
    assert retitled["title"].endswith("appointment as the new leader of Hamas?")
    held = await redis_client.hget(f"{settings.redis_prefix}:article:{first['article_id']}", "json")
    assert held == publisher.values[-1]
    outcome = page_status(sync_redis(settings), settings, CBC_URL)
    assert (outcome["outcome"], outcome["reason"]) == ("kept", "update")


async def test_a_recrawl_after_the_dedup_window_is_the_article_it_was_not_a_new_one(
    settings: Settings, build_pipeline, redis_client: aioredis.Redis
):
    # Eight days on (a sitemap revisit, then a correction), the article is still stored, but the
    # dedup doc of its URL had expired with the window: the revisit was "new" (and a correction
    # coming first was published as a new article in a new story: tests/integration/
    # test_dedup_redis.py).
    pipeline, publisher, _ = build_pipeline(InProcessPool(), RecordingAlertPublisher())
    assert await pipeline.handle(cbc_crawl(1, 0, CBC_HTML)) is Outcome.KEPT
    later = datetime.now(UTC) + timedelta(days=8)  # crawled again at 10:00 that day: a week on at least
    await expire_until(redis_client, settings.redis_prefix, later.replace(hour=10, minute=0).timestamp())
    client = sync_redis(settings)
    assert await pipeline.handle(cbc_crawl(2, 0, CBC_HTML, day=later)) is Outcome.KEPT
    assert page_status(client, settings, CBC_URL)["reason"] == "unchanged" and len(publisher.values) == 1
    assert await pipeline.handle(cbc_crawl(3, 5, CBC_NEWER_HTML, day=later)) is Outcome.KEPT
    first, corrected = (assert_valid("articles", value) for value in publisher.values)
    assert (corrected["status"], corrected["article_id"], corrected["story_id"]) == (
        "update", first["article_id"], first["story_id"]
    )
    assert page_status(client, settings, CBC_URL)["reason"] == "update"


def script_rendered_page(paragraphs: list[str]) -> str:
    """An application shell: a title, a menu, an empty mount point, and the article only in the
    JSON state of its scripts (as Next.js pages carry it)."""
    state = {"props": {"pageProps": {"article": {"body": "".join(f"<p>{p}</p>" for p in paragraphs)}}}}
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        "<title>City council approves the budget | The Daily Example</title></head><body>"
        '<nav><a href="/">Home</a> <a href="/city">City</a></nav><div id="root"></div>'
        f'<script id="__NEXT_DATA__" type="application/json">{json.dumps(state)}</script></body></html>'
    )


async def test_a_page_rendered_by_script_is_published_and_stored_with_its_body_from_the_scripts(
    settings: Settings, build_pipeline, redis_client: aioredis.Redis
):
    url = "https://app.example/city/budget"
    html = script_rendered_page(PARAGRAPHS[:3])
    message = {"url": url, "fetched_at": "2026-11-22T10:00:00+00:00", "html": html}
    record = SourceRecord(
        topic="pages.raw", partition=0, offset=1, key=url.encode(), value=json.dumps(message).encode(), timestamp_ms=None
    )
    pipeline, publisher, _ = build_pipeline(InProcessPool(), RecordingAlertPublisher())
    assert await pipeline.handle(record) is Outcome.KEPT
    (value,) = publisher.values
    article = assert_valid("articles", value)
    assert article["extraction"]["body_source"] == "embedded" and "harbour district" in article["text"]
    stored = await redis_client.hget(f"{settings.redis_prefix}:article:{article['article_id']}", "json")
    assert stored == value


class OriginalRefusingPublisher(RecordingPublisher):
    """The dead-letter topic refusing, for good, every letter that carries the original (as a
    broker refuses a record over its size limit)."""

    async def publish_dead_letter(self, record: DeadLetter) -> None:
        if record.original_value_b64:
            raise MessageSizeTooLargeError("the dead-letter topic refused the record")
        await super().publish_dead_letter(record)


async def test_a_dead_letter_the_topic_cannot_take_is_sent_without_the_original_and_the_page_moves_on(
    settings: Settings, build_pipeline
):
    record = dataclasses.replace(source_record(OTHER_PAGE, offset=9), value=b"not json")
    pipeline, publisher, _ = build_pipeline(InProcessPool(), RecordingAlertPublisher(), OriginalRefusingPublisher())
    assert await asyncio.wait_for(pipeline.handle(record), timeout=30) is Outcome.FAILED
    (letter,) = publisher.dead_letters
    assert (letter.reason, letter.url, letter.original_value_b64, letter.original_truncated) == ("not_json", None, "", True)
    assert "refused" in letter.error_message
    assert (letter.source.partition, letter.source.offset) == (0, 9)
    assert record_key(letter) == b"pages.raw:0:9"
    assert_valid("pages.dlq", letter.model_dump_json(by_alias=True))


async def test_a_recrawl_with_the_same_text_renews_the_article_and_publishes_nothing(
    settings: Settings, build_pipeline, redis_client: aioredis.Redis
):
    url = "https://www.cbc.ca/news/world/gaza-israel-ceasefire-negotiations-sinwar-1.7287711"
    html = base64.b64encode(OTHER_PAGE.read_bytes()).decode()

    def crawl(offset: int, minute: int) -> SourceRecord:
        message = {"url": url, "fetched_at": f"2026-11-22T10:{minute:02d}:00+00:00", "html_b64": html}
        return SourceRecord(
            topic="pages.raw", partition=0, offset=offset, key=url.encode(),
            value=json.dumps(message).encode(), timestamp_ms=None,
        )

    pipeline, publisher, _ = build_pipeline(InProcessPool(), RecordingAlertPublisher())
    assert await pipeline.handle(crawl(1, 0)) is Outcome.KEPT
    (article,) = publisher.articles
    article_key = ArticleStore.from_settings(redis_client, settings).article_key(article.article_id)
    stored = await redis_client.hgetall(article_key)
    await redis_client.expire(article_key, 100)  # as if the article had almost run out

    assert await pipeline.handle(crawl(2, 30)) is Outcome.KEPT
    assert publisher.articles == [article]
    # only the newest crawl that found the page is remembered (a 410 crawled before it is stale)
    seen_ts = str(int(datetime(2026, 11, 22, 10, 30, tzinfo=UTC).timestamp())).encode()
    assert await redis_client.hgetall(article_key) == stored | {b"seen_ts": seen_ts}
    assert await redis_client.ttl(article_key) > settings.article_ttl_days * 86400 - 60
    outcome = page_status(sync_redis(settings), settings, url)
    assert (outcome["outcome"], outcome["reason"], outcome["offset"]) == ("kept", "unchanged", "2")


async def test_a_page_waits_for_an_extraction_pool_that_cannot_start_instead_of_being_dead_lettered(
    settings: Settings, build_pipeline
):
    pool = UnavailableFirstPool(failures=3)
    pipeline, publisher, _ = build_pipeline(pool, RecordingAlertPublisher())
    record = source_record(OTHER_PAGE, offset=4)
    assert await asyncio.wait_for(pipeline.handle(record), timeout=60) is Outcome.KEPT
    assert pool.failures == 0
    assert publisher.dead_letters == []
    assert [article.url for article in publisher.articles] == [record.key.decode()]


async def test_a_page_outcome_that_cannot_be_recorded_leaves_the_dead_letter_and_the_worker_going(
    settings: Settings, build_pipeline, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    async def refused(self: ArticleStore, url: str, **fields: object) -> None:
        raise ValueError("the outcome does not fit")  # not an outage: not retried

    pipeline, publisher, _ = build_pipeline(InProcessPool(), RecordingAlertPublisher())
    empty = SourceRecord(
        topic="pages.raw", partition=0, offset=6, key=b"https://empty.example/a",
        value=json.dumps({"url": "https://empty.example/a", "fetched_at": "2026-11-22T10:00:00+00:00", "html": ""}).encode(),
        timestamp_ms=None,
    )
    with monkeypatch.context() as patched:
        patched.setattr(ArticleStore, "record_page_outcome", refused)
        outcome = await pipeline.handle(empty)
    assert outcome is Outcome.DROPPED  # an empty page, dropped before extraction
    (letter,) = publisher.dead_letters
    assert (letter.url, letter.source.offset) == ("https://empty.example/a", 6)
    assert "could not record the outcome of https://empty.example/a" in caplog.text

    following = source_record(OTHER_PAGE, offset=7)
    assert await pipeline.handle(following) is Outcome.KEPT


async def test_a_story_is_read_only_for_a_breaking_story_rule(
    settings: Settings, build_pipeline, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    # the fixture's rules have one article rule: no rule needs a story's outlets
    read: list[str] = []
    real_read = DedupIndex.story_outlets

    async def story_outlets(self: DedupIndex, story_id: str):
        read.append(story_id)
        return await real_read(self, story_id)

    monkeypatch.setattr(DedupIndex, "story_outlets", story_outlets)
    delivered = RecordingAlertPublisher()
    pipeline, publisher, _ = build_pipeline(InProcessPool(), delivered)
    assert await pipeline.handle(source_record(SEED_PAGE, offset=1)) is Outcome.KEPT
    (article,) = publisher.articles
    assert article.story_id and read == []
    assert [alert.rule_id for alert in delivered.alerts] == ["arabic"]

    (tmp_path / "rules.yaml").write_text(
        "version: 1\nrules: [{id: arabic, kind: article, match: {languages: [ar]}},\n"
        "  {id: breaking, kind: breaking_story, match: {min_outlets: 2, within_minutes: 60}}]\n",
        encoding="utf-8",
    )
    pipeline, publisher, _ = build_pipeline(InProcessPool(), delivered)
    assert await pipeline.handle(source_record(SAMPLE_PAGES / "seed-000-irfaasawtak.html", offset=2)) is Outcome.KEPT
    assert read == [publisher.articles[0].story_id]


async def test_an_article_dated_long_before_it_was_crawled_is_stored_and_published_but_fires_no_alert(
    settings: Settings, build_pipeline, caplog: pytest.LogCaptureFixture
):
    # The seed page declares 2016-12-08T19:32:00: crawled today, it is old news (a crawler in an
    # archive, a newly added outlet's back catalogue), whose "urgent" would flood the newsroom.
    settings.alert_max_article_age_s = Settings.model_fields["alert_max_article_age_s"].default
    delivered = RecordingAlertPublisher()
    pipeline, publisher, metrics = build_pipeline(InProcessPool(), delivered)
    found_today = source_record(SAMPLE_PAGES / "seed-000-irfaasawtak.html", offset=1)
    with caplog.at_level(logging.INFO, logger="workers.pipeline"):
        assert await pipeline.handle(found_today) is Outcome.KEPT
    (article,) = publisher.articles
    assert article.published_at == datetime(2016, 12, 8, 19, 32, tzinfo=UTC)
    assert delivered.alerts == []
    assert sync_redis(settings).xlen(f"{settings.redis_prefix}:alerts") == 0
    (suppressed,) = [r for r in caplog.records if "not fired" in r.getMessage()]
    assert "alert_max_article_age_s" in suppressed.getMessage() and article.url in suppressed.getMessage()

    # A page crawled the day it was published (2016-12-08T23:28:00) is news, and fires.
    crawled = source_record(SEED_PAGE, offset=2)
    on_the_day = dataclasses.replace(
        crawled, value=json.dumps({**json.loads(crawled.value), "fetched_at": "2016-12-09T00:00:00+00:00"}).encode()
    )
    assert await pipeline.handle(on_the_day) is Outcome.KEPT
    assert [alert.article.url for alert in delivered.alerts] == [crawled.key.decode()]
    assert counted(metrics)[("wirefeed_alerts_suppressed_total", ("stale_article",))] == 1
    assert counted(metrics)[("wirefeed_alerts_fired_total", ())] == 1


async def test_a_page_read_from_an_old_record_is_stored_and_published_but_fires_no_alert(
    settings: Settings, build_pipeline, caplog: pytest.LogCaptureFixture
):
    # What a new pipeline version's group does with the retained pages.raw: it reads it from the
    # start. A minute here stands for the default 6 hours: a record two minutes old is stale.
    settings.alert_max_record_age_s = 60.0  # this test's own settings object
    delivered = RecordingAlertPublisher()
    pipeline, publisher, metrics = build_pipeline(InProcessPool(), delivered)
    stale = dataclasses.replace(source_record(SEED_PAGE, offset=1), timestamp_ms=int((time.time() - 120) * 1000))
    with caplog.at_level(logging.INFO, logger="workers.pipeline"):
        assert await pipeline.handle(stale) is Outcome.KEPT
    (article,) = publisher.articles
    assert delivered.alerts == []
    assert sync_redis(settings).xlen(f"{settings.redis_prefix}:alerts") == 0  # nothing in the ledger's stream
    (suppressed,) = [r for r in caplog.records if "not fired" in r.getMessage()]  # one line for the page
    assert suppressed.levelno == logging.INFO and article.url in suppressed.getMessage()

    # A replay's copy, as young as can be, without --alerts: suppressed too, for its own reason.
    copy = dataclasses.replace(
        source_record(SAMPLE_PAGES / "ar-cnn-syria-clashes.html", offset=2),
        headers=tuple(ReplayMarker("r1", alerts=False).headers()),
    )
    assert await pipeline.handle(copy) is Outcome.KEPT
    # A record of now fires as always.
    fresh = source_record(SAMPLE_PAGES / "seed-000-irfaasawtak.html", offset=3)
    assert await pipeline.handle(fresh) is Outcome.KEPT
    assert [alert.article.url for alert in delivered.alerts] == [fresh.key.decode()]
    assert counted(metrics) == {
        ("wirefeed_pages_total", ("kept", "sink", "new")): 3,
        ("wirefeed_alerts_suppressed_total", ("stale_record",)): 1,
        ("wirefeed_alerts_suppressed_total", ("replay",)): 1,
        ("wirefeed_alerts_fired_total", ()): 1,
    }


async def test_an_alert_a_page_came_back_too_old_to_fire_but_owes_is_published_or_dead_lettered(
    settings: Settings, build_pipeline
):
    # Its first run fired the alert and the topic refused it; back too old to fire alerts, the
    # page publishes what it owes (the alerts were only counted before, and the alert never left
    # Redis), and a refusal again is a dead letter, as for a page that fires.
    settings.alert_max_record_age_s = 60.0  # this test's own settings object
    record = source_record(SEED_PAGE, offset=3)
    refusing, publisher_of_articles = RefusingAlertPublisher(), RecordingPublisher()
    pipeline, _, _ = build_pipeline(InProcessPool(), refusing, publisher_of_articles)
    assert await pipeline.handle(record) is Outcome.KEPT
    stale = dataclasses.replace(record, timestamp_ms=int((time.time() - 120) * 1000))
    assert await pipeline.handle(stale) is Outcome.KEPT
    assert refusing.attempts == 2
    assert [(letter.stage, letter.reason) for letter in publisher_of_articles.dead_letters] == [("alerts", "alert_error")] * 2
    delivered = RecordingAlertPublisher()
    pipeline, _, _ = build_pipeline(InProcessPool(), delivered)
    assert await pipeline.handle(stale) is Outcome.KEPT
    assert [alert.rule_id for alert in delivered.alerts] == ["arabic"]


def crawl_of(
    url: str,
    offset: int,
    minute: int,
    *,
    status: int = 200,
    page: bytes = CBC_HTML,
    final_url: str | None = None,
    sent: bool = False,
) -> SourceRecord:
    """A crawl of ``url`` at 10:``minute``; a page gone (a status other than 200) has a short body.
    ``sent``: the record has its Kafka timestamp (a second after the fetch), which orders the URL's
    page records as a crawler's records are."""
    body = page if status == 200 else "<html><body><h1>Page not found</h1></body></html>".encode()
    message = {"url": url, "fetched_at": f"2026-11-22T10:{minute:02d}:00+00:00", "status": status,
               "html_b64": base64.b64encode(body).decode()} | ({"final_url": final_url} if final_url else {})
    return SourceRecord(
        topic="pages.raw", partition=0, offset=offset, key=url.encode(), value=json.dumps(message).encode(),
        timestamp_ms=int(gone_at(minute).timestamp() + 1) * 1000 if sent else None,
    )


async def test_a_withdrawal_redelivered_replayed_or_crawled_again_publishes_nothing_new_and_the_newest_crawl_decides(
    settings: Settings, build_pipeline, redis_client: aioredis.Redis
):
    pipeline, publisher, metrics = build_pipeline(InProcessPool(), RecordingAlertPublisher())
    original, gone = crawl_of(CBC_URL, 1, 0), crawl_of(CBC_URL, 2, 10, status=451)
    assert await pipeline.handle(original) is Outcome.KEPT
    (article,) = publisher.articles
    article_key = ArticleStore.from_settings(redis_client, settings).article_key(article.article_id)
    assert await pipeline.handle(gone) is Outcome.DROPPED
    assert [a.withdrawn for a in publisher.articles] == [None, Withdrawal(at=gone_at(10), http_status=451)]
    stored = await redis_client.hgetall(article_key)
    assert stored[b"json"] == publisher.values[-1]

    # Its redelivery, a replay's copy of it, a replay of the crawl before it: nothing new anywhere.
    replayed = tuple(ReplayMarker("r1", alerts=False).headers())
    for again in (gone, dataclasses.replace(gone, offset=40, headers=replayed),
                  dataclasses.replace(original, offset=41, headers=replayed)):
        assert await pipeline.handle(again) is (Outcome.DROPPED if again.value == gone.value else Outcome.KEPT)
        assert len(publisher.values) == 2
        assert await redis_client.hgetall(article_key) == stored
    assert page_status(sync_redis(settings), settings, CBC_URL)["article_id"] == article.article_id
    assert len(publisher.dead_letters) == 3  # the 451's deliveries: each one its dead letter

    # Crawled gone again later: it stays withdrawn as it was, but only a crawl after that one puts it back.
    assert await pipeline.handle(crawl_of(CBC_URL, 3, 30, status=404)) is Outcome.DROPPED
    assert await pipeline.handle(crawl_of(CBC_URL, 4, 20)) is Outcome.KEPT
    assert len(publisher.values) == 2
    assert await pipeline.handle(crawl_of(CBC_URL, 5, 40)) is Outcome.KEPT
    assert publisher.values[-1] == publisher.values[0]  # current again, as it was
    assert counted(metrics)[("wirefeed_articles_withdrawn_total", ("451",))] == 1
    assert counted(metrics)[("wirefeed_articles_restored_total", ())] == 1


def gone_at(minute: int) -> datetime:
    return datetime(2026, 11, 22, 10, minute, tzinfo=UTC)


async def test_a_withdrawal_older_than_the_stored_version_is_ignored(
    settings: Settings, build_pipeline, redis_client: aioredis.Redis
):
    pipeline, publisher, metrics = build_pipeline(InProcessPool(), RecordingAlertPublisher())
    assert await pipeline.handle(crawl_of(CBC_URL, 1, 0)) is Outcome.KEPT
    assert await pipeline.handle(crawl_of(CBC_URL, 2, 30, page=CBC_NEWER_HTML)) is Outcome.KEPT
    article_key = ArticleStore.from_settings(redis_client, settings).article_key(publisher.articles[0].article_id)
    stored = await redis_client.hgetall(article_key)
    # a crawl of 10:10 that found the page gone, delivered after the one of 10:30 that found it
    assert await pipeline.handle(crawl_of(CBC_URL, 3, 10, status=410)) is Outcome.DROPPED
    assert [a.status for a in publisher.articles] == ["new", "update"]
    assert await redis_client.hgetall(article_key) == stored
    assert ("wirefeed_articles_withdrawn_total", ("410",)) not in counted(metrics)
    (letter,) = publisher.dead_letters
    assert (letter.stage, letter.reason) == ("decode", "http_status")
    assert page_status(sync_redis(settings), settings, CBC_URL)["article_id"] == publisher.articles[0].article_id
    # the page gone after the version stored: that withdraws it
    assert await pipeline.handle(crawl_of(CBC_URL, 4, 40, status=410)) is Outcome.DROPPED
    assert [a.withdrawn for a in publisher.articles] == [None, None, Withdrawal(at=gone_at(40), http_status=410)]
    assert "in Cairo" in publisher.articles[-1].text


async def test_a_page_redirected_to_a_gone_page_withdraws_its_target_and_a_changed_page_restores_it(
    settings: Settings, build_pipeline, redis_client: aioredis.Redis
):
    pipeline, publisher, _ = build_pipeline(InProcessPool(), RecordingAlertPublisher())
    assert await pipeline.handle(crawl_of(CBC_URL, 1, 0)) is Outcome.KEPT
    moved = "https://cbc.ca/news/world/gaza-1.7287711"
    assert await pipeline.handle(crawl_of(moved, 2, 10, status=410, final_url=CBC_URL)) is Outcome.DROPPED
    original, withdrawn = (assert_valid("articles", value) for value in publisher.values)
    assert withdrawn["withdrawn"] == {"at": "2026-11-22T10:10:00Z", "http_status": 410}
    assert page_status(sync_redis(settings), settings, moved)["article_id"] == original["article_id"]
    time_index = ArticleStore.from_settings(redis_client, settings).time_index_key
    assert await redis_client.zscore(time_index, original["article_id"]) is None

    # Back with an edit: an update, current again.
    assert await pipeline.handle(crawl_of(CBC_URL, 3, 20, page=CBC_NEWER_HTML)) is Outcome.KEPT
    updated = assert_valid("articles", publisher.values[-1])
    assert (updated["status"], "withdrawn" in updated, "in Cairo" in updated["text"]) == ("update", False, True)
    stored = await redis_client.hgetall(f"{settings.redis_prefix}:article:{original['article_id']}")
    assert b"withdrawn" not in stored and stored[b"json"] == publisher.values[-1]
    assert await redis_client.zscore(time_index, original["article_id"]) is not None


async def test_a_crawl_that_made_the_article_handled_after_a_newer_failed_one_leaves_the_link_for_a_later_410(
    settings: Settings, build_pipeline, redis_client: aioredis.Redis
):
    # One partition's records finish out of order: a 503 needs no extraction and is done before
    # the crawl before it. The page record must still name the article that crawl made, for as
    # long as the article may live, or the 410 after them withdraws nothing.
    pipeline, publisher, _ = build_pipeline(InProcessPool(), RecordingAlertPublisher())
    assert await pipeline.handle(crawl_of(CBC_URL, 2, 5, status=503, sent=True)) is Outcome.DROPPED
    assert await pipeline.handle(crawl_of(CBC_URL, 1, 0, sent=True)) is Outcome.KEPT
    (article,) = publisher.articles
    outcome = page_status(sync_redis(settings), settings, CBC_URL)
    assert (outcome["offset"], outcome["reason"], outcome["article_id"]) == ("2", "http_status", article.article_id)
    page_key = ArticleStore.from_settings(redis_client, settings).page_key(CBC_URL)
    assert await redis_client.ttl(page_key) > settings.page_status_ttl_days * 86400

    assert await pipeline.handle(crawl_of(CBC_URL, 3, 30, status=410, sent=True)) is Outcome.DROPPED
    assert [a.withdrawn for a in publisher.articles] == [None, Withdrawal(at=gone_at(30), http_status=410)]


async def test_a_crawl_that_found_the_page_gone_handled_before_the_older_crawl_that_made_the_article_withdraws_it(
    settings: Settings, build_pipeline, redis_client: aioredis.Redis
):
    # The 410 is done first and finds no article yet; the article the 10:00 crawl then saves is
    # withdrawn at once, as when the two are handled in order.
    pipeline, publisher, metrics = build_pipeline(InProcessPool(), RecordingAlertPublisher())
    first, gone = crawl_of(CBC_URL, 1, 0, sent=True), crawl_of(CBC_URL, 2, 10, status=410, sent=True)
    assert await pipeline.handle(gone) is Outcome.DROPPED
    assert publisher.articles == []
    assert await pipeline.handle(first) is Outcome.KEPT
    withdrawal = Withdrawal(at=gone_at(10), http_status=410)
    assert [a.withdrawn for a in publisher.articles] == [None, withdrawal]
    store = ArticleStore.from_settings(redis_client, settings)
    article_id = publisher.articles[0].article_id
    stored = await redis_client.hgetall(store.article_key(article_id))
    assert stored[b"json"] == publisher.values[-1]
    assert await redis_client.zscore(store.time_index_key, article_id) is None
    assert await store.linked_article(CBC_URL) == article_id
    assert counted(metrics)[("wirefeed_articles_withdrawn_total", ("410",))] == 1
    assert [(letter.stage, letter.reason) for letter in publisher.dead_letters] == [("decode", "http_status")]

    # Redeliveries of either: nothing new anywhere; a later crawl of the gone page publishes nothing.
    for again in (first, gone):
        await pipeline.handle(again)
        assert len(publisher.values) == 2
        assert await redis_client.hgetall(store.article_key(article_id)) == stored
    assert await pipeline.handle(crawl_of(CBC_URL, 3, 40, status=404, sent=True)) is Outcome.DROPPED
    assert len(publisher.values) == 2
    # Found again after that: current again, as it was.
    assert await pipeline.handle(crawl_of(CBC_URL, 4, 50, sent=True)) is Outcome.KEPT
    assert publisher.values[-1] == publisher.values[0]


class HeldGoneLetterPublisher(RecordingPublisher):
    """The first ``http_status`` dead letter waits until the test lets it go."""

    def __init__(self) -> None:
        super().__init__()
        self.letter_started = asyncio.Event()
        self.let_letter_go = asyncio.Event()

    async def publish_dead_letter(self, record: DeadLetter) -> None:
        if record.reason == "http_status" and not self.letter_started.is_set():
            self.letter_started.set()
            await self.let_letter_go.wait()
        await super().publish_dead_letter(record)


async def test_a_crawl_that_found_the_page_gone_withdraws_the_article_saved_while_it_was_being_dead_lettered(
    settings: Settings, build_pipeline
):
    # The 410 found no article, and the crawl before it saved one and recorded its outcome before
    # the 410 recorded its own: the 410 is the one to withdraw it.
    publisher = HeldGoneLetterPublisher()
    pipeline, _, _ = build_pipeline(InProcessPool(), RecordingAlertPublisher(), publisher)
    gone = asyncio.create_task(pipeline.handle(crawl_of(CBC_URL, 2, 10, status=410, sent=True)))
    await asyncio.wait_for(publisher.letter_started.wait(), timeout=60)
    assert await pipeline.handle(crawl_of(CBC_URL, 1, 0, sent=True)) is Outcome.KEPT
    assert [a.withdrawn for a in publisher.articles] == [None]
    publisher.let_letter_go.set()
    assert await asyncio.wait_for(gone, timeout=60) is Outcome.DROPPED
    assert [a.withdrawn for a in publisher.articles] == [None, Withdrawal(at=gone_at(10), http_status=410)]


async def test_a_withdrawal_delivered_after_a_newer_crawl_that_found_the_page_unchanged_is_ignored(
    settings: Settings, build_pipeline, redis_client: aioredis.Redis
):
    # as when the newer crawl found it changed (test_a_withdrawal_older_than_the_stored_version_is_ignored)
    pipeline, publisher, metrics = build_pipeline(InProcessPool(), RecordingAlertPublisher())
    assert await pipeline.handle(crawl_of(CBC_URL, 1, 0)) is Outcome.KEPT
    newer = crawl_of(CBC_URL, 3, 30)
    assert await pipeline.handle(newer) is Outcome.KEPT
    article_key = ArticleStore.from_settings(redis_client, settings).article_key(publisher.articles[0].article_id)
    stored, published = await redis_client.hgetall(article_key), list(publisher.values)
    # redelivered, the newer crawl writes the same bytes
    assert await pipeline.handle(newer) is Outcome.KEPT
    assert await redis_client.hgetall(article_key) == stored
    # crawled at 10:20, before the crawl of 10:30 that found the page, and delivered after it
    assert await pipeline.handle(crawl_of(CBC_URL, 2, 20, status=410)) is Outcome.DROPPED
    assert publisher.values == published
    assert await redis_client.hgetall(article_key) == stored
    assert ("wirefeed_articles_withdrawn_total", ("410",)) not in counted(metrics)


class WithdrawalRefusingPublisher(RecordingPublisher):
    """The ``articles`` topic refusing withdrawn versions for good (not an outage) while ``refusing``."""

    def __init__(self) -> None:
        super().__init__()
        self.refusing = True

    async def publish_article(self, version: ArticleVersion) -> SourcePosition:
        if self.refusing and Article.model_validate_json(version.value).withdrawn is not None:
            raise ValueError("the articles topic refused the record")
        return await super().publish_article(version)


async def test_a_withdrawal_the_topic_refused_is_dead_lettered_and_published_by_a_replay_of_its_offset(
    settings: Settings, build_pipeline
):
    publisher = WithdrawalRefusingPublisher()
    pipeline, _, metrics = build_pipeline(InProcessPool(), RecordingAlertPublisher(), publisher)
    assert await pipeline.handle(crawl_of(CBC_URL, 1, 0)) is Outcome.KEPT
    gone = crawl_of(CBC_URL, 2, 10, status=410)
    assert await pipeline.handle(gone) is Outcome.DROPPED
    assert [a.withdrawn for a in publisher.articles] == [None]
    letters = [assert_valid("pages.dlq", letter.model_dump_json(by_alias=True)) for letter in publisher.dead_letters]
    assert [(letter["outcome"], letter["stage"], letter["reason"], letter["source"]["offset"]) for letter in letters] == [
        ("failed", "sink", "withdrawal_error", 2), ("dropped", "decode", "http_status", 2)
    ]
    assert counted(metrics)[("wirefeed_dead_letters_total", ("sink", "withdrawal_error"))] == 1

    # What the letter says to do: replay the offset, once the topic takes the record.
    publisher.refusing = False
    replay = dataclasses.replace(gone, offset=20, headers=tuple(ReplayMarker("r1", alerts=False).headers()))
    assert await pipeline.handle(replay) is Outcome.DROPPED
    assert [a.withdrawn for a in publisher.articles] == [None, Withdrawal(at=gone_at(10), http_status=410)]
