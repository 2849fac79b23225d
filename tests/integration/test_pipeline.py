"""The pipeline on the real broker and the real Redis, with a real worker process."""

from __future__ import annotations

import base64
import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from contract import assert_valid
from worker_harness import WorkerProcess, read_topic, scrape_metrics, sync_redis, wait_for_outcomes

from tests.shared_data import SEEDS

from workers import SAMPLE_PAGES
from workers.feed import Record, make_producer, produce, records_from_paths
from workers.settings import Settings
from workers.topics import ensure_topics

pytestmark = pytest.mark.integration

MB = 1024 * 1024


def raw_page(url: str, **fields: object) -> Record:
    message = {"url": url, "fetched_at": datetime.now(UTC).isoformat()} | fields
    return Record(url.encode(), json.dumps(message, ensure_ascii=False).encode())


def test_sample_pages_become_articles_in_redis_and_on_the_articles_topic(settings, worker):
    records = list(records_from_paths([SAMPLE_PAGES], base_url="https://samples.wirefeed.invalid/"))
    sent = produce(settings, records)
    client = sync_redis(settings)
    outcomes = wait_for_outcomes(client, settings, records, sent, worker=worker)
    assert {status["outcome"] for status in outcomes.values()} == {"kept"}, outcomes

    articles = {}
    for url, status in outcomes.items():
        key = f"{settings.redis_prefix}:article:{status['article_id']}"
        stored = assert_valid("articles", client.hget(key, "json"))
        assert stored["url"] == url and stored["text"]
        assert 0 < client.ttl(key) <= settings.article_ttl_days * 86400
        articles[url] = stored

    seed_000 = articles["https://irfaasawtak.example/world/2016/12/08/kerry-lavrov-aleppo"]
    seed_004 = articles["https://masr-news.example/egypt/2016/12/08/aleppo-ceasefire-talks"]
    assert seed_000["language"] == seed_004["language"] == "ar"
    assert seed_004["extraction"]["encoding"] == "cp1256"  # decoded from its windows-1256 bytes
    # Every chrome line named in shared/seeds/README.md is gone, every body paragraph is there.
    for seed, article, body_end in (("000_14b0707699333d86", seed_000, 35), ("004_27e70a19afe18911", seed_004, 27)):
        lines = (SEEDS / f"{seed}.txt").read_text(encoding="utf-8").split("\n")
        chrome = [line for line in [lines[0], *lines[body_end:]] if line.strip()]
        body = [line for line in lines[6:body_end] if line.strip()]
        assert [line for line in chrome if line in article["text"]] == [], seed
        assert [line for line in body if line not in article["text"]] == [], seed
    assert articles["https://www.asahi.com/articles/AST1F4445T1FUTIL02SM.html"]["language"] == "ja"

    # The indexes find every article, by time and by domain.
    time_index = {m.decode() for m in client.zrange(f"{settings.redis_prefix}:idx:time", 0, -1)}
    assert time_index == {a["article_id"] for a in articles.values()}
    assert client.zrange(f"{settings.redis_prefix}:idx:domain:masr-news.example", 0, -1) == [seed_004["article_id"].encode()]

    published = read_topic(settings, settings.topic_articles, at_least=len(records))
    assert {r.key.decode() for r in published} == {a["article_id"] for a in articles.values()}
    for record in published:
        assert_valid("articles", record.value)


def test_bad_input_is_dead_lettered_and_good_pages_beside_it_are_not_lost(settings: Settings, tmp_path: Path):
    settings = settings.model_copy(update={"extraction_timeout_s": 1.5})
    ensure_topics(settings)
    good = [p for p in sorted(SAMPLE_PAGES.glob("*.html")) if p.name.startswith(("ar-", "en-", "ja-"))]
    good_records = list(records_from_paths(good, base_url="https://good.example/"))
    slow_html = "<html><body>" + "".join(
        f"<div class='c{i % 7}'><p>{' '.join(f'word{(i * 31 + j) % 997}' for j in range(60))} <a href='/x{i}'>link</a></p></div>"
        for i in range(14000)
    ) + "</body></html>"
    bad = {
        "not_json": Record(b"https://bad.example/not-json", b"<html>this is not JSON</html>"),
        "schema": Record(b"https://bad.example/no-url", json.dumps({"fetched_at": "2026-11-22T10:00:00Z", "html": "<p>x</p>"}).encode()),
        "empty_html": raw_page("https://bad.example/empty", html=""),
        "binary": Record(b"https://bad.example/binary", bytes(range(256)) * 64),
        "binary_content": raw_page("https://bad.example/binary-body", html_b64=base64.b64encode(b"\x00\x01\x7f" * 5000).decode(), charset="utf-8"),
        "too_large": raw_page("https://bad.example/huge", html="<p>" + "نص كبير " * (20 * MB // 14 + 1000) + "</p>"),
        "charset_mismatch": raw_page(
            "https://bad.example/wrong-charset",
            html_b64=base64.b64encode("<p>أعلن مسؤول أميركي</p>".encode("cp1256")).decode(),
            charset="utf-8",
        ),
        "timeout": raw_page("https://bad.example/slow", html=slow_html),
    }
    assert len(bad["too_large"].value) > 20 * MB
    # Bad and good interleaved, on every partition.
    records = [bad["not_json"], good_records[0], bad["schema"], bad["empty_html"], bad["binary"], bad["timeout"],
               bad["binary_content"], good_records[1], bad["too_large"], bad["charset_mismatch"]]
    sent = produce(settings, records)
    # A producer that sets no timestamp (CreateTime -1, read as -0.001 s): a page like any other.
    untimed = good_records[2]
    producer = make_producer(settings)
    try:
        sent_untimed = producer.send(
            settings.topic_pages_raw, key=untimed.key, value=untimed.value, timestamp_ms=-1
        ).get(timeout=30)
    finally:
        producer.close()
    assert sent_untimed.timestamp == -1

    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    try:
        letters = read_topic(settings, settings.topic_dlq, at_least=len(bad), timeout_s=120)
        by_url = {}
        for letter in letters:
            document = assert_valid("pages.dlq", letter.value)
            by_url[base64.b64decode(document["original_key_b64"]).decode()] = document
        assert len(letters) == len(bad)
        for name, record in bad.items():
            document = by_url[record.key.decode()]
            assert base64.b64decode(document["original_value_b64"]) == record.value, name
            assert document["error_message"], name
            assert document["source"]["topic"] == settings.topic_pages_raw
        reasons = {name: by_url[record.key.decode()]["reason"] for name, record in bad.items()}
        assert reasons == {
            "not_json": "not_json", "schema": "schema", "empty_html": "empty_html", "binary": "not_utf8",
            "binary_content": "binary_content", "too_large": "too_large", "charset_mismatch": "charset_mismatch",
            "timeout": "timeout",
        }
        assert by_url["https://bad.example/huge"]["outcome"] == "dropped"
        assert by_url["https://bad.example/slow"]["stage"] == "extract"

        client = sync_redis(settings)
        outcomes = wait_for_outcomes(
            client, settings, good_records[:3], [sent[1], sent[7], sent_untimed], worker=worker
        )
        assert {s["outcome"] for s in outcomes.values()} == {"kept"}
        assert worker.alive

        # The pool recovered from the killed process: a page sent afterwards is extracted.
        after = produce(settings, [good_records[0]])
        assert wait_for_outcomes(client, settings, [good_records[0]], after, worker=worker)

        # Its operators see the same on GET /metrics of the worker's web server.
        families = scrape_metrics(worker)
        pages = {
            (sample.labels["outcome"], sample.labels["stage"], sample.labels["reason"]): sample.value
            for sample in families["wirefeed_pages"].samples
            if sample.name == "wirefeed_pages_total"
        }
        expected = Counter(
            (document["outcome"], document["stage"], document["reason"]) for document in by_url.values()
        )
        # the page sent again is the same delivery: its decision is the first one's
        expected[("kept", "sink", "new")] = 4
        assert pages == expected
        extraction_count = next(
            s.value for s in families["wirefeed_extraction_seconds"].samples if s.name.endswith("_count")
        )
        assert extraction_count == 5  # the three good pages, the page sent again and the slow one
    finally:
        worker.stop()


def test_a_stopping_worker_adds_the_document_frequencies_it_counted(settings: Settings, tmp_path: Path):
    """Document frequencies are counted in the worker and added to Redis every refresh period
    (an hour here, longer than the test) and when the worker stops: none are lost at a stop."""
    settings = settings.model_copy(update={"story_df_refresh_s": 3600.0})
    ensure_topics(settings)
    arabic = [path for path in sorted(SAMPLE_PAGES.glob("*.html")) if path.name.startswith(("seed-", "ar-"))]
    records = list(records_from_paths(arabic, base_url="https://samples.wirefeed.invalid/"))
    client = sync_redis(settings)
    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    try:
        outcomes = wait_for_outcomes(client, settings, records, produce(settings, records), worker=worker)
        assert {status["outcome"] for status in outcomes.values()} == {"kept"}, outcomes
        assert list(client.scan_iter(match=f"{settings.redis_prefix}:st:n:ar:*")) == []  # not before the stop
    finally:
        exit_code = worker.stop()  # asserted after the block, so that a failure above is the one reported
    assert exit_code == 0
    counted = [int(client.get(key)) for key in client.scan_iter(match=f"{settings.redis_prefix}:st:n:ar:*")]
    assert sum(counted) == len(records) == 3


def test_with_json_logs_every_line_a_worker_writes_is_a_json_object(
    settings: Settings, tmp_path: Path
):
    settings = settings.model_copy(update={"log_format": "json"})
    ensure_topics(settings)
    records = [
        Record(b"https://bad.example/not-json", b"<html>this is not JSON</html>"),
        *records_from_paths([SAMPLE_PAGES / "seed-004-masr-news.html"], base_url="https://x.example/"),
    ]
    sent = produce(settings, records)
    worker = WorkerProcess(settings, tmp_path / "worker.log").start()
    try:
        assert wait_for_outcomes(sync_redis(settings), settings, records, sent, worker=worker)
    finally:
        assert worker.stop() == 0
    lines = [line for line in worker.log_path.read_text(encoding="utf-8").splitlines() if line.strip()]
    entries = []
    for line in lines:
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError:
            pytest.fail(f"not a JSON log line: {line[:300]}")
    assert {"time", "level", "logger", "message", "pid"} <= set(entries[0])
    assert any("not_json" in entry["message"] and entry["logger"] == "workers.pipeline" for entry in entries)
    assert any(entry["message"] == "pipeline stopped: {'failed': 1, 'kept': 1}" for entry in entries)
