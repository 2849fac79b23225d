"""Tasks that loop on Redis commands, as webhook lanes and lease renewals do, stop when the worker
stops them, on the real Redis through the worker's own client (whose socket timeout sends every
command through ``asyncio.wait_for``: on Python 3.11 a cancellation arriving as a command
completes was lost, and the stop waited forever)."""

from __future__ import annotations

import asyncio
import random

import pytest

from workers.cancelling import cancel_and_wait
from workers.retry import until_done
from workers.settings import Settings
from workers.sinks import redis_store

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

TASKS = 50
# Only keeps a broken build from hanging.
HANG_GUARD_S = 30


async def test_tasks_cancelled_in_the_middle_of_redis_commands_all_stop(settings: Settings):
    client = redis_store.connect(settings)
    key = f"{settings.redis_prefix}:lanes"
    await client.sadd(key, "desk")
    commands = [0] * TASKS

    async def poll_like_a_lane(index: int) -> None:
        while True:
            await until_done(lambda: client.smembers(key), what="listing the lanes", backoff_max_s=0.05)
            commands[index] += 1

    rng = random.Random(7)
    try:
        for index in range(TASKS):
            task = asyncio.create_task(poll_like_a_lane(index))
            # stopped a little after it starts: its first command is being sent, read or answered
            await asyncio.sleep(rng.random() * 0.005)
            stopping = asyncio.create_task(cancel_and_wait([task]))
            await asyncio.wait({stopping}, timeout=HANG_GUARD_S)
            assert task.done(), f"task {index} still running after {commands[index]} commands"
        assert sum(1 for count in commands if count) > TASKS // 4  # stopped between commands, not before the first
    finally:
        await client.delete(key)
        await client.aclose()
