"""The extraction process pool: CPU-bound trafilatura work off the event loop, with a hard
per-page timeout.

``concurrent.futures.ProcessPoolExecutor`` cannot stop a running task, and trafilatura can run
for minutes on a pathological page (trafilatura#704). pebble's pool kills the worker process
that exceeds the timeout and starts a fresh one, so one bad page costs one timeout, not a
stalled partition. Worker processes are forked from a forkserver that has already imported
trafilatura and run a few pages through the extraction (workers/pool_warmup.py), so a
replacement is ready, and warm, in milliseconds; never from the Faust process itself, whose
threads and event loop must not be forked.

``check_settings`` runs before the worker starts: a memory limit that no extraction process can
have, or work within, would otherwise fail every page, each dead-lettered as if it were its fault.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import multiprocessing
import resource
import signal
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import pebble

from workers import SAMPLE_PAGES, logs
from workers.settings import MIB, Settings
from workers.stages import extract
from workers.stages.extract import ExtractedDocument, ExtractionOptions
from workers.stages.outcome import Failed, StageResult

log = logging.getLogger(__name__)
T = TypeVar("T")

# Imported by the forkserver only: importing it here would warm up the Faust process for nothing.
_FORKSERVER_PRELOAD = "workers.pool_warmup"
# An ordinary news page (29 KB) that the warm-up extracts too.
_PROBE_PAGE = SAMPLE_PAGES / "ar-cnn-syria-clashes.html"


# A forkserver that died (the kernel's OOM killer) no longer reports its processes' ends: each reads
# as exit status 255, whether it ended or not. multiprocessing.popen_forkserver.Popen.poll.
_FORKSERVER_GONE = 255
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _start_process(limit_mb: int, log_config: dict[str, Any] | None) -> None:
    # An address-space cap turns a runaway page into a MemoryError in that process, which the
    # stage reports as a failure, instead of the kernel's OOM killer picking a victim.
    limit = limit_mb * MIB
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    # pebble ends a timed-out process with SIGTERM, handled in Python, so not before a C call
    # returns to the interpreter, and waits 3 s before SIGKILL, one process at a time, starting
    # no replacement meanwhile: the pages behind it timed out waiting. The default kills at once.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    # Killed with its parent, the forkserver: the next pool cannot reach its processes, which would
    # otherwise go on taking pages from the old pool's channel, untimed and past close().
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    # a forked process starts with the forkserver's logging, not the worker's
    if log_config is not None:
        logs.apply(log_config)


def _start_pool(pool: pebble.ProcessPool, started: Future[None]) -> None:
    # Reading ``active`` starts a pebble pool that has not started: it forks the first processes
    # and waits for each until the forkserver answers, which a new forkserver does only once its
    # warm-up is done (seconds). pebble would otherwise do it in the first schedule(), on the event
    # loop; once started, it replaces processes in its own threads.
    try:
        pool.active
    except BaseException as exc:  # noqa: BLE001 - the pages waiting for the pool get it
        started.set_exception(exc)
    else:
        started.set_result(None)


def _probe(page: Path) -> tuple[str | None, int]:
    """In an extraction process: how the page's extraction failed (None if it did not), and the
    address space the process has mapped after it, the measure RLIMIT_AS applies to."""
    result = extract.extract_document(
        page.read_text(encoding="utf-8"), f"https://probe.wirefeed.invalid/{page.stem}", ExtractionOptions()
    )
    failure = f"{result.reason}, {result.error_class}: {result.detail}" if isinstance(result, Failed) else None
    with open("/proc/self/statm") as statm:
        return failure, int(statm.read().split()[0]) * resource.getpagesize()


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
        self._free_processes = asyncio.Semaphore(processes)
        self._pool, self._started = self._new_pool()

    def _new_pool(self) -> tuple[pebble.ProcessPool, Future[None]]:
        """A pool and its start, begun in a thread at once: no process starts on the event loop."""
        pool = pebble.ProcessPool(
            max_workers=self._processes,
            max_tasks=self._tasks_per_process,
            initializer=_start_process,
            initargs=(self._memory_limit_mb, self._log_config),
            context=self._context,
        )
        started: Future[None] = Future()
        # Running, it cannot be cancelled: a page given up on while it waits (asyncio.wrap_future
        # passes the cancellation on) must not cancel the start that the other pages wait for.
        started.set_running_or_notify_cancel()
        threading.Thread(target=_start_pool, args=(pool, started), name="extraction-pool-start", daemon=True).start()
        return pool, started

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
        self._pool, self._started = self._new_pool()

    async def extract(
        self,
        html: str,
        url: str,
        options: ExtractionOptions,
        *,
        known_chrome: frozenset[str] = frozenset(),
        fetched_at: datetime | None = None,
    ) -> StageResult[ExtractedDocument]:
        """The page's extraction. A pool found broken is rebuilt: before the page was sent to it,
        the page simply goes to the new pool (``PoolUnavailable`` if that one refuses too); when it
        broke while working on the page, the page is tried once more, and breaking it again is the
        page's doing (a ``pool_error`` failure)."""
        refused = broke = False
        while True:
            pool, started = self._pool, self._started
            try:
                return await self._run(
                    pool, started, extract.extract_document, html, url, options,
                    known_chrome=known_chrome, fetched_at=fetched_at,
                )
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
        self, pool: pebble.ProcessPool, started: Future[None], function: Callable[..., T], *args: Any, **kwargs: Any
    ) -> T | Failed:
        """``function(*args, **kwargs)`` in one of ``pool``'s processes, with the hard timeout: a
        ``timeout`` failure once it has run ``timeout_s`` on the event loop's monotonic clock, its
        process killed. Not pebble's own timeout, which times a task on the wall clock
        (time.time()): a clock step (NTP, a VM resumed) would kill every running extraction as a
        timeout, or let one run past it. A task goes to pebble only when one of its processes is
        free, so that its time is its own, not its wait for a process (it does include the start
        of a replacement process: milliseconds, from the warm forkserver)."""
        async with self._free_processes:
            try:
                if not started.done():
                    await asyncio.wrap_future(started)
                # a start that failed left the pool unstarted: schedule() would start it here, on the loop
                started.result()
                future = pool.schedule(function, args=args, kwargs=kwargs)
            except (RuntimeError, OSError) as exc:  # "Unexpected error within the Pool", or no fork
                raise _PoolRefused(str(exc)) from exc
            # Cancelled (the time is up, or the page was given up on: its partition revoked, the
            # worker stopping), the wrapper cancels pebble's future, and pebble kills the process.
            running = asyncio.wrap_future(future)
            try:
                async with asyncio.timeout(self._timeout_s):
                    return await running
            except TimeoutError as exc:
                if not running.cancelled():  # raised by the function itself
                    return Failed.from_exception(extract.STAGE, "pool_error", exc)
                return Failed(
                    extract.STAGE,
                    "timeout",
                    "TimeoutError",
                    f"extraction did not finish within {self._timeout_s:g} s; its process was killed",
                )
            except pebble.ProcessExpired as exc:
                if exc.exitcode == _FORKSERVER_GONE:
                    # not the page's doing: the forkserver died, and its processes with it
                    raise BrokenProcessPool(f"the extraction forkserver died ({exc})") from exc
                return Failed(extract.STAGE, "process_died", "ProcessExpired", f"extraction process died: {exc}")
            except BrokenProcessPool:
                raise
            except Exception as exc:  # noqa: BLE001 - e.g. a result that cannot be pickled back
                return Failed.from_exception(extract.STAGE, "pool_error", exc)

    def close(self) -> None:
        self._pool.stop()
        self._pool.join(timeout=10)


class ExtractionSettingsError(Exception):
    """The extraction settings cannot work in this process: the worker does not start."""


def check_settings(settings: Settings) -> None:
    """Refuses a memory limit that an extraction process cannot set or cannot extract a page within
    (``ExtractionSettingsError``, one line naming the setting). Blocks for the forkserver's warm-up
    and one page: before the worker starts, never on an event loop."""
    limit_mb = settings.extraction_memory_limit_mb
    setting = f"WIREFEED_EXTRACTION_MEMORY_LIMIT_MB={limit_mb}"
    hard = resource.getrlimit(resource.RLIMIT_AS)[1]
    if hard != resource.RLIM_INFINITY and limit_mb * MIB > hard:
        # Refused, not lowered to the hard limit: the setting would then say one limit while
        # pages are cut off at another, and which one applies is the operator's to decide.
        raise ExtractionSettingsError(
            f"{setting} is above this worker's hard address-space limit of {hard // MIB} MB (RLIMIT_AS, "
            f"e.g. systemd LimitAS= or ulimit -v), which an extraction process cannot raise: set it to "
            f"{hard // MIB} or less, or raise that limit"
        )
    pool = ExtractionPool(
        processes=1,
        timeout_s=settings.extraction_timeout_s,
        memory_limit_mb=limit_mb,
        tasks_per_process=settings.extraction_tasks_per_process,
    )
    try:
        pool._started.result()
        failure, mapped = pool._pool.schedule(_probe, args=(_PROBE_PAGE,), timeout=settings.extraction_timeout_s).result()
    except Exception as exc:  # noqa: BLE001 - what stops the probe would stop every page
        failure, mapped = f"{type(exc).__name__}: {exc}", 0
    finally:
        pool.close()
    # A process already over its limit keeps what it has mapped but cannot map anything more: it
    # extracts a small page only while memory freed by earlier pages lasts (the probe page, too).
    if mapped >= limit_mb * MIB:
        raise ExtractionSettingsError(
            f"{setting} is not above the {mapped // MIB} MB of address space that an extraction process "
            f"has mapped once it has extracted a page, so it could not map memory for the next one: "
            f"set it well above that"
        )
    if failure is not None:
        raise ExtractionSettingsError(
            f"an extraction process cannot extract a bundled sample page ({_PROBE_PAGE.name}) with "
            f"{setting} and WIREFEED_EXTRACTION_TIMEOUT_S={settings.extraction_timeout_s:g}: "
            + " ".join(failure.split())
        )
