"""The Kafka security settings: which combinations the settings accept, and what a refusal says (never
the password). Connecting with them is tested on a real broker: tests/integration/test_kafka_security.py."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from pydantic import ValidationError

from workers import cli, kafka_clients
from workers.settings import Settings

PASSWORD = "Zq8vR2mK4xT9wL7pN3"
COMPLETE_SASL = {
    "WIREFEED_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
    "WIREFEED_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
    "WIREFEED_KAFKA_SASL_USERNAME": "wirefeed",
    "WIREFEED_KAFKA_SASL_PASSWORD": PASSWORD,
}


@pytest.fixture(autouse=True)
def only_these_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No developer's WIREFEED_* variables and no .env file: only what a test sets."""
    for name in [name for name in os.environ if name.startswith("WIREFEED_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def settings_from(monkeypatch: pytest.MonkeyPatch, environment: dict[str, str]) -> Settings:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return Settings()


def refusal(monkeypatch: pytest.MonkeyPatch, environment: dict[str, str]) -> str:
    with pytest.raises(ValidationError) as raised:
        settings_from(monkeypatch, environment)
    message = str(raised.value)
    # pydantic cuts long inputs short in its messages: not even a piece of the password
    assert not any(PASSWORD[i : i + 6] in message for i in range(len(PASSWORD) - 5)), message
    return message


def test_plaintext_by_default():
    settings = Settings()
    assert settings.kafka_security_protocol == "PLAINTEXT"
    assert not settings.kafka_uses_sasl and not settings.kafka_uses_tls


def test_complete_sasl_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch):
    settings = settings_from(monkeypatch, COMPLETE_SASL)
    assert settings.kafka_uses_sasl and settings.kafka_uses_tls
    assert settings.kafka_sasl_mechanism == "SCRAM-SHA-512"
    assert settings.kafka_sasl_password is not None
    assert settings.kafka_sasl_password.get_secret_value() == PASSWORD
    assert PASSWORD not in repr(settings)


@pytest.mark.parametrize("protocol", ["SASL_PLAINTEXT", "SASL_SSL"])
@pytest.mark.parametrize(
    "missing", ["WIREFEED_KAFKA_SASL_MECHANISM", "WIREFEED_KAFKA_SASL_USERNAME", "WIREFEED_KAFKA_SASL_PASSWORD"]
)
def test_sasl_needs_mechanism_username_and_password(monkeypatch: pytest.MonkeyPatch, protocol: str, missing: str):
    environment = {k: v for k, v in COMPLETE_SASL.items() if k != missing} | {"WIREFEED_KAFKA_SECURITY_PROTOCOL": protocol}
    message = refusal(monkeypatch, environment)
    assert f"kafka_security_protocol {protocol} needs {missing.removeprefix('WIREFEED_').lower()}" in message


def test_an_empty_password_is_a_missing_one(monkeypatch: pytest.MonkeyPatch):
    message = refusal(monkeypatch, COMPLETE_SASL | {"WIREFEED_KAFKA_SASL_PASSWORD": ""})
    assert "needs kafka_sasl_password" in message


@pytest.mark.parametrize("protocol", ["PLAINTEXT", "SSL"])
def test_sasl_settings_without_a_sasl_protocol_are_refused_not_ignored(monkeypatch: pytest.MonkeyPatch, protocol: str):
    message = refusal(monkeypatch, COMPLETE_SASL | {"WIREFEED_KAFKA_SECURITY_PROTOCOL": protocol})
    assert f"kafka_sasl_mechanism, kafka_sasl_username, kafka_sasl_password set, but kafka_security_protocol {protocol}" in message


def test_a_password_alone_is_refused_without_being_shown(monkeypatch: pytest.MonkeyPatch):
    message = refusal(monkeypatch, {"WIREFEED_KAFKA_SASL_PASSWORD": PASSWORD})
    assert "kafka_sasl_password set, but kafka_security_protocol PLAINTEXT does not use SASL" in message


@pytest.mark.parametrize("protocol", ["PLAINTEXT", "SASL_PLAINTEXT"])
def test_a_ca_file_without_tls_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, protocol: str):
    ca_file = tmp_path / "ca.pem"
    ca_file.write_text("not read by the settings")
    environment = COMPLETE_SASL if protocol.startswith("SASL") else {}
    message = refusal(
        monkeypatch,
        environment | {"WIREFEED_KAFKA_SECURITY_PROTOCOL": protocol, "WIREFEED_KAFKA_SSL_CA_FILE": str(ca_file)},
    )
    assert f"kafka_ssl_ca_file set, but kafka_security_protocol {protocol} does not use TLS" in message


def test_a_ca_file_that_is_not_there_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    message = refusal(monkeypatch, COMPLETE_SASL | {"WIREFEED_KAFKA_SSL_CA_FILE": str(tmp_path / "absent.pem")})
    assert "kafka_ssl_ca_file" in message


@pytest.mark.parametrize(
    "environment",
    [
        pytest.param({"WIREFEED_KAFKA_SECURITY_PROTOCOL": "TLS"}, id="protocol"),
        pytest.param(COMPLETE_SASL | {"WIREFEED_KAFKA_SASL_MECHANISM": "GSSAPI"}, id="mechanism"),
    ],
)
def test_unknown_names_are_refused(monkeypatch: pytest.MonkeyPatch, environment: dict[str, str]):
    refusal(monkeypatch, environment)


def test_the_command_line_names_what_is_missing_in_one_line_without_the_password(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    for name, value in COMPLETE_SASL.items():
        if name != "WIREFEED_KAFKA_SASL_USERNAME":
            monkeypatch.setenv(name, value)
    assert cli.main(["check"]) == 2
    out, err = capsys.readouterr()
    assert PASSWORD not in out + err
    assert err == "wirefeed: invalid settings (WIREFEED_* environment or .env): settings: " \
        "Value error, kafka_security_protocol SASL_SSL needs kafka_sasl_username\n"


@pytest.mark.timeout(5)  # the check's own limit is 10 s: only the caller's deadline ends it sooner
def test_the_connection_check_keeps_to_the_callers_request_timeout():
    with socket.socket() as silent:  # accepts the connection, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        configs = {
            "bootstrap_servers": f"127.0.0.1:{port}", "security_protocol": "SASL_PLAINTEXT",
            "sasl_mechanism": "PLAIN", "sasl_plain_username": "desk", "sasl_plain_password": "x",
            "request_timeout_ms": 300,
        }
        assert kafka_clients._refusal(configs) is None  # not a refusal: the client reports the silence
