"""Two workers in one consumer group share the partitions and process every page once.

A kept page handled twice leaves no second trace (its article is unchanged, so it is not
published again), but every handling of a rejected page publishes a dead letter: empty pages on
every partition make a page handled twice, by either worker, a second letter on the DLQ."""

from __future__ import annotations

import base64
import json
import re
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from kafka import KafkaAdminClient
from worker_harness import WorkerProcess, read_topic, sync_redis, wait_for, wait_for_outcomes, wait_until_handled

from workers.feed import Record, produce
from workers.settings import Settings
from workers.topics import ensure_topics

pytestmark = pytest.mark.integration

PAGE = (Path(__file__).resolve().parents[2] / "workers" / "samples" / "pages" / "ar-cnn-syria-clashes.html").read_text()


def group_size(settings: Settings) -> int:
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    try:
        return len(admin.describe_groups([settings.group_id])[settings.group_id]["members"])
    finally:
        admin.close()


def assigned_partitions(worker: WorkerProcess, topic: str) -> set[int]:
    """The partitions of ``topic`` in the worker's last assignment, as Faust logs it (its assignor's
    protocol is its own, so the broker's group description cannot be decoded by kafka-python)."""
    tables = re.findall(rf"\| {re.escape(topic)}\s*\| \{{([^}}]*)\}}", worker.log_path.read_text(errors="replace"))
    if not tables:
        return set()
    partitions: set[int] = set()
    for part in tables[-1].split(","):
        low, _, high = part.strip().partition("-")
        partitions.update(range(int(low), int(high or low) + 1))
    return partitions


def test_two_workers_split_the_partitions_and_process_every_page(settings: Settings, tmp_path: Path):
    settings = settings.model_copy(update={"pages_raw_partitions": 4, "extraction_processes": 1})
    ensure_topics(settings)
    workers = [
        WorkerProcess(settings.model_copy(update={"data_dir": tmp_path / name}), tmp_path / f"{name}.log").start()
        for name in ("w1", "w2")
    ]
    try:
        def split_between_both() -> list[set[int]] | None:
            split = [assigned_partitions(worker, settings.topic_pages_raw) for worker in workers]
            return split if group_size(settings) == 2 and all(split) and not split[0] & split[1] else None

        split = wait_for(split_between_both, timeout_s=90, what="both workers holding partitions", worker=workers[0])
        assert split[0] | split[1] == {0, 1, 2, 3}

        now = datetime.now(UTC).isoformat()
        good = [
            Record(url.encode(), json.dumps({"url": url, "fetched_at": now, "html": PAGE}).encode())
            for url in (f"https://scale.example/story/{i}" for i in range(24))
        ]
        empty = [
            Record(url.encode(), json.dumps({"url": url, "fetched_at": now, "html": ""}).encode())
            for url in (f"https://scale.example/empty/{i}" for i in range(12))
        ]
        records = [page for pair in zip(good[::2], good[1::2], empty, strict=True) for page in pair]
        sent = produce(settings, records)
        partitions = {page.key: meta.partition for page, meta in zip(records, sent, strict=True)}
        assert {partitions[page.key] for page in good} == {partitions[page.key] for page in empty} == {0, 1, 2, 3}
        outcomes = wait_for_outcomes(sync_redis(settings), settings, records, sent, worker=workers[0], timeout_s=120)
        assert Counter(s["outcome"] for s in outcomes.values()) == {"kept": len(good), "dropped": len(empty)}
        assert all(worker.alive for worker in workers)
        # Delivery is at least once: a worker that stops before committing its last pages hands
        # them to the other, which handles them again. Once the group committed every record, a
        # second handling below is a real duplicate.
        wait_until_handled(workers[0], settings.topic_pages_raw)
    finally:
        exit_codes = [worker.stop() for worker in workers]
    assert exit_codes == [0, 0]
    # The workers are stopped: everything they published is on the topics, read to their end offsets.
    dead_letters = read_topic(settings, settings.topic_dlq, at_least=len(empty))
    letters = Counter(base64.b64decode(json.loads(r.value)["original_key_b64"]) for r in dead_letters)
    assert letters == Counter(page.key for page in empty)  # every empty page handled, each once
    article_ids = {outcomes[page.key.decode()]["article_id"] for page in good}
    assert len(article_ids) == len(good)
    published = Counter(r.key.decode() for r in read_topic(settings, settings.topic_articles, at_least=len(good)))
    assert published == Counter(article_ids)  # every kept page's article, each once
