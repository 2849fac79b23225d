"""Kafka security on a real broker. A private single-node KRaft broker (the local stack's jars) with
a listener for each secured protocol: SASL in the clear, SASL over TLS, TLS alone (SASL mechanisms
PLAIN and SCRAM-SHA-512; TLS with a certificate of its own). Through them, every client wirefeed
builds does its work: the topic creation, ``wirefeed produce``, a worker (Faust) turning a page into
an article, replay, the readiness check. With a wrong password, a mechanism the broker does not
offer, or without the broker's CA, they fail at once with the reason.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kafka.errors import KafkaConnectionError, SaslAuthenticationFailedError, UnsupportedSaslMechanismError
from worker_harness import WorkerProcess, free_port, read_topic, settings_env, sync_redis, wait_for, wait_for_outcomes

from workers import SAMPLE_PAGES, cli
from workers.feed import Record, produce, records_from_paths
from workers.localstack import services_ready
from workers.replay import REPLAY_HEADER
from workers.settings import Settings
from workers.topics import ensure_topics, topic_specs

pytestmark = pytest.mark.integration

USER = "wirefeed"
# USER's password for each mechanism: different, so that a client using another mechanism than it
# was told to is refused.
PASSWORDS = {"PLAIN": "pw-7f3c9e2a-plain", "SCRAM-SHA-512": "pw-51c0a9d7-scram"}
WRONG_PASSWORD = "pw-0d41b8c6-wrong"


PROTOCOLS = ("SASL_PLAINTEXT", "SASL_SSL", "SSL")


@dataclass(frozen=True, slots=True)
class SecuredBroker:
    listeners: dict[str, str]
    """The address of the listener of each protocol."""
    ca_file: Path
    """The PEM certificate that the TLS listeners present, self-signed: the CA to trust."""


def kafka_libs(settings: Settings) -> Path:
    """Where deploy/local/stack.sh caches the broker's jars (the ``stack`` fixture fetched them)."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    libs = cache / "wirefeed" / f"kafka-{settings.kafka_version}" / "libs"
    assert (libs / ".complete").is_file(), f"no Kafka jars in {libs}: deploy/local/stack.sh up fetches them"
    return libs


def cluster_id() -> str:
    # Kafka's form (22 characters of URL-safe base64); never with a leading "-", which its
    # command line would take for an option.
    while True:
        candidate = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not candidate.startswith("-"):
            return candidate


def self_signed_certificate(directory: Path) -> tuple[Path, Path, str]:
    """A PKCS12 keystore for the broker (valid for 127.0.0.1) and its certificate in PEM."""
    keystore, certificate, password = directory / "broker.p12", directory / "ca.pem", "keystore-secret"
    subprocess.run(
        ["keytool", "-genkeypair", "-alias", "broker", "-keyalg", "RSA", "-keysize", "2048", "-validity", "2",
         "-dname", "CN=127.0.0.1", "-ext", "SAN=IP:127.0.0.1,DNS:localhost", "-keystore", str(keystore),
         "-storetype", "PKCS12", "-storepass", password, "-keypass", password, "-noprompt"],
        check=True, capture_output=True,
    )
    subprocess.run(
        ["keytool", "-exportcert", "-alias", "broker", "-rfc", "-file", str(certificate), "-keystore", str(keystore),
         "-storepass", password],
        check=True, capture_output=True,
    )
    return keystore, certificate, password


def broker_config(directory: Path, listener_ports: dict[str, int], controller_port: int) -> Path:
    keystore, _, keystore_password = self_signed_certificate(directory)
    # The broker logs in as "broker" between its own listeners; clients as USER. SCRAM credentials
    # live in the cluster's metadata: the storage format adds USER's (see secured_broker).
    plain = (
        'org.apache.kafka.common.security.plain.PlainLoginModule required username="broker" '
        f'password="broker-secret" user_broker="broker-secret" user_{USER}="{PASSWORDS["PLAIN"]}";'
    )
    scram = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
    listeners = ",".join(f"{name}://127.0.0.1:{port}" for name, port in listener_ports.items())
    config = directory / "server.properties"
    config.write_text(
        "\n".join([
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@127.0.0.1:{controller_port}",
            f"listeners={listeners},CONTROLLER://127.0.0.1:{controller_port}",
            f"advertised.listeners={listeners}",
            "listener.security.protocol.map=" + ",".join(f"{name}:{name}" for name in listener_ports) + ",CONTROLLER:PLAINTEXT",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=SASL_PLAINTEXT",
            "sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-512",
            "sasl.mechanism.inter.broker.protocol=PLAIN",
            f"listener.name.sasl_plaintext.plain.sasl.jaas.config={plain}",
            f"listener.name.sasl_ssl.plain.sasl.jaas.config={plain}",
            f"listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config={scram}",
            f"listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config={scram}",
            "ssl.keystore.type=PKCS12",
            f"ssl.keystore.location={keystore}",
            f"ssl.keystore.password={keystore_password}",
            f"ssl.key.password={keystore_password}",
            f"log.dirs={directory / 'data'}",
            "offsets.topic.replication.factor=1",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            "group.initial.rebalance.delay.ms=0",
            "auto.create.topics.enable=false",
        ])
        + "\n"
    )
    return config


@pytest.fixture(scope="module")
def secured_broker(stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecuredBroker]:
    directory = tmp_path_factory.mktemp("secured-broker")
    listener_ports = {protocol: free_port() for protocol in PROTOCOLS}
    controller_port = free_port()
    assert len({*listener_ports.values(), controller_port}) == len(PROTOCOLS) + 1
    config = broker_config(directory, listener_ports, controller_port)
    classpath = f"{kafka_libs(stack)}/*"
    subprocess.run(
        ["java", "-cp", classpath, "kafka.tools.StorageTool", "format", "-t", cluster_id(), "-c", str(config),
         "--add-scram", f"SCRAM-SHA-512=[name={USER},password={PASSWORDS['SCRAM-SHA-512']}]"],
        check=True, capture_output=True, timeout=60,
    )
    log_path = directory / "broker.log"
    with log_path.open("ab") as log:
        broker = subprocess.Popen(
            ["java", "-Xmx512m", "-XX:+ExitOnOutOfMemoryError", "-cp", classpath, "kafka.Kafka", str(config)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        secured = SecuredBroker(
            {protocol: f"127.0.0.1:{port}" for protocol, port in listener_ports.items()}, directory / "ca.pem"
        )
        probe = with_security(stack, secured, "SASL_PLAINTEXT")

        def answers() -> bool:
            assert broker.poll() is None, f"the broker exited:\n{log_path.read_text(errors='replace')[-3000:]}"
            return services_ready(probe, timeout_s=2)

        wait_for(answers, timeout_s=60, what="the private broker", interval_s=0.5)
        yield secured
    finally:
        # Its data is thrown away with the directory: no need for a clean shutdown.
        os.killpg(broker.pid, signal.SIGKILL)
        broker.wait(timeout=30)


def with_security(
    settings: Settings,
    broker: SecuredBroker,
    protocol: str,
    *,
    mechanism: str | None = "PLAIN",
    password: str | None = None,
    ca_file: bool = True,
) -> Settings:
    """The settings, pointed at the private broker through ``protocol`` (SASL as USER with
    ``mechanism`` and its password unless told another; TLS trusting the broker's CA unless not
    ``ca_file``), with alert topics of their own too; validated like the entry point's
    (``model_copy`` would skip the validation)."""
    sasl, tls = protocol.startswith("SASL_"), protocol.endswith("SSL")
    values = settings.model_dump() | {
        "topic_alerts": f"{settings.app_name}.alerts",
        "topic_alerts_dlq": f"{settings.app_name}.alerts.dlq",
        "kafka_bootstrap": broker.listeners[protocol],
        "kafka_security_protocol": protocol,
        "kafka_sasl_mechanism": mechanism if sasl else None,
        "kafka_sasl_username": USER if sasl else None,
        "kafka_sasl_password": (password or PASSWORDS.get(mechanism or "")) if sasl else None,
        "kafka_ssl_ca_file": broker.ca_file if tls and ca_file else None,
    }
    return Settings.model_validate(values)


def run_cli(settings: Settings, argv: list[str], monkeypatch: pytest.MonkeyPatch) -> int:
    """``wirefeed ARGV`` in this process, with the settings as its WIREFEED_* environment."""
    with monkeypatch.context() as patch:
        for name, value in settings_env(settings).items():
            patch.setenv(name, value)
        patch.setattr(cli.logs, "configure", lambda log_format, level, one_shot: None)
        return cli.main(argv)


@pytest.mark.parametrize(("protocol", "mechanism"), [("SASL_PLAINTEXT", "PLAIN"), ("SASL_SSL", "SCRAM-SHA-512"), ("SSL", None)])
def test_every_client_works_through_each_secured_listener(
    protocol: str,
    mechanism: str | None,
    secured_broker: SecuredBroker,
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
):
    secured = with_security(settings, secured_broker, protocol, mechanism=mechanism)
    # `wirefeed check`, the Kubernetes readiness probe
    assert services_ready(secured, timeout_s=10)

    created = ensure_topics(secured)
    assert sorted(created) == sorted(spec.name for spec in topic_specs(secured))

    records = list(records_from_paths([SAMPLE_PAGES / "en-cbc-gaza-ceasefire.html"], base_url="https://samples.wirefeed.invalid/"))
    sent = produce(secured, records)
    client = sync_redis(secured)
    worker = WorkerProcess(secured, tmp_path / "worker.log").start()
    try:
        [status] = wait_for_outcomes(client, secured, records, sent, worker=worker, timeout_s=90).values()
        assert status["outcome"] == "kept", status
        # The worker's producer published it through the same listener.
        [article] = read_topic(secured, secured.topic_articles, at_least=1)
        assert article.key == status["article_id"].encode()
        assert json.loads(article.value)["article_id"] == status["article_id"]

        # `wirefeed replay` plans with one consumer, then copies with another and a producer.
        partition, offset = sent[0].partition, sent[0].offset
        argv = ["replay", "--partition", str(partition), "--from-offset", str(offset), "--to-offset", str(offset + 1)]
        assert run_cli(secured, argv, monkeypatch) == 0, capsys.readouterr().err
        copies = [
            r for r in read_topic(secured, secured.topic_pages_raw, at_least=2) if r.partition == partition and r.offset > offset
        ]
        assert [copy.key for copy in copies] == [records[0].key]
        assert REPLAY_HEADER in dict(copies[0].headers)
    finally:
        worker.stop()
        for key in client.scan_iter(match=f"{secured.redis_prefix}:*"):
            client.delete(key)
        client.close()
    log = worker.log_path.read_text(errors="replace")
    assert not any(password in log for password in PASSWORDS.values())


def refusal_of(call: Callable[[Settings], object], settings: Settings) -> Exception:
    """What ``call(settings)`` raised (a refusal waited out to kafka-python's timeout would be a
    KafkaTimeoutError, which the callers' checks of the class tell apart)."""
    with pytest.raises(Exception) as raised:
        call(settings)
    return raised.value


def publish_one(settings: Settings) -> None:
    produce(settings, [Record(b"k", b"v")])


def test_a_wrong_password_fails_at_once_with_the_brokers_reason(
    secured_broker: SecuredBroker,
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
):
    refused = with_security(settings, secured_broker, "SASL_PLAINTEXT", password=WRONG_PASSWORD)
    for call in (ensure_topics, publish_one):
        error = refusal_of(call, refused)
        assert isinstance(error, SaslAuthenticationFailedError), repr(error)
        assert "Invalid username or password" in str(error)
        assert f"'{USER}'" in str(error) and WRONG_PASSWORD not in str(error)

    # The replay's consumer, as a person running the command sees it.
    assert run_cli(refused, ["replay", "--dry-run"], monkeypatch) == 1
    err = capsys.readouterr().err
    assert "SaslAuthenticationFailedError" in err and "Invalid username or password" in err
    assert WRONG_PASSWORD not in err

    assert not services_ready(refused, timeout_s=1)

    # A worker stops at its start (it creates the topics first) and says why.
    worker = WorkerProcess(refused, tmp_path / "worker.log").start()
    try:
        wait_for(lambda: not worker.alive, timeout_s=60, what="the worker to give up")
    finally:
        code = worker.stop()
    assert code not in (0, None)
    log = worker.log_path.read_text(errors="replace")
    assert "SaslAuthenticationFailedError" in log and "Invalid username or password" in log
    assert WRONG_PASSWORD not in log


def test_a_wrong_scram_password_fails_at_once(secured_broker: SecuredBroker, settings: Settings):
    refused = with_security(settings, secured_broker, "SASL_SSL", mechanism="SCRAM-SHA-512", password=WRONG_PASSWORD)
    error = refusal_of(ensure_topics, refused)
    assert isinstance(error, SaslAuthenticationFailedError), repr(error)
    assert "SCRAM-SHA-512" in str(error) and WRONG_PASSWORD not in str(error)


def test_a_mechanism_the_broker_does_not_offer_fails_at_once(secured_broker: SecuredBroker, settings: Settings):
    scram = with_security(
        settings, secured_broker, "SASL_PLAINTEXT", mechanism="SCRAM-SHA-256", password=PASSWORDS["SCRAM-SHA-512"]
    )
    error = refusal_of(ensure_topics, scram)
    assert isinstance(error, UnsupportedSaslMechanismError), repr(error)
    assert "SCRAM-SHA-256" in str(error)


def test_tls_without_the_brokers_ca_fails_at_once(secured_broker: SecuredBroker, settings: Settings):
    # No kafka_ssl_ca_file: the system's CAs, which did not sign the broker's certificate.
    system_cas = with_security(settings, secured_broker, "SASL_SSL", ca_file=False)
    error = refusal_of(ensure_topics, system_cas)
    assert isinstance(error, KafkaConnectionError), repr(error)
    assert "certificate" in str(error)
