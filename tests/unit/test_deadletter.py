import base64
import json
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from workers.models import SourcePosition
from workers.stages import deadletter
from workers.stages.deadletter import dead_letter, record_key
from workers.stages.decode import decode_message
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
    keyless = letter(decode_message(huge_url, max_html_bytes=8 << 20), key=None, value=huge_url, limit=limit)
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


def page(**fields: object) -> bytes:
    return json.dumps({"url": "https://a.example/x", "fetched_at": "2026-11-22T10:00:00Z"} | fields).encode()


@pytest.mark.parametrize(
    "value",
    [
        page(html="<p>x</p>", content_type="application/octet-stream; " + "x" * (20 << 20)),
        page(html_b64=base64.b64encode(bytes(range(128, 256)) * 4).decode(), charset="x" * (20 << 20)),
        page(html="<p>x</p>", **{"x" * (20 << 20): 1}),
        page(html="<p>x</p>", headers={"h" * (20 << 20): 1}),
    ],
    ids=["content type", "charset", "field name", "header name"],
)
def test_a_dead_letter_fits_the_topic_whatever_the_page_repeats_in_its_reason(value):
    limit = 32 << 20
    result = decode_message(value, max_html_bytes=8 << 20)
    assert isinstance(result, Dropped | Failed)
    assert record_size(letter(result, value=value, limit=limit)) <= limit


def test_a_dead_letter_cuts_the_texts_of_any_stage():
    # not every stage builds its Failed with Failed.from_exception, which cuts the text
    limit = 32 << 20
    huge = "x" * (20 << 20)
    record = letter(Failed(huge, huge, huge, huge), value=b"{" + b" " * (28 << 20), limit=limit)
    assert record_size(record) <= limit
    assert len(record.error_message) <= 2000 and max(map(len, (record.stage, record.reason, record.error_class))) <= 100


@pytest.mark.parametrize(
    "value",
    [
        b'{"url": "https://a.example/x", "status": ' + b"9" * 5000 + b"}",  # int() refuses over 4300 digits
        b'{"url": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    ],
    ids=["5000-digit integer", "nested 100000 deep"],
)
@pytest.mark.parametrize("key", [None, b"\xff\xfe"])
def test_a_value_json_cannot_read_still_gets_its_dead_letter(value, key):
    record = letter(Failed("pipeline", "internal_error", "ValueError", "x"), key=key, value=value)
    assert record.url is None and base64.b64decode(record.original_value_b64) == value


def test_lone_surrogates_cannot_stop_a_dead_letter_being_written():
    # "\ud800" is valid JSON but no UTF-8: a record holding it could never be serialised
    failed = Failed("extract", "extractor_error", "ValueError", "bad \ud800 text")
    record = letter(failed, key=None, value=b'{"url": "https://a.example/\\ud800"}')
    assert record.url == "https://a.example/?" and record.error_message == "bad ? text"
    assert record_key(record) == b"https://a.example/?"
    json.loads(record.model_dump_json(by_alias=True))


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"", "empty_message"),
        ("{\"url\": \"https://a.example/x\", \"html\": \"\ud83d\ude00\"}".encode("utf-8", "surrogatepass"), "not_utf8"),
        (b"[" + b"[]," * 1000 + b"[]", "not_json"),
        (b"[" + b"[]," * 1000 + b"[]]", "not_an_object"),
    ],
    ids=["empty", "CESU-8", "cut short", "an array"],
)
def test_a_keyless_value_decode_could_not_read_is_not_parsed_again(monkeypatch, value, reason):
    # a hostile 32 MiB value (millions of empty arrays) takes seconds to parse, in the event loop
    result = decode_message(value, max_html_bytes=8 << 20)
    assert isinstance(result, Failed) and result.reason == reason

    def parse(_value: object) -> None:
        raise AssertionError("the value was parsed again")

    monkeypatch.setattr(deadletter, "json", SimpleNamespace(loads=parse))
    record = letter(result, key=None, value=value)
    assert record.url is None and base64.b64decode(record.original_value_b64) == value


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (page(html="<p>x</p>", status="200"), "schema"),
        (page(html="<p>x</p>", x=[[]] * 1000), "schema"),
        (page(html="<p>x</p>", status=404), "http_status"),
    ],
)
def test_a_keyless_value_decode_read_is_named_by_its_url_without_being_parsed_again(monkeypatch, value, reason):
    result = decode_message(value, max_html_bytes=8 << 20)
    assert isinstance(result, Dropped | Failed) and result.reason == reason

    def parse(_value: object) -> None:
        raise AssertionError("the value was parsed again")

    monkeypatch.setattr(deadletter, "json", SimpleNamespace(loads=parse))
    assert letter(result, key=None, value=value).url == "https://a.example/x"
