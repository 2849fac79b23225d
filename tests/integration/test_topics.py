"""Topic creation on the real broker: what it creates, and what it says of topics it finds; and
the producer the worker writes to them with."""

from __future__ import annotations

import logging

import pytest
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewTopic
from worker_harness import wait_for

from workers.kafka_clients import kafka_client_options
from workers.settings import Settings
from workers.topics import ensure_topics, topic_specs

pytestmark = pytest.mark.integration

WEEK_MS = str(7 * 24 * 3600 * 1000)


def configs_in_force(settings: Settings, names: list[str]) -> dict[str, dict[str, str]]:
    """Each topic's configs as the broker applies them (its defaults included); empty for a
    topic the broker does not list yet (metadata reaches it a moment after a creation)."""
    admin = KafkaAdminClient(**kafka_client_options(settings))
    try:
        listed = set(admin.list_topics())
        found = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name) for name in names if name in listed], config_filter="all"
        ) if listed & set(names) else {}
    finally:
        admin.close()
    topics = found.get("topic", {})
    return {name: {key: entry["value"] for key, entry in topics.get(name, {}).items()} for name in names}


def create_as_made_elsewhere(settings: Settings, name: str, partitions: int, replicas: int, config: dict[str, str]) -> None:
    """A topic as an earlier version, an operator or a first install made it."""
    admin = KafkaAdminClient(**kafka_client_options(settings))
    try:
        admin.create_topics([NewTopic(name, partitions, replicas, topic_configs=config)])
    finally:
        admin.close()


def test_topics_are_created_with_every_config_the_settings_give(settings: Settings):
    specs = topic_specs(settings)
    assert sorted(ensure_topics(settings)) == sorted(spec.name for spec in specs)

    def as_configured() -> bool:
        held = configs_in_force(settings, [spec.name for spec in specs])
        return all({key: held[spec.name].get(key) for key in spec.config} == spec.config for spec in specs)

    wait_for(as_configured, timeout_s=30, what="the new topics with their configs")
    assert ensure_topics(settings) == []


def test_a_topic_found_with_other_configs_is_left_as_it_is_and_reported(
    settings: Settings, caplog: pytest.LogCaptureFixture
):
    (alerts,) = [spec for spec in topic_specs(settings) if spec.name == settings.topic_alerts]
    # as an earlier version created it: weekly segments, one partition more
    older = alerts.config | {"segment.ms": WEEK_MS}
    create_as_made_elsewhere(settings, alerts.name, alerts.partitions + 1, settings.replication_factor, older)
    wait_for(
        lambda: configs_in_force(settings, [alerts.name])[alerts.name].get("segment.ms") == WEEK_MS,
        timeout_s=30, what="the older topic listed with its configs",
    )

    with caplog.at_level(logging.WARNING, logger="workers.topics"):
        created = ensure_topics(settings)
    assert alerts.name not in created
    warnings = sorted(r.getMessage() for r in caplog.records if r.name == "workers.topics")
    assert warnings == sorted([
        f"topic {alerts.name} has {alerts.partitions + 1} partitions, settings say {alerts.partitions}",
        f"topic {alerts.name} has segment.ms={WEEK_MS}, settings say {alerts.config['segment.ms']} "
        f"(kafka-configs.sh --alter --entity-type topics --entity-name {alerts.name} --add-config "
        f"segment.ms={alerts.config['segment.ms']})",
    ])
    assert configs_in_force(settings, [alerts.name])[alerts.name]["segment.ms"] == WEEK_MS  # left as it is



def test_a_topic_of_fewer_replicas_than_configured_is_reported_and_never_told_to_want_more_in_sync(
    settings: Settings, caplog: pytest.LogCaptureFixture
):
    # Topics made with one replica (a first install on one broker), settings saying three: the
    # single replica went unmentioned, and every topic was told to set min.insync.replicas=2,
    # which on a topic of one replica refuses every write. An alerts topic made compacted and
    # stamped by the broker was not reported at all.
    (alerts,) = [spec for spec in topic_specs(settings) if spec.name == settings.topic_alerts]
    made_otherwise = alerts.config | {"cleanup.policy": "compact", "message.timestamp.type": "LogAppendTime"}
    create_as_made_elsewhere(settings, alerts.name, alerts.partitions, 1, made_otherwise)
    ensure_topics(settings.model_copy(update={"replication_factor": 1}))
    wait_for(
        lambda: configs_in_force(settings, [alerts.name])[alerts.name].get("cleanup.policy") == "compact",
        timeout_s=30, what="the topic listed with its configs",
    )

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="workers.topics"):
        assert ensure_topics(settings.model_copy(update={"replication_factor": 3})) == []
    warnings = sorted(r.getMessage() for r in caplog.records if r.name == "workers.topics")
    command = f"kafka-configs.sh --alter --entity-type topics --entity-name {alerts.name} --add-config"
    assert [w for w in warnings if "replica(s)" in w] == sorted(
        f"topic {spec.name} has 1 replica(s) of a partition, settings say 3 (WIREFEED_REPLICATION_FACTOR; "
        "kafka-reassign-partitions.sh changes it)"
        for spec in topic_specs(settings)
    )
    assert [w for w in warnings if "replica(s)" not in w] == [
        f"topic {alerts.name} has cleanup.policy=compact, settings say delete ({command} cleanup.policy=delete)",
        f"topic {alerts.name} has message.timestamp.type=LogAppendTime, settings say CreateTime "
        f"({command} message.timestamp.type=CreateTime)",
    ]


def test_articles_are_compacted_and_never_deleted_by_age(settings: Settings):
    """An article crawled again unchanged is renewed in Redis, not published again: deleted by
    age (compact,delete), it left the topic while Redis still held it."""
    ensure_topics(settings)
    wait_for(
        lambda: configs_in_force(settings, [settings.topic_articles])[settings.topic_articles].get("cleanup.policy")
        == "compact",
        timeout_s=30, what="the articles topic compacted only",
    )


def test_a_topic_whose_config_differs_is_reported_with_the_setting_behind_it_and_left_alone(
    settings: Settings, caplog: pytest.LogCaptureFixture
):
    (articles,) = [spec for spec in topic_specs(settings) if spec.name == settings.topic_articles]
    # as an operator changed it: deleted by age too, and a smaller record limit
    changed = articles.config | {"cleanup.policy": "delete", "max.message.bytes": "1048576"}
    create_as_made_elsewhere(settings, articles.name, articles.partitions, settings.replication_factor, changed)
    wait_for(
        lambda: configs_in_force(settings, [articles.name])[articles.name].get("cleanup.policy") == "delete",
        timeout_s=30, what="the changed topic listed with its configs",
    )

    with caplog.at_level(logging.WARNING, logger="workers.topics"):
        ensure_topics(settings)
    warnings = sorted(r.getMessage() for r in caplog.records if r.name == "workers.topics")
    command = f"kafka-configs.sh --alter --entity-type topics --entity-name {articles.name} --add-config"
    assert warnings == [
        f"topic {articles.name} has cleanup.policy=delete, settings say compact ({command} cleanup.policy=compact)",
        f"topic {articles.name} has max.message.bytes=1048576, settings say {articles.config['max.message.bytes']} "
        f"(WIREFEED_MAX_MESSAGE_BYTES) ({command} max.message.bytes={articles.config['max.message.bytes']})",
    ]
    assert configs_in_force(settings, [articles.name])[articles.name]["cleanup.policy"] == "delete"  # left as it is
