"""The published contracts: every schema is valid, its examples pass, and what the code produces
passes too (the integration tests also validate messages read back from the real topics)."""

import json
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Annotated

import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError
from contract import SCHEMAS, TOPIC_SCHEMAS, assert_valid, validator

from workers import SAMPLE_PAGES, models
from workers.alerts import messages
from workers.feed import page_from_html_file
from workers.models import RawPage, SourcePosition
from workers.stages.article import build_article
from workers.stages.deadletter import dead_letter
from workers.stages.decode import decode_message
from workers.stages.extract import ExtractedDocument
from workers.stages.outcome import Failed, Kept

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
SOURCE = SourcePosition(topic="pages.raw", partition=0, offset=7)


@pytest.mark.parametrize("topic", sorted(TOPIC_SCHEMAS))
def test_schema_examples_are_valid(topic):
    schema = json.loads((SCHEMAS / TOPIC_SCHEMAS[topic]).read_text(encoding="utf-8"))
    assert schema["examples"], "every schema carries at least one realistic example"
    for example in schema["examples"]:
        assert_valid(topic, example)


def test_every_schema_file_is_mapped_to_a_topic():
    assert {p.name for p in SCHEMAS.glob("*.schema.json")} == set(TOPIC_SCHEMAS.values())


def test_the_schema_rejects_what_the_pipeline_rejects():
    bad = {"url": "https://a.example/", "fetched_at": "2026-11-22T10:00:00Z", "html": "x", "html_b64": "eA=="}
    assert list(validator("pages.raw").iter_errors(bad))
    assert list(validator("pages.raw").iter_errors({"html": "x", "fetched_at": "2026-11-22T10:00:00Z"}))
    assert list(validator("pages.raw").iter_errors({"url": "https://a.example/", "fetched_at": "yesterday", "html": "x"}))


def test_the_pages_raw_schema_takes_the_same_bodies_as_the_model():
    base = {"url": "https://a.example/", "fetched_at": "2026-11-22T10:00:00Z"}
    # A producer that serialises every field sends the absent body as null.
    for body in ({"html": "x", "html_b64": None}, {"html": None, "html_b64": "eA=="}):
        RawPage.model_validate(base | body)
        assert_valid("pages.raw", base | body)
    for body in ({"html": "x", "html_b64": "eA=="}, {}, {"html": None}, {"html": None, "html_b64": None}):
        with pytest.raises(ValidationError):
            RawPage.model_validate(base | body)
        assert list(validator("pages.raw").iter_errors(base | body)), body


def test_messages_built_by_the_feeder_follow_the_pages_raw_schema():
    sample_pages = sorted(SAMPLE_PAGES.glob("*.html"))
    assert sample_pages, f"no sample pages in {SAMPLE_PAGES}"
    for path in sample_pages:
        page = page_from_html_file(path, base_url="https://samples.example/", fetched_at=NOW)
        assert_valid("pages.raw", page.model_dump_json(by_alias=True, exclude_none=True))


def test_built_articles_follow_the_articles_schema():
    raw = json.dumps({"url": "https://www.News.example/a?utm_source=x#top", "fetched_at": "2026-11-22T09:00:00Z", "html": "<p>x</p>"})
    decoded = decode_message(raw.encode(), max_html_bytes=1 << 20)
    assert isinstance(decoded, Kept)
    document = ExtractedDocument(
        title="عنوان", text="نص المقال", language="ar", declared_language="ar",
        published_at=NOW, canonical_url=None,
    )
    article = build_article(decoded.value, document, source=SOURCE, pipeline_version=1, processed_at=NOW)
    assert_valid("articles", article.model_dump_json(by_alias=True))


def test_dead_letters_follow_the_dlq_schema():
    letter = dead_letter(
        Failed("decode", "not_json", "JSONDecodeError", "Expecting value"),
        key=None, value=b"\x00\xff", source=SOURCE, source_timestamp_ms=None,
        pipeline_version=1, failed_at=NOW, max_record_bytes=1 << 20,
    )
    assert_valid("pages.dlq", letter.model_dump_json(by_alias=True))


def agree(field: str, value: object) -> bool:
    """Whether the pages.raw schema and RawPage both accept a message with this field (asserting
    they decide alike)."""
    document = {"url": "https://a.example/", "fetched_at": "2026-11-22T10:00:00Z", "html": "x"} | {field: value}
    schema_ok = not list(validator("pages.raw").iter_errors(document))
    try:
        RawPage.model_validate(document)
        model_ok = True
    except ValidationError:
        model_ok = False
    assert schema_ok == model_ok, f"{field}={value!r}: the schema {'accepts' if schema_ok else 'rejects'} it, not the model"
    return model_ok


@pytest.mark.parametrize("field", ["url", "final_url"])
@pytest.mark.parametrize(
    ("url", "accepted"),
    [
        ("https://example.com/حلب", True),
        ("https://مثال.مصر/حلب", True),
        ("https://a.example/a b", True),
        ("https://a.example/a[1]|b", True),
        ("HTTPS://A.EXAMPLE/x", True),
        ("Http://a.example", True),
        ("http://10.0.0.1/x", True),
        ("https://u:p@a.example/x", True),
        ("https://a.example/" + "a" * 2065, True),  # 2083 characters
        ("https://a.example/" + "ح" * 2065, True),  # 2083 characters, 4148 bytes
        ("https://a.example/" + "a" * 2066, False),
        ("https://", False),
        ("https:///x", False),
        ("https://:80/", False),
        ("https://@/x", False),
        ("https:a.example", False),
        (" https://a.example/", False),
        ("ftp://a.example/", False),
        ("a.example/x", False),
    ],
)
def test_the_pages_raw_schema_takes_the_same_urls_as_the_model(field, url, accepted):
    assert agree(field, url) == accepted


@pytest.mark.parametrize(
    ("fetched_at", "accepted"),
    [
        ("2026-11-22T10:00:00Z", True),
        ("2026-11-22T10:00:00.123456+02:00", True),
        ("2026-11-22t10:00:00z", True),
        ("2026-11-22T10:00:00", False),  # no offset: .timestamp() would read it in local time
        ("2026-11-22", False),
        ("2026-11-22 10:00:00Z", False),
        ("2026-11-22T10:00Z", False),
        ("1732269600", False),
        (1732269600, False),
    ],
)
def test_the_pages_raw_schema_takes_the_same_fetch_times_as_the_model(fetched_at, accepted):
    assert agree("fetched_at", fetched_at) == accepted


@pytest.mark.parametrize(("status", "accepted"), [(200, True), ("200", False), (True, False), (99, False)])
def test_the_pages_raw_schema_takes_the_same_statuses_as_the_model(status, accepted):
    assert agree("status", status) == accepted


def test_a_page_without_a_utc_offset_is_a_schema_error_that_says_so():
    raw = json.dumps({"url": "https://a.example/", "fetched_at": "2026-11-22T10:00:00", "html": "<p>x</p>"})
    result = decode_message(raw.encode(), max_html_bytes=1 << 20)
    assert isinstance(result, Failed) and result.reason == "schema"
    assert "fetched_at" in result.detail and "offset" in result.detail


def test_articles_keep_the_offset_of_the_fetch_time_and_follow_the_schema():
    raw = json.dumps({"url": "https://a.example/حلب", "fetched_at": "2026-11-22T12:00:00+02:00", "html": "<p>x</p>"})
    decoded = decode_message(raw.encode(), max_html_bytes=1 << 20)
    assert isinstance(decoded, Kept)
    document = ExtractedDocument(
        title="عنوان", text="نص", language="ar", declared_language="ar", published_at=None, canonical_url=None
    )
    article = build_article(decoded.value, document, source=SOURCE, pipeline_version=1, processed_at=NOW)
    assert article.fetched_at.utcoffset() == timedelta(hours=2) and article.fetched_at.timestamp() == NOW.timestamp()
    assert_valid("articles", article.model_dump_json(by_alias=True))


@pytest.mark.parametrize(
    ("module", "some_fields"),
    [
        (models, {("RawPage", "fetched_at"), ("Article", "published_at"), ("Article", "processed_at"), ("DeadLetter", "failed_at")}),
        (messages, {("AlertArticle", "published_at"), ("StoryOutlet", "first_seen"), ("Alert", "fired_at"), ("AlertDeadLetter", "failed_at")}),
    ],
    ids=["models", "alert messages"],
)
def test_every_datetime_a_message_holds_is_aware(module: ModuleType, some_fields: set[tuple[str, str]]):
    naive = datetime(2026, 11, 22, 10, 0)
    fields = [
        (model, name, field)
        for model in vars(module).values()
        if isinstance(model, type) and issubclass(model, BaseModel)
        for name, field in model.model_fields.items()
        if "datetime" in str(field.annotation).lower()
    ]
    assert {(model.__name__, name) for model, name, _ in fields} >= some_fields
    for _model, _name, field in fields:
        adapter = TypeAdapter(Annotated[(field.annotation, *field.metadata)] if field.metadata else field.annotation)
        with pytest.raises(ValidationError):
            adapter.validate_python(naive)
        assert adapter.validate_python(NOW) == NOW
