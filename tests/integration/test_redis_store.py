"""The article sink's publish decision on the real Redis, when records of one page race, and a
page's outcome when its records are handled out of order."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from contract import assert_valid

from workers.models import SourcePosition, Withdrawal
from workers.settings import Settings
from workers.sinks.redis_store import ArticleStore, ArticleVersion, SavedArticle, SaveResult, index_score, publish_marker
from workers.stages.article import build_article
from workers.stages.decode import decode_message
from workers.stages.extract import ExtractedDocument
from workers.stages.outcome import Kept

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]
NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


def article_from(
    offset: int, *, version: int = 1, text: str = "نص المقال عن المحادثات في حلب", fetched_at: str = "2026-11-22T09:00:00Z"
):
    raw = json.dumps({"url": "https://news.example/a", "fetched_at": fetched_at, "html": "<p>x</p>"})
    decoded = decode_message(raw.encode(), max_html_bytes=1 << 20)
    assert isinstance(decoded, Kept)
    document = ExtractedDocument(title="حلب", text=text, language="ar", declared_language="ar", published_at=NOW, canonical_url=None)
    return build_article(decoded.value, document, source=page_record(offset), pipeline_version=version, processed_at=NOW)


def page_record(offset: int) -> SourcePosition:
    """Where a page's record sits in pages.raw: the record that saves, sends and marks."""
    return SourcePosition(topic="pages.raw", partition=0, offset=offset)


def on_topic(offset: int, partition: int = 0) -> SourcePosition:
    """Where the ``articles`` topic took a published record."""
    return SourcePosition(topic="articles", partition=partition, offset=offset)


async def test_only_the_record_that_wrote_a_version_publishes_it(settings: Settings, redis_client):
    store = ArticleStore.from_settings(redis_client, settings)
    original, copy = article_from(10, version=2), article_from(99, version=2)  # a page and its replay copy

    first = await store.save(original, now=NOW)
    assert first.result is SaveResult.NEW and first.to_publish == ArticleVersion.of(original)
    # The copy arrives while the original is still being published: it must not publish too.
    racing = await store.save(copy, now=NOW)
    assert racing.result is SaveResult.UNCHANGED and racing.to_publish is None
    # The original's record, redelivered after a crash before publishing, still publishes.
    assert (await store.save(original, now=NOW)).to_publish == ArticleVersion.of(original)
    assert await store.mark_published(ArticleVersion.of(original), on_topic(0), resent=False, sender=original.source) is None
    assert (await store.save(original, now=NOW)).to_publish is None
    assert (await store.save(copy, now=NOW)).to_publish is None
    assert await publishing_fields(redis_client, store.article_key(original.article_id)) == {}


async def test_a_changed_page_is_published_by_the_record_that_changed_it(settings: Settings, redis_client):
    store = ArticleStore.from_settings(redis_client, settings)
    await store.save(article_from(1), now=NOW)
    assert await store.mark_published(ArticleVersion.of(article_from(1)), on_topic(0), resent=False, sender=page_record(1)) is None
    changed_article = article_from(2, text="نص جديد بعد التحديث")
    changed = await store.save(changed_article, now=NOW)
    assert changed.result is SaveResult.UPDATED and changed.to_publish == ArticleVersion.of(changed_article)
    stale = await store.save(article_from(3, version=0), now=NOW)
    assert stale.result is SaveResult.STALE and stale.to_publish is None


async def test_a_replay_of_an_older_crawl_never_puts_back_the_replaced_text(settings: Settings, redis_client):
    store = ArticleStore.from_settings(redis_client, settings)
    morning = article_from(10, text="الصيغة الأولى من الخبر", fetched_at="2026-11-22T08:00:00Z")
    evening = article_from(20, text="الصيغة المحدثة من الخبر", fetched_at="2026-11-22T20:00:00Z")
    assert (await store.save(morning, now=NOW)).result is SaveResult.NEW
    assert (await store.save(evening, now=NOW)).result is SaveResult.UPDATED
    assert await store.mark_published(ArticleVersion.of(evening), on_topic(0), resent=False, sender=evening.source) is None
    # a replay of the morning's range only, by the same pipeline or a newer one
    for replayed in (article_from(30, text="الصيغة الأولى من الخبر", fetched_at="2026-11-22T08:00:00Z"),
                     article_from(31, version=2, text="الصيغة الأولى من الخبر", fetched_at="2026-11-22T08:00:00Z")):
        saved = await store.save(replayed, now=NOW)
        assert saved.result is SaveResult.STALE and saved.to_publish is None
    stored = await redis_client.hget(store.article_key(evening.article_id), "json")
    assert json.loads(stored)["text"] == evening.text
    # the evening's crawl run by a newer pipeline replaces it
    assert (await store.save(article_from(40, version=2, text="الصيغة المحدثة من الخبر", fetched_at="2026-11-22T20:00:00Z"), now=NOW)).to_publish is not None


async def test_a_sighting_that_writes_nothing_renews_the_article(settings: Settings, redis_client):
    store = ArticleStore.from_settings(redis_client, settings)
    article = article_from(1)
    await store.save(article, now=NOW)
    key, index = store.article_key(article.article_id), store.domain_index_key(article.domain)
    await redis_client.expire(key, 60)
    await redis_client.expire(index, 60)
    later = article_from(2, fetched_at="2026-11-23T09:00:00Z")  # the same content, crawled a day later
    await store.touch(later)
    ttl_s = settings.article_ttl_days * 86400
    assert await redis_client.ttl(key) > ttl_s - 60 and await redis_client.ttl(index) > ttl_s - 60
    # an article that is not (or no longer) stored is not brought back as an empty hash
    await redis_client.delete(key)
    await store.touch(later)
    assert not await redis_client.exists(key)


async def test_a_page_keeps_the_outcome_of_its_newest_record_whatever_the_order_handled(
    settings: Settings, redis_client
):
    store = ArticleStore.from_settings(redis_client, settings)
    url = "https://news.example/a"

    async def record(outcome: str, offset: int, source_ts_ms: int | None) -> dict[bytes, bytes]:
        await store.record_page_outcome(
            url, outcome=outcome, stage="sink" if outcome == "kept" else "decode", reason=outcome,
            article_id=None, source=SourcePosition(topic="pages.raw", partition=0, offset=offset),
            source_ts_ms=source_ts_ms,
        )
        return await redis_client.hgetall(store.page_key(url))

    assert (await record("kept", 20, 2_000))[b"outcome"] == b"kept"
    # a replay of an older range: its failure is older than the success, which stays
    kept = await redis_client.hgetall(store.page_key(url))
    assert await record("failed", 10, 1_000) == kept
    # a newer crawl, and a record without a timestamp, are written
    assert (await record("failed", 30, 3_000))[b"offset"] == b"30"
    # two records of one millisecond (one producer batch), handled out of order: the later offset stays
    assert (await record("dropped", 33, 3_500))[b"offset"] == b"33"
    assert (await record("kept", 32, 3_500))[b"offset"] == b"33"
    assert (await record("kept", 31, None))[b"offset"] == b"31"
    assert 0 < await redis_client.ttl(store.page_key(url)) <= settings.page_status_ttl_days * 86400


MORNING = {"text": "الصيغة الأولى من الخبر", "fetched_at": "2026-11-22T08:00:00Z"}
EVENING = {"text": "الصيغة المحدثة من الخبر", "fetched_at": "2026-11-22T20:00:00Z"}
MORNING_RECORD, EVENING_RECORD = page_record(10), page_record(20)


async def saved_morning_and_evening(store: ArticleStore) -> tuple[ArticleVersion, ArticleVersion]:
    """Two crawls of one article, saved by two workers at once, both to be published."""
    morning, evening = article_from(MORNING_RECORD.offset, **MORNING), article_from(EVENING_RECORD.offset, **EVENING)
    assert (await store.save(morning, now=NOW)).to_publish == ArticleVersion.of(morning)
    assert (await store.save(evening, now=NOW)).to_publish == ArticleVersion.of(evening)
    return ArticleVersion.of(morning), ArticleVersion.of(evening)


async def publishing_fields(client, article_key: str) -> dict[bytes, bytes]:
    """The records that said they are sending the article and have not marked it yet."""
    return {field: value for field, value in (await client.hgetall(article_key)).items() if field.startswith(b"publishing:")}


@pytest.mark.parametrize("evening_marks_first", [True, False], ids=["newer marked first", "older marked first"])
async def test_an_older_version_the_topic_took_last_makes_the_held_one_sent_again(
    settings: Settings, redis_client, evening_marks_first: bool
):
    # The broker takes the evening's record first (offset 5), the morning's last (offset 6): the
    # compacted topic would keep the morning's text. Whichever mark comes second finds it out.
    store = ArticleStore.from_settings(redis_client, settings)
    morning, evening = await saved_morning_and_evening(store)
    if evening_marks_first:
        assert await store.mark_published(evening, on_topic(5), resent=False, sender=EVENING_RECORD) is None
        resend = await store.mark_published(morning, on_topic(6), resent=False, sender=MORNING_RECORD)
        resender = MORNING_RECORD
    else:
        assert await store.mark_published(morning, on_topic(6), resent=False, sender=MORNING_RECORD) is None
        resend = await store.mark_published(evening, on_topic(5), resent=False, sender=EVENING_RECORD)
        resender = EVENING_RECORD
    assert resend is not None
    assert_valid("articles", resend.value)  # what the worker sends again: the bytes Redis holds, as they are
    assert resend == evening  # the bytes Redis holds, and the record that wrote them
    # the record that must send again is still sending: a crash now, and its redelivery does
    article_key = store.article_key(evening.article_id)
    assert set(await publishing_fields(redis_client, article_key)) == {f"publishing:{resender.label}".encode()}
    assert await store.mark_published(resend, on_topic(7), resent=True, sender=resender) is None
    assert await publishing_fields(redis_client, article_key) == {}
    assert (await store.save(article_from(20, **EVENING), now=NOW)).to_publish is None


async def test_versions_the_topic_took_in_order_send_nothing_again(settings: Settings, redis_client):
    store = ArticleStore.from_settings(redis_client, settings)
    morning, evening = await saved_morning_and_evening(store)
    # the morning's first on the topic, marked before or after the evening's: nothing to resend
    assert await store.mark_published(evening, on_topic(6), resent=False, sender=EVENING_RECORD) is None
    assert await store.mark_published(morning, on_topic(5), resent=False, sender=MORNING_RECORD) is None
    # offsets of another partition (the topic's partition count changed) do not order anything
    assert await store.mark_published(evening, on_topic(0, partition=3), resent=False, sender=EVENING_RECORD) is None
    assert await publishing_fields(redis_client, store.article_key(evening.article_id)) == {}
    # redeliveries of both records, once they are marked: nothing more to send
    assert (await store.save(article_from(20, **EVENING), now=NOW)).to_publish is None
    assert (await store.save(article_from(10, **MORNING), now=NOW)).to_publish is None


@pytest.mark.parametrize("evening_marked", [True, False], ids=["newer marked", "newer not marked yet"])
async def test_a_record_killed_between_its_send_and_its_mark_sends_the_held_version_when_redelivered(
    settings: Settings, redis_client, evening_marked: bool
):
    # The broker takes the evening's record (offset 5), then the morning's (offset 6), whose worker
    # is killed or loses the partition before its mark: no mark ever sees offset 6, and Redis says
    # the evening's version went out. The morning's record comes again; its save is stale.
    store = ArticleStore.from_settings(redis_client, settings)
    morning, evening = await saved_morning_and_evening(store)
    if evening_marked:
        assert await store.mark_published(evening, on_topic(5), resent=False, sender=EVENING_RECORD) is None
    redelivered = await store.save(article_from(MORNING_RECORD.offset, **MORNING), now=NOW)
    assert redelivered.result is SaveResult.STALE
    assert redelivered.to_publish == evening  # the bytes Redis holds, and the record that wrote them
    assert await store.mark_published(redelivered.to_publish, on_topic(7), resent=False, sender=MORNING_RECORD) is None
    if not evening_marked:  # the evening's worker marks its send last: offset 5 is older than 7
        assert await store.mark_published(evening, on_topic(5), resent=False, sender=EVENING_RECORD) is None
    stored = await redis_client.hgetall(store.article_key(evening.article_id))
    marker = evening.marker.encode()
    assert (stored[b"last_offset"], stored[b"last_published"], stored[b"published"]) == (b"7", marker, marker)
    assert await publishing_fields(redis_client, store.article_key(evening.article_id)) == {}
    # a further delivery of either record sends nothing
    assert (await store.save(article_from(MORNING_RECORD.offset, **MORNING), now=NOW)).to_publish is None
    assert (await store.save(article_from(EVENING_RECORD.offset, **EVENING), now=NOW)).to_publish is None


async def test_a_topic_whose_offsets_went_back_ends_the_resends(settings: Settings, redis_client):
    # The articles topic recreated: the evening's record at offset 0 looks older than the
    # morning's at 500 that Redis remembers. One resend, which is then the newest: no more.
    store = ArticleStore.from_settings(redis_client, settings)
    morning, evening = await saved_morning_and_evening(store)
    assert await store.mark_published(morning, on_topic(500), resent=False, sender=MORNING_RECORD) is None
    resend = await store.mark_published(evening, on_topic(0), resent=False, sender=EVENING_RECORD)
    assert resend is not None
    assert_valid("articles", resend.value)
    assert resend == evening
    assert await store.mark_published(resend, on_topic(1), resent=True, sender=EVENING_RECORD) is None
    assert (await store.save(article_from(20, **EVENING), now=NOW)).to_publish is None


async def test_a_resend_the_topic_refuses_is_taken_over_by_a_replay_of_its_writer(settings: Settings, redis_client):
    store = ArticleStore.from_settings(redis_client, settings)
    morning, evening = await saved_morning_and_evening(store)
    assert await store.mark_published(evening, on_topic(5), resent=False, sender=EVENING_RECORD) is None
    resend = await store.mark_published(morning, on_topic(6), resent=False, sender=MORNING_RECORD)
    assert resend is not None
    await store.release(resend, sender=MORNING_RECORD)  # the topic refused it for good
    # the morning's record is dead-lettered and acknowledged: it will not come again to send
    assert await publishing_fields(redis_client, store.article_key(evening.article_id)) == {}
    replay_copy = article_from(90, **EVENING)  # the evening's record, copied by a replay
    assert (await store.save(replay_copy, now=NOW)).to_publish == ArticleVersion.of(replay_copy)


async def test_a_publication_date_years_ahead_does_not_keep_the_article_at_the_top_of_the_indexes(
    settings: Settings, redis_client
):
    """A CMS that writes the wrong year (2099): trimming drops the lowest scores, so such an id
    stayed first in "newest articles" queries for good, after its article had expired."""
    store = ArticleStore.from_settings(redis_client, settings)
    wrong_year = article_from(1).model_copy(update={"published_at": datetime(2099, 1, 1, tzinfo=UTC)})
    local_tomorrow = article_from(2).model_copy(
        update={"article_id": "b" * 32, "published_at": datetime(2026, 11, 22, 23, 30, tzinfo=UTC)}
    )
    for article in (wrong_year, local_tomorrow):
        await store.save(article, now=NOW)
    fetched = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
    scores = dict(await redis_client.zrange(store.time_index_key, 0, -1, withscores=True))
    assert scores[wrong_year.article_id.encode()] == (fetched.timestamp() + 86400)
    assert scores[local_tomorrow.article_id.encode()] == local_tomorrow.published_at.timestamp()  # within the day
    domain_scores = dict(await redis_client.zrange(store.domain_index_key(wrong_year.domain), 0, -1, withscores=True))
    assert domain_scores == scores


async def test_the_indexes_keep_only_their_capped_number_of_newest_articles(settings: Settings, redis_client):
    capped = settings.model_copy(update={"time_index_max_articles": 3, "domain_index_max_articles": 3})
    store = ArticleStore.from_settings(redis_client, capped)
    # published one hour apart, saved out of order: the cap keeps the newest, not the last saved
    articles = [
        article_from(hours_ago).model_copy(
            update={"article_id": f"{hours_ago:032x}", "published_at": NOW - timedelta(hours=hours_ago)}
        )
        for hours_ago in (1, 4, 0, 3, 2)
    ]
    for article in articles:
        assert (await store.save(article, now=NOW)).result is SaveResult.NEW
    newest = sorted(articles, key=index_score, reverse=True)[:3]
    expected = {article.article_id.encode(): index_score(article) for article in newest}
    assert len(set(expected.values())) == 3  # distinct scores: which three are the newest is not a tie
    for index in (store.time_index_key, store.domain_index_key(articles[0].domain)):
        assert dict(await redis_client.zrange(index, 0, -1, withscores=True)) == expected, index


GONE = Withdrawal(at=datetime(2026, 11, 22, 12, 0, tzinfo=UTC), http_status=410)


async def test_a_withdrawal_is_published_by_its_record_once_and_again_by_its_redelivery_killed_before_its_mark(
    settings: Settings, redis_client
):
    store = ArticleStore.from_settings(redis_client, settings)
    article = article_from(1)
    await store.save(article, now=NOW)
    assert await store.mark_published(ArticleVersion.of(article), on_topic(0), resent=False, sender=article.source) is None
    assert await store.withdraw("0" * 32, GONE, writer=page_record(2)) is None  # no such article

    withdrawn = await store.withdraw(article.article_id, GONE, writer=page_record(2))
    expected = article.model_copy(update={"withdrawn": GONE})
    # the bytes the model dumps for the article withdrawn, sent by the withdrawing record
    assert withdrawn == SavedArticle(SaveResult.WITHDRAWN, ArticleVersion(
        article.article_id, expected.model_dump_json(by_alias=True).encode(), publish_marker(expected), "pages.raw/0/2"
    ))
    assert_valid("articles", withdrawn.to_publish.value)
    key = store.article_key(article.article_id)
    assert await redis_client.hget(key, "withdrawn") == GONE.model_dump_json().encode()
    # killed after the send, before the mark: its redelivery sends the same bytes again
    again = await store.withdraw(article.article_id, GONE, writer=page_record(2))
    assert (again.result, again.to_publish) == (SaveResult.UNCHANGED, withdrawn.to_publish)
    assert await store.mark_published(again.to_publish, on_topic(1), resent=False, sender=page_record(2)) is None
    assert await redis_client.hget(key, "published") == publish_marker(expected).encode()
    assert await publishing_fields(redis_client, key) == {}
    # once marked, neither it nor another record of the gone page sends anything
    for writer in (page_record(2), page_record(3)):
        assert await store.withdraw(article.article_id, GONE, writer=writer) == SavedArticle(SaveResult.UNCHANGED, None)


async def test_an_article_a_sighting_restores_is_back_in_its_domain_index_with_its_ttl(settings: Settings, redis_client):
    # the withdrawal emptied the domain's index, and Redis deleted it: the sighting's renewal ran
    # before the restore recreated it, and the index was left without a TTL
    store = ArticleStore.from_settings(redis_client, settings)
    article = article_from(1)
    await store.save(article, now=NOW)
    await store.withdraw(article.article_id, GONE, writer=page_record(2))
    index = store.domain_index_key(article.domain)
    assert not await redis_client.exists(index)
    restored = await store.touch(article_from(3, fetched_at="2026-11-22T13:00:00Z"))
    assert restored.result is SaveResult.RESTORED
    assert await redis_client.zscore(index, article.article_id) is not None
    assert await redis_client.ttl(index) > settings.article_ttl_days * 86400 - 60


async def test_a_sighting_of_other_content_never_restores_the_stored_text_over_the_version_it_saw(
    settings: Settings, redis_client
):
    # Deduplication knows a newer version B (its record classified it and has not saved it yet);
    # a later crawl of B is "unchanged" and only touches. Restoring would put back A, the text the
    # page no longer shows, and make B's own save stale: B was lost for good.
    store = ArticleStore.from_settings(redis_client, settings)
    text_a, text_b = "الصيغة الأولى من الخبر", "الصيغة المصححة من الخبر"
    first = article_from(1, text=text_a, fetched_at="2026-11-22T09:00:00Z")
    await store.save(first, now=NOW)
    await store.withdraw(first.article_id, GONE, writer=page_record(2))  # the page was gone at 12:00
    sighting = await store.touch(article_from(4, text=text_b, fetched_at="2026-11-22T14:00:00Z"))
    assert sighting == SavedArticle(SaveResult.UNCHANGED, None)
    key = store.article_key(first.article_id)
    assert await redis_client.hget(key, "withdrawn") is not None
    saved = await store.save(article_from(3, text=text_b, fetched_at="2026-11-22T13:00:00Z"), now=NOW)
    assert saved.result is SaveResult.UPDATED and saved.to_publish is not None
    assert json.loads(await redis_client.hget(key, "json"))["text"] == text_b
    assert await redis_client.hget(key, "withdrawn") is None


async def test_a_withdrawal_the_topic_refused_for_good_is_published_by_a_replay_of_its_record(
    settings: Settings, redis_client
):
    store = ArticleStore.from_settings(redis_client, settings)
    article = article_from(1)
    await store.save(article, now=NOW)
    withdrawn = await store.withdraw(article.article_id, GONE, writer=page_record(2))
    await store.release(withdrawn.to_publish, sender=page_record(2))
    replayed = await store.withdraw(article.article_id, GONE, writer=page_record(90))
    assert replayed.to_publish is not None and replayed.to_publish.value == withdrawn.to_publish.value
    assert replayed.to_publish.writer == "pages.raw/0/90"


async def test_a_page_record_keeps_its_article_for_as_long_as_the_article_may_live(settings: Settings, redis_client):
    # A 404 crawled after the page TTL (7 days) found no link and withdrew nothing, although the
    # article stays 30 days; a re-crawl that failed or was dropped erased the link as well.
    store = ArticleStore.from_settings(redis_client, settings)
    linked, unlinked = "https://news.example/made-an-article", "https://news.example/never-did"
    page_ttl_s, article_ttl_s = settings.page_status_ttl_days * 86400, settings.article_ttl_days * 86400

    async def record(url: str, outcome: str, offset: int, article_id: str | None) -> tuple[dict[bytes, bytes], int]:
        await store.record_page_outcome(
            url, outcome=outcome, stage="sink" if outcome == "kept" else "extract", reason=outcome,
            article_id=article_id, source=SourcePosition(topic="pages.raw", partition=0, offset=offset),
            source_ts_ms=1_000 + offset,
        )
        return await redis_client.hgetall(store.page_key(url)), await redis_client.ttl(store.page_key(url))

    fields, ttl = await record(linked, "kept", 1, "a1")
    assert fields[b"article_id"] == b"a1" and page_ttl_s < ttl <= article_ttl_s
    fields, ttl = await record(linked, "failed", 2, None)  # a re-crawl that timed out
    assert fields[b"outcome"] == b"failed" and fields[b"article_id"] == b"a1" and page_ttl_s < ttl <= article_ttl_s
    assert await store.linked_article(linked) == "a1"
    fields, _ = await record(linked, "kept", 3, "a2")  # the URL now makes another article
    assert fields[b"article_id"] == b"a2"

    fields, ttl = await record(unlinked, "failed", 4, None)
    assert fields[b"article_id"] == b"" and 0 < ttl <= page_ttl_s


async def test_a_page_record_keeps_the_article_and_the_newest_withdrawal_whatever_the_order_its_records_are_handled(
    settings: Settings, redis_client
):
    # A URL's records finish out of order in one worker: here a 503 and a 410 before the 200 crawled
    # first. The page record still names the article the 200 made, and hands it the withdrawal.
    store = ArticleStore.from_settings(redis_client, settings)
    url, page_ttl_s = "https://news.example/gone", settings.page_status_ttl_days * 86400
    gone = Withdrawal(at=datetime(2026, 11, 22, 10, 10, tzinfo=UTC), http_status=410)

    async def record(outcome: str, offset: int, **kwargs):
        return await store.record_page_outcome(
            url, outcome=outcome, stage="sink" if outcome == "kept" else "decode", reason=outcome,
            source=SourcePosition(topic="pages.raw", partition=0, offset=offset), source_ts_ms=1_000 + offset, **kwargs
        )

    assert await record("dropped", 3, article_id=None) is None  # the 503, newest
    assert await record("dropped", 2, article_id=None, withdrawal=gone) is None  # no article to name yet
    owed = await record("kept", 1, article_id="a1", kept_fetched_at=datetime(2026, 11, 22, 10, 0, tzinfo=UTC))
    assert (owed.article_id, owed.withdrawal) == ("a1", gone)
    fields = await redis_client.hgetall(store.page_key(url))
    assert (fields[b"offset"], fields[b"article_id"]) == (b"3", b"a1")
    assert await redis_client.ttl(store.page_key(url)) > page_ttl_s
    # a crawl after the withdrawal found the page: it is forgotten
    assert await record("kept", 4, article_id="a1", kept_fetched_at=datetime(2026, 11, 22, 10, 20, tzinfo=UTC)) is None
    assert await record("kept", 1, article_id="a1", kept_fetched_at=datetime(2026, 11, 22, 10, 0, tzinfo=UTC)) is None
