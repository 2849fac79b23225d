"""Feeding ``pages.raw`` by hand: HTML files, directories of them, or JSONL of crawled pages."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from kafka import KafkaProducer
from kafka.producer.future import RecordMetadata
from pydantic import ValidationError

from workers.kafka_clients import kafka_client_options
from workers.models import RawPage
from workers.settings import Settings

_CANONICAL = re.compile(
    rb"""<link[^>]+rel=["']?canonical["']?[^>]*href=["']([^"']+)["']|<meta[^>]+property=["']og:url["'][^>]*content=["']([^"']+)["']""",
    re.IGNORECASE,
)
HTML_SUFFIXES = {".html", ".htm", ".xhtml"}


@dataclass(frozen=True, slots=True)
class Record:
    key: bytes | None
    value: bytes


def page_from_html_file(path: Path, *, base_url: str, fetched_at: datetime) -> RawPage:
    """The page's bytes go as they are (base64) and the pipeline finds the charset, as it would for
    a crawler that does not decode. The URL is the page's own canonical link when it has one."""
    raw = path.read_bytes()
    match = _CANONICAL.search(raw[:65536])
    url = (match.group(1) or match.group(2)).decode("utf-8", "replace") if match else f"{base_url.rstrip('/')}/{path.name}"
    return RawPage(
        url=url,
        fetched_at=fetched_at,
        content_type="text/html",
        html_b64=base64.b64encode(raw).decode("ascii"),
        source_id="wirefeed-produce",
    )


def records_from_paths(paths: Iterable[Path], *, base_url: str) -> Iterator[Record]:
    now = datetime.now(UTC)
    for path in paths:
        if path.is_dir():
            yield from records_from_paths(sorted(p for p in path.rglob("*") if p.suffix.lower() in HTML_SUFFIXES), base_url=base_url)
        elif path.suffix.lower() == ".jsonl":
            yield from records_from_jsonl(path)
        else:
            page = page_from_html_file(path, base_url=base_url, fetched_at=now)
            yield Record(str(page.url).encode(), page.model_dump_json(by_alias=True, exclude_none=True).encode())


def records_from_jsonl(path: Path) -> Iterator[Record]:
    """Each line is a ``pages.raw`` message. Lines are validated here so that a typo in a
    hand-made file is reported with its line number instead of arriving as a dead letter."""
    with path.open("rb") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                page = RawPage.model_validate_json(line)
            except ValidationError as exc:
                raise ValueError(f"{path}:{number}: not a pages.raw message: {exc}") from exc
            yield Record(str(page.url).encode(), line.rstrip(b"\r\n"))


def make_producer(settings: Settings) -> KafkaProducer:
    return KafkaProducer(
        **kafka_client_options(settings),
        compression_type=None if settings.compression == "none" else settings.compression,
        max_request_size=settings.max_message_bytes,
        acks="all",
        linger_ms=20,
    )


def produce(
    settings: Settings, records: Iterable[Record], *, topic: str | None = None, partition: int | None = None
) -> list[RecordMetadata]:
    """Send and wait for the broker's acknowledgement of every record; returns where each landed.
    Records go to the partition of their key unless ``partition`` names one."""
    producer = make_producer(settings)
    try:
        futures = [
            producer.send(topic or settings.topic_pages_raw, key=r.key, value=r.value, partition=partition)
            for r in records
        ]
        producer.flush()
        # get() raises the broker's error, e.g. a record over the topic's size limit.
        return [future.get(timeout=30) for future in futures]
    finally:
        producer.close()

