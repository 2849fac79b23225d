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
import threading
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import pebble

from workers import logs
from workers.stages import extract
from workers.stages.extract import ExtractedDocument, ExtractionOptions
from workers.stages.outcome import Failed, StageResult

log = logging.getLogger(__name__)

# Imported by the forkserver only: importing it here would warm up the Faust process for nothing.
_FORKSERVER_PRELOAD = "workers.pool_warmup"


def _start_process(limit_mb: int, log_config: dict[str, Any] | None) -> None:
    # An address-space cap turns a runaway page into a MemoryError in that process, which the
    # stage reports as a failure, instead of the kernel's OOM killer picking a victim.
    limit = limit_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    # a forked process starts with the forkserver's logging, not the worker's
    if log_config is not None:
        logs.apply(log_config)


class _PoolRefused(RuntimeError):
    """pebble refused a task: the pool is stopped or its process manager failed."""


class PoolUnavailable(RuntimeError):
    """The pool cannot take work and could not be rebuilt (no process can be started): not the
    page's fault, so the page waits for the pool, as it would for Redis or Kafka."""


class ExtractionPool:
    def __init__(
        self,
        *,
        processes: int,
        timeout_s: float,
        memory_limit_mb: int,
        tasks_per_process: int,
        log_config: dict[str, Any] | None = None,
    ) -> None:
        self._context = multiprocessing.get_context("forkserver")
        self._context.set_forkserver_preload([_FORKSERVER_PRELOAD])
        self._timeout_s = timeout_s
        self._processes = processes
        self._memory_limit_mb = memory_limit_mb
        self._tasks_per_process = tasks_per_process
        self._log_config = log_config
        self._pool = self._new_pool()

    def _new_pool(self) -> pebble.ProcessPool:
        return pebble.ProcessPool(
            max_workers=self._processes,
            max_tasks=self._tasks_per_process,
            initializer=_start_process,
            initargs=(self._memory_limit_mb, self._log_config),
            context=self._context,
        )

    def _rebuild(self, broken: pebble.ProcessPool, error: BaseException) -> None:
        # pebble leaves a pool whose process manager failed (its forkserver was killed, e.g. by the
        # kernel's OOM killer) refusing every task for good; multiprocessing starts a new
        # forkserver for the new pool. Every page in flight sees the break: the first rebuilds.
        if broken is not self._pool:
            return
        log.error("extraction pool broken (%r); starting a new one", error)
        broken.stop()
        # stop() only asks: join() kills the old pool's surviving processes and ends its manager
        # threads (without it each rebuild leaks them for the worker's life). It blocks, so not
        # on the event loop.
        threading.Thread(target=broken.join, kwargs={"timeout": 10}, name="extraction-pool-join", daemon=True).start()
        self._pool = self._new_pool()

    async def extract(
        self, html: str, url: str, options: ExtractionOptions, *, known_chrome: frozenset[str] = frozenset()
    ) -> StageResult[ExtractedDocument]:
        """The page's extraction. A pool found broken is rebuilt: before the page was sent to it,
        the page simply goes to the new pool (``PoolUnavailable`` if that one refuses too); when it
        broke while working on the page, the page is tried once more, and breaking it again is the
        page's doing (a ``pool_error`` failure)."""
        refused = broke = False
        while True:
            pool = self._pool
            try:
                return await self._run(pool, html, url, options, known_chrome)
            except _PoolRefused as exc:
                if refused:
                    raise PoolUnavailable(f"no extraction pool can be started: {exc}") from exc
                refused = True
                self._rebuild(pool, exc)
            except BrokenProcessPool as exc:
                self._rebuild(pool, exc)
                if broke:
                    return Failed.from_exception(extract.STAGE, "pool_error", exc)
                broke = True

    async def _run(
        self, pool: pebble.ProcessPool, html: str, url: str, options: ExtractionOptions, known_chrome: frozenset[str]
    ) -> StageResult[ExtractedDocument]:
        try:
            future = pool.schedule(
                extract.extract_document,
                args=(html, url, options),
                kwargs={"known_chrome": known_chrome},
                timeout=self._timeout_s,
            )
        except (RuntimeError, OSError) as exc:  # "Unexpected error within the Pool", or no fork
            raise _PoolRefused(str(exc)) from exc
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
        except BrokenProcessPool:
            raise
        except Exception as exc:  # noqa: BLE001 - e.g. a result that cannot be pickled back
            return Failed.from_exception(extract.STAGE, "pool_error", exc)

    def close(self) -> None:
        self._pool.stop()
        self._pool.join(timeout=10)
