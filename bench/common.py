"""What the benchmarks share: the bench pages, isolated settings per run, page records, a warm-up."""

from __future__ import annotations

import base64
import json
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import redis

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from worker_harness import WorkerProcess, outcomes_for, wait_for  # noqa: E402

from workers import localstack  # noqa: E402
from workers.feed import Record, produce  # noqa: E402
from workers.settings import Settings  # noqa: E402
from workers.stages.decode import decode_html_bytes  # noqa: E402
from workers.topics import ensure_topics  # noqa: E402

DATASETS = ("scrapinghub", "daniel", "trafilatura_eval", "fundus")


def read_jsonl(path: Path) -> Iterator[dict]:
    """The records of a JSON Lines file (a ground truth, a manifest), blank lines skipped."""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            yield json.loads(line)


def truth_url(record: dict) -> str:
    """A ground-truth record's page URL, or "" when it gives none that is a web address."""
    url = record.get("url") or ""
    return url if url.startswith(("http://", "https://")) else ""


def load_pages(bench: Path, limit: int | None) -> list[tuple[str, bytes]]:
    """(URL, the original bytes) of every page of the datasets, in a fixed order. The URL is the
    page's own from its ground truth, so that the pages of a site share its domain as in a crawl
    (the chrome index and dedup work per domain); a page without one, or whose URL another page
    has, gets a unique made-up URL."""
    pages, urls = [], set()
    for dataset in DATASETS:
        truth = bench / dataset / "ground_truth.jsonl"
        given = {row["id"]: truth_url(row) for row in read_jsonl(truth)} if truth.is_file() else {}
        for path in sorted((bench / dataset).glob("*.html")):
            url = given.get(path.stem, "")
            if not url or url in urls:
                url = f"https://bench.wirefeed.invalid/{dataset}/{path.stem}"
            urls.add(url)
            pages.append((url, path.read_bytes()))
    return pages[:limit] if limit else pages


def decoded_html(raw: bytes) -> str:
    """A bench page's text as the pipeline decodes it, or leniently as UTF-8 when it cannot
    (a benchmark scores every page, even one the pipeline would dead-letter)."""
    try:
        decoded = decode_html_bytes(raw, None)
        if isinstance(decoded, tuple):
            return decoded[0]
    except Exception:  # noqa: BLE001 - fall back to a lenient decode below
        pass
    return raw.decode("utf-8", errors="replace")


def isolated_settings(base: Settings, label: str, *, processes: int, log_dir: Path) -> Settings:
    """Topics, consumer group and Redis prefix of this run alone."""
    run = f"{label}-{uuid.uuid4().hex[:8]}"
    return base.model_copy(update={
        "app_name": f"bench-{run}",
        "topic_pages_raw": f"bench-{run}.pages.raw",
        "topic_articles": f"bench-{run}.articles",
        "topic_dlq": f"bench-{run}.pages.dlq",
        "redis_prefix": f"bench{run.replace('-', '')}",
        "extraction_processes": processes,
        "data_dir": log_dir / f"worker-{run}",
    })


def page_record(url: str, raw: bytes, fetched_at: datetime | None = None) -> Record:
    """A pages.raw message carrying the page's bytes, as a crawler that does not decode sends it."""
    message = {
        "url": url,
        "fetched_at": (fetched_at or datetime.now(UTC)).isoformat(),
        "content_type": "text/html",
        "html_b64": base64.b64encode(raw).decode(),
    }
    return Record(url.encode(), json.dumps(message).encode())


def warm_up(client: redis.Redis, settings: Settings, worker: WorkerProcess, raw: bytes) -> None:
    """One page through the worker, so that the clock starts with the group joined and the pool up."""
    warm = [page_record("https://bench.wirefeed.invalid/warm-up", raw)]
    sent = produce(settings, warm)
    wait_for(lambda: outcomes_for(client, settings, warm, sent), timeout_s=300, what="the warm-up page", worker=worker)


@contextmanager
def warm_worker(
    base: Settings, label: str, *, processes: int, log_dir: Path, warm_page: bytes
) -> Iterator[tuple[Settings, redis.Redis, WorkerProcess]]:
    """A worker on topics and a Redis prefix of its own, warmed up; stopped and its keys removed after."""
    settings = isolated_settings(base, label, processes=processes, log_dir=log_dir)
    ensure_topics(settings)
    client = redis.Redis.from_url(settings.redis_url.get_secret_value())
    worker = WorkerProcess(settings, log_dir / f"{settings.app_name}.log").start()
    try:
        warm_up(client, settings, worker, warm_page)
        yield settings, client, worker
    finally:
        worker.stop()
        for key in client.scan_iter(match=f"{settings.redis_prefix}:*", count=1000):
            client.delete(key)


def local_stack(settings: Settings) -> Path:
    """Start the local stack of the settings when it is down; return the directory for worker logs."""
    if not localstack.status(settings):
        localstack.up(settings)
    log_dir = REPO / ".wirefeed" / "bench"
    log_dir.mkdir(parents=True, exist_ok=True)
    return log_dir


def emit(result: dict[str, object], out: Path | None) -> None:
    """Print the figures as JSON, and keep them in ``out`` when asked."""
    text = json.dumps(result, indent=2, default=float)
    print(text)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n", encoding="utf-8")
