"""The extraction pool outlives its own process manager, on real processes (no Kafka needed)."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

from worker_harness import wait_for
from workers.pool import ExtractionPool
from workers.stages.extract import ExtractionOptions
from workers.stages.outcome import Kept

SAMPLE = (Path(__file__).resolve().parents[2] / "workers" / "samples" / "pages" / "ar-cnn-syria-clashes.html").read_text()


def forkservers() -> list[int]:
    """This process's multiprocessing forkservers (the parents of the pool's workers)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if parent == os.getpid() and b"multiprocessing.forkserver" in cmdline:
            found.append(int(entry.name))
    return found


def extract(pool: ExtractionPool) -> object:
    return asyncio.run(pool.extract(SAMPLE, "https://arabic.cnn.example/syria", ExtractionOptions()))


def test_a_pool_whose_forkserver_was_killed_is_rebuilt_and_takes_the_next_page() -> None:
    # one page per process: the next page needs a new process, which the dead forkserver cannot
    # fork; the kernel's OOM killer picking the warm forkserver looks exactly like this
    pool = ExtractionPool(processes=1, timeout_s=60, memory_limit_mb=2048, tasks_per_process=1)
    try:
        assert isinstance(extract(pool), Kept)
        [forkserver] = forkservers()
        os.kill(forkserver, signal.SIGKILL)
        wait_for(lambda: forkserver not in forkservers(), timeout_s=10, what="the forkserver to die")
        for _ in range(3):
            assert isinstance(extract(pool), Kept)
    finally:
        pool.close()
