"""``wirefeed produce`` on the real broker: what a person feeding pages by hand sees when a page is
over the record limit or not a valid message, when a canonical link is relative, and when the
topic does not exist; and how much of a large feed its producer holds in memory."""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.admin import NewTopic
from kafka.record.memory_records import MemoryRecordsBuilder
from worker_harness import read_topic, settings_env

from workers import SAMPLE_PAGES, cli, feed
from workers.feed import Record
from workers.kafka_clients import kafka_client_options
from workers.settings import Settings
from workers.topics import ensure_topics

pytestmark = pytest.mark.integration

MIB = 1024 * 1024


def produce(settings: Settings, monkeypatch: pytest.MonkeyPatch, *argv: str | Path) -> int:
    """``wirefeed produce ARGV`` in this process, with the settings as its WIREFEED_* environment."""
    with monkeypatch.context() as patch:
        for name, value in settings_env(settings).items():
            patch.setenv(name, value)
        patch.setattr(cli.logs, "configure", lambda log_format, level, one_shot: None)
        return cli.main(["produce", *map(str, argv)])


def test_a_page_over_the_record_limit_is_one_line_naming_it_and_nothing_is_published(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    settings = settings.model_copy(update={"max_message_bytes": 1024 * 1024})
    ensure_topics(settings)
    pages = tmp_path / "pages"
    pages.mkdir()
    (pages / "a-small.html").write_bytes((SAMPLE_PAGES / "ja-asahi.html").read_bytes())
    # zstd makes this a few kilobytes on the wire, but the limit is checked before compression
    (pages / "b-huge.html").write_text("<html><body>" + "<p>the same line again</p>" * 60000 + "</body></html>")

    assert produce(settings, monkeypatch, pages) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"wirefeed produce: {pages / 'b-huge.html'}: ")
    assert f"over the limit of {1024 * 1024} (WIREFEED_MAX_MESSAGE_BYTES; checked before compression" in err
    assert err.count("\n") == 1
    assert read_topic(settings, settings.topic_pages_raw, at_least=0) == []


@pytest.mark.parametrize("bad", ["html", "jsonl"])
def test_a_bad_page_anywhere_is_named_and_nothing_is_published(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], bad: str
):
    """Running the command again once the page is fixed then publishes every page once."""
    ensure_topics(settings)
    pages = tmp_path / "pages"
    pages.mkdir()
    (pages / "a.html").write_bytes((SAMPLE_PAGES / "ja-asahi.html").read_bytes())
    if bad == "html":
        (pages / "b.html").write_text('<html><head><link rel="canonical" href="https://a b/x"></head></html>')
        where, paths = str(pages / "b.html"), [pages]
    else:
        crawl = tmp_path / "crawl.jsonl"
        good = {"url": "https://a.example/1", "fetched_at": "2026-11-22T10:00:00Z", "html": "<p>x</p>"}
        crawl.write_text(json.dumps(good) + "\n" + json.dumps({"url": "https://a.example/2", "html": "x"}) + "\n")
        where, paths = f"{crawl}:2", [pages, crawl]

    assert produce(settings, monkeypatch, *paths) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"wirefeed produce: {where}: not a pages.raw message: ")
    assert err.count("\n") == 1
    assert read_topic(settings, settings.topic_pages_raw, at_least=0) == []


def test_a_relative_canonical_link_is_resolved_and_the_whole_directory_published(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    ensure_topics(settings)
    pages = tmp_path / "pages"
    pages.mkdir()
    (pages / "a.html").write_bytes((SAMPLE_PAGES / "en-cbc-gaza-ceasefire.html").read_bytes())
    (pages / "b.html").write_text('<html><head><link rel="canonical" href="/news/story-1"></head><body><p>text</p></body></html>')
    # the link as HTML writes it: attributes in any order, "&" as "&amp;"
    (pages / "c.html").write_text('<html><head><link href="/news/story-2?a=1&amp;b=2" rel="canonical"></head></html>')

    assert produce(settings, monkeypatch, "--base-url", "https://files.example/in/", pages) == 0
    assert f"published 3 page(s) to {settings.topic_pages_raw}" in capsys.readouterr().out
    keys = {r.key for r in read_topic(settings, settings.topic_pages_raw, at_least=3)}
    assert len(keys) == 3
    assert {b"https://files.example/news/story-1", b"https://files.example/news/story-2?a=1&b=2"} < keys


def test_a_topic_that_does_not_exist_is_one_line_naming_it_and_the_command_that_creates_topics(
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
):
    missing = f"{settings.topic_pages_raw}.typo"
    assert produce(settings, monkeypatch, "--topic", missing, SAMPLE_PAGES / "ja-asahi.html") == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [
        f"wirefeed produce: topic {missing!r} does not exist (`wirefeed topics create` creates the topics of the settings)"
    ]
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


def test_a_jsonl_record_goes_to_the_topic_keyed_by_its_url_as_the_crawler_wrote_it(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    # the schema's contract: the crawler's own records of the URL are keyed so, and a hand-fed
    # one keyed by the parsed URL (punycode, percent-encoded) went to another partition
    ensure_topics(settings)
    url = "https://مثال.مصر/حلب?q=1"
    crawl = tmp_path / "crawl.jsonl"
    line = {"url": url, "fetched_at": "2026-11-22T10:00:00Z", "html": "<p>نص</p>"}
    crawl.write_text(json.dumps(line, ensure_ascii=False) + "\n", encoding="utf-8")

    assert produce(settings, monkeypatch, crawl) == 0
    assert f"published 1 page(s) to {settings.topic_pages_raw}" in capsys.readouterr().out
    (record,) = read_topic(settings, settings.topic_pages_raw, at_least=1)
    assert record.key == url.encode()


def test_a_producer_holds_no_more_than_its_window_unacknowledged(settings: Settings, monkeypatch: pytest.MonkeyPatch):
    # kafka-python 3 bounds nothing: a crawl export sent from disk, or a replay, sat in the
    # producer's memory whole (429 MB sent from a generator: 349 MB peak RSS)
    ensure_topics(settings)
    window, size = 1024 * 1024, 100 * 1024
    monkeypatch.setattr(feed, "MAX_UNACKNOWLEDGED_BYTES", window)
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap)
    partitions = [TopicPartition(settings.topic_pages_raw, p) for p in consumer.partitions_for_topic(settings.topic_pages_raw)]
    behind: list[int] = []

    def records() -> Iterator[Record]:
        for number in range(60):
            # what the broker acknowledged before this record is sent; the window holds 10
            behind.append(number - sum(consumer.end_offsets(partitions).values()))
            yield Record(f"https://news.example/{number}".encode(), bytes([number]) * size)

    try:
        sent = feed.produce(settings, records())
    finally:
        consumer.close()
    assert len(sent) == 60 and len(behind) == 60
    assert max(behind) <= window // size, behind
    assert sorted(read_topic(settings, settings.topic_pages_raw, at_least=60), key=lambda r: r.value)[59].value == bytes([59]) * size


# --- found by a review of `wirefeed produce` (the twenty-seventh session) ---------------------------------


def topic_of_other_tools(settings: Settings, max_message_bytes: int) -> None:
    """pages.raw as a tool other than wirefeed makes it, with a size limit below the setting (or as
    wirefeed made it before WIREFEED_MAX_MESSAGE_BYTES was raised)."""
    admin = KafkaAdminClient(**kafka_client_options(settings))
    try:
        admin.create_topics(
            [NewTopic(settings.topic_pages_raw, 1, 1, topic_configs={"max.message.bytes": str(max_message_bytes)})]
        )
    finally:
        admin.close()


def test_a_page_over_the_topics_own_limit_once_compressed_is_named_and_nothing_is_published(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    # The check knew only WIREFEED_MAX_MESSAGE_BYTES (32 MiB): a.html was published, then the
    # broker refused b.html with an error naming no file, and running it again published a.html twice.
    topic_of_other_tools(settings, MIB)
    pages = tmp_path / "pages"
    pages.mkdir()
    (pages / "a.html").write_bytes((SAMPLE_PAGES / "ja-asahi.html").read_bytes())
    (pages / "b.html").write_text(f"<html><body><p>{random.Random(2).randbytes(MIB).hex()}</p></body></html>")
    # 2 MiB before compression, a few KiB after: the topic takes it
    (pages / "c.html").write_text("<html><body>" + "<p>the same line again</p>" * 80000 + "</body></html>")

    assert produce(settings, monkeypatch, pages) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"wirefeed produce: {pages / 'b.html'}: ")
    assert f"bytes as a record batch (compression zstd), over the limit of topic '{settings.topic_pages_raw}', " in err
    assert f"max.message.bytes={MIB} (`kafka-configs.sh --alter" in err and err.count("\n") == 1
    assert read_topic(settings, settings.topic_pages_raw, at_least=0) == []

    (pages / "b.html").unlink()
    assert produce(settings, monkeypatch, pages) == 0
    assert len(read_topic(settings, settings.topic_pages_raw, at_least=2)) == 2


def test_the_topics_limit_is_checked_to_the_byte_the_broker_counts(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    settings = settings.model_copy(update={"compression": "none"})
    limit = MIB + 10_000  # away from 1 MiB, where a record's two length varints grow by a byte each
    topic_of_other_tools(settings, limit)

    def batch_bytes(line: str) -> int:
        batch = MemoryRecordsBuilder(magic=2, compression_type=0, batch_size=16384)
        batch.append(timestamp=None, key=b"https://a.example/1", value=line.encode())
        batch.close()
        return batch.size_in_bytes()

    def line_of(size: int) -> str:
        """A JSON line whose record batch, uncompressed, is ``size`` bytes."""
        page = {"url": "https://a.example/1", "fetched_at": "2026-11-22T10:00:00Z", "html": "x" * size}
        for _ in range(2):  # the second for the varints the first shortened
            page["html"] = page["html"][: len(page["html"]) - (batch_bytes(json.dumps(page)) - size)]
        assert batch_bytes(json.dumps(page)) == size
        return json.dumps(page)

    crawl = tmp_path / "crawl.jsonl"
    crawl.write_text(line_of(limit + 1) + "\n")
    assert produce(settings, monkeypatch, crawl) == 2
    assert capsys.readouterr().err.startswith(f"wirefeed produce: {crawl}:1: {limit + 1} bytes as a record batch")
    crawl.write_text(line_of(limit) + "\n")
    assert produce(settings, monkeypatch, crawl) == 0
    assert len(read_topic(settings, settings.topic_pages_raw, at_least=1)) == 1
