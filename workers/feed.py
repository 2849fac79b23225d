"""Feeding ``pages.raw`` by hand: HTML files, directories of them, or JSONL of crawled pages."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from kafka import KafkaProducer
from kafka.admin import ConfigResource, ConfigResourceType
from kafka.errors import UnknownTopicOrPartitionError, for_code
from kafka.producer.future import FutureRecordMetadata, RecordMetadata
from kafka.record.default_records import DefaultRecordBatchBuilder
from pydantic import ValidationError

from workers.kafka_clients import kafka_client_options, make_admin
from workers.models import RawPage
from workers.settings import Settings
from workers.stages.decode import decode_html_bytes, summarise_validation_error
from workers.stages.outcome import Failed
from workers.urlnorm import names_the_home_page_instead_of

# How much of a page's text is parsed for its canonical link: its head, where the link belongs,
# on all but a few pages; a page of megabytes parsed whole for it would cost more than sending it.
_HEAD_CHARS = 65536
HTML_SUFFIXES = {".html", ".htm", ".xhtml"}
# JSON Lines of crawled pages, under both of its names
JSONL_SUFFIXES = {".jsonl", ".ndjson"}
# A topic created a moment ago (`wirefeed topics create` just before, in a script) can be unknown
# to the broker asked, for a moment: unknown for this long, it does not exist.
_NEW_TOPIC_WAIT_S = 5.0
# What some Windows tools (PowerShell 5's Out-File, older Notepad) write first in a UTF-8 file;
# the pipeline's decode stage skips it too.
_UTF8_BOM = b"\xef\xbb\xbf"
# kafka-python's codec of each value of the compression setting
_CODECS = {
    "none": DefaultRecordBatchBuilder.CODEC_NONE,
    "gzip": DefaultRecordBatchBuilder.CODEC_GZIP,
    "lz4": DefaultRecordBatchBuilder.CODEC_LZ4,
    "zstd": DefaultRecordBatchBuilder.CODEC_ZSTD,
}


@dataclass(frozen=True, slots=True)
class Record:
    key: bytes | None
    value: bytes


@dataclass(frozen=True, slots=True)
class TopicLimit:
    """A topic's max.message.bytes, which the broker compares with each record batch as the
    producer sent it, compressed with ``compression`` (the setting's name of the codec)."""

    topic: str
    max_message_bytes: int
    compression: str

    def batch_bytes(self, record: Record) -> int:
        """The size of ``record``'s batch as the broker receives it: the record alone (one larger
        than the producer's batch_size, 16 KiB, never shares its batch), compressed, or not when
        that makes it no smaller, as kafka-python does."""
        builder = DefaultRecordBatchBuilder(
            magic=2, compression_type=_CODECS[self.compression], is_transactional=False,
            producer_id=-1, producer_epoch=-1, base_sequence=-1, batch_size=2**31 - 1,
        )
        builder.append(0, timestamp=None, key=record.key, value=record.value, headers=[])
        return len(builder.build())


def page_from_html_file(path: Path, *, base_url: str, fetched_at: datetime, name: str | None = None) -> RawPage:
    """The page's bytes go as they are (base64) and the pipeline finds the charset, as it would for
    a crawler that does not decode. The URL is the file's ``name`` (its path under the directory
    given, "x/a.html"; else the file name) under ``base_url``, percent-encoded ("a#1.html" is no
    fragment), unless the page declares its own."""
    raw = path.read_bytes()
    # a name that is not UTF-8 keeps its bytes, percent-encoded
    file_url = f"{base_url.rstrip('/')}/{quote(name or path.name, errors='surrogateescape')}"
    return RawPage(
        url=_declared_canonical(raw, file_url) or file_url,
        fetched_at=fetched_at,
        content_type="text/html",
        html_b64=base64.b64encode(raw).decode("ascii"),
        source_id="wirefeed-produce",
    )


def _declared_canonical(raw: bytes, file_url: str) -> str | None:
    """The page's canonical URL as the pipeline reads it: the bytes decoded by the decode stage's
    rules, ``<link rel=canonical>`` preferred to ``og:url`` (in the first ``_HEAD_CHARS``
    characters), resolved against ``file_url`` as against a crawled page's URL. None when the page
    declares none, when no charset decodes it (the pipeline dead-letters it under the file's URL),
    or when it names the home page and the file is not the home page: a template's mistake that
    would make all such files one article, which the article stage ignores too."""
    # Imported here: `wirefeed replay` and the readiness probe import this module, and must not
    # load the extractor (trafilatura, the language model) that reading a page takes.
    from trafilatura.utils import load_html

    from workers.stages.metadata import declared_canonical

    # the whole page, as the decode stage decodes it: its charset is chosen by all of its bytes,
    # and a head cut inside a character is no valid UTF-8
    decoded = decode_html_bytes(raw, None)
    if isinstance(decoded, Failed):
        return None
    head = decoded[0][:_HEAD_CHARS]
    # lxml refuses an empty document, and trafilatura logs that as an error
    tree = load_html(head) if head.strip() else None
    if tree is None:
        return None
    url = declared_canonical(tree, file_url)
    return None if url is None or names_the_home_page_instead_of(url, file_url) else url


def records_from_paths(
    paths: Iterable[Path], *, base_url: str, max_bytes: int | None = None, topic_limit: TopicLimit | None = None
) -> Iterator[Record]:
    """The records of HTML files, directories of them and JSON Lines files (.jsonl, .ndjson; a
    .json file is refused, not published as a page). A page that is not a valid
    ``pages.raw`` message, one over ``max_bytes`` as a record, or one whose batch is over
    ``topic_limit``, raises ValueError naming its file (and line), on one line; so does a directory
    without HTML files or a JSON Lines file without a line."""
    now = datetime.now(UTC)
    for path in paths:
        if path.is_dir():
            # named by their path under the directory: x/a.html and y/a.html are two pages
            pages = sorted(p for p in path.rglob("*") if p.suffix.lower() in HTML_SUFFIXES and not p.is_dir())
            if not pages:
                # a mirror's pages saved without the suffix (index, article.php?id=3) or a mistyped
                # directory: "published 0 page(s)" and success, as if the pages had gone
                raise ValueError(
                    f"{_shown(path)}: no {', '.join(sorted(HTML_SUFFIXES))} file in this directory or under it "
                    "(a page under another name is read when given by its own path)"
                )
            for page in pages:
                if not page.is_file():
                    # read twice (a check, then the send), a pipe would hang the second read
                    raise ValueError(f"{_shown(page)}: not a regular file (a dangling link, a pipe or a device)")
                name = page.relative_to(path).as_posix()
                yield _html_file_record(
                    page, base_url=base_url, fetched_at=now, name=name, max_bytes=max_bytes, topic_limit=topic_limit
                )
        elif path.suffix.lower() in JSONL_SUFFIXES:
            yield from records_from_jsonl(path, max_bytes=max_bytes, topic_limit=topic_limit)
        elif path.suffix.lower() == ".json":
            # published as a page, a crawl export would be one article of all its pages' text
            raise ValueError(f"{_shown(path)}: a JSON file: give crawled pages as JSON Lines (.jsonl, .ndjson)")
        else:
            yield _html_file_record(
                path, base_url=base_url, fetched_at=now, name=None, max_bytes=max_bytes, topic_limit=topic_limit
            )


def _html_file_record(
    path: Path,
    *,
    base_url: str,
    fetched_at: datetime,
    name: str | None,
    max_bytes: int | None,
    topic_limit: TopicLimit | None,
) -> Record:
    try:
        page = page_from_html_file(path, base_url=base_url, fetched_at=fetched_at, name=name)
    except ValidationError as exc:
        raise ValueError(f"{_shown(path)}: not a pages.raw message: {summarise_validation_error(exc)}") from exc
    except OSError as exc:
        raise ValueError(f"{_shown(path)}: cannot be read: {exc.strerror or exc}") from exc
    value = page.model_dump_json(by_alias=True, exclude_none=True).encode()
    return _within(Record(str(page.url).encode(), value), max_bytes, topic_limit, where=_shown(path))


def _shown(path: Path) -> str:
    """The path as a message can print it: a name that is not UTF-8 with its bytes escaped."""
    return str(path).encode("utf-8", "backslashreplace").decode("utf-8")


def records_from_jsonl(
    path: Path, *, max_bytes: int | None = None, topic_limit: TopicLimit | None = None
) -> Iterator[Record]:
    """Each line is a ``pages.raw`` message. Lines are validated here so that a typo in a
    hand-made file is reported with its line number instead of arriving as a dead letter."""
    with path.open("rb") as lines:
        pages = 0
        for number, line in enumerate(lines, start=1):
            if number == 1:
                # sent without it: the message is the JSON, and the schema's readers need not skip one
                line = line.removeprefix(_UTF8_BOM)
            if not line.strip():
                continue
            pages += 1
            try:
                page = RawPage.model_validate_json(line)
            except ValidationError as exc:
                raise ValueError(f"{path}:{number}: not a pages.raw message: {summarise_validation_error(exc)}") from exc
            # keyed by the url as the crawler wrote it (the schema's contract): a crawler's records
            # of the URL are keyed so, and share its partition and order
            written = json.loads(line)["url"]
            record = Record(written.encode(), line.rstrip(b"\r\n"))
            yield _within(record, max_bytes, topic_limit, where=f"{_shown(path)}:{number}")
    if not pages:
        # a crawl export cut off before its first page, or the wrong file: "published 0 page(s)"
        # and success, as if its pages had gone
        raise ValueError(f"{_shown(path)}: no page in this file (JSON Lines: one pages.raw message per line)")


def _within(record: Record, max_bytes: int | None, topic_limit: TopicLimit | None, *, where: Path | str) -> Record:
    """A page that the producer or the broker would refuse is named here, before anything is
    sent, instead of halfway through a directory."""
    # The size kafka-python's producer checks against its max_request_size, before compression
    # (record format 2, the only one Kafka 4 accepts); no smaller than the batch that carries it.
    size = DefaultRecordBatchBuilder.estimate_size_in_bytes(record.key, record.value, [])
    if max_bytes is not None and size > max_bytes:
        raise ValueError(
            f"{where}: {size} bytes as a record, over the limit of {max_bytes} (WIREFEED_MAX_MESSAGE_BYTES; "
            "checked before compression; an HTML file's bytes are sent as base64, a third larger)"
        )
    # The broker measures the batch, compressed: a page over the topic's limit before compression
    # may fit after it, and is refused only when it would be. Compressed here only then, since
    # that costs what the send's compression costs again.
    if topic_limit is not None and size > topic_limit.max_message_bytes:
        limit, topic = topic_limit.max_message_bytes, topic_limit.topic
        if (batch := topic_limit.batch_bytes(record)) > limit:
            raise ValueError(
                f"{where}: {batch} bytes as a record batch (compression {topic_limit.compression}), over the limit "
                f"of topic {topic!r}, max.message.bytes={limit} (`kafka-configs.sh --alter --entity-type topics "
                f"--entity-name {topic} --add-config max.message.bytes=N` raises it)"
            )
    return record


def require_topic(settings: Settings, topic: str) -> int | None:
    """The topic's max.message.bytes (None when the broker does not say, e.g. to a client not
    allowed to describe its configs); ValueError when ``topic`` does not exist or the broker refuses
    it. Asked before producing to a topic: a producer waits 60 s (max_block_ms) for one that does
    not exist, logging an error at every metadata refresh, and then reports a timeout, as if Kafka
    had not answered."""
    admin = make_admin(settings)
    try:
        deadline = time.monotonic() + _NEW_TOPIC_WAIT_S
        # Only this topic's metadata (a cluster may hold thousands), never creating it.
        while (code := admin.describe_topics([topic])[0]["error_code"]) == UnknownTopicOrPartitionError.errno:
            if time.monotonic() >= deadline:
                raise ValueError(
                    f"topic {topic!r} does not exist (`wirefeed topics create` creates the topics of the settings)"
                )
            time.sleep(admin.config["retry_backoff_ms"] / 1000)
        # A retriable error (no leader yet) is the producer's to wait out. Any other fails every
        # send: a name Kafka does not allow (INVALID_TOPIC_EXCEPTION), no authorization.
        error = for_code(code)
        if code and not error.retriable:
            raise ValueError(f"topic {topic!r}: the broker refuses it: {error.message} ({error.description})")
        resource = ConfigResource(ConfigResourceType.TOPIC, topic, configs={"max.message.bytes": None})
        held = admin.describe_configs([resource], config_filter="all").get("topic", {}).get(topic, {})
        limit = held.get("max.message.bytes", {}).get("value")
        return int(limit) if limit is not None else None
    finally:
        admin.close()


# kafka-python 3 has no buffer_memory (in 2.0 a full buffer made send() wait): its accumulator
# keeps every record sent and not yet acknowledged. A producer fed faster than the broker
# acknowledges, a crawl export read from disk or a replay read from the broker, held its whole
# input in memory: 429 MB of records sent from a generator, 349 MB peak RSS.
MAX_UNACKNOWLEDGED_BYTES = 64 * 2**20


# What a record costs beyond its key, value and headers until it is acknowledged: its future (a
# lock, callback lists), its header in the batch, the batch's copies. Measured by the peak RSS of
# unacknowledged small records, kafka-python 3.0: 0.9 KB each. At the 100 bytes counted before,
# a crawl export of small pages was held 4 to 5 times over the window (300 MB for 64 MiB).
# Empty records count this much, or a feed of tombstones would never wait.
_RECORD_OVERHEAD_BYTES = 1000


class BoundedProducer(KafkaProducer):
    """A KafkaProducer that waits for the broker (flush) before it would hold more than
    ``max_unacknowledged_bytes`` (default ``MAX_UNACKNOWLEDGED_BYTES``) of records unacknowledged;
    a larger record is sent alone. It sends bytes (no serializers: it measures what it holds by
    their length); sends from several threads are counted under one lock."""

    def __new__(cls, **configs: Any) -> BoundedProducer:
        # refused before an instance exists: KafkaProducer's __del__ fails on one it never set up
        if configs.get("key_serializer") or configs.get("value_serializer"):
            raise ValueError("BoundedProducer sends bytes: it measures the records it holds by their length")
        return super().__new__(cls)

    def __init__(self, *, max_unacknowledged_bytes: int | None = None, **configs: Any) -> None:
        super().__init__(**configs)
        self._max_unacknowledged_bytes = max_unacknowledged_bytes or MAX_UNACKNOWLEDGED_BYTES
        self._unacknowledged_bytes = 0
        self._counting = threading.Lock()

    def send(  # type: ignore[override]  # the same parameters, by keyword
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
    ) -> FutureRecordMetadata:
        size = _RECORD_OVERHEAD_BYTES + len(key or b"") + len(value or b"")
        size += sum(len(name) + len(data or b"") for name, data in headers or ())
        with self._counting:
            if self._unacknowledged_bytes and self._unacknowledged_bytes + size > self._max_unacknowledged_bytes:
                self.flush()
                self._unacknowledged_bytes = 0
            self._unacknowledged_bytes += size
            return super().send(
                topic, value=value, key=key, headers=headers, partition=partition, timestamp_ms=timestamp_ms
            )


def make_producer(settings: Settings, **options: Any) -> BoundedProducer:
    """wirefeed's kafka-python producer; ``options`` (BoundedProducer's and KafkaProducer's
    keywords) replace its defaults."""
    defaults = {
        "compression_type": None if settings.compression == "none" else settings.compression,
        "max_request_size": settings.max_message_bytes,
        "acks": "all",
        "linger_ms": 20,
    }
    return BoundedProducer(**kafka_client_options(settings), **(defaults | options))


def produce_stream(
    settings: Settings,
    records: Iterable[Record],
    *,
    topic: str | None = None,
    partition: int | None = None,
    on_acknowledged: Callable[[int, RecordMetadata], object] | None = None,
) -> int:
    """Send ``records`` and wait for the broker's acknowledgement of each; returns how many were
    sent. ``on_acknowledged`` is given each record's number (from 0, in the order sent) and where it
    landed, on the producer's thread, as the broker acknowledges it. Records go to the partition
    of their key unless ``partition`` names one. Keeps nothing of a record once it is acknowledged:
    for a feed larger than memory. ValueError when the topic does not exist; the broker's error
    for a record it refused (e.g. one over the topic's size limit), and nothing more is sent."""
    topic = topic or settings.topic_pages_raw
    require_topic(settings, topic)
    producer = make_producer(settings)
    # Told, not asked: the future of every record sent, kept to check at the end, held a crawl
    # export's every record in memory (0.5 KB each: 260 MB for 300,000 small pages).
    failures: list[BaseException] = []
    sent = 0
    try:
        for record in records:
            if failures:
                break
            future = producer.send(topic, key=record.key, value=record.value, partition=partition)
            future.add_errback(failures.append)
            if on_acknowledged is not None:
                future.add_callback(on_acknowledged, sent)
            sent += 1
        producer.flush()
    finally:
        producer.close()
    if failures:
        raise failures[0]
    return sent


def produce(
    settings: Settings, records: Iterable[Record], *, topic: str | None = None, partition: int | None = None
) -> list[RecordMetadata]:
    """``produce_stream``, returning where each record landed, in the order given: for a caller
    that holds its records anyway (the demo, the benchmarks, the tests)."""
    landed: dict[int, RecordMetadata] = {}
    sent = produce_stream(settings, records, topic=topic, partition=partition, on_acknowledged=landed.__setitem__)
    return [landed[number] for number in range(sent)]
