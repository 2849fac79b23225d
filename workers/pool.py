"""The extraction process pool: CPU-bound trafilatura work off the event loop, with a hard
per-page timeout.

``concurrent.futures.ProcessPoolExecutor`` cannot stop a running task, and trafilatura can run
for minutes on a pathological page (trafilatura#704). pebble's pool kills the worker process
that exceeds the timeout and starts a fresh one, so one bad page costs one timeout, not a
stalled partition. Worker processes are forked from a forkserver that has already imported
trafilatura, run a few pages through the extraction (workers/pool_warmup.py) and imported what a
new process is sent (this module, its initializer's), so a replacement is ready, and warm, in
milliseconds; never from the Faust process itself, whose threads and event loop must not be forked.

A process killed (the OOM killer, a segfault) while it receives its page or sends its result dies
holding the lock of the channel that pebble's processes share: no process can take a page or send
a result, and pebble cannot stop one, until its 60 s lock timeouts. The pool is then rebuilt
(``_channel_jammed``). A rebuild sends the pages still in the old pool to the new one.

``check_settings`` runs before the worker starts: a memory limit that no extraction process can
have, or work within, would otherwise fail every page, each dead-lettered as if it were its fault.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import multiprocessing
import os
import resource
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import datetime
from multiprocessing import forkserver
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

# What the forkserver imports, in this order, before it forks anything; every new process would
# otherwise import it cold (~160 modules, 0.15-0.25 s) before its first page. workers.pool_warmup
# first: it limits BLAS threads before anything imports numpy. Imported by the forkserver only:
# importing it here would warm up the Faust process for nothing. workers.pool: each process is
# sent its initializer, _start_process, by name. workers.cli: what the console script (wirefeed)
# imports, and multiprocessing runs the main script again in every new process (Python 3.11's
# forkserver cannot preload __main__: it asks for a "main_path" that multiprocessing names
# "init_main_from_path").
_FORKSERVER_PRELOAD = ["workers.pool_warmup", "workers.pool", "workers.cli"]
# An ordinary news page (29 KB) that the warm-up extracts too.
_PROBE_PAGE = SAMPLE_PAGES / "ar-cnn-syria-clashes.html"


# A forkserver that died (the kernel's OOM killer) no longer reports its processes' ends: each reads
# as exit status 255, whether it ended or not (multiprocessing.popen_forkserver.Popen.poll), and
# as a process that exits with 255 itself (a C library's exit(-1)): _forkserver_gone tells them apart.
_FORKSERVER_GONE = 255
_PR_SET_PDEATHSIG = 1  # linux/prctl.h
# A process holds the channel's lock only to take a page or send a result: milliseconds, even for a
# large page or result on a busy machine. Held longer, its holder died with it.
_CHANNEL_HOLD_S = 5.0


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


def _start_pool(pool: pebble.ProcessPool, started: Future[int]) -> None:
    # Reading ``active`` starts a pebble pool that has not started: it forks the first processes
    # and waits for each until the forkserver answers, which a new forkserver does only once its
    # warm-up is done (seconds). pebble would otherwise do it in the first schedule(), on the event
    # loop; once started, it replaces processes in its own threads.
    try:
        pool.active
    except BaseException as exc:  # noqa: BLE001 - the pages waiting for the pool get it
        started.set_exception(exc)
    else:
        started.set_result(forkserver._forkserver._forkserver_pid)  # noqa: SLF001 - the one that forked them


def _forkserver_gone(pid: int) -> bool:
    """Whether the forkserver ``pid`` has died. Not a look at the current one: once a process of
    the dead one has ended, pebble starts its replacement, and multiprocessing a new forkserver."""
    if forkserver._forkserver._forkserver_pid != pid:  # noqa: SLF001 - multiprocessing has started another
        return True
    try:
        # WNOWAIT: not reaped, multiprocessing reaps it itself before it starts another
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:  # reaped: multiprocessing is starting another
        return True


def _channel_locks(pool: pebble.ProcessPool) -> Sequence[Any]:
    """The locks of the channel that ``pool``'s processes share, in the order pebble takes them."""
    mutex = pool._pool_manager.worker_manager.workers_channel.mutex  # noqa: SLF001 - pebble has no API for it
    return mutex.reader_mutex, mutex.writer_mutex


def _channel_jammed(locks: Sequence[Any]) -> bool:
    """Whether a process died holding one of the channel's ``locks``: it stays held for
    ``_CHANNEL_HOLD_S``. Blocks for that long, so not on the event loop.

    Taken, not only looked at: a single look sees the lock held whenever a live process is sending,
    and a pool rebuilt for nothing tries its pages again. Not "pebble did not stop the timed-out
    process within a second", which it also fails to do while it waits for a process to end, and
    which would find nothing when the process died on its own (pebble reports that without the
    lock), though the lock then stays held for good."""
    deadline = time.monotonic() + _CHANNEL_HOLD_S
    held = []
    try:
        for lock in locks:
            if not lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
                return True
            held.append(lock)
        return False
    finally:
        for lock in reversed(held):
            lock.release()


def _probe(page: Path) -> tuple[str | None, int]:
    """In an extraction process: how the page's extraction failed (None if it did not), and the
    address space the process has mapped after it, the measure RLIMIT_AS applies to."""
    try:
        result = extract.extract_document(
            page.read_text(encoding="utf-8"), f"https://probe.wirefeed.invalid/{page.stem}", ExtractionOptions()
        )
    except MemoryError as exc:
        # With the limit below what the process maps at its start, every allocation fails, some
        # outside the stage's own handling (language detection): what it maps says why.
        failure = f"{type(exc).__name__}: {exc}"
    else:
        failure = f"{result.reason}, {result.error_class}: {result.detail}" if isinstance(result, Failed) else None
    with open("/proc/self/statm") as statm:
        return failure, int(statm.read().split()[0]) * resource.getpagesize()


class _PoolRefused(RuntimeError):
    """pebble refused a task: the pool is stopped or its process manager failed."""


class PoolUnavailable(RuntimeError):
    """The pool cannot take work and could not be rebuilt (no process can be started): not the
    page's fault, so the page waits for the pool, as it would for Redis or Kafka."""


@dataclass(frozen=True, eq=False)
class _Generation:
    """One pebble pool of the ``ExtractionPool``: the first, or one that replaced a broken one."""

    processes: pebble.ProcessPool
    # Begun in a thread; its result is the pid of the forkserver that forked the first processes.
    started: Future[int]
    # Set once a rebuild has given the pool up: pebble's stop() never ends the futures of the
    # pages it is working on, which waited for their timeout and were dead-lettered as a timeout.
    replaced: asyncio.Event


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
        self._context.set_forkserver_preload(_FORKSERVER_PRELOAD)
        self._timeout_s = timeout_s
        self._processes = processes
        self._memory_limit_mb = memory_limit_mb
        self._tasks_per_process = tasks_per_process
        self._log_config = log_config
        self._free_processes = asyncio.Semaphore(processes)
        self._current = self._new_pool()

    def _new_pool(self) -> _Generation:
        """A pool and its start, begun in a thread at once: no process starts on the event loop."""
        pool = pebble.ProcessPool(
            max_workers=self._processes,
            max_tasks=self._tasks_per_process,
            initializer=_start_process,
            initargs=(self._memory_limit_mb, self._log_config),
            context=self._context,
        )
        started: Future[int] = Future()
        # Running, it cannot be cancelled: a page given up on while it waits (asyncio.wrap_future
        # passes the cancellation on) must not cancel the start that the other pages wait for.
        started.set_running_or_notify_cancel()
        threading.Thread(target=_start_pool, args=(pool, started), name="extraction-pool-start", daemon=True).start()
        return _Generation(pool, started, asyncio.Event())

    def _rebuild(self, broken: _Generation, error: BaseException) -> None:
        # pebble leaves a pool whose process manager failed (its forkserver was killed, e.g. by the
        # kernel's OOM killer) refusing every task for good; multiprocessing starts a new
        # forkserver for the new pool. Every page in flight sees the break: the first rebuilds.
        if broken is not self._current:
            return
        log.error("extraction pool broken (%r); starting a new one", error)
        # its pages in flight end as broken, and are tried once more in the new pool (extract)
        broken.replaced.set()
        broken.processes.stop()
        # stop() only asks: join() kills the old pool's surviving processes and ends its manager
        # threads (without it each rebuild leaks them for the worker's life). It blocks, so not
        # on the event loop.
        threading.Thread(
            target=broken.processes.join, kwargs={"timeout": 10}, name="extraction-pool-join", daemon=True
        ).start()
        self._current = self._new_pool()

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
        broke while working on the page (or was rebuilt meanwhile, for another page), the page is
        tried once more, and breaking it again is the page's doing (a ``pool_error`` failure)."""
        refused = broke = False
        while True:
            pool = self._current
            try:
                return await self._run(
                    pool, extract.extract_document, html, url, options,
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

    async def _run(self, pool: _Generation, function: Callable[..., T], *args: Any, **kwargs: Any) -> T | Failed:
        """``function(*args, **kwargs)`` in one of ``pool``'s processes, with the hard timeout: a
        ``timeout`` failure once it has run ``timeout_s`` on the event loop's monotonic clock, its
        process killed. Not pebble's own timeout, which times a task on the wall clock
        (time.time()): a clock step (NTP, a VM resumed) would kill every running extraction as a
        timeout, or let one run past it. A task goes to pebble only when one of its processes is
        free, so that its time is its own, not its wait for a process (it does include the start
        of a replacement process: milliseconds, from the warm forkserver). ``BrokenProcessPool``
        when the pool broke, or was rebuilt, before the task ended."""
        async with self._free_processes:
            try:
                if not pool.started.done():
                    await asyncio.wrap_future(pool.started)
                # a start that failed left the pool unstarted: schedule() would start it here, on the loop
                forkserver_pid = pool.started.result()
                future = pool.processes.schedule(function, args=args, kwargs=kwargs)
            except (RuntimeError, OSError) as exc:  # "Unexpected error within the Pool", or no fork
                raise _PoolRefused(str(exc)) from exc
            running = asyncio.wrap_future(future)
            replaced = asyncio.ensure_future(pool.replaced.wait())
            try:
                await asyncio.wait((running, replaced), timeout=self._timeout_s, return_when=asyncio.FIRST_COMPLETED)
            finally:
                # Given up on (the time is up, the pool was rebuilt, or the page was given up on:
                # its partition revoked, the worker stopping): the wrapper cancels pebble's future,
                # and pebble kills the process.
                running.cancel()
                replaced.cancel()
            if running.cancelled():
                if pool.replaced.is_set():
                    raise BrokenProcessPool("the extraction pool was rebuilt while it worked on the page")
                # The channel jammed (see _channel_jammed) before the page was sent, or its result:
                # not the page's doing, and every page after it would time out too.
                if await asyncio.to_thread(_channel_jammed, _channel_locks(pool.processes)):
                    raise BrokenProcessPool("a process died holding the extraction pool's channel")
                return Failed(
                    extract.STAGE,
                    "timeout",
                    "TimeoutError",
                    f"extraction did not finish within {self._timeout_s:g} s; its process was killed",
                )
            try:
                return running.result()
            except pebble.ProcessExpired as exc:
                if exc.exitcode == _FORKSERVER_GONE and _forkserver_gone(forkserver_pid):
                    # not the page's doing: the forkserver died, and its processes with it
                    raise BrokenProcessPool(f"the extraction forkserver died ({exc})") from exc
                # Killed by a signal (the OOM killer, a segfault) while it sent the page's result, it
                # left the channel jammed: the page is still the one that killed it. (A process ends
                # by a signal of pebble's only with the channel locked by pebble.)
                if (
                    exc.exitcode < 0
                    and not pool.replaced.is_set()  # the old pool's channel is closed
                    and await asyncio.to_thread(_channel_jammed, _channel_locks(pool.processes))
                ):
                    self._rebuild(pool, BrokenProcessPool(f"an extraction process died holding its channel ({exc})"))
                return Failed(extract.STAGE, "process_died", "ProcessExpired", f"extraction process died: {exc}")
            except BrokenProcessPool:
                raise
            except Exception as exc:  # noqa: BLE001 - e.g. a result that cannot be pickled back, or a TimeoutError of its own
                return Failed.from_exception(extract.STAGE, "pool_error", exc)

    def close(self) -> None:
        self._current.processes.stop()
        self._current.processes.join(timeout=10)


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
        pool._current.started.result()
        failure, mapped = pool._current.processes.schedule(_probe, args=(_PROBE_PAGE,), timeout=settings.extraction_timeout_s).result()
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
