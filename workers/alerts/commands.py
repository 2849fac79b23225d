"""``wirefeed alerts tail`` and ``wirefeed rules check``: registered on the CLI by :func:`register`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Collection
from pathlib import Path
from typing import TextIO

import redis

from workers.alerts.ledger import stream_key
from workers.alerts.messages import Alert
from workers.alerts.rules import RulesError, explain, load_rules
from workers.settings import Settings


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    alerts = commands.add_parser("alerts", help="alerts as they fire").add_subparsers(required=True, metavar="ACTION")
    tail = alerts.add_parser("tail", help="print alerts as they fire (the Redis stream), Ctrl-C to stop")
    tail.add_argument("--last", type=int, default=10, help="first print this many recent alerts (default 10)")
    tail.add_argument("--rule", action="append", help="only this rule (repeatable)")
    tail.add_argument("--json", action="store_true", help="one alert JSON per line instead of a summary")
    tail.add_argument("--no-follow", dest="follow", action="store_false", help="print the recent alerts and exit")
    tail.set_defaults(command=_tail)

    rules = commands.add_parser("rules", help="alert rules files").add_subparsers(required=True, metavar="ACTION")
    check = rules.add_parser("check", help="validate a rules file and explain what each rule does")
    check.add_argument("file", type=Path)
    check.add_argument(
        "--no-secrets", dest="check_secrets", action="store_false",
        help="do not check that webhook secrets are in the settings (e.g. in CI, where they are not)",
    )
    check.set_defaults(command=_check)


def _check(settings: Settings, args: argparse.Namespace) -> int:
    return check_rules(args.file, secret_names=settings.alert_webhook_secrets.keys() if args.check_secrets else None)


def check_rules(path: Path, *, secret_names: Collection[str] | None, out: TextIO = sys.stdout) -> int:
    try:
        ruleset = load_rules(path, secret_names=secret_names)
    except RulesError as exc:
        print(f"{path}: INVALID ({len(exc.problems)} problem(s))", file=out)
        for problem in exc.problems:
            print(f"  {problem}", file=out)
        return 1
    print(f"{path}: valid", file=out)
    print(explain(ruleset), file=out)
    return 0


def _tail(settings: Settings, args: argparse.Namespace) -> int:
    client = redis.Redis.from_url(settings.redis_url.get_secret_value())
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
    out: TextIO = sys.stdout,
    block_ms: int = 5000,
) -> None:
    """The ``last`` most recent alerts of the stream, then (``follow``) every new one as it comes.
    A plain XREAD, not a consumer group: a terminal watching must not take alerts from the tools
    that read the stream with groups."""
    recent = list(reversed(client.xrevrange(key, count=last))) if last > 0 else []
    for _entry_id, fields in recent:
        _show(fields, rules, as_json, out)
    cursor = recent[-1][0] if recent else b"$"
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
    print(summary(Alert.model_validate_json(fields[b"json"])), file=out, flush=True)


def summary(alert: Alert) -> str:
    article = alert.article
    when = alert.fired_at.strftime("%Y-%m-%d %H:%M:%S")
    what = (
        f"story {alert.story.story_id}: {len(alert.story.outlets)} outlets ({', '.join(o.domain for o in alert.story.outlets)})"
        if alert.story is not None
        else f"[{', '.join(alert.matched_terms)}]" if alert.matched_terms else ""
    )
    flags = " URGENT" if article.urgent else ""
    return f"{when}  {alert.rule_id}{flags}  {what}  {article.domain} [{article.language or '?'}]  {article.title or ''}  {article.url}"
