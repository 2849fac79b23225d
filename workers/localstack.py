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
# A fresh broker's group coordinator answers within a second or two; this much is a broken stack.
_COORDINATOR_WAIT_S = 60.0


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
    """Start Kafka and Redis (what is not already running) and wait until both answer, Kafka's
    group coordinator included (see :func:`_kafka_problem`)."""
    code = _run("up", settings)
    logs = f"{Path(settings.stack_dir).resolve()}/{{kafka/broker.log,redis/redis.log}}"
    if code != 0:
        raise StackError(f"stack.sh up failed (exit {code}); its output above says why, the logs are in {logs}")
    # stack.sh waits for the broker only: it has no Kafka client to ask for a coordinator with.
    if problems := unreachable_services(settings, timeout_s=_COORDINATOR_WAIT_S):
        raise StackError(
            f"the stack started but is not ready after {_COORDINATOR_WAIT_S:.0f} s: {'; '.join(problems)} (logs: {logs})"
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


def _kafka_problem(settings: Settings, timeout_s: float) -> str | None:
    """Why Kafka is not ready for a worker, or None. Ready means the coordinator of the worker's
    consumer group answers, not only the broker: a fresh broker creates the group coordinator's
    topic (__consumer_offsets) when a client first asks for a coordinator, and answers "not
    available" until it has loaded it, which a worker started then logs as errors."""
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    from workers.kafka_clients import kafka_client_options

    timeout_ms = max(1000, int(timeout_s * 1000))
    options: dict[str, object] = {**kafka_client_options(settings), "request_timeout_ms": timeout_ms}
    if "bootstrap_timeout_ms" in KafkaAdminClient.DEFAULT_CONFIG:
        options["bootstrap_timeout_ms"] = timeout_ms
    where = f"Kafka at {settings.kafka_bootstrap}"
    try:
        admin = KafkaAdminClient(**options)
    except Exception as exc:
        # kafka-python's errors name their class themselves
        return f"{where} did not answer ({exc if isinstance(exc, KafkaError) else f'{type(exc).__name__}: {exc}'})"
    try:
        # An OffsetFetch, as a consumer's first request to its coordinator: it fails with the
        # coordinator's error while that is not available, loading or elsewhere.
        admin.list_group_offsets(settings.group_id)
        return None
    except Exception as exc:
        return f"{where}: the coordinator of consumer group {settings.group_id} is not ready ({type(exc).__name__})"
    finally:
        admin.close()


def _redis_problem(settings: Settings, timeout_s: float) -> str | None:
    """Why Redis does not answer PING, or None."""
    import redis

    from workers.sinks.redis_store import connect_blocking

    client = connect_blocking(settings, timeout_s)
    try:
        client.ping()
        return None
    except (redis.RedisError, OSError) as exc:
        # the address, never the URL: it may carry the password
        return f"Redis at {settings.redis_address}: {type(exc).__name__}: {exc}"
    finally:
        client.close()


def unreachable_services(settings: Settings, timeout_s: float = 30.0) -> list[str]:
    """What is not ready yet, one line per service naming it and its address (empty once Kafka and
    Redis both answer), polling for up to timeout_s."""
    deadline = time.monotonic() + timeout_s
    kafka_problem: str | None = "not asked yet"
    redis_problem: str | None = "not asked yet"
    while True:
        remaining = max(1.0, deadline - time.monotonic())
        # a service that answered once is not asked again
        if kafka_problem:
            kafka_problem = _kafka_problem(settings, min(remaining, 10.0))
        if redis_problem:
            redis_problem = _redis_problem(settings, min(remaining, 5.0))
        unready = [problem for problem in (kafka_problem, redis_problem) if problem]
        if not unready or time.monotonic() >= deadline:
            return unready
        time.sleep(0.5)


def services_ready(settings: Settings, timeout_s: float = 30.0) -> bool:
    """True once Kafka (its group coordinator included) and Redis answer, polling for up to timeout_s."""
    return not unreachable_services(settings, timeout_s)
