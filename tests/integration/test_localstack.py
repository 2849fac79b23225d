"""deploy/local/stack.sh through workers.localstack: a second, throw-away stack on unusual
ports in a temporary directory, so it never touches the shared test stack or a developer's."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from kafka import KafkaAdminClient

from workers import localstack
from workers.settings import Settings

pytestmark = pytest.mark.integration

KAFKA_PORT = 29092
CONTROLLER_PORT = KAFKA_PORT + 1
REDIS_PORT = 26379


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def own_stack(tmp_path: Path) -> Iterator[Settings]:
    busy = [
        port for port in (KAFKA_PORT, CONTROLLER_PORT, REDIS_PORT) if _port_open(port)
    ]
    if busy:
        pytest.fail(
            f"ports {busy} are already in use: this test needs them for its own stack"
        )
    settings = Settings(
        _env_file=None,
        kafka_bootstrap=f"127.0.0.1:{KAFKA_PORT}",
        redis_url=f"redis://127.0.0.1:{REDIS_PORT}/0",
        stack_dir=tmp_path / "stack",
    )
    try:
        yield settings
    finally:
        # Whatever the test did, leave nothing running.
        localstack.down(settings)


def test_stack_up_status_use_down(own_stack: Settings) -> None:
    settings = own_stack
    assert not localstack.status(settings)

    localstack.up(settings)
    assert localstack.status(settings)
    assert localstack.services_ready(settings, timeout_s=30)
    stack_dir = Path(settings.stack_dir)
    cluster_id = (stack_dir / "kafka" / "cluster-id").read_text().strip()
    assert len(cluster_id) == 22
    broker_config = (stack_dir / "kafka" / "server.properties").read_text()
    assert f"message.max.bytes={settings.max_message_bytes}\n" in broker_config
    assert "auto.create.topics.enable=false\n" in broker_config

    # `up` on a running stack changes nothing.
    pids = {
        name: (stack_dir / name / f"{name}.pid").read_text().strip()
        for name in ("kafka", "redis")
    }
    localstack.up(settings)
    assert localstack.status(settings)
    assert pids == {
        name: (stack_dir / name / f"{name}.pid").read_text().strip()
        for name in ("kafka", "redis")
    }

    # The broker really works: create a topic and see it listed.
    topic = f"localstack-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap, request_timeout_ms=20000
    )
    try:
        admin.create_topics(
            {topic: {"num_partitions": 2, "replication_factor": 1}},
            wait_for_metadata=True,
        )
        assert topic in admin.list_topics()
    finally:
        admin.close()

    # And so does Redis.
    client = redis.Redis.from_url(settings.redis_url.get_secret_value())
    try:
        client.set("localstack:probe", b"ok")
        assert client.get("localstack:probe") == b"ok"
    finally:
        client.close()

    localstack.down(settings)
    assert not localstack.status(settings)
    assert not any(
        _port_open(port) for port in (KAFKA_PORT, CONTROLLER_PORT, REDIS_PORT)
    )

    # Stopping a stopped stack is fine too.
    localstack.down(settings)

    # The same directory comes back up with its data: same cluster, the topic survived.
    localstack.up(settings)
    assert (stack_dir / "kafka" / "cluster-id").read_text().strip() == cluster_id
    admin = KafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap, request_timeout_ms=20000
    )
    try:
        assert topic in admin.list_topics()
    finally:
        admin.close()
    client = redis.Redis.from_url(settings.redis_url.get_secret_value())
    try:
        assert client.get("localstack:probe") == b"ok"  # appendonly yes
    finally:
        client.close()


def test_stack_args_follow_settings(tmp_path: Path) -> None:
    settings = Settings(
        _env_file=None,
        kafka_bootstrap="127.0.0.1:29192",
        redis_url="redis://127.0.0.1:26479/0",
        stack_dir=tmp_path / "s",
        max_message_bytes=2 * 1024 * 1024,
    )
    args = localstack.stack_args(settings)
    assert args == [
        "--dir", str((tmp_path / "s").resolve()),
        "--kafka-port", "29192",
        "--controller-port", "29193",
        "--redis-port", "26479",
        "--kafka-version", settings.kafka_version,
        "--max-message-bytes", str(2 * 1024 * 1024),
    ]  # fmt: skip
    with pytest.raises(localstack.StackError):
        localstack.stack_args(
            settings.model_copy(update={"kafka_bootstrap": "kafka:9092"})
        )
