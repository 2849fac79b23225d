"""The alert engine: called by the pipeline for every stored article, fires what the rules say.

Once-only with at-least-once delivery: an alert's id is a hash of (rule, article: for a copy, its
original) or (rule, story); :meth:`AlertLedger.fire` marks it fired and appends it to the Redis
stream in one script, so the stream gets it once; the ``alerts`` topic gets it next and the ledger
records the broker's acknowledgement, so a crash in between republishes on redelivery instead of
losing it. Webhooks are not called here: their agent consumes the ``alerts`` topic
(``workers.alerts.webhooks``), so a slow receiver never holds up page processing.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Collection
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Protocol

from workers.alerts.ledger import AlertLedger
from workers.alerts.match import ArticleFacts, Matcher, StoryInfo
from workers.alerts.messages import Alert, AlertArticle, AlertStory, StoryOutlet, alert_id_for
from workers.alerts.rules import EMPTY, Rule, RuleSet, RulesError, load_rules
from workers.models import Article
from workers.replay import ReplayMarker
from workers.retry import Retrying
from workers.settings import Settings

log = logging.getLogger(__name__)


class AlertPublisher(Protocol):
    """Sends to the ``alerts`` topic and returns once the broker has acknowledged the record."""

    async def publish_alert(self, alert: Alert) -> None: ...


class RulesFile:
    """The rules in force, read from ``path`` and read again when the file changes.

    The file is looked at no more than every ``check_interval_s`` (a ``stat``), so calling
    :meth:`current` for every article costs nothing. A change is anything in (mtime, size, inode):
    editors and Kubernetes ConfigMap updates replace the file rather than write it in place. A new
    version that does not validate is logged once and the rules in force stay; so does a file that
    disappeared. At construction an invalid file raises: a worker must not start without its rules.
    In a running event loop a new version is read in a thread (parsing, validating and building
    the matcher of a file of hundreds of rules takes seconds), and the rules in force stay until
    it is ready.
    """

    def __init__(
        self,
        path: Path | None,
        *,
        secret_names: Collection[str],
        check_interval_s: float,
        allow_private_addresses: bool = False,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._path = path
        self._secret_names = frozenset(secret_names)
        self._allow_private_addresses = allow_private_addresses
        self._interval_s = check_interval_s
        self._monotonic = monotonic
        self._matcher = Matcher(EMPTY)
        self._version: tuple[int, int, int] | None = None
        self._next_check = float("-inf")
        self._reloading: asyncio.Future[Matcher] | None = None
        if path is not None:
            try:
                self._version = self._stat()
            except OSError:
                pass  # reading it fails too, and says why; if it appeared meanwhile, the next check reloads it
            self._matcher = Matcher(self._load(path))
            self._next_check = monotonic() + check_interval_s

    @classmethod
    def from_settings(cls, settings: Settings) -> RulesFile:
        return cls(
            settings.alert_rules_path,
            secret_names=settings.alert_webhook_secrets.keys(),
            check_interval_s=settings.alert_rules_check_interval_s,
            allow_private_addresses=settings.alert_webhook_allow_private_addresses,
        )

    def current(self) -> Matcher:
        if self._path is not None and self._reloading is None and self._monotonic() >= self._next_check:
            self._next_check = self._monotonic() + self._interval_s
            self._reload_if_changed(self._path)
        return self._matcher

    def _load(self, path: Path) -> RuleSet:
        return load_rules(path, secret_names=self._secret_names, allow_private_addresses=self._allow_private_addresses)

    def _load_matcher(self, path: Path) -> Matcher:
        return Matcher(self._load(path))

    def _stat(self) -> tuple[int, int, int]:
        assert self._path is not None
        stat = os.stat(self._path)
        return (stat.st_mtime_ns, stat.st_size, stat.st_ino)

    def _reload_if_changed(self, path: Path) -> None:
        try:
            version = self._stat()
        except OSError as exc:
            if self._version is not None:
                log.warning("alert rules file %s is gone (%s); keeping the rules in force", path, exc)
                self._version = None
            return
        if version == self._version:
            return
        self._version = version  # whatever the outcome: an invalid version is reported once
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # a command, not a worker: nothing else waits
            self._take(path, lambda: self._load_matcher(path))
            return
        reloading = self._reloading = loop.run_in_executor(None, self._load_matcher, path)

        def done(future: asyncio.Future[Matcher]) -> None:
            self._reloading = None
            if not future.cancelled():  # the loop closing
                self._take(path, future.result)

        reloading.add_done_callback(done)

    def _take(self, path: Path, loaded: Callable[[], Matcher]) -> None:
        try:
            matcher = loaded()
        except RulesError as exc:
            log.error("alert rules file %s is invalid, keeping the rules in force:\n  %s", path, "\n  ".join(exc.problems))
            return
        except Exception:  # noqa: BLE001 - a bug reading rules must not stop alerts: the rules in force stay
            log.exception("alert rules file %s could not be read, keeping the rules in force", path)
            return
        self._matcher = matcher
        log.info("alert rules reloaded from %s: %d active rule(s)", path, len(matcher.ruleset.active))


class AlertEngine:
    def __init__(
        self,
        rules: RulesFile,
        *,
        ledger: AlertLedger,
        publisher: AlertPublisher,
        pipeline_version: int,
        retry_backoff_max_s: float,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._rules = rules
        self._ledger = ledger
        self._publisher = publisher
        self._pipeline_version = pipeline_version
        self._retry = Retrying(retry_backoff_max_s)
        self._clock = clock

    @classmethod
    def from_settings(cls, settings: Settings, *, ledger: AlertLedger, publisher: AlertPublisher) -> AlertEngine:
        return cls(
            RulesFile.from_settings(settings),
            ledger=ledger,
            publisher=publisher,
            pipeline_version=settings.pipeline_version,
            retry_backoff_max_s=settings.retry_backoff_max_s,
        )

    async def on_article(
        self, article: Article, *, urgent: bool, story: StoryInfo | None, replay: ReplayMarker | None, source: str
    ) -> list[Alert]:
        """Evaluate the rules on a stored article (and its story); fire what matches and was not
        fired before. Returns the alerts fired for the first time. Whether a page may fire at all
        is :func:`alert_suppression`'s to say, before this is called; ``replay`` is the replay a
        copy comes from (its alerts carry its id), which never fires an alert that already fired.
        ``source`` names the record being processed (``topic/partition/offset``)."""
        fired = []
        for alert in await self._candidates(article, urgent=urgent, story=story, replay=replay):
            if await self._fire(alert, source):
                fired.append(alert)
        return fired

    def watches_stories(self) -> bool:
        """Whether the rules in force look at stories: when none does, a story need not be read."""
        return self._rules.current().watches_stories

    async def count_matches(self, article: Article, *, urgent: bool, story: StoryInfo | None, source: str) -> int:
        """How many alerts the rules match for a stored article (and its story), fired before or
        not, without firing any: what a page whose alerts are suppressed did not fire. One fired
        before and never published (its record crashed, then came back too old to fire) is
        published now, by its own record or, once its owner has held it too long, by this one."""
        candidates = await self._candidates(article, urgent=urgent, story=story, replay=None)
        for alert in candidates:
            await self._fire(alert, source, create=False)
        return len(candidates)

    async def _candidates(
        self, article: Article, *, urgent: bool, story: StoryInfo | None, replay: ReplayMarker | None
    ) -> list[Alert]:
        matcher = self._rules.current()
        # A copy (and a new version of one: status ``update``, still ``duplicate_of``) is matched
        # on its own facts, for its original: it fires what the original did not (the wire's own
        # page, urgent, crawled after a paper that ran it; an edit that adds a watched word), and
        # never again what the original or another copy already fired.
        subject_id = article.duplicate_of or article.article_id
        # Tokenising the text and looking its tokens up is CPU work that grows with the text: in
        # a thread, the event loop goes on meanwhile (the matcher is never changed, only replaced).
        matches = await asyncio.to_thread(lambda: matcher.match_article(ArticleFacts.of(article, urgent=urgent)))
        candidates = [
            self._alert(match.rule, article, urgent, subject_id=subject_id, terms=match.terms, replay=replay)
            for match in matches
        ]
        if story is not None:
            candidates += [
                self._alert(
                    match.rule, article, urgent, subject_id=story.story_id, replay=replay,
                    story=AlertStory(
                        story_id=story.story_id,
                        outlets=[StoryOutlet(domain=domain, first_seen=seen) for domain, seen in match.outlets],
                    ),
                )
                for match in matcher.match_story(story)
            ]
        return candidates

    async def _fire(self, alert: Alert, source: str, *, create: bool = True) -> bool:
        result = await self._retry(
            lambda: self._ledger.fire(alert, source=source, create=create), what="firing an alert"
        )
        if result is None:
            return False
        if not result.published and result.owned:
            try:
                await self._retry(lambda: self._publisher.publish_alert(result.alert), what="publishing an alert")
            except Exception:
                # Not an outage (those are retried): the record goes on without the alert on the
                # topic, and no redelivery of it will come. The next record that fires the alert
                # (a replay of this one with alerts on) publishes it instead.
                await self._retry(lambda: self._ledger.release(result.alert, source=source), what="releasing an alert")
                raise
            await self._retry(lambda: self._ledger.mark_published(result.alert), what="marking an alert published")
        if result.first_time:
            log.info("alert %s: rule %s on %s", alert.alert_id, alert.rule_id, alert.article.url)
        return result.first_time

    def _alert(
        self,
        rule: Rule,
        article: Article,
        urgent: bool,
        *,
        subject_id: str,
        replay: ReplayMarker | None,
        terms: tuple[str, ...] = (),
        story: AlertStory | None = None,
    ) -> Alert:
        return Alert(
            alert_id=alert_id_for(rule.id, rule.kind, subject_id),
            rule_id=rule.id,
            rule_kind=rule.kind,
            fired_at=self._clock(),
            article=AlertArticle(
                article_id=article.article_id,
                url=article.url,
                domain=article.domain,
                title=article.title,
                language=article.language,
                published_at=article.published_at,
                urgent=urgent,
            ),
            matched_terms=list(terms),
            story=story,
            webhooks=list(rule.webhooks),
            pipeline_version=self._pipeline_version,
            replay_id=replay.replay_id if replay is not None else None,
        )


class AlertSuppression(StrEnum):
    """Why a page fires no alert (the ``reason`` of ``wirefeed_alerts_suppressed_total``)."""

    REPLAY = "replay"
    STALE_RECORD = "stale_record"
    STALE_ARTICLE = "stale_article"


def alert_suppression(
    replay: ReplayMarker | None,
    record_age_s: float | None,
    article_age_s: float | None,
    *,
    max_record_age_s: float,
    max_article_age_s: float,
) -> AlertSuppression | None:
    """Why the page of a record fires no alert; None when it may fire. ``record_age_s``: from the
    record's timestamp to when the worker read it, None for a record without a timestamp.
    ``article_age_s``: :func:`article_age_s`.

    Alerts are for news as it arrives: a record read long after it was written is one a new
    pipeline version's consumer group reads from the start of the retained log, or one a worker
    catches up on. A replay's copy keeps its original's timestamp, so its age says nothing: it
    fires when its replay asked for alerts, and only then. An article dated long before it was
    fetched is old news found today (a crawler reaching an archive, a new outlet's back catalogue),
    on a replay too: its age is the page's own, the same on every run."""
    if replay is not None and not replay.alerts:
        return AlertSuppression.REPLAY
    if replay is None and record_age_s is not None and record_age_s > max_record_age_s:
        return AlertSuppression.STALE_RECORD
    if article_age_s is not None and article_age_s > max_article_age_s:
        return AlertSuppression.STALE_ARTICLE
    return None


def article_age_s(article: Article) -> float | None:
    """From the article's latest declared date (published, or modified: a live page updated today)
    to when its page was fetched; None when it declares no date. A date at midnight is taken as a
    day without its time ("2025-01-13", a dateline): the article may be of its last hour, in the
    westernmost zone, so its age is counted from then (an evening's news in New York is the
    next day in UTC, and must not be too old an hour after it was published)."""
    declared = [moment for moment in (article.published_at, article.modified_at) if moment is not None]
    if not declared:
        return None
    latest = max(moment + _DAY_ONLY_SLACK if moment.time() == _MIDNIGHT else moment for moment in declared)
    return (article.fetched_at - latest).total_seconds()


# From a day's midnight (in the zone it was read in: UTC when none was given) to its end in the
# westernmost zone, UTC-12.
_DAY_ONLY_SLACK = timedelta(hours=36)
_MIDNIGHT = datetime.min.time()
