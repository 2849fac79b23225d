"""End-to-end throughput of the pipeline against the machine's own ceiling, measured in one run.

1. Plain ``trafilatura.extract`` (comments off, trafilatura as released: the stage's changes to it
   undone) on the same pages: one process, then one process per core. The parallel rate is the
   ceiling of this machine. The same for the pipeline's own extraction stage, which does more per
   page (structural filters, metadata): the pipeline's overhead is its rate against that.
2. The pipeline on the real broker and Redis: a worker with 1 extraction process, then with one
   per core. Each run gets fresh topics, consumer group and Redis prefix; the worker is started and
   warmed up first, then the clock runs from the first produce to the last page outcome in Redis.

Prints one JSON document: rates (pages/s; the pipeline's counts the pages that became articles),
ratios, produce-to-article latency percentiles, peak memory of the worker's process tree (the sum
of its processes' RSS, and its PSS, which counts the pages they share once). Each page has its
URL from the ground truth (its site's domain, as a crawl gives it). Usage:

    python bench/throughput.py [--bench ../shared/bench] [--pages N] [--out bench/results/throughput.json]
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing
import os
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import trafilatura
from common import REPO, decoded_html, emit, load_pages, local_stack, page_record, warm_worker
from worker_harness import wait_for_outcomes

from workers import pool_warmup
from workers.feed import produce
from workers.models import Article
from workers.settings import Settings
from workers.stages.extract import ExtractionOptions, extract_document, use_trafilatura_as_released
from workers.stages.outcome import Kept

T = TypeVar("T")


def _plain_extract(html: str) -> int:
    return len(trafilatura.extract(html, include_comments=False, deduplicate=False) or "")


def _stage_extract(page: tuple[str, str]) -> int:
    """The pipeline's own extraction stage (trafilatura plus structural filters and metadata),
    without Kafka, Redis or the pool: what the pipeline could reach with no overhead at all."""
    url, html = page
    result = extract_document(html, url, ExtractionOptions())
    return len(result.value.text) if isinstance(result, Kept) else 0


def rates(function: Callable[[T], int], items: list[T], initializer: Callable[[], None] | None = None) -> dict[str, float]:
    """Pages/s of ``function`` in one process, then in one process per core, each process set up
    by ``initializer``. Both warm, as the worker's extraction processes are: the forkserver imports
    workers.pool_warmup first, which builds dateparser's patterns for its ~200 locales (they cost
    seconds per process on first use, and a long-running worker pays once)."""
    cores = os.cpu_count() or 1
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([pool_warmup.__name__])
    measured = {}
    for processes in (1, cores):
        with context.Pool(processes, initializer=initializer) as pool:
            pool.map(function, items[: processes * 2])  # warm the processes up
            start = time.perf_counter()
            for _ in pool.imap_unordered(function, items, chunksize=1):
                pass
            measured[processes] = len(items) / (time.perf_counter() - start)
    return {
        "serial_pages_per_s": measured[1],
        "parallel_pages_per_s": measured[cores],
        "processes": cores,
        "parallel_over_serial": measured[cores] / measured[1],
    }


class TreeMemory:
    """Peak memory of a process and all its descendants: the sum of their resident sets (which
    counts the pages forked processes share once per process), sampled every 100 ms, and of their
    proportional sets (PSS: a shared page split among its sharers, so what the tree really holds),
    every second; and the CPU seconds each of them used meanwhile (main process vs extraction
    processes). PSS is read less often because the kernel walks a process's page tables to tell it:
    read every 100 ms it took a sixth of a core from the machine being measured."""

    def __init__(self, root_pid: int) -> None:
        self.root_pid, self.peak_rss_bytes, self.peak_pss_bytes = root_pid, 0, 0
        self._ticks_at_start = self._ticks(self._tree())
        self._ticks_last: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def cpu_seconds(self) -> dict[str, float]:
        hz = os.sysconf("SC_CLK_TCK")
        used = {pid: ticks - self._ticks_at_start.get(pid, 0) for pid, ticks in self._ticks_last.items()}
        main = used.pop(self.root_pid, 0)
        return {"worker_main": main / hz, "extraction_and_other": sum(used.values()) / hz}

    @staticmethod
    def _ticks(pids: set[int]) -> dict[int, int]:
        ticks = {}
        for pid in pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            ticks[pid] = int(fields[11]) + int(fields[12])
        return ticks

    def _run(self) -> None:
        page = os.sysconf("SC_PAGE_SIZE")
        for sample in itertools.count():
            if self._stop.wait(0.1):
                return
            with_pss = sample % 10 == 0
            rss = pss = 0
            tree = self._tree()
            self._ticks_last.update(self._ticks(tree))
            for pid in tree:
                try:
                    rss += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * page
                    pss += self._pss(pid) if with_pss else 0
                except (OSError, IndexError, ValueError):
                    pass  # the process ended meanwhile
            self.peak_rss_bytes = max(self.peak_rss_bytes, rss)
            self.peak_pss_bytes = max(self.peak_pss_bytes, pss)

    @staticmethod
    def _pss(pid: int) -> int:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
        return 0

    def _tree(self) -> set[int]:
        parents: dict[int, list[int]] = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError):
                    continue
                parents.setdefault(ppid, []).append(int(entry.name))
        tree, frontier = {self.root_pid}, [self.root_pid]
        while frontier:
            for child in parents.get(frontier.pop(), []):
                tree.add(child)
                frontier.append(child)
        return tree


def pipeline_run(base: Settings, pages: list[tuple[str, bytes]], processes: int, log_dir: Path) -> dict[str, object]:
    with warm_worker(base, "throughput", processes=processes, log_dir=log_dir, warm_page=pages[0][1]) as (settings, client, worker):
        records = [page_record(url, raw) for url, raw in pages]
        with TreeMemory(worker.pid) as memory:
            start = time.perf_counter()
            sent = produce(settings, records)
            produced = time.perf_counter() - start
            outcomes = wait_for_outcomes(client, settings, records, sent, worker=worker, timeout_s=1800, interval_s=1.0)
            elapsed = time.perf_counter() - start
        latencies = []
        for status in outcomes.values():
            if status["outcome"] == "kept":
                article = Article.model_validate_json(client.hget(f"{settings.redis_prefix}:article:{status['article_id']}", "json"))
                latencies.append(article.processed_at.timestamp() * 1000 - int(status["source_ts_ms"]))
        return {
            "extraction_processes": processes,
            # pages that became an article: a page dead-lettered or dropped costs the run its time
            # and counts for nothing
            "pages_per_s": len(latencies) / elapsed,
            "seconds": elapsed,
            "produce_seconds": produced,
            "outcomes": dict(Counter(status["outcome"] for status in outcomes.values())),
            "latency_ms": _percentiles(latencies),
            "peak_rss_sum_mb": memory.peak_rss_bytes / 2**20,
            "peak_pss_mb": memory.peak_pss_bytes / 2**20,
            "cpu_seconds": memory.cpu_seconds(),
        }


def _percentiles(values: list[float]) -> dict[str, float]:
    if len(values) < 2:
        return dict.fromkeys(("p50", "p90", "p99", "max"), values[0]) if values else {}
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return {"p50": cuts[49], "p90": cuts[89], "p99": cuts[98], "max": max(values)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bench", type=Path, default=REPO.parent / "shared" / "bench")
    parser.add_argument("--pages", type=int, help="use only the first N pages")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args()

    settings = Settings()
    log_dir = local_stack(settings)
    pages = load_pages(args.bench, args.pages)
    texts = [decoded_html(raw) for _, raw in pages]

    raw = rates(_plain_extract, texts, use_trafilatura_as_released)
    stage = rates(_stage_extract, [(url, html) for (url, _), html in zip(pages, texts, strict=True)])
    cores = os.cpu_count() or 1
    one = pipeline_run(settings, pages, 1, log_dir)
    many = pipeline_run(settings, pages, cores, log_dir)
    result = {
        "pages": len(pages),
        "html_mb": sum(len(r) for _, r in pages) / 2**20,
        "cores": cores,
        "trafilatura_extract": raw,
        "extraction_stage": stage,
        "pipeline": {"1_process": one, f"{cores}_processes": many},
        "ratios": {
            "pipeline_all_cores_over_parallel_extract": many["pages_per_s"] / raw["parallel_pages_per_s"],
            "pipeline_all_cores_over_parallel_stage": many["pages_per_s"] / stage["parallel_pages_per_s"],
            "stage_over_plain_extract": stage["serial_pages_per_s"] / raw["serial_pages_per_s"],
            "pipeline_1_process_over_serial_extract": one["pages_per_s"] / raw["serial_pages_per_s"],
            "pipeline_all_cores_over_1_process": many["pages_per_s"] / one["pages_per_s"],
        },
        "target": {"pipeline_all_cores_over_parallel_extract": ">= 0.85"},
    }
    emit(result, args.out)


if __name__ == "__main__":
    main()
