"""Webhook signing and the retry schedule (the HTTP delivery itself: tests/integration/test_webhooks.py)."""

import hashlib
import hmac
import random

from workers.alerts.webhooks import DeliveryReport, RetryPolicy, sign, verify

SECRET = b"s3cret"
BODY = '{"alert_id": "x", "title": "حلب"}'.encode()


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
    policy = RetryPolicy(max_attempts=8, backoff_base_s=1.0, backoff_max_s=10.0, timeout_s=5.0)
    rng = random.Random(7)
    for failed in range(1, 8):
        ceiling = min(10.0, 2 ** (failed - 1))
        delays = [policy.delay(failed, rng) for _ in range(200)]
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) > 0.8 * ceiling  # spread over the whole range, not bunched at the top
    assert policy.delay(1, rng, retry_after_s=4.0) == 4.0  # the receiver's Retry-After wins ...
    assert policy.delay(1, rng, retry_after_s=3600.0) == 10.0  # ... within the cap


def test_which_failures_are_final():
    assert DeliveryReport(False, 1, 400, "400").rejected
    assert DeliveryReport(False, 1, 301, "301").rejected
    assert not DeliveryReport(False, 5, 503, "503").rejected
    assert not DeliveryReport(False, 5, 429, "429").rejected
    assert not DeliveryReport(False, 5, None, "ConnectionRefused").rejected
