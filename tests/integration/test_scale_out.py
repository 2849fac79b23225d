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
from hanging_pages import HANGING_HOST, PREAMBLE
from kafka import KafkaAdminClient
from worker_harness import (
    WorkerProcess,
    committed_offsets,
    hanging_page,
    outcomes_for,
    read_topic,
    sync_redis,
    wait_for,
    wait_for_outcomes,
    wait_until_handled,
)

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


def revocations(worker: WorkerProcess) -> int:
    """How many times the worker's consumer began a rebalance (aiokafka logs it at every join,
    the first one included)."""
    return worker.log_path.read_text(errors="replace").count("Revoking previously assigned partitions")


def test_a_worker_joining_gets_partitions_without_waiting_for_the_pages_in_flight(settings: Settings, tmp_path: Path):
    # The pages behind the heads never end extracting (hanging_pages): each runs until the
    # extraction timeout, set longer than the second worker takes to start and join (about 20 s
    # on two busy CPUs, so 60 s leaves room for a slower machine). The rebalance waited for every
    # page in flight (for its whole group: nobody consumes meanwhile) until the broker gave up on
    # the old member, and the old member's pages, still running, were processed a second time by
    # the new one.
    settings = settings.model_copy(update={
        "pages_raw_partitions": 4, "extraction_timeout_s": 60.0, "commit_interval_s": 0.5,
    })
    ensure_topics(settings)
    # empty pages at the heads: dropped before extraction, whatever the hanging pages keep busy
    heads = {partition: Record(f"https://scale.example/head/{partition}".encode(), json.dumps({
        "url": f"https://scale.example/head/{partition}", "fetched_at": datetime.now(UTC).isoformat(), "html": "",
    }).encode()) for partition in range(4)}
    hanging = {partition: hanging_page(str(partition)) for partition in range(4)}
    sent = {partition: produce(settings, [heads[partition], hanging[partition]], partition=partition) for partition in range(4)}
    first_hanging = {partition: metas[1].offset for partition, metas in sent.items()}
    records = [record for partition in range(4) for record in (heads[partition], hanging[partition])]
    metas = [meta for partition in range(4) for meta in sent[partition]]
    client = sync_redis(settings)

    workers = [
        WorkerProcess(settings.model_copy(update={"data_dir": tmp_path / name}), tmp_path / f"{name}.log", preamble=PREAMBLE)
        for name in ("w1", "w2")
    ]
    first, second = workers
    try:
        first.start()
        # the head of every partition committed: the hanging page behind it is in flight
        wait_for(
            lambda: committed_offsets(settings, settings.topic_pages_raw) == first_hanging,
            timeout_s=120, what="the heads committed", worker=first,
        )
        joins = revocations(first)
        second.start()
        wait_for(lambda: revocations(first) > joins, timeout_s=120, what="the rebalance to begin", worker=second)
        split = wait_for(
            lambda: [assigned_partitions(worker, settings.topic_pages_raw) for worker in workers]
            if assigned_partitions(second, settings.topic_pages_raw) else None,
            timeout_s=120, what="partitions for the new worker", worker=second, interval_s=0.1,
        )
        # A rebalance that waited for the pages in flight ends only once they ended (their timeout).
        assert not outcomes_for(client, settings, records[1::2], metas[1::2]), "the rebalance waited for the hanging pages"
        assert split[0] | split[1] == {0, 1, 2, 3} and not split[0] & split[1], split
        assert committed_offsets(settings, settings.topic_pages_raw) == first_hanging

        outcomes = wait_for_outcomes(client, settings, records, metas, worker=first, timeout_s=180)
        wait_until_handled(first, settings.topic_pages_raw, timeout_s=120)
        assert all(worker.alive for worker in workers)
    finally:
        codes = [worker.terminate(timeout_s=30)[0] if worker.alive else None for worker in workers]
        for worker in workers:
            worker.kill()
    assert codes == [0, 0]
    assert {status["reason"] for url, status in outcomes.items() if url.startswith(f"https://{HANGING_HOST}/")} == {"timeout"}
    # each page handled once: none of the first worker's pages in flight at the rebalance went
    # on to a dead letter of its own beside the one of the worker that then got it
    letters = Counter(json.loads(r.value)["url"] for r in read_topic(settings, settings.topic_dlq, at_least=len(records)))
    assert letters == Counter(record.key.decode() for record in records)
