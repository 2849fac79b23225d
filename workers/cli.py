"""``wirefeed`` (also ``python -m workers``): the entry point. Settings are built here, once."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import redis
from dotenv import dotenv_values
from kafka.errors import KafkaError, KafkaTimeoutError
from pydantic import ValidationError
from pydantic_settings import SettingsError

from workers import logs
from workers.localstack import StackError
from workers.settings import Settings

if TYPE_CHECKING:
    import faust

log = logging.getLogger(__name__)

DESCRIPTION = (
    "Turns crawled news pages (Kafka topic pages.raw) into clean articles in Redis and on the articles "
    "topic. Settings come from WIREFEED_* environment variables or a .env file."
)


def main(argv: list[str] | None = None) -> int:
    # As a container's process 1 (the image's exec-form ENTRYPOINT, no init), a signal without a
    # handler is ignored, not fatal: a SIGTERM during the worker's start-up (the pool's warm-up,
    # the topic check: seconds) was thrown away, and the worker joined its group and ran until the
    # SIGKILL of the grace period. Exiting as the default action would, until Faust installs its own.
    if threading.current_thread() is threading.main_thread():  # (only it may set handlers)
        signal.signal(signal.SIGTERM, _exit_on_signal)
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        settings = Settings()
    except (ValidationError, SettingsError) as exc:
        problems = _settings_problems(exc)
        print(f"wirefeed: invalid settings (WIREFEED_* environment or .env): {problems}", file=sys.stderr)
        return 2
    logs.configure(settings.log_format, args.log_level, one_shot=args.command is not _worker)
    if unknown := _unknown_settings():
        # extra="ignore" lets unrelated variables be; a misspelt or retired WIREFEED_ one would
        # otherwise leave its default in force without a word. Logged, so that it reaches a log
        # collector that reads one JSON object a line (LOG_FORMAT=json).
        log.warning("no such setting, ignored: %s", ", ".join(unknown))
    try:
        return int(args.command(settings, args) or 0)
    except KafkaTimeoutError as exc:
        # What kafka-python raises when no broker answers within its bootstrap timeout; its
        # traceback says less than the address does.
        print(f"wirefeed: Kafka at {settings.kafka_bootstrap} did not answer ({exc})", file=sys.stderr)
        return 1
    except KafkaError as exc:
        print(f"wirefeed: Kafka at {settings.kafka_bootstrap}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except StackError as exc:
        print(f"wirefeed: {exc}", file=sys.stderr)
        return 1
    except redis.RedisError as exc:
        # the address, never the URL: it may carry the password
        print(f"wirefeed: Redis at {settings.redis_address}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


def _exit_on_signal(signum: int, _frame: object) -> None:
    os._exit(128 + signum)  # as the signal's default action ends a process: no cleanup of its own


def _unknown_settings() -> list[str]:
    """WIREFEED_* names in the environment or the .env file that name no setting."""
    prefix = Settings.model_config["env_prefix"]
    names = set(os.environ) | set(dotenv_values(Settings.model_config["env_file"]))
    return sorted(
        name for name in names
        if name.upper().startswith(prefix) and name[len(prefix):].lower() not in Settings.model_fields
    )


def _settings_problems(exc: ValidationError | SettingsError) -> str:
    """Where and what is wrong, on one line, without the input values: they may be secrets."""
    if isinstance(exc, SettingsError):
        # Its message names the field and the source; the value is only in its cause.
        return str(exc)
    return "; ".join(
        f"{'.'.join(map(str, error['loc'])) or 'settings'}: {error['msg']}"
        for error in exc.errors(include_url=False, include_context=False, include_input=False)
    )


def _parser() -> argparse.ArgumentParser:
    from workers import replay
    from workers.alerts import commands as alert_commands

    parser = argparse.ArgumentParser(prog="wirefeed", description=DESCRIPTION)
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    worker = commands.add_parser("worker", help="run the Faust worker (consumes pages.raw)")
    worker.set_defaults(command=_worker)

    produce = commands.add_parser("produce", help="publish HTML files, directories or JSONL of crawled pages")
    produce.add_argument("paths", nargs="+", type=Path)
    produce.add_argument("--topic", type=replay.topic_name, help="default: the pages.raw topic of the settings")
    produce.add_argument("--base-url", default="https://files.wirefeed.invalid/", help="URL for a file with no canonical link")
    produce.set_defaults(command=_produce)

    stack = commands.add_parser("stack", help="the local Kafka + Redis stack, without Docker")
    stack.add_argument("action", choices=["up", "down", "status"])
    stack.set_defaults(command=_stack)

    check = commands.add_parser(
        "check",
        help="exit 0 when Kafka (its group coordinator too) and Redis answer and the alert rules file, if one is set, "
        "is valid; else name what is not (healthchecks)",
    )
    check.add_argument("--timeout", type=float, default=5.0)
    check.set_defaults(command=_check)

    topics = commands.add_parser("topics", help="create the topics with their partitions and limits")
    topics.add_argument("action", choices=["create"])
    topics.set_defaults(command=_topics)

    demo = commands.add_parser("demo", help="start the stack and a worker, feed the sample pages, show the results")
    demo.set_defaults(command=_demo)

    replay.register(commands)
    alert_commands.register(commands)
    return parser


def _worker(settings: Settings, args: argparse.Namespace) -> int:
    from workers.app import create_app
    from workers.pool import ExtractionSettingsError, check_settings
    from workers.sinks.redis_store import eviction_policy_problem
    from workers.topics import ensure_topics

    try:
        check_settings(settings)
    except ExtractionSettingsError as exc:
        print(f"wirefeed: invalid settings: {exc}", file=sys.stderr)
        return 2
    # The agents load the rules too, but a failure there only restarts them every few seconds
    # while the worker reports itself ready: a worker must not start without its rules.
    if invalid := _rules_problems(settings):
        print(f"wirefeed: invalid alert rules: {'; '.join(invalid)}", file=sys.stderr)
        return 2
    try:
        if problem := eviction_policy_problem(settings, settings.redis_timeout_s):
            # Said, not refused: the worker works, only the once-only guarantees weaken, and the
            # readiness probe (wirefeed check) fails on it.
            log.error("Redis at %s: %s", settings.redis_address, problem)
    except redis.RedisError:
        pass  # Redis is away: the pipeline waits for it, as for any outage
    ensure_topics(settings)
    faust_worker(create_app(settings, log_level=args.log_level), settings, args.log_level).execute_from_commandline()
    return 0


def faust_worker(app: faust.App, settings: Settings, log_level: str) -> faust.Worker:
    """What ``wirefeed worker`` runs ``app`` in."""
    import faust

    # Faust installs its own logging at start: JSON as every other command, or its own text.
    json_logs = logs.logging_config("json", log_level) if settings.log_format == "json" else None
    worker = faust.Worker(app, loglevel=log_level.upper(), quiet=True, logging_config=json_logs, stdout=sys.stdout)
    if not worker.stdout.isatty():
        # Faust's start-up spinner writes its cursor codes and backspaces to a file or pipe too.
        worker.spinner = None
    return worker


def _produce(settings: Settings, args: argparse.Namespace) -> int:
    from workers.feed import TopicLimit, produce_stream, records_from_paths, require_topic

    missing = [str(p) for p in args.paths if not p.exists()]
    if missing:
        print(f"wirefeed produce: no such file: {', '.join(missing)}", file=sys.stderr)
        return 2
    # A named pipe or a device gives its data to one read only: the send, after the check below,
    # would wait on it for ever.
    if streams := [str(p) for p in args.paths if not (p.is_file() or p.is_dir())]:
        print(
            f"wirefeed produce: not a regular file or directory (every input is read twice: a check "
            f"before anything is sent, then the send): {', '.join(streams)}",
            file=sys.stderr,
        )
        return 2
    records = partial(records_from_paths, args.paths, base_url=args.base_url, max_bytes=settings.max_message_bytes)
    try:
        # Every page is read and checked before the first is sent: a bad one halfway would leave
        # those before it published, and running the command again once it is fixed would publish
        # them twice. Read twice rather than kept: a JSONL crawl need not fit in memory.
        for _record in records():
            pass
        topic = args.topic or settings.topic_pages_raw
        limit = require_topic(settings, topic)
        if limit is not None and limit < settings.max_message_bytes:
            # A topic made by other tools (Kafka's default limit is 1 MB), or before the setting
            # was raised: a page within the setting may be over the topic's own limit, which the
            # broker would refuse halfway through. Read a third time, in this case only: the
            # first read names a bad page without a broker.
            for _record in records(topic_limit=TopicLimit(topic, limit, settings.compression)):
                pass
        sent = produce_stream(settings, records(), topic=topic)
    except ValueError as exc:
        print(f"wirefeed produce: {exc}", file=sys.stderr)
        return 2
    print(f"published {sent} page(s) to {topic}")
    return 0


def _stack(settings: Settings, args: argparse.Namespace) -> int:
    from workers import localstack

    if args.action == "up":
        localstack.up(settings)
    elif args.action == "down":
        localstack.down(settings)
    else:
        return 0 if localstack.status(settings) else 1
    return 0


def _check(settings: Settings, args: argparse.Namespace) -> int:
    from workers import localstack
    from workers.sinks.redis_store import eviction_policy_problem

    unreachable = localstack.unreachable_services(settings, timeout_s=args.timeout)
    for problem in unreachable:
        print(f"unreachable: {problem}")
    # not asked of a Redis that did not answer: the probe would wait its timeout again
    redis_answered = not any(settings.redis_address in problem for problem in unreachable)
    misconfigured = eviction_policy_problem(settings, args.timeout) if redis_answered else None
    if misconfigured:
        print(f"misconfigured: Redis at {settings.redis_address}: {misconfigured}")
    invalid = _rules_problems(settings)
    for problem in invalid:
        print(f"invalid alert rules: {problem}")
    if not unreachable and not misconfigured and not invalid:
        print("ok")
    return 1 if unreachable or misconfigured or invalid else 0


def _rules_problems(settings: Settings) -> list[str]:
    """What is wrong with the alert rules file the settings name, as the workers would read it,
    each on one line (a YAML error spans several)."""
    from workers.alerts.engine import RulesFile
    from workers.alerts.rules import RulesError

    try:
        RulesFile.from_settings(settings)
    except RulesError as exc:
        return [" ".join(problem.split()) for problem in exc.problems]
    return []


def _topics(settings: Settings, args: argparse.Namespace) -> int:
    from workers.topics import ensure_topics

    created = ensure_topics(settings)
    print(f"created: {', '.join(created) or 'none (all exist)'}")
    return 0


def _demo(settings: Settings, args: argparse.Namespace) -> int:
    from workers.demo import run_demo

    return run_demo(settings)
