"""The rules in force: reloaded when the file changes, kept when a new version is invalid or gone;
when a page's alerts are suppressed (a replay's copy without --alerts, a record read too late), and
counting the matches of such a page without firing them.
(Firing, once-only, on the real Redis and broker: tests/integration/test_webhooks.py; after the
dedup index's decisions, for copies and for stories that go on for days:
tests/integration/test_dedup_redis.py.)"""

import asyncio
import dataclasses
import logging
import os
import threading
from datetime import UTC, datetime, timedelta

import pytest

from workers.alerts import engine
from workers.alerts.engine import AlertEngine, AlertSuppression, RulesFile, alert_suppression, article_age_s
from workers.alerts.rules import RulesError
from workers.models import Article, ExtractionInfo, SourcePosition
from workers.pipeline import SourceRecord
from workers.replay import ReplayMarker

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


async def test_in_a_worker_a_new_version_is_read_off_the_event_loop_and_the_rules_in_force_serve_meanwhile(
    tmp_path, monkeypatch
):
    # Read on the loop, a file of 500 rules stopped pages, acks and heartbeats for 3 s.
    path, clock = tmp_path / "rules.yaml", Clock()
    write(path, ONE, mtime_ns=1)
    rules = RulesFile(path, secret_names=(), check_interval_s=5, monotonic=clock)
    read_in, release = [], threading.Event()
    real_load = engine.load_rules

    def slow_load(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        read_in.append(threading.current_thread())
        release.wait(10)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(engine, "load_rules", slow_load)
    write(path, TWO, mtime_ns=2)
    clock.now += 5
    assert active(rules) == ["one"]  # the new version is being read
    clock.now += 5
    assert active(rules) == ["one"]  # and read once
    release.set()
    for _ in range(100):
        await asyncio.sleep(0.05)
        if active(rules) == ["one", "two"]:
            break
    assert active(rules) == ["one", "two"]
    assert len(read_in) == 1 and read_in[0] is not threading.main_thread()


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
    article = article_about("Talks on Geneva, not the city in the rule.")
    assert await alerts.on_article(article, urgent=False, story=None, replay=None, source="pages.raw/0/1") == []


def article_about(text: str) -> Article:
    at = datetime(2016, 12, 8, tzinfo=UTC)
    return Article(
        article_id="0" * 32, url="https://a.example/a", canonical_url="https://a.example/a", domain="a.example",
        title=None, text=text, language="en", published_at=None,
        fetched_at=at, content_hash="sha256:" + "0" * 64, pipeline_version=1, processed_at=at,
        source=SourcePosition(topic="pages.raw", partition=0, offset=1),
        extraction=ExtractionInfo(extractor="trafilatura", extractor_version="2.3.1", html_bytes=1, text_chars=1, encoding="utf-8"),
    )


def test_alerts_are_suppressed_for_a_replay_without_alerts_and_for_a_record_read_too_late():
    limit = 6 * 3600.0

    def suppression(replay, record_age_s, article_age_s=None):
        return alert_suppression(
            replay, record_age_s, article_age_s, max_record_age_s=limit, max_article_age_s=86400.0
        )

    without, with_alerts = ReplayMarker("r", alerts=False), ReplayMarker("r", alerts=True)
    assert suppression(None, 60.0) is None
    assert suppression(None, limit) is None
    assert suppression(None, limit + 1) is AlertSuppression.STALE_RECORD
    # A bump's group reading pages of last week: processed, but no longer news.
    assert suppression(None, 7 * 86400.0) is AlertSuppression.STALE_RECORD
    assert suppression(None, None) is None  # no timestamp: not stale
    assert suppression(without, 60.0) is AlertSuppression.REPLAY
    # A copy keeps its original's timestamp: a replay --alerts of last week fires (the operator asked).
    assert suppression(with_alerts, 7 * 86400.0) is None


def test_an_article_dated_long_before_its_fetch_fires_no_alert_on_any_run():
    def suppression(replay, record_age_s, article_age_s):
        return alert_suppression(
            replay, record_age_s, article_age_s, max_record_age_s=6 * 3600.0, max_article_age_s=86400.0
        )

    # found today, dated three years ago: a crawler in an archive, a new outlet's back catalogue
    assert suppression(None, 5.0, 3 * 365 * 86400.0) is AlertSuppression.STALE_ARTICLE
    assert suppression(None, 5.0, 86400.0) is None
    assert suppression(None, 5.0, None) is None  # no declared date: not held back
    assert suppression(None, 5.0, -3600.0) is None  # dated after its fetch (a zone off): news
    # its age is the page's own, so a replay asking for alerts decides as the first run did
    assert suppression(ReplayMarker("r", alerts=True), 7 * 86400.0, 3 * 365 * 86400.0) is AlertSuppression.STALE_ARTICLE
    assert suppression(ReplayMarker("r", alerts=True), 7 * 86400.0, 3600.0) is None


def test_an_articles_age_is_from_its_latest_declared_date_to_its_fetch():
    fetched = datetime(2026, 11, 23, 12, tzinfo=UTC)
    article = article_about("text").model_copy(update={"fetched_at": fetched})
    assert article_age_s(article) is None
    published = article.model_copy(update={"published_at": fetched - timedelta(days=400)})
    assert article_age_s(published) == 400 * 86400.0
    # a live page published last year and updated an hour before the crawl is news
    updated = published.model_copy(update={"modified_at": fetched - timedelta(hours=1)})
    assert article_age_s(updated) == 3600.0


def test_a_date_without_its_time_is_counted_from_the_end_of_its_day_anywhere():
    # "2025-01-13" (a meta tag, a dateline) reads as its midnight UTC: published at 19:30 in New
    # York, the article is fetched ten minutes later, on 14 January in UTC
    article = article_about("text").model_copy(
        update={"published_at": datetime(2025, 1, 13, tzinfo=UTC), "fetched_at": datetime(2025, 1, 14, 0, 40, tzinfo=UTC)}
    )
    assert alert_suppression(None, 5.0, article_age_s(article), max_record_age_s=21600.0, max_article_age_s=86400.0) is None
    # the day before yesterday's is old all the same
    older = article.model_copy(update={"published_at": datetime(2025, 1, 11, tzinfo=UTC)})
    assert alert_suppression(None, 5.0, article_age_s(older), max_record_age_s=21600.0, max_article_age_s=86400.0) is (
        AlertSuppression.STALE_ARTICLE
    )


def test_a_records_age_is_from_its_timestamp_and_unknown_without_one():
    record = SourceRecord(topic="pages.raw", partition=0, offset=1, key=None, value=None, timestamp_ms=1_000_000)
    assert record.age_s(datetime.fromtimestamp(1_060, UTC)) == 60.0
    assert dataclasses.replace(record, timestamp_ms=None).age_s(datetime.fromtimestamp(1_060, UTC)) is None


class NeverFiredLedger:
    """A ledger that holds no alert: a suppressed page may only take over one fired before."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, bool]] = []

    async def fire(self, alert, *, source, create=True):  # noqa: ANN001, ANN201
        self.asked.append((source, create))
        return None


async def test_matches_are_counted_without_firing(tmp_path):
    path = tmp_path / "rules.yaml"
    write(path, ONE, mtime_ns=1)
    # No publisher: counting must fire nothing.
    ledger = NeverFiredLedger()
    alerts = AlertEngine(
        RulesFile(path, secret_names=(), check_interval_s=5), ledger=ledger, publisher=None,
        pipeline_version=1, retry_backoff_max_s=1,
    )
    assert await alerts.count_matches(article_about("Talks in Aleppo resumed."), urgent=False, story=None, source="p/0/1") == 1
    assert await alerts.count_matches(article_about("Talks in Geneva resumed."), urgent=False, story=None, source="p/0/2") == 0
    assert ledger.asked == [("p/0/1", False)]
