import asyncio
import gc
import weakref
from dataclasses import dataclass, field

import pytest

from workers import acks as acks_module
from workers.acks import OrderedAcks, consume_in_offset_order


def test_events_are_released_only_as_an_in_order_prefix():
    acks: OrderedAcks[str] = OrderedAcks()
    slots = {offset: acks.track("p0", offset, f"e{offset}") for offset in (10, 11, 12, 13)}
    assert acks.complete(slots[11]) == []
    assert acks.complete(slots[13]) == []
    assert acks.complete(slots[10]) == ["e10", "e11"]
    assert acks.complete(slots[12]) == ["e12", "e13"]
    assert acks.unacknowledged == 0


def test_the_head_page_in_flight_holds_back_every_later_ack():
    # faust-streaming#606: committed offset N, N in flight, N+1.. done -> never release past N.
    acks: OrderedAcks[int] = OrderedAcks()
    head = acks.track("p0", 0, 0)
    later = [acks.track("p0", offset, offset) for offset in range(1, 6)]
    for slot in later:
        assert acks.complete(slot) == []
    assert acks.complete(head) == [0, 1, 2, 3, 4, 5]


def test_partitions_are_independent():
    acks: OrderedAcks[str] = OrderedAcks()
    a0 = acks.track("a", 0, "a0")
    b0 = acks.track("b", 0, "b0")
    assert acks.complete(b0) == ["b0"]
    assert acks.unacknowledged == 1
    assert acks.complete(a0) == ["a0"]


def test_a_rewound_partition_never_acks_pages_of_the_old_assignment():
    acks: OrderedAcks[str] = OrderedAcks()
    old = acks.track("p0", 5, "old5")
    acks.track("p0", 6, "old6")
    fresh = acks.track("p0", 5, "new5")  # revoked, reassigned, consumer rewound to 5
    assert acks.complete(old) == []
    assert acks.complete(fresh) == ["new5"]


def test_tracking_after_a_rewind_starts_a_new_generation():
    acks: OrderedAcks[int] = OrderedAcks()
    stale = acks.track("p", 3, 3)
    one, two = acks.track("p", 1, 1), acks.track("p", 2, 2)
    assert acks.complete(two) == []
    assert acks.complete(one) == [1, 2]
    assert acks.complete(stale) == []


@dataclass
class FakeMessage:
    tp: str
    offset: int
    value: object = None


@dataclass
class FakeEvent:
    message: FakeMessage
    acked: list[int] = field(default_factory=list)
    value: object = None

    def ack(self) -> None:
        self.acked.append(self.message.offset)


class Payload:
    """A record's value, which (unlike bytes) a weak reference can watch."""


_sleep = asyncio.sleep


def events_of(offsets: range, acked: list[int], read: list[int]):
    """A partition's events; like a live stream, it stays open, here until every event is acked
    (or the event loop has turned 10,000 times: then what is not acked never will be)."""

    async def stream():
        for offset in offsets:
            read.append(offset)
            yield FakeEvent(FakeMessage("p0", offset), acked)
        for _ in range(10_000):
            if len(acked) >= len(offsets):
                break
            await _sleep(0)

    return stream()


def test_an_event_whose_handler_raises_is_handled_again_not_acked_past(monkeypatch: pytest.MonkeyPatch) -> None:
    # faust would ack an event whose handler raised and lose the page: here it is retried, and
    # the events after it are acknowledged only once it is done
    async def no_wait(delay: float) -> None:
        await _sleep(0)

    monkeypatch.setattr(acks_module.asyncio, "sleep", no_wait)
    acked: list[int] = []
    failures = {3: 2}
    handled: list[int] = []

    async def handle(event: FakeEvent) -> None:
        offset = event.message.offset
        if failures.get(offset):
            failures[offset] -= 1
            raise RuntimeError(f"bug on {offset}")
        handled.append(offset)

    asyncio.run(consume_in_offset_order(events_of(range(8), acked, []), handle, max_in_flight=4))
    assert acked == list(range(8))
    assert sorted(handled) == list(range(8))


def test_a_stuck_event_stops_the_reading_instead_of_growing_memory() -> None:
    acked: list[int] = []
    read: list[int] = []
    release = asyncio.Event()

    async def handle(event: FakeEvent) -> None:
        if event.message.offset == 0:
            await release.wait()

    async def scenario() -> None:
        consumer = asyncio.create_task(
            consume_in_offset_order(events_of(range(100), acked, read), handle, max_in_flight=2, max_unacked=5)
        )
        for _ in range(50):
            await asyncio.sleep(0)
        assert len(read) == 6  # five tracked (the head and four finished behind it), the sixth waits
        assert acked == []
        release.set()
        await consumer

    asyncio.run(scenario())
    assert acked == list(range(100))


def test_revoked_partitions_are_forgotten_and_their_slots_never_released():
    dropped: list[int] = []
    acks: OrderedAcks[str] = OrderedAcks(on_drop=lambda slot: dropped.append(slot.offset))
    head, done = acks.track("p0", 7, "a7"), acks.track("p0", 8, "a8")
    other = acks.track("p1", 3, "b3")
    assert acks.complete(done) == []
    acks.drop({"p0"})
    assert sorted(dropped) == [7, 8] and head.dropped and done.dropped
    assert acks.unacknowledged == 1
    assert acks.complete(head) == []  # finished late: nothing of the old assignment is released
    # assigned again, at its committed offset: a new order
    assert acks.complete(acks.track("p0", 7, "again7")) == ["again7"]
    assert acks.complete(other) == ["b3"]


def test_a_handled_event_waiting_behind_a_slow_one_holds_no_record_value() -> None:
    acked: list[int] = []
    values: dict[int, weakref.ref[Payload]] = {}
    release = asyncio.Event()

    async def stream():
        for offset in range(6):
            payload = Payload()
            values[offset] = weakref.ref(payload)
            yield FakeEvent(FakeMessage("p0", offset, payload), acked, payload)
            del payload
        await release.wait()
        while len(acked) < 6:
            await _sleep(0)

    async def handle(event: FakeEvent) -> None:
        assert event.message.value is not None and event.value is event.message.value
        if event.message.offset == 0:
            await release.wait()

    async def scenario() -> None:
        consumer = asyncio.create_task(consume_in_offset_order(stream(), handle, max_in_flight=8))
        for _ in range(50):
            await asyncio.sleep(0)
        gc.collect()
        assert acked == []  # all behind the slow head, unacknowledged...
        assert [offset for offset, value in values.items() if value() is not None] == [0]  # ...without their values
        release.set()
        await consumer

    asyncio.run(scenario())
    assert acked == list(range(6))


class Partitions:
    """A live stream of events put into it one by one."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[FakeEvent | None] = asyncio.Queue()
        self.acked: list[tuple[str, int]] = []

    def put(self, tp: str, offset: int) -> None:
        acked = self.acked

        class Event(FakeEvent):
            def ack(self) -> None:
                acked.append((self.message.tp, self.message.offset))

        self.queue.put_nowait(Event(FakeMessage(tp, offset, Payload())))

    async def events(self):
        while (event := await self.queue.get()) is not None:
            yield event


def test_a_revoked_event_that_loses_its_cancellation_is_cancelled_again_until_it_ends() -> None:
    # As a Redis command does on Python 3.11 (workers/cancelling.py): the page would run on.
    partitions = Partitions()
    cancellations: list[int] = []

    async def handle(event: FakeEvent) -> None:
        while True:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                cancellations.append(event.message.offset)
                if cancellations.count(event.message.offset) > 1:
                    raise

    async def scenario() -> None:
        consumer = asyncio.create_task(consume_in_offset_order(partitions.events(), handle, max_in_flight=2))
        partitions.put("p0", 0)
        while not acks_module._RUNNING:
            await asyncio.sleep(0)
        await asyncio.sleep(0.01)
        assert acks_module.revoke({"p0"}) == 1
        for _ in range(100):
            if len(cancellations) == 2:
                break
            await asyncio.sleep(0.05)
        assert cancellations == [0, 0]
        partitions.queue.put_nowait(None)
        await consumer
        running = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        assert running == []

    asyncio.run(scenario())
    assert partitions.acked == []


def test_a_revocation_cancels_the_partitions_events_in_flight_and_none_is_ever_acked() -> None:
    partitions = Partitions()
    started: list[tuple[str, int]] = []
    cancelled: list[tuple[str, int]] = []
    finished: list[tuple[str, int]] = []
    stuck = asyncio.Event()

    async def handle(event: FakeEvent) -> None:
        position = (event.message.tp, event.message.offset)
        started.append(position)
        try:
            if position in {("p0", 0), ("p0", 10)}:
                await stuck.wait()  # a slow page: p0@1 finishes behind it, p0@2 waits for room
        except asyncio.CancelledError:
            cancelled.append(position)
            raise
        finished.append(position)

    async def turn() -> None:
        for _ in range(50):
            await asyncio.sleep(0)

    async def scenario() -> None:
        consumer = asyncio.create_task(
            consume_in_offset_order(partitions.events(), handle, max_in_flight=2, max_unacked=2)
        )
        for tp, offset in [("p0", 0), ("p0", 1), ("p0", 2)]:
            partitions.put(tp, offset)
        await turn()
        assert started == [("p0", 0), ("p0", 1)] and finished == [("p0", 1)]
        assert acks_module.revoke({"p1"}) == 0  # not this partition's
        assert acks_module.revoke({"p0"}) == 3
        await turn()
        assert cancelled == [("p0", 0)]
        stuck.set()  # whatever comes in late: nothing taken before the revocation is acknowledged
        await turn()
        assert started == [("p0", 0), ("p0", 1)]  # p0@2, taken but waiting for room, never started
        assert partitions.acked == []
        # assigned again and rewound: a new order from the committed offset; other partitions unaffected
        for tp, offset in [("p0", 0), ("p0", 1), ("p1", 5)]:
            partitions.put(tp, offset)
        await turn()
        assert sorted(partitions.acked) == [("p0", 0), ("p0", 1), ("p1", 5)]
        partitions.queue.put_nowait(None)
        await consumer
        assert acks_module._RUNNING == set()

    asyncio.run(scenario())


def test_stopping_cancels_every_event_in_flight_even_one_retried_through_an_outage(monkeypatch: pytest.MonkeyPatch) -> None:
    async def no_wait(delay: float) -> None:
        await _sleep(0)

    monkeypatch.setattr(acks_module.asyncio, "sleep", no_wait)
    partitions = Partitions()
    attempts: list[int] = []

    async def handle(event: FakeEvent) -> None:
        attempts.append(event.message.offset)
        if event.message.offset == 0:
            raise ConnectionError("Redis is away")  # retried for as long as it lasts
        await asyncio.Event().wait()  # hangs

    async def scenario() -> None:
        consumer = asyncio.create_task(consume_in_offset_order(partitions.events(), handle, max_in_flight=4))
        for offset in range(3):
            partitions.put("p0", offset)
        while attempts.count(0) < 5:
            await _sleep(0)
        consumer.cancel()  # the worker stops
        with pytest.raises(asyncio.CancelledError):
            await consumer
        running = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        assert running == []

    asyncio.run(scenario())
    assert partitions.acked == []


def test_the_oldest_age_is_that_of_the_oldest_event_not_acknowledged(monkeypatch: pytest.MonkeyPatch):
    now = [100.0]
    monkeypatch.setattr(acks_module.time, "monotonic", lambda: now[0])
    acks: OrderedAcks[str] = OrderedAcks()
    assert acks.oldest_age_s() == 0.0
    head = acks.track("p0", 0, "e0")
    now[0] = 103.0
    behind = acks.track("p0", 1, "e1")
    other = acks.track("p1", 0, "f0")
    now[0] = 110.0
    assert acks.complete(behind) == []  # done, but waiting behind the head: the head still counts
    assert acks.oldest_age_s() == 10.0
    assert acks.complete(head) == ["e0", "e1"]
    assert acks.oldest_age_s() == 7.0  # p1's, taken at 103
    assert acks.complete(other) == ["f0"]
    assert acks.oldest_age_s() == 0.0


def test_a_rewind_to_exactly_the_last_tracked_offset_drops_the_old_slot() -> None:
    dropped = []
    acks: OrderedAcks[str] = OrderedAcks(on_drop=dropped.append)
    old = acks.track("p0", 5, "old5")
    fresh = acks.track("p0", 5, "new5")  # revoked, reassigned, rewound to the one offset in flight
    assert dropped == [old] and old.dropped
    assert acks.unacknowledged == 1
    assert acks.complete(old) == []
    assert acks.complete(fresh) == ["new5"]


def test_watch_is_given_the_acknowledgement_state_before_the_first_event() -> None:
    seen: list[OrderedAcks] = []

    async def no_events():
        return
        yield  # pragma: no cover

    async def handle(_event) -> None:  # pragma: no cover
        raise AssertionError("no event to handle")

    asyncio.run(consume_in_offset_order(no_events(), handle, max_in_flight=2, watch=seen.append))
    assert len(seen) == 1 and isinstance(seen[0], OrderedAcks) and seen[0].unacknowledged == 0
