"""What ``workers/app.py`` registers for alerts: the publisher of the alert topics and the webhook agent."""

from __future__ import annotations

import aiohttp
import faust
import redis.asyncio as aioredis

from workers.alerts.engine import RulesFile
from workers.alerts.ledger import AlertLedger
from workers.alerts.messages import Alert, AlertDeadLetter
from workers.acks import consume_in_offset_order
from workers.alerts.webhooks import AlertDeadLetterPublisher, RetryPolicy, WebhookDispatcher, WebhookSender
from workers.settings import Settings


class TopicAlertPublisher:
    """Both alert topics through the app's producer; each call returns once the broker has the record."""

    def __init__(self, alerts: faust.TopicT, dead_letters: faust.TopicT) -> None:
        self._alerts = alerts
        self._dead_letters = dead_letters

    async def publish_alert(self, alert: Alert) -> None:
        pending = await self._alerts.send(key=alert.alert_id.encode(), value=alert.model_dump_json(by_alias=True).encode())
        await pending

    async def publish_dead_letter(self, letter: AlertDeadLetter) -> None:
        pending = await self._dead_letters.send(
            key=letter.alert.alert_id.encode(), value=letter.model_dump_json(by_alias=True).encode()
        )
        await pending


async def run_webhook_agent(stream: faust.StreamT, settings: Settings, dead_letters: AlertDeadLetterPublisher) -> None:
    """The body of the ``webhooks`` agent on the ``alerts`` topic."""
    redis_client = aioredis.Redis.from_url(settings.redis_url.get_secret_value())
    try:
        async with aiohttp.ClientSession() as session:
            dispatcher = WebhookDispatcher(
                RulesFile.from_settings(settings),
                secrets=settings.alert_webhook_secrets,
                ledger=AlertLedger.from_settings(redis_client, settings),
                sender=WebhookSender(session, RetryPolicy.from_settings(settings)),
                dead_letters=dead_letters,
                retry_backoff_max_s=settings.retry_backoff_max_s,
            )
            await consume_in_offset_order(
                stream.noack().events(),
                lambda event: dispatcher.dispatch(event.message.value),
                max_in_flight=settings.webhook_max_in_flight,
                retry_backoff_max_s=settings.retry_backoff_max_s,
            )
    finally:
        await redis_client.aclose()
