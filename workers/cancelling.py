"""Stopping tasks for good.

A cancellation can be lost: on Python 3.11, ``asyncio.wait_for`` drops one that arrives as the
operation it awaits completes (CPython gh-86296, fixed in 3.12), and redis-py sends every command
through ``wait_for`` once a socket timeout is set. A task cancelled during a Redis command then
goes on running; a loop (a webhook lane, a lease renewal) never ends, and whatever waits for it
hangs, a worker's stop among them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

# Often enough for a stop to be prompt, seldom enough to let a task's own cleanup run.
_CANCEL_AGAIN_AFTER_S = 0.1


async def cancel_and_wait(tasks: Iterable[asyncio.Future[Any]]) -> None:
    """Cancel ``tasks`` and return once every one has ended, cancelling again the ones still
    running every 0.1 s. A cancellation of the caller meanwhile is held until then and raised
    after: a task that stops others in its ``finally`` stops them all before it ends itself."""
    pending = set(tasks)
    cancelled_meanwhile = False
    while pending:
        for task in pending:
            task.cancel()
        try:
            done, pending = await asyncio.wait(pending, timeout=_CANCEL_AGAIN_AFTER_S)
        except asyncio.CancelledError:
            cancelled_meanwhile = True
            continue
        for task in done:
            if not task.cancelled():
                task.exception()  # retrieved, as gather(return_exceptions=True) would: each logs its own
    if cancelled_meanwhile:
        raise asyncio.CancelledError
