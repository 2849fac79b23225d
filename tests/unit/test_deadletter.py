import base64
import json
from datetime import UTC, datetime

from workers.models import SourcePosition
from workers.stages.deadletter import dead_letter, record_key
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


def record_size(record) -> int:
    return len(record.model_dump_json(by_alias=True).encode()) + len(record_key(record))


def test_a_dead_letter_fits_the_topic_whatever_the_size_of_the_key_or_the_url():
    # a dead letter the topic refuses would be retried for ever and hold up its partition
    limit = 32 << 20
    huge_url = json.dumps({"url": "https://x.example/" + "a" * (12 << 20), "html": "<p>x</p>"}).encode()
    keyless = letter(Failed("decode", "schema", "ValidationError", "url too long"), key=None, value=huge_url, limit=limit)
    assert record_size(keyless) <= limit and not keyless.original_truncated
    assert keyless.url.startswith("https://x.example/aaa") and len(keyless.url) <= 4096

    huge_key = b"https://x.example/" + b"b" * (2 << 20)
    keyed = letter(Failed("decode", "not_json", "JSONDecodeError", "x"), key=huge_key, value=b"{" + b" " * (28 << 20), limit=limit)
    assert record_size(keyed) <= limit and keyed.original_truncated
    assert keyed.original_value_bytes == (28 << 20) + 1

    escaped = letter(Dropped("d", "r", "x"), key=("https://x.example/" + "\u0001" * 5000).encode(), value=b"\x00" * (40 << 20), limit=limit)
    assert record_size(escaped) <= limit


def test_the_record_key_is_the_url_or_else_the_source_position():
    assert record_key(letter(Dropped("d", "r", "x"))) == b"https://a.example/x"
    assert record_key(letter(Dropped("d", "r", "x"), key=None, value=b"\x00")) == b"pages.raw:1:99"


def test_the_url_comes_from_the_key_or_else_from_the_value():
    assert letter(Dropped("d", "r", "x")).url == "https://a.example/x"
    assert letter(Dropped("d", "r", "x"), key=None).url == "https://a.example/x"
    assert letter(Dropped("d", "r", "x"), key=None, value=json.dumps([1]).encode()).url is None
    assert letter(Dropped("d", "r", "x"), key=b"\xff\xfe", value=b"\x00").url is None
