"""Webhook delivery: its own agent on the ``alerts`` topic, so a slow receiver never holds up pages.

Every alert is POSTed, as the JSON on the topic, to each webhook its rule names, with

* ``X-Wirefeed-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">``, keyed with the
  webhook's secret (setting ``ALERT_WEBHOOK_SECRETS``); :func:`verify` is the receiver's check;
* ``X-Wirefeed-Timestamp`` (Unix seconds of this attempt: receivers refuse old ones, which stops
  a captured request from being replayed later);
* ``X-Wirefeed-Alert-Id``: delivery is at least once, so receivers deduplicate on it.

A 2xx answer is success. 408, 429, 5xx and network errors are retried with capped exponential
backoff and full jitter (``Retry-After`` is honoured within the cap); any other answer is final
(redirects included: a POST must not be silently turned into a GET elsewhere). A delivery given
up on goes to ``alerts.dlq`` with the alert, and the agent moves on.

Each (alert, webhook) outcome is recorded in Redis (:class:`AlertLedger`) once final, so a
redelivered alert is not POSTed again where it already succeeded or was dead-lettered. The
window between a receiver's 2xx and that record is the at-least-once part receivers dedupe.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import aiohttp
from pydantic import SecretStr, ValidationError

from workers import __version__
from workers.alerts.engine import RulesFile
from workers.alerts.ledger import AlertLedger, DeliveryState
from workers.alerts.messages import Alert, AlertDeadLetter
from workers.alerts.rules import WebhookTarget
from workers.retry import Retrying, until_done
from workers.settings import Settings

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Wirefeed-Signature"
TIMESTAMP_HEADER = "X-Wirefeed-Timestamp"
ALERT_ID_HEADER = "X-Wirefeed-Alert-Id"
_RETRYABLE_4XX = {408, 429}


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()


def verify(secret: bytes, *, timestamp: str, signature: str, body: bytes, now: float, tolerance_s: float = 300) -> bool:
    """A receiver's check of a request: the signature is ours and the request is recent."""
    try:
        sent_at = int(timestamp)
    except ValueError:
        return False
    return abs(now - sent_at) <= tolerance_s and hmac.compare_digest(sign(secret, sent_at, body), signature)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int
    backoff_base_s: float
    backoff_max_s: float
    timeout_s: float

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(
            max_attempts=settings.webhook_max_attempts,
            backoff_base_s=settings.webhook_backoff_base_s,
            backoff_max_s=settings.webhook_backoff_max_s,
            timeout_s=settings.webhook_timeout_s,
        )

    def delay(self, failed_attempts: int, rng: random.Random, *, retry_after_s: float | None = None) -> float:
        """Pause before the next attempt: full jitter over the exponential ceiling, so that
        the retries of many alerts to a receiver that just came back do not arrive together."""
        ceiling = min(self.backoff_max_s, self.backoff_base_s * 2 ** (failed_attempts - 1))
        jittered = rng.uniform(0, ceiling)
        return min(self.backoff_max_s, max(jittered, retry_after_s or 0.0))


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    delivered: bool
    attempts: int
    last_status: int | None
    last_error: str | None

    @property
    def rejected(self) -> bool:
        """The receiver refused for good (a 4xx other than 408/429, or a redirect)."""
        return self.last_status is not None and not self.delivered and _final(self.last_status)


def _final(status: int) -> bool:
    return 300 <= status < 500 and status not in _RETRYABLE_4XX


class WebhookSender:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        policy: RetryPolicy,
        *,
        wall_clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self._session = session
        self._policy = policy
        self._wall_clock = wall_clock
        self._sleep = sleep
        self._rng = rng or random.Random()

    async def send(self, target: WebhookTarget, secret: SecretStr, *, alert_id: str, body: bytes) -> DeliveryReport:
        key = secret.get_secret_value().encode()
        status: int | None = None
        error: str | None = None
        for attempt in range(1, self._policy.max_attempts + 1):
            timestamp = int(self._wall_clock())
            headers = {
                "Content-Type": "application/json",
                "User-Agent": f"wirefeed/{__version__}",
                SIGNATURE_HEADER: sign(key, timestamp, body),
                TIMESTAMP_HEADER: str(timestamp),
                ALERT_ID_HEADER: alert_id,
            }
            retry_after_s = None
            try:
                async with self._session.post(
                    target.url,
                    data=body,
                    headers=headers,
                    allow_redirects=False,
                    timeout=aiohttp.ClientTimeout(total=self._policy.timeout_s),
                ) as response:
                    status, error = response.status, f"{response.status} {response.reason or ''}".strip()
                    if 200 <= status < 300:
                        return DeliveryReport(True, attempt, status, None)
                    if _final(status):
                        return DeliveryReport(False, attempt, status, error)
                    retry_after_s = _retry_after_s(response.headers.get("Retry-After"))
            except (aiohttp.ClientError, TimeoutError) as exc:
                status, error = None, f"{type(exc).__name__}: {exc}"
            if attempt < self._policy.max_attempts:
                delay = self._policy.delay(attempt, self._rng, retry_after_s=retry_after_s)
                log.warning(
                    "webhook %s, alert %s: attempt %d failed (%s), retrying in %.1f s", target.name, alert_id, attempt, error, delay
                )
                await self._sleep(delay)
        return DeliveryReport(False, self._policy.max_attempts, status, error)


def _retry_after_s(value: str | None) -> float | None:
    """``Retry-After`` in seconds; the HTTP-date form is rare on webhooks and ignored."""
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


class AlertDeadLetterPublisher(Protocol):
    """Sends to ``alerts.dlq`` and returns once the broker has acknowledged the record."""

    async def publish_dead_letter(self, letter: AlertDeadLetter) -> None: ...


class WebhookDispatcher:
    """Delivers one alert (as read from the ``alerts`` topic) to each of its webhooks."""

    def __init__(
        self,
        rules: RulesFile,
        *,
        secrets: Mapping[str, SecretStr],
        ledger: AlertLedger,
        sender: WebhookSender,
        dead_letters: AlertDeadLetterPublisher,
        retry_backoff_max_s: float,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._rules = rules
        self._secrets = secrets
        self._ledger = ledger
        self._sender = sender
        self._dead_letters = dead_letters
        self._retry = Retrying(retry_backoff_max_s)
        self._clock = clock

    async def dispatch(self, body: bytes | None) -> None:
        """``body``: the record's value; POSTed as it is, so receivers get the topic's bytes."""
        try:
            alert = Alert.model_validate_json(body or b"")
        except ValidationError as exc:
            # Only this app writes the topic: a bad record is a bug to see in the logs, and no
            # retry or dead letter can make it deliverable.
            log.error("not an alert on the alerts topic, skipped: %s", exc)
            return
        await asyncio.gather(*(self._deliver(alert, name, body or b"") for name in alert.webhooks))

    async def _deliver(self, alert: Alert, name: str, body: bytes) -> None:
        state = await self._retry(lambda: self._ledger.delivery_state(alert.alert_id, name), what="reading a delivery marker")
        if state is not None:
            return
        target = self._rules.current().ruleset.webhook(name)
        secret = self._secrets.get(target.secret) if target is not None else None
        if target is None:
            letter = self._letter(alert, name, None, "unknown_webhook", DeliveryReport(False, 0, None, "not in the rules file"))
        elif secret is None:
            letter = self._letter(alert, name, target.url, "missing_secret", DeliveryReport(False, 0, None, f"no secret {target.secret!r}"))
        else:
            report = await self._sender.send(target, secret, alert_id=alert.alert_id, body=body)
            if report.delivered:
                await self._retry(
                    lambda: self._ledger.record_delivery(alert.alert_id, name, DeliveryState.DELIVERED),
                    what="recording a delivery",
                )
                return
            letter = self._letter(alert, name, target.url, "rejected" if report.rejected else "retries_exhausted", report)
        log.error("webhook %s, alert %s: %s (%s), dead-lettered", name, alert.alert_id, letter.reason, letter.last_error)
        # Whatever the error, as for page dead letters: moving on without it would lose the alert
        # for this receiver silently.
        await until_done(
            lambda: self._dead_letters.publish_dead_letter(letter),
            what="publishing an alert dead letter",
            backoff_max_s=self._retry.backoff_max_s,
            retry_on=lambda _exc: True,
        )
        await self._retry(
            lambda: self._ledger.record_delivery(alert.alert_id, name, DeliveryState.DEAD_LETTERED),
            what="recording a dead-lettered delivery",
        )

    def _letter(self, alert: Alert, name: str, url: str | None, reason: str, report: DeliveryReport) -> AlertDeadLetter:
        return AlertDeadLetter(
            alert=alert,
            webhook=name,
            url=url,
            reason=reason,  # type: ignore[arg-type]
            attempts=report.attempts,
            last_status=report.last_status,
            last_error=report.last_error,
            failed_at=self._clock(),
        )
