"""A page its publisher withdrew (a re-crawl answering 404, 410 or 451) withdraws its article, on
the real broker and the real Redis, with a real worker: ``articles`` gets the article again with
``withdrawn``, Redis marks it and takes it out of the indexes, the page record keeps the link to it,
and the page is dead-lettered as every non-2xx page is; a later 2xx crawl puts it back."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from contract import assert_valid
from worker_harness import WorkerProcess, page_status, read_topic, scrape_metrics, sync_redis, wait_for_outcomes

from workers import SAMPLE_PAGES
from workers.feed import Record, produce
from workers.settings import Settings

pytestmark = pytest.mark.integration

# As a crawler writes it: the parsed form (its page record's key) differs from it.
URL = "https://Masr-News.example/egypt/2016/12/08/aleppo-ceasefire-talks"
PAGE = base64.b64encode((SAMPLE_PAGES / "seed-004-masr-news.html").read_bytes()).decode("ascii")
GONE = base64.b64encode("<html><body><h1>الصفحة غير موجودة</h1></body></html>".encode()).decode("ascii")


def crawl(fetched_at: datetime, status: int) -> Record:
    message = {"url": URL, "fetched_at": fetched_at.isoformat(), "status": status, "html_b64": PAGE if status == 200 else GONE}
    return Record(URL.encode(), json.dumps(message).encode())


def test_a_page_withdrawn_by_its_publisher_withdraws_its_article_until_a_later_crawl_finds_it_again(
    settings: Settings, worker: WorkerProcess
):
    client, prefix = sync_redis(settings), settings.redis_prefix
    started = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)

    def handle(fetched_at: datetime, status: int) -> dict[str, str]:
        records = [crawl(fetched_at, status)]
        (outcome,) = wait_for_outcomes(client, settings, records, produce(settings, records), worker=worker).values()
        return outcome

    def published(at_least: int) -> list[bytes]:
        return [record.value for record in read_topic(settings, settings.topic_articles, at_least=at_least)]

    kept = handle(started, 200)
    article_id = kept["article_id"]
    article_key = f"{prefix}:article:{article_id}"
    (first,) = published(1)
    assert assert_valid("articles", first).get("withdrawn") is None

    # The publisher takes the story down: the re-crawl answers 410 Gone.
    gone_at = started + timedelta(minutes=10)
    outcome = handle(gone_at, 410)
    assert (outcome["outcome"], outcome["stage"], outcome["reason"]) == ("dropped", "decode", "http_status")
    assert outcome["article_id"] == article_id  # the URL still names its article
    first_again, withdrawn_value = published(2)
    assert first_again == first
    withdrawn = assert_valid("articles", withdrawn_value)
    assert withdrawn["withdrawn"] == {"at": gone_at.isoformat().replace("+00:00", "Z"), "http_status": 410}
    # the text and title stay: the consumers decide whether to hide it
    assert {k: v for k, v in withdrawn.items() if k != "withdrawn"} == json.loads(first)
    assert json.loads(client.hget(article_key, "withdrawn")) == withdrawn["withdrawn"]
    assert client.hget(article_key, "json") == withdrawn_value
    # not listed as current any more
    assert client.zscore(f"{prefix}:idx:time", article_id) is None
    assert client.zscore(f"{prefix}:idx:domain:masr-news.example", article_id) is None
    letters = [assert_valid("pages.dlq", r.value) for r in read_topic(settings, settings.topic_dlq, at_least=1)]
    assert [(letter["reason"], letter["url"]) for letter in letters] == [("http_status", URL)]
    withdrawals = scrape_metrics(worker)["wirefeed_articles_withdrawn"].samples
    assert [(s.labels, s.value) for s in withdrawals if s.name.endswith("_total")] == [({"http_status": "410"}, 1.0)]

    # An outage answers 503: it says nothing about the article, which stays withdrawn.
    outcome = handle(gone_at + timedelta(minutes=5), 503)
    assert (outcome["reason"], outcome["article_id"]) == ("http_status", article_id)
    assert published(2) == [first, withdrawn_value]

    # The page is back with the same text (dedup: unchanged): the article is current again, as it was.
    restored_at = started + timedelta(minutes=30)
    outcome = handle(restored_at, 200)
    assert (outcome["outcome"], outcome["reason"], outcome["article_id"]) == ("kept", "unchanged", article_id)
    assert published(3) == [first, withdrawn_value, first]
    assert not client.hexists(article_key, "withdrawn")
    assert client.hget(article_key, "json") == first
    assert client.zscore(f"{prefix}:idx:time", article_id) is not None
    assert client.zscore(f"{prefix}:idx:domain:masr-news.example", article_id) is not None

    # A 404 crawled before that 200 and delivered after it is older than the article: ignored.
    stored = client.hgetall(article_key)
    outcome = handle(restored_at - timedelta(minutes=1), 404)
    assert (outcome["reason"], outcome["article_id"]) == ("http_status", article_id)
    assert published(3) == [first, withdrawn_value, first]
    assert client.hgetall(article_key) == stored
    letters = read_topic(settings, settings.topic_dlq, at_least=3)  # the 410, the 503 and the 404
    assert [assert_valid("pages.dlq", r.value)["reason"] for r in letters] == ["http_status"] * 3
    assert page_status(client, settings, URL)["article_id"] == article_id
