import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from workers import SAMPLE_PAGES
from workers.feed import page_from_html_file, records_from_jsonl, records_from_paths

NOW = datetime(2026, 11, 22, tzinfo=UTC)


def test_an_html_file_is_sent_as_its_bytes_under_its_canonical_url():
    page = page_from_html_file(SAMPLE_PAGES / "seed-004-masr-news.html", base_url="https://x.example/", fetched_at=NOW)
    assert str(page.url) == "https://masr-news.example/egypt/2016/12/08/aleppo-ceasefire-talks"
    assert page.html is None and page.html_b64 and page.charset is None  # windows-1256 bytes, found by the pipeline


def test_a_file_without_canonical_link_gets_the_base_url(tmp_path: Path):
    path = tmp_path / "story.html"
    path.write_text("<html><body><p>text</p></body></html>")
    assert str(page_from_html_file(path, base_url="https://files.example/in/", fetched_at=NOW).url) == "https://files.example/in/story.html"


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
    with pytest.raises(ValueError, match=r"crawl.jsonl:3: not a pages.raw message"):
        next(records)


def test_kafka_python_checksums_record_batches_in_c():
    """Without the crc32c package kafka-python computes every batch's CRC-32C in pure Python,
    about six times the CPU of producing (the dependency is there for that)."""
    from kafka.record import util

    assert util.crc32c_c is not None
    assert util.calc_crc32c(b"123456789") == 0xE3069283  # the CRC-32C check value
