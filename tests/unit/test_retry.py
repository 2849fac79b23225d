"""Which errors are an outage (retried until they pass) and which are the page's (raised)."""

from __future__ import annotations

import asyncio
import logging

import pytest
import redis.exceptions
from aiokafka.errors import KafkaTimeoutError, MessageSizeTooLargeError, NodeNotReadyError, UnknownTopicOrPartitionError
from faust.exceptions import ProducerSendError

from workers import retry
from workers.retry import Contention, is_transient, until_done


def error_id(error: BaseException) -> str:
    """A reply error by its text (they share one class), any other by its class."""
    return str(error)[:40] if type(error) is redis.exceptions.ResponseError else type(error).__name__


@pytest.mark.parametrize(
    "error",
    [
        redis.exceptions.ConnectionError("connection refused"),
        redis.exceptions.TimeoutError("timed out"),
        redis.exceptions.BusyLoadingError("LOADING Redis is loading the dataset in memory"),
        redis.exceptions.ReadOnlyError("READONLY You can't write against a read only replica."),
        redis.exceptions.OutOfMemoryError("OOM command not allowed when used memory > 'maxmemory'."),
        redis.exceptions.MasterDownError("MASTERDOWN Link with MASTER is down"),
        redis.exceptions.ResponseError("NOREPLICAS Not enough good replicas to write. script: 5e1f, on @user_script:3."),
        redis.exceptions.ResponseError("MISCONF Redis is configured to save RDB snapshots, but it's currently unable"),
        redis.exceptions.ResponseError("BUSY Redis is busy running a script."),
        redis.exceptions.ResponseError(
            "Command # 1 (SET wf:st:df:en:20780...) of pipeline caused error: ('MISCONF Redis is configured to save',)"
        ),
        # as redis-py writes MISCONF's own text (the error's args): with its apostrophe, in double quotes
        redis.exceptions.ResponseError(
            "Command # 1 (INCRBY wf:st:df:en:20780 x 1) of pipeline caused error: "
            + repr(("MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk.",))
        ),
        KafkaTimeoutError(),
        NodeNotReadyError(),
        Contention("lost the race five times"),
    ],
    ids=error_id,
)
def test_an_outage_is_transient(error: BaseException) -> None:
    assert is_transient(error)


@pytest.mark.parametrize(
    "error",
    [
        redis.exceptions.ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value"),
        redis.exceptions.ResponseError("BUSYKEY Target key name already exists."),
        redis.exceptions.ResponseError("Command # 2 (HSET wf:a BUSY 1) of pipeline caused error: ('WRONGTYPE Operation',)"),
        redis.exceptions.DataError("Invalid input of type: 'dict'"),
        MessageSizeTooLargeError(),
        ValueError("a bug"),
    ],
    ids=error_id,
)
def test_a_fault_of_the_data_or_the_code_is_not(error: BaseException) -> None:
    assert not is_transient(error)


def wrapped(error: BaseException) -> BaseException:
    """``error`` as Faust's producer raises it (``ProducerSendError(...) from error``)."""
    try:
        raise ProducerSendError(f"Error while sending: {error!r}") from error
    except ProducerSendError as outer:
        return outer


def test_the_cause_of_a_wrapped_error_decides() -> None:
    assert is_transient(wrapped(KafkaTimeoutError()))
    assert is_transient(wrapped(UnknownTopicOrPartitionError()))  # metadata not had: the broker is away
    assert not is_transient(wrapped(MessageSizeTooLargeError()))
    assert not is_transient(ProducerSendError("no cause"))


def test_until_done_retries_an_outage_with_growing_capped_delays(monkeypatch: pytest.MonkeyPatch) -> None:
    delays: list[float] = []

    async def no_wait(delay: float) -> None:
        delays.append(delay)

    monkeypatch.setattr(retry.asyncio, "sleep", no_wait)
    failures = [redis.exceptions.ReadOnlyError("READONLY")] * 5

    async def write() -> str:
        if failures:
            raise failures.pop()
        return "written"

    assert asyncio.run(until_done(write, what="a write", backoff_max_s=0.5)) == "written"
    assert delays == [0.1, 0.2, 0.4, 0.5, 0.5]


def test_until_done_raises_what_is_not_an_outage_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    async def must_not_wait(delay: float) -> None:
        raise AssertionError("a data error was retried")

    monkeypatch.setattr(retry.asyncio, "sleep", must_not_wait)

    async def write() -> None:
        raise redis.exceptions.ResponseError("WRONGTYPE")

    with pytest.raises(redis.exceptions.ResponseError):
        asyncio.run(until_done(write, what="a write", backoff_max_s=0.5))


def test_a_long_chain_of_faults_is_not_an_outage() -> None:
    error: BaseException = ValueError("root")
    for n in range(5):
        try:
            raise RuntimeError(f"wrapper {n}") from error
        except RuntimeError as outer:
            error = outer
    assert not is_transient(error)


def test_a_retried_fault_is_logged_as_an_error_with_its_trace_an_outage_as_a_warning_without(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def no_wait(_delay: float) -> None:
        pass

    monkeypatch.setattr(retry.asyncio, "sleep", no_wait)
    failures = [ValueError("a bug"), redis.exceptions.ConnectionError("refused")]

    async def write() -> str:
        if failures:
            raise failures.pop()
        return "written"

    with caplog.at_level(logging.WARNING, logger="workers.retry"):
        assert asyncio.run(until_done(write, what="w", backoff_max_s=1, retry_on=lambda _e: True)) == "written"
    outage, fault = caplog.records
    assert outage.levelno == logging.WARNING and not outage.exc_info
    assert "attempt 1," in outage.getMessage()
    assert fault.levelno == logging.ERROR and fault.exc_info and fault.exc_info[0] is ValueError
    assert "attempt 2," in fault.getMessage()
