"""Typed messages of every topic. JSON Schema files in ``schemas/`` are the published contract;
tests check that these models and those schemas agree on real produced messages."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, TypeAdapter, ValidationError, model_validator


_HTTP_URL: TypeAdapter[HttpUrl] = TypeAdapter(HttpUrl)


def crawled_url(url: str) -> str:
    """``url`` as ``RawPage.url`` holds it (WHATWG parsing: lowercase host, punycode, percent-
    encoded path, "/" for an empty path), or as given when it is not a valid URL. Page outcomes are
    keyed by it, so that a page dead-lettered before its message was parsed (its URL is then the
    record's key, as the crawler wrote it) and the same URL kept later share one record."""
    try:
        return str(_HTTP_URL.validate_python(url))
    except ValidationError:
        return url


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RawPage(_Message):
    """A crawled page as crawlers publish it on ``pages.raw`` (key: the URL, UTF-8)."""

    schema_: Literal["wirefeed.pages.raw/1"] = Field(default="wirefeed.pages.raw/1", alias="schema")
    url: HttpUrl
    final_url: HttpUrl | None = None
    fetched_at: datetime
    status: Annotated[int, Field(ge=100, le=599)] = 200
    content_type: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    # Exactly one of the two: text the crawler already decoded, or the raw bytes (base64)
    # with the charset the crawler saw declared (HTTP header or <meta>); None lets us sniff.
    html: str | None = None
    html_b64: str | None = None
    charset: str | None = None
    crawl_id: str | None = None
    source_id: str | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _exactly_one_body(self) -> RawPage:
        if (self.html is None) == (self.html_b64 is None):
            raise ValueError("exactly one of 'html' and 'html_b64' must be given")
        return self


class SourcePosition(_Message):
    topic: str
    partition: int
    offset: int

    @property
    def label(self) -> str:
        """``topic/partition/offset``: the record, as Redis remembers which one wrote or fired
        something (the articles sink, the alert ledger)."""
        return f"{self.topic}/{self.partition}/{self.offset}"


class RemovedBlock(_Message):
    """A piece of the page that did not make it into the body, and why."""

    text: str
    reason: str


class ExtractionInfo(_Message):
    extractor: str
    extractor_version: str
    html_bytes: int
    text_chars: int
    declared_language: str | None = None
    detected_language: str | None = None
    language_confidence: float | None = None
    encoding: str
    removed: list[RemovedBlock] = Field(default_factory=list)
    body_source: Literal["page", "embedded"] = "page"
    recovered_paragraphs: int = Field(default=0, ge=0)


class Article(_Message):
    """One extracted article as published on ``articles`` (key: ``article_id``) and kept in Redis."""

    schema_: Literal["wirefeed.article/1"] = Field(default="wirefeed.article/1", alias="schema")
    article_id: str
    url: str
    canonical_url: str
    domain: str
    title: str | None
    text: str
    language: str | None
    published_at: datetime | None
    modified_at: datetime | None = None
    authors: list[str] = Field(default_factory=list)
    site_name: str | None = None
    description: str | None = None
    image: str | None = None
    categories: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    # The article itself is marked breaking/urgent (not the site's ticker, which is removed).
    urgent: bool = False
    fetched_at: datetime
    content_hash: str
    pipeline_version: int
    processed_at: datetime
    source: SourcePosition
    extraction: ExtractionInfo
    # Set by deduplication (workers/dedup/index.py).
    status: Literal["new", "update", "duplicate"] = "new"
    duplicate_of: str | None = None
    similarity: float | None = None
    story_id: str | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Outcome(StrEnum):
    KEPT = "kept"
    DROPPED = "dropped"
    FAILED = "failed"


class DeadLetter(_Message):
    """What ``pages.dlq`` carries: the original bytes and everything needed to replay or debug."""

    schema_: Literal["wirefeed.pages.dlq/1"] = Field(default="wirefeed.pages.dlq/1", alias="schema")
    outcome: Literal["dropped", "failed"]
    stage: str
    reason: str
    error_class: str
    error_message: str
    original_key_b64: str | None
    original_value_b64: str
    original_value_bytes: int
    original_truncated: bool
    source: SourcePosition
    source_timestamp_ms: int | None
    url: str | None
    pipeline_version: int
    failed_at: datetime

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
