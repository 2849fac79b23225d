"""The extraction pool's hard limits, on real processes (no Kafka needed)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import TypeVar

import pebble.pool.process
import pytest
from worker_harness import wait_for

import workers.pool as pool_module
from workers.pool import ExtractionPool, check_settings
from workers.settings import MIB, Settings
from workers.stages.extract import ExtractionOptions
from workers.stages.outcome import Failed, Kept

T = TypeVar("T")

REPO = Path(__file__).resolve().parents[2]
SAMPLE = (REPO / "workers" / "samples" / "pages" / "ar-cnn-syria-clashes.html").read_text()
OPTIONS = ExtractionOptions()
NOWHERE = "127.0.0.1:1"  # a port nothing listens on


def slow_html(paragraphs: int) -> str:
    return "<html><body>" + "".join(
        f"<div><p>{' '.join(f'word{(i * 31 + j) % 997}' for j in range(60))} <a href='/x{i}'>l</a></p></div>"
        for i in range(paragraphs)
    ) + "</body></html>"


@pytest.fixture
def pool():
    created = []

    def make(**overrides: float) -> ExtractionPool:
        options = {"processes": 1, "timeout_s": 30.0, "memory_limit_mb": 2048, "tasks_per_process": 100} | overrides
        created.append(ExtractionPool(**options))
        return created[-1]

    yield make
    for each in created:
        each.close()


def children_of(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry.name))
    return found


def descendants() -> set[int]:
    frontier, seen = {os.getpid()}, set()
    while frontier:
        pid = frontier.pop()
        for child in children_of(pid) - seen:
            seen.add(child)
            frontier.add(child)
    return seen


def forkservers() -> set[int]:
    """This process's multiprocessing forkserver (the parent of every pool's processes), alive."""
    found = set()
    for pid in children_of(os.getpid()):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"multiprocessing.forkserver" in cmdline:  # empty once it is a zombie
            found.add(pid)
    return found


def cpu_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return -1
    return int(fields[11]) + int(fields[12])  # utime + stime


async def kill_forkserver() -> None:
    """The next process start needs a new forkserver, which imports and warms up (seconds) before
    it forks anything."""
    for pid in forkservers():
        os.kill(pid, signal.SIGKILL)
    await asyncio.to_thread(wait_for, lambda: not forkservers(), timeout_s=10, what="the forkserver to die")


def forkserver_warming_up() -> bool:
    """A forkserver of this process that has forked no process yet: still in its warm-up."""
    return any(not children_of(pid) for pid in forkservers())


async def watching_the_warm_up(work: Awaitable[T]) -> tuple[T, bool]:
    """``work``'s result, and whether the event loop ran while a forkserver was warming up: a loop
    blocked until the forkserver forks a process never sees it warming up."""
    task = asyncio.ensure_future(work)
    seen = False
    while not task.done():
        seen = seen or forkserver_warming_up()
        await asyncio.sleep(0.01)
    return task.result(), seen


def run_worker(tmp_path: Path, memory_limit_mb: int, *, hard_limit: int | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m workers worker`` with only this setting (and a broker that is not there: a
    worker that got past its startup checks fails on it instead)."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("WIREFEED_")}
    env |= {
        "PYTHONPATH": str(REPO),
        "WIREFEED_KAFKA_BOOTSTRAP": NOWHERE,
        "WIREFEED_EXTRACTION_MEMORY_LIMIT_MB": str(memory_limit_mb),
    }

    def limit_address_space() -> None:
        if hard_limit is not None:
            resource.setrlimit(resource.RLIMIT_AS, (hard_limit, hard_limit))

    return subprocess.run(
        [sys.executable, "-m", "workers", "worker"],
        env=env,
        cwd=tmp_path,  # no .env file
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=limit_address_space,
    )


async def test_a_page_over_the_timeout_fails_and_the_pool_goes_on(pool):
    extraction = pool(timeout_s=1.0)
    result = await extraction.extract(slow_html(14000), "https://slow.example/", OPTIONS)
    assert isinstance(result, Failed) and result.reason == "timeout" and result.stage == "extract"
    assert isinstance(await extraction.extract(SAMPLE, "https://arabic.cnn.com/x", OPTIONS), Kept)


class SteppingClock:
    """pebble's ``time`` module as a wall clock that NTP steps: each reading is an hour after the
    one before (``step_s``), or never moves (0, a clock stepped back that has not caught up)."""

    sleep = staticmethod(time.sleep)

    def __init__(self, step_s: float) -> None:
        self._now = time.time()
        self._step_s = step_s

    def time(self) -> float:
        self._now += self._step_s
        return self._now


async def test_a_wall_clock_step_forward_does_not_kill_running_extractions(pool, monkeypatch: pytest.MonkeyPatch):
    # pebble's process manager reads the clock when a task starts, then every 0.1 s to time it
    # out: on this clock, pebble's own timeout fires at its first look at a task that runs 2 s.
    extraction = pool(timeout_s=30.0)
    monkeypatch.setattr(pebble.pool.process, "time", SteppingClock(3600.0))
    result = await extraction._run(extraction._current, time.sleep, 2.0)
    assert result is None, result  # what time.sleep returns: it ran to its end
    assert isinstance(await extraction.extract(SAMPLE, "https://arabic.cnn.com/x", OPTIONS), Kept)


async def test_an_extraction_is_timed_out_on_the_monotonic_clock_whatever_the_wall_clock(pool, monkeypatch: pytest.MonkeyPatch):
    extraction = pool(timeout_s=0.5)
    monkeypatch.setattr(pebble.pool.process, "time", SteppingClock(0.0))  # the wall clock stands still
    # the pool runs anything picklable: a task that would run for ten minutes
    worker = await asyncio.wrap_future(extraction._current.processes.schedule(os.getpid))
    hanging = extraction._run(extraction._current, time.sleep, 600)
    result = await asyncio.wait_for(hanging, timeout=60)
    assert isinstance(result, Failed) and (result.stage, result.reason) == ("extract", "timeout"), result
    # its process was killed, and the pool goes on in a new one
    await asyncio.to_thread(wait_for, lambda: not Path(f"/proc/{worker}").exists(), timeout_s=20, what="the process killed")
    assert isinstance(await extraction.extract(SAMPLE, "https://arabic.cnn.com/x", OPTIONS), Kept)


async def test_a_timeout_ends_a_process_stuck_in_a_c_call_at_once_and_the_next_page_is_not_kept_waiting(pool):
    # pebble's SIGTERM handler is Python: it runs when the C call returns, and pebble waits 3 s
    # before SIGKILL, starting no replacement meanwhile. The next page waited for a process
    # through its own timeout and was dead-lettered as a timeout too.
    extraction = pool(timeout_s=2.0)
    stuck = await extraction._run(  # noqa: SLF001 - a C call of our choosing, as a page's could be
        extraction._current, hashlib.pbkdf2_hmac, "sha256", b"page", b"salt", 10**9  # noqa: SLF001
    )
    assert isinstance(stuck, Failed) and stuck.reason == "timeout"
    assert await extraction._run(extraction._current, len, "next page") == 9  # noqa: SLF001


async def test_a_killed_extraction_process_fails_the_page_and_is_replaced(pool):
    extraction = pool()  # one process, which serves every task below (it retires after 100)
    assert isinstance(await extraction.extract(SAMPLE, "https://arabic.cnn.com/x", OPTIONS), Kept)
    # The pool's one extraction process says who it is (see the warm-up test for this probe).
    worker = await asyncio.wrap_future(extraction._current.processes.schedule(eval, args=("__import__('os').getpid()",)))
    assert worker in descendants() and worker != os.getpid()
    idle = cpu_ticks(worker)
    running = asyncio.create_task(extraction.extract(slow_html(20000), "https://slow.example/", OPTIONS))
    # Kill it as the OOM killer would, once it is busy on the page (its CPU time grows), not before
    # it took the page: a page still queued would simply go to the replacement.
    await asyncio.to_thread(
        wait_for, lambda: cpu_ticks(worker) >= idle + 20, timeout_s=30, what="the extraction process busy on the page"
    )
    assert not running.done()
    os.kill(worker, signal.SIGKILL)
    result = await running
    assert isinstance(result, Failed) and result.reason == "process_died"
    assert isinstance(await extraction.extract(SAMPLE, "https://arabic.cnn.com/x", OPTIONS), Kept)


async def test_a_new_extraction_process_imports_nothing_the_forkserver_could_have(pool, monkeypatch: pytest.MonkeyPatch):
    """Each new process was sent its initializer from workers.pool, which the forkserver had not
    imported: every start imported ~160 modules (0.15-0.25 s) before its first page."""
    monkeypatch.setattr(pool_module, "_FORKSERVER_PRELOAD", [*pool_module._FORKSERVER_PRELOAD, "import_recorder"])
    await kill_forkserver()  # the next one imports the recorder, after everything else
    extraction = pool(tasks_per_process=1)
    # by extract: the first pool started after a forkserver was killed can find it gone (it is
    # rebuilt), with the code before too
    assert isinstance(await extraction.extract(SAMPLE, "https://arabic.cnn.com/x", OPTIONS), Kept)
    for _ in range(2):  # one page per process: each runs in a process started for it
        imported = await extraction._run(extraction._current, eval, "__import__('import_recorder').IMPORTED")
        # but for what multiprocessing imports to start a process, which the forkserver never does
        assert [name for name in imported if not name.startswith("multiprocessing.")] == [], imported


async def test_the_memory_cap_stops_a_runaway_page_and_the_pool_goes_on(pool):
    # The cap is on address space, which starts at ~380 MB in a warm extraction process; the page
    # reaches 700 MB within seconds. Without the cap it is extracted (Kept) after a minute or
    # two, so the timeout is far beyond both: a timeout cannot pass for the cap.
    extraction = pool(memory_limit_mb=700, timeout_s=600.0)
    result = await extraction.extract(slow_html(60000), "https://huge.example/", OPTIONS)
    assert isinstance(result, Failed), result
    assert (result.stage, result.reason, result.error_class) == ("extract", "extractor_error", "MemoryError"), result
    assert isinstance(await extraction.extract(SAMPLE, "https://arabic.cnn.com/x", OPTIONS), Kept)


async def test_every_extraction_process_starts_warm_even_a_replacement(pool):
    """The forkserver runs the warm-up (workers/pool_warmup.py) before it forks: a process forked
    after the first one was retired has dateparser's parser and justext's stop lists already."""
    warm_pool = pool(tasks_per_process=1)
    for _ in range(2):  # one page per process: the second runs in a replacement
        assert isinstance(await warm_pool.extract(SAMPLE, "https://example.com/a", OPTIONS), Kept)
        # the pool has no API for running anything else; its pebble pool does, and a builtin
        # with a string argument is what pickles into the process without this test module
        probe = warm_pool._current.processes.schedule(eval, args=(_DATEPARSER_READY,))
        assert await asyncio.wrap_future(probe) == (1, 1)


_DATEPARSER_READY = (
    "(lambda info: (info.currsize, info.misses))"
    "(__import__('htmldate.extractors', fromlist=['_']).get_external_parser.cache_info())"
)


# A result whose pickling, to be sent back, kills its process (SIGKILL, as the OOM killer would),
# with the lock of the channel that the pool's processes share held: no process could send a
# result, or take a page, and pebble could not stop one, until pebble's 60 s lock timeout.
_DIES_WHILE_ITS_RESULT_IS_SENT = (
    "type('DiesWhenPickled', (), {'__reduce__': "
    "lambda self: __import__('os').kill(__import__('os').getpid(), 9)})()"
)


async def test_a_process_killed_while_it_sends_its_result_costs_its_page_and_not_the_pool(pool):
    # Each page after it failed as a timeout ("its process was killed", when none was) for about
    # two minutes, until pebble's lock timeouts ended every process and the pool was rebuilt.
    extraction = pool(processes=2, timeout_s=10.0)
    assert isinstance(await extraction.extract(SAMPLE, "https://arabic.cnn.com/x", OPTIONS), Kept)
    result = await extraction._run(extraction._current, eval, _DIES_WHILE_ITS_RESULT_IS_SENT)
    assert isinstance(result, Failed) and (result.stage, result.reason) == ("extract", "process_died"), result
    for _ in range(3):
        assert isinstance(await extraction.extract(SAMPLE, "https://arabic.cnn.com/x", OPTIONS), Kept)


class KillsTheProcessThatTakesIt:
    """A page whose unpickling, in the process that takes it, kills that process, as the OOM killer
    would, with the channel locked: pebble does not tell the page's future when a process dies
    before it acknowledged its page while another process is working, so the page only times out."""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return eval, ("__import__('os').kill(__import__('os').getpid(), 9)",)


async def test_a_process_killed_while_it_takes_its_page_times_the_page_out_once_and_the_pool_is_rebuilt(pool):
    extraction = pool(processes=2, timeout_s=5.0)
    assert isinstance(await extraction.extract(SAMPLE, "https://arabic.cnn.com/x", OPTIONS), Kept)
    # a page at work in one process: pebble blames a dead process's page only when the pool has one
    busy = extraction._current.processes.schedule(hashlib.pbkdf2_hmac, args=("sha256", b"page", b"salt", 10**9))
    try:
        await asyncio.to_thread(wait_for, busy.running, timeout_s=30, what="a page at work")
        with pytest.raises(BrokenProcessPool):  # not its own failure: extract tries it again
            await extraction._run(extraction._current, len, KillsTheProcessThatTakesIt())
    finally:
        busy.cancel()
    for _ in range(3):
        assert isinstance(await extraction.extract(SAMPLE, "https://arabic.cnn.com/x", OPTIONS), Kept)


async def test_a_process_that_exits_with_status_255_itself_costs_its_page_and_not_the_pool(pool):
    # 255 is also what a process reads as once its forkserver died: the pool was rebuilt, for
    # nothing, the page dead-lettered as a pool_error and the page beside it as a timeout.
    extraction = pool(processes=2, timeout_s=30.0)
    assert isinstance(await extraction.extract(SAMPLE, "https://arabic.cnn.com/x", OPTIONS), Kept)
    current = extraction._current
    beside = asyncio.create_task(extraction._run(current, time.sleep, 3))
    culprit = await extraction._run(current, eval, "__import__('time').sleep(0.5) or __import__('os')._exit(255)")
    assert isinstance(culprit, Failed) and (culprit.stage, culprit.reason) == ("extract", "process_died"), culprit
    assert await beside is None  # what time.sleep returns: it ran to its end
    assert extraction._current is current


async def test_a_page_in_flight_when_the_pool_is_rebuilt_is_extracted_in_the_new_pool(pool):
    # pebble's stop() leaves the futures of the tasks it is working on pending: the page waited for
    # its timeout and was dead-lettered as a timeout.
    extraction = pool(timeout_s=30.0)
    broken = extraction._current
    worker = await asyncio.wrap_future(broken.processes.schedule(eval, args=("__import__('os').getpid()",)))
    idle = cpu_ticks(worker)
    page = asyncio.create_task(extraction.extract(slow_html(3000), "https://slow.example/", OPTIONS))
    await asyncio.to_thread(
        wait_for, lambda: cpu_ticks(worker) >= idle + 20, timeout_s=30, what="the extraction process busy on the page"
    )
    extraction._rebuild(broken, RuntimeError("a simulated break"))
    assert isinstance(await page, Kept)


async def test_a_rebuild_stops_the_processes_of_the_broken_pool(pool):
    extraction = pool(processes=2, tasks_per_process=100)
    broken = extraction._current
    # the pebble pool runs anything picklable; a builtin with a string argument needs no import
    probes = [broken.processes.schedule(eval, args=("__import__('os').getpid()",)) for _ in range(8)]
    old = {await asyncio.wrap_future(probe) for probe in probes}
    assert old
    extraction._rebuild(broken, RuntimeError("a simulated break"))
    assert isinstance(await extraction.extract(SAMPLE, "https://arabic.cnn.com/x", OPTIONS), Kept)

    def gone() -> bool:
        return not any(Path(f"/proc/{pid}").exists() for pid in old)

    await asyncio.to_thread(wait_for, gone, timeout_s=20, what="the broken pool's processes to stop")


async def test_the_event_loop_runs_while_the_pool_starts_its_first_processes(pool):
    # pebble starts a pool's processes when it is first used; each start waits for the forkserver,
    # and a new one answers only after its warm-up. Heartbeats, commits and /metrics share the loop.
    await kill_forkserver()
    extraction = pool()
    result, loop_ran = await watching_the_warm_up(extraction.extract(SAMPLE, "https://arabic.cnn.com/x", OPTIONS))
    assert isinstance(result, Kept)
    assert loop_ran


async def test_the_event_loop_runs_while_a_broken_pool_is_rebuilt(pool):
    extraction = pool()
    assert isinstance(await extraction.extract(SAMPLE, "https://arabic.cnn.com/x", OPTIONS), Kept)
    broken = extraction._current
    await kill_forkserver()  # the pool breaks: its processes look dead to it
    await asyncio.to_thread(wait_for, lambda: not broken.processes.active, timeout_s=10, what="the pool to see its break")
    result, loop_ran = await watching_the_warm_up(extraction.extract(SAMPLE, "https://arabic.cnn.com/x", OPTIONS))
    assert isinstance(result, Kept)
    assert extraction._current is not broken
    assert loop_ran


def test_a_memory_limit_above_the_hard_limit_stops_the_worker_at_start(tmp_path: Path):
    """An extraction process cannot raise its inherited hard limit (systemd LimitAS=, ulimit -v):
    every process would fail to start and every page be dead-lettered as a pool_error."""
    inherited = resource.getrlimit(resource.RLIMIT_AS)[1]
    hard = 3 * 1024 * MIB if inherited == resource.RLIM_INFINITY else min(inherited, 3 * 1024 * MIB)
    worker = run_worker(tmp_path, hard // MIB + 1, hard_limit=hard)
    assert worker.returncode == 2, worker.stderr
    assert worker.stderr.count("\n") == 1, worker.stderr
    assert "WIREFEED_EXTRACTION_MEMORY_LIMIT_MB" in worker.stderr and "hard address-space limit" in worker.stderr


def test_a_memory_limit_below_a_warm_extraction_process_stops_the_worker_at_start(tmp_path: Path):
    """256 MB passes the setting's own bound, but a warm extraction process maps more than that
    already: an ordinary page failed as a pool_error, the page blamed for the configuration."""
    worker = run_worker(tmp_path, 256)
    assert worker.returncode == 2, worker.stderr
    assert worker.stderr.count("\n") == 1, worker.stderr
    assert "WIREFEED_EXTRACTION_MEMORY_LIMIT_MB=256 is not above" in worker.stderr


async def test_the_startup_check_accepts_a_memory_limit_pages_are_extracted_within():
    # the limit the memory cap test extracts a page within
    await asyncio.to_thread(check_settings, Settings(_env_file=None, extraction_memory_limit_mb=700))


# Makes this process and its children see 64 CPUs, as on a large machine: glibc's answers
# (OpenBLAS asks get_nprocs and sched_getaffinity), not the CPUs the test machine has.
SIXTY_FOUR_CPUS = r"""
#define _GNU_SOURCE
#include <sched.h>
#include <string.h>
#include <unistd.h>
#include <dlfcn.h>
#define CPUS 64
long sysconf(int name) {
    static long (*real)(int);
    if (name == _SC_NPROCESSORS_ONLN || name == _SC_NPROCESSORS_CONF) return CPUS;
    if (!real) real = (long (*)(int))dlsym(RTLD_NEXT, "sysconf");
    return real(name);
}
int sched_getaffinity(pid_t pid, size_t size, cpu_set_t *set) {
    memset(set, 0, size);
    for (int cpu = 0; cpu < CPUS && cpu < (int)(size * 8); cpu++) CPU_SET_S(cpu, size, set);
    return 0;
}
int get_nprocs(void) { return CPUS; }
int get_nprocs_conf(void) { return CPUS; }
"""


def test_the_startup_check_accepts_the_kubernetes_memory_limit_on_a_64_cpu_machine(tmp_path: Path):
    """numpy's OpenBLAS, started with a thread (and ~41 MB buffer) per CPU in the forkserver, left
    every extraction process with ~2.4 GB mapped on 64 CPUs: the limit deploy/k8s/config.env sets (1024) refused."""
    compiler = shutil.which("cc")
    assert compiler, "no C compiler to build the CPU-count shim (deploy/local/install-deps.sh installs gcc)"
    (tmp_path / "cpus.c").write_text(SIXTY_FOUR_CPUS)
    shim = tmp_path / "cpus.so"
    subprocess.run([compiler, "-shared", "-fPIC", "-o", shim, tmp_path / "cpus.c", "-ldl"], check=True)
    env = {name: value for name, value in os.environ.items() if not name.startswith("WIREFEED_")}
    env |= {"PYTHONPATH": str(REPO), "LD_PRELOAD": str(shim)}
    check = subprocess.run(
        [
            sys.executable,
            "-c",
            "import os; from workers.pool import check_settings; from workers.settings import Settings; "
            "print(os.cpu_count()); check_settings(Settings(_env_file=None, extraction_memory_limit_mb=1024))",
        ],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert check.returncode == 0, check.stderr
    assert check.stdout.split() == ["64"]  # the shim took


async def test_a_pool_whose_forkserver_was_killed_is_rebuilt_and_takes_the_next_page(pool):
    # One page per process: the next page needs a new process, which the dead forkserver cannot
    # fork; the kernel's OOM killer picking the warm forkserver looks exactly like this. (Last in
    # this file: the forkserver is shared by every pool of the process; the rebuild starts another.)
    extraction = pool(tasks_per_process=1)
    assert isinstance(await extraction.extract(SAMPLE, "https://arabic.cnn.com/x", OPTIONS), Kept)
    [forkserver] = forkservers()
    os.kill(forkserver, signal.SIGKILL)
    await asyncio.to_thread(wait_for, lambda: forkserver not in forkservers(), timeout_s=10, what="the forkserver to die")
    for _ in range(3):
        assert isinstance(await extraction.extract(SAMPLE, "https://arabic.cnn.com/x", OPTIONS), Kept)


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


async def test_pages_in_flight_when_the_forkserver_dies_are_extracted_again_and_its_processes_die_with_it(pool):
    # Its processes read as exit status 255 once it is gone, ended or not: both pages were
    # dead-lettered as process_died, and the old processes, no longer the pool's, went on taking
    # pages from its channel, untimed and past close(). (Last in this file, like the test above.)
    extraction = pool(processes=2)
    assert isinstance(await extraction.extract(SAMPLE, "https://arabic.cnn.com/x", OPTIONS), Kept)
    [forkserver] = forkservers()
    old_processes = children_of(forkserver)
    assert len(old_processes) == 2
    slow = slow_html(1000)
    pages = [asyncio.create_task(extraction.extract(slow, f"https://slow.example/{n}", OPTIONS)) for n in range(2)]
    await asyncio.sleep(0.5)
    os.kill(forkserver, signal.SIGKILL)
    results = await asyncio.gather(*pages)
    assert all(isinstance(result, Kept) for result in results), results
    await asyncio.to_thread(
        wait_for, lambda: not any(alive(pid) for pid in old_processes), timeout_s=10, what="the old processes to end"
    )

