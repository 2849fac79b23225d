"""Fixtures of the integration tests that run a worker process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from worker_harness import WorkerProcess

from workers.settings import Settings
from workers.topics import ensure_topics


@pytest.fixture
def worker(settings: Settings, tmp_path: Path) -> Iterator[WorkerProcess]:
    """A worker process on the test's own topics, stopped after the test."""
    ensure_topics(settings)
    process = WorkerProcess(settings, tmp_path / "worker.log").start()
    yield process
    process.stop()
