"""What a worker tells its operators: ``GET /metrics`` on its Faust web server, in Prometheus'
text format (one scrape target per worker; its port is ``web_port``).

Every page handled counts once in ``wirefeed_pages_total``, labelled with the stage and reason
that decided it (``sink``/``new`` for a kept page, ``extract``/``timeout`` for a dead letter...):
the same codes as ``pages.dlq`` and the page outcomes in Redis, a fixed set, so the label
cardinality is bounded. The histograms say where the time goes (extraction against the whole
page) and how far behind the input the worker runs (``wirefeed_page_delay_seconds``: from the
record's timestamp to its outcome; a replay's copies keep the original's timestamp, so they are not
observed there: a replay of last week would read as a week of delay). Outages fail no page: pages
wait for Redis, Kafka or the extraction pool, and the delay histogram, observed when a page is
done, shows nothing meanwhile. What shows a stall as it happens is the age of the oldest record
not yet acknowledged (``wirefeed_oldest_unacknowledged_seconds``), and the consumer group's lag.

Each worker has its own registry, not the process-global one: a test or a benchmark can run
several pipelines in one process without their counts mixing.
"""

from __future__ import annotations

from collections import Counter as Tally
from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

if TYPE_CHECKING:
    from workers.acks import OrderedAcks

# Extraction is bounded by extraction_timeout_s (20 s by default); a page's whole handling can
# also wait for an outage, hence the longer tail.
_EXTRACTION_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40)
_PAGE_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80, 300)
_DELAY_BUCKETS = (0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 24 * 3600, 7 * 24 * 3600)

CONTENT_TYPE = CONTENT_TYPE_LATEST


class PipelineMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.pages = Counter(
            "wirefeed_pages",
            "Pages handled, by outcome and by the stage and reason that decided it.",
            ["outcome", "stage", "reason"],
            registry=self.registry,
        )
        self.dead_letters = Counter(
            "wirefeed_dead_letters",
            "Records written to the pages dead-letter topic, by stage and reason (alerts that failed "
            "for a kept page included).",
            ["stage", "reason"],
            registry=self.registry,
        )
        self.articles_withdrawn = Counter(
            "wirefeed_articles_withdrawn",
            "Articles withdrawn because a re-crawl of their page answered 404, 410 or 451, by that "
            "status (published again with 'withdrawn'; a redelivery or replay counts nothing).",
            ["http_status"],
            registry=self.registry,
        )
        self.articles_restored = Counter(
            "wirefeed_articles_restored",
            "Withdrawn articles made current again by a later crawl of their page with the same content "
            "(one with another content is an update).",
            registry=self.registry,
        )
        self.chrome_withheld = Counter(
            "wirefeed_chrome_withheld",
            "Kept pages whose known site chrome was left in by the guard: it would have taken more "
            "than half of the body (a site with many such pages has wrong statistics, such as one "
            "article counted under many URLs) or left it too short (a short flash).",
            registry=self.registry,
        )
        self.alerts_fired = Counter(
            "wirefeed_alerts_fired", "Alerts fired for the first time.", registry=self.registry
        )
        self.alerts_suppressed = Counter(
            "wirefeed_alerts_suppressed",
            "Alerts the rules matched on a page whose alerts were not fired (already fired before or "
            "not), by reason: replay (a replay's copy, without --alerts), stale_record (a record "
            "older than alert_max_record_age_s when read, as after a pipeline version bump) or "
            "stale_article (an article dated more than alert_max_article_age_s before it was fetched).",
            ["reason"],
            registry=self.registry,
        )
        self.webhook_attempts = Counter(
            "wirefeed_webhook_attempts",
            "Webhook delivery attempts by webhook and what followed: delivered, retry (queued for "
            "later), dead_lettered, or letter_lost (given up and alerts.dlq refused even a stripped "
            "letter: only the logs and the alerts topic still have it); with webhook \"\", "
            "unreadable_alert: a record of the alerts topic that is not an alert, dead-lettered.",
            ["webhook", "outcome"],
            registry=self.registry,
        )
        self.extraction_seconds = Histogram(
            "wirefeed_extraction_seconds",
            "Time from handing a page to the extraction pool to its result, waiting for a free "
            "process included.",
            buckets=_EXTRACTION_BUCKETS,
            registry=self.registry,
        )
        self.page_seconds = Histogram(
            "wirefeed_page_seconds",
            "Time to handle a page, from decoding to its recorded outcome.",
            buckets=_PAGE_BUCKETS,
            registry=self.registry,
        )
        self.page_delay_seconds = Histogram(
            "wirefeed_page_delay_seconds",
            "Time from the input record's timestamp to the page's outcome (live records; not replay copies).",
            buckets=_DELAY_BUCKETS,
            registry=self.registry,
        )
        self.unacknowledged = Gauge(
            "wirefeed_unacknowledged",
            "Records an agent (pages, webhooks) has taken and not yet acknowledged: being handled, "
            "waiting for an outage to pass, or finished behind a slower record of their partition.",
            ["agent"],
            registry=self.registry,
        )
        self.oldest_unacknowledged_seconds = Gauge(
            "wirefeed_oldest_unacknowledged_seconds",
            "How long the oldest record an agent has not acknowledged has been in this worker: "
            "grows while pages wait for Redis, Kafka or the extraction pool, or one is stuck; "
            "commits stop meanwhile. 0 when none is unacknowledged.",
            ["agent"],
            registry=self.registry,
        )

    def watch_unacknowledged(self, agent: str, acks: OrderedAcks[Any]) -> None:
        """Read the gauges of ``agent`` from its acknowledgement state at each scrape."""
        self.unacknowledged.labels(agent).set_function(lambda: acks.unacknowledged)
        self.oldest_unacknowledged_seconds.labels(agent).set_function(acks.oldest_age_s)

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def pages_by_outcome(self) -> dict[str, int]:
        """Pages handled so far by outcome (what a stopping worker logs)."""
        totals: Tally[str] = Tally()
        for metric in self.pages.collect():
            for sample in metric.samples:
                if sample.name == "wirefeed_pages_total":
                    totals[sample.labels["outcome"]] += int(sample.value)
        return dict(totals)
