import base64
import json

import pytest

from workers.stages.decode import decode_message
from workers.stages.outcome import Dropped, Failed, Kept

MB = 1024 * 1024
ARABIC = "<html><head><meta charset='windows-1256'></head><body><p>أعلن مسؤول أميركي أن الجهود ستتواصل بشأن حلب</p></body></html>"


def message(**fields: object) -> bytes:
    base = {"url": "https://news.example/a", "fetched_at": "2026-11-22T10:00:00Z"}
    return json.dumps(base | fields).encode()


def decode(value: bytes | None, limit: int = 8 * MB):
    return decode_message(value, max_html_bytes=limit)


def test_text_html_is_kept_as_is():
    result = decode(message(html="<p>مرحبا</p>"))
    assert isinstance(result, Kept)
    assert result.value.html == "<p>مرحبا</p>"
    assert result.value.effective_url == "https://news.example/a"


def test_windows_1256_bytes_with_declared_charset_decode_to_arabic():
    raw = ARABIC.encode("cp1256")
    result = decode(message(html_b64=base64.b64encode(raw).decode(), charset="windows-1256"))
    assert isinstance(result, Kept)
    assert "أعلن مسؤول أميركي" in result.value.html
    assert result.value.encoding == "cp1256"


def test_windows_1256_found_from_meta_when_the_crawler_declared_nothing():
    result = decode(message(html_b64=base64.b64encode(ARABIC.encode("cp1256")).decode()))
    assert isinstance(result, Kept) and "حلب" in result.value.html


def test_meta_charset_rescues_a_wrong_http_charset():
    result = decode(message(html_b64=base64.b64encode(ARABIC.encode("cp1256")).decode(), charset="utf-8"))
    assert isinstance(result, Kept) and result.value.encoding == "cp1256"


def test_a_wrong_charset_with_nothing_to_rescue_it_fails_clearly():
    raw = "<p>أعلن مسؤول أميركي</p>".encode("cp1256")
    result = decode(message(html_b64=base64.b64encode(raw).decode(), charset="utf-8"))
    assert isinstance(result, Failed)
    assert result.reason == "charset_mismatch" and "utf-8" in result.detail


def test_an_unknown_charset_fails_clearly():
    result = decode(message(html_b64=base64.b64encode(b"<p>hello</p>").decode(), charset="x-klingon"))
    assert isinstance(result, Failed) and result.reason == "unknown_charset"


def test_gb2312_label_decodes_as_its_browser_superset():
    text = "<meta charset='gb2312'><p>习近平 镕</p>"  # 镕 is GBK, not GB2312
    result = decode(message(html_b64=base64.b64encode(text.encode("gb18030")).decode()))
    assert isinstance(result, Kept) and "镕" in result.value.html


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00binary", "not_json"),
        (b"{not json", "not_json"),
        (b"[1, 2]", "not_an_object"),
        (json.dumps({"html": "<p>x</p>", "fetched_at": "2026-11-22T10:00:00Z"}).encode(), "schema"),
        (json.dumps({"url": "not a url", "html": "x", "fetched_at": "2026-11-22T10:00:00Z"}).encode(), "schema"),
        (b"", "empty_message"),
        (None, "empty_message"),
    ],
)
def test_undecodable_messages_fail_with_a_reason(value, reason):
    result = decode(value)
    assert isinstance(result, Failed)
    assert result.reason == reason and result.stage == "decode" and result.detail


def test_missing_url_names_the_field():
    result = decode(json.dumps({"html": "<p>x</p>", "fetched_at": "2026-11-22T10:00:00Z"}).encode())
    assert isinstance(result, Failed) and "url" in result.detail


def test_both_or_neither_body_is_a_schema_error():
    assert isinstance(decode(message()), Failed)
    assert isinstance(decode(message(html="x", html_b64="eA==")), Failed)


def test_binary_bytes_as_the_page_body_fail():
    result = decode(message(html_b64=base64.b64encode(b"\x00\x01\x02\x03" * 100).decode(), charset="utf-8"))
    assert isinstance(result, Failed) and result.reason == "binary_content"


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"html": "   \n  "}, "empty_html"),
        ({"html": "<p>x</p>", "status": 404}, "http_status"),
        ({"html": "<p>x</p>", "content_type": "application/pdf"}, "not_html"),
    ],
)
def test_pages_we_do_not_publish_are_dropped_with_a_reason(fields, reason):
    result = decode(message(**fields))
    assert isinstance(result, Dropped) and result.reason == reason


def test_a_page_over_the_size_limit_is_dropped_before_extraction():
    big = "<p>" + "x" * (2 * MB) + "</p>"
    assert isinstance(decode(message(html=big), limit=1 * MB), Dropped)
    assert isinstance(decode(message(html_b64=base64.b64encode(big.encode()).decode()), limit=1 * MB), Dropped)


def test_valid_utf8_wins_over_a_stale_meta_charset():
    # Pages re-saved as UTF-8 keep their old <meta charset> (seen in real page collections).
    text = "<meta charset='gb2312'><p>促进航天技术更好惠及人民</p>"
    result = decode(message(html_b64=base64.b64encode(text.encode("utf-8")).decode()))
    assert isinstance(result, Kept) and "航天" in result.value.html and result.value.encoding == "utf-8"


def test_undeclared_legacy_bytes_are_detected():
    text = "<p>" + "Москва — столица России, крупнейший город страны. " * 20 + "</p>"
    result = decode(message(html_b64=base64.b64encode(text.encode("cp1251")).decode()))
    assert isinstance(result, Kept) and "Москва" in result.value.html


def test_invalid_base64_fails_clearly():
    result = decode(message(html_b64="not base64 at all!"))
    assert isinstance(result, Failed) and result.reason == "bad_base64"


@pytest.mark.parametrize("bom, codec", [(b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be")])
def test_a_byte_order_mark_decides_the_charset(bom, codec):
    text = "<meta charset='windows-1256'><p>أعلن مسؤول أميركي</p>"
    result = decode(message(html_b64=base64.b64encode(bom + text.encode(codec)).decode(), charset="iso-8859-1"))
    assert isinstance(result, Kept) and result.value.html == text and result.value.encoding == codec


def test_bytes_that_contradict_their_byte_order_mark_fail():
    result = decode(message(html_b64=base64.b64encode(b"\xef\xbb\xbf" + "<p>حلب</p>".encode("cp1256")).decode()))
    assert isinstance(result, Failed) and result.reason == "charset_mismatch"
