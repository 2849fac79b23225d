"""Explicit topic creation. Faust does not create source topics, and an auto-created topic gets the
broker's default partition count and the broker's 1 MB message limit; neither is acceptable."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError

from workers.kafka_clients import make_admin
from workers.settings import Settings

log = logging.getLogger(__name__)

DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    partitions: int
    config: dict[str, str]


# The setting (environment variable) a topic config derives from, named when a topic differs.
_SETTING_OF = {"max.message.bytes": "WIREFEED_MAX_MESSAGE_BYTES", "min.insync.replicas": "WIREFEED_REPLICATION_FACTOR"}


def _in_sync(replicas: int) -> dict[str, str]:
    """With acks=all, a write is acknowledged once the in-sync replicas have it; the broker's
    default of 1 lets a lone leader acknowledge, and losing it then loses acknowledged pages. Two,
    when a topic has them: asking a topic of one replica for two would refuse every write to it."""
    return {"min.insync.replicas": str(min(2, replicas))}


def topic_specs(settings: Settings) -> list[TopicSpec]:
    limit = str(settings.max_message_bytes)
    specs = [
        # Kept two weeks so that a pipeline improvement can be replayed over recent crawls.
        TopicSpec(
            settings.topic_pages_raw,
            settings.pages_raw_partitions,
            {"max.message.bytes": limit, "retention.ms": str(14 * DAY_MS), "compression.type": "producer"},
        ),
        # Compacted: the latest version of each article (key = article id) is the topic's state,
        # so a newsroom tool can rebuild its view from offset 0. Never deleted by age: an article
        # crawled again unchanged is renewed in Redis but not published again, so a time-based
        # delete would take from the topic articles that Redis still holds. The price: the last
        # record of every article ever made stays (no tombstone is written), those of ids a new
        # pipeline version no longer makes included; a reader filters by fetched_at.
        TopicSpec(
            settings.topic_articles,
            settings.articles_partitions,
            {"max.message.bytes": limit, "cleanup.policy": "compact", "compression.type": "producer"},
        ),
        TopicSpec(
            settings.topic_dlq,
            settings.dlq_partitions,
            {"max.message.bytes": limit, "retention.ms": str(30 * DAY_MS), "compression.type": "producer"},
        ),
        # Alerts are events, not state: kept as long as a newsroom tool may need to catch up. A
        # record lives until its segment is older than retention.ms; segments roll daily, so no
        # record outlives the webhooks' delivery markers (workers/alerts/webhooks.py), whatever
        # the broker's log.roll.hours.
        TopicSpec(
            settings.topic_alerts,
            settings.alerts_partitions,
            {
                "max.message.bytes": limit, "retention.ms": str(30 * DAY_MS), "segment.ms": str(DAY_MS),
                "compression.type": "producer",
            },
        ),
        TopicSpec(
            settings.topic_alerts_dlq,
            1,
            {"max.message.bytes": limit, "retention.ms": str(30 * DAY_MS), "compression.type": "producer"},
        ),
    ]
    # Said, not left to the broker's defaults, so that a topic made otherwise is reported: a
    # compacted pages.raw would keep one crawl per URL, a compacted alerts topic outlive the
    # webhooks' delivery markers (a re-read would deliver twice), and LogAppendTime would give a
    # replay's copies the time of the copy instead of the crawl's.
    common = _in_sync(settings.replication_factor) | {"message.timestamp.type": "CreateTime"}
    return [
        TopicSpec(spec.name, spec.partitions, {"cleanup.policy": "delete"} | spec.config | common) for spec in specs
    ]


def ensure_topics(settings: Settings) -> list[str]:
    """Create missing topics; return the names created. Existing topics are left as they are, but
    a partition count or a managed config other than configured is reported: scaling depends on
    the one, size limits, durability and retention on the others, and a topic created by an
    earlier version keeps the configs it was created with."""
    admin = make_admin(settings)
    try:
        specs = topic_specs(settings)
        existing = set(admin.list_topics())
        created: list[str] = []
        for spec in specs:
            if spec.name in existing:
                continue
            try:
                admin.create_topics(
                    [NewTopic(spec.name, spec.partitions, settings.replication_factor, topic_configs=spec.config)]
                )
                created.append(spec.name)
            except TopicAlreadyExistsError:
                pass  # another worker created it between our list and our create
        kept = [spec for spec in specs if spec.name in existing]
        if kept:
            _report_drift(admin, kept, settings.replication_factor)
        return created
    finally:
        admin.close()


def _report_drift(admin: KafkaAdminClient, specs: list[TopicSpec], replication_factor: int) -> None:
    described = {d["name"]: d["partitions"] for d in admin.describe_topics([spec.name for spec in specs])}
    # "all": the values in force, the broker's defaults included (not only those set on the topic)
    configs = admin.describe_configs(
        [ConfigResource(ConfigResourceType.TOPIC, spec.name) for spec in specs], config_filter="all"
    )
    for spec in specs:
        partitions = described.get(spec.name, [])
        if len(partitions) != spec.partitions:
            log.warning("topic %s has %d partitions, settings say %d", spec.name, len(partitions), spec.partitions)
        replicas = min((len(partition["replica_nodes"]) for partition in partitions), default=replication_factor)
        if replicas != replication_factor:
            log.warning(
                "topic %s has %d replica(s) of a partition, settings say %d (WIREFEED_REPLICATION_FACTOR; "
                "kafka-reassign-partitions.sh changes it)",
                spec.name, replicas, replication_factor,
            )
        config = spec.config | _in_sync(replicas)  # what the topic's own replicas allow
        held = configs.get("topic", {}).get(spec.name, {})
        for key, wanted in config.items():
            value = held.get(key, {}).get("value")
            if value != wanted:
                # Altering it is the operator's call (it may be deliberate); this says how.
                source = f" ({_SETTING_OF[key]})" if key in _SETTING_OF else ""
                log.warning(
                    "topic %s has %s=%s, settings say %s%s (kafka-configs.sh --alter --entity-type topics "
                    "--entity-name %s --add-config %s=%s)",
                    spec.name, key, value, wanted, source, spec.name, key, wanted,
                )
