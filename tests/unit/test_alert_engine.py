"""The rules in force: reloaded when the file changes, kept when a new version is invalid or gone.
(Firing, once-only, on the real Redis and broker: tests/integration/test_webhooks.py; after the
dedup index's decisions, for copies and for stories that go on for days:
tests/integration/test_dedup_redis.py.)"""

import asyncio
import logging
import os
import threading
from datetime import UTC, datetime

import pytest

from workers.alerts import engine
from workers.alerts.engine import AlertEngine, RulesFile
from workers.alerts.rules import RulesError
from workers.models import Article, ExtractionInfo, SourcePosition

ONE = "version: 1\nrules: [{id: one, kind: article, match: {terms: [Aleppo]}}]\n"
TWO = "version: 1\nrules: [{id: one, kind: article, match: {terms: [Aleppo]}}, {id: two, kind: article, match: {urgent: true}}]\n"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def write(path, text, *, mtime_ns):
    path.write_text(text, encoding="utf-8")
    os.utime(path, ns=(mtime_ns, mtime_ns))


def active(rules: RulesFile) -> list[str]:
    return [rule.id for rule in rules.current().ruleset.active]


def test_changes_are_picked_up_at_the_next_check_and_not_before(tmp_path):
    path, clock = tmp_path / "rules.yaml", Clock()
    write(path, ONE, mtime_ns=1)
    rules = RulesFile(path, secret_names=(), check_interval_s=5, monotonic=clock)
    assert active(rules) == ["one"]
    write(path, TWO, mtime_ns=2)
    clock.now += 4
    assert active(rules) == ["one"]  # not looked at yet
    clock.now += 1
    assert active(rules) == ["one", "two"]


def test_an_invalid_new_version_is_logged_once_and_the_rules_in_force_stay(tmp_path, caplog):
    path, clock = tmp_path / "rules.yaml", Clock()
    write(path, ONE, mtime_ns=1)
    rules = RulesFile(path, secret_names=(), check_interval_s=5, monotonic=clock)
    write(path, "version: 1\nrules: [{id: bad, kind: article, match: {}}]\n", mtime_ns=2)
    with caplog.at_level(logging.ERROR):
        for _ in range(3):
            clock.now += 5
            assert active(rules) == ["one"]
    assert len([r for r in caplog.records if "is invalid" in r.message]) == 1
    path.unlink()
    clock.now += 5
    assert active(rules) == ["one"]
    write(path, TWO, mtime_ns=3)
    clock.now += 5
    assert active(rules) == ["one", "two"]


def test_a_worker_does_not_start_with_an_invalid_file_and_has_no_rules_without_one(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text("version: 1\nrules: [{id: x}]\n", encoding="utf-8")
    with pytest.raises(RulesError):
        RulesFile(path, secret_names=(), check_interval_s=5)
    assert active(RulesFile(None, secret_names=(), check_interval_s=5)) == []


async def test_the_event_loop_runs_while_an_article_is_matched(tmp_path, monkeypatch):
    # Tokenising a long text for the rules is CPU work: on the event loop, it would stop the
    # consumer's heartbeats and every other page in flight. Here the tokenising waits for the loop
    # to run a callback, which it can do only while the tokenising runs elsewhere.
    path = tmp_path / "rules.yaml"
    write(path, ONE, mtime_ns=1)
    alerts = AlertEngine(
        RulesFile(path, secret_names=(), check_interval_s=5), ledger=None, publisher=None,
        pipeline_version=1, retry_backoff_max_s=1,
    )
    loop = asyncio.get_running_loop()
    facts_of = engine.ArticleFacts.of

    def facts_once_the_loop_has_run(article, *, urgent):
        loop_ran = threading.Event()
        loop.call_soon_threadsafe(loop_ran.set)
        assert loop_ran.wait(timeout=5), "the event loop did not run while the article was tokenised"
        return facts_of(article, urgent=urgent)

    monkeypatch.setattr(engine.ArticleFacts, "of", facts_once_the_loop_has_run)
    at = datetime(2016, 12, 8, tzinfo=UTC)
    article = Article(
        article_id="0" * 32, url="https://a.example/a", canonical_url="https://a.example/a", domain="a.example",
        title=None, text="Talks on Geneva, not the city in the rule.", language="en", published_at=None,
        fetched_at=at, content_hash="sha256:" + "0" * 64, pipeline_version=1, processed_at=at,
        source=SourcePosition(topic="pages.raw", partition=0, offset=1),
        extraction=ExtractionInfo(extractor="trafilatura", extractor_version="2.3.1", html_bytes=1, text_chars=1, encoding="utf-8"),
    )
    assert await alerts.on_article(article, urgent=False, story=None, replay=None, source="pages.raw/0/1") == []
