"""Stopping tasks that lose a cancellation, as a Redis command does on Python 3.11 (the real
client: tests/integration/test_cancelling.py)."""

import asyncio

from workers.alerts.agent import WebhookLanes
from workers.cancelling import cancel_and_wait

# Only keeps a broken build from hanging: every wait here ends at once when the code is right.
HANG_GUARD_S = 10


async def swallow_one_cancellation(swallowed: list[str], name: str) -> None:
    """What a Redis command through Python 3.11's wait_for can do: the cancellation arrives, and
    the command returns all the same."""
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        swallowed.append(name)


async def loop_swallowing_one_cancellation(swallowed: list[str]) -> None:
    await swallow_one_cancellation(swallowed, "loop")
    while True:
        await asyncio.sleep(0.01)


async def ended(task: asyncio.Task[None]) -> bool:
    await asyncio.wait({task}, timeout=HANG_GUARD_S)
    return task.done()


async def test_a_task_that_loses_its_cancellation_is_cancelled_until_it_ends():
    swallowed: list[str] = []
    task = asyncio.create_task(loop_swallowing_one_cancellation(swallowed))
    await asyncio.sleep(0)
    stopping = asyncio.create_task(cancel_and_wait([task]))
    assert await ended(stopping)
    assert swallowed == ["loop"] and task.cancelled()


async def test_a_task_stopping_others_in_its_finally_stops_them_all_though_it_is_cancelled_again_meanwhile():
    swallowed: list[str] = []
    children = [asyncio.create_task(loop_swallowing_one_cancellation(swallowed)) for _ in range(3)]

    async def parent() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            await cancel_and_wait(children)

    task = asyncio.create_task(parent())
    await asyncio.sleep(0)
    task.cancel()
    await asyncio.sleep(0.01)
    task.cancel()  # a second stop while the children still run: it waits for them all the same
    stopping = asyncio.create_task(cancel_and_wait([task]))
    assert await ended(stopping)
    assert task.cancelled() and all(child.cancelled() for child in children)
    assert swallowed == ["loop"] * 3


async def test_the_callers_own_cancellation_is_raised_once_the_tasks_have_ended():
    swallowed: list[str] = []
    task = asyncio.create_task(loop_swallowing_one_cancellation(swallowed))
    await asyncio.sleep(0)
    stopping = asyncio.create_task(cancel_and_wait([task]))
    await asyncio.sleep(0)
    stopping.cancel()
    assert await ended(stopping)
    assert stopping.cancelled() and task.cancelled()


async def test_tasks_that_ended_with_an_error_are_waited_for_and_their_errors_retrieved():
    async def fails() -> None:
        raise ValueError("a bug, logged where it happened")

    failed = asyncio.create_task(fails())
    await asyncio.sleep(0)
    await cancel_and_wait([failed, asyncio.create_task(asyncio.sleep(3600))])
    assert failed.done() and not failed.cancelled()


class LaneQueue:
    """A delivery queue with deliveries queued for one webhook and none due, whose ``retire``
    (a Redis script in the real queue) loses a cancellation."""

    def __init__(self) -> None:
        self.swallowed: list[str] = []
        self.retiring = asyncio.Event()

    async def webhooks(self) -> set[str]:
        return {"desk"}

    async def lease_due(self, webhook: str, *, now_s: float, limit: int) -> list[object]:
        return []

    async def retire(self, webhook: str) -> bool:
        self.retiring.set()
        await swallow_one_cancellation(self.swallowed, "retire")
        return False  # still queued: the lane waits to be woken


async def test_webhook_lanes_stop_though_a_lane_loses_its_cancellation_in_a_redis_call():
    queue = LaneQueue()

    async def attempt(_pending: object) -> None:
        raise AssertionError("nothing is due")

    lanes = WebhookLanes(queue, attempt, max_in_flight=2, retry_backoff_max_s=0.05, poll_s=0.01)  # type: ignore[arg-type]
    running = asyncio.create_task(lanes.run())
    await asyncio.wait_for(queue.retiring.wait(), HANG_GUARD_S)
    running.cancel()
    assert await ended(running)
    assert queue.swallowed == ["retire"]
