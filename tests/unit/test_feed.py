import json
import random
import re
import weakref
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from kafka.errors import MessageSizeTooLargeError
from kafka.future import Future
from kafka.producer.future import RecordMetadata

from workers import SAMPLE_PAGES
from workers.feed import Record, page_from_html_file, records_from_jsonl, records_from_paths
from workers.models import SourcePosition
from workers.stages.article import build_article, canonical_url
from workers.stages.decode import decode_message
from workers.stages.extract import ExtractionOptions, extract_document
from workers.stages.outcome import Kept

NOW = datetime(2026, 11, 22, tzinfo=UTC)
MIB = 1024 * 1024
ARABIC_LINK = '<link rel="canonical" href="https://news.example/أخبار/حلب">'
TEXT = "<p>" + "The council voted on Tuesday to rebuild the old bridge over the river before winter. " * 3 + "</p>"


def page_file(tmp_path: Path, head: str, *, name: str = "story.html") -> Path:
    path = tmp_path / name
    path.write_text(f"<html><head>{head}</head><body>{TEXT}</body></html>")
    return path


def url_of(tmp_path: Path, head: str, *, name: str = "story.html", base_url: str = "https://files.example/in/") -> str:
    path = page_file(tmp_path, head, name=name)
    return str(page_from_html_file(path, base_url=base_url, fetched_at=NOW).url)


def test_an_html_file_is_sent_as_its_bytes_under_its_canonical_url():
    page = page_from_html_file(SAMPLE_PAGES / "seed-004-masr-news.html", base_url="https://x.example/", fetched_at=NOW)
    assert str(page.url) == "https://masr-news.example/egypt/2016/12/08/aleppo-ceasefire-talks"
    assert page.html is None and page.html_b64 and page.charset is None  # windows-1256 bytes, found by the pipeline


def test_a_file_without_canonical_link_gets_the_base_url(tmp_path: Path):
    path = tmp_path / "story.html"
    path.write_text("<html><body><p>text</p></body></html>")
    assert str(page_from_html_file(path, base_url="https://files.example/in/", fetched_at=NOW).url) == "https://files.example/in/story.html"


@pytest.mark.parametrize(
    ("declared", "url"),
    [
        ('<link rel="canonical" href="/news/story-1">', "https://files.example/news/story-1"),
        ('<meta property="og:url" content="story-2">', "https://files.example/in/story-2"),
        ('<link rel="canonical" href="//cdn.example/story-3">', "https://cdn.example/story-3"),
    ],
    ids=["root-relative", "relative og:url", "scheme-relative"],
)
def test_a_relative_canonical_link_is_resolved_against_the_files_url(tmp_path: Path, declared: str, url: str):
    path = tmp_path / "story.html"
    path.write_text(f"<html><head>{declared}</head><body><p>text</p></body></html>")
    assert str(page_from_html_file(path, base_url="https://files.example/in/", fetched_at=NOW).url) == url


def test_entities_in_a_canonical_link_are_unescaped(tmp_path: Path):
    head = '<link rel="canonical" href="https://news.example/a?x=1&amp;y=2">'
    assert url_of(tmp_path, head) == "https://news.example/a?x=1&y=2"


@pytest.mark.parametrize(
    "head",
    [
        '<link href="https://news.example/story-1" rel="canonical">',
        '<meta content="https://news.example/story-1" property="og:url">',
        '<link rel="alternate canonical" href="https://news.example/story-1">',
    ],
    ids=["link href first", "meta content first", "rel of two tokens"],
)
def test_a_canonical_link_is_found_whatever_the_order_of_its_attributes(tmp_path: Path, head: str):
    assert url_of(tmp_path, head) == "https://news.example/story-1"


def test_the_canonical_link_is_preferred_to_an_earlier_og_url(tmp_path: Path):
    head = (
        '<meta property="og:url" content="https://news.example/section/">'
        '<link rel="canonical" href="https://news.example/story-1">'
    )
    assert url_of(tmp_path, head) == "https://news.example/story-1"


def test_a_canonical_naming_the_home_page_is_ignored_unless_the_file_is_the_home_page(tmp_path: Path):
    """A template's mistake: taken, every such file would be one article (the article stage
    ignores it on a crawled page too)."""
    head = '<link rel="canonical" href="https://news.example/">'
    assert url_of(tmp_path, head) == "https://files.example/in/story.html"
    assert url_of(tmp_path, head, name="index.html", base_url="https://files.example/") == "https://news.example/"


def test_a_canonical_link_the_pipeline_ignores_leaves_the_files_url(tmp_path: Path):
    assert url_of(tmp_path, '<link rel="canonical" href="javascript:void(0)">') == "https://files.example/in/story.html"


@pytest.mark.parametrize(
    ("name", "url"),
    [
        ("a#1.html", "https://files.example/in/a%231.html"),
        ("q?x=1.html", "https://files.example/in/q%3Fx%3D1.html"),
        ("50%.html", "https://files.example/in/50%25.html"),
        ("خبر عاجل.html", "https://files.example/in/%D8%AE%D8%A8%D8%B1%20%D8%B9%D8%A7%D8%AC%D9%84.html"),
    ],
)
def test_a_file_name_is_one_path_segment_of_the_url(tmp_path: Path, name: str, url: str):
    assert url_of(tmp_path, "", name=name) == url


def test_files_whose_names_differ_after_a_hash_are_two_articles(tmp_path: Path):
    """Not one URL with two fragments, which the pipeline drops: one article, the second file's."""
    for name in ("a#1.html", "a#2.html"):
        page_file(tmp_path, "", name=name)
    records = records_from_paths([tmp_path], base_url="https://files.example/")
    assert len({canonical_url(record.key.decode(), None) for record in records}) == 2


def test_files_of_one_name_in_two_directories_are_two_articles(tmp_path: Path):
    for folder in ("world", "sport"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "a.html").write_text(f"<p>{folder}</p>", encoding="utf-8")
    keys = [record.key for record in records_from_paths([tmp_path], base_url="https://files.example/")]
    assert keys == [b"https://files.example/sport/a.html", b"https://files.example/world/a.html"]


def test_a_canonical_link_that_does_not_parse_leaves_the_files_url(tmp_path: Path):
    # the pipeline ignores it too (it failed the page as extractor_error: "Invalid IPv6 URL")
    (page := tmp_path / "a.html").write_text('<link rel="canonical" href="http://[::1/x"><p>x</p>', encoding="utf-8")
    (record,) = records_from_paths([page], base_url="https://files.example/")
    assert record.key == b"https://files.example/a.html"


@pytest.mark.parametrize(
    ("html", "encoding"),
    [
        (f'<meta charset="windows-1256">{ARABIC_LINK}', "windows-1256"),
        (f"{ARABIC_LINK}<title>أخبار حلب اليوم من مراسلنا</title>", "windows-1256"),
        (ARABIC_LINK, "utf-16"),
    ],
    ids=["declared legacy charset", "detected legacy charset", "utf-16 with its byte-order mark"],
)
def test_a_canonical_link_is_read_in_the_pages_charset(tmp_path: Path, html: str, encoding: str):
    path = tmp_path / "story.html"
    path.write_bytes(f"<html><head>{html}</head><body><p>نص الخبر</p></body></html>".encode(encoding))
    page = page_from_html_file(path, base_url="https://files.example/in/", fetched_at=NOW)
    assert str(page.url) == "https://news.example/%D8%A3%D8%AE%D8%A8%D8%A7%D8%B1/%D8%AD%D9%84%D8%A8"


def test_a_canonical_link_cut_by_the_read_limit_is_not_read_in_part(tmp_path: Path):
    """The first 64 Ki characters are read (a head past them is a rare page's, and a page of
    megabytes is not parsed whole): a link that they cut is not taken as far as they go."""
    link = '<link rel="canonical" href="https://news.example/story-1">'
    cut = link.index("story-1") + 2
    style = "<html><head><style>" + "p" * (65536 - cut - len("<html><head><style></style>")) + "</style>"
    path = tmp_path / "story.html"
    path.write_text(f"{style}{link}</head><body>{TEXT}</body></html>")
    page = page_from_html_file(path, base_url="https://files.example/", fetched_at=NOW)
    assert str(page.url) == "https://files.example/story.html"


@pytest.mark.parametrize(
    "head",
    [
        '<link rel="canonical" href="https://news.example/a?x=1&amp;y=2">',
        '<link href="/news/story-1" rel="canonical">',
        '<meta property="og:url" content="https://news.example/"><link href="/story-1" rel="canonical">',
        '<link rel="canonical" href="https://news.example/">',
    ],
    ids=["entity", "attribute order", "og:url first", "home page"],
)
def test_the_key_is_the_url_the_pipeline_gives_the_article(tmp_path: Path, head: str):
    """The record's key and URL (hence the page's outcome key) are the page's identity in the
    pipeline: the article it makes is not filed under another URL."""
    (record,) = records_from_paths([page_file(tmp_path, head)], base_url="https://files.example/in/")
    decoded = decode_message(record.value, max_html_bytes=8 * MIB)
    assert isinstance(decoded, Kept)
    document = extract_document(decoded.value.html, decoded.value.effective_url, ExtractionOptions())
    assert isinstance(document, Kept)
    source = SourcePosition(topic="t", partition=0, offset=0)
    article = build_article(decoded.value, document.value, source=source, pipeline_version=1, processed_at=NOW)
    assert article.canonical_url == record.key.decode() == article.url


def test_a_file_that_makes_no_valid_message_is_named_on_one_line(tmp_path: Path):
    (tmp_path / "a-good.html").write_text("<html><body><p>text</p></body></html>")
    bad = tmp_path / "b-bad.html"
    # a space in the host: a URL no message may carry
    bad.write_text('<html><head><link rel="canonical" href="https://a b/x"></head><body><p>x</p></body></html>')
    records = records_from_paths([tmp_path], base_url="https://files.example/")
    assert next(records).key == b"https://files.example/a-good.html"
    with pytest.raises(ValueError) as raised:
        next(records)
    assert str(raised.value).startswith(f"{bad}: not a pages.raw message: url: ")
    assert "\n" not in str(raised.value)


def test_a_page_over_the_record_limit_is_named_with_its_file_or_line(tmp_path: Path):
    html = tmp_path / "big.html"
    html.write_text("<html><body>" + "<p>the same line again</p>" * 40000 + "</body></html>")  # 1.4 MiB as base64
    with pytest.raises(ValueError, match=rf"^{re.escape(str(html))}: \d+ bytes as a record, over the limit of {MIB} "):
        list(records_from_paths([tmp_path], base_url="https://files.example/", max_bytes=MIB))
    assert len(list(records_from_paths([tmp_path], base_url="https://files.example/", max_bytes=2 * MIB))) == 1

    crawl = tmp_path / "crawl.jsonl"
    small = {"url": "https://a.example/1", "fetched_at": "2026-11-22T10:00:00Z", "html": "<p>x</p>"}
    crawl.write_text(json.dumps(small) + "\n" + json.dumps(small | {"html": "x" * MIB}) + "\n")
    with pytest.raises(ValueError, match=rf"^{re.escape(str(crawl))}:2: \d+ bytes as a record, over the limit of {MIB} "):
        list(records_from_jsonl(crawl, max_bytes=MIB))


def test_a_directory_yields_every_html_file_keyed_by_url():
    records = list(records_from_paths([SAMPLE_PAGES], base_url="https://x.example/"))
    assert records and len(records) == len(list(SAMPLE_PAGES.glob("*.html")))
    assert all(json.loads(r.value)["url"] == r.key.decode() for r in records)


def test_jsonl_lines_are_validated_with_their_line_number(tmp_path: Path):
    good = {"url": "https://a.example/1", "fetched_at": "2026-11-22T10:00:00Z", "html": "<p>x</p>"}
    path = tmp_path / "crawl.jsonl"
    path.write_text(json.dumps(good) + "\n\n" + json.dumps({"url": "https://a.example/2", "html": "x"}) + "\n")
    records = records_from_jsonl(path)
    assert next(records).key == b"https://a.example/1"
    with pytest.raises(ValueError, match=r"crawl.jsonl:3: not a pages.raw message: fetched_at: Field required$"):
        next(records)


def test_kafka_python_checksums_record_batches_in_c():
    """Without the crc32c package kafka-python computes every batch's CRC-32C in pure Python,
    about six times the CPU of producing (the dependency is there for that)."""
    from kafka.record import util

    assert util.crc32c_c is not None
    assert util.calc_crc32c(b"123456789") == 0xE3069283  # the CRC-32C check value


def test_a_canonical_over_the_url_limit_once_percent_encoded_leaves_the_files_url(tmp_path: Path):
    # 1,600 Arabic characters are 4,800 once percent-encoded: no crawled URL could be that, and
    # taken, the message would be refused and the whole run with it
    long_path = "/" + "تقرير-" * 270
    (page := tmp_path / "a.html").write_text(
        f'<link rel="canonical" href="https://news.example{long_path}"><p>x</p>', encoding="utf-8"
    )
    (record,) = records_from_paths([page], base_url="https://files.example/")
    assert record.key == b"https://files.example/a.html"


# --- found by a review of the command line (the nineteenth session) ---------------------------------


def test_a_jsonl_record_is_keyed_by_its_url_as_the_crawler_wrote_it(tmp_path: Path):
    # the schema's contract: records of one URL share a partition with the crawler's own
    url = "https://مثال.مصر/حلب?q=1"
    crawl = tmp_path / "crawl.jsonl"
    crawl.write_text(json.dumps({"url": url, "fetched_at": "2026-11-22T10:00:00Z", "html": "<p>x</p>"}, ensure_ascii=False) + "\n", encoding="utf-8")
    (record,) = records_from_jsonl(crawl)
    assert record.key == url.encode()


def test_a_directory_entry_that_is_no_regular_file_is_named_not_read(tmp_path: Path):
    # a pipe hung the second read for ever, a dangling link or a directory named *.html raised a traceback
    import os

    (tmp_path / "story.html").write_text("<p>x</p>", encoding="utf-8")
    (tmp_path / "sub.html").mkdir()
    assert len(list(records_from_paths([tmp_path], base_url="https://files.example/"))) == 1
    (tmp_path / "gone.html").symlink_to(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="gone.html: not a regular file"):
        list(records_from_paths([tmp_path], base_url="https://files.example/"))
    (tmp_path / "gone.html").unlink()
    os.mkfifo(tmp_path / "pipe.html")
    with pytest.raises(ValueError, match="pipe.html: not a regular file"):
        list(records_from_paths([tmp_path], base_url="https://files.example/"))


def test_a_file_whose_name_is_not_utf8_is_published_under_its_bytes(tmp_path: Path):
    import os

    name = os.fsdecode(b"caf\xe9.html")
    (tmp_path / name).write_text("<p>x</p>", encoding="utf-8")
    (record,) = records_from_paths([tmp_path], base_url="https://files.example/")
    assert record.key == b"https://files.example/caf%E9.html"


def test_json_lines_named_ndjson_are_read_as_lines_and_a_json_file_is_refused(tmp_path: Path):
    # Not .jsonl, a crawl export was published as one HTML page: one article made of every
    # crawled page's text, under the file's URL, matched by the alert rules
    lines = "".join(
        json.dumps({"url": f"https://news.example/story-{n}", "fetched_at": "2026-11-22T10:00:00Z", "html": "<p>x</p>"}) + "\n"
        for n in range(3)
    )
    for name in ("crawl.ndjson", "CRAWL.NDJSON"):
        (tmp_path / name).write_text(lines, encoding="utf-8")
        records = list(records_from_paths([tmp_path / name], base_url="https://files.example/"))
        assert [record.key for record in records] == [f"https://news.example/story-{n}".encode() for n in range(3)]
    (tmp_path / "crawl.json").write_text(lines, encoding="utf-8")
    with pytest.raises(ValueError, match=r"crawl\.json: a JSON file: give crawled pages as JSON Lines \(\.jsonl, \.ndjson\)"):
        list(records_from_paths([tmp_path / "crawl.json"], base_url="https://files.example/"))


@pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")
def test_the_bounded_producer_sends_bytes_only():
    # it measures what it holds by the length of keys and values: a serializer's objects have none
    from workers.feed import BoundedProducer

    with pytest.raises(ValueError, match="sends bytes"):
        BoundedProducer(bootstrap_servers="127.0.0.1:1", value_serializer=json.dumps)


# --- found by mutation testing: the producer's accounting and the topic check, without a broker ----------


class SentAndFlushed:
    """KafkaProducer's own work replaced (no broker here): what BoundedProducer hands it is recorded."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from kafka import KafkaProducer

        self.sent: list[bytes | None] = []
        self.flushes: list[int] = []  # records sent before each flush
        self.configs: dict[str, object] = {}
        monkeypatch.setattr(KafkaProducer, "__init__", lambda producer, **configs: self.configs.update(configs))
        monkeypatch.setattr(KafkaProducer, "__del__", lambda producer: None)
        monkeypatch.setattr(KafkaProducer, "send", lambda producer, topic, **kw: self.sent.append(kw["value"]))
        monkeypatch.setattr(KafkaProducer, "flush", lambda producer, timeout=None: self.flushes.append(len(self.sent)))


@pytest.mark.parametrize(("limit", "flushes"), [(2800, []), (2799, [1])])
def test_the_bounded_producer_counts_a_record_as_its_key_and_value_and_1000_bytes(
    monkeypatch: pytest.MonkeyPatch, limit: int, flushes: list[int]
):
    from workers.feed import BoundedProducer

    kafka = SentAndFlushed(monkeypatch)
    producer = BoundedProducer(max_unacknowledged_bytes=limit)
    producer.send("t", key=b"k" * 50, value=b"v" * 400)  # 1450 bytes held
    producer.send("t", key=None, value=b"v" * 350)  # 1350 more: 2800
    assert kafka.flushes == flushes
    del producer  # while KafkaProducer's __del__ is still replaced


def test_the_bounded_producer_sends_a_record_over_its_limit_alone_and_then_starts_counting_again(
    monkeypatch: pytest.MonkeyPatch,
):
    from workers.feed import BoundedProducer

    kafka = SentAndFlushed(monkeypatch)
    producer = BoundedProducer(max_unacknowledged_bytes=10_000)
    producer.send("t", value=b"x" * 20_000)  # nothing held yet: sent without waiting
    producer.send("t", value=b"y" * 4000)  # 5000, held with more than the limit: waits for the first
    producer.send("t", value=b"z" * 3990, headers=[("h", b"w" * 9)])  # 5000 more: 10,000, not over
    producer.send("t", value=None)  # a tombstone's 1000 bytes: over
    producer.send("t", value=None, headers=[("hh", b"w" * 7999)])  # 1000 + 9001, headers counted: over
    assert kafka.sent == [b"x" * 20_000, b"y" * 4000, b"z" * 3990, None, None]
    assert kafka.flushes == [1, 3, 4]
    del producer  # while KafkaProducer's __del__ is still replaced


class Admin:
    """An admin client whose topic is unknown to the broker for the first ``unknown`` questions,
    then answered with ``error_code``; its max.message.bytes is ``limit``."""

    config = {"retry_backoff_ms": 0}

    def __init__(self, unknown: int, error_code: int = 0, limit: str | None = "1048576") -> None:
        self.unknown, self.error_code, self.limit = unknown, error_code, limit
        self.asked: list[list[str]] = []
        self.closed = False

    def describe_topics(self, topics: list[str]) -> list[dict[str, object]]:
        assert len(self.asked) < 100, "asked for ever"
        self.asked.append(topics)
        return [{"topic": topics[0], "error_code": 3 if len(self.asked) <= self.unknown else self.error_code}]

    def describe_configs(self, resources: list, config_filter: str) -> dict[str, object]:
        # what the broker answers a client not allowed to describe the topic's configs: no config
        held = {"max.message.bytes": {"value": self.limit}} if self.limit is not None else {}
        return {"topic": {resources[0].name: held}}

    def close(self) -> None:
        self.closed = True


def test_a_topic_unknown_for_a_moment_is_waited_for_and_one_unknown_for_good_is_refused(monkeypatch: pytest.MonkeyPatch):
    from workers import feed
    from workers.settings import Settings

    settings = Settings.model_construct()
    admin = Admin(unknown=2)
    admin.config = {"retry_backoff_ms": 50}
    waits: list[float] = []
    monkeypatch.setattr(feed, "make_admin", lambda given: admin)
    monkeypatch.setattr(feed.time, "sleep", waits.append)
    feed.require_topic(settings, "pages.raw")
    assert admin.asked == [["pages.raw"]] * 3 and admin.closed
    assert waits == [0.05, 0.05]  # the admin's retry backoff between questions

    admin = Admin(unknown=10**9)
    monkeypatch.setattr(feed, "_NEW_TOPIC_WAIT_S", 0.0)
    with pytest.raises(ValueError, match=r"^topic 'pages\.raw' does not exist \(`wirefeed topics create`"):
        feed.require_topic(settings, "pages.raw")
    assert admin.closed


def test_the_bounded_producer_holds_64_mib_by_default(monkeypatch: pytest.MonkeyPatch):
    from workers.feed import BoundedProducer

    kafka = SentAndFlushed(monkeypatch)
    producer = BoundedProducer()
    half = b"x" * (32 * MIB - 1000)
    producer.send("t", value=half)
    producer.send("t", value=half)  # 64 MiB held: not over
    assert kafka.flushes == []
    producer.send("t", value=None)
    assert kafka.flushes == [2]
    del producer  # while KafkaProducer's __del__ is still replaced


def test_a_record_of_exactly_the_limit_is_within_it(tmp_path: Path):
    from kafka.record.default_records import DefaultRecordBatchBuilder

    line = json.dumps({"url": "https://a.example/1", "fetched_at": "2026-11-22T10:00:00Z", "html": "<p>x</p>"})
    (crawl := tmp_path / "crawl.jsonl").write_text(line + "\n")
    size = DefaultRecordBatchBuilder.estimate_size_in_bytes(b"https://a.example/1", line.encode(), [])
    assert len(list(records_from_jsonl(crawl, max_bytes=size))) == 1
    with pytest.raises(ValueError, match=rf"crawl\.jsonl:1: {size} bytes as a record, over the limit of {size - 1} "):
        list(records_from_jsonl(crawl, max_bytes=size - 1))


@pytest.mark.parametrize(("compression", "compression_type"), [("none", None), ("lz4", "lz4")])
def test_the_producer_is_built_from_the_settings_and_the_options_given_replace_its_defaults(
    monkeypatch: pytest.MonkeyPatch, compression: str, compression_type: str | None
):
    from workers.feed import make_producer
    from workers.settings import Settings

    kafka = SentAndFlushed(monkeypatch)
    settings = Settings.model_construct(compression=compression, max_message_bytes=2 * MIB)
    producer = make_producer(settings, linger_ms=0, max_unacknowledged_bytes=10)
    assert kafka.configs["compression_type"] == compression_type
    assert kafka.configs["max_request_size"] == 2 * MIB and kafka.configs["acks"] == "all"
    assert kafka.configs["linger_ms"] == 0 and "max_unacknowledged_bytes" not in kafka.configs
    assert producer._max_unacknowledged_bytes == 10
    del producer  # while KafkaProducer's __del__ is still replaced


def test_a_file_that_cannot_be_read_is_named_with_the_reason(tmp_path: Path):
    with pytest.raises(ValueError, match=r"gone\.html: cannot be read: No such file or directory$"):
        list(records_from_paths([tmp_path / "gone.html"], base_url="https://files.example/"))


def test_an_html_files_record_is_a_pages_raw_message_as_the_schema_spells_it(tmp_path: Path):
    (record,) = records_from_paths([page_file(tmp_path, "")], base_url="https://files.example/in/")
    message = json.loads(record.value)
    assert message["schema"] == "wirefeed.pages.raw/1" and "schema_" not in message
    assert None not in message.values()  # an unset field is left out, not null


# --- found by a review of `wirefeed produce` (the twenty-sixth session) ----------------------------


class WindowedProducer:
    """A producer whose broker acknowledges the records of a window (``window`` sends) when the
    window is full, last first, as BoundedProducer waits for the broker; ``refused`` are the numbers
    of records the broker refuses. Its futures are counted while alive."""

    def __init__(self, window: int, refused: frozenset[int] = frozenset()) -> None:
        self.window, self.refused = window, refused
        self.unacknowledged: list[tuple[int, Future]] = []
        self.sent = 0
        self.alive: weakref.WeakSet[Future] = weakref.WeakSet()

    def send(self, topic: str, *, key: bytes | None, value: bytes, partition: int | None) -> Future:
        future = CountedFuture()
        self.alive.add(future)
        self.unacknowledged.append((self.sent, future))
        self.sent += 1
        if len(self.unacknowledged) == self.window:
            self.flush()
        return future

    def flush(self) -> None:
        for number, future in reversed(self.unacknowledged):
            if number in self.refused:
                future.failure(MessageSizeTooLargeError(f"record {number}"))
            else:
                future.success(RecordMetadata("t", 0, None, number, 0, None, 0, len(b"v"), 0))
        self.unacknowledged.clear()

    def close(self) -> None:
        self.flush()


class CountedFuture(Future):
    """A FutureRecordMetadata that a weak reference can follow (a subclass without slots)."""

    def get(self, timeout: float | None = None) -> RecordMetadata:
        assert self.is_done, "waited on a record the broker has not answered"
        if self.exception is not None:
            raise self.exception
        return self.value


def produce_into(monkeypatch: pytest.MonkeyPatch, producer: WindowedProducer) -> None:
    from workers import feed

    monkeypatch.setattr(feed, "require_topic", lambda settings, topic: None)
    monkeypatch.setattr(feed, "make_producer", lambda settings: producer)


def test_produce_lets_a_record_go_once_the_broker_acknowledged_it_and_returns_where_each_landed_in_order(
    monkeypatch: pytest.MonkeyPatch,
):
    """Every record's future was kept to the end: a crawl export's every record was held, 0.5 KB
    each (260 MB of peak RSS for 300,000 small pages), not the window README promises."""
    from workers import feed
    from workers.settings import Settings

    producer = WindowedProducer(window=10)
    produce_into(monkeypatch, producer)
    held: list[int] = []

    def records() -> Iterator[Record]:
        for number in range(1000):
            held.append(len(producer.alive))
            yield Record(f"https://news.example/{number}".encode(), b"v")

    landed = feed.produce(Settings.model_construct(), records())
    assert max(held) <= 10
    assert [metadata.offset for metadata in landed] == list(range(1000))  # acknowledged last first


def test_a_record_the_broker_refuses_fails_produce_with_its_error_before_the_next_window_is_sent(
    monkeypatch: pytest.MonkeyPatch,
):
    from workers import feed
    from workers.settings import Settings

    producer = WindowedProducer(window=10, refused=frozenset({3, 500}))
    produce_into(monkeypatch, producer)
    records = (Record(f"https://news.example/{number}".encode(), b"v") for number in range(1000))
    with pytest.raises(MessageSizeTooLargeError, match="record 3"):
        feed.produce(Settings.model_construct(), records)
    assert producer.sent == 10


# --- found by a review of `wirefeed replay` and `produce` (the twenty-seventh session) -------------------


@pytest.mark.parametrize(("error_code", "refused"), [(17, "INVALID_TOPIC"), (29, "TOPIC_AUTHORIZATION_FAILED")])
def test_a_topic_the_broker_refuses_is_refused_by_name_with_the_brokers_reason(
    monkeypatch: pytest.MonkeyPatch, error_code: int, refused: str
):
    """"pages.raw " (INVALID_TOPIC_EXCEPTION) passed as a topic that exists: the plan was printed
    and the first send raised a traceback."""
    from workers import feed
    from workers.settings import Settings

    admin = Admin(unknown=0, error_code=error_code)
    monkeypatch.setattr(feed, "make_admin", lambda given: admin)
    with pytest.raises(ValueError, match=rf"^topic 'pages\.raw ': the broker refuses it: {refused} \("):
        feed.require_topic(Settings.model_construct(), "pages.raw ")
    assert admin.closed


def test_the_topic_check_returns_the_topics_limit_and_leaves_a_retriable_error_to_the_producer(
    monkeypatch: pytest.MonkeyPatch,
):
    from workers import feed
    from workers.settings import Settings

    # LEADER_NOT_AVAILABLE (5) is retriable; no limit is what a client not allowed to see it gets
    for error_code, limit, returned in [(0, "1048576", 1048576), (5, "2097152", 2097152), (0, None, None)]:
        monkeypatch.setattr(feed, "make_admin", lambda given: Admin(unknown=0, error_code=error_code, limit=limit))
        assert feed.require_topic(Settings.model_construct(), "pages.raw") == returned


def test_a_page_over_the_topics_limit_once_compressed_is_named_and_one_within_it_compressed_is_not(tmp_path: Path):
    """The topic's max.message.bytes, below WIREFEED_MAX_MESSAGE_BYTES, was not checked: the broker
    refused the page halfway through a directory. It measures the batch as compressed."""
    from workers.feed import TopicLimit

    limit = TopicLimit("pages.raw", MIB, "zstd")
    crawl = tmp_path / "crawl.jsonl"
    small = {"url": "https://a.example/1", "fetched_at": "2026-11-22T10:00:00Z", "html": "<p>x</p>"}
    repetitive = small | {"url": "https://a.example/2", "html": "<p>the same line again</p>" * 80000}  # 2 MiB
    noise = small | {"url": "https://a.example/3", "html": "<p>" + random.Random(3).randbytes(3 * MIB // 2).hex() + "</p>"}
    crawl.write_text("\n".join(json.dumps(page) for page in (small, repetitive)) + "\n")
    assert len(list(records_from_jsonl(crawl, max_bytes=32 * MIB, topic_limit=limit))) == 2

    crawl.write_text("\n".join(json.dumps(page) for page in (small, repetitive, noise)) + "\n")
    with pytest.raises(ValueError) as raised:
        list(records_from_jsonl(crawl, max_bytes=32 * MIB, topic_limit=limit))
    assert re.fullmatch(
        rf"{re.escape(str(crawl))}:3: \d+ bytes as a record batch \(compression zstd\), over the limit of topic "
        rf"'pages\.raw', max\.message\.bytes={MIB} \(`kafka-configs\.sh --alter .*` raises it\)",
        str(raised.value),
    )


@pytest.mark.parametrize("compression", ["none", "gzip", "lz4", "zstd"])
def test_a_batch_is_measured_as_the_producer_builds_it(compression: str):
    from kafka import KafkaProducer
    from kafka.producer.record_accumulator import RecordAccumulator
    from kafka.record.default_records import DefaultRecordBatchBuilder
    from kafka.structs import TopicPartition

    from workers.feed import TopicLimit

    record = Record(b"https://a.example/1", b"<p>the same line again</p>" * 1000)
    # the accumulator of a KafkaProducer(compression_type=...): the batch it sends to the broker
    codec = KafkaProducer._COMPRESSORS[None if compression == "none" else compression][1]
    accumulator = RecordAccumulator(compression_attrs=codec)
    accumulator.append(TopicPartition("t", 0), None, record.key, record.value, [])
    (batch,) = accumulator._batches[TopicPartition("t", 0)]
    batch.records.close()
    assert TopicLimit("t", MIB, compression).batch_bytes(record) == batch.records.size_in_bytes()
    if compression != "none":
        assert batch.records.size_in_bytes() < DefaultRecordBatchBuilder.estimate_size_in_bytes(record.key, record.value, []) // 10


def test_a_jsonl_file_that_starts_with_a_byte_order_mark_is_read_and_sent_without_it(tmp_path: Path):
    """Refused as "line 1: not a pages.raw message: Invalid JSON", though the pipeline reads it."""
    line = json.dumps({"url": "https://a.example/1", "fetched_at": "2026-11-22T10:00:00Z", "html": "<p>x</p>"})
    (crawl := tmp_path / "crawl.jsonl").write_bytes(b"\xef\xbb\xbf" + line.encode() + b"\n" + line.encode() + b"\n")
    records = list(records_from_jsonl(crawl))
    assert [(r.key, r.value) for r in records] == [(b"https://a.example/1", line.encode())] * 2
