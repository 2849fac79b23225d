"""How every Kafka client of wirefeed reaches the brokers: addresses, TLS and SASL, from the settings.

The kafka-python clients (``wirefeed produce``, ``replay``, the topic creation of ``topics create``
and of a worker's start, ``check``) take :func:`kafka_client_options`; the Faust worker (aiokafka)
takes :func:`faust_broker_credentials`. Both trust the same CAs: ``kafka_ssl_ca_file`` when set,
the system's otherwise.
"""

from __future__ import annotations

import asyncio
import ssl
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from aiokafka import errors as aiokafka_errors
from aiokafka.conn import create_conn
from kafka.admin import KafkaAdminClient
from kafka.errors import KafkaConnectionError, KafkaError, SaslAuthenticationFailedError, UnsupportedSaslMechanismError
from kafka.net.compat import KafkaNetClient

from workers.settings import Settings

if TYPE_CHECKING:
    from faust.auth import Credentials

# Long enough for a TLS handshake with a distant cluster; a broker that takes longer is left to
# the client's own timeouts.
_CONNECTION_CHECK_TIMEOUT_S = 10.0


def kafka_client_options(settings: Settings) -> dict[str, Any]:
    """The keyword options that every kafka-python client (producer, consumer, admin) is built with."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap,
        "security_protocol": settings.kafka_security_protocol,
    }
    if settings.kafka_uses_tls:
        options["ssl_context"] = _ssl_context(settings)
    if settings.kafka_uses_sasl:
        assert settings.kafka_sasl_password is not None  # the settings refuse SASL without one
        options |= {
            "sasl_mechanism": settings.kafka_sasl_mechanism,
            "sasl_plain_username": settings.kafka_sasl_username,
            "sasl_plain_password": settings.kafka_sasl_password.get_secret_value(),
        }
    if settings.kafka_uses_tls or settings.kafka_uses_sasl:
        options["kafka_client"] = _client_once_the_broker_accepts
    return options


def make_admin(settings: Settings) -> KafkaAdminClient:
    """The admin client of the commands that create or look up topics."""
    return KafkaAdminClient(**kafka_client_options(settings), client_id=f"{settings.app_name}-admin")


def faust_broker_credentials(settings: Settings) -> Credentials | None:
    """Faust's ``broker_credentials``: what its aiokafka consumers and producers connect with."""
    # Imported here, so that the kafka-python commands do not pay for importing Faust.
    from faust.auth import SASLCredentials, SSLCredentials

    context = _ssl_context(settings) if settings.kafka_uses_tls else None
    if settings.kafka_uses_sasl:
        assert settings.kafka_sasl_password is not None  # the settings refuse SASL without one
        # With an SSL context the protocol is SASL_SSL, without one SASL_PLAINTEXT.
        return SASLCredentials(
            username=settings.kafka_sasl_username,
            password=settings.kafka_sasl_password.get_secret_value(),
            mechanism=settings.kafka_sasl_mechanism,
            ssl_context=context,
        )
    if context is not None:
        return SSLCredentials(context)
    return None


def _ssl_context(settings: Settings) -> ssl.SSLContext:
    # Verifies the brokers' certificates and host names, as a managed cluster expects.
    return ssl.create_default_context(
        cafile=str(settings.kafka_ssl_ca_file) if settings.kafka_ssl_ca_file is not None else None
    )


def _client_once_the_broker_accepts(**configs: Any) -> KafkaNetClient:
    """kafka-python's ``kafka_client`` option: its own network client, built once one connection
    showed that a broker accepts this client's certificate check and credentials.

    kafka-python 3.0 retries a connection that failed its TLS handshake or SASL authentication
    until its bootstrap timeout (30 s), then raises "Unable to bootstrap" without the cause: a
    wrong password or CA looks like a broker that does not answer. It often does not even see the
    broker's refusal, which arrives with the end of the connection, whose last bytes it drops.
    aiokafka reads it; a refusal is final (Kafka's own clients give up on it too), so the client
    fails at once with the broker's reason."""
    refusal = _refusal(configs)
    if refusal is not None:
        raise refusal
    return KafkaNetClient(**configs)


def _refusal(configs: dict[str, Any]) -> KafkaError | None:
    """Why the first bootstrap server refuses a connection with these options; None when it
    accepts it, or when it could not be asked (unreachable, slow), which the client then reports."""
    server = configs["bootstrap_servers"].split(",")[0].strip()
    host, _, port = server.rpartition(":")
    # no longer than the caller would wait for its own requests (a readiness check's deadline)
    timeout_s = min(_CONNECTION_CHECK_TIMEOUT_S, configs.get("request_timeout_ms", 30_000) / 1000)

    async def connect() -> None:
        async with asyncio.timeout(timeout_s):
            connection = await create_conn(
                host,
                int(port),
                request_timeout_ms=int(timeout_s * 1000),
                security_protocol=configs["security_protocol"],
                ssl_context=configs.get("ssl_context"),
                sasl_mechanism=configs.get("sasl_mechanism"),
                sasl_plain_username=configs.get("sasl_plain_username"),
                sasl_plain_password=configs.get("sasl_plain_password"),
            )
        connection.close()

    try:
        # In a thread of its own: the caller may be running an event loop already (which this
        # blocks for at most timeout_s; the kafka-python clients block their caller anyway).
        with ThreadPoolExecutor(max_workers=1) as thread:
            thread.submit(asyncio.run, connect()).result()
    except (aiokafka_errors.SaslAuthenticationFailed, aiokafka_errors.AuthenticationFailedError) as exc:
        reason = exc.args[0] if exc.args else type(exc).__name__
        return SaslAuthenticationFailedError(
            f"{server} refused the credentials of {configs['sasl_plain_username']!r} ({configs['sasl_mechanism']}): {reason}"
        )
    except aiokafka_errors.UnsupportedSaslMechanismError:
        return UnsupportedSaslMechanismError(f"{server} does not offer the SASL mechanism {configs['sasl_mechanism']}")
    except ssl.SSLCertVerificationError as exc:
        return KafkaConnectionError(f"{server}: the broker's TLS certificate is not trusted: {exc.verify_message}")
    except Exception:  # noqa: BLE001 - anything else is the client's to retry and report
        return None
    return None
