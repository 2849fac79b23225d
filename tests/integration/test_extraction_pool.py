"""The extraction pool's hard limits, on real processes (no Kafka needed)."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest
from worker_harness import wait_for

from workers.pool import ExtractionPool
from workers.stages.extract import ExtractionOptions
from workers.stages.outcome import Failed, Kept

SAMPLE = (Path(__file__).resolve().parents[2] / "workers" / "samples" / "pages" / "ar-cnn-syria-clashes.html").read_text()
OPTIONS = ExtractionOptions()


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


async def test_a_page_over_the_timeout_fails_and_the_pool_goes_on(pool):
    extraction = pool(timeout_s=1.0)
    result = await extraction.extract(slow_html(14000), "https://slow.example/", OPTIONS)
    assert isinstance(result, Failed) and result.reason == "timeout" and result.stage == "extract"
    assert isinstance(await extraction.extract(SAMPLE, "https://arabic.cnn.com/x", OPTIONS), Kept)


async def test_a_killed_extraction_process_fails_the_page_and_is_replaced(pool):
    extraction = pool()  # one process, which serves every task below (it retires after 100)
    assert isinstance(await extraction.extract(SAMPLE, "https://arabic.cnn.com/x", OPTIONS), Kept)
    # The pool's one extraction process says who it is (see the warm-up test for this probe).
    worker = await asyncio.wrap_future(extraction._pool.schedule(eval, args=("__import__('os').getpid()",)))
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
        probe = warm_pool._pool.schedule(eval, args=(_DATEPARSER_READY,))
        assert await asyncio.wrap_future(probe) == (1, 1)


_DATEPARSER_READY = (
    "(lambda info: (info.currsize, info.misses))"
    "(__import__('htmldate.extractors', fromlist=['_']).get_external_parser.cache_info())"
)


async def test_a_rebuild_stops_the_processes_of_the_broken_pool(pool):
    extraction = pool(processes=2, tasks_per_process=100)
    broken = extraction._pool
    # the pebble pool runs anything picklable; a builtin with a string argument needs no import
    probes = [broken.schedule(eval, args=("__import__('os').getpid()",)) for _ in range(8)]
    old = {await asyncio.wrap_future(probe) for probe in probes}
    assert old
    extraction._rebuild(broken, RuntimeError("a simulated break"))
    assert isinstance(await extraction.extract(SAMPLE, "https://arabic.cnn.com/x", OPTIONS), Kept)

    def gone() -> bool:
        return not any(Path(f"/proc/{pid}").exists() for pid in old)

    await asyncio.to_thread(wait_for, gone, timeout_s=20, what="the broken pool's processes to stop")


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
