"""Retrying writes through a transient outage of Redis or Kafka.

Such an outage is not the page's fault, so the page is neither dead-lettered nor acknowledged:
the write is retried with capped exponential backoff until it succeeds or the worker stops.
Consumer lag grows meanwhile, which is what monitoring should alert on.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import redis.exceptions
from aiokafka.errors import KafkaError, KafkaTimeoutError

T = TypeVar("T")
log = logging.getLogger(__name__)


class Contention(RuntimeError):
    """Lost an optimistic-concurrency race against another worker too often in a row; trying
    again later wins it."""


_TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    Contention,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.BusyLoadingError,
    # a replica not yet promoted after a failover, or a full Redis: writes succeed again later
    redis.exceptions.ReadOnlyError,
    redis.exceptions.MasterDownError,
    redis.exceptions.TryAgainError,
    redis.exceptions.OutOfMemoryError,
    KafkaTimeoutError,
    ConnectionError,
    TimeoutError,
)


# Refusals redis-py has no class for, each a state of the server that passes: a replica link
# down under min-replicas-to-write, a failing disk under stop-writes-on-bgsave-error, another
# client's slow script. A plain ResponseError otherwise, and every page would be dead-lettered
# and acknowledged at full speed while it lasts.
_TRANSIENT_REPLY_CODES = frozenset({"NOREPLICAS", "MISCONF", "BUSY"})
# redis-py rewrites an error inside a MULTI as "Command # 1 (SET ...) of pipeline caused error:
# ('NOREPLICAS ...',)": the code is no longer the message's first word. It writes the error's
# args as Python does, in double quotes when the text has an apostrophe (MISCONF's "it's").
_PIPELINE_REPLY = re.compile(r"of pipeline caused error: \(['\"]([A-Z]+) ")

_MAX_CAUSES = 4


def is_transient(exc: BaseException) -> bool:
    # aiokafka marks the errors a retry can cure; a record too large for the topic is not one.
    # Faust's producer wraps them (ProducerSendError from a KafkaTimeoutError): the cause decides.
    cause: BaseException | None = exc
    for _ in range(_MAX_CAUSES):
        if cause is None:
            return False
        if isinstance(cause, _TRANSIENT_ERRORS) or (isinstance(cause, KafkaError) and cause.retriable):
            return True
        if isinstance(cause, redis.exceptions.ResponseError) and _reply_code(cause) in _TRANSIENT_REPLY_CODES:
            return True
        cause = cause.__cause__
    return False


def _reply_code(error: redis.exceptions.ResponseError) -> str:
    message = str(error)
    match = _PIPELINE_REPLY.search(message)
    return match.group(1) if match else message.split(" ", 1)[0]


async def until_done(
    operation: Callable[[], Awaitable[T]],
    *,
    what: str,
    backoff_max_s: float,
    retry_on: Callable[[BaseException], bool] = is_transient,
) -> T:
    delay = 0.1
    attempt = 1
    while True:
        try:
            return await operation()
        except Exception as exc:
            if not retry_on(exc):
                raise
            # an outage is expected to pass; anything else retried is a fault to see, with its trace
            outage = is_transient(exc)
            log.log(
                logging.WARNING if outage else logging.ERROR,
                "%s failed (attempt %d, retrying in %.1f s): %r", what, attempt, delay, exc,
                exc_info=not outage,
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, backoff_max_s)
            attempt += 1


@dataclass(frozen=True, slots=True)
class Retrying:
    """``until_done`` of an outage with one backoff cap, for a class that retries many writes."""

    backoff_max_s: float

    async def __call__(self, operation: Callable[[], Awaitable[T]], *, what: str) -> T:
        return await until_done(operation, what=what, backoff_max_s=self.backoff_max_s)
