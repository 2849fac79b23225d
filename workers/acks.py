"""Acknowledge events strictly in offset order within each partition.

The pipeline works on up to ``max_in_flight`` pages at once, and they finish out of order. Faust
commits from the set of acknowledged offsets, and in faust-streaming <= 0.15 that computation
skips a single unacknowledged offset at the head of a partition (faust-streaming#606: with
committed offset N, offset N still in flight and N+1.. acked, it commits past N, and a crash then
loses page N). Handing faust only an in-order prefix of finished events makes that case
impossible: whatever faust commits, every offset below it has been fully processed.

A rebalance takes every partition away (Kafka's eager protocol, which Faust uses) and the
consumer starts each partition it gets back at its committed offset: an event taken before the
revocation is delivered again after it. Its work is then wasted, and its acknowledgement harmful:
Faust forgets a revoked partition's acknowledgements and committed offset, and one that comes in
late is counted against the next assignment. :func:`revoke` (``workers/app.py`` calls it first
thing on a revocation) therefore cancels the events in flight of the revoked partitions and
forgets their order: nothing taken before it is acknowledged after it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncIterable, Awaitable, Callable, Collection, Hashable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from workers.cancelling import cancel_and_wait
from workers.retry import until_done

E = TypeVar("E")
log = logging.getLogger(__name__)


@dataclass(slots=True, eq=False)
class Slot(Generic[E]):
    offset: int
    event: E
    queue: deque[Slot[E]]
    taken_at: float  # time.monotonic() when tracked
    done: bool = field(default=False)
    # the partition was revoked (or rewound) since: never acknowledged, its work is cancelled
    dropped: bool = field(default=False)


class OrderedAcks(Generic[E]):
    def __init__(self, on_drop: Callable[[Slot[E]], None] | None = None) -> None:
        self._queues: dict[Hashable, deque[Slot[E]]] = {}
        self._on_drop = on_drop

    def track(self, partition: Hashable, offset: int, event: E) -> Slot[E]:
        queue = self._queues.get(partition)
        if queue is not None and queue and offset <= queue[-1].offset:
            # An offset at or before one already tracked: the partition was revoked and assigned
            # again, and its consumer rewound to the committed offset, without a revoke() here.
            self._drop(queue)
            queue = None
        if queue is None:
            queue = self._queues[partition] = deque()
        slot = Slot(offset, event, queue, time.monotonic())
        queue.append(slot)
        return slot

    def complete(self, slot: Slot[E]) -> list[E]:
        """Mark the slot finished; return the events that may now be acknowledged, in order."""
        slot.done = True
        if slot.dropped:
            return []
        ready: list[E] = []
        while slot.queue and slot.queue[0].done:
            ready.append(slot.queue.popleft().event)
        return ready

    def drop(self, partitions: Collection[Hashable]) -> None:
        """Forget these partitions: their slots are never acknowledged (``on_drop`` is called
        for each), and the next event of one starts a new order."""
        for partition in partitions:
            queue = self._queues.pop(partition, None)
            if queue is not None:
                self._drop(queue)

    def _drop(self, queue: deque[Slot[E]]) -> None:
        dropped = list(queue)
        queue.clear()
        for slot in dropped:
            slot.dropped = True
        if self._on_drop is not None:
            for slot in dropped:
                self._on_drop(slot)

    @property
    def unacknowledged(self) -> int:
        """Events tracked and not yet acknowledged: running, or finished behind a slower one."""
        return sum(len(queue) for queue in self._queues.values())

    def oldest_age_s(self) -> float:
        """How long the oldest event not yet acknowledged has been tracked (0 when none is): the
        head of a partition's queue, since events are tracked in the order they are taken."""
        heads = [queue[0].taken_at for queue in self._queues.values() if queue]
        return time.monotonic() - min(heads) if heads else 0.0


_RUNNING: set[Callable[[Collection[Hashable]], int]] = set()


def revoke(partitions: Collection[Hashable]) -> int:
    """Drop the events of ``partitions`` from every :func:`consume_in_offset_order` running in
    this process (a worker process runs one Faust app): the ones in flight are cancelled, and
    none taken so far is ever acknowledged. Synchronous, so that no event can finish and be
    acknowledged between the revocation and this call. Returns how many events were dropped."""
    return sum(drop(partitions) for drop in list(_RUNNING))


def _release_payload(event: Any) -> None:
    """Forget a handled event's record value (up to ``max_message_bytes``): acknowledging it
    (Event.ack -> Message.ack -> Consumer.ack in faust-streaming 0.15) reads only the message's
    topic, partition, offset and ack state. Finished pages wait, unacknowledged, behind a slow
    one: with their values, up to 8 x ``max_in_flight`` raw pages stayed in memory."""
    event.value = None
    event.message.value = None


async def consume_in_offset_order(
    events: AsyncIterable[Any],
    handle: Callable[[Any], Awaitable[None]],
    *,
    max_in_flight: int,
    max_unacked: int | None = None,
    retry_backoff_max_s: float = 30.0,
    watch: Callable[[OrderedAcks[Any]], None] | None = None,
) -> None:
    """Run ``handle(event)`` on up to ``max_in_flight`` events of a Faust ``stream.noack().events()``
    at once and acknowledge them in offset order per partition, so that one slow event holds up
    neither the others nor the commit of the events before it. Events still running when their
    partition is revoked (:func:`revoke`) or when this coroutine is cancelled (the worker stops)
    are cancelled, never acknowledged, hence redelivered; ``handle`` must therefore be idempotent.

    ``handle`` is meant to route every failure itself. If it raises all the same (a bug), the
    event is neither acknowledged nor dropped: it is handled again, with capped backoff, and its
    partition's commits wait for it. Finished events waiting behind an unacknowledged one are
    bounded by ``max_unacked`` (default 8 x ``max_in_flight``): then no new event is read, so a
    stuck event costs lag, never unbounded memory; and they hold no record value
    (:func:`_release_payload`), only its position.

    ``watch`` is given the acknowledgement state once, before the first event: what metrics read
    (events not yet acknowledged, and the age of the oldest)."""
    tasks: dict[Slot[Any], asyncio.Task[None]] = {}
    stopping: set[asyncio.Task[None]] = set()
    changed = asyncio.Event()  # a slot finished or was dropped

    def cancel(slot: Slot[Any]) -> None:
        task = tasks.get(slot)
        if task is not None:
            task.cancel()
            # and again until it ends: a cancellation lost in a Redis command (workers/cancelling.py)
            # would let the page run on beside the worker that owns its partition now
            stop = asyncio.ensure_future(cancel_and_wait([task]))
            stopping.add(stop)
            stop.add_done_callback(stopping.discard)
        changed.set()

    acks: OrderedAcks[Any] = OrderedAcks(on_drop=cancel)
    if watch is not None:
        watch(acks)
    window = asyncio.Semaphore(max_in_flight)
    unacked_limit = max_unacked if max_unacked is not None else 8 * max_in_flight

    def drop(partitions: Collection[Hashable]) -> int:
        before = acks.unacknowledged
        acks.drop(partitions)
        return before - acks.unacknowledged

    async def run(event: Any, slot: Slot[Any]) -> None:
        # retried whatever the error: see the docstring
        await until_done(
            lambda: handle(event),
            what=f"handling {event.message.tp}@{event.message.offset}",
            backoff_max_s=retry_backoff_max_s,
            retry_on=lambda _exc: True,
        )
        _release_payload(event)
        for ready in acks.complete(slot):
            ready.ack()

    def finished(slot: Slot[Any]) -> Callable[[asyncio.Task[None]], None]:
        # A callback, not a finally in run(): a task cancelled before it started never runs one.
        def callback(_task: asyncio.Task[None]) -> None:
            tasks.pop(slot, None)
            window.release()
            changed.set()

        return callback

    _RUNNING.add(drop)
    try:
        async for event in events:
            # Tracked as soon as taken: a revocation while it waits for room drops it too.
            slot = acks.track(event.message.tp, event.message.offset, event)
            await window.acquire()
            try:
                while not slot.dropped and acks.unacknowledged > unacked_limit:
                    changed.clear()
                    await changed.wait()
            except BaseException:
                window.release()
                raise
            if slot.dropped:
                window.release()
                continue
            task = asyncio.create_task(run(event, slot))
            tasks[slot] = task
            task.add_done_callback(finished(slot))
    finally:
        _RUNNING.discard(drop)
        await cancel_and_wait([*tasks.values(), *stopping])
