"""Two workers in one consumer group share the partitions and process every page once."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from kafka import KafkaAdminClient
from worker_harness import WorkerProcess, sync_redis, wait_for, wait_for_outcomes

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
        records = [
            Record(url.encode(), json.dumps({"url": url, "fetched_at": now, "html": PAGE}).encode())
            for url in (f"https://scale.example/story/{i}" for i in range(24))
        ]
        sent = produce(settings, records)
        assert {meta.partition for meta in sent} == {0, 1, 2, 3}
        outcomes = wait_for_outcomes(sync_redis(settings), settings, records, sent, worker=workers[0], timeout_s=120)
        assert {s["outcome"] for s in outcomes.values()} == {"kept"}
        assert all(worker.alive for worker in workers)
    finally:
        for worker in workers:
            worker.stop()
