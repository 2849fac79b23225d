import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from workers import SAMPLE_PAGES
from workers.feed import page_from_html_file, records_from_jsonl, records_from_paths

NOW = datetime(2026, 11, 22, tzinfo=UTC)
MIB = 1024 * 1024


def test_an_html_file_is_sent_as_its_bytes_under_its_canonical_url():
    page = page_from_html_file(SAMPLE_PAGES / "seed-004-masr-news.html", base_url="https://x.example/", fetched_at=NOW)
    assert str(page.url) == "https://masr-news.example/egypt/2016/12/08/aleppo-ceasefire-talks"
    assert page.html is None and page.html_b64 and page.charset is None  # windows-1256 bytes, found by the pipeline


def test_a_file_without_canonical_link_gets_the_base_url(tmp_path: Path):
    path = tmp_path / "story.html"
    path.write_text("<html><body><p>text</p></body></html>")
    assert str(page_from_html_file(path, base_url="https://files.example/in/", fetched_at=NOW).url) == "https://files.example/in/story.html"


@pytest.mark.parametrize(
    ("declared", "url"),
    [
        ('<link rel="canonical" href="/news/story-1">', "https://files.example/news/story-1"),
        ('<meta property="og:url" content="story-2">', "https://files.example/in/story-2"),
        ('<link rel="canonical" href="//cdn.example/story-3">', "https://cdn.example/story-3"),
    ],
    ids=["root-relative", "relative og:url", "scheme-relative"],
)
def test_a_relative_canonical_link_is_resolved_against_the_files_url(tmp_path: Path, declared: str, url: str):
    path = tmp_path / "story.html"
    path.write_text(f"<html><head>{declared}</head><body><p>text</p></body></html>")
    assert str(page_from_html_file(path, base_url="https://files.example/in/", fetched_at=NOW).url) == url


def test_a_file_that_makes_no_valid_message_is_named_on_one_line(tmp_path: Path):
    (tmp_path / "a-good.html").write_text("<html><body><p>text</p></body></html>")
    bad = tmp_path / "b-bad.html"
    bad.write_text('<html><head><link rel="canonical" href="javascript:void(0)"></head><body><p>x</p></body></html>')
    records = records_from_paths([tmp_path], base_url="https://files.example/")
    assert next(records).key == b"https://files.example/a-good.html"
    with pytest.raises(ValueError) as raised:
        next(records)
    assert str(raised.value).startswith(f"{bad}: not a pages.raw message: url: ")
    assert "\n" not in str(raised.value)


def test_a_page_over_the_record_limit_is_named_with_its_file_or_line(tmp_path: Path):
    html = tmp_path / "big.html"
    html.write_text("<html><body>" + "<p>the same line again</p>" * 40000 + "</body></html>")  # 1.4 MiB as base64
    with pytest.raises(ValueError, match=rf"^{re.escape(str(html))}: \d+ bytes as a record, over the limit of {MIB} "):
        list(records_from_paths([tmp_path], base_url="https://files.example/", max_bytes=MIB))
    assert len(list(records_from_paths([tmp_path], base_url="https://files.example/", max_bytes=2 * MIB))) == 1

    crawl = tmp_path / "crawl.jsonl"
    small = {"url": "https://a.example/1", "fetched_at": "2026-11-22T10:00:00Z", "html": "<p>x</p>"}
    crawl.write_text(json.dumps(small) + "\n" + json.dumps(small | {"html": "x" * MIB}) + "\n")
    with pytest.raises(ValueError, match=rf"^{re.escape(str(crawl))}:2: \d+ bytes as a record, over the limit of {MIB} "):
        list(records_from_jsonl(crawl, max_bytes=MIB))


def test_a_directory_yields_every_html_file_keyed_by_url():
    records = list(records_from_paths([SAMPLE_PAGES], base_url="https://x.example/"))
    assert records and len(records) == len(list(SAMPLE_PAGES.glob("*.html")))
    assert all(json.loads(r.value)["url"] == r.key.decode() for r in records)


def test_jsonl_lines_are_validated_with_their_line_number(tmp_path: Path):
    good = {"url": "https://a.example/1", "fetched_at": "2026-11-22T10:00:00Z", "html": "<p>x</p>"}
    path = tmp_path / "crawl.jsonl"
    path.write_text(json.dumps(good) + "\n\n" + json.dumps({"url": "https://a.example/2", "html": "x"}) + "\n")
    records = records_from_jsonl(path)
    assert next(records).key == b"https://a.example/1"
    with pytest.raises(ValueError, match=r"crawl.jsonl:3: not a pages.raw message: fetched_at: Field required$"):
        next(records)


def test_kafka_python_checksums_record_batches_in_c():
    """Without the crc32c package kafka-python computes every batch's CRC-32C in pure Python,
    about six times the CPU of producing (the dependency is there for that)."""
    from kafka.record import util

    assert util.crc32c_c is not None
    assert util.calc_crc32c(b"123456789") == 0xE3069283  # the CRC-32C check value
