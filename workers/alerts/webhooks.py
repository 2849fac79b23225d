"""Webhook delivery: its own agent on the ``alerts`` topic, so a slow receiver never holds up pages.

Every alert is POSTed, as the JSON on the topic, to each webhook its rule names, with

* ``X-Wirefeed-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">``, keyed with the
  webhook's secret (setting ``ALERT_WEBHOOK_SECRETS``); :func:`verify` is the receiver's check;
* ``X-Wirefeed-Timestamp`` (Unix seconds of this attempt: receivers refuse old ones, which stops
  a captured request from being replayed later);
* ``X-Wirefeed-Alert-Id``: delivery is at least once, so receivers deduplicate on it.

A 2xx answer is success. 408, 429, 5xx and network errors are retried with capped exponential
backoff and full jitter (``Retry-After`` is honoured within the cap) for ``webhook_give_up_after_s``
(30 minutes) from the first failed attempt, so that a receiver being redeployed or restarted loses
nothing; so is a webhook this worker's rules file does not name yet, or whose secret it lacks (a
rules change reaches the pods one by one). Any other answer is final (redirects included: a POST
must not be silently turned into a GET elsewhere), and so is a delivery that cannot be made at all:
a URL the HTTP client refuses, or a receiver on a loopback, link-local, private, unspecified or
multicast address (checked on the addresses the host resolves to when connecting, so a name
rebound to an internal address is refused too; setting ``alert_webhook_allow_private_addresses``
allows them). A delivery given up on goes to ``alerts.dlq`` with the alert; a record of the
topic that is not an alert at all goes there with its bytes;
``wirefeed alerts redrive`` queues such deliveries again once the receiver is fixed.

Deliveries wait in Redis, one queue per webhook, not in the agent: the agent queues each (alert,
webhook) of a record and acknowledges the record, and every worker runs a lane per webhook that
takes due deliveries from its queue (``agent.WebhookLanes``). So a receiver that is slow or down
for half an hour holds up only its own deliveries, never the topic's partitions nor the other
receivers, and a Faust rebalance never waits for a retry schedule. Queueing is once per (alert,
webhook): a record read twice (republished after a crash, read by the groups of two pipeline
versions, redelivered) finds its delivery queued or done and adds nothing. A worker takes a
delivery with a lease (the attempt's timeout and a margin); a worker that dies while attempting
leaves the lease to lapse, and the delivery is taken again by the next lane that looks; a live
one renews it while it works (a dead letter may wait out a Kafka outage). The
window between a receiver's 2xx and its record here is the at-least-once part receivers dedupe.

Keys (``{p}`` is ``WIREFEED_REDIS_PREFIX``); :class:`DeliveryQueue` is the only writer (but for
the alert ledger's firing, which deletes the outcomes of an earlier firing):

| key | type | content | lifetime |
| --- | --- | --- | --- |
| ``{p}:alert:{alert_id}:webhooks`` | hash | webhook name -> ``delivered`` or ``dead_lettered`` (the final outcome; also in ``workers/alerts/ledger.py``'s table) | ``webhook_marker_ttl_days``: longer than the ``alerts`` topic keeps a record, so a re-read of the topic never delivers again; deleted when the alert fires again (its fired marker expired), so that the new firing is delivered |
| ``{p}:webhook:{name}:due`` | sorted set | alert ids queued for the webhook, by when (Unix ms) they are due: their next attempt, or the end of the lease of the worker attempting them | emptied as deliveries end; ``webhook_marker_ttl_days`` from the last alert queued |
| ``{p}:webhook:{name}:alert:{alert_id}`` | hash | ``body`` (the alert as on the topic), ``attempts`` (failed so far), ``first_failure_ms``, ``last_status``, ``last_error``, ``lease`` (the token of the attempt under way) | deleted when the delivery ends; ``webhook_marker_ttl_days`` at most |
| ``{p}:webhooks`` | set | names of the webhooks with a ``due`` set, so that every worker runs a lane for each | ``webhook_marker_ttl_days`` from the last alert queued |

Deliveries to a receiver that is down for long wait in Redis, not in memory. They rely on Redis
keeping its writes, as the rest of the worker's state does (``appendonly`` in the shipped stacks).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import random
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import partial
from ipaddress import ip_address
from typing import Protocol

import aiohttp
import redis.asyncio as aioredis
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver
from pydantic import SecretStr, ValidationError
from yarl import URL

from workers import __version__
from workers.alerts.engine import RulesFile
from workers.alerts.ledger import AlertLedger, DeliveryState
from workers.alerts.messages import (
    AlertDeadLetter,
    AlertLetter,
    DeadLetterReason,
    UnreadableAlert,
    read_alert,
)
from workers.alerts.rules import WebhookTarget, is_public_address
from workers.cancelling import cancel_and_wait
from workers.metrics import PipelineMetrics
from workers.models import SourcePosition
from workers.retry import Retrying
from workers.settings import Settings

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Wirefeed-Signature"
TIMESTAMP_HEADER = "X-Wirefeed-Timestamp"
ALERT_ID_HEADER = "X-Wirefeed-Alert-Id"
_RETRYABLE_4XX = {408, 429}
# A receiver writes the reason phrase of its answer, which ends up in a dead letter.
_MAX_ERROR_CHARS = 1000
# A lease covers the POST (bounded by webhook_timeout_s) and the Redis writes after it, with room
# for the clocks of two workers that differ by some seconds.
_LEASE_MARGIN_S = 30.0


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()


def verify(secret: bytes, *, timestamp: str, signature: str, body: bytes, now: float, tolerance_s: float = 300) -> bool:
    """A receiver's check of a request: the signature is ours and the request is recent."""
    try:
        sent_at = int(timestamp)
    except ValueError:
        return False
    # bytes: compare_digest refuses str with other than ASCII in it, and a forged header may have some
    expected = sign(secret, sent_at, body).encode()
    return abs(now - sent_at) <= tolerance_s and hmac.compare_digest(expected, signature.encode("utf-8", "surrogatepass"))


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    give_up_after_s: float
    """Retry span of a delivery, from its first failed attempt."""
    backoff_base_s: float
    backoff_max_s: float
    timeout_s: float

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(
            give_up_after_s=settings.webhook_give_up_after_s,
            backoff_base_s=settings.webhook_backoff_base_s,
            backoff_max_s=settings.webhook_backoff_max_s,
            timeout_s=settings.webhook_timeout_s,
        )

    def delay(self, failed_attempts: int, rng: random.Random, *, retry_after_s: float | None = None) -> float:
        """Pause before the next attempt: full jitter over the exponential ceiling, so that
        the retries of many alerts to a receiver that just came back do not arrive together."""
        ceiling = min(self.backoff_max_s, self.backoff_base_s * 2 ** min(failed_attempts - 1, 64))
        jittered = rng.uniform(0, ceiling)
        return min(self.backoff_max_s, max(jittered, retry_after_s or 0.0))

    def gives_up(self, *, first_failure_s: float, next_attempt_s: float) -> bool:
        return next_attempt_s > first_failure_s + self.give_up_after_s


@dataclass(frozen=True, slots=True)
class AttemptResult:
    status: int | None
    """HTTP status; None when no answer came (refused connection, timeout)."""
    error: str | None
    retry_after_s: float | None = None
    refusal: DeadLetterReason | None = None
    """Why the POST was not made, for good: ``rejected`` (a URL the HTTP client cannot use) or
    ``refused_address``."""

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def rejected(self) -> bool:
        """Retrying cannot help: the receiver refused for good (a 4xx other than 408/429, or a
        redirect), or the POST could not be made (``refusal``)."""
        return self.refusal is not None or (
            self.status is not None and 300 <= self.status < 500 and self.status not in _RETRYABLE_4XX
        )


class RefusedAddressError(Exception):
    """A webhook's host is, or resolves only to, addresses the worker does not POST to. Not an
    OSError: aiohttp reports those as a DNS failure, which is retried as an outage."""


class PublicAddressResolver(AbstractResolver):
    """aiohttp's resolver keeping only the public addresses a host resolves to (see
    :func:`workers.alerts.rules.is_public_address`). It runs when a connection is made, so the
    addresses checked are the ones connected to, whatever they resolved to when the rules were
    validated."""

    def __init__(self, resolver: AbstractResolver) -> None:
        self._resolver = resolver

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        resolved = await self._resolver.resolve(host, port, family)
        public = [address for address in resolved if is_public_address(ip_address(address["host"]))]
        if not public:
            addresses = ", ".join(sorted({address["host"] for address in resolved}))
            raise RefusedAddressError(f"{host} resolves to no public address ({addresses})")
        return public

    async def close(self) -> None:
        await self._resolver.close()


# Webhook hosts are resolved on threads of their own. aiohttp's resolver runs getaddrinfo on the
# event loop's default executor, which also runs every page's dedup and alert matching: six
# webhook hosts whose DNS did not answer (20 s a lookup) held all its threads, and the pipeline
# stalled with them, healthy webhooks too. A lookup that hangs now holds only a webhook thread.
_RESOLVER_THREADS = 4
_RESOLVER_EXECUTOR = ThreadPoolExecutor(max_workers=_RESOLVER_THREADS, thread_name_prefix="webhook-dns")


class _ResolverLoop:
    """The event loop's two resolving calls that aiohttp's ThreadedResolver makes, on the webhooks'
    own threads."""

    async def getaddrinfo(
        self, host: str, port: int, *, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0  # noqa: A002
    ) -> list:
        lookup = partial(socket.getaddrinfo, host, port, family, type, proto, flags)
        return await asyncio.get_running_loop().run_in_executor(_RESOLVER_EXECUTOR, lookup)

    async def getnameinfo(self, sockaddr: tuple, flags: int = 0) -> tuple[str, str]:
        return await asyncio.get_running_loop().run_in_executor(_RESOLVER_EXECUTOR, socket.getnameinfo, sockaddr, flags)


def webhook_connector(*, allow_private_addresses: bool) -> aiohttp.TCPConnector:
    """The connector of the session a :class:`WebhookSender` posts with (given the same setting)."""
    resolver = ThreadedResolver(loop=_ResolverLoop())  # type: ignore[arg-type] - the two calls it makes
    return aiohttp.TCPConnector(resolver=resolver if allow_private_addresses else PublicAddressResolver(resolver))


class WebhookSender:
    """One signed POST at a time; retrying is the dispatcher's. Unless ``allow_private_addresses``,
    ``session`` must connect through :func:`webhook_connector`: a host that is an IP address is
    checked here, a name by the connector's resolver."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        timeout_s: float,
        allow_private_addresses: bool,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._session = session
        self._timeout_s = timeout_s
        self._allow_private_addresses = allow_private_addresses
        self._wall_clock = wall_clock

    async def post(self, target: WebhookTarget, secret: SecretStr, *, alert_id: str, body: bytes) -> AttemptResult:
        timestamp = int(self._wall_clock())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"wirefeed/{__version__}",
            SIGNATURE_HEADER: sign(secret.get_secret_value().encode(), timestamp, body),
            TIMESTAMP_HEADER: str(timestamp),
            ALERT_ID_HEADER: alert_id,
        }
        try:
            if not self._allow_private_addresses:
                _refuse_private_literal(URL(target.url).host)
            async with self._session.post(
                target.url,
                data=body,
                headers=headers,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=self._timeout_s),
            ) as response:
                if 200 <= response.status < 300:
                    return AttemptResult(response.status, None)
                error = f"{response.status} {response.reason or ''}".strip()[:_MAX_ERROR_CHARS]
                return AttemptResult(response.status, error, _retry_after_s(response.headers.get("Retry-After")))
        except RefusedAddressError as exc:
            return AttemptResult(None, str(exc)[:_MAX_ERROR_CHARS], refusal="refused_address")
        except aiohttp.InvalidURL as exc:
            return AttemptResult(None, _described(exc, target.url), refusal="rejected")
        except (aiohttp.ClientError, TimeoutError) as exc:
            return AttemptResult(None, _described(exc, target.url))
        except Exception as exc:  # noqa: BLE001 - not the network: the same request fails the same way
            # (a host IDNA cannot encode, say). Escaping, it would leave the lease to lapse and the
            # delivery to be taken again, for ever, without a dead letter.
            log.warning("webhook %s: the POST could not be made", target.name, exc_info=True)
            return AttemptResult(None, _described(exc, target.url), refusal="rejected")


def _origin_of(url: str | None) -> str | None:
    """A webhook's URL as its dead letters name it: its origin, as chat-tool webhooks carry their
    token in the path ("https://hooks.../services/T0/B0/token")."""
    if url is None:
        return None
    try:
        return str(URL(url).origin())
    except ValueError:  # a URL the client could not use
        return None


def _described(exc: Exception, url: str) -> str:
    """The error, for dead letters and logs, with the webhook's URL cut to its origin: aiohttp's
    messages name the whole URL ("Connection timeout to host https://hooks.../T0/B0/token"), and
    chat-tool webhooks carry their token in the path."""
    described = f"{type(exc).__name__}: {exc}"
    try:
        parsed = URL(url)
        spellings, origin = {url, str(parsed)}, str(parsed.origin())
    except ValueError:  # a URL the client could not use: the error names it as written
        spellings, origin = {url}, "the webhook's URL"
    for spelling in spellings:
        described = described.replace(spelling, origin)
    return described[:_MAX_ERROR_CHARS]


def _refuse_private_literal(host: str | None) -> None:
    """A host written as an IP address never reaches the connector's resolver."""
    try:
        address = ip_address(host or "")
    except ValueError:
        return  # a name: the resolver checks what it resolves to
    if not is_public_address(address):
        raise RefusedAddressError(f"{host} is not a public address")


def _retry_after_s(value: str | None) -> float | None:
    """``Retry-After`` in seconds; the HTTP-date form is rare on webhooks and ignored."""
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


# --- the queue in Redis ----------------------------------------------------------------------

_QUEUE = """
local markers, entry, due, lanes = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local webhook, alert_id, body, now_ms, ttl, redrive = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local state = redis.call('HGET', markers, webhook)
if state then
  if redrive ~= '1' or state ~= 'dead_lettered' then
    return state
  end
  redis.call('HDEL', markers, webhook)
end
if redis.call('EXISTS', entry) == 1 then
  return 'queued_already'
end
redis.call('HSET', entry, 'body', body, 'attempts', 0)
redis.call('EXPIRE', entry, ttl)
redis.call('ZADD', due, now_ms, alert_id)
redis.call('EXPIRE', due, ttl)
redis.call('SADD', lanes, webhook)
redis.call('EXPIRE', lanes, ttl)
return 'queued'
"""

_LEASE = """
local due, entry = KEYS[1], KEYS[2]
local alert_id, now_ms, lease_end_ms, token = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
local due_at = redis.call('ZSCORE', due, alert_id)
if not due_at or tonumber(due_at) > now_ms then
  return false  -- taken by another worker since it was listed
end
local pending = redis.call('HMGET', entry, 'body', 'attempts', 'first_failure_ms')
if not pending[1] then
  -- its entry expired: no worker ran for its whole lifetime
  redis.call('ZREM', due, alert_id)
  return false
end
redis.call('ZADD', due, lease_end_ms, alert_id)
redis.call('HSET', entry, 'lease', token)
return pending
"""

# A 2xx is the truth whoever holds the lease: another worker still attempting it (its own lease
# lapsed meanwhile) finds the entry gone and records nothing.
_DELIVERED = """
local markers, entry, due = KEYS[1], KEYS[2], KEYS[3]
redis.call('HSET', markers, ARGV[1], 'delivered')
redis.call('EXPIRE', markers, ARGV[3])
redis.call('DEL', entry)
redis.call('ZREM', due, ARGV[2])
"""

_DEAD_LETTERED = """
local markers, entry, due = KEYS[1], KEYS[2], KEYS[3]
if redis.call('HGET', entry, 'lease') ~= ARGV[4] then
  return 0  -- another worker took the delivery over (or delivered it): its outcome stands
end
redis.call('HSET', markers, ARGV[1], 'dead_lettered')
redis.call('EXPIRE', markers, ARGV[3])
redis.call('DEL', entry)
redis.call('ZREM', due, ARGV[2])
return 1
"""

_RETRY_LATER = """
local due, entry = KEYS[1], KEYS[2]
local alert_id, token, at_ms = ARGV[1], ARGV[2], ARGV[3]
if redis.call('HGET', entry, 'lease') ~= token then
  return 0
end
redis.call('HSET', entry, 'attempts', ARGV[4], 'first_failure_ms', ARGV[5], 'last_status', ARGV[6], 'last_error', ARGV[7])
redis.call('HDEL', entry, 'lease')
redis.call('ZADD', due, 'XX', at_ms, alert_id)
return 1
"""

# Keeps the lease of an attempt still under way (a dead letter held up by a Kafka outage): only
# its holder's, whose token is on the entry.
_RENEW = """
if redis.call('HGET', KEYS[2], 'lease') ~= ARGV[2] then
  return 0
end
redis.call('ZADD', KEYS[1], 'XX', ARGV[3], ARGV[1])
return 1
"""

# Atomic with _QUEUE's SADD, so that a webhook with deliveries due is never left without lanes.
_RETIRE = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
redis.call('SREM', KEYS[2], ARGV[1])
return 1
"""


class Queued(StrEnum):
    """What queueing a delivery did."""

    QUEUED = "queued"
    QUEUED_ALREADY = "queued_already"
    DELIVERED = DeliveryState.DELIVERED.value
    DEAD_LETTERED = DeliveryState.DEAD_LETTERED.value


@dataclass(frozen=True, slots=True)
class PendingDelivery:
    """A delivery taken from its queue by this worker, until its lease ends."""

    webhook: str
    alert_id: str
    body: bytes
    failed_attempts: int
    first_failure_s: float | None
    lease: str


class DeliveryQueue:
    """The deliveries waiting, per webhook, and their final outcomes (see the module's key table).
    Times are Unix seconds from the caller's clock (workers' clocks may differ by less than the
    lease margin)."""

    def __init__(
        self, client: aioredis.Redis, ledger: AlertLedger, *, prefix: str, marker_ttl_s: int, lease_s: float
    ) -> None:
        self._redis = client
        self._ledger = ledger
        self._prefix = prefix
        self._marker_ttl_s = marker_ttl_s
        self._lease_s = lease_s
        self._queue = client.register_script(_QUEUE)
        self._lease = client.register_script(_LEASE)
        self._delivered = client.register_script(_DELIVERED)
        self._dead_lettered = client.register_script(_DEAD_LETTERED)
        self._retry_later = client.register_script(_RETRY_LATER)
        self._retire = client.register_script(_RETIRE)
        self._renew = client.register_script(_RENEW)

    @classmethod
    def from_settings(cls, client: aioredis.Redis, settings: Settings) -> DeliveryQueue:
        return cls(
            client,
            AlertLedger.from_settings(client, settings),
            prefix=settings.redis_prefix,
            marker_ttl_s=int(timedelta(days=settings.webhook_marker_ttl_days).total_seconds()),
            lease_s=settings.webhook_timeout_s + _LEASE_MARGIN_S,
        )

    @property
    def lanes_key(self) -> str:
        return f"{self._prefix}:webhooks"

    def due_key(self, webhook: str) -> str:
        return f"{self._prefix}:webhook:{webhook}:due"

    def entry_key(self, webhook: str, alert_id: str) -> str:
        return f"{self._prefix}:webhook:{webhook}:alert:{alert_id}"

    async def queue(self, alert_id: str, webhook: str, body: bytes, *, now_s: float, redrive: bool = False) -> Queued:
        """Queue the delivery, due now, unless it is queued or done already. ``redrive``: a
        delivery that was dead-lettered is queued again (its marker goes)."""
        state = await self._queue(
            keys=[
                self._ledger.webhooks_key(alert_id), self.entry_key(webhook, alert_id), self.due_key(webhook), self.lanes_key
            ],
            args=[webhook, alert_id, body, _ms(now_s), self._marker_ttl_s, "1" if redrive else "0"],
        )
        return Queued(state.decode())

    async def webhooks(self) -> set[str]:
        """Webhooks that may have deliveries queued."""
        return {name.decode() for name in await self._redis.smembers(self.lanes_key)}

    async def lease_due(self, webhook: str, *, now_s: float, limit: int) -> list[PendingDelivery]:
        """Up to ``limit`` deliveries due, each leased to the caller until ``now_s`` + the lease."""
        due_key = self.due_key(webhook)
        leased = []
        for member in await self._redis.zrangebyscore(due_key, "-inf", _ms(now_s), start=0, num=limit):
            alert_id, token = member.decode(), uuid.uuid4().hex
            pending = await self._lease(
                keys=[due_key, self.entry_key(webhook, alert_id)],
                args=[alert_id, _ms(now_s), _ms(now_s + self._lease_s), token],
            )
            if pending is not None:
                body, attempts, first_failure_ms = pending
                leased.append(
                    PendingDelivery(
                        webhook=webhook,
                        alert_id=alert_id,
                        body=body,
                        failed_attempts=int(attempts or 0),
                        first_failure_s=int(first_failure_ms) / 1000 if first_failure_ms else None,
                        lease=token,
                    )
                )
        return leased

    async def delivered(self, pending: PendingDelivery) -> None:
        await self._delivered(keys=self._outcome_keys(pending), args=[pending.webhook, pending.alert_id, self._marker_ttl_s])

    async def dead_lettered(self, pending: PendingDelivery) -> bool:
        """Record the delivery given up on; False when another worker had taken it over."""
        return bool(
            await self._dead_lettered(
                keys=self._outcome_keys(pending), args=[pending.webhook, pending.alert_id, self._marker_ttl_s, pending.lease]
            )
        )

    def _outcome_keys(self, pending: PendingDelivery) -> list[str]:
        return [
            self._ledger.webhooks_key(pending.alert_id),
            self.entry_key(pending.webhook, pending.alert_id),
            self.due_key(pending.webhook),
        ]

    async def retry_later(
        self, pending: PendingDelivery, *, at_s: float, failed_attempts: int, first_failure_s: float, result: AttemptResult
    ) -> None:
        await self._retry_later(
            keys=[self.due_key(pending.webhook), self.entry_key(pending.webhook, pending.alert_id)],
            args=[
                pending.alert_id, pending.lease, _ms(at_s), failed_attempts, _ms(first_failure_s),
                "" if result.status is None else result.status, result.error or "",
            ],
        )

    async def renew(self, pending: PendingDelivery, *, now_s: float) -> bool:
        """Extend the caller's lease to ``now_s`` + the lease; False when it is no longer the
        caller's (it lapsed and another worker took the delivery)."""
        return bool(
            await self._renew(
                keys=[self.due_key(pending.webhook), self.entry_key(pending.webhook, pending.alert_id)],
                args=[pending.alert_id, pending.lease, _ms(now_s + self._lease_s)],
            )
        )

    @contextlib.asynccontextmanager
    async def holding(self, pending: PendingDelivery, wall_clock: Callable[[], float]) -> AsyncIterator[None]:
        """The lease renewed every third of its length while the caller works on the delivery: a
        POST is bounded, but publishing its dead letter waits out a Kafka outage, and a lapsed
        lease would let another lane POST and dead-letter it again meanwhile."""

        async def renew_until_cancelled() -> None:
            while True:
                await asyncio.sleep(self._lease_s / 3)
                try:
                    await self.renew(pending, now_s=wall_clock())
                except Exception:  # noqa: BLE001 - Redis down too: the lease may lapse (at least once)
                    log.warning("webhook %s, alert %s: lease not renewed", pending.webhook, pending.alert_id, exc_info=True)

        renewing = asyncio.create_task(renew_until_cancelled())
        try:
            yield
        finally:
            await cancel_and_wait([renewing])

    async def retire(self, webhook: str) -> bool:
        """Forget the webhook's lanes if nothing is queued for it (True), atomically with queueing."""
        return bool(await self._retire(keys=[self.due_key(webhook), self.lanes_key], args=[webhook]))


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


# --- delivery --------------------------------------------------------------------------------


class AlertDeadLetterPublisher(Protocol):
    """Sends to ``alerts.dlq`` and returns once the broker has acknowledged the record."""

    async def publish_dead_letter(self, letter: AlertLetter) -> None: ...


class WebhookDispatcher:
    """Queues the deliveries of an alert read from the ``alerts`` topic, and makes one attempt at a
    delivery a lane took from its queue."""

    def __init__(
        self,
        rules: RulesFile,
        *,
        secrets: Mapping[str, SecretStr],
        queue: DeliveryQueue,
        sender: WebhookSender,
        policy: RetryPolicy,
        dead_letters: AlertDeadLetterPublisher,
        retry_backoff_max_s: float,
        metrics: PipelineMetrics,
        wall_clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self._rules = rules
        self._attempts = metrics.webhook_attempts
        self._secrets = secrets
        self._queue = queue
        self._sender = sender
        self._policy = policy
        self._dead_letters = dead_letters
        self._retry = Retrying(retry_backoff_max_s)
        self._wall_clock = wall_clock
        self._rng = rng or random.Random()

    async def queue(self, value: bytes | None, *, key: bytes | None, source: SourcePosition) -> list[str]:
        """``value``: the record's, POSTed later as it is, so receivers get the topic's bytes (with
        any field a newer release added, which this one does not read). Returns the webhooks that
        got a new delivery queued; a record that is not an alert goes to ``alerts.dlq`` as it is."""
        body = value or b""
        try:
            alert = read_alert(body)
        except ValidationError as exc:
            letter = UnreadableAlert.of(
                key, body, source=source, error=str(exc), failed_at=datetime.fromtimestamp(self._wall_clock(), UTC)
            )
            log.error("%s, dead-lettered: %s", letter.subject, exc)
            published = await self._publish_dead_letter(letter)
            self._attempts.labels("", "unreadable_alert" if published else "letter_lost").inc()
            return []
        queued = []
        for webhook in alert.webhooks:
            queue_delivery = partial(self._queue.queue, alert.alert_id, webhook, body, now_s=self._wall_clock())
            if await self._retry(queue_delivery, what="queueing a webhook delivery") is Queued.QUEUED:
                queued.append(webhook)
        return queued

    async def attempt(self, pending: PendingDelivery) -> None:
        """One attempt, then the delivery is recorded, queued for later or dead-lettered; the
        lease is kept meanwhile."""
        async with self._queue.holding(pending, self._wall_clock):
            await self._attempt(pending)

    async def _attempt(self, pending: PendingDelivery) -> None:
        target = self._rules.current().ruleset.webhook(pending.webhook)
        secret = self._secrets.get(target.secret) if target is not None else None
        reason: DeadLetterReason
        if target is None:
            # Retried like a receiver that is down: during a rolling deploy, or while a changed
            # rules file reaches each pod, this worker's rules may not have the webhook yet.
            result, reason = AttemptResult(None, "not in the rules file"), "unknown_webhook"
        elif secret is None:
            result, reason = AttemptResult(None, f"no secret {target.secret!r}"), "missing_secret"
        else:
            result = await self._sender.post(target, secret, alert_id=pending.alert_id, body=pending.body)
            if result.delivered:
                await self._retry(lambda: self._queue.delivered(pending), what="recording a delivery")
                self._attempts.labels(pending.webhook, "delivered").inc()
                return
            if result.rejected:
                await self._give_up(pending, target.url, result.refusal or "rejected", result, pending.failed_attempts + 1)
                return
            reason = "retries_exhausted"
        url = target.url if target is not None else None
        attempts = pending.failed_attempts + 1
        now_s = self._wall_clock()
        first_failure_s = pending.first_failure_s if pending.first_failure_s is not None else now_s
        delay_s = self._policy.delay(attempts, self._rng, retry_after_s=result.retry_after_s)
        if self._policy.gives_up(first_failure_s=first_failure_s, next_attempt_s=now_s + delay_s):
            await self._give_up(pending, url, reason, result, attempts)
            return
        log.warning(
            "webhook %s, alert %s: attempt %d failed (%s), retrying in %.1f s",
            pending.webhook, pending.alert_id, attempts, result.error, delay_s,
        )
        await self._retry(
            lambda: self._queue.retry_later(
                pending, at_s=now_s + delay_s, failed_attempts=attempts, first_failure_s=first_failure_s, result=result
            ),
            what="queueing a webhook retry",
        )
        self._attempts.labels(pending.webhook, "retry").inc()

    async def _give_up(
        self, pending: PendingDelivery, url: str | None, reason: DeadLetterReason, result: AttemptResult, attempts: int
    ) -> None:
        letter = AlertDeadLetter(
            alert=read_alert(pending.body),
            webhook=pending.webhook,
            url=_origin_of(url),
            reason=reason,
            attempts=attempts,
            last_status=result.status,
            last_error=result.error,
            failed_at=datetime.fromtimestamp(self._wall_clock(), UTC),
        )
        still_ours = await self._retry(
            lambda: self._queue.renew(pending, now_s=self._wall_clock()), what="checking a delivery's lease"
        )
        if not still_ours:
            return  # it lapsed and another worker took the delivery over: its outcome stands
        log.error("webhook %s, alert %s: %s (%s), dead-lettered", pending.webhook, pending.alert_id, reason, result.error)
        published = await self._publish_dead_letter(letter)
        await self._retry(lambda: self._queue.dead_lettered(pending), what="recording a dead-lettered delivery")
        self._attempts.labels(pending.webhook, "dead_lettered" if published else "letter_lost").inc()

    async def _publish_dead_letter(self, letter: AlertLetter) -> bool:
        """Whether ``alerts.dlq`` took the letter (whole or stripped)."""
        try:
            await self._retry(lambda: self._dead_letters.publish_dead_letter(letter), what="publishing an alert dead letter")
        except Exception as exc:  # noqa: BLE001 - not an outage: alerts.dlq refuses this letter for good
            # (too large, not authorised...). Retrying it would keep its lane slot for ever; what
            # identifies the alert fits any topic that takes records at all.
            log.exception("dead letter of %s refused; publishing it stripped", letter.subject)
            stripped = letter.stripped(f"{exc!r}")
            try:
                await self._retry(
                    lambda: self._dead_letters.publish_dead_letter(stripped), what="publishing a stripped alert dead letter"
                )
            except Exception:  # noqa: BLE001 - the topic takes no letter at all: holding on would stop the lane
                log.exception(
                    "alerts.dlq refused even the stripped dead letter: %s is given up with NO dead letter (it is "
                    "still on the alerts topic, and an alert in the Redis stream too)",
                    letter.subject,
                )
                return False
        return True
