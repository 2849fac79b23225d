"""``wirefeed produce`` on the real broker: what a person feeding pages by hand sees when a page is
over the record limit."""

from __future__ import annotations

from pathlib import Path

import pytest
from worker_harness import read_topic, settings_env

from workers import SAMPLE_PAGES, cli
from workers.settings import Settings
from workers.topics import ensure_topics

pytestmark = pytest.mark.integration


def test_a_page_over_the_record_limit_is_one_clear_line_and_the_pages_before_it_are_published(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    settings = settings.model_copy(update={"max_message_bytes": 1024 * 1024})
    ensure_topics(settings)
    pages = tmp_path / "pages"
    pages.mkdir()
    (pages / "a-small.html").write_bytes((SAMPLE_PAGES / "ja-asahi.html").read_bytes())
    # zstd makes this a few kilobytes on the wire, but the limit is checked before compression
    (pages / "b-huge.html").write_text("<html><body>" + "<p>the same line again</p>" * 60000 + "</body></html>")
    for name, value in settings_env(settings).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(cli.logs, "configure", lambda log_format, level: None)

    assert cli.main(["produce", str(pages)]) == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1].startswith(f"wirefeed produce: a page is over the record limit of {1024 * 1024} bytes")
    assert "Traceback" not in err
    (published,) = read_topic(settings, settings.topic_pages_raw, at_least=1)
    assert published.key.startswith(b"https://www.asahi.com/")
