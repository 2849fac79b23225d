"""Webhook signing, the retry schedule, the alert messages' times and how long delivery markers
last, and on a Redis of this module's own a new firing's delivery and `alerts tail` (the delivery
itself, on the real Redis and broker: tests/integration/test_webhooks.py)."""

import asyncio
import base64
import dataclasses
import hashlib
import hmac
import io
import json
import unicodedata
import random
import socket
import threading
import time
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
import redis
import redis.asyncio as aioredis
from aiohttp.abc import AbstractResolver, ResolveResult
from contract import assert_valid, schema_file
from jsonschema import Draft202012Validator, FormatChecker
from pydantic import SecretStr, ValidationError
from worker_harness import free_port

from workers.alerts.messages import (
    Alert,
    AlertArticle,
    AlertDeadLetter,
    AlertStory,
    StoryOutlet,
    UnreadableAlert,
    read_alert,
    read_letter,
)
from workers.alerts.commands import summary, tail
from workers.alerts.ledger import AlertLedger
from workers.alerts.rules import WebhookTarget
from workers.alerts.webhooks import (
    _described,
    AttemptResult,
    DeliveryQueue,
    PublicAddressResolver,
    Queued,
    RefusedAddressError,
    RetryPolicy,
    WebhookSender,
    sign,
    verify,
    webhook_connector,
)
from workers.models import SourcePosition
from workers.settings import Settings
from workers.topics import topic_specs

SECRET = b"s3cret"
_ALERTS_SCHEMA = schema_file("alerts.v1.schema.json")
UNREADABLE = Draft202012Validator(
    {"$defs": _ALERTS_SCHEMA["$defs"], "$ref": "#/$defs/unreadable_alert"}, format_checker=FormatChecker()
)
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
    # a forged header with other than ASCII in it: False, not TypeError (a receiver answering 500)
    for forged in ("sha256=\u00e9", "sha256=\u0663" + signature[8:], "\udcff", "sha256=\ud800", "\udc7f"):
        assert not verify(SECRET, timestamp="1700000000", signature=forged, body=BODY, now=1700000100)
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


def test_an_alert_read_back_ignores_fields_a_newer_release_added_while_one_written_is_strict():
    """During a rolling upgrade that adds an optional field, a pod not yet upgraded dropped the
    new pods' alerts as 'not an alert'."""
    written = alert(story=True).model_dump(mode="json", by_alias=True)
    newer = {
        **written, "priority": "high",
        "article": {**written["article"], "section": "world"},
        "story": {**written["story"], "outlets": [{**written["story"]["outlets"][0], "rank": 1}]},
    }
    assert read_alert(json.dumps(newer)) == alert(story=True)
    with pytest.raises(ValidationError):
        Alert.model_validate(newer)
    with pytest.raises(ValidationError):
        Alert.model_validate_json(json.dumps(newer))
    with pytest.raises(ValidationError):  # what is missing or of another type is still refused
        read_alert(json.dumps({key: value for key, value in newer.items() if key != "alert_id"}))


def test_a_record_that_is_not_an_alert_becomes_a_letter_with_its_bytes():
    value = b'\xff{"not": "an alert"}'
    letter = UnreadableAlert.of(
        b"key-1", value, source=SourcePosition(topic="alerts", partition=1, offset=42), error="not JSON", failed_at=NOW
    )
    document = json.loads(letter.model_dump_json(by_alias=True))
    assert not sorted(UNREADABLE.iter_errors(document), key=str)
    assert base64.b64decode(document["original_value_b64"]) == value and document["original_value_bytes"] == len(value)
    assert letter.kafka_key == b"key-1" and not letter.original_truncated
    stripped = UnreadableAlert.of(
        None, b"x" * 1_000_000, source=letter.source, error="e" * 100_000, failed_at=NOW
    ).stripped("MessageSizeTooLargeError()")
    assert stripped.original_truncated and stripped.original_value_bytes == 1_000_000
    assert len(stripped.model_dump_json(by_alias=True)) < 100_000
    assert not sorted(UNREADABLE.iter_errors(json.loads(stripped.model_dump_json(by_alias=True))), key=str)


def test_a_delivery_refused_for_its_address_is_a_dead_letter_of_the_schema():
    letter = AlertDeadLetter(
        alert=alert(), webhook="desk", url="http://169.254.169.254/latest", reason="refused_address", attempts=1,
        last_status=None, last_error="169.254.169.254 is not a public address", failed_at=NOW,
    )
    assert_valid("alerts.dlq", letter.model_dump_json(by_alias=True))
    assert AttemptResult(None, "refused", refusal="refused_address").rejected


def test_alerts_dlq_records_are_read_as_the_type_they_name_whatever_a_newer_release_added():
    """``alerts redrive`` read every record as a delivery letter, strictly: an unreadable alert's
    record was reported with a whole validation error, and a newer release's letter skipped."""
    delivery = AlertDeadLetter(
        alert=alert(), webhook="desk", url="https://hooks.newsroom.example/x", reason="rejected", attempts=1,
        last_status=410, last_error="410 Gone", failed_at=NOW,
    )
    newer = json.loads(delivery.model_dump_json(by_alias=True)) | {"receiver_request_id": "r-1"}
    newer["alert"]["priority"] = "high"
    assert read_letter(json.dumps(newer)) == delivery
    unreadable = UnreadableAlert.of(
        None, b"\xff", source=SourcePosition(topic="alerts", partition=0, offset=3), error="not JSON", failed_at=NOW
    )
    assert read_letter(unreadable.model_dump_json(by_alias=True)) == unreadable
    for not_a_letter in (None, b"", b"[1]", b'{"schema": "wirefeed.alert.dlq/1"}'):  # None: a record without a value
        with pytest.raises(ValidationError):
            read_letter(not_a_letter)


TARGET = WebhookTarget(name="desk", url="", secret="desk")


async def post(url: str, *, allow_private_addresses: bool) -> AttemptResult:
    async with aiohttp.ClientSession(connector=webhook_connector(allow_private_addresses=allow_private_addresses)) as session:
        sender = WebhookSender(session, timeout_s=5, allow_private_addresses=allow_private_addresses)
        return await sender.post(
            dataclasses.replace(TARGET, url=url), SecretStr("s"), alert_id="a" * 32, body=b"{}"
        )


@pytest.mark.parametrize("url", ["https://hooks..newsroom.example/x", f"https://{'a' * 64}.newsroom.example/x"])
async def test_a_url_the_http_client_cannot_request_is_a_rejection_not_an_escape(url):
    """The resolver's UnicodeError escaped the sender: the lease lapsed and the delivery was
    attempted again for as long as it stayed queued, with no dead letter."""
    result = await post(url, allow_private_addresses=True)
    assert result.rejected and result.refusal == "rejected" and result.status is None
    assert result.error is not None and result.error.startswith("UnicodeError: ")


@pytest.mark.parametrize("host", ["127.0.0.1", "[::1]", "[::ffff:127.0.0.1]", "localhost"])
async def test_a_receiver_on_a_private_address_is_refused_before_connecting(host):
    """A port nothing listens on: allowed, the attempt is a network error (retried) instead."""
    url = f"http://{host}:{free_port()}/hook"
    refused = await post(url, allow_private_addresses=False)
    assert refused.rejected and refused.refusal == "refused_address" and refused.status is None
    assert refused.error is not None and "public address" in refused.error
    attempted = await post(url, allow_private_addresses=True)
    assert not attempted.rejected and attempted.refusal is None and attempted.error is not None


class FixedResolver(AbstractResolver):
    def __init__(self, *addresses: str) -> None:
        self.addresses = addresses

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        return [
            ResolveResult(hostname=host, host=address, port=port, family=family, proto=0, flags=0) for address in self.addresses
        ]

    async def close(self) -> None:
        pass


async def test_a_name_is_connected_to_on_its_public_addresses_only():
    """Checked on what the name resolves to when connecting: a name that passed validation and
    was rebound to an internal address since is refused."""
    mixed = PublicAddressResolver(FixedResolver("10.0.0.5", "93.184.215.14", "fd00::7", "2606:2800:21f:cb07::1"))
    assert [r["host"] for r in await mixed.resolve("hooks.newsroom.example", 443)] == ["93.184.215.14", "2606:2800:21f:cb07::1"]
    rebound = PublicAddressResolver(FixedResolver("169.254.169.254", "::1"))
    with pytest.raises(RefusedAddressError, match=r"hooks.newsroom.example resolves to no public address \(169.254.169.254, ::1\)"):
        await rebound.resolve("hooks.newsroom.example", 443)


@pytest.mark.parametrize("allow_private_addresses", [False, True])
async def test_webhook_hosts_whose_dns_hangs_do_not_hold_the_threads_of_the_pipeline(
    monkeypatch: pytest.MonkeyPatch, allow_private_addresses: bool
) -> None:
    """aiohttp resolved on the event loop's default executor, which also runs every page's dedup
    and alert matching: lookups that hang (a DNS server that does not answer) held all its threads
    and stalled the pipeline."""
    answer = threading.Event()
    resolve_for_real = socket.getaddrinfo

    def lookup(host: str, *args: object, **kwargs: object) -> object:
        if host.endswith(".hang.example"):
            answer.wait(30)
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        return resolve_for_real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", lookup)
    connector = webhook_connector(allow_private_addresses=allow_private_addresses)
    resolver = connector._resolver  # noqa: SLF001 - the resolver the session connects with
    hanging = [asyncio.create_task(resolver.resolve(f"hooks{n}.hang.example", 443)) for n in range(12)]
    try:
        await asyncio.sleep(0.2)
        await asyncio.wait_for(asyncio.to_thread(lambda: None), timeout=2)  # what dedup and matching wait for
    finally:
        answer.set()
        await asyncio.gather(*hanging, return_exceptions=True)
        await connector.close()


def test_alerts_tail_prints_no_control_character_of_a_title():
    """A hostile page's JSON-LD headline "\\u001b]0;…\\u0007\\u001b[2J…" set the terminal's title,
    cleared it and forged a line in `wirefeed alerts tail`."""
    line = summary(alert(title="\x1b]0;PWNED\x07\x1b[2J\x1b[31mFAKE: Ceasefire collapses\r"))
    assert not any(unicodedata.category(character) == "Cc" for character in line)
    assert "\\x1b]0;PWNED\\x07\\x1b[2J\\x1b[31mFAKE: Ceasefire collapses\\r" in line


def test_an_attempt_error_names_the_webhooks_origin_not_its_path():
    """aiohttp's "Connection timeout to host <URL>" put a chat tool's token (in the URL's path)
    into alerts.dlq's last_error and the logs."""
    url = "https://hooks.chat.example/services/T0/B0/XYZTOKEN?x=1"
    error = aiohttp.ConnectionTimeoutError(f"Connection timeout to host {url}")
    assert _described(error, url) == "ConnectionTimeoutError: Connection timeout to host https://hooks.chat.example"


# --- found by a review of alert rules, matching and delivery ---------------------------------------


async def test_an_alert_that_fires_again_after_its_fired_marker_expired_is_delivered_again_once(redis_url: str):
    # The outcome of the first firing's delivery (webhook_marker_ttl_days, 45) outlived its fired
    # marker (alert_fired_ttl_days, 30): a page edited after a month fired the alert again to the
    # stream and the topic, and its webhook was skipped as delivered already.
    client = aioredis.Redis.from_url(redis_url)
    ledger = AlertLedger(client, prefix="refire", fired_ttl_s=3600, stream_maxlen=100)
    queue = DeliveryQueue(client, ledger, prefix="refire", marker_ttl_s=3600, lease_s=30)

    async def fire_and_queue(source: str) -> tuple[bool, Queued]:
        fired = await ledger.fire(alert(), source=source)
        return fired.first_time, await queue.queue(fired.alert.alert_id, "desk", b"{}", now_s=time.time())

    async def deliver() -> None:
        (pending,) = await queue.lease_due("desk", now_s=time.time(), limit=10)
        await queue.delivered(pending)

    try:
        assert await fire_and_queue("pages.raw/0/1") == (True, Queued.QUEUED)
        await deliver()
        await client.delete(ledger.alert_key(alert().alert_id))  # its fired_ttl_s ran out
        assert await fire_and_queue("pages.raw/0/2") == (True, Queued.QUEUED)
        await deliver()
        # while it is remembered as fired, a redelivery or another page delivers nothing again
        assert await fire_and_queue("pages.raw/0/2") == (False, Queued.DELIVERED)
        assert await fire_and_queue("pages.raw/0/3") == (False, Queued.DELIVERED)
        assert await client.xlen(ledger.stream_key) == 2
    finally:
        await client.aclose()


class _StopTailing(Exception):
    """Ends the follow loop of `alerts tail`, which runs until the terminal's Ctrl-C."""


@pytest.mark.parametrize("last", [0, 10])
def test_alerts_tail_shows_an_alert_appended_between_two_of_its_reads(redis_url: str, last: int):
    # It followed the stream from "$" until it had seen an entry, and XREAD reads "$" anew each
    # time: an alert appended after one read timed out empty, before the next began, was never shown.
    key = f"tail{last}:alerts"
    body = alert().model_dump_json(by_alias=True)
    reads = 0

    class AlertBetweenReads(redis.Redis):
        def xread(self, streams, **kwargs):  # type: ignore[no-untyped-def]
            nonlocal reads
            reads += 1
            if reads == 3:
                raise _StopTailing
            entries = super().xread(streams, **kwargs)
            if reads == 1:
                self.xadd(key, {"alert_id": alert().alert_id, "rule_id": "aleppo", "json": body})
            return entries

    client = AlertBetweenReads.from_url(redis_url)
    out = io.StringIO()
    try:
        with pytest.raises(_StopTailing):
            tail(client, key, last=last, rules=set(), as_json=True, follow=True, out=out, block_ms=50)
    finally:
        client.close()
    assert out.getvalue().splitlines() == [body]
