"""One page through every stage, with every outcome routed. Knows nothing of Faust: the agent
hands it a ``SourceRecord`` and acknowledges the message once ``handle`` returns."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from workers.alerts.engine import AlertEngine, AlertSuppression, alert_suppression, article_age_s
from workers.alerts.match import StoryInfo
from workers.chrome_index import ChromeIndex
from workers.dedup.index import DedupIndex
from workers.locks import KeyedLock
from workers.metrics import PipelineMetrics
from workers.models import Article, DeadLetter, Outcome, RawPage, SourcePosition, Withdrawal
from workers.pool import ExtractionPool, PoolUnavailable
from workers.replay import ReplayMarker
from workers.retry import Retrying, until_done
from workers.settings import Settings
from workers.sinks.redis_store import ArticleStore, ArticleVersion, SavedArticle, SaveResult
from workers.stages.article import build_article
from workers.urlnorm import domain_of
from workers.stages.deadletter import dead_letter
from workers.stages.decode import decode_message
from workers.stages.extract import ExtractionOptions
from workers.stages.outcome import Dropped, Failed, Kept
from workers.stages.withdrawal import withdrawal_by, withdrawn_urls

log = logging.getLogger(__name__)

# Pages are decoded one at a time, off the event loop. A decode holds several copies of its record
# at once (text, parsed JSON, model, bytes): up to max_message_bytes each. Six records of 10 MiB
# decoded together in the default executor peaked at 490 MiB against 125 one at a time, their
# threads held the GIL from the loop about as long as decoding on it did, and dedup's and the alert
# matcher's jobs waited behind them; and the GIL gains nothing from running more.
_DECODING = ThreadPoolExecutor(max_workers=1, thread_name_prefix="decode")


@dataclass(frozen=True, slots=True)
class SourceRecord:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int | None
    headers: tuple[tuple[str, bytes], ...] = ()

    @property
    def position(self) -> SourcePosition:
        return SourcePosition(topic=self.topic, partition=self.partition, offset=self.offset)

    def age_s(self, now: datetime) -> float | None:
        """From the record's timestamp to ``now``; None for a record without a timestamp."""
        return None if self.timestamp_ms is None else now.timestamp() - self.timestamp_ms / 1000


@dataclass(frozen=True, slots=True)
class Handled:
    """How a page ended, and the stage and reason that decided it (``sink`` and the dedup
    status for a kept page)."""

    outcome: Outcome
    stage: str
    reason: str


class Publisher(Protocol):
    """Sends to the output topics and returns once the broker has acknowledged the record."""

    async def publish_article(self, version: ArticleVersion) -> SourcePosition: ...

    async def publish_dead_letter(self, record: DeadLetter) -> None: ...


class PagePipeline:
    def __init__(
        self,
        settings: Settings,
        *,
        pool: ExtractionPool,
        store: ArticleStore,
        publisher: Publisher,
        chrome: ChromeIndex,
        dedup: DedupIndex,
        alerts: AlertEngine,
        metrics: PipelineMetrics,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._settings = settings
        self._pool = pool
        self._store = store
        self._publisher = publisher
        self._chrome = chrome
        self._dedup = dedup
        self._alerts = alerts
        self._metrics = metrics
        self._clock = clock
        self._retry = Retrying(settings.retry_backoff_max_s)
        self._options = ExtractionOptions(
            min_text_chars=settings.min_text_chars,
            chrome_max_block_chars=settings.chrome_max_block_chars,
            chrome_max_share=settings.chrome_max_share,
        )
        self._writing = KeyedLock()

    async def handle(self, record: SourceRecord) -> Outcome:
        started, read_at = time.monotonic(), self._clock()
        try:
            handled = await self._process(record, read_at)
        except Exception as exc:  # noqa: BLE001 - a bug must cost one dead letter, not the worker
            log.exception("unexpected error on %s[%d]@%d", record.topic, record.partition, record.offset)
            handled = await self._reject(record, Failed.from_exception("pipeline", "internal_error", exc), None)
        self._metrics.pages.labels(handled.outcome.value, handled.stage, handled.reason).inc()
        self._metrics.page_seconds.observe(time.monotonic() - started)
        delay_s = record.age_s(self._clock())
        if delay_s is not None and ReplayMarker.from_headers(record.headers) is None:
            self._metrics.page_delay_seconds.observe(max(0.0, delay_s))
        return handled.outcome

    async def _process(self, record: SourceRecord, read_at: datetime) -> Handled:
        # Decoding is CPU work: up to about a second for a page of megabytes whose charset has to
        # be detected (charset_normalizer is Python code). In a thread (_DECODING), the event loop
        # goes on meanwhile (heartbeats, the other pages in flight).
        decoded = await asyncio.get_running_loop().run_in_executor(
            _DECODING,
            functools.partial(
                decode_message, record.value, max_html_bytes=self._settings.max_html_bytes, sent_at_ms=record.timestamp_ms
            ),
        )
        if not isinstance(decoded, Kept):
            article_id, withdrawal = None, None
            if isinstance(decoded, Dropped) and decoded.page is not None:
                withdrawal = withdrawal_by(decoded.page)
                article_id = await self._withdraw_article(record, decoded.page, withdrawal)
            return await self._reject(record, decoded, None, article_id=article_id, withdrawal=withdrawal)
        page = decoded.value
        domain = domain_of(page.effective_url)
        known_chrome = await self._retry(lambda: self._chrome.known_chrome(domain), what="reading a site's chrome")
        extraction_started = time.monotonic()
        extracted = await until_done(
            lambda: self._pool.extract(
                page.html, page.effective_url, self._options, known_chrome=known_chrome, fetched_at=page.page.fetched_at
            ),
            what="extracting a page",
            backoff_max_s=self._settings.retry_backoff_max_s,
            retry_on=lambda exc: isinstance(exc, PoolUnavailable),
        )
        self._metrics.extraction_seconds.observe(time.monotonic() - extraction_started)
        if not isinstance(extracted, Kept):
            return await self._reject(record, extracted, str(page.page.url))
        if extracted.value.chrome_withheld:
            self._metrics.chrome_withheld.inc()

        article = build_article(
            page,
            extracted.value,
            source=record.position,
            pipeline_version=self._settings.pipeline_version,
            processed_at=self._clock(),
        )
        decision = await self._retry(lambda: self._dedup.classify(article), what="classifying an article")
        if decision.emit:
            article = decision.applied_to(article)
            try:
                await self._write(
                    article.article_id, article.source, lambda: self._store.save(article, now=self._clock())
                )
            except Exception as exc:  # noqa: BLE001 - non-transient sink errors (transient ones are retried)
                return await self._reject(record, Failed.from_exception("sink", "sink_error", exc), article.url)
            # After the article is stored (a receiver may fetch it) and before the page outcome
            # and the ack: a crash in between redelivers the page, and firing is once-only.
            replay, record_age_s = ReplayMarker.from_headers(record.headers), record.age_s(read_at)
            article_age = article_age_s(article)
            suppression = alert_suppression(
                replay,
                record_age_s,
                article_age,
                max_record_age_s=self._settings.alert_max_record_age_s,
                max_article_age_s=self._settings.alert_max_article_age_s,
            )
            if suppression is not None:
                try:
                    await self._count_suppressed(
                        article, decision.story_id, suppression, record.position.label, record_age_s, article_age
                    )
                except Exception as exc:  # noqa: BLE001 - a bug, a bad rule, or an owned alert the topic refused
                    # It fires nothing, but may publish an alert its record fired before: as below,
                    # the page stays kept and a replay of its offset with --alerts publishes it.
                    log.exception("counting the suppressed alerts of %s failed", article.url)
                    await self._publish_dead_letter(record, Failed.from_exception("alerts", "alert_error", exc))
            else:
                try:
                    fired = await self._alerts.on_article(
                        article,
                        urgent=article.urgent,
                        story=await self._story(decision.story_id),
                        replay=replay,
                        source=record.position.label,
                    )
                    self._metrics.alerts_fired.inc(len(fired))
                except Exception as exc:  # noqa: BLE001 - outages are retried inside; this is a bug or a bad rule
                    # The article is stored and published, so the page stays kept; the alerts it may
                    # have owed are dead-lettered, to be fired by a replay of its offset with --alerts.
                    log.exception("alerts failed for %s from %s", article.url, record.position.label)
                    await self._publish_dead_letter(record, Failed.from_exception("alerts", "alert_error", exc))
        else:
            try:
                touched = await self._write(article.article_id, article.source, lambda: self._store.touch(article))
            except Exception as exc:  # noqa: BLE001 - as for a save: the restored article could not be sent
                return await self._reject(record, Failed.from_exception("sink", "sink_error", exc), article.url)
            if touched is not None and touched.result is SaveResult.RESTORED:
                self._metrics.articles_restored.inc()
                log.info(
                    "article %s restored: %s found again at %s", article.article_id, article.url, article.fetched_at
                )
        # Learnt from every kept page, once per article (a re-crawl or replay adds nothing): a copy
        # counts as its original, so one story crawled at three URLs is not three pages whose
        # paragraphs all recur, to be cut from its next update as the site's chrome.
        await self._retry(
            lambda: self._chrome.observe(
                domain, decision.duplicate_of or article.article_id, extracted.value.block_hashes
            ),
            what="recording a site's blocks",
        )
        owed = await self._retry(
            lambda: self._store.record_page_outcome(
                article.url,
                outcome=Outcome.KEPT,
                stage="sink",
                reason=decision.status.value,
                article_id=article.article_id,
                source=record.position,
                source_ts_ms=record.timestamp_ms,
                kept_fetched_at=article.fetched_at,
            ),
            what="recording a page outcome",
        )
        if owed is not None:
            # A crawl of the URL no older than this one found the page gone, and was handled
            # before this one had saved the article: it found nothing to withdraw.
            await self._withdraw(record, owed.article_id, owed.withdrawal, article.url)
        return Handled(Outcome.KEPT, "sink", decision.status.value)

    async def _count_suppressed(
        self,
        article: Article,
        story_id: str | None,
        suppression: AlertSuppression,
        source: str,
        record_age_s: float | None,
        article_age: float | None,
    ) -> None:
        story = await self._story(story_id)
        matched = await self._alerts.count_matches(article, urgent=article.urgent, story=story, source=source)
        if not matched:
            return
        self._metrics.alerts_suppressed.labels(suppression.value).inc(matched)
        if suppression is AlertSuppression.REPLAY:
            why = "a replay's copy, without --alerts"
        elif suppression is AlertSuppression.STALE_RECORD:
            why = f"its record was {(record_age_s or 0.0) / 3600:.1f} h old when read (alert_max_record_age_s)"
        else:
            why = (
                f"the article is dated {(article_age or 0.0) / 86400:.1f} days before its page "
                "was fetched (alert_max_article_age_s)"
            )
        log.info("%d alert(s) not fired for %s from %s: %s", matched, article.url, source, why)

    async def _story(self, story_id: str | None) -> StoryInfo | None:
        # A Redis read for every article of a story: only when a breaking-story rule needs it.
        if story_id is None or not self._alerts.watches_stories():
            return None
        outlets = await self._retry(lambda: self._dedup.story_outlets(story_id), what="reading a story")
        return StoryInfo(story_id, outlets)

    async def _withdraw_article(self, record: SourceRecord, page: RawPage, withdrawal: Withdrawal | None) -> str | None:
        """Withdraw the article the page's URL made if the page says it is gone (``withdrawal``);
        returns the id of that article (also when the page withdraws nothing: the page record keeps
        the link)."""
        linked: list[str] = []
        for url in withdrawn_urls(page):
            article_id = await self._retry(lambda: self._store.linked_article(url), what="reading a page outcome")
            if article_id is not None and article_id not in linked:
                linked.append(article_id)
        if withdrawal is not None:
            for article_id in linked:
                await self._withdraw(record, article_id, withdrawal, str(page.url))
        return linked[0] if linked else None

    async def _withdraw(self, record: SourceRecord, article_id: str, withdrawal: Withdrawal, url: str) -> None:
        try:
            withdrawn = await self._write(
                article_id, record.position, lambda: self._store.withdraw(article_id, withdrawal, writer=record.position)
            )
        except Exception as exc:  # noqa: BLE001 - outages are retried inside; a bug, or the topic refused it for good
            # The page's own outcome stands. Redis may hold the withdrawal and the topic not (it is
            # released for the next record to publish): the letter names the offset whose replay
            # withdraws it, or publishes it.
            log.exception("withdrawing article %s for %s failed", article_id, record.position.label)
            await self._publish_dead_letter(record, Failed.from_exception("sink", "withdrawal_error", exc))
            return
        if withdrawn is not None and withdrawn.result is SaveResult.WITHDRAWN:
            self._metrics.articles_withdrawn.labels(str(withdrawal.http_status)).inc()
            log.info(
                "article %s withdrawn: %s answered %d at %s (%s)",
                article_id, url, withdrawal.http_status, withdrawal.at.isoformat(), record.position.label,
            )

    async def _write(
        self, article_id: str, sender: SourcePosition, save: Callable[[], Awaitable[SavedArticle | None]]
    ) -> SavedArticle | None:
        # One article's save, publish and mark run one at a time in this worker: two crawls of a
        # URL in flight together (a live page re-crawled) would otherwise both be told to
        # publish. Across workers the mark sets the order right (ArticleStore.mark_published).
        async with self._writing.hold(article_id):
            return await self._save_and_publish(save, sender)

    async def _save_and_publish(
        self, save: Callable[[], Awaitable[SavedArticle | None]], sender: SourcePosition
    ) -> SavedArticle | None:
        """Write a version of an article (``save``: a save, a sighting, a withdrawal, each one
        Lua script) and publish what it says ``sender``, the record of pages.raw, sends."""
        saved = await self._retry(save, what="saving an article")
        # This record's own version, or the one Redis holds when a delivery of this record was
        # killed between its send and its mark: what it sent may have reached the topic last.
        version, resent = saved.to_publish if saved is not None else None, False
        while version is not None:
            sending = version
            try:
                at = await self._retry(lambda: self._publisher.publish_article(sending), what="publishing an article")
            except Exception:
                # Not an outage (those are retried): the page is dead-lettered and acknowledged, so
                # no redelivery comes to publish it; a replay of its writer's offset saves the same
                # version and takes the publishing over.
                await self._retry(lambda: self._store.release(sending, sender=sender), what="releasing an article")
                raise
            version = await self._retry(
                lambda: self._store.mark_published(sending, at, resent=resent, sender=sender),
                what="marking an article published",
            )
            resent = True
        return saved

    async def _reject(
        self,
        record: SourceRecord,
        result: Dropped | Failed,
        url: str | None,
        *,
        article_id: str | None = None,
        withdrawal: Withdrawal | None = None,
    ) -> Handled:
        letter_url = await self._publish_dead_letter(record, result)
        outcome = Outcome.FAILED if isinstance(result, Failed) else Outcome.DROPPED
        page_url = url or letter_url
        if page_url:
            try:
                owed = await self._retry(
                    lambda: self._store.record_page_outcome(
                        page_url,
                        outcome=outcome,
                        stage=result.stage,
                        reason=result.reason,
                        article_id=article_id,
                        source=record.position,
                        source_ts_ms=record.timestamp_ms,
                        withdrawal=withdrawal,
                    ),
                    what="recording a page outcome",
                )
            except Exception:  # noqa: BLE001 - the dead letter already holds the page
                log.exception("could not record the outcome of %s", page_url)
            else:
                if owed is not None and owed.article_id != article_id:
                    # the URL's article, saved by a crawl in flight with this one after it found none
                    await self._withdraw(record, owed.article_id, owed.withdrawal, page_url)
        return Handled(outcome, result.stage, result.reason)

    async def _publish_dead_letter(self, record: SourceRecord, result: Dropped | Failed) -> str | None:
        """Publish the record's dead letter; returns the page URL it names (the page's outcome is
        recorded under it, also when the letter had to go without the original and its URL)."""
        letter = dead_letter(
            result,
            key=record.key,
            value=record.value,
            source=record.position,
            source_timestamp_ms=record.timestamp_ms,
            pipeline_version=self._settings.pipeline_version,
            failed_at=self._clock(),
            max_record_bytes=self._settings.max_message_bytes,
        )
        log.info(
            "%s %s[%d]@%d at %s: %s (%s)",
            letter.outcome, record.topic, record.partition, record.offset, result.stage, result.reason,
            result.detail[:200],
        )
        try:
            await self._retry(lambda: self._publisher.publish_dead_letter(letter), what="publishing a dead letter")
        except Exception as exc:  # noqa: BLE001 - not an outage: this letter is refused for good
            # (an unencodable URL as its key, a size the topic refuses...). Retrying it would stop
            # the partition for ever; the page's bytes stay at its source offset, which a letter
            # without them and keyed by that offset still names.
            log.exception("dead letter of %s refused; publishing it without the original", record.position.label)
            stripped = letter.model_copy(update={
                "url": None,
                "original_key_b64": None,
                "original_value_b64": "",
                "original_truncated": True,
                "error_message": f"{letter.error_message[:1000]} (the dead letter with the original was refused: {exc!r:.300})",
            })
            # A dead letter that cannot be written even so is retried whatever the error:
            # acknowledging the page without one would lose the page silently.
            await until_done(
                lambda: self._publisher.publish_dead_letter(stripped),
                what="publishing a dead letter",
                backoff_max_s=self._settings.retry_backoff_max_s,
                retry_on=lambda _exc: True,
            )
        self._metrics.dead_letters.labels(result.stage, result.reason).inc()
        return letter.url
