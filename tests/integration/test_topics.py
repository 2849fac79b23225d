"""Topic creation on the real broker: what it creates, and what it says of topics it finds; and
the producer the worker writes to them with."""

from __future__ import annotations

import logging

import pytest
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewTopic
from worker_harness import wait_for

from workers.app import create_app
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
    admin = KafkaAdminClient(**kafka_client_options(settings))
    try:
        admin.create_topics([NewTopic(alerts.name, alerts.partitions + 1, settings.replication_factor, topic_configs=older)])
    finally:
        admin.close()
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



def test_articles_are_compacted_and_deleted_once_redis_no_longer_keeps_them(settings: Settings):
    settings = settings.model_copy(update={"article_ttl_days": 30.0})
    ensure_topics(settings)
    wanted = {"cleanup.policy": "compact,delete", "retention.ms": str(30 * 24 * 3600 * 1000)}
    wait_for(
        lambda: {key: configs_in_force(settings, [settings.topic_articles])[settings.topic_articles].get(key)
                 for key in wanted} == wanted,
        timeout_s=30, what="the articles topic compacted and deleted after 30 days",
    )


def test_an_articles_topic_that_is_only_compacted_is_reported_with_the_settings_behind_it(
    settings: Settings, caplog: pytest.LogCaptureFixture
):
    (articles,) = [spec for spec in topic_specs(settings) if spec.name == settings.topic_articles]
    # as an earlier version created it: compacted, kept for ever
    older = {key: value for key, value in articles.config.items() if key != "retention.ms"} | {
        "cleanup.policy": "compact", "retention.ms": "-1",
    }
    admin = KafkaAdminClient(**kafka_client_options(settings))
    try:
        admin.create_topics([NewTopic(articles.name, articles.partitions, settings.replication_factor, topic_configs=older)])
    finally:
        admin.close()
    wait_for(
        lambda: configs_in_force(settings, [articles.name])[articles.name].get("cleanup.policy") == "compact",
        timeout_s=30, what="the older topic listed with its configs",
    )

    with caplog.at_level(logging.WARNING, logger="workers.topics"):
        ensure_topics(settings)
    warnings = sorted(r.getMessage() for r in caplog.records if r.name == "workers.topics")
    command = f"kafka-configs.sh --alter --entity-type topics --entity-name {articles.name} --add-config"
    assert warnings == [
        f"topic {articles.name} has cleanup.policy=compact, settings say compact,delete "
        f"({command} cleanup.policy=[compact,delete])",
        f"topic {articles.name} has retention.ms=-1, settings say {articles.config['retention.ms']} "
        f"(WIREFEED_ARTICLE_TTL_DAYS) ({command} retention.ms={articles.config['retention.ms']})",
    ]
    assert configs_in_force(settings, [articles.name])[articles.name]["cleanup.policy"] == "compact"  # left as it is

async def test_the_workers_producer_is_idempotent_so_a_retry_the_broker_already_wrote_is_not_a_duplicate(
    settings: Settings,
):
    ensure_topics(settings)
    app = create_app(settings)
    await app.producer.start()
    try:
        await app.producer.send_and_wait(settings.topic_articles, b"article", b"{}", None, None, None)
        # The broker gives an idempotent producer an id, which each of its batches carries with
        # a sequence number; a retry of a batch it already has is acknowledged, not written again.
        idempotence = app.producer._producer._txn_manager
        assert idempotence is not None and idempotence.has_pid() and idempotence.producer_id >= 0
    finally:
        await app.producer.stop()
