import base64
import json
from datetime import UTC, datetime

from workers.models import SourcePosition
from workers.stages.deadletter import dead_letter
from workers.stages.outcome import Dropped, Failed

NOW = datetime(2026, 11, 22, tzinfo=UTC)
SOURCE = SourcePosition(topic="pages.raw", partition=1, offset=99)


def letter(result, *, key=b"https://a.example/x", value=b'{"url": "https://a.example/x"}', limit=1 << 20):
    return dead_letter(
        result, key=key, value=value, source=SOURCE, source_timestamp_ms=123,
        pipeline_version=3, failed_at=NOW, max_record_bytes=limit,
    )


def test_keeps_the_original_bytes_and_where_they_came_from():
    value = b"\x89PNG\x00\xff binary"
    record = letter(Failed("decode", "not_json", "JSONDecodeError", "Expecting value"), value=value)
    assert base64.b64decode(record.original_value_b64) == value
    assert base64.b64decode(record.original_key_b64) == b"https://a.example/x"
    assert (record.source, record.outcome, record.stage, record.reason) == (SOURCE, "failed", "decode", "not_json")
    assert record.original_value_bytes == len(value) and not record.original_truncated


def test_a_dropped_page_is_marked_dropped():
    record = letter(Dropped("extract", "too_short", "12 characters"))
    assert record.outcome == "dropped" and record.error_class == "Dropped"


def test_an_original_too_large_for_the_topic_is_cut_and_says_so():
    value = b"x" * (3 << 20)
    record = letter(Dropped("decode", "too_large", "big"), value=value, limit=1 << 20)
    assert record.original_truncated and record.original_value_bytes == len(value)
    assert len(record.model_dump_json(by_alias=True)) < 1 << 20


def test_the_url_comes_from_the_key_or_else_from_the_value():
    assert letter(Dropped("d", "r", "x")).url == "https://a.example/x"
    assert letter(Dropped("d", "r", "x"), key=None).url == "https://a.example/x"
    assert letter(Dropped("d", "r", "x"), key=None, value=json.dumps([1]).encode()).url is None
    assert letter(Dropped("d", "r", "x"), key=b"\xff\xfe", value=b"\x00").url is None
