"""``wirefeed alerts tail``, ``wirefeed alerts redrive`` and ``wirefeed rules check``: registered on
the CLI by :func:`register`."""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import time
from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO, get_args

import redis
from kafka import KafkaConsumer, TopicPartition
from pydantic import ValidationError

from workers.alerts.ledger import AlertLedger, stream_key
from workers.alerts.messages import Alert, AlertDeadLetter, DeadLetterReason, UnreadableAlert, read_alert, read_letter
from workers.alerts.rules import RulesError, explain, load_rules
from workers.alerts.webhooks import DeliveryQueue, Queued
from workers.kafka_clients import kafka_client_options
from workers.replay import offsets_at, parse_when
from workers.settings import Settings
from workers.sinks import redis_store

# kafka-python stops iterating after this long without a record; reading goes on to the end offsets.
_READ_IDLE_MS = 1000


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    alerts = commands.add_parser("alerts", help="alerts as they fire").add_subparsers(required=True, metavar="ACTION")
    tail = alerts.add_parser("tail", help="print alerts as they fire (the Redis stream), Ctrl-C to stop")
    tail.add_argument("--last", type=int, default=10, help="first print this many recent alerts (default 10)")
    tail.add_argument("--rule", action="append", help="only this rule (repeatable)")
    tail.add_argument("--json", action="store_true", help="one alert JSON per line instead of a summary")
    tail.add_argument("--no-follow", dest="follow", action="store_false", help="print the recent alerts and exit")
    tail.set_defaults(command=_tail)
    now = datetime.now(UTC)
    redrive = alerts.add_parser(
        "redrive",
        help="queue the webhook deliveries dead-lettered on alerts.dlq again (once their receiver is fixed)",
        description="Read the dead letters of alerts.dlq and queue each (alert, webhook) delivery again, with a new "
        "retry span; the running workers deliver them. A delivery that succeeded or was queued again since is left "
        "alone, so running it twice delivers nothing twice.",
    )
    redrive.add_argument("--webhook", action="append", help="only deliveries to this webhook (repeatable)")
    redrive.add_argument(
        "--reason", action="append", choices=get_args(DeadLetterReason), help="only letters with this reason (repeatable)"
    )
    redrive.add_argument("--alert-id", action="append", help="only this alert (repeatable)")
    redrive.add_argument(
        "--since", type=lambda v: parse_when(v, now=now), help="only letters written since (ISO 8601 time, or a duration ago: 6h)"
    )
    redrive.add_argument("--dry-run", action="store_true", help="list the deliveries that would be queued, queue nothing")
    redrive.set_defaults(command=_redrive)

    rules = commands.add_parser("rules", help="alert rules files").add_subparsers(required=True, metavar="ACTION")
    check = rules.add_parser("check", help="validate a rules file and explain what each rule does")
    check.add_argument("file", type=Path)
    check.add_argument(
        "--no-secrets", dest="check_secrets", action="store_false",
        help="do not check that webhook secrets are in the settings (e.g. in CI, where they are not)",
    )
    check.set_defaults(command=_check)


def _check(settings: Settings, args: argparse.Namespace) -> int:
    return check_rules(
        args.file,
        secret_names=settings.alert_webhook_secrets.keys() if args.check_secrets else None,
        allow_private_addresses=settings.alert_webhook_allow_private_addresses,
    )


def check_rules(
    path: Path, *, secret_names: Collection[str] | None, allow_private_addresses: bool = False, out: TextIO | None = None
) -> int:
    """The rules file as the workers of these settings would read it."""
    # sys.stdout when called, not when imported: a test's (or an embedding program's) replaced stdout
    out = out or sys.stdout
    try:
        ruleset = load_rules(path, secret_names=secret_names, allow_private_addresses=allow_private_addresses)
    except RulesError as exc:
        print(f"{path}: INVALID ({len(exc.problems)} problem(s))", file=out)
        for problem in exc.problems:
            print(f"  {problem}", file=out)
        return 1
    print(f"{path}: valid", file=out)
    print(explain(ruleset), file=out)
    return 0


@dataclass(frozen=True, slots=True)
class LetterFilter:
    webhooks: frozenset[str] = frozenset()
    reasons: frozenset[str] = frozenset()
    alert_ids: frozenset[str] = frozenset()

    def __call__(self, letter: AlertDeadLetter) -> bool:
        return (
            (not self.webhooks or letter.webhook in self.webhooks)
            and (not self.reasons or letter.reason in self.reasons)
            and (not self.alert_ids or letter.alert.alert_id in self.alert_ids)
        )


def _redrive(settings: Settings, args: argparse.Namespace) -> int:
    wanted = LetterFilter(frozenset(args.webhook or ()), frozenset(args.reason or ()), frozenset(args.alert_id or ()))
    letters = [letter for letter in read_dead_letters(settings, since=args.since, errors=sys.stderr) if wanted(letter)]
    return asyncio.run(redrive(settings, letters, dry_run=args.dry_run, out=sys.stdout))


def read_dead_letters(settings: Settings, *, since: datetime | None, errors: TextIO) -> list[AlertDeadLetter]:
    """The webhook delivery letters of ``alerts.dlq`` (from ``since``, else from the start) up to
    its end offsets as they are now; any other record (an unreadable alert's, or not a letter) is
    reported and skipped."""
    topic = settings.topic_alerts_dlq
    consumer = KafkaConsumer(
        **kafka_client_options(settings),
        enable_auto_commit=False,
        consumer_timeout_ms=_READ_IDLE_MS,
        max_partition_fetch_bytes=settings.max_message_bytes,
        fetch_max_bytes=settings.max_message_bytes,
    )
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(partitions)
        end = consumer.end_offsets(partitions)
        start = offsets_at(consumer, partitions, since, end) if since is not None else consumer.beginning_offsets(partitions)
        for tp in partitions:
            consumer.seek(tp, start[tp])
        letters = []
        while any(consumer.position(tp) < end[tp] for tp in partitions):
            for record in consumer:
                if record.offset >= end[TopicPartition(record.topic, record.partition)]:
                    continue
                where = f"{topic}[{record.partition}]@{record.offset}"
                try:
                    letter = read_letter(record.value)
                except ValidationError as exc:
                    print(f"{where}: not an alert dead letter, skipped: {exc}", file=errors)
                    continue
                if isinstance(letter, UnreadableAlert):
                    print(f"{where}: {letter.subject}: no webhook delivery to redrive, skipped", file=errors)
                else:
                    letters.append(letter)
        return letters
    finally:
        consumer.close()


_REDRIVEN = {Queued.QUEUED: "queued again", Queued.QUEUED_ALREADY: "queued already", Queued.DELIVERED: "delivered since"}
_UNAVAILABLE = "unavailable (its letter was stripped and Redis no longer holds the alert)"


async def redrive(settings: Settings, letters: Iterable[AlertDeadLetter], *, dry_run: bool, out: TextIO) -> int:
    """Queue the delivery of each letter again (the latest letter of a delivery counts); 1 when one
    could not be (a stripped letter whose alert Redis no longer holds)."""
    latest = {(letter.alert.alert_id, letter.webhook): letter for letter in letters}
    client = redis_store.connect(settings)
    try:
        ledger = AlertLedger.from_settings(client, settings)
        queue = DeliveryQueue.from_settings(client, settings)
        outcomes: Counter[str] = Counter()
        for (alert_id, webhook), letter in latest.items():
            # The alert as first fired is the topic's bytes, which receivers got on every attempt.
            body = await client.hget(ledger.alert_key(alert_id), "json")
            if body is None and not letter.alert_truncated:
                body = letter.alert.model_dump_json(by_alias=True).encode()
            if body is None:
                outcome = _UNAVAILABLE
            elif dry_run:
                outcome = "to queue again (unless delivered or queued since)"
            else:
                outcome = _REDRIVEN[await queue.queue(alert_id, webhook, body, now_s=time.time(), redrive=True)]
            outcomes[outcome] += 1
            what = f"alert {alert_id} -> webhook {webhook} ({letter.reason}, {letter.failed_at.isoformat()})"
            print(f"{what}: {outcome}", file=out)
        summary = ", ".join(f"{count} {outcome}" for outcome, count in outcomes.items())
        print(f"{len(latest)} dead-lettered delivery(ies){': ' + summary if summary else ''}", file=out)
        return 1 if outcomes[_UNAVAILABLE] else 0
    finally:
        await client.aclose()


_TAIL_BLOCK_MS = 5000


def _tail(settings: Settings, args: argparse.Namespace) -> int:
    client = redis.Redis.from_url(
        settings.redis_url.get_secret_value(),
        socket_connect_timeout=settings.redis_timeout_s,
        # a follow's XREAD waits up to its block time for an answer, by design
        socket_timeout=settings.redis_timeout_s + _TAIL_BLOCK_MS / 1000,
    )
    try:
        tail(client, stream_key(settings.redis_prefix), last=args.last, rules=set(args.rule or ()), as_json=args.json, follow=args.follow)
    except KeyboardInterrupt:
        pass
    finally:
        client.close()
    return 0


def tail(
    client: redis.Redis,
    key: str,
    *,
    last: int,
    rules: set[str],
    as_json: bool,
    follow: bool,
    out: TextIO | None = None,
    block_ms: int = _TAIL_BLOCK_MS,
) -> None:
    """The ``last`` most recent alerts of the stream, then (``follow``) every new one as it comes.
    A plain XREAD, not a consumer group: a terminal watching must not take alerts from the tools
    that read the stream with groups."""
    out = out or sys.stdout
    newest_first = client.xrevrange(key, count=max(last, 1))
    for _entry_id, fields in reversed(newest_first[:last]):
        _show(fields, rules, as_json, out)
    # From the newest entry's id, never "$": each XREAD reads "$" anew, and an alert appended
    # between two reads (after one timed out empty, before the next began) was never shown.
    cursor = newest_first[0][0] if newest_first else b"0-0"
    while follow:
        for _stream, entries in client.xread({key: cursor}, block=block_ms, count=100) or ():
            for entry_id, fields in entries:
                cursor = entry_id
                _show(fields, rules, as_json, out)


def _show(fields: dict[bytes, bytes], rules: set[str], as_json: bool, out: TextIO) -> None:
    if rules and fields.get(b"rule_id", b"").decode() not in rules:
        return
    if as_json:
        print(fields[b"json"].decode(), file=out, flush=True)
        return
    print(summary(read_alert(fields[b"json"])), file=out, flush=True)


_CONTROL_CHARACTER = re.compile("[\x00-\x1f\x7f-\x9f]")


def summary(alert: Alert) -> str:
    article = alert.article
    when = alert.fired_at.strftime("%Y-%m-%d %H:%M:%S")
    what = (
        f"story {alert.story.story_id}: {len(alert.story.outlets)} outlets ({', '.join(o.domain for o in alert.story.outlets)})"
        if alert.story is not None
        else f"[{', '.join(alert.matched_terms)}]" if alert.matched_terms else ""
    )
    flags = " URGENT" if article.urgent else ""
    line = f"{when}  {alert.rule_id}{flags}  {what}  {article.domain} [{article.language or '?'}]  {article.title or ''}  {article.url}"
    # An alert may come from another release, or a title from a page: no control character
    # reaches the terminal (escape sequences set its title, clear it, forge lines).
    return _CONTROL_CHARACTER.sub(lambda match: repr(match.group())[1:-1], line)
