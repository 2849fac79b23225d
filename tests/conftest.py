"""Shared fixtures. Integration tests run against the real local stack (deploy/local/stack.sh),
started here when it is not already running; every test run gets its own topics and Redis
prefix, so a developer's own stack and data are never touched."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from workers import localstack
from workers.settings import Settings

from tests.shared_data import REPO, SHARED, missing


def pytest_configure(config: pytest.Config) -> None:
    # Every test's settings are its own: a developer's exported WIREFEED_* would change them all
    # (and the workers the tests start) without a word.
    for name in [name for name in os.environ if name.upper().startswith("WIREFEED_")]:
        del os.environ[name]
    if absent := missing():
        raise pytest.UsageError(
            f"the tests read the seed pages and the evaluation sets from {SHARED}, the project's shared "
            f"folder checked out beside the repository; missing: {', '.join(str(p) for p in absent)}"
        )


def _stack_settings() -> Settings:
    # The test stack lives beside the demo stack's default ports, so running the tests never
    # stops or pollutes a stack that someone started by hand; below Linux's ephemeral range
    # (32768-60999), which any outgoing connection may hold as its local port when the stack starts.
    return Settings(
        _env_file=None,
        kafka_bootstrap="127.0.0.1:19092",
        redis_url="redis://127.0.0.1:16379/0",
        stack_dir=REPO / ".wirefeed" / "test-stack",
        session_timeout_s=6,
    )


@pytest.fixture(scope="session")
def stack() -> Iterator[Settings]:
    base = _stack_settings()
    started_here = False
    if not localstack.status(base):
        localstack.up(base)
        started_here = True
    assert localstack.services_ready(base, timeout_s=60), "local Kafka/Redis did not become ready"
    yield base
    if started_here:
        localstack.down(base)


@pytest.fixture
def settings(stack: Settings, tmp_path: Path) -> Settings:
    """Settings with topics, consumer group, Redis prefix and data dir of this test alone."""
    run = uuid.uuid4().hex[:10]
    return stack.model_copy(
        update={
            "app_name": f"wirefeed-test-{run}",
            "topic_pages_raw": f"test-{run}.pages.raw",
            "topic_articles": f"test-{run}.articles",
            "topic_dlq": f"test-{run}.pages.dlq",
            "topic_alerts": f"test-{run}.alerts",
            "topic_alerts_dlq": f"test-{run}.alerts.dlq",
            "pages_raw_partitions": 2,
            "articles_partitions": 2,
            "redis_prefix": f"wft{run}",
            "data_dir": tmp_path / "worker",
            "extraction_processes": 2,
            "extraction_timeout_s": 10.0,
            # the tests' webhook receivers listen on 127.0.0.1
            "alert_webhook_allow_private_addresses": True,
            # the tests' pages are real ones, dated years before the tests crawl them: old news
            # by the default, which its own tests check
            "alert_max_article_age_s": 100 * 365 * 86400.0,
        }
    )


@pytest.fixture
async def redis_client(settings: Settings) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(settings.redis_url.get_secret_value())
    yield client
    async for key in client.scan_iter(match=f"{settings.redis_prefix}:*", count=1000):
        await client.delete(key)
    await client.aclose()
