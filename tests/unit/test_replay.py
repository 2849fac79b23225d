"""The pure parts of replay: its record headers, pacing, progress and time arguments.
(Plans and copies on the real broker: tests/integration/test_replay.py.)"""

import argparse
import io
from datetime import UTC, datetime, timedelta

import pytest

from workers.replay import PartitionRange, Progress, ReplayMarker, ReplayPlan, TokenBucket, TooLarge, parse_when

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept = 0.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept += seconds
        self.now += seconds


def test_the_marker_round_trips_through_record_headers():
    marker = ReplayMarker("20261122T100000Z-abcdef", alerts=False)
    assert ReplayMarker.from_headers([("x-crawler", b"1"), *marker.headers()]) == marker
    assert ReplayMarker.from_headers(ReplayMarker("r", alerts=True).headers()).alerts is True
    assert ReplayMarker.from_headers([("x-crawler", b"1")]) is None
    assert ReplayMarker.from_headers([]) is None


def test_the_token_bucket_holds_the_rate_after_one_burst():
    clock = FakeTime()
    bucket = TokenBucket(100, monotonic=clock.monotonic, sleep=clock.sleep)
    for _ in range(1100):
        bucket.take()
    # The first 100 go at once (the burst), the next 1000 take 10 s at 100/s.
    assert clock.now == pytest.approx(10.0, rel=0.01)


def test_the_token_bucket_does_not_sleep_below_the_rate():
    clock = FakeTime()
    bucket = TokenBucket(10, monotonic=clock.monotonic, sleep=clock.sleep)
    for _ in range(50):
        clock.now += 0.2
        bucket.take()
    assert clock.slept == 0


@pytest.mark.parametrize("rate", [0, -5, float("nan"), float("inf")])
def test_the_token_bucket_refuses_a_rate_that_is_not_positive(rate: float):
    # Else -5 would end in a negative sleep and 0 in a division by zero, at the second record.
    with pytest.raises(ValueError, match="positive"):
        TokenBucket(rate)


def test_progress_shows_rate_and_eta_as_lines_when_not_on_a_terminal():
    clock, out = FakeTime(), io.StringIO()
    progress = Progress(1000, out=out, log_interval_s=5, monotonic=clock.monotonic)
    for _ in range(10):
        clock.now += 1
        progress.advance(50)
    progress.finish()
    lines = out.getvalue().splitlines()
    assert lines[0] == "50/1000 (  5.0%) 50 rec/s ETA 0:00:19"
    assert lines[-1] == "500/1000 ( 50.0%) 50 rec/s ETA 0:00:10"
    assert len(lines) == 3  # after 1 s, after 6 s, and at the finish
    assert "\r" not in out.getvalue()


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_record_too_large_to_copy_is_named_on_a_line_of_its_own_and_counted_on_every_line_after():
    clock, out = FakeTime(), Terminal()
    progress = Progress(10, out=out, monotonic=clock.monotonic)
    clock.now += 1
    progress.advance(4)
    progress.refuse(TooLarge(0, 17, "the broker (pages.raw's max.message.bytes)"))
    progress.finish()
    named, progress_after = out.getvalue().split("\n")[:2]
    # on a terminal the progress line is cleared first, not left in front of the name
    assert named.endswith(
        "\033[K\r\033[Kpartition 0 offset 17: too large to copy, refused by the broker (pages.raw's max.message.bytes)"
    )
    assert progress_after.endswith("4/10 ( 40.0%) 4 rec/s ETA 0:00:02; 1 too large to copy\033[K")

def test_the_plan_counts_offsets():
    plan = ReplayPlan("pages.raw", (PartitionRange(0, 10, 25), PartitionRange(1, 7, 7)))
    assert plan.total == 15
    assert "partition 0: offsets 10..25 (15)" in plan.describe()


def test_times_are_iso_or_a_duration_ago():
    assert parse_when("6h", now=NOW) == NOW - timedelta(hours=6)
    assert parse_when("90m", now=NOW) == NOW - timedelta(minutes=90)
    assert parse_when("2026-11-21T08:00:00+01:00", now=NOW) == datetime(2026, 11, 21, 7, 0, tzinfo=UTC)
    assert parse_when("2026-11-21T08:00", now=NOW) == datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
    with pytest.raises(argparse.ArgumentTypeError):
        parse_when("yesterday", now=NOW)


# --- found by a review of the command line (the nineteenth session) ---------------------------------


@pytest.mark.parametrize("value", ["1000000d", "99999999999d"])
def test_a_time_before_the_calendar_is_not_a_time(value: str):
    with pytest.raises(argparse.ArgumentTypeError, match="not a time"):
        parse_when(value, now=datetime(2026, 11, 22, tzinfo=UTC))


@pytest.mark.parametrize("argv", [["produce", "x.html", "--topic", ""], ["replay", "--into", " ", "--since", "1h"]])
def test_an_empty_topic_name_is_refused_not_read_as_the_live_topic(argv: list[str], capsys: pytest.CaptureFixture[str]):
    from workers import cli

    with pytest.raises(SystemExit) as stopped:
        cli.main(argv)
    assert stopped.value.code == 2 and "empty topic name" in capsys.readouterr().err
