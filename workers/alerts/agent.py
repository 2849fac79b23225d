"""What ``workers/app.py`` registers for alerts: the publisher of the alert topics and the webhook agent.

The agent reads the ``alerts`` topic and only queues each (alert, webhook) delivery in Redis
(``workers.alerts.webhooks``), acknowledging the record once it is queued; the deliveries run in
:class:`WebhookLanes`, one lane per webhook in every worker, each with its own attempts in flight.
So neither the topic's partitions nor another receiver wait for a receiver that is slow or down,
and a record is acknowledged within moments of being taken, whatever a retry schedule says.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterable, Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import aiohttp
import faust

from workers.acks import OrderedAcks, consume_in_offset_order
from workers.alerts.engine import RulesFile
from workers.alerts.messages import Alert, AlertLetter
from workers.alerts.webhooks import (
    AlertDeadLetterPublisher,
    DeliveryQueue,
    PendingDelivery,
    RetryPolicy,
    WebhookDispatcher,
    WebhookSender,
    webhook_connector,
)
from workers.cancelling import cancel_and_wait
from workers.metrics import PipelineMetrics
from workers.models import SourcePosition
from workers.retry import Retrying
from workers.settings import Settings
from workers.sinks import redis_store

log = logging.getLogger(__name__)

# How often each worker looks for deliveries it was not told about: queued by another worker,
# due again after a backoff, or left by a worker that died while attempting them. Deliveries this
# worker queues start at once.
POLL_S = 1.0


class TopicAlertPublisher:
    """Both alert topics through the app's producer; each call returns once the broker has the record."""

    def __init__(self, alerts: faust.TopicT, dead_letters: faust.TopicT) -> None:
        self._alerts = alerts
        self._dead_letters = dead_letters

    async def publish_alert(self, alert: Alert) -> None:
        pending = await self._alerts.send(key=alert.alert_id.encode(), value=alert.model_dump_json(by_alias=True).encode())
        await pending

    async def publish_dead_letter(self, letter: AlertLetter) -> None:
        pending = await self._dead_letters.send(key=letter.kafka_key, value=letter.model_dump_json(by_alias=True).encode())
        await pending


@dataclass(eq=False)
class _Lane:
    woken: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None


class WebhookLanes:
    """A lane per webhook with deliveries queued: it leases the due ones, up to ``max_in_flight``
    at once, and runs ``attempt`` on each. A lane whose queue is empty ends; :meth:`wake` (a
    delivery just queued here) or the next poll starts it again."""

    def __init__(
        self,
        queue: DeliveryQueue,
        attempt: Callable[[PendingDelivery], Awaitable[None]],
        *,
        max_in_flight: int,
        retry_backoff_max_s: float,
        poll_s: float = POLL_S,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._queue = queue
        self._attempt = attempt
        self._max_in_flight = max_in_flight
        self._retry = Retrying(retry_backoff_max_s)
        self._poll_s = poll_s
        self._wall_clock = wall_clock
        self._lanes: dict[str, _Lane] = {}

    def wake(self, webhook: str) -> None:
        lane = self._lanes.get(webhook)
        if lane is None or lane.task is None or lane.task.done():
            lane = self._lanes[webhook] = _Lane()
            lane.task = asyncio.create_task(self._run_lane(webhook, lane), name=f"webhook lane {webhook}")
        lane.woken.set()

    async def run(self) -> None:
        """Wake every lane with deliveries queued, every ``poll_s``, until cancelled."""
        try:
            while True:
                try:
                    webhooks = await self._retry(self._queue.webhooks, what="listing the webhooks with deliveries queued")
                except Exception:  # noqa: BLE001 - a bug: logged, and looked at again at the next poll
                    log.exception("could not list the webhooks with deliveries queued")
                    webhooks = set()
                for webhook in webhooks:
                    self.wake(webhook)
                await asyncio.sleep(self._poll_s)
        finally:
            await cancel_and_wait(lane.task for lane in self._lanes.values() if lane.task is not None)

    async def _run_lane(self, webhook: str, lane: _Lane) -> None:
        attempts: set[asyncio.Task[None]] = set()

        def finished(task: asyncio.Task[None]) -> None:
            attempts.discard(task)
            lane.woken.set()

        try:
            while True:
                lane.woken.clear()
                free = self._max_in_flight - len(attempts)
                if free > 0:
                    leased = await self._retry(
                        lambda: self._queue.lease_due(webhook, now_s=self._wall_clock(), limit=free),
                        what=f"taking deliveries for webhook {webhook}",
                    )
                    for pending in leased:
                        task = asyncio.create_task(self._attempt_logged(pending))
                        attempts.add(task)
                        task.add_done_callback(finished)
                # An empty queue ends the lane, unless a delivery was queued here meanwhile (woken).
                if not attempts and await self._retry(
                    lambda: self._queue.retire(webhook), what=f"retiring the lane of webhook {webhook}"
                ) and not lane.woken.is_set():
                    return
                await lane.woken.wait()
        except Exception:  # noqa: BLE001 - a bug: the next poll starts the lane again
            log.exception("webhook %s: lane stopped", webhook)
        finally:
            await cancel_and_wait(attempts)

    async def _attempt_logged(self, pending: PendingDelivery) -> None:
        try:
            await self._attempt(pending)
        except Exception:  # noqa: BLE001 - outages are retried inside: this is a bug
            # The lease lapses and a lane takes the delivery again then: it is not lost.
            log.exception("webhook %s, alert %s: attempt failed", pending.webhook, pending.alert_id)


async def deliver_webhooks(
    events: AsyncIterable[Any],
    *,
    dispatcher: WebhookDispatcher,
    lanes: WebhookLanes,
    max_in_flight: int,
    retry_backoff_max_s: float,
    watch: Callable[[OrderedAcks[Any]], None] | None = None,
) -> None:
    """Queue the deliveries of every alert of a Faust ``stream.noack().events()`` (acknowledged in
    offset order once queued) while the lanes deliver them. ``watch``: as for
    :func:`workers.acks.consume_in_offset_order`."""

    async def queue(event: Any) -> None:
        message = event.message
        source = SourcePosition(topic=message.tp.topic, partition=message.tp.partition, offset=message.offset)
        for webhook in await dispatcher.queue(message.value, key=message.key, source=source):
            lanes.wake(webhook)

    running = asyncio.create_task(lanes.run(), name="webhook lanes")
    try:
        await consume_in_offset_order(
            events, queue, max_in_flight=max_in_flight, retry_backoff_max_s=retry_backoff_max_s, watch=watch
        )
    finally:
        await cancel_and_wait([running])


async def run_webhook_agent(
    stream: faust.StreamT, settings: Settings, dead_letters: AlertDeadLetterPublisher, metrics: PipelineMetrics
) -> None:
    """The body of the ``webhooks`` agent on the ``alerts`` topic."""
    redis_client = redis_store.connect(settings)
    allow_private_addresses = settings.alert_webhook_allow_private_addresses
    try:
        async with aiohttp.ClientSession(connector=webhook_connector(allow_private_addresses=allow_private_addresses)) as session:
            queue = DeliveryQueue.from_settings(redis_client, settings)
            dispatcher = WebhookDispatcher(
                RulesFile.from_settings(settings),
                secrets=settings.alert_webhook_secrets,
                queue=queue,
                sender=WebhookSender(
                    session, timeout_s=settings.webhook_timeout_s, allow_private_addresses=allow_private_addresses
                ),
                policy=RetryPolicy.from_settings(settings),
                dead_letters=dead_letters,
                retry_backoff_max_s=settings.retry_backoff_max_s,
                metrics=metrics,
            )
            await deliver_webhooks(
                stream.noack().events(),
                dispatcher=dispatcher,
                lanes=WebhookLanes(
                    queue,
                    dispatcher.attempt,
                    max_in_flight=settings.webhook_max_in_flight,
                    retry_backoff_max_s=settings.retry_backoff_max_s,
                ),
                max_in_flight=settings.webhook_max_in_flight,
                retry_backoff_max_s=settings.retry_backoff_max_s,
                watch=partial(metrics.watch_unacknowledged, "webhooks"),
            )
    finally:
        await redis_client.aclose()
