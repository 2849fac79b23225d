"""The local Kafka + Redis stack (deploy/local/stack.sh) seen from Python.

Used by ``wirefeed stack up|down|status`` and by the tests. Everything comes from the
Settings object: the stack directory, the ports (from ``kafka_bootstrap`` and ``redis_url``;
the KRaft controller listens on the Kafka port + 1), the Kafka version and the message size
limit. The script only exists in a checkout of the repository, not in an installed wheel.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from workers.settings import Settings

REPO_ROOT = Path(__file__).resolve().parent.parent
STACK_SCRIPT = REPO_ROOT / "deploy" / "local" / "stack.sh"
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


class StackError(RuntimeError):
    """The local stack could not be used: script missing, bad settings or a failed start."""


def script_path() -> Path:
    if not STACK_SCRIPT.is_file():
        raise StackError(
            f"{STACK_SCRIPT} not found: the local stack needs a checkout of the wirefeed "
            "repository (it is not part of the installed package). With Docker, use "
            "docker-compose.yml instead."
        )
    return STACK_SCRIPT


def _check_local(settings: Settings) -> None:
    kafka_hosts = {
        server.rsplit(":", 1)[0] for server in settings.kafka_bootstrap.split(",")
    }
    if "," in settings.kafka_bootstrap or not kafka_hosts <= LOCAL_HOSTS:
        raise StackError(
            f"kafka_bootstrap={settings.kafka_bootstrap!r}: the local stack runs one broker "
            "on 127.0.0.1, so it must be 127.0.0.1:PORT"
        )
    if settings.redis_host not in LOCAL_HOSTS:
        raise StackError(
            f"redis_url points at {settings.redis_host!r}: the local stack runs Redis on 127.0.0.1"
        )


def stack_args(settings: Settings) -> list[str]:
    """The stack.sh options that describe the stack these settings use."""
    _check_local(settings)
    kafka_port = settings.kafka_port
    if kafka_port >= 65535:
        raise StackError(
            f"kafka port {kafka_port} leaves no room for the controller port (kafka port + 1)"
        )
    options = {
        "--dir": str(Path(settings.stack_dir).resolve()),
        "--kafka-port": str(kafka_port),
        "--controller-port": str(kafka_port + 1),
        "--redis-port": str(settings.redis_port),
        "--kafka-version": settings.kafka_version,
        "--max-message-bytes": str(settings.max_message_bytes),
    }
    return [part for option in options.items() for part in option]


def _run(command: str, settings: Settings) -> int:
    # Output goes straight to our stdout/stderr: start-up can take a while (the first run
    # fetches the Kafka jars) and its progress and errors are for the person waiting.
    completed = subprocess.run(
        ["bash", str(script_path()), command, *stack_args(settings)],
        stdin=subprocess.DEVNULL,
        check=False,
    )
    return completed.returncode


def up(settings: Settings) -> None:
    """Start Kafka and Redis (what is not already running) and wait until both answer."""
    code = _run("up", settings)
    if code != 0:
        raise StackError(
            f"stack.sh up failed (exit {code}); its output above says why, the logs are in "
            f"{Path(settings.stack_dir).resolve()}/{{kafka/broker.log,redis/redis.log}}"
        )


def down(settings: Settings) -> None:
    """Stop both services (SIGTERM, then SIGKILL after 30 s). Stopping a stopped stack is fine."""
    code = _run("down", settings)
    if code != 0:
        raise StackError(f"stack.sh down failed (exit {code})")


def status(settings: Settings) -> bool:
    """Print one line per service; True only when Kafka and Redis are both up."""
    code = _run("status", settings)
    if code not in (0, 1):
        raise StackError(f"stack.sh status failed (exit {code})")
    return code == 0


def _kafka_answers(settings: Settings, timeout_s: float) -> bool:
    from kafka import KafkaAdminClient

    from workers.kafka_clients import kafka_client_options

    timeout_ms = max(1000, int(timeout_s * 1000))
    options: dict[str, object] = {**kafka_client_options(settings), "request_timeout_ms": timeout_ms}
    if "bootstrap_timeout_ms" in KafkaAdminClient.DEFAULT_CONFIG:
        options["bootstrap_timeout_ms"] = timeout_ms
    try:
        admin = KafkaAdminClient(**options)
    except Exception:
        return False
    try:
        admin.list_topics()
        return True
    except Exception:
        return False
    finally:
        admin.close()


def _redis_answers(settings: Settings, timeout_s: float) -> bool:
    import redis

    client = redis.Redis.from_url(
        settings.redis_url.get_secret_value(),
        socket_connect_timeout=timeout_s,
        socket_timeout=timeout_s,
    )
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


def services_ready(settings: Settings, timeout_s: float = 30.0) -> bool:
    """True once Kafka lists its topics and Redis answers PING, polling for up to timeout_s."""
    deadline = time.monotonic() + timeout_s
    kafka_ok = redis_ok = False
    while True:
        remaining = max(1.0, deadline - time.monotonic())
        kafka_ok = kafka_ok or _kafka_answers(settings, min(remaining, 10.0))
        redis_ok = redis_ok or _redis_answers(settings, min(remaining, 5.0))
        if kafka_ok and redis_ok:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.5)
