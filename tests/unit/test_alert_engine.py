"""The rules in force: reloaded when the file changes, kept when a new version is invalid or gone.
(Firing, once-only, on the real Redis and broker: tests/integration/test_webhooks.py; after the
dedup index's decisions, for copies and for stories that go on for days:
tests/integration/test_dedup_redis.py.)"""

import logging
import os

import pytest

from workers.alerts.engine import RulesFile
from workers.alerts.rules import RulesError

ONE = "version: 1\nrules: [{id: one, kind: article, match: {terms: [Aleppo]}}]\n"
TWO = "version: 1\nrules: [{id: one, kind: article, match: {terms: [Aleppo]}}, {id: two, kind: article, match: {urgent: true}}]\n"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def write(path, text, *, mtime_ns):
    path.write_text(text, encoding="utf-8")
    os.utime(path, ns=(mtime_ns, mtime_ns))


def active(rules: RulesFile) -> list[str]:
    return [rule.id for rule in rules.current().ruleset.active]


def test_changes_are_picked_up_at_the_next_check_and_not_before(tmp_path):
    path, clock = tmp_path / "rules.yaml", Clock()
    write(path, ONE, mtime_ns=1)
    rules = RulesFile(path, secret_names=(), check_interval_s=5, monotonic=clock)
    assert active(rules) == ["one"]
    write(path, TWO, mtime_ns=2)
    clock.now += 4
    assert active(rules) == ["one"]  # not looked at yet
    clock.now += 1
    assert active(rules) == ["one", "two"]


def test_an_invalid_new_version_is_logged_once_and_the_rules_in_force_stay(tmp_path, caplog):
    path, clock = tmp_path / "rules.yaml", Clock()
    write(path, ONE, mtime_ns=1)
    rules = RulesFile(path, secret_names=(), check_interval_s=5, monotonic=clock)
    write(path, "version: 1\nrules: [{id: bad, kind: article, match: {}}]\n", mtime_ns=2)
    with caplog.at_level(logging.ERROR):
        for _ in range(3):
            clock.now += 5
            assert active(rules) == ["one"]
    assert len([r for r in caplog.records if "is invalid" in r.message]) == 1
    path.unlink()
    clock.now += 5
    assert active(rules) == ["one"]
    write(path, TWO, mtime_ns=3)
    clock.now += 5
    assert active(rules) == ["one", "two"]


def test_a_worker_does_not_start_with_an_invalid_file_and_has_no_rules_without_one(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text("version: 1\nrules: [{id: x}]\n", encoding="utf-8")
    with pytest.raises(RulesError):
        RulesFile(path, secret_names=(), check_interval_s=5)
    assert active(RulesFile(None, secret_names=(), check_interval_s=5)) == []
