"""Running real worker processes against the real stack, and reading what they wrote."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import redis
import yaml
from hanging_pages import HANGING_HOST
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.producer.future import RecordMetadata
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from workers.feed import Record
from workers.kafka_clients import kafka_client_options
from workers.settings import Settings
from workers.sinks.redis_store import page_key

T = TypeVar("T")
REPO = Path(__file__).resolve().parent.parent
# What the platform spends of the grace period outside the worker: delivering the signal, reaping
# the container (and a slow CI machine's scheduling), so a worker that stops in time stops before it.
STOP_MARGIN_S = 10.0


def termination_grace_period_s() -> float:
    """The seconds Kubernetes leaves a worker between SIGTERM and SIGKILL."""
    (deployment,) = yaml.safe_load_all((REPO / "deploy" / "k8s" / "worker-deployment.yaml").read_text())
    return float(deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"])


# A worker stops within this after SIGTERM, whatever it has in flight: within the grace period.
STOP_BOUND_S = termination_grace_period_s() - STOP_MARGIN_S


def settings_env(settings: Settings) -> dict[str, str]:
    """The settings as the WIREFEED_* environment of a child process (its entry point reads it)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WIREFEED_")}
    for name, value in settings.model_dump().items():
        if value is None:
            continue  # unset: the child's default (an empty variable would not parse as None)
        if isinstance(value, dict):  # pydantic-settings reads complex values as JSON
            value = json.dumps({k: v.get_secret_value() if isinstance(v, SecretStr) else v for k, v in value.items()})
        elif isinstance(value, SecretStr):
            value = value.get_secret_value()
        env[f"WIREFEED_{name.upper()}"] = str(value)
    return env


def slow_page(url: str, paragraphs: int = 3000) -> Record:
    """A big but legitimate page: trafilatura needs several seconds for it (how many depends on
    the machine and its load: for a page that must outlast something, see hanging_page)."""
    html = "<html><body>" + "".join(
        f"<div class='c{i % 7}'><p>{' '.join(f'word{(i * 31 + j) % 997}' for j in range(60))} <a href='/x{i}'>link</a></p></div>"
        for i in range(paragraphs)
    ) + "</body></html>"
    message = {"url": url, "fetched_at": datetime.now(UTC).isoformat(), "html": html}
    return Record(url.encode(), json.dumps(message).encode())


def hanging_page(path: str) -> Record:
    """A page whose extraction never ends in a worker started with hanging_pages.PREAMBLE (until
    the extraction timeout), and is kept by any other worker."""
    return slow_page(f"https://{HANGING_HOST}/{path}", 3)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class WorkerProcess:
    """``python -m workers worker`` in its own process group (with its extraction processes)."""

    def __init__(self, settings: Settings, log_path: Path, *, preamble: str | None = None) -> None:
        """``preamble``: Python run in the worker process before the worker (a fault to inject)."""
        self.settings = settings.model_copy(update={"web_port": free_port()})
        self.log_path = log_path
        self._preamble = preamble
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        log = self.log_path.open("ab")
        if self._preamble is None:
            entry = ["-m", "workers"]
        else:
            entry = ["-c", f"{self._preamble}\nimport runpy\nrunpy.run_module('workers', run_name='__main__')"]
        self._process = subprocess.Popen(
            [sys.executable, *entry, "--log-level", "info", "worker"],
            env=settings_env(self.settings) | {"PYTHONPATH": str(REPO)},
            # not the repository: a developer's .env there would fill in every setting left unset
            cwd=self.log_path.parent,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    @property
    def pid(self) -> int:
        assert self._process is not None, "not started"
        return self._process.pid

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def stop(self, timeout_s: float = 30) -> int | None:
        return self._signal(signal.SIGTERM, timeout_s)

    def terminate(self, timeout_s: float) -> tuple[int | None, float]:
        """SIGTERM to the worker process alone, as Kubernetes and Docker send it (to the
        container's main process, not its extraction processes). Returns its exit code (None if
        it still runs ``timeout_s`` later; it is left running) and the seconds it took to exit."""
        assert self._process is not None, "not started"
        sent = time.monotonic()
        self._process.send_signal(signal.SIGTERM)
        try:
            code: int | None = self._process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            code = None
        return code, time.monotonic() - sent

    def kill(self) -> None:
        """SIGKILL to the whole group: no shutdown handler runs, nothing is flushed or committed."""
        self._signal(signal.SIGKILL, 10)

    def _signal(self, sig: signal.Signals, timeout_s: float) -> int | None:
        if self._process is None:
            return None
        try:
            os.killpg(self._process.pid, sig)
        except ProcessLookupError:
            pass
        try:
            return self._process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(self._process.pid, signal.SIGKILL)
            return self._process.wait(timeout=10)

    def log_tail(self, lines: int = 60) -> str:
        text = self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def scrape_metrics(worker: WorkerProcess) -> dict[str, Metric]:
    """The metric families a running worker exposes on GET /metrics of its web server."""
    with urllib.request.urlopen(f"http://127.0.0.1:{worker.settings.web_port}/metrics", timeout=10) as response:
        assert response.headers["Content-Type"].startswith("text/plain; version=")  # the exposition format
        exposed = response.read().decode()
    return {family.name: family for family in text_string_to_metric_families(exposed)}


def unacknowledged_gauges(worker: WorkerProcess) -> dict[str, float]:
    """The pages agent's in-flight gauges on the worker's /metrics."""
    families = scrape_metrics(worker)
    return {
        name: next(sample.value for sample in families[name].samples if sample.labels == {"agent": "pages"})
        for name in ("wirefeed_unacknowledged", "wirefeed_oldest_unacknowledged_seconds")
    }


def wait_for(
    condition: Callable[[], T],
    *,
    timeout_s: float,
    what: str,
    worker: WorkerProcess | None = None,
    interval_s: float = 0.25,
) -> T:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        if worker is not None and not worker.alive:
            raise AssertionError(f"the worker died while waiting for {what}:\n{worker.log_tail()}")
        time.sleep(interval_s)
    tail = f"\nworker log:\n{worker.log_tail()}" if worker is not None else ""
    raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}{tail}")


def sync_redis(settings: Settings) -> redis.Redis:
    return redis.Redis.from_url(settings.redis_url.get_secret_value())


def stored_values(client: redis.Redis, keys: Iterable[bytes]) -> dict[bytes, object]:
    """What each key holds, value by value: a hash's fields, a sorted set's members and scores.
    (Not ``DUMP``: the bytes of a hash table depend on where Redis is in rehashing it.)"""
    values: dict[bytes, object] = {}
    for key in keys:
        kind = client.type(key)
        if kind == b"hash":
            values[key] = client.hgetall(key)
        elif kind == b"zset":
            values[key] = client.zrange(key, 0, -1, withscores=True)
        elif kind == b"set":
            values[key] = sorted(client.smembers(key))
        elif kind == b"list":
            values[key] = client.lrange(key, 0, -1)
        else:
            values[key] = client.get(key)
    return values


def page_status(client: redis.Redis, settings: Settings, url: str) -> dict[str, str]:
    return _decoded(client.hgetall(page_key(settings.redis_prefix, url)))


def _decoded(raw: dict[bytes, bytes]) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in raw.items()}


def outcomes_for(
    client: redis.Redis, settings: Settings, records: Iterable[Record], sent: Iterable[RecordMetadata]
) -> dict[str, dict[str, str]]:
    """Page statuses that belong to exactly these produced records (not to an earlier delivery).
    One pipelined round trip, so that polling does not load the machine being measured."""
    keyed = [(record.key.decode(), meta) for record, meta in zip(records, sent, strict=True) if record.key is not None]
    with client.pipeline(transaction=False) as pipe:
        for url, _ in keyed:
            pipe.hgetall(page_key(settings.redis_prefix, url))
        replies = pipe.execute()
    found = {}
    for (url, meta), raw in zip(keyed, replies, strict=True):
        status = _decoded(raw)
        if status and (int(status["partition"]), int(status["offset"])) == (meta.partition, meta.offset):
            found[url] = status
    return found


def wait_for_outcomes(
    client: redis.Redis,
    settings: Settings,
    records: list[Record],
    sent: list[RecordMetadata],
    *,
    worker: WorkerProcess,
    timeout_s: float = 90,
    interval_s: float = 0.25,
) -> dict[str, dict[str, str]]:
    def all_there() -> dict[str, dict[str, str]] | None:
        found = outcomes_for(client, settings, records, sent)
        return found if len(found) == len(records) else None

    return wait_for(
        all_there, timeout_s=timeout_s, what=f"outcomes of {len(records)} page(s)", worker=worker, interval_s=interval_s
    )


def committed_offsets(settings: Settings, topic: str) -> dict[int, int]:
    """The worker group's committed offset of each partition of ``topic`` that has one."""
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    try:
        offsets = admin.list_group_offsets(settings.group_id).get(settings.group_id, {})
    finally:
        admin.close()
    return {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == topic and meta.offset >= 0}


def wait_until_handled(worker: WorkerProcess, topic: str, *, timeout_s: float = 180) -> None:
    """Every record now on ``topic`` handled by the worker: its consumer group's committed offsets
    reach the topic's end offsets. The worker acknowledges a record only once it and every record
    before it in its partition were handled (workers/acks.py), and Faust commits only what was
    acknowledged. Unlike a page's last outcome in Redis, this holds when two records of one page
    were in flight at once and the older finished last."""
    consumer = KafkaConsumer(bootstrap_servers=worker.settings.kafka_bootstrap)
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        assert partitions, f"{topic}: no partitions"
        end = {tp.partition: offset for tp, offset in consumer.end_offsets(partitions).items()}
    finally:
        consumer.close()

    def handled() -> bool:
        committed = committed_offsets(worker.settings, topic)
        return all(committed.get(partition, 0) >= offset for partition, offset in end.items())

    wait_for(handled, timeout_s=timeout_s, what=f"every record of {topic} up to offsets {end} handled", worker=worker)


def read_topic(settings: Settings, topic: str, *, at_least: int, timeout_s: float = 30) -> list[ConsumerRecord]:
    """Every record of the topic from the beginning, once at least ``at_least`` are there: up to
    the end offsets the broker reports at that moment, so that a record beyond the ``at_least``
    (a duplicate the test must see) is read too. ``at_least=0`` reads the topic as it is now."""
    consumer = KafkaConsumer(
        **kafka_client_options(settings),
        enable_auto_commit=False,
        max_partition_fetch_bytes=2 * settings.max_message_bytes,
        fetch_max_bytes=2 * settings.max_message_bytes,
        consumer_timeout_ms=1000,
    )
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        records: list[ConsumerRecord] = []
        deadline = time.monotonic() + timeout_s
        while True:
            if len(records) >= at_least:
                end = consumer.end_offsets(partitions)
                if all(consumer.position(tp) >= end[tp] for tp in partitions):
                    return records
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"{topic}: {len(records)} records after {timeout_s:g} s, expected at least {at_least}"
                    " and every record up to the end offsets"
                )
            records.extend(consumer)  # until a second passes without a record
    finally:
        consumer.close()


def _resp_commands(data: bytes) -> Iterator[list[bytes]]:
    """The commands of an append-only file, up to the last complete one (a stop may cut one)."""
    position = 0
    while position < len(data):
        try:
            assert data[position:position + 1] == b"*"
            end = data.index(b"\r\n", position)
            count, position = int(data[position + 1:end]), end + 2
            command = []
            for _ in range(count):
                assert data[position:position + 1] == b"$"
                end = data.index(b"\r\n", position)
                size, position = int(data[position + 1:end]), end + 2
                if position + size + 2 > len(data):
                    return
                command.append(data[position:position + size])
                position += size + 2
        except (AssertionError, ValueError):
            return
        yield command


class PrivateRedis:
    """A redis-server of one test alone, which the test may hang, kill and restart. Append-only
    file on (as docker-compose.yml runs Redis) and fsynced before every reply, so that the file
    holds, when the process stops, every write the worker was told was done."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> PrivateRedis:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.directory),
             "--logfile", str(self.directory / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_timeout=2)

        def answers() -> bool:
            assert self._process is not None and self._process.poll() is None, "redis-server exited"
            try:
                return bool(client.ping())
            except redis.RedisError:  # not listening yet, or still loading its file
                return False

        try:
            wait_for(answers, timeout_s=30, what=f"the private redis-server on port {self.port}")
        finally:
            client.close()
        return self

    def hang(self) -> None:
        """SIGSTOP: connections stay open and connects succeed, nothing answers (a hung server)."""
        assert self._process is not None
        os.kill(self._process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self._process is not None
        os.kill(self._process.pid, signal.SIGCONT)

    def crash(self) -> None:
        """SIGKILL: connections reset, connects refused until ``start`` again."""
        assert self._process is not None
        self._process.kill()
        self._process.wait(timeout=10)

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()  # also ends a stopped process
            self._process.wait(timeout=10)

    def finished_pages(self, settings: Settings) -> set[tuple[int, int]]:
        """(partition, offset) of every pages.raw record whose page outcome, the last write of a
        page, was in the append-only file. Read while the server is stopped, before any restart."""
        finished: set[tuple[int, int]] = set()
        transaction: list[list[bytes]] | None = None
        page_keys = f"{settings.redis_prefix}:page:".encode()
        increments = sorted(
            (self.directory / "appendonlydir").glob("*.incr.aof"), key=lambda path: int(path.name.split(".")[-3])
        )
        for command in (command for path in increments for command in _resp_commands(path.read_bytes())):
            name = command[0].upper()
            if name == b"MULTI":
                transaction = []
                continue
            if name == b"EXEC":
                applied, transaction = transaction or [], None
            elif transaction is not None:
                transaction.append(command)
                continue
            else:
                applied = [command]
            for write in applied:
                if write[0].upper() == b"HSET" and write[1].startswith(page_keys):
                    fields = dict(zip(write[2::2], write[3::2], strict=True))
                    if fields.get(b"topic") == settings.topic_pages_raw.encode():
                        finished.add((int(fields[b"partition"]), int(fields[b"offset"])))
        return finished
