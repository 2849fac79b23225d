"""The one settings object. Built at the entry point (CLI, tests, benchmarks) and passed down.

Every field can be set from the environment with the prefix ``WIREFEED_`` (``WIREFEED_KAFKA_BOOTSTRAP``,
``WIREFEED_REDIS_URL`` ...) or from a ``.env`` file. Nothing else in the package reads ``os.environ``.
"""

from __future__ import annotations

import inspect
import ipaddress
import os
import re
from functools import cache
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qs, urlsplit

import redis.asyncio.connection
import redis.connection
from pydantic import Field, FilePath, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from workers import PIPELINE_VERSION
from workers.logs import LogFormat

MIB = 1024 * 1024

# One bootstrap server: a host name or IPv4 address, or an IPv6 address in brackets, and its port.
_KAFKA_SERVER = re.compile(r"(?:(?P<name>[A-Za-z0-9._-]+)|\[(?P<ipv6>[^]]+)\]):(?P<port>[0-9]{1,5})")
# Query options of a Redis URL whose value is a secret: the rest of one with an unencoded "&" in it
# is read as the names of further options, which a message must then not show.
_SECRET_REDIS_OPTIONS = frozenset({"password", "ssl_password"})


class Settings(BaseSettings):
    # hide_input_in_errors: a validation error would otherwise print every input, secrets included.
    # allow_inf_nan: "inf" days or seconds passed every bound and overflowed where first used
    # (a worker that died at start with a traceback)
    model_config = SettingsConfigDict(
        env_prefix="WIREFEED_", env_file=".env", extra="ignore", hide_input_in_errors=True, allow_inf_nan=False
    )

    # --- services -------------------------------------------------------------------------
    kafka_bootstrap: str = "127.0.0.1:9092"
    # How every Kafka client connects (workers/kafka_clients.py); a managed cluster usually wants
    # SASL_SSL. SASL needs the mechanism, user name and password; TLS trusts the CAs of
    # kafka_ssl_ca_file (PEM) when it is set, the system's otherwise.
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_ca_file: FilePath | None = None
    # "json": one JSON object a line, for a log collector (workers/logs.py)
    log_format: LogFormat = "text"
    redis_url: SecretStr = SecretStr("redis://127.0.0.1:6379/0")
    # A Redis that hangs answers nothing: after this long a call fails as an outage and is
    # retried (redis-py < 8 would wait for ever by default).
    redis_timeout_s: float = Field(default=5.0, gt=0, le=3600)

    # --- topics ---------------------------------------------------------------------------
    topic_pages_raw: str = "pages.raw"
    topic_articles: str = "articles"
    topic_dlq: str = "pages.dlq"
    pages_raw_partitions: int = Field(default=4, ge=1)
    articles_partitions: int = Field(default=4, ge=1)
    dlq_partitions: int = Field(default=1, ge=1)
    replication_factor: int = Field(default=1, ge=1)
    # Real pages exceed Kafka's 1 MB default. The same limit is set on the producer, on the
    # topics we create and on the local broker, so a page is either accepted end to end or
    # refused at the producer with a clear error, never half-way.
    max_message_bytes: int = Field(default=32 * MIB, ge=1 * MIB)
    compression: str = Field(default="zstd", pattern="^(zstd|lz4|gzip|none)$")

    # --- the Faust worker -----------------------------------------------------------------
    # The consumer group and the prefix of every internal topic. It carries the pipeline
    # version so that a new pipeline (or a replay group) never re-reads another's state.
    app_name: str = "wirefeed"
    # The code's PIPELINE_VERSION. Raising it here forces a full reprocess under a new consumer
    # group (stored records of a lower version are replaced); lowering it makes every write stale.
    pipeline_version: int = Field(default=PIPELINE_VERSION, ge=1)
    web_port: int = Field(default=6066, ge=1, le=65535)
    web_host: str = "127.0.0.1"
    data_dir: Path = Path(".wirefeed/worker")
    # at most Faust's broker request timeout (90 s): above it the worker's consumer is refused at start
    session_timeout_s: float = Field(default=10.0, ge=6.0, le=90.0)
    commit_interval_s: float = Field(default=1.0, gt=0)
    # How long the consumer may go without fetching before it leaves its group (Faust's default).
    max_poll_interval_s: float = Field(default=1000.0, ge=1.0)
    # Pages a worker processes at once. Acks happen strictly in offset order per partition; what
    # this bounds (raw records in memory, redelivery after a crash) is in README's settings table.
    max_in_flight: int = Field(default=16, ge=1)

    # --- extraction -----------------------------------------------------------------------
    extraction_processes: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1)
    extraction_timeout_s: float = Field(default=20.0, gt=0)
    # Address-space cap (RLIMIT_AS) of each extraction process. The worker refuses to start when
    # it is above its own hard limit or not above what a warm extraction process already maps
    # (about 330 MB, whatever the CPU count: measured at start, workers/pool.py check_settings).
    extraction_memory_limit_mb: int = Field(default=2048, ge=64)
    # A worker process is replaced after this many pages: lxml keeps memory it never returns.
    extraction_tasks_per_process: int = Field(default=500, ge=1)
    # Pages larger than this (decoded HTML) are dead-lettered instead of extracted: no news
    # article needs it, and trafilatura's run time grows super-linearly on such pages.
    max_html_bytes: int = Field(default=8 * MIB, ge=64 * 1024)
    # At least 1: an article's text is never empty (the articles schema's minLength). With 0, a
    # page whose every line was removed as chrome (a list of related links) was published with
    # the text "".
    min_text_chars: int = Field(default=80, ge=1)

    # --- site-learned chrome (workers/chrome_index.py) -------------------------------------
    # A body block on at least this many distinct pages of a domain, and on at least this share
    # of them (decayed), is that site's chrome; a domain with fewer pages has none (cold start).
    chrome_min_pages: int = Field(default=3, ge=2)
    chrome_min_share: float = Field(default=0.05, gt=0, le=1)
    chrome_half_life_days: float = Field(default=14.0, gt=0)
    chrome_max_blocks: int = Field(default=5000, ge=1)
    chrome_max_pages: int = Field(default=5000, ge=1)
    chrome_max_known: int = Field(default=1000, ge=1)
    chrome_ttl_days: float = Field(default=30.0, gt=0)
    # The guard on a page (workers/stages/chrome.py): known chrome takes no block longer than
    # this (a long recurring block is syndicated copy more often than a widget), and nothing when
    # it would take more than this share of the body (the statistics are wrong for that page).
    chrome_max_block_chars: int = Field(default=600, ge=1)
    chrome_max_share: float = Field(default=0.5, gt=0, le=1)

    # --- Redis layout ---------------------------------------------------------------------
    redis_prefix: str = "wf"
    article_ttl_days: float = Field(default=30.0, gt=0)
    page_status_ttl_days: float = Field(default=7.0, gt=0)
    time_index_max_articles: int = Field(default=2_000_000, ge=1)
    domain_index_max_articles: int = Field(default=20_000, ge=1)
    # A transient Redis or Kafka outage is retried, never dead-lettered: the page is fine.
    retry_backoff_max_s: float = Field(default=30.0, gt=0)

    # --- deduplication and stories (workers/dedup/index.py) --------------------------------
    dedup_window_days: float = Field(default=7.0, gt=0)
    # MinHash Jaccard estimate at or above which another URL's content is a near-duplicate;
    # chosen on one half of bench/dedup.py's pairs, checked on the other.
    dedup_threshold: float = Field(default=0.35, gt=0, le=1)
    dedup_bands: int = Field(default=32, ge=1)
    dedup_rows: int = Field(default=2, ge=1)
    # Index hash buckets: about (articles per window x 33) / 100 keeps each one a small listpack.
    dedup_buckets: int = Field(default=16384, ge=1)
    story_window_days: float = Field(default=3.0, gt=0)
    story_half_life_hours: float = Field(default=24.0, gt=0)
    story_threshold: float = Field(default=0.30, gt=0, le=1)
    story_df_refresh_s: float = Field(default=60.0, gt=0)

    # --- alerts ---------------------------------------------------------------------------
    topic_alerts: str = "alerts"
    topic_alerts_dlq: str = "alerts.dlq"
    alerts_partitions: int = Field(default=2, ge=1)
    # YAML or JSON (schemas/rules.v1.schema.json); None: no rules, no alerts.
    alert_rules_path: Path | None = None
    alert_rules_check_interval_s: float = Field(default=5.0, gt=0)
    # Webhook HMAC keys by the name a rules file gives them (JSON in the environment:
    # WIREFEED_ALERT_WEBHOOK_SECRETS='{"newsdesk": "..."}'); never in the rules file.
    alert_webhook_secrets: dict[str, SecretStr] = Field(default_factory=dict)
    # Webhooks on loopback, link-local, private, unspecified or multicast addresses (literal, or
    # what the host resolves to when connecting) are refused unless this is on: for deployments
    # whose newsroom tools are on an internal network. Off, whoever writes the rules file cannot
    # make the worker POST to the cloud's metadata endpoint or an internal admin port.
    alert_webhook_allow_private_addresses: bool = False
    # Longer than the pages.raw retention (the replay window): a replay never fires again.
    alert_fired_ttl_days: float = Field(default=30.0, gt=0)
    alert_max_record_age_s: float = Field(
        default=6 * 3600.0,
        gt=0,
        description=(
            "Alerts are for news as it arrives. A page whose pages.raw record is older than this when "
            "a worker reads it, and is not a replay's copy, is processed, stored and published but "
            "fires no alert: a new pipeline version's consumer group reads the whole retained log "
            "(14 days) from its start, and would otherwise fire newly added rules, or alerts whose "
            "dedup and story state expired meanwhile, for pages up to 14 days old. A replay with "
            "--alerts still fires (the operator asked)."
        ),
    )
    alert_max_article_age_s: float = Field(
        default=86400.0,
        gt=0,
        description=(
            "An article whose latest declared date (published or modified) is older than this when "
            "its page was fetched fires no alert: old news found today, as when a crawler reaches "
            "an archive or a newly added outlet's back catalogue. Articles that declare no date "
            "are not held back. Measured against the page's fetched_at, so a replay decides the same."
        ),
    )
    alert_stream_maxlen: int = Field(default=100_000, ge=1)
    # A failing webhook delivery is retried for this long from its first failed attempt (a
    # receiver being redeployed or restarted loses nothing), then dead-lettered to alerts.dlq.
    webhook_give_up_after_s: float = Field(default=30 * 60.0, gt=0)
    webhook_backoff_base_s: float = Field(default=1.0, gt=0)
    webhook_backoff_max_s: float = Field(default=60.0, gt=0)
    webhook_timeout_s: float = Field(default=10.0, gt=0)
    # Attempts in flight per webhook and worker (and alerts being queued at once per worker):
    # each webhook has its own, so a receiver that is slow or down holds up only its deliveries.
    webhook_max_in_flight: int = Field(default=16, ge=1)
    # How long the outcome of a delivery (delivered, dead-lettered) is remembered: longer than
    # the alerts topic keeps a record (retention.ms + segment.ms, workers/topics.py), so that a
    # re-read of the topic never delivers an alert again.
    webhook_marker_ttl_days: float = Field(default=45.0, gt=0)

    # --- local stack (deploy/local) -------------------------------------------------------
    stack_dir: Path = Path(".wirefeed/stack")
    kafka_version: str = "4.1.2"

    @model_validator(mode="after")
    def _lsh_fits_the_signature(self) -> Settings:
        if self.dedup_bands * self.dedup_rows > 128:
            raise ValueError("dedup_bands x dedup_rows must be at most 128 (the MinHash signature length)")
        return self

    @model_validator(mode="after")
    def _kafka_security_is_complete(self) -> Settings:
        # The messages name settings, never their values: the password must not reach a log.
        protocol = self.kafka_security_protocol
        sasl = {
            "kafka_sasl_mechanism": self.kafka_sasl_mechanism,
            "kafka_sasl_username": self.kafka_sasl_username,
            "kafka_sasl_password": self.kafka_sasl_password.get_secret_value() if self.kafka_sasl_password else None,
        }
        if self.kafka_uses_sasl:
            if missing := [name for name, value in sasl.items() if not value]:
                raise ValueError(f"kafka_security_protocol {protocol} needs {', '.join(missing)}")
        elif given := [name for name, value in sasl.items() if value]:
            # Ignoring them would send no credentials to a broker that may want them.
            raise ValueError(
                f"{', '.join(given)} set, but kafka_security_protocol {protocol} does not use SASL "
                "(SASL_SSL and SASL_PLAINTEXT do)"
            )
        if self.kafka_ssl_ca_file is not None and not self.kafka_uses_tls:
            raise ValueError(
                f"kafka_ssl_ca_file set, but kafka_security_protocol {protocol} does not use TLS (SSL and SASL_SSL do)"
            )
        return self

    @field_validator("kafka_bootstrap")
    @classmethod
    def _kafka_bootstrap_is_servers_and_ports(cls, value: str) -> str:
        # Unchecked, a typo in a port ended the first command that connected in a traceback
        # ("invalid literal for int()"), and a server without its port `wirefeed stack` in an
        # IndexError. Every server has its port: the clients would take 9092 for a missing one, the
        # local stack must know it. Not secret: commands print it in their errors.
        for server in value.split(","):
            match = _KAFKA_SERVER.fullmatch(server)
            if match is None or not 1 <= int(match["port"]) <= 65535 or (
                match["ipv6"] is not None and not _is_ipv6_address(match["ipv6"])
            ):
                raise ValueError(
                    f"kafka_bootstrap must be HOST:PORT servers separated by commas, ports 1-65535, an IPv6 "
                    f"address in brackets ([::1]:9092): {server!r} is not one"
                )
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url_parses(cls, value: SecretStr) -> SecretStr:
        # Parsed here, once, with a message that never quotes it: unparsed, its first use raised
        # "Port could not be cast to integer value as '<the password up to its />'" (readiness
        # probe output, pod events) for a password with an unencoded / # ? or @.
        try:
            parts = urlsplit(value.get_secret_value())
            parts.port
        except ValueError:
            parts = None
        # A host's URL has at most a database number for its path: an "@" or "/" of the password
        # left unencoded moves the rest there, and a part of the password became the host shown
        # in messages ("Redis at <part of it>:6379").
        # A "#" or "?" of the password cuts the URL there: the digits before it became the port,
        # shown in messages, and the rest a fragment, or a query holding the "@" and the host.
        if parts is None or (parts.scheme in ("redis", "rediss") and (
            not re.fullmatch(r"/?\d*", parts.path) or parts.fragment or "@" in parts.query or not parts.hostname
        )):
            raise ValueError(
                "redis_url does not parse as a URL: percent-encode the characters / # ? @ and : in the password"
            )
        if parts.scheme not in ("redis", "rediss", "unix"):
            raise ValueError("redis_url must start with redis://, rediss:// or unix://")
        # redis-py reads its query options only when it connects: a value not of its option's type
        # (?socket_timeout=5s) ended the worker, the readiness probe and every command in a
        # traceback, and an option it does not know (?sockettimeout=5) in a TypeError.
        try:
            options = redis.connection.parse_url(value.get_secret_value())
        except ValueError as exc:
            # redis-py's message names the option, never its value: "Invalid value for 'db' in connection URL."
            raise ValueError(f"redis-py cannot read redis_url: {exc}") from None
        if unknown := sorted(set(options) - {"connection_class"} - _redis_url_options(parts.scheme)):
            named = "" if _SECRET_REDIS_OPTIONS & set(parse_qs(parts.query)) else f": {', '.join(unknown)}"
            raise ValueError(f"redis_url has query options redis-py does not know{named}")
        return value

    @field_validator("redis_prefix")
    @classmethod
    def _no_colon_in_prefix(cls, value: str) -> str:
        if not value or ":" in value:
            raise ValueError("redis_prefix must be non-empty and contain no ':'")
        return value

    @property
    def group_id(self) -> str:
        return f"{self.app_name}-v{self.pipeline_version}"

    @property
    def kafka_uses_sasl(self) -> bool:
        return self.kafka_security_protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    @property
    def kafka_uses_tls(self) -> bool:
        return self.kafka_security_protocol in ("SSL", "SASL_SSL")

    @property
    def kafka_port(self) -> int:
        return int(self.kafka_bootstrap.rsplit(":", 1)[1])

    @property
    def redis_host(self) -> str:
        return urlsplit(self.redis_url.get_secret_value()).hostname or "127.0.0.1"

    @property
    def redis_port(self) -> int:
        return urlsplit(self.redis_url.get_secret_value()).port or 6379

    @property
    def redis_address(self) -> str:
        """Where Redis is, for messages: never the URL, which may carry the password."""
        url = urlsplit(self.redis_url.get_secret_value())
        if url.scheme == "unix":
            return url.path
        host = f"[{self.redis_host}]" if ":" in self.redis_host else self.redis_host
        return f"{host}:{self.redis_port}"


def _is_ipv6_address(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


@cache
def _redis_url_options(scheme: str) -> frozenset[str]:
    """The options a Redis URL of ``scheme`` may give: those its connections take, in redis-py's
    blocking client and in its asyncio one (the worker's), and those of the pool that redis-py
    types (max_connections; its others take objects)."""
    connection_classes = {
        "redis": (redis.connection.Connection, redis.asyncio.connection.Connection),
        "rediss": (redis.connection.SSLConnection, redis.asyncio.connection.SSLConnection),
        "unix": (redis.connection.UnixDomainSocketConnection, redis.asyncio.connection.UnixDomainSocketConnection),
    }[scheme]
    blocking, asynchronous = (_keywords(connection_class) for connection_class in connection_classes)
    pool = _keywords(redis.connection.ConnectionPool) & _keywords(redis.asyncio.connection.ConnectionPool)
    return frozenset((blocking & asynchronous) | (pool & set(redis.connection.URL_QUERY_ARGUMENT_PARSERS)))


def _keywords(cls: type) -> set[str]:
    """The keyword arguments ``cls()`` takes, following each ``**kwargs`` up its bases."""
    names: set[str] = set()
    for base in cls.__mro__:
        if "__init__" not in vars(base):
            continue
        parameters = inspect.signature(vars(base)["__init__"]).parameters.values()
        names |= {p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)} - {"self"}
        if not any(p.kind is p.VAR_KEYWORD for p in parameters):
            break
    return names
