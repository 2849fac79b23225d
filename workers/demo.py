"""``wirefeed demo``: the whole system on this machine, on the bundled sample pages.

Starts the local stack (if needed), a worker process, feeds ``workers/samples/pages``, waits for
each page's outcome in Redis and prints what came out. The stack is left running for a look
around (``wirefeed stack down`` stops it); the worker is stopped.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import redis

from workers import SAMPLE_PAGES, localstack
from workers.feed import produce, records_from_paths
from workers.models import Article
from workers.settings import Settings
from workers.sinks.redis_store import page_key
from workers.topics import ensure_topics

_WAIT_S = 180
# Bodies up to this long are printed whole (both seed articles are), longer ones cut here.
_BODY_CHARS = 3000


def run_demo(settings: Settings) -> int:
    if not localstack.status(settings):
        print("starting the local stack (Kafka + Redis) ...", flush=True)
        localstack.up(settings)
    ensure_topics(settings)

    records = list(records_from_paths([SAMPLE_PAGES], base_url="https://samples.wirefeed.invalid/"))
    worker = subprocess.Popen(
        [sys.executable, "-m", "workers", "--log-level", "warning", "worker"],
        env=os.environ.copy(),
    )
    try:
        sent = produce(settings, records)
        print(f"fed {len(sent)} sample pages into {settings.topic_pages_raw}; waiting for the worker ...", flush=True)
        client = redis.Redis.from_url(settings.redis_url.get_secret_value(), decode_responses=True)
        outcomes = _wait_for_outcomes(client, settings, records, sent, worker)
        _report(client, settings, records, outcomes)
        return 0 if len(outcomes) == len(records) else 1
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()


def _wait_for_outcomes(client, settings, records, sent, worker) -> dict[str, dict[str, str]]:  # type: ignore[no-untyped-def]
    wanted = {r.key.decode(): (meta.partition, meta.offset) for r, meta in zip(records, sent, strict=True)}
    outcomes: dict[str, dict[str, str]] = {}
    deadline = time.monotonic() + _WAIT_S
    while len(outcomes) < len(wanted) and time.monotonic() < deadline and worker.poll() is None:
        for url, (partition, offset) in wanted.items():
            status = client.hgetall(page_key(settings.redis_prefix, url))
            if status and int(status["partition"]) == partition and int(status["offset"]) == offset:
                outcomes[url] = status
        time.sleep(0.5)
    if worker.poll() is not None:
        print(f"the worker exited with code {worker.returncode}", file=sys.stderr)
    elif len(outcomes) < len(wanted):
        print(f"timed out: {len(wanted) - len(outcomes)} page(s) without an outcome", file=sys.stderr)
    return outcomes


def _report(client, settings, records, outcomes) -> None:  # type: ignore[no-untyped-def]
    print()
    for record in records:
        url = record.key.decode()
        status = outcomes.get(url)
        print("=" * 100)
        print(url)
        if status is None:
            print("  (no outcome)")
            continue
        if status["outcome"] != "kept":
            print(f"  {status['outcome']} at {status['stage']}: {status['reason']} (see {settings.topic_dlq})")
            continue
        article = Article.model_validate_json(client.hget(f"{settings.redis_prefix}:article:{status['article_id']}", "json"))
        info = article.extraction
        print(f"  title     : {article.title}")
        print(f"  language  : {article.language} (declared: {info.declared_language or '-'})   encoding: {info.encoding}")
        print(f"  published : {article.published_at.isoformat() if article.published_at else '-'}")
        print(f"  article id: {article.article_id}   domain: {article.domain}")
        print(f"  size      : {info.html_bytes} bytes of HTML -> {info.text_chars} characters of text")
        for block in info.removed:
            print(f"  removed   : [{block.reason}] {textwrap.shorten(block.text, 90)}")
        print("  body      :")
        for paragraph in article.text[:_BODY_CHARS].split("\n"):
            for line in textwrap.wrap(paragraph, 96):
                print(f"    {line}")
        if len(article.text) > _BODY_CHARS:
            print("    ...")
