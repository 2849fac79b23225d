"""The Faust app: two agents, thin adapters: ``pages`` between ``pages.raw`` and ``PagePipeline``,
``webhooks`` between the ``alerts`` topic and the webhook deliveries (workers/alerts/agent.py).

The ``pages`` agent reads with manual acks, runs up to ``max_in_flight`` pages concurrently (so that
every extraction process is busy) and acknowledges them strictly in offset order (workers/acks.py).
An offset is therefore committed only after that page and every page before it in its partition
has its outputs written: Redis, ``articles`` or ``pages.dlq``, and its alerts. The ``webhooks``
agent delivers alerts from the ``alerts`` topic the same way.

Neither a stop nor a rebalance waits for the pages in flight (``stream_wait_empty=False``): they
are cancelled, retries of an outage included, never acknowledged, and delivered again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import threading
from functools import partial
from typing import Any

import faust
import redis.asyncio as aioredis
from faust.types import TP

from workers import logs
from workers.acks import consume_in_offset_order, revoke
from workers.alerts.agent import TopicAlertPublisher, run_webhook_agent
from workers.alerts.engine import AlertEngine
from workers.alerts.ledger import AlertLedger
from workers.chrome_index import RedisChromeIndex
from workers.chrome_index import settings_from as chrome_settings_from
from workers.dedup.index import DedupConfig, DedupIndex
from workers.kafka_clients import faust_broker_credentials
from workers.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from workers.metrics import PipelineMetrics
from workers.models import DeadLetter, SourcePosition
from workers.pipeline import PagePipeline, SourceRecord
from workers.pool import ExtractionPool
from workers.settings import Settings
from workers.sinks import redis_store
from workers.sinks.redis_store import ArticleStore, ArticleVersion
from workers.stages.deadletter import record_key

log = logging.getLogger(__name__)

_FLUSH_ON_STOP_S = 5.0
# A stop that takes longer ends with an exit (code 70) of its own: well within the grace period
# of deploy/k8s/worker-deployment.yaml and docker-compose.yml (60 s, then SIGKILL).
STOP_DEADLINE_S = 30.0
_EXIT_AT_STOP_DEADLINE = 70  # EX_SOFTWARE
_RAW = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw", "value_serializer": "raw"}


class TopicPublisher:
    def __init__(self, articles: faust.TopicT, dead_letters: faust.TopicT) -> None:
        self._articles = articles
        self._dead_letters = dead_letters

    async def publish_article(self, version: ArticleVersion) -> SourcePosition:
        pending = await self._articles.send(key=version.article_id.encode(), value=version.value)
        taken = await pending  # resolves once the broker has the record
        return SourcePosition(topic=taken.topic, partition=taken.partition, offset=taken.offset)

    async def publish_dead_letter(self, record: DeadLetter) -> None:
        pending = await self._dead_letters.send(
            key=record_key(record),
            value=record.model_dump_json(by_alias=True).encode(),
        )
        await pending


class _App(faust.App):
    """faust.App with the worker's part in rebalances and stops (workers/acks.py)."""

    _stop_deadline: threading.Timer | None = None

    async def _on_partitions_revoked(self, revoked: set[TP]) -> None:
        # Faust's consumer has just forgotten the revoked partitions' acknowledgements and
        # committed offsets, and calls this before anything else. The pages in flight of those
        # partitions are dropped here, before anything is awaited: none of them can finish and
        # be acknowledged against the next assignment.
        dropped = revoke(revoked)
        if dropped:
            log.info("partitions revoked: %d page(s) in flight cancelled, to be redelivered", dropped)
        await super()._on_partitions_revoked(revoked)

    async def on_stop(self) -> None:
        # The stop takes seconds: the pages in flight are cancelled, not waited for. What can
        # still hold it up is Faust's own flush and commit against a broker that does not answer,
        # for as long as its request timeouts (the producer's: 20 minutes). Past the deadline the
        # worker exits without them, as if killed, which loses nothing (workers/acks.py) but
        # comes before the platform's SIGKILL.
        if self.in_worker and self._stop_deadline is None:
            self._stop_deadline = threading.Timer(STOP_DEADLINE_S, _exit_at_stop_deadline)
            self._stop_deadline.daemon = True
            self._stop_deadline.start()
        await super().on_stop()

    async def on_shutdown(self) -> None:
        await super().on_shutdown()
        if self._stop_deadline is not None:
            self._stop_deadline.cancel()


def _exit_at_stop_deadline() -> None:
    log.error(
        "the worker did not stop within %g s (is Kafka answering?): exiting without the rest of the "
        "stop; the pages not committed are delivered again", STOP_DEADLINE_S,
    )
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(_EXIT_AT_STOP_DEADLINE)


def create_app(settings: Settings, *, log_level: str = "info") -> faust.App:
    app = _App(
        settings.group_id,
        # Faust reads ~90 unprefixed variables (BROKER_URL, PRODUCER_ACKS, WEB_PORT, APP_VERSION...)
        # from the environment over what is passed here: a ConfigMap's BROKER_URL moved the worker
        # to another cluster, a Kubernetes Service named "web" (WEB_PORT=tcp://...) stopped it.
        # The settings below are the WIREFEED_ ones, validated; nothing else configures the worker.
        env={},
        broker=f"kafka://{settings.kafka_bootstrap}",
        broker_credentials=faust_broker_credentials(settings),
        store="memory://",
        datadir=str(settings.data_dir),
        web_port=settings.web_port,
        web_host=settings.web_host,
        # web_host only names the worker in its own URLs; web_bind is where it listens
        web_bind=settings.web_host,
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=settings.session_timeout_s / 4,
        broker_max_poll_interval=settings.max_poll_interval_s,
        broker_commit_interval=settings.commit_interval_s,
        consumer_auto_offset_reset="earliest",
        consumer_max_fetch_size=settings.max_message_bytes,
        # Faust prefetches up to this many records per agent (default 4096: about a gigabyte of
        # raw pages during a catch-up). The agent works on max_in_flight; the finished pages it
        # holds unacknowledged (up to 8x that) keep their position only, not the record
        # (workers/acks.py). So the raw records in memory are at most about 5 x max_in_flight
        # (plus aiokafka's fetch buffer), whatever a slow page holds up.
        stream_buffer_maxsize=4 * settings.max_in_flight,
        # A stop or a rebalance does not wait for the pages in flight (Faust would wait until
        # every one is acknowledged, for ever through an outage): they are cancelled, never
        # acknowledged, and redelivered (workers/acks.py).
        stream_wait_empty=False,
        producer_max_request_size=settings.max_message_bytes,
        producer_compression_type=None if settings.compression == "none" else settings.compression,
        producer_acks=-1,
        # Not idempotent (enable_idempotence): once the broker refuses a batch for good (a record
        # over the topic's limit, dead-lettered), aiokafka's idempotent producer sends the next
        # batch of that partition with a sequence number the broker does not expect, and every
        # later record there fails with OutOfOrderSequenceNumber (tests/integration/test_outages.py,
        # the article the topic refuses). A retry after a timeout or a failover may write a record
        # twice instead: articles and alerts are keyed by id and readers deduplicate on it.
        # No tables and no leader-only tasks: the assignor's leader topic would be dead weight.
        topic_disable_leader=True,
    )
    pages = app.topic(settings.topic_pages_raw, partitions=settings.pages_raw_partitions, **_RAW)
    articles = app.topic(settings.topic_articles, partitions=settings.articles_partitions, **_RAW)
    dead_letters = app.topic(settings.topic_dlq, partitions=settings.dlq_partitions, **_RAW)
    publisher = TopicPublisher(articles, dead_letters)
    metrics = PipelineMetrics()

    @app.page("/metrics")
    async def expose_metrics(view: faust.web.View, request: faust.web.Request) -> faust.web.Response:
        return view.bytes(metrics.render(), headers={"Content-Type": METRICS_CONTENT_TYPE})

    alerts = app.topic(settings.topic_alerts, partitions=settings.alerts_partitions, **_RAW)
    alert_publisher = TopicAlertPublisher(alerts, app.topic(settings.topic_alerts_dlq, partitions=1, **_RAW))

    async def stop_pipeline(dedup: DedupIndex, redis_client: aioredis.Redis) -> None:
        try:
            # the document frequencies counted since the last refresh; bounded, so that a Redis
            # outage does not hold the shutdown up (they only weigh terms, see flush)
            await asyncio.wait_for(dedup.flush(), timeout=_FLUSH_ON_STOP_S)
        except Exception:  # noqa: BLE001 - losing them is harmless, blocking the stop is not
            log.warning("document frequencies not flushed at stop", exc_info=True)
        log.info("pipeline stopped: %s", metrics.pages_by_outcome())
        await redis_client.aclose()

    @app.agent(pages, name="pages")
    async def process_pages(stream: faust.StreamT[Any]) -> None:
        redis_client = redis_store.connect(settings)
        pool = ExtractionPool(
            processes=settings.extraction_processes,
            timeout_s=settings.extraction_timeout_s,
            memory_limit_mb=settings.extraction_memory_limit_mb,
            tasks_per_process=settings.extraction_tasks_per_process,
            log_config=logs.logging_config(settings.log_format, log_level),
        )
        dedup = DedupIndex(redis_client, settings.redis_prefix, DedupConfig.from_settings(settings))
        pipeline = PagePipeline(
            settings,
            pool=pool,
            store=ArticleStore.from_settings(redis_client, settings),
            publisher=publisher,
            chrome=RedisChromeIndex(redis_client, settings.redis_prefix, chrome_settings_from(settings)),
            dedup=dedup,
            alerts=AlertEngine.from_settings(
                settings, ledger=AlertLedger.from_settings(redis_client, settings), publisher=alert_publisher
            ),
            metrics=metrics,
        )

        async def handle(event: faust.EventT) -> None:
            message = event.message
            await pipeline.handle(
                SourceRecord(
                    topic=message.topic,
                    partition=message.partition,
                    offset=message.offset,
                    key=message.key,
                    value=message.value,
                    # a record without a timestamp reads as -1 ms (Faust: -0.001 s)
                    timestamp_ms=int(message.timestamp * 1000) if message.timestamp and message.timestamp > 0 else None,
                    headers=tuple(message.headers or ()),
                )
            )

        try:
            await consume_in_offset_order(
                stream.noack().events(),
                handle,
                max_in_flight=settings.max_in_flight,
                retry_backoff_max_s=settings.retry_backoff_max_s,
                watch=partial(metrics.watch_unacknowledged, "pages"),
            )
        finally:
            pool.close()
            # Faust cancels the agent more than once while it stops: the cleanup, bounded by the
            # flush timeout, is shielded from the repeats and finished before the agent ends.
            cleanup = asyncio.ensure_future(stop_pipeline(dedup, redis_client))
            while not cleanup.done():
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.shield(cleanup)

    @app.agent(alerts, name="webhooks")
    async def deliver_webhooks(stream: faust.StreamT[Any]) -> None:
        # Its own agent, so that a slow or failing receiver never holds up page processing.
        await run_webhook_agent(stream, settings, alert_publisher, metrics)

    return app
