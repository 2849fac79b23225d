"""The extraction process pool: CPU-bound trafilatura work off the event loop, with a hard
per-page timeout.

``concurrent.futures.ProcessPoolExecutor`` cannot stop a running task, and trafilatura can run
for minutes on a pathological page (trafilatura#704). pebble's pool kills the worker process
that exceeds the timeout and starts a fresh one, so one bad page costs one timeout, not a
stalled partition. Worker processes are forked from a forkserver that has already imported
trafilatura and run a few pages through the extraction (workers/pool_warmup.py), so a
replacement is ready, and warm, in milliseconds; never from the Faust process itself, whose
threads and event loop must not be forked.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import resource
from concurrent.futures import TimeoutError as FutureTimeout

import pebble

from workers.stages import extract
from workers.stages.extract import ExtractedDocument, ExtractionOptions
from workers.stages.outcome import Failed, StageResult

log = logging.getLogger(__name__)

# Imported by the forkserver only: importing it here would warm up the Faust process for nothing.
_FORKSERVER_PRELOAD = "workers.pool_warmup"


def _limit_memory(limit_mb: int) -> None:
    # An address-space cap turns a runaway page into a MemoryError in that process, which the
    # stage reports as a failure, instead of the kernel's OOM killer picking a victim.
    limit = limit_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


class ExtractionPool:
    def __init__(self, *, processes: int, timeout_s: float, memory_limit_mb: int, tasks_per_process: int) -> None:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([_FORKSERVER_PRELOAD])
        self._timeout_s = timeout_s
        self._pool = pebble.ProcessPool(
            max_workers=processes,
            max_tasks=tasks_per_process,
            initializer=_limit_memory,
            initargs=(memory_limit_mb,),
            context=context,
        )

    async def extract(
        self, html: str, url: str, options: ExtractionOptions, *, known_chrome: frozenset[str] = frozenset()
    ) -> StageResult[ExtractedDocument]:
        future = self._pool.schedule(
            extract.extract_document,
            args=(html, url, options),
            kwargs={"known_chrome": known_chrome},
            timeout=self._timeout_s,
        )
        try:
            return await asyncio.wrap_future(future)
        except FutureTimeout:
            return Failed(
                extract.STAGE,
                "timeout",
                "TimeoutError",
                f"extraction did not finish within {self._timeout_s:g} s; its process was killed",
            )
        except pebble.ProcessExpired as exc:
            return Failed(extract.STAGE, "process_died", "ProcessExpired", f"extraction process died: {exc}")
        except Exception as exc:  # noqa: BLE001 - e.g. a result that cannot be pickled back
            return Failed.from_exception(extract.STAGE, "pool_error", exc)

    def close(self) -> None:
        self._pool.stop()
        self._pool.join(timeout=10)
