"""``wirefeed replay``: reprocess crawled pages of a time or offset range.

A replay copies the records of the range (key, value, headers, timestamp) back into the
pipeline's input topic, so that the live workers, with their extraction pool, do the work. Each
copy carries two headers: ``wirefeed-replay: <replay id>`` and ``wirefeed-replay-alerts: 0|1``.
The pipeline reads them (:meth:`ReplayMarker.from_headers`) and suppresses alerts unless the
replay asked for them; it needs no other special case, because its writes are idempotent: an
article is replaced only by a newer pipeline version or changed content, and the ``articles``
topic gets only what changed. Changed content includes a different extraction: a page first
processed during its site's chrome cold start comes out cleaner once the chrome is learned, and
its copy is stored and published as an update. Withdrawals too are decided on the pages' own
``fetched_at`` against the stored version's (workers/sinks/redis_store.py): a replayed page that
answered 404, 410 or 451 withdraws nothing a newer crawl stored, a replayed older 2xx crawl does not
restore an article withdrawn after it, and the copy of a withdrawal already made publishes nothing.

A pipeline version bump needs no replay: the new version's consumer group reads the retained input
from its start by itself (a replay after it processes the same pages twice), and fires no alert for
records older than ``alert_max_record_age_s`` (alerts are for news as it arrives).

* Per-key order: a copy keeps its key, and when the source is the input topic itself, its
  partition too (a crawler's partitioner need not be kafka-python's).
* The original record time is kept: a page outcome in Redis names the record that last decided
  the page (the newest by timestamp, then offset), so a replay of an older range never puts an old
  outcome over a newer one; a copy of the page's newest record, with its higher offset, becomes
  that record, and the outcome names the copy's offset.
* Copies made by an earlier replay are skipped: they lie in the same topic and carry old
  timestamps, so they fall into later ranges, and their originals are replayed anyway. Except
  in an explicit offset range (``--from-offset`` and ``--to-offset``), which names the records
  to replay: a dead letter's offset may be a replay copy's (the README's recovery of an
  ``alert_error``), and the copy is replayed again under the new replay's marker.
* The plan is fixed before the first copy (end offsets included), so replaying a topic into
  itself terminates.
* A record the topic accepted is copied whatever its size before compression (only the broker's
  limit, on the compressed batch, applies); one whose copy is refused for its size (the replay's
  headers took it over the limit) is named, skipped, and makes the replay incomplete (exit 3), as
  records that retention deleted do.

The plan comes from kafka-python: ``offsets_for_times`` for a time range (the first offset at or
after each bound), ``beginning_offsets``/``end_offsets`` to clamp to what the log still holds.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TextIO

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import MessageSizeTooLargeError, OffsetOutOfRangeError
from kafka.util import ensure_valid_topic_name

from workers.feed import make_producer, require_topic
from workers.kafka_clients import kafka_client_options
from workers.settings import Settings

REPLAY_HEADER = "wirefeed-replay"
REPLAY_ALERTS_HEADER = "wirefeed-replay-alerts"
_MARKER_HEADERS = frozenset({REPLAY_HEADER, REPLAY_ALERTS_HEADER})
# The replay producer's max_request_size. A producer compares a record's size *before* compression
# with it; the broker compares the compressed batch with the topic's max.message.bytes. A record
# in the log passed the broker's check but may be far larger uncompressed (a crawler with a higher
# client limit: a 46 MB page zstd'd under 32 MiB), so the replay leaves the size to the broker as
# far as kafka-python lets it: the same setting caps a request's compressed batches, which must
# stay under the broker's socket.request.max.bytes (100 MiB by default). A record larger still
# is refused by the producer, and counted like one the broker refuses.
REPLAY_MAX_REQUEST_BYTES = 96 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ReplayMarker:
    """What a replayed record says about its replay."""

    replay_id: str
    alerts: bool

    @classmethod
    def from_headers(cls, headers: Iterable[tuple[str, bytes]]) -> ReplayMarker | None:
        values = dict(headers)
        replay_id = values.get(REPLAY_HEADER)
        if replay_id is None:
            return None
        return cls(replay_id.decode("utf-8", "replace"), values.get(REPLAY_ALERTS_HEADER) == b"1")

    def headers(self) -> list[tuple[str, bytes]]:
        return [(REPLAY_HEADER, self.replay_id.encode()), (REPLAY_ALERTS_HEADER, b"1" if self.alerts else b"0")]


def new_replay_id(now: datetime) -> str:
    return f"{now.strftime('%Y%m%dT%H%M%SZ')}-{uuid.uuid4().hex[:6]}"


# --- plan ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PartitionRange:
    partition: int
    start: int
    """First offset to replay."""
    end: int
    """Offset after the last one to replay."""

    @property
    def count(self) -> int:
        """Offsets in the range: the number of records, or more when the log has gaps
        (transaction markers, compaction)."""
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class ReplayPlan:
    topic: str
    ranges: tuple[PartitionRange, ...]

    @property
    def total(self) -> int:
        return sum(r.count for r in self.ranges)

    def describe(self) -> str:
        lines = [f"{self.topic}: {self.total} record(s) in {len(self.ranges)} partition(s)"]
        lines += [f"  partition {r.partition}: offsets {r.start}..{r.end} ({r.count})" for r in self.ranges]
        return "\n".join(lines)


def plan_replay(
    consumer: KafkaConsumer,
    topic: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    start_offset: int | None = None,
    end_offset: int | None = None,
    partitions: Iterable[int] | None = None,
) -> ReplayPlan:
    """Per-partition offset ranges of records with ``since <= timestamp < until`` and
    ``start_offset <= offset < end_offset`` (every bound optional), within what the log holds."""
    available = consumer.partitions_for_topic(topic)
    if not available:
        raise ValueError(f"topic {topic!r} does not exist")
    chosen = sorted(set(partitions) if partitions is not None else available)
    unknown = [p for p in chosen if p not in available]
    if unknown:
        raise ValueError(f"topic {topic!r} has no partition {', '.join(map(str, unknown))} (it has {len(available)})")
    tps = [TopicPartition(topic, p) for p in chosen]
    first, last = consumer.beginning_offsets(tps), consumer.end_offsets(tps)
    starts = offsets_at(consumer, tps, since, last) if since else dict(first)
    ends = offsets_at(consumer, tps, until, last) if until else dict(last)
    ranges = []
    for tp in tps:
        start = max(first[tp], starts[tp], start_offset if start_offset is not None else 0)
        end = min(last[tp], ends[tp], end_offset if end_offset is not None else last[tp])
        ranges.append(PartitionRange(tp.partition, start, max(start, end)))
    return ReplayPlan(topic, tuple(ranges))


def offsets_at(
    consumer: KafkaConsumer, tps: list[TopicPartition], when: datetime, last: dict[TopicPartition, int]
) -> dict[TopicPartition, int]:
    """First offset with a timestamp at or after ``when``; the log end when there is none."""
    found = consumer.offsets_for_times({tp: int(when.timestamp() * 1000) for tp in tps})
    return {tp: found[tp].offset if found.get(tp) is not None else last[tp] for tp in tps}


# --- pacing and progress ---------------------------------------------------------------------


class TokenBucket:
    """At most ``rate`` records per second on average, in bursts of at most ``burst``."""

    def __init__(
        self,
        rate: float,
        *,
        burst: float | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not 0 < rate < math.inf:
            raise ValueError(f"rate must be a positive number of records per second, not {rate}")
        self._rate = rate
        self._burst = burst if burst is not None else max(1.0, rate)
        self._tokens = self._burst
        self._monotonic = monotonic
        self._sleep = sleep
        self._last = monotonic()

    def take(self) -> None:
        now = self._monotonic()
        self._tokens = min(self._burst, self._tokens + (now - self._last) * self._rate)
        self._last = now
        if self._tokens < 1:
            self._sleep((1 - self._tokens) / self._rate)
            self._last = self._monotonic()
            self._tokens = 1.0
        self._tokens -= 1


class Progress:
    """``done/total (pct) rate rec/s ETA`` on a terminal line rewritten in place, or a plain line
    every ``log_interval_s`` when the output is not a terminal (CI logs, kubectl logs)."""

    def __init__(
        self,
        total: int,
        *,
        out: TextIO | None = None,
        log_interval_s: float = 5.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total = total
        self.done = 0
        self.deleted = 0
        self.too_large = 0
        # sys.stderr as it is now, not as it was at import (a test's capture replaces it)
        self._out = out if out is not None else sys.stderr
        self._tty = self._out.isatty()
        self._interval_s = 0.2 if self._tty else log_interval_s
        self._monotonic = monotonic
        self._started = monotonic()
        self._shown = float("-inf")

    def advance(self, n: int = 1) -> None:
        self.done += n
        if self._monotonic() - self._shown >= self._interval_s:
            self._show()

    def lose(self, n: int) -> None:
        """``n`` planned records that retention deleted before they could be copied: no longer to
        be done, and said at once (and on every line after), not only in the summary."""
        self.deleted += n
        self._show()

    def refuse(self, record: TooLarge) -> None:
        """A record too large to copy: named at once on a line of its own, counted on every line after."""
        self.too_large += 1
        clear = "\r\033[K" if self._tty else ""
        self._out.write(f"{clear}{record.describe()}\n")
        self._show()

    def finish(self) -> None:
        self._show()
        if self._tty:
            self._out.write("\n")
        self._out.flush()

    @property
    def rate(self) -> float:
        elapsed = self._monotonic() - self._started
        return self.done / elapsed if elapsed > 0 else 0.0

    def line(self) -> str:
        rate = self.rate
        share = f"{100 * self.done / self.total:5.1f}%" if self.total else "  -  "
        remaining = max(0, self.total - self.done - self.deleted)
        eta = str(timedelta(seconds=round(remaining / rate))) if rate > 0 else "?"
        line = f"{self.done}/{self.total} ({share}) {rate:,.0f} rec/s ETA {eta}"
        if self.deleted:
            line += f"; {self.deleted} deleted by retention before they could be copied"
        if self.too_large:
            line += f"; {self.too_large} too large to copy"
        return line

    def _show(self) -> None:
        self._shown = self._monotonic()
        self._out.write(f"\r{self.line()}\033[K" if self._tty else f"{self.line()}\n")
        self._out.flush()


# --- feeding ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TooLarge:
    """A record whose copy was refused for its size, by the broker (over the topic's
    max.message.bytes once compressed, the replay headers included) or by the producer."""

    partition: int
    offset: int
    refused_by: str

    def describe(self) -> str:
        return f"partition {self.partition} offset {self.offset}: too large to copy, refused by {self.refused_by}"


@dataclass(frozen=True, slots=True)
class FeedResult:
    copied: int
    skipped_replays: int
    seconds: float
    deleted: tuple[PartitionRange, ...]
    """Planned offsets that retention deleted before they could be copied."""
    too_large: tuple[TooLarge, ...]
    """Records not copied because their copy was refused for its size."""
    interrupted: bool = False
    """Stopped by a KeyboardInterrupt (Ctrl-C) before the end of the plan."""

    @property
    def deleted_by_retention(self) -> int:
        return sum(r.count for r in self.deleted)


def feed(
    settings: Settings,
    plan: ReplayPlan,
    *,
    into: str,
    marker: ReplayMarker,
    rate: float | None,
    progress: Progress,
    include_replays: bool = False,
) -> FeedResult:
    """Copy the planned records into topic ``into``; returns once the broker acknowledged all.
    Copies of earlier replays are skipped unless ``include_replays``; then they are copied with
    this replay's marker instead of theirs. Planned records that retention deletes before they are
    read are counted (``deleted``), and the copy goes on from the oldest record still there; so does
    it past a record whose copy is refused for its size (``too_large``). A KeyboardInterrupt (Ctrl-C)
    stops the copy: what was sent is still acknowledged, and the result says so (``interrupted``)."""
    started = time.monotonic()
    pending = {TopicPartition(plan.topic, r.partition): r for r in plan.ranges if r.count > 0}
    consumer = KafkaConsumer(
        **kafka_client_options(settings),
        enable_auto_commit=False,
        # A position retention deleted raises instead of being reset: kafka-python's default
        # ("latest") would jump to the log end, and the partition would count as done, copied or not.
        auto_offset_reset="none",
        max_partition_fetch_bytes=2 * settings.max_message_bytes,
        fetch_max_bytes=2 * settings.max_message_bytes,
    )
    producer = make_producer(
        settings,
        max_request_size=max(REPLAY_MAX_REQUEST_BYTES, settings.max_message_bytes),
        # kafka-python 3.0's idempotent producer (its default) takes a batch the broker refuses
        # as too large for a fatal error and fails every record sent after it: one record too
        # large would end the replay. Not idempotent, a retry may copy a record twice, which the
        # pipeline's idempotent writes absorb; one request in flight keeps each partition's order.
        enable_idempotence=False,
        max_in_flight_requests_per_connection=1,
    )
    bucket = TokenBucket(rate) if rate is not None else None
    failures: list[BaseException] = []
    deleted: list[PartitionRange] = []
    too_large: list[TooLarge] = []
    reported = copies = skipped = 0
    interrupted = False

    def refused_or_failed(partition: int, offset: int, error: BaseException) -> None:
        # On the producer's I/O thread; reported to the progress by the loop below.
        if isinstance(error, MessageSizeTooLargeError):
            too_large.append(TooLarge(partition, offset, f"the broker ({into}'s max.message.bytes)"))
        else:
            failures.append(error)

    def report_too_large() -> None:
        nonlocal reported
        while reported < len(too_large):
            progress.refuse(too_large[reported])
            reported += 1

    try:
        try:
            consumer.assign(list(pending))
            for tp, planned in pending.items():
                consumer.seek(tp, planned.start)
            while pending:
                try:
                    polled = consumer.poll(timeout_ms=1000)
                except OffsetOutOfRangeError as exc:
                    gone = _skip_deleted(consumer, exc.args[0], pending)
                    deleted += gone
                    progress.lose(sum(r.count for r in gone))
                    polled = {}
                for tp, records in polled.items():
                    planned = pending.get(tp)
                    for record in records:
                        if planned is None or record.offset >= planned.end:
                            break
                        # A header with a null value (Java's RecordHeader(name, null), librdkafka)
                        # reads as None, which the producer refuses: the copy carries it empty.
                        headers = [(name, b"" if value is None else value) for name, value in record.headers or ()]
                        if any(name == REPLAY_HEADER for name, _ in headers) and not include_replays:
                            skipped += 1
                        else:
                            if bucket is not None:
                                bucket.take()
                            copies += 1
                            try:
                                sending = producer.send(
                                    into,
                                    key=record.key,
                                    # A record with neither key nor value (Java's and librdkafka's
                                    # producers send one), which kafka-python refuses to send: copied
                                    # with an empty value, which the pipeline dead-letters as
                                    # empty_message as it did the original.
                                    value=b"" if record.key is None and record.value is None else record.value,
                                    headers=[h for h in headers if h[0] not in _MARKER_HEADERS] + marker.headers(),
                                    timestamp_ms=record.timestamp,
                                    partition=record.partition if into == plan.topic else None,
                                )
                            except MessageSizeTooLargeError:
                                too_large.append(TooLarge(
                                    record.partition, record.offset,
                                    f"the producer (over {producer.config['max_request_size']} bytes before compression)",
                                ))
                            else:
                                sending.add_errback(refused_or_failed, record.partition, record.offset)
                        progress.advance()
                report_too_large()
                if failures:
                    raise failures[0]
                # Done with a partition at its planned end; the position, not the last record, says
                # so, since the log may have no record at end - 1.
                for tp in [tp for tp, planned in pending.items() if consumer.position(tp) >= planned.end]:
                    del pending[tp]
                consumer.pause(*[tp for tp in consumer.assignment() if tp not in pending])
        except KeyboardInterrupt:
            # Ctrl-C: the copies sent so far are still delivered, and named when refused, so that
            # the summary can say how far this replay got
            interrupted = True
        producer.flush()
        report_too_large()
        if failures:
            raise failures[0]
    finally:
        producer.close()
        consumer.close()
        progress.finish()
    return FeedResult(
        copied=copies - len(too_large),
        skipped_replays=skipped,
        seconds=time.monotonic() - started,
        deleted=tuple(deleted),
        too_large=tuple(too_large),
        interrupted=interrupted,
    )


def _skip_deleted(
    consumer: KafkaConsumer, out_of_range: dict[TopicPartition, int], pending: dict[TopicPartition, PartitionRange]
) -> list[PartitionRange]:
    """Seek each partition past the records that retention deleted under its position; returns
    the planned offsets lost. A replay near the retention edge (``--since 14d``) loses its oldest
    records so, before it starts copying or, at a low ``--rate``, while it copies."""
    first = consumer.beginning_offsets(list(out_of_range))
    lost = []
    for tp, position in out_of_range.items():
        if first[tp] <= position:
            # beyond the log end (a truncated or recreated partition): nothing retention explains
            raise OffsetOutOfRangeError(out_of_range)
        resume = min(first[tp], pending[tp].end)
        consumer.seek(tp, resume)
        lost.append(PartitionRange(tp.partition, position, resume))
    return lost


# --- command line ----------------------------------------------------------------------------

_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_when(value: str, *, now: datetime) -> datetime:
    """An ISO 8601 time (UTC when it has no offset) or a duration before ``now`` ("90m", "6h", "2d")."""
    try:
        if relative := _RELATIVE.match(value):
            return now - timedelta(**{_UNITS[relative.group(2)]: float(relative.group(1))})
        when = datetime.fromisoformat(value)
    except (ValueError, OverflowError):  # "1000000d" ago is before the year 1
        raise argparse.ArgumentTypeError(f"not a time: {value!r} (ISO 8601, or 90m / 6h / 2d ago)") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def parse_rate(value: str) -> float:
    """Records per second: a positive, finite number (no --rate at all means no limit)."""
    try:
        rate = float(value)
    except ValueError:
        rate = math.nan  # refused below with the message of any other non-rate
    if not 0 < rate < math.inf:
        raise argparse.ArgumentTypeError(f"not a rate: {value!r} (records per second, more than 0)")
    return rate


def parse_offset(value: str) -> int:
    """A Kafka offset: a whole number, 0 or more."""
    try:
        offset = int(value)
    except ValueError:
        offset = -1  # refused below with the message of any other non-offset
    if offset < 0:
        raise argparse.ArgumentTypeError(f"not an offset: {value!r} (a whole number, 0 or more)")
    return offset


def topic_name(value: str) -> str:
    """A topic named on the command line: an empty one (an unset "$TOPIC") would mean the default,
    the live pages.raw. One Kafka does not allow ("pages.raw " from a quoted "$TOPIC ") is refused
    before anything: the broker's metadata answers for it without saying that it does not exist,
    and kafka-python refuses it only at the first send."""
    if not value.strip():
        raise argparse.ArgumentTypeError("an empty topic name (leave the option out for the default)")
    try:
        ensure_valid_topic_name(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a topic name: {value!r} (1 to 249 of the characters a-z A-Z 0-9 . _ -, not . or ..)"
        ) from None
    return value


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    now = datetime.now(UTC)
    parser = commands.add_parser(
        "replay",
        help="reprocess pages of a time or offset range (copies them into the pipeline's input)",
        description="Copy the crawled pages of a time or offset range back into the pipeline's input topic, "
        "where the live workers process them again.",
    )
    parser.add_argument("--topic", type=topic_name, help="topic to replay from (default: the pages.raw topic of the settings)")
    parser.add_argument("--into", type=topic_name, help="topic to copy into (default: the pages.raw topic of the settings)")
    parser.add_argument("--since", type=lambda v: parse_when(v, now=now), help="ISO 8601 time, or a duration ago (6h)")
    parser.add_argument("--until", type=lambda v: parse_when(v, now=now), help="ISO 8601 time, or a duration ago (exclusive)")
    parser.add_argument("--from-offset", type=parse_offset, help="first offset, in every chosen partition")
    parser.add_argument("--to-offset", type=parse_offset, help="offset after the last one, in every chosen partition")
    parser.add_argument("--partition", type=int, action="append", help="replay only this partition (repeatable)")
    parser.add_argument("--rate", type=parse_rate, help="at most this many records per second (default: no limit)")
    parser.add_argument("--alerts", action="store_true", help="let replayed articles fire alerts (never one already fired)")
    parser.add_argument("--dry-run", action="store_true", help="print the plan and the counts, copy nothing")
    parser.set_defaults(command=run)


def _empty_range(args: argparse.Namespace) -> str | None:
    """Why the range asked for holds no record, if it cannot."""
    if args.from_offset is not None and args.to_offset is not None and args.to_offset <= args.from_offset:
        return (
            f"empty offset range {args.from_offset}..{args.to_offset}: --to-offset is the offset after the last "
            "one to replay, so it must be greater than --from-offset"
        )
    if args.since is not None and args.until is not None and args.until <= args.since:
        return (
            f"empty time range {args.since.isoformat()}..{args.until.isoformat()}: --until is exclusive, so it "
            "must be later than --since"
        )
    return None


def run(settings: Settings, args: argparse.Namespace) -> int:
    if problem := _empty_range(args):
        print(f"wirefeed replay: {problem}", file=sys.stderr)
        return 2
    source = args.topic or settings.topic_pages_raw
    into = args.into or settings.topic_pages_raw
    consumer = KafkaConsumer(**kafka_client_options(settings), enable_auto_commit=False)
    try:
        plan = plan_replay(
            consumer, source, since=args.since, until=args.until,
            start_offset=args.from_offset, end_offset=args.to_offset, partitions=args.partition,
        )
        require_topic(settings, into)
    except ValueError as exc:
        print(f"wirefeed replay: {exc}", file=sys.stderr)
        return 2
    finally:
        consumer.close()
    print(plan.describe())
    if args.dry_run:
        print(f"dry run: would copy up to {plan.total} record(s) into {into}")
        return 0
    marker = ReplayMarker(new_replay_id(datetime.now(UTC)), alerts=args.alerts)
    explicit_range = args.from_offset is not None and args.to_offset is not None
    progress = Progress(plan.total)
    result = feed(
        settings, plan, into=into, marker=marker, rate=args.rate, progress=progress, include_replays=explicit_range,
    )
    summary = (
        f"replay {marker.replay_id}: copied {result.copied} record(s) into {into} in {result.seconds:.1f} s "
        f"({result.copied / result.seconds if result.seconds else 0:,.0f}/s); skipped {result.skipped_replays} "
        f"copies of earlier replays; alerts {'on' if marker.alerts else 'suppressed'}"
    )
    if result.deleted:
        where = ", ".join(f"partition {r.partition}: offsets {r.start}..{r.end}" for r in result.deleted)
        summary += (
            f"; {result.deleted_by_retention} planned record(s) deleted by retention before they could be copied "
            f"({where})"
        )
    if result.too_large:
        where = ", ".join(f"partition {r.partition} offset {r.offset}" for r in result.too_large)
        summary += f"; {len(result.too_large)} record(s) too large to copy into {into} ({where})"
    if result.interrupted:
        summary += f"; interrupted after {progress.done} of {plan.total} planned record(s)"
    if result.deleted or result.too_large or result.interrupted:
        summary += ": replay incomplete"
    print(summary)
    if result.interrupted:
        return 130  # a shell's status for a command ended by Ctrl-C (SIGINT)
    # Not 0: the range asked for was not reprocessed in full, and a script or a Job running the
    # replay must be able to tell. Not 1 or 2 either (Kafka unreachable, a wrong argument):
    # everything else was copied, and running it again would copy it all again; the same
    # distinction as rsync's 24 for files that vanished before they could be transferred.
    return 3 if result.deleted or result.too_large else 0
