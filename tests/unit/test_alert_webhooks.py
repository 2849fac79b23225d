"""Webhook signing, the retry schedule, the alert messages' times and how long delivery markers
last (the delivery itself, on the real Redis and broker: tests/integration/test_webhooks.py)."""

import hashlib
import hmac
import random
from datetime import UTC, datetime, timedelta

import pytest
from contract import assert_valid
from pydantic import ValidationError

from workers.alerts.messages import Alert, AlertArticle, AlertDeadLetter, AlertStory, StoryOutlet
from workers.alerts.webhooks import AttemptResult, RetryPolicy, sign, verify
from workers.settings import Settings
from workers.topics import topic_specs

SECRET = b"s3cret"
BODY = '{"alert_id": "x", "title": "حلب"}'.encode()
NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


def test_the_signature_is_hmac_sha256_of_timestamp_dot_body():
    expected = hmac.new(SECRET, b"1700000000." + BODY, hashlib.sha256).hexdigest()
    assert sign(SECRET, 1700000000, BODY) == f"sha256={expected}"


def test_a_receiver_accepts_only_recent_requests_signed_with_its_secret():
    signature = sign(SECRET, 1700000000, BODY)
    assert verify(SECRET, timestamp="1700000000", signature=signature, body=BODY, now=1700000100)
    assert not verify(b"other", timestamp="1700000000", signature=signature, body=BODY, now=1700000100)
    assert not verify(SECRET, timestamp="1700000000", signature=signature, body=BODY + b" ", now=1700000100)
    assert not verify(SECRET, timestamp="1700000001", signature=signature, body=BODY, now=1700000100)
    assert not verify(SECRET, timestamp="1700000000", signature=signature, body=BODY, now=1700000000 + 301)
    assert not verify(SECRET, timestamp="soon", signature=signature, body=BODY, now=1700000100)


def test_backoff_is_exponential_with_full_jitter_and_capped():
    policy = RetryPolicy(give_up_after_s=1800, backoff_base_s=1.0, backoff_max_s=10.0, timeout_s=5.0)
    rng = random.Random(7)
    for failed in range(1, 8):
        ceiling = min(10.0, 2 ** (failed - 1))
        delays = [policy.delay(failed, rng) for _ in range(200)]
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) > 0.8 * ceiling  # spread over the whole range, not bunched at the top
    assert policy.delay(1, rng, retry_after_s=4.0) == 4.0  # the receiver's Retry-After wins ...
    assert policy.delay(1, rng, retry_after_s=3600.0) == 10.0  # ... within the cap
    assert 0 <= policy.delay(10_000, rng) <= 10.0  # hours of failures: no overflow


def test_the_retry_budget_is_a_span_of_time_from_the_first_failure():
    policy = RetryPolicy(give_up_after_s=1800, backoff_base_s=1.0, backoff_max_s=60.0, timeout_s=10.0)
    assert not policy.gives_up(first_failure_s=1000.0, next_attempt_s=1000.0 + 1800)
    assert policy.gives_up(first_failure_s=1000.0, next_attempt_s=1000.0 + 1800.5)
    # By default a receiver is retried for half an hour: a restart or a redeploy loses nothing.
    assert Settings(_env_file=None).webhook_give_up_after_s == 30 * 60


def test_which_failures_are_final():
    assert AttemptResult(400, "400").rejected
    assert AttemptResult(301, "301").rejected
    assert not AttemptResult(503, "503").rejected
    assert not AttemptResult(429, "429").rejected
    assert not AttemptResult(None, "ConnectionRefused").rejected
    assert AttemptResult(204, None).delivered and not AttemptResult(204, None).rejected


def test_a_delivery_marker_outlives_every_record_of_the_alerts_topic():
    """A record stays on the topic for up to retention.ms after its segment closes, segment.ms at
    most after it was written: the topic re-read any time must find the marker of each alert."""
    settings = Settings(_env_file=None)
    (alerts,) = [spec for spec in topic_specs(settings) if spec.name == settings.topic_alerts]
    # set on the topic: a broker's own log.roll.hours could be anything
    record_lifetime_ms = int(alerts.config["retention.ms"]) + int(alerts.config["segment.ms"])
    assert timedelta(days=settings.webhook_marker_ttl_days) > timedelta(milliseconds=record_lifetime_ms)


def alert(*, title: str | None = "حلب", story: bool = False) -> Alert:
    return Alert(
        alert_id="3b8e0e1f5a9c4d7e8f1a2b3c4d5e6f70", rule_id="aleppo", rule_kind="breaking_story" if story else "article",
        fired_at=NOW,
        article=AlertArticle(
            article_id="8c96e064df17d9ace6d8a45853a86804", url="https://a.example/2016/12/08/aleppo", domain="a.example",
            title=title, language="ar", published_at=NOW - timedelta(minutes=8), urgent=False,
        ),
        matched_terms=[] if story else ["حلب"],
        story=AlertStory(story_id="st-1", outlets=[StoryOutlet(domain="a.example", first_seen=NOW)]) if story else None,
        webhooks=["desk"], pipeline_version=1,
    )


def test_an_alert_without_an_offset_in_its_times_is_refused_not_published_against_the_schema():
    valid = alert(story=True).model_dump(mode="json", by_alias=True)
    assert_valid("alerts", valid)
    with pytest.raises(ValidationError):
        Alert.model_validate({**valid, "fired_at": "2026-11-22T10:00:00"})
    with pytest.raises(ValidationError):
        Alert.model_validate({**valid, "article": {**valid["article"], "published_at": datetime(2026, 11, 22, 9, 52)}})
    with pytest.raises(ValidationError):
        Alert.model_validate({**valid, "story": {"story_id": "st-1", "outlets": [{"domain": "a.example", "first_seen": "2026-11-22T09:00:00"}]}})


def test_a_stripped_dead_letter_keeps_who_what_and_why_and_follows_the_schema():
    letter = AlertDeadLetter(
        alert=alert(title="عنوان " * 100_000, story=True), webhook="desk", url="https://hooks.example/" + "x" * 10_000,
        reason="retries_exhausted", attempts=34, last_status=503, last_error="503 " + "Unavailable " * 10_000, failed_at=NOW,
    )
    stripped = letter.stripped("MessageSizeTooLargeError()")
    assert len(stripped.model_dump_json(by_alias=True)) < 3000
    assert stripped.alert_truncated and not letter.alert_truncated
    assert stripped.alert.article.title is None and stripped.alert.story is not None and stripped.alert.story.outlets == []
    kept = ("alert_id", "rule_id", "rule_kind", "fired_at", "webhooks", "pipeline_version")
    assert [getattr(stripped.alert, name) for name in kept] == [getattr(letter.alert, name) for name in kept]
    assert stripped.alert.article.article_id == letter.alert.article.article_id
    assert (stripped.webhook, stripped.reason, stripped.attempts, stripped.last_status) == ("desk", "retries_exhausted", 34, 503)
    assert stripped.last_error is not None and "MessageSizeTooLargeError" in stripped.last_error
    assert_valid("alerts.dlq", stripped.model_dump_json(by_alias=True))
