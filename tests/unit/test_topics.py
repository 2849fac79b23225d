"""The topics the worker creates, where its web server listens, how long it waits for Redis:
configuration a broker, a network or a library's defaults would otherwise decide for us."""

import pytest

from workers.app import create_app
from workers.settings import Settings
from workers.sinks import redis_store
from workers.topics import topic_specs


@pytest.mark.parametrize(("replication", "in_sync"), [(1, "1"), (2, "2"), (3, "2")])
def test_every_topic_needs_two_in_sync_replicas_to_acknowledge_when_it_has_them(replication: int, in_sync: str):
    settings = Settings(_env_file=None, replication_factor=replication)
    specs = topic_specs(settings)
    assert {spec.name for spec in specs} == {
        settings.topic_pages_raw, settings.topic_articles, settings.topic_dlq, settings.topic_alerts, settings.topic_alerts_dlq,
    }
    for spec in specs:
        assert spec.config["min.insync.replicas"] == in_sync, spec.name
        assert spec.config["max.message.bytes"] == str(settings.max_message_bytes), spec.name


@pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0"])
def test_the_web_server_listens_where_the_settings_say(host: str, tmp_path):
    app = create_app(Settings(_env_file=None, web_host=host, data_dir=tmp_path))
    assert app.conf.web_bind == host


def test_the_redis_client_takes_its_socket_timeouts_from_the_settings():
    """The options only; a hung Redis failing a call after them is test_outages.py's "hung" case."""
    client = redis_store.connect(Settings(_env_file=None, redis_timeout_s=2.5))
    options = client.connection_pool.connection_kwargs
    assert (options["socket_timeout"], options["socket_connect_timeout"]) == (2.5, 2.5)


def test_the_worker_is_configured_by_its_settings_alone_not_by_faust_s_own_environment(tmp_path, monkeypatch):
    # Faust reads unprefixed variables over what create_app passes: a ConfigMap's BROKER_URL moved
    # the worker to another cluster while every other command used WIREFEED_KAFKA_BOOTSTRAP, and
    # a Kubernetes Service named "web" (WEB_PORT=tcp://10.96.12.7:80) made every pod fail to start.
    for name, value in {
        "BROKER_URL": "kafka://kafka-staging:9092", "PRODUCER_ACKS": "1", "STREAM_WAIT_EMPTY": "true",
        "WEB_PORT": "tcp://10.96.12.7:80", "APP_VERSION": "1.4.2", "CONSUMER_MAX_FETCH_SIZE": "1048576",
    }.items():
        monkeypatch.setenv(name, value)
    settings = Settings(_env_file=None, kafka_bootstrap="kafka-prod:9092", data_dir=tmp_path)
    conf = create_app(settings).conf
    assert [str(url) for url in conf.broker] == ["kafka://kafka-prod:9092"]
    assert (conf.producer_acks, conf.stream_wait_empty, conf.web_port) == (-1, False, settings.web_port)
    assert conf.consumer_max_fetch_size == settings.max_message_bytes
