"""Replay rate against the live rate, on the same pages, the real broker and Redis, one worker.

1. Live: the pages are produced into a fresh ``pages.raw``; the clock runs from the first produce
   to the last page outcome in Redis (the worker is warmed up first).
2. Replay: ``workers.replay.feed`` copies the same range back into ``pages.raw`` (the default
   mode of ``wirefeed replay``). Measured: records/s fed, and end-to-end pages/s processed by the
   same worker until every copy has its outcome. The articles are unchanged, so the replay
   writes nothing but page outcomes: the difference to live is the sink's share.

Prints one JSON document. Usage (the local stack of the settings, started when down):

    python bench/replay.py [--bench ../shared/bench] [--pages N] [--processes N] [--rate R] [--out FILE]
"""

from __future__ import annotations

import argparse
import io
import time
from datetime import UTC, datetime
from pathlib import Path

from common import REPO, emit, load_pages, local_stack, page_record, warm_worker
from kafka import KafkaConsumer
from worker_harness import page_status, wait_for, wait_for_outcomes

from workers.feed import produce
from workers.replay import Progress, ReplayMarker, feed, new_replay_id, plan_replay
from workers.settings import Settings


def measure(base: Settings, pages: list[tuple[str, bytes]], *, processes: int, rate: float | None, log_dir: Path) -> dict[str, object]:
    with warm_worker(base, "replay", processes=processes, log_dir=log_dir, warm_page=pages[0][1]) as (settings, client, worker):
        records = [page_record(url, raw) for url, raw in pages]
        start = time.perf_counter()
        sent = produce(settings, records)
        wait_for_outcomes(client, settings, records, sent, worker=worker, timeout_s=1800)
        live_s = time.perf_counter() - start

        consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap)
        try:
            plan = plan_replay(consumer, settings.topic_pages_raw)
        finally:
            consumer.close()
        # The copies land after everything so far, in the same partitions, one per page.
        ends = {r.partition: r.end for r in plan.ranges}
        marker = ReplayMarker(new_replay_id(datetime.now(UTC)), alerts=False)
        start = time.perf_counter()
        quiet = Progress(plan.total, out=io.StringIO())
        fed = feed(settings, plan, into=settings.topic_pages_raw, marker=marker, rate=rate, progress=quiet)
        fed_s = time.perf_counter() - start

        def replayed() -> bool:
            return all(
                int(page_status(client, settings, url).get("offset", -1)) >= ends[meta.partition]
                for (url, _raw), meta in zip(pages, sent, strict=True)
            )

        wait_for(replayed, timeout_s=1800, what="every replayed page", worker=worker)
        replay_s = time.perf_counter() - start
        live_rate, replay_rate = len(records) / live_s, len(records) / replay_s
        return {
            "pages": len(records),
            "extraction_processes": processes,
            "live": {"seconds": live_s, "pages_per_s": live_rate},
            "replay": {
                "records_copied": fed.copied,
                "feed_seconds": fed_s,
                "feed_records_per_s": fed.copied / fed_s,
                "rate_limit": rate,
                "end_to_end_seconds": replay_s,
                "end_to_end_pages_per_s": replay_rate,
            },
            "replay_over_live": replay_rate / live_rate,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bench", type=Path, default=REPO.parent / "shared" / "bench")
    parser.add_argument("--pages", type=int, help="use only the first N pages")
    parser.add_argument("--processes", type=int, help="extraction processes (default: the settings')")
    parser.add_argument("--rate", type=float, help="replay rate limit, records/s (default: none)")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args()

    settings = Settings()
    log_dir = local_stack(settings)
    pages = load_pages(args.bench, args.pages)
    emit(measure(settings, pages, processes=args.processes or settings.extraction_processes, rate=args.rate, log_dir=log_dir), args.out)


if __name__ == "__main__":
    main()
