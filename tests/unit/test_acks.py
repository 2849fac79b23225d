from workers.acks import OrderedAcks


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
