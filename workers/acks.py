"""Acknowledge events strictly in offset order within each partition.

The pipeline works on up to ``max_in_flight`` pages at once, and they finish out of order. Faust
commits from the set of acknowledged offsets, and in faust-streaming <= 0.15 that computation
skips a single unacknowledged offset at the head of a partition (faust-streaming#606: with
committed offset N, offset N still in flight and N+1.. acked, it commits past N, and a crash then
loses page N). Handing faust only an in-order prefix of finished events makes that case
impossible: whatever faust commits, every offset below it has been fully processed.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterable, Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from workers.retry import until_done

E = TypeVar("E")


@dataclass(slots=True, eq=False)
class Slot(Generic[E]):
    offset: int
    event: E
    queue: deque[Slot[E]]
    done: bool = field(default=False)


class OrderedAcks(Generic[E]):
    def __init__(self) -> None:
        self._queues: dict[Hashable, deque[Slot[E]]] = {}

    def track(self, partition: Hashable, offset: int, event: E) -> Slot[E]:
        queue = self._queues.get(partition)
        if queue is None or (queue and offset <= queue[-1].offset):
            # A first sight, or an offset at or before one already in flight: the partition was
            # revoked and assigned again, and its consumer rewound to the committed offset.
            # Pages of the old assignment finish into the old queue and are never acknowledged.
            queue = self._queues[partition] = deque()
        slot = Slot(offset, event, queue)
        queue.append(slot)
        return slot

    def complete(self, slot: Slot[E]) -> list[E]:
        """Mark the slot finished; return the events that may now be acknowledged, in order."""
        slot.done = True
        ready: list[E] = []
        while slot.queue and slot.queue[0].done:
            ready.append(slot.queue.popleft().event)
        current = any(queue is slot.queue for queue in self._queues.values())
        return ready if current else []

    @property
    def in_flight(self) -> int:
        return sum(len(queue) for queue in self._queues.values())


async def consume_in_offset_order(
    events: AsyncIterable[Any],
    handle: Callable[[Any], Awaitable[None]],
    *,
    max_in_flight: int,
    max_unacked: int | None = None,
    retry_backoff_max_s: float = 30.0,
) -> None:
    """Run ``handle(event)`` on up to ``max_in_flight`` events of a Faust ``stream.noack().events()``
    at once and acknowledge them in offset order per partition, so that one slow event holds up
    neither the others nor the commit of the events before it. Events still running at shutdown or
    rebalance are not acknowledged, hence redelivered; ``handle`` must therefore be idempotent.

    ``handle`` is meant to route every failure itself. If it raises all the same (a bug), the
    event is neither acknowledged nor dropped: it is handled again, with capped backoff, and its
    partition's commits wait for it. Finished events waiting behind an unacknowledged one are
    bounded by ``max_unacked`` (default 8 x ``max_in_flight``): then no new event is read, so a
    stuck event costs lag, never unbounded memory."""
    acks: OrderedAcks[Any] = OrderedAcks()
    window = asyncio.Semaphore(max_in_flight)
    unacked_limit = max_unacked if max_unacked is not None else 8 * max_in_flight
    progress = asyncio.Condition()
    running: set[asyncio.Task[None]] = set()

    async def run(event: Any, slot: Slot[Any]) -> None:
        try:
            # retried whatever the error: see the docstring
            await until_done(
                lambda: handle(event),
                what=f"handling {event.message.tp}@{event.message.offset}",
                backoff_max_s=retry_backoff_max_s,
                retry_on=lambda _exc: True,
            )
            for finished in acks.complete(slot):
                finished.ack()
        finally:
            window.release()
            async with progress:
                progress.notify_all()

    try:
        async for event in events:
            await window.acquire()
            async with progress:
                await progress.wait_for(lambda: acks.in_flight < unacked_limit)
            slot = acks.track(event.message.tp, event.message.offset, event)
            task = asyncio.create_task(run(event, slot))
            running.add(task)
            task.add_done_callback(running.discard)
    finally:
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
