"""The published contracts: every schema is valid, its examples pass, and what the code produces
passes too (the integration tests also validate messages read back from the real topics)."""

import json
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError
from contract import SCHEMAS, TOPIC_SCHEMAS, assert_valid, validator

from workers import SAMPLE_PAGES
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
