"""Fixtures of the unit tests that need a real Redis: one of their own, never the local stack's."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.worker_harness import PrivateRedis


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A redis-server of the test module alone: unit tests run without the local stack."""
    server = PrivateRedis(tmp_path_factory.mktemp("redis")).start()
    try:
        yield server.url
    finally:
        server.stop()
