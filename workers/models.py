"""Typed messages of every topic. JSON Schema files in ``schemas/`` are the published contract;
tests check that these models and those schemas agree on real produced messages."""

from __future__ import annotations

import re
import string
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    AnyHttpUrl,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from workers.urlnorm import without_credentials

# The limit of pydantic's HttpUrl (old browsers'), counted in characters as the schema's
# maxLength counts them: HttpUrl counts UTF-8 bytes and so refused Arabic URLs the contract allows.
_MAX_URL_CHARS = 2083
# The pages.raw schema's URL pattern: pydantic alone also takes "https:a.example", "https:///a"
# or leading blanks, which the contract refuses.
_URL_START = re.compile(r"[Hh][Tt][Tt][Pp][Ss]?://[^/?#@:\s]")
# RFC 3339 as the schemas' "date-time" format checks it. Pydantic alone also reads Unix times,
# bare dates and times without an offset, which ``.timestamp()`` then takes as the worker's local time.
# The pages.raw schema has the same text as fetched_at's pattern, for validators that take formats
# as annotations only (2020-12's default); [0-9], not \d, which Python's re, unlike JavaScript's,
# lets match other scripts' digits.
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)
# HTTP field names are ASCII tokens, case-insensitive in ASCII only (RFC 9110 5.1): str.lower()
# would also fold other scripts' letters (the Kelvin sign into "k").
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
# The most response headers a page may come with (the pages.raw schema's maxProperties). Real
# responses have fewer than a hundred: a crawler that sends more is broken.
MAX_HEADERS = 1000


def _web_url_text(value: object) -> object:
    if isinstance(value, str):
        if len(value) > _MAX_URL_CHARS:
            raise ValueError(f"URL should have at most {_MAX_URL_CHARS} characters")
        if not _URL_START.match(value):
            raise ValueError("URL should start with http:// or https:// and a host")
        # A user and password in a crawled URL are the crawler's: kept, they would be published
        # on the articles topic and in Redis, and give the page a second id.
        try:
            return without_credentials(value)
        except ValueError:
            return value  # for pydantic to refuse, with its own words
    return value


def _rfc3339_text(value: object) -> object:
    if isinstance(value, datetime) or (isinstance(value, str) and _RFC3339.fullmatch(value)):
        return value
    raise ValueError("should be an RFC 3339 date-time with its UTC offset, e.g. 2026-11-22T10:00:00Z")


def _whole_number(value: object) -> object:
    # JSON Schema's "integer" is any whole number, 200.0 and 2e2 included (json reads them as
    # floats); 200.5 and booleans are left for StrictInt to refuse.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _lower_case_names(headers: dict[str, str]) -> dict[str, str]:
    lowered: dict[str, str] = {}
    for name, value in headers.items():
        key = name.translate(_ASCII_LOWER)
        if lowered.get(key, value) != value:
            # Two spellings of one header that disagree (Content-Type and content-type naming
            # two charsets): taking either would be a guess, and a wrong charset is mojibake.
            raise ValueError(f"headers name {key!r} twice, in two spellings with different values")
        lowered[key] = value
    return lowered


_WebUrl = Annotated[AnyHttpUrl, BeforeValidator(_web_url_text)]
_Rfc3339Datetime = Annotated[AwareDatetime, BeforeValidator(_rfc3339_text)]

_HTTP_URL: TypeAdapter[AnyHttpUrl] = TypeAdapter(_WebUrl)


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
    url: _WebUrl
    final_url: _WebUrl | None = None
    fetched_at: _Rfc3339Datetime
    # Strict as the schema's "integer": a string "200" the contract refuses must not pass here.
    status: Annotated[StrictInt, BeforeValidator(_whole_number), Field(ge=100, le=599)] = 200
    content_type: str | None = None
    # Names in lower case, whatever the crawler's spelling: HTTP's are case-insensitive, and the
    # stages look a header up by its lower-case name.
    headers: Annotated[dict[str, str], Field(max_length=MAX_HEADERS), AfterValidator(_lower_case_names)] = Field(
        default_factory=dict
    )
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
    chrome_withheld: bool = False
    recovered_paragraphs: int = Field(default=0, ge=0)
    replaced_chars: int = Field(default=0, ge=0)


# The statuses of a page that withdraw its article. Others say nothing about it: a 5xx or 429 is
# the server's trouble, a 403 often a crawler refused, a redirect without its target no page.
WithdrawingStatus = Literal[404, 410, 451]


class Withdrawal(_Message):
    """Why an article is no longer current: its page answered a status that says the publisher
    removed it (404 Not Found, 410 Gone, 451 Unavailable For Legal Reasons)."""

    # fetched_at of the crawl that got the status: the page's data, so a replay withdraws alike
    at: AwareDatetime
    http_status: WithdrawingStatus


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
    published_at: AwareDatetime | None
    modified_at: AwareDatetime | None = None
    authors: list[str] = Field(default_factory=list)
    site_name: str | None = None
    description: str | None = None
    image: str | None = None
    categories: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    # The article itself is marked breaking/urgent (not the site's ticker, which is removed).
    urgent: bool = False
    fetched_at: AwareDatetime
    content_hash: str
    pipeline_version: int
    processed_at: AwareDatetime
    source: SourcePosition
    extraction: ExtractionInfo
    # Set by deduplication (workers/dedup/index.py).
    status: Literal["new", "update", "duplicate"] = "new"
    duplicate_of: str | None = None
    similarity: float | None = None
    story_id: str | None = None
    # Set when the article's page was withdrawn (workers/sinks/redis_store.py); absent, not null,
    # from a current article. Last: Redis appends it to the stored JSON, as this model dumps it.
    withdrawn: Withdrawal | None = Field(default=None, exclude_if=lambda value: value is None)

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
    failed_at: AwareDatetime

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
