import asyncio
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
    assert acks.in_flight == 0


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
    assert acks.in_flight == 1
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


@dataclass
class FakeEvent:
    message: FakeMessage
    acked: list[int] = field(default_factory=list)

    def ack(self) -> None:
        self.acked.append(self.message.offset)


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
