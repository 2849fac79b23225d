"""DedupIndex against the real Redis: duplicates, updates, stories, replays, expiry, races; and
the alerts that its decisions lead to (the engine and its ledger on the same Redis), as the
pipeline calls them."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import itertools
import random
import struct
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from contract import assert_valid

from workers.alerts.engine import AlertEngine, RulesFile
from workers.alerts.ledger import AlertLedger
from workers.alerts.match import StoryInfo
from workers.alerts.messages import Alert, alert_id_for
from workers.alerts.rules import RuleKind
from workers.dedup.index import DF_LANGUAGES_HELD, MEMOS_KEPT, DedupConfig, DedupDecision, DedupIndex, Status
from workers.models import Article
from workers.settings import Settings
from workers.sinks.redis_store import ArticleVersion
from workers.stages.extract import DETECTED_LANGUAGES

from tests.builders import article as built_article
from tests.builders import expire_until
from tests.shared_data import SEEDS

# The session loop: the redis_client fixture lives in it (tests/conftest.py).
pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

SEED_000, SEED_004 = sorted(SEEDS.glob("*.txt"))
# Expiry is absolute and follows fetched_at: the articles must be recent for keys to live.
# Counts are kept per UTC day, so the tests' few hours of offsets start at 01:00 of yesterday:
# a T0 of "now" put a test run at 23:55 across midnight and split a day's count in two.
T0 = datetime.now(UTC).replace(hour=1, minute=0, second=0, microsecond=0) - timedelta(days=1)
_offsets = itertools.count()

FOOTBALL = (
    "فاز فريق الأهلي على غريمه الزمالك بهدفين مقابل هدف في المباراة النهائية لكأس مصر التي "
    "أقيمت مساء الجمعة على ستاد القاهرة الدولي بحضور جماهيري كبير.\n"
    "وسجل للأهلي مهاجمه في الشوط الأول من ضربة رأس إثر ركنية، ثم أضاف زميله الهدف الثاني "
    "بتسديدة قوية من خارج منطقة الجزاء قبل أن يقلص الزمالك الفارق في الدقائق الأخيرة.\n"
    "وبهذا الفوز يحرز الأهلي لقب الكأس للمرة الثامنة والثلاثين في تاريخه، ويضمن مشاركته في "
    "بطولة الكونفدرالية الأفريقية الموسم المقبل، فيما أشاد مدربه بروح اللاعبين وانضباطهم."
)


def body(path: Path) -> str:
    return "\n".join(path.read_text(encoding="utf-8").splitlines()[6:36])


def article(
    url: str,
    text: str,
    *,
    title: str | None = None,
    minutes: float = 0.0,
    language: str | None = "ar",
    published_at: datetime | None = None,
) -> Article:
    """An article fetched ``minutes`` after T0, at the next offset."""
    return built_article(
        url, text, fetched_at=T0 + timedelta(minutes=minutes), title=title, language=language, offset=next(_offsets),
        published_at=published_at,
    )


def as_published(decision: DedupDecision, page: Article) -> dict:
    """The article the pipeline stores and publishes for this decision (workers/pipeline.py: the
    decision applied, then serialised as ArticleVersion does), held to the articles schema."""
    return assert_valid("articles", ArticleVersion.of(decision.applied_to(page)).value)


async def alerts_in_stream(redis_client: aioredis.Redis, ledger: AlertLedger) -> list[dict]:
    """The alerts of the Redis stream, each held to the alerts schema as it is stored there."""
    return [assert_valid("alerts", fields[b"json"]) for _id, fields in await redis_client.xrange(ledger.stream_key)]


@pytest.fixture
def index(redis_client: aioredis.Redis, settings: Settings) -> DedupIndex:
    # Few buckets: several entries share each, as in production.
    return DedupIndex(redis_client, settings.redis_prefix, DedupConfig(buckets=64))


def edited(text: str) -> str:
    """A copy desk's pass over wire copy: a word changed in every paragraph, a dateline."""
    paragraphs = text.splitlines()
    out = ["حلب (وكالات) -"]
    for i, p in enumerate(paragraphs):
        words = p.split(" ")
        if len(words) > 8:
            words[len(words) // 2] = "أيضاً" if i % 2 else "كذلك"
        out.append(" ".join(words))
    return "\n".join(out)


async def test_same_content_at_another_url_is_an_exact_duplicate(
    index: DedupIndex, redis_client: aioredis.Redis, settings: Settings
) -> None:
    original = article("https://one.example/a", body(SEED_000))
    first = await index.classify(original)
    copy_page = article("https://amp.one.example/a", body(SEED_000), minutes=5)
    copy = await index.classify(copy_page)
    assert first.status is Status.NEW and first.story_id
    assert copy.status is Status.DUPLICATE
    assert copy.duplicate_of == original.article_id
    assert copy.similarity == 1.0
    assert copy.story_id == first.story_id
    published = as_published(copy, copy_page)
    assert (published["status"], published["duplicate_of"], published["similarity"]) == ("duplicate", original.article_id, 1.0)
    # a copy is never looked up by its signature: none is kept for it (232 bytes a copy for a week)
    assert await redis_client.exists(sig_key(settings, original.url)) and not await redis_client.exists(sig_key(settings, copy_page.url))


async def test_the_same_url_again_is_an_update_only_when_its_content_changed(
    index: DedupIndex,
) -> None:
    url = "https://one.example/a"
    first = await index.classify(article(url, body(SEED_000)))
    again = await index.classify(article(url, body(SEED_000), minutes=60))
    changed_page = article(url, body(SEED_000) + "\nتحديث: وصل الوفد.", minutes=120)
    changed = await index.classify(changed_page)
    stale = await index.classify(article(url, body(SEED_000), minutes=90))  # an older crawl, late
    assert again.status is Status.UNCHANGED and not again.emit
    assert changed.status is Status.UPDATE and changed.emit
    assert changed.story_id == first.story_id and changed.duplicate_of is None
    assert stale.status is Status.UNCHANGED
    published = as_published(changed, changed_page)
    assert (published["status"], published["duplicate_of"], published["similarity"]) == ("update", None, None)


def doc_key(settings: Settings, url: str) -> str:
    return f"{settings.redis_prefix}:dd:doc:{hashlib.blake2b(url.encode(), digest_size=8).hexdigest()}"


MINISTER = (
    "Le Ministre de l'Intérieur, Hans Muller, a annoncé mardi un nouveau plan de sécurité pour les "
    "gares de la région, après une série d'incidents signalés depuis le début de l'été.\n"
    "Selon le ministère, deux cents agents supplémentaires seront déployés d'ici la fin du mois, et "
    "les contrôles seront renforcés aux heures de pointe dans les principales gares.\n"
    "Les syndicats de cheminots ont salué l'annonce, tout en demandant que les recrutements soient "
    "pérennes et que les agents reçoivent une formation adaptée aux situations de crise."
)


async def test_a_headline_or_spelling_edit_is_an_update_and_markup_or_spacing_is_not(
    index: DedupIndex,
) -> None:
    # The version of a URL is what a reader sees (its content_hash). The content fingerprint folds
    # case, accents, punctuation and Arabic spelling variants and leaves out the title: compared
    # by it, a corrected headline or a name put right was "unchanged", never stored nor published.
    url = "https://one.example/a"
    first = await index.classify(article(url, body(SEED_000), title="كيري: الجهود ستتواصل"))
    headline_page = article(url, body(SEED_000), title="كيري ولافروف يفشلان في الاتفاق حول حلب", minutes=30)
    headline = await index.classify(headline_page)
    assert (headline.status, headline.story_id, headline.duplicate_of) == (Status.UPDATE, first.story_id, None)
    assert as_published(headline, headline_page)["title"] == headline_page.title
    # markup and spacing a re-crawl changed: the same text as a reader sees it
    respaced = "\n\n".join(" " + line.replace(" ", "  ") + " " for line in body(SEED_000).splitlines())
    same = await index.classify(article(url, respaced, title=" كيري ولافروف  يفشلان في الاتفاق حول حلب", minutes=60))
    assert same.status is Status.UNCHANGED and not same.emit
    # the hamzas of a sloppy first version put right: the same normalised tokens, another version
    hamza_url = "https://one.example/hamza"
    sloppy = await index.classify(article(hamza_url, body(SEED_000).replace("أ", "ا"), minutes=90))
    corrected = await index.classify(article(hamza_url, body(SEED_000), minutes=120))
    assert (sloppy.status, sloppy.similarity, corrected.status) == (Status.DUPLICATE, 1.0, Status.UPDATE)
    # case and accents put right, in a Latin script
    latin_url = "https://two.example/interieur"
    await index.classify(article(latin_url, MINISTER, language="fr", minutes=150))
    fixed = MINISTER.replace("Le Ministre", "Le ministre").replace("Muller", "Müller")
    assert (await index.classify(article(latin_url, fixed, language="fr", minutes=180))).status is Status.UPDATE
    # ... and across URLs the fingerprint still says what it said: a copy, exactly
    copy = await index.classify(article("https://three.example/c", fixed, language="fr", minutes=200))
    assert (copy.status, copy.similarity) == (Status.DUPLICATE, 1.0)


async def test_a_replay_of_two_extractions_of_one_crawl_differing_in_the_headline_returns_each_decision(
    index: DedupIndex, redis_client: aioredis.Redis, settings: Settings
) -> None:
    # One crawl (one fetched_at) extracted twice, the headline cleaned otherwise the second time
    # (a reprocess by a newer pipeline): identified by its fingerprint, the second delivery was
    # the first's, and got its decision back.
    url = "https://one.example/a"
    titled = article(url, body(SEED_000), title="كيري: الجهود ستتواصل | الموقع")
    cleaned = article(url, body(SEED_000), title="كيري: الجهود ستتواصل")
    decisions = [await index.classify(page) for page in (titled, cleaned)]
    assert [d.status for d in decisions] == [Status.NEW, Status.UPDATE]
    doc = await redis_client.hgetall(doc_key(settings, url))
    assert [await index.classify(page) for page in (titled, cleaned)] == decisions
    assert await redis_client.hgetall(doc_key(settings, url)) == doc


async def written_before_versions(
    index: DedupIndex, redis_client: aioredis.Redis, settings: Settings, page: Article
) -> None:
    """Make the URL's doc what the layout before versions wrote for ``page``, its newest version:
    its content fingerprint (``fp``) and no ``v``, and the memo of its delivery under the
    delivery's identity of then, (article_id, fetched_at, fingerprint)."""
    key, prepared = doc_key(settings, page.canonical_url), index._prepare(page)
    doc = await redis_client.hgetall(key)
    assert doc[b"v"] == prepared.version and b"fp" not in doc
    memo = doc.pop(prepared.memo_field.encode())
    await redis_client.hdel(key, "v", prepared.memo_field)
    await redis_client.hset(key, mapping={"fp": prepared.fingerprint, prepared.old_memo_field: memo})


async def test_a_doc_written_before_versions_is_compared_by_fingerprint_until_a_recrawl_gives_it_one(
    index: DedupIndex, redis_client: aioredis.Redis, settings: Settings
) -> None:
    url, title = "https://one.example/a", "كيري: الجهود ستتواصل"
    page = article(url, body(SEED_000), title=title)
    first = await index.classify(page)
    await written_before_versions(index, redis_client, settings, page)
    # Its delivery, redelivered after the deploy (its worker stopped before the ack), gets its
    # decision back: decided again, it found its own doc and was unchanged, never stored.
    assert await index.classify(page) == first
    # Comparing versions the doc has not got made every live article's next re-crawl an update,
    # published (and alerted) again on deploy day.
    again = await index.classify(article(url, body(SEED_000), title=title, minutes=30))
    assert again.status is Status.UNCHANGED
    # That re-crawl gave the doc its version: a headline edit is an update from then on.
    doc = await redis_client.hgetall(doc_key(settings, url))
    assert (b"fp" in doc, doc[b"t"]) == (False, repr((T0 + timedelta(minutes=30)).timestamp()).encode())
    edit = await index.classify(article(url, body(SEED_000), title="كيري ولافروف يفشلان", minutes=60))
    assert (edit.status, edit.story_id) == (Status.UPDATE, first.story_id)

    # A doc of then whose next crawl changed its text: an update, which gives it its version too.
    other = article("https://two.example/b", FOOTBALL, title="الأهلي بطلاً للكأس", minutes=70)
    await index.classify(other)
    await written_before_versions(index, redis_client, settings, other)
    changed = await index.classify(article(other.url, FOOTBALL + "\nتحديث", title=other.title, minutes=80))
    assert changed.status is Status.UPDATE
    assert b"fp" not in await redis_client.hgetall(doc_key(settings, other.url))
    retitled = await index.classify(article(other.url, FOOTBALL + "\nتحديث", title="الأهلي يحرز الكأس", minutes=90))
    assert retitled.status is Status.UPDATE


async def test_an_edited_copy_is_a_near_duplicate(index: DedupIndex) -> None:
    original = article("https://one.example/a", body(SEED_000))
    first = await index.classify(original)
    copy_page = article("https://two.example/b", edited(body(SEED_000)), minutes=30)
    copy = await index.classify(copy_page)
    assert copy.status is Status.DUPLICATE
    assert copy.duplicate_of == original.article_id
    assert copy.similarity is not None and 0.35 <= copy.similarity < 1.0
    assert copy.story_id == first.story_id
    assert as_published(copy, copy_page)["similarity"] == copy.similarity


STUB = "This is a breaking news story and will be updated as more information becomes available. Check back for updates."
QUAKE = (
    "A magnitude 6.8 earthquake struck off the coast of northern Chile early on Friday, the United States Geological "
    "Survey said, shaking buildings in several coastal towns and prompting a brief tsunami alert.\n"
    "The quake hit at a depth of about 35 kilometres, roughly 60 kilometres west of the port city of Antofagasta, "
    "and was felt as far away as the capital Santiago, according to residents and local media.\n"
    "Chile's disaster agency said there were no immediate reports of casualties or major damage, but it ordered a "
    "precautionary evacuation of low-lying coastal areas while officials assessed the risk of a tsunami.\n"
    "The alert was lifted about an hour later after the navy's hydrographic service said the sea level changes "
    "observed along the coast did not pose a threat to the population."
)


async def test_a_copy_s_url_filled_in_with_another_article_is_that_article_s_original(
    index: DedupIndex, redis_client: aioredis.Redis, settings: Settings
) -> None:
    # Two breaking-news stubs of one outlet share their boilerplate: the second is a copy of the
    # first. Filled in with the earthquake, it stayed the copy of the bank's stub, in its story, and
    # was never indexed: the AP's copy of the earthquake was new, in a story of its own.
    boe_page = article("https://news.example/boe-rates", STUB, title="Bank of England raises interest rates", language="en")
    boe = await index.classify(boe_page)
    stub_title = "Magnitude 6.8 earthquake strikes northern Chile"
    stub = await index.classify(article("https://news.example/chile-quake", STUB, title=stub_title, minutes=20, language="en"))
    assert (stub.status, stub.duplicate_of, stub.story_id) == (Status.DUPLICATE, boe_page.article_id, boe.story_id)
    filled_page = article("https://news.example/chile-quake", QUAKE, title=stub_title, minutes=60, language="en")
    filled = await index.classify(filled_page)
    assert (filled.status, filled.duplicate_of) == (Status.UPDATE, None)
    assert filled.story_id not in (None, boe.story_id)
    boe_story, quake_story = await index.story(boe.story_id), await index.story(filled.story_id)
    assert boe_story is not None and quake_story is not None
    assert filled_page.article_id not in boe_story.articles and filled_page.article_id in quake_story.articles
    assert not await redis_client.hexists(doc_key(settings, filled_page.url), "dup")  # its next update is an original's
    # A redelivery of the filled-in page: the same decision, and not a byte written.
    async def state() -> list[tuple[bytes, bytes | None]]:
        keys = sorted([k async for k in redis_client.scan_iter(match=f"{settings.redis_prefix}:*")])
        return [(k, await redis_client.dump(k)) for k in keys]

    before = await state()
    assert await index.classify(filled_page) == filled
    assert await state() == before
    ap = article("https://other.example/chile", QUAKE.replace("A magnitude", "SANTIAGO (AP) — A magnitude"),
                 title="Chile quake", minutes=70, language="en")
    copy = await index.classify(ap)
    assert (copy.status, copy.duplicate_of, copy.story_id) == (Status.DUPLICATE, filled_page.article_id, filled.story_id)


async def test_a_different_article_of_the_same_site_is_not_a_duplicate(index: DedupIndex) -> None:
    chrome = "\n".join(SEED_000.read_text(encoding="utf-8").splitlines()[36:])
    await index.classify(article("https://one.example/a", body(SEED_000) + "\n" + chrome))
    other = await index.classify(
        article("https://one.example/b", FOOTBALL + "\n" + chrome, minutes=10)
    )
    assert other.status is Status.NEW


async def test_two_outlets_on_the_same_talks_are_one_story(
    index: DedupIndex, redis_client: aioredis.Redis, settings: Settings
) -> None:
    title_a = "كيري: الجهود ستتواصل بشأن حلب.. والجيش السوري يستمر في التقدّم"
    title_b = "كيري ولافروف يفشلان في الاتفاق حول حلب"
    a = await index.classify(article("https://one.example/a", body(SEED_000), title=title_a))
    b = await index.classify(
        article("https://two.example/b", body(SEED_004), title=title_b, minutes=236)
    )
    assert (a.status, b.status) == (Status.NEW, Status.NEW)
    assert a.story_id == b.story_id
    assert a.story_id is not None
    outlets = await index.story_outlets(a.story_id)
    assert outlets == {"one.example": T0, "two.example": T0 + timedelta(minutes=236)}
    story = await index.story(a.story_id)
    assert story is not None
    assert (story.first, story.last) == (T0, T0 + timedelta(minutes=236))
    assert story.outlets == outlets
    assert sorted(story.articles.values()) == [T0, T0 + timedelta(minutes=236)]


async def test_a_story_s_outlets_are_read_without_its_articles(
    index: DedupIndex, redis_client: aioredis.Redis, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Articles and outlets shared one sorted set: the breaking rule read (and parsed) every
    # article of the story to find its outlets, for each article of a story thousands long, and
    # each commit walked past every outlet when trimming the articles out of the window.
    p = settings.redis_prefix
    pages = [(f"https://{host}/{n}", minutes) for n, (host, minutes) in enumerate(
        [("one.example", 0), ("one.example", 10), ("two.example", 20), ("one.example", 30)]
    )]
    decisions = [await index.classify(article(url, body(SEED_000), minutes=m)) for url, m in pages]
    (story_id,) = {d.story_id for d in decisions}
    assert story_id is not None
    members = await redis_client.zrange(f"{p}:st:{story_id}:m", 0, -1)
    assert len(members) == 4 and all(m.startswith(b"a:") for m in members)

    read: list[str] = []
    zrange = redis_client.zrange

    def recorded(key: str, *args: object, **kwargs: object):  # noqa: ANN202 - redis-py's own type
        read.append(key)
        return zrange(key, *args, **kwargs)

    monkeypatch.setattr(redis_client, "zrange", recorded)
    outlets = await index.story_outlets(story_id)
    assert outlets == {"one.example": T0, "two.example": T0 + timedelta(minutes=20)}
    assert read == [f"{p}:st:{story_id}:outlets"]


async def test_a_story_written_before_outlets_had_their_own_set_keeps_them(
    index: DedupIndex, redis_client: aioredis.Redis, settings: Settings
) -> None:
    # Stories of the layout before kept their outlets among their articles ("o:{outlet}" in
    # :m). Read from their own set alone, a live story's outlets restarted at the upgrade, and
    # its next reports looked like a burst to the breaking rule.
    p = settings.redis_prefix
    a = await index.classify(article("https://one.example/a", body(SEED_000)))
    b = await index.classify(article("https://two.example/b", body(SEED_000), minutes=20))
    story_id = a.story_id
    assert story_id is not None and b.story_id == story_id
    members, outlets = f"{p}:st:{story_id}:m", f"{p}:st:{story_id}:outlets"
    old = {b"o:" + outlet: at for outlet, at in await redis_client.zrange(outlets, 0, -1, withscores=True)}
    await redis_client.zadd(members, old)  # the story as the layout before wrote it
    await redis_client.delete(outlets)
    first_seen = {"one.example": T0, "two.example": T0 + timedelta(minutes=20)}
    assert await index.story_outlets(story_id) == first_seen
    story = await index.story(story_id)
    assert story is not None and story.outlets == first_seen and len(story.articles) == 2

    # The next article moves them to their own set, with their first sightings.
    c = await index.classify(article("https://three.example/c", body(SEED_000), minutes=40))
    assert c.story_id == story_id
    first_seen["three.example"] = T0 + timedelta(minutes=40)
    assert await index.story_outlets(story_id) == first_seen
    assert all(m.startswith(b"a:") for m in await redis_client.zrange(members, 0, -1))
    assert await redis_client.ttl(outlets) > 0
    story = await index.story(story_id)
    assert story is not None and story.outlets == first_seen and len(story.articles) == 3


async def test_a_duplicate_of_an_article_whose_story_expired_joins_no_live_story(
    index: DedupIndex, redis_client: aioredis.Redis, settings: Settings
) -> None:
    # The story window (3 days) is shorter than the duplicate window (7): a copy may take the
    # story id of an original whose story has expired (deleted here: expiry is absolute).
    a = await index.classify(article("https://one.example/a", body(SEED_000)))
    assert a.story_id is not None
    await redis_client.delete(*(f"{settings.redis_prefix}:st:{a.story_id}:{k}" for k in ("s", "m", "outlets")))
    copy = await index.classify(article("https://two.example/a", body(SEED_000), minutes=5))
    assert copy.status is Status.DUPLICATE and copy.story_id == a.story_id
    story = await index.story(a.story_id)
    assert story is not None and story.first == story.last == T0 + timedelta(minutes=5)
    assert story.outlets == {"two.example": T0 + timedelta(minutes=5)}
    # The story string has no centroid: an article on the same event founds a new story.
    later = await index.classify(article("https://three.example/b", body(SEED_004), minutes=9))
    assert later.status is Status.NEW and later.story_id not in (None, a.story_id)


async def test_an_article_whose_doc_expired_rejoins_the_story_it_founded(
    index: DedupIndex, redis_client: aioredis.Redis, settings: Settings
) -> None:
    # A founds a story; a copy keeps it alive. A's doc expires (its window is counted from its
    # own crawl; deleted here) and the story is out of reach by its terms (the story index is
    # emptied here, as newer stories on the same terms would do). A crawled again with the same
    # text would found the same story id: it rejoins it (it used to lose the commit's version
    # check on every attempt, and the page was retried for ever).
    url = "https://one.example/founder"
    first = await index.classify(article(url, body(SEED_000)))
    copy = await index.classify(article("https://two.example/copy", body(SEED_000), minutes=5))
    assert (first.status, copy.status, copy.story_id) == (Status.NEW, Status.DUPLICATE, first.story_id)
    doc = f"{settings.redis_prefix}:dd:doc:{hashlib.blake2b(url.encode(), digest_size=8).hexdigest()}"
    assert await redis_client.delete(doc) == 1
    story_index = [key async for key in redis_client.scan_iter(match=f"{settings.redis_prefix}:st:ix:*")]
    await redis_client.delete(*story_index)

    again = await asyncio.wait_for(index.classify(article(url, body(SEED_000), minutes=60)), timeout=10)
    assert (again.status, again.story_id) == (Status.NEW, first.story_id)
    story = await index.story(first.story_id)
    assert story is not None and story.last == T0 + timedelta(minutes=60)


async def test_pages_older_than_the_window_are_remembered_for_the_pages_after_them(
    index: DedupIndex, redis_client: aioredis.Redis, settings: Settings
) -> None:
    # A reprocess after a version bump (or a replay of last month) goes through pages fetched
    # more than the window ago: their keys expired at once, and a copy came out new.
    nine_days = -9 * 24 * 60
    original = await index.classify(article("https://one.example/old", body(SEED_000), minutes=nine_days))
    copy = await index.classify(article("https://two.example/old-copy", body(SEED_000), minutes=nine_days + 30))
    assert (original.status, copy.status) == (Status.NEW, Status.DUPLICATE)
    assert copy.story_id == original.story_id
    assert (await index.story(original.story_id)) is not None
    for key in [key async for key in redis_client.scan_iter(match=f"{settings.redis_prefix}:*")]:
        assert await redis_client.ttl(key) > 0, key  # kept a while, not for ever


async def test_a_replay_returns_the_same_decisions_and_counts_nothing_twice(
    index: DedupIndex, redis_client: aioredis.Redis, settings: Settings
) -> None:
    stream = [
        article("https://one.example/a", body(SEED_000)),
        article("https://two.example/copy", body(SEED_000), minutes=3),
        article("https://one.example/b", FOOTBALL, minutes=7),
    ]
    first = [await index.classify(a) for a in stream]
    await index.flush()  # the document frequencies counted, into Redis
    p = settings.redis_prefix

    async def state() -> list[object]:
        story = first[0].story_id
        return [
            await redis_client.zrange(f"{p}:st:{story}:m", 0, -1, withscores=True),
            await redis_client.zrange(f"{p}:st:{story}:outlets", 0, -1, withscores=True),
            await redis_client.get(f"{p}:st:{story}:s"),
            sorted([k async for k in redis_client.scan_iter(match=f"{p}:*")]),
            [await redis_client.get(k) async for k in redis_client.scan_iter(match=f"{p}:st:n:*")],
        ]

    before = await state()
    replay = [await index.classify(a) for a in stream]
    await index.flush()
    assert replay == first
    assert [d.status for d in first] == [Status.NEW, Status.DUPLICATE, Status.NEW]
    assert first[1].duplicate_of == stream[0].article_id  # never a duplicate of itself
    assert await state() == before
    assert before[4] == [b"2"]  # the two new articles, once each


@pytest.mark.parametrize("changing", ["text", "title"])
async def test_a_url_whose_text_changes_at_every_crawl_keeps_only_its_newest_decisions(
    index: DedupIndex, redis_client: aioredis.Redis, settings: Settings, changing: str
) -> None:
    url = "https://live.example/blog"

    def crawl(minute: int) -> Article:
        stamp = f"آخر تحديث: الدقيقة {minute}"
        if changing == "title":  # a live page's headline with the time of its last entry
            return article(url, body(SEED_000), title=f"حلب مباشر - {stamp}", minutes=minute)
        return article(url, body(SEED_000) + "\n" + stamp, minutes=minute)

    crawls = [crawl(minute) for minute in range(0, 5 * (MEMOS_KEPT + 8), 5)]
    decisions = [await index.classify(crawl) for crawl in crawls]
    assert [d.status for d in decisions] == [Status.NEW] + [Status.UPDATE] * (len(crawls) - 1)
    (doc,) = [k async for k in redis_client.scan_iter(match=f"{settings.redis_prefix}:dd:doc:*")]
    memos = [field for field in await redis_client.hkeys(doc) if field.startswith(b"m:")]
    assert len(memos) == MEMOS_KEPT

    # a redelivery of a recent crawl gets its own decision back, and changes nothing
    before = await redis_client.hgetall(doc)
    assert await index.classify(crawls[-MEMOS_KEPT]) == decisions[-MEMOS_KEPT]
    assert await redis_client.hgetall(doc) == before
    # an older one is older than the version the index holds: nothing to emit, nothing written
    oldest = await index.classify(crawls[0])
    assert oldest.status is Status.UNCHANGED and not oldest.emit
    assert await redis_client.hgetall(doc) == before


async def test_every_key_has_a_ttl(
    index: DedupIndex, redis_client: aioredis.Redis, settings: Settings
) -> None:
    await index.classify(article("https://one.example/a", body(SEED_000)))
    await index.classify(article("https://one.example/a", body(SEED_000), minutes=5))  # unchanged
    await index.classify(article("https://one.example/a", body(SEED_000) + "\nتحديث", minutes=9))
    await index.classify(article("https://two.example/b", edited(body(SEED_000)), minutes=11))
    await index.classify(article("https://three.example/c", body(SEED_004), minutes=13))
    await index.classify(article("https://four.example/d", FOOTBALL, minutes=17))
    keys = [k async for k in redis_client.scan_iter(match=f"{settings.redis_prefix}:*")]
    kinds = {k.decode().split(":")[1] + ":" + k.decode().split(":")[2] for k in keys}
    assert {"dd:doc", "dd:s8", "dd:ix", "st:ix"} <= kinds
    assert all(any(k.endswith(part) for k in keys) for part in (b":s", b":m", b":outlets"))
    no_ttl = [k for k in keys if await redis_client.ttl(k) <= 0]
    assert no_ttl == []


def _variants(text: str) -> Iterator[tuple[str, str]]:
    """Pairs of near-identical texts: the same wire copy with one paragraph's ending changed."""
    paragraphs = text.splitlines()
    for i in range(5):
        yield text + f"\nملاحظة {i}.", "\n".join([*paragraphs[:-1], paragraphs[-1] + f" ({i})"])


async def test_concurrent_near_identical_articles_make_one_new_and_one_story(
    index: DedupIndex, redis_client: aioredis.Redis, settings: Settings
) -> None:
    # Each round two weeks after the last: out of the window, the rounds do not see each other.
    for round_, (a, b) in enumerate(_variants(body(SEED_004))):
        minutes = round_ * 20_000
        first, second = await asyncio.gather(
            index.classify(article(f"https://one.example/{round_}", a, minutes=minutes)),
            index.classify(article(f"https://two.example/{round_}", b, minutes=minutes)),
        )
        assert sorted([first.status, second.status]) == [Status.DUPLICATE, Status.NEW]
        assert first.story_id == second.story_id


async def test_concurrent_replays_of_one_delivery_agree(index: DedupIndex) -> None:
    a = article("https://one.example/a", body(SEED_000))
    decisions = await asyncio.gather(*(index.classify(a) for _ in range(4)))
    assert len(set(decisions)) == 1 and decisions[0].status is Status.NEW


# --- stories over days, and the alerts they fire ---------------------------------------------------

DAY = 24 * 60  # minutes


class Published:
    """The engine's publisher: what reached the ``alerts`` topic (the broker's side is tested in
    tests/integration/test_webhooks.py)."""

    def __init__(self) -> None:
        self.alerts: list[Alert] = []

    async def publish_alert(self, alert: Alert) -> None:
        self.alerts.append(alert)


class Newsroom:
    """The index, the alert engine and its ledger on the real Redis, called as the pipeline calls
    them (workers/pipeline.py)."""

    def __init__(self, index: DedupIndex, ledger: AlertLedger, rules: RulesFile) -> None:
        self.index, self.ledger, self.published = index, ledger, Published()
        self.engine = AlertEngine(rules, ledger=ledger, publisher=self.published, pipeline_version=1, retry_backoff_max_s=1)

    async def process(self, page: Article) -> tuple[DedupDecision, list[Alert]]:
        decision = await self.index.classify(page)
        assert decision.emit
        stored = decision.applied_to(page)
        as_published(decision, page)
        assert decision.story_id is not None
        story = StoryInfo(decision.story_id, await self.index.story_outlets(decision.story_id))
        fired = await self.engine.on_article(stored, urgent=stored.urgent, story=story, replay=None, source="pages.raw/0/1")
        return decision, fired


@pytest.fixture
def newsroom(
    index: DedupIndex, redis_client: aioredis.Redis, settings: Settings, tmp_path: Path
) -> Callable[[str], Newsroom]:
    def make(rules: str) -> Newsroom:
        path = tmp_path / "rules.yaml"
        path.write_text(rules, encoding="utf-8")
        ledger = AlertLedger(redis_client, prefix=settings.redis_prefix, fired_ttl_s=3600, stream_maxlen=1000)
        return Newsroom(index, ledger, RulesFile(path, secret_names=(), check_interval_s=60))

    return make


BREAKING = "version: 1\nrules: [{id: breaking, kind: breaking_story, match: {min_outlets: 3, within_minutes: 60}}]\n"


async def test_a_slow_story_never_breaks_and_keeps_its_outlets_first_sightings(
    newsroom: Callable[[str], Newsroom],
) -> None:
    # Three outlets on day 0, ten hours apart: not breaking news. A fourth reports every 12 h
    # until day 4, then the first three follow up within minutes. Outlets used to leave the story
    # a story window after their first sighting, even the one reporting right then, and come
    # back with a fresh one: the follow-ups fired "breaking" four days late.
    desk = newsroom(BREAKING)
    start = -4 * DAY - 60  # minutes from T0: ends about now
    pages = [("a", 0), ("b", 600), ("c", 1200)]
    pages += [("d", minute) for minute in range(DAY, 4 * DAY + 1, DAY // 2)]
    pages += [("a", 4 * DAY), ("b", 4 * DAY + 10), ("c", 4 * DAY + 20)]
    fired, story_ids = [], set()
    for n, (outlet, minute) in enumerate(pages):
        decision, alerts = await desk.process(article(f"https://{outlet}.example/{n}", body(SEED_000), minutes=start + minute))
        fired += alerts
        story_ids.add(decision.story_id)
    assert fired == []
    (story_id,) = story_ids
    first_seen = {o: T0 + timedelta(minutes=start + m) for o, m in [("a", 0), ("b", 600), ("c", 1200), ("d", DAY)]}
    assert await desk.index.story_outlets(story_id) == {f"{o}.example": at for o, at in first_seen.items()}
    # Articles still leave with the story window: outlets are what stays (one per domain).
    story = await desk.index.story(story_id)
    assert story is not None and min(story.articles.values()) >= story.last - timedelta(days=3)


async def test_a_fired_alert_is_remembered_as_long_as_its_subject_goes_on(
    newsroom: Callable[[str], Newsroom], redis_client: aioredis.Redis
) -> None:
    # The breaking burst stays in its story for good (outlets keep their first sightings): if the
    # alert's marker expired while the story went on, its next article would fire it again.
    desk = newsroom(BREAKING)
    fired = []
    for n, outlet in enumerate("abc"):
        fired += (await desk.process(article(f"https://{outlet}.example/{n}", body(SEED_000), minutes=n)))[1]
    (alert,) = fired
    key = desk.ledger.alert_key(alert.alert_id)
    await redis_client.expire(key, 30)  # stands for the end of fired_ttl_s, weeks into the story
    assert (await desk.process(article("https://d.example/3", body(SEED_000), minutes=DAY)))[1] == []
    assert 30 < await redis_client.ttl(key) <= 3600
    (in_stream,) = await alerts_in_stream(redis_client, desk.ledger)
    assert (in_stream["alert_id"], in_stream["rule_kind"]) == (alert.alert_id, "breaking_story")


async def test_one_outlets_hosts_are_one_outlet_of_a_story(newsroom: Callable[[str], Newsroom]) -> None:
    # The crawler fetches edition., amp. and m.cnn.com: one outlet's copies, not three reports.
    desk = newsroom(BREAKING)
    fired, story_ids = [], set()
    for n, host in enumerate(("edition.cnn.com", "amp.cnn.com", "m.cnn.com")):
        decision, alerts = await desk.process(article(f"https://{host}/2016/12/08/talks", body(SEED_000), minutes=n))
        fired += alerts
        story_ids.add(decision.story_id)
    (story_id,) = story_ids
    assert fired == []
    assert await desk.index.story_outlets(story_id) == {"cnn.com": T0}
    for n, host in enumerate(("www.bbc.co.uk", "news.bbc.co.uk", "192.0.2.7"), start=3):
        decision, alerts = await desk.process(article(f"https://{host}/talks", body(SEED_000), minutes=n))
        fired += alerts
    (alert,) = fired
    assert alert.story is not None
    assert [o.domain for o in alert.story.outlets] == ["cnn.com", "bbc.co.uk", "192.0.2.7"]


COPIES = """version: 1
rules:
  - {id: wires-urgent, kind: article, match: {urgent: true, domains: [reuters.com]}}
  - {id: aleppo, kind: article, match: {terms: ["حلب"]}}
  - {id: mosul, kind: article, match: {terms: ["الموصل"]}}
"""


async def test_a_copy_fires_the_article_rules_its_original_did_not_and_only_those(
    newsroom: Callable[[str], Newsroom], redis_client: aioredis.Redis
) -> None:
    desk = newsroom(COPIES)
    wire = body(SEED_000)
    # A paper runs the wire and is crawled first; Reuters' own page, urgent, comes five minutes later.
    paper = article("https://dailypaper.example/wire", wire)
    decision, fired = await desk.process(paper)
    assert decision.status is Status.NEW and [a.rule_id for a in fired] == ["aleppo"]
    reuters = article("https://reuters.com/world/aleppo", wire, minutes=5).model_copy(update={"urgent": True})
    decision, fired = await desk.process(reuters)
    assert decision.status is Status.DUPLICATE and [a.rule_id for a in fired] == ["wires-urgent"]
    assert fired[0].alert_id == alert_id_for("wires-urgent", RuleKind.ARTICLE, paper.article_id)
    assert fired[0].article.url == reuters.url
    # Its re-crawl with a line added is an update, still a copy: nothing fires again.
    recrawl = article(reuters.url, wire + "\nوأضاف المسؤول أن المحادثات ستستأنف.", minutes=20)
    recrawl = recrawl.model_copy(update={"urgent": True})
    decision, fired = await desk.process(recrawl)
    assert (decision.status, decision.duplicate_of, fired) == (Status.UPDATE, paper.article_id, [])
    published = as_published(decision, recrawl)  # an update of a copy: still naming its original
    assert (published["status"], published["duplicate_of"], published["similarity"]) == ("update", paper.article_id, None)
    # An edited copy that adds a watched word fires that rule, once.
    lines = wire.splitlines()
    lines[2] += " واندلعت اشتباكات قرب الموصل أيضاً."
    edited_copy = article("https://other.example/x", "\n".join(lines), minutes=9)
    decision, fired = await desk.process(edited_copy)
    assert decision.status is Status.DUPLICATE and [a.rule_id for a in fired] == ["mosul"]
    assert (await desk.process(edited_copy))[1] == []  # a redelivery
    in_stream = await alerts_in_stream(redis_client, desk.ledger)
    assert [a["rule_id"] for a in in_stream] == ["aleppo", "wires-urgent", "mosul"]


async def test_a_headline_edit_that_flags_the_article_urgent_fires_as_an_update_does(
    newsroom: Callable[[str], Newsroom], redis_client: aioredis.Redis
) -> None:
    # The rules are matched on every version a newsroom gets, once per (rule, article): an "عاجل:"
    # put in front of the headline (the extraction stage's urgent marker) is such a version, and
    # fires the urgent rule the first version did not match; the same headline again fires nothing.
    desk = newsroom("version: 1\nrules: [{id: urgent, kind: article, match: {urgent: true}}]\n")
    url, title = "https://one.example/aleppo", "كيري: الجهود ستتواصل بشأن حلب"
    decision, fired = await desk.process(article(url, body(SEED_000), title=title))
    assert (decision.status, fired) == (Status.NEW, [])
    flagged = article(url, body(SEED_000), title="عاجل: " + title, minutes=10).model_copy(update={"urgent": True})
    decision, fired = await desk.process(flagged)
    assert decision.status is Status.UPDATE and [a.rule_id for a in fired] == ["urgent"]
    assert fired[0].article.title == flagged.title
    again = article(url, body(SEED_000), title=flagged.title, minutes=20).model_copy(update={"urgent": True})
    assert (await desk.index.classify(again)).status is Status.UNCHANGED
    assert [a["rule_id"] for a in await alerts_in_stream(redis_client, desk.ledger)] == ["urgent"]


TITLE_A = "كيري: الجهود ستتواصل بشأن حلب.. والجيش السوري يستمر في التقدّم"
TITLE_B = "كيري ولافروف يفشلان في الاتفاق حول حلب"


async def test_a_story_dated_in_the_future_takes_no_article_of_today(index: DedupIndex) -> None:
    # A crawler's clock a year ahead: the story its page founds was live for every article until
    # then (now minus its last sighting is negative), and swallowed the year's events on the topic.
    skewed = await index.classify(article("https://skewed.example/a", body(SEED_000), title=TITLE_A, minutes=365 * DAY))
    today = await index.classify(article("https://two.example/b", body(SEED_004), title=TITLE_B, minutes=236))
    assert today.status is Status.NEW and today.story_id not in (None, skewed.story_id)


TALKS = datetime(2016, 12, 8, 19, 32, tzinfo=UTC)  # when the two seed pages were published


def talks_report(n: int, published_at: datetime | None) -> Article:
    """Another outlet's report of the seed talks (the first seed's words in another order), crawled
    ``n`` minutes after T0."""
    return article(f"https://outlet{n}.example/talks", reworded(body(SEED_000), n), title=TITLE_A, minutes=n,
                   published_at=published_at)


def archive_reports() -> list[Article]:
    """A sitemap's pages on the topic of the seed talks, one a year from 2012 to 2015, crawled
    10 to 13 minutes after T0."""
    return [talks_report(10 + year, datetime(2012 + year, 3, 1, tzinfo=UTC)) for year in range(4)]


UPDATE_LINE = "\nتحديث: انتهت المحادثات دون اتفاق."  # an update's last line: "the talks ended without agreement"


async def test_an_article_published_years_away_from_a_story_s_joins_another_whenever_it_was_crawled(
    index: DedupIndex,
) -> None:
    # A sitemap's page of 2013 on the same war, crawled today alongside the reports of the 2016
    # talks, joined their story: a breaking-story alert named its outlet as reporting them.
    a = await index.classify(article("https://one.example/a", body(SEED_000), title=TITLE_A, published_at=TALKS))
    b = await index.classify(article("https://two.example/b", body(SEED_004), title=TITLE_B, minutes=236,
                                     published_at=TALKS + timedelta(minutes=236)))
    assert a.story_id is not None and b.story_id == a.story_id
    # Its words alone would take it there: the same words, of unknown publication, join.
    undated = await index.classify(talks_report(1, None))
    assert undated.story_id == a.story_id
    archive = await index.classify(talks_report(2, datetime(2013, 8, 28, tzinfo=UTC)))
    assert archive.status is Status.NEW and archive.story_id not in (None, a.story_id)
    assert set(await index.story_outlets(a.story_id)) == {"one.example", "two.example", "outlet1.example"}


async def test_a_story_takes_articles_published_within_a_story_window_of_its_articles(index: DedupIndex) -> None:
    first = await index.classify(talks_report(1, TALKS))
    assert first.story_id is not None
    follow_up = await index.classify(talks_report(2, TALKS + timedelta(days=2.5)))
    assert follow_up.story_id == first.story_id
    # A story window (3 days) after the latest of them, not after the first
    assert (await index.classify(talks_report(3, TALKS + timedelta(days=5)))).story_id == first.story_id
    assert (await index.classify(talks_report(4, TALKS - timedelta(days=2.9)))).story_id == first.story_id
    too_early = await index.classify(talks_report(5, TALKS - timedelta(days=6)))
    too_late = await index.classify(talks_report(6, TALKS + timedelta(days=8.5)))
    assert {too_early.story_id, too_late.story_id}.isdisjoint({None, first.story_id})


async def test_a_story_written_before_publication_times_takes_any_article_and_then_knows_its_publication(
    index: DedupIndex, redis_client: aioredis.Redis, settings: Settings
) -> None:
    first = await index.classify(talks_report(1, TALKS))
    assert first.story_id is not None
    key = f"{settings.redis_prefix}:st:{first.story_id}:s"
    stored = await redis_client.get(key)
    header = struct.Struct(">dddI")  # the layout before: no publication times, then the centroid
    assert len(stored) % 6 == 2  # today's layout: 44 bytes of header
    await redis_client.set(key, stored[:header.size] + stored[header.size + 16 :], keepttl=True)
    joined = await index.classify(talks_report(2, datetime(2013, 8, 28, tzinfo=UTC)))
    assert joined.story_id == first.story_id
    rewritten = await redis_client.get(key)
    assert len(rewritten) % 6 == 2
    assert struct.unpack_from(">dd", rewritten, header.size) == (datetime(2013, 8, 28, tzinfo=UTC).timestamp(),) * 2
    assert (await index.classify(talks_report(3, TALKS))).story_id not in (None, first.story_id)
    story = await index.story(first.story_id)
    assert story is not None and len(story.articles) == 2


@pytest.mark.parametrize("joins_as", ["copy", "update"])
async def test_a_copy_or_an_update_dated_years_away_does_not_open_its_story_to_every_date_between(
    index: DedupIndex, joins_as: str
) -> None:
    # A copy or an update joins by its text or its URL, without the story's publication check: a
    # syndicated copy on an archive page dated 2013 (or an update whose date changed so) made the
    # story's span 2013..2016, and an article of 2015 on the topic then joined the 2016 story.
    first = await index.classify(article("https://one.example/a", body(SEED_000), title=TITLE_A, published_at=TALKS))
    if joins_as == "copy":
        late = article("https://mirror.example/x", edited(body(SEED_000)), title=TITLE_A, minutes=3,
                       published_at=datetime(2013, 8, 28, tzinfo=UTC))
        expected = Status.DUPLICATE
    else:
        late = article("https://one.example/a", body(SEED_000) + UPDATE_LINE, title=TITLE_A, minutes=30,
                       published_at=datetime(2013, 8, 28, tzinfo=UTC))
        expected = Status.UPDATE
    joined = await index.classify(late)
    assert joined.status is expected and joined.story_id == first.story_id
    between = await index.classify(talks_report(5, datetime(2015, 1, 1, tzinfo=UTC)))
    assert between.story_id not in (None, first.story_id)


async def test_archive_pages_on_a_live_story_s_topic_do_not_push_it_out_of_the_story_index(index: DedupIndex) -> None:
    # A sitemap's pages on the same war, one a year, crawled today: each is refused by the live
    # story for its publication and founds a story of its own, indexed under the same words. Four
    # of them took the four places of each word (newest first), the live story was no longer
    # found, and the next report of today's event founded a second story.
    live = await index.classify(talks_report(1, TALKS))
    assert (await index.classify(talks_report(2, TALKS + timedelta(hours=1)))).story_id == live.story_id
    archived = [await index.classify(page) for page in archive_reports()]
    assert all(page.story_id not in (None, live.story_id) for page in archived)
    assert (await index.classify(talks_report(30, TALKS + timedelta(hours=2)))).story_id == live.story_id


@pytest.mark.parametrize("copied", [False, True])
async def test_today_s_report_keeps_its_place_in_the_story_index_against_archive_stories(
    index: DedupIndex, copied: bool
) -> None:
    # Archive pages on the topic crawled first, one a year, then today's report: the archive
    # stories refuse it for its publication too, but it is no archive page of theirs. It gave its
    # place up to them (and so did its copy), and the next report founded a second story.
    for page in archive_reports():
        await index.classify(page)
    today = talks_report(20, TALKS)
    live = await index.classify(today)
    if copied:
        copy = await index.classify(article("https://mirror.example/today", today.text, title=TITLE_A, minutes=25,
                                            published_at=TALKS))
        assert copy.status is Status.DUPLICATE and copy.story_id == live.story_id
    assert (await index.classify(talks_report(30, TALKS + timedelta(hours=2)))).story_id == live.story_id


@pytest.mark.parametrize("again_as", ["copy", "update"])
async def test_a_copy_or_an_update_of_an_archive_page_does_not_push_a_live_story_out_either(
    index: DedupIndex, again_as: str
) -> None:
    # A copy or an update indexes its story again under its own terms: the archive page's story
    # took the newest place of each word there, and the live story, listed last, was dropped.
    live = await index.classify(talks_report(1, TALKS))
    pages = archive_reports()
    archived = [await index.classify(page) for page in pages]
    last = pages[-1]
    if again_as == "copy":
        again = article("https://mirror.example/archive", last.text, title=TITLE_A, minutes=20,
                        published_at=last.published_at)
    else:
        again = article(last.url, last.text + UPDATE_LINE, title=TITLE_A, minutes=20, published_at=last.published_at)
    decision = await index.classify(again)
    assert decision.status is not Status.NEW and decision.story_id == archived[-1].story_id
    assert (await index.classify(talks_report(30, TALKS + timedelta(hours=2)))).story_id == live.story_id


COUNCIL = (
    "The city council approved the new budget on Tuesday after a debate that lasted well into the night, "
    "with the mayor promising that the money would go first to schools and to the repair of the old bridge.\n"
    "Opposition members argued that the plan leaves the harbour district without the investment it was "
    "promised two years ago, and that the tax increase will hit small shops harder than large chains.\n"
    "The finance director said the city had no choice after the regional government cut its transfers, "
    "and that the budget would be reviewed in spring once the new figures for tourism were available."
)


def reworded(text: str, seed: int) -> str:
    """Another outlet's report of the same facts: each paragraph's words in another order."""
    rng = random.Random(seed)
    return "\n".join(" ".join(rng.sample(line.split(), len(line.split()))) for line in text.splitlines())


async def test_a_late_article_leaves_the_live_stories_of_its_terms_findable(
    redis_client: aioredis.Redis, settings: Settings
) -> None:
    # A backlog's article, days old, put its own story first in the index entries of its terms;
    # a bucket's clean-up judges an entry by its first story, so the next one dropped the entries
    # with the live story listed after it, and a follow-up report founded a second story.
    index = DedupIndex(redis_client, settings.redis_prefix, DedupConfig(buckets=1))  # one bucket: its clean-up comes soon
    title = "Council approves budget"
    live = await index.classify(article("https://one.example/budget", COUNCIL, title=title, language="en"))
    late = await index.classify(
        article("https://old.example/budget", reworded(COUNCIL, 1), title=title, language="en", minutes=-4 * 24 * 60)
    )
    assert late.status is Status.NEW and late.story_id != live.story_id
    rng, bucket = random.Random(7), f"{settings.redis_prefix}:st:ix:0"
    vocabulary = [f"{a}{b}{c}" for a in ("zor", "mek", "tal", "vin", "pru", "dax") for b in ("an", "el", "ok", "ur", "is")
                  for c in ("ta", "mo", "ve", "qi", "lu", "sa", "ne")]
    for n in itertools.count():  # current articles on other things, until the bucket was cleaned up
        words = rng.sample(vocabulary, 60)
        await index.classify(article(f"https://other.example/{n}", " ".join(words), title=" ".join(words[:3]), language="en", minutes=1 + n))
        if await redis_client.hlen(bucket) % 64 == 0 or n > 200:
            break
    follow_up = await index.classify(article("https://two.example/budget", reworded(COUNCIL, 2), title=title, language="en", minutes=300))
    assert follow_up.story_id == live.story_id


async def test_a_late_article_joining_a_live_story_leaves_it_findable_at_its_newest(index: DedupIndex) -> None:
    # A backlog's article of the story's first day, processed after its later reports, wrote the
    # story into the index entries of its terms at its own minute: the story looked out of the
    # window to the next report, which founded a second one.
    start = -6 * DAY

    def report(n: int, days: float) -> Article:
        return article(f"https://outlet{n}.example/budget", reworded(COUNCIL, n), title="Council approves budget",
                       language="en", minutes=start + int(days * DAY))

    first = await index.classify(report(1, 0.0))
    assert (await index.classify(report(2, 2.7))).story_id == first.story_id
    assert (await index.classify(report(3, 0.1))).story_id == first.story_id  # the backlog's
    assert (await index.classify(report(4, 4.5))).story_id == first.story_id


async def test_a_story_kept_going_by_copies_is_found_by_a_new_report_a_window_after_its_first(index: DedupIndex) -> None:
    # Copies moved the story's last sighting on, but only new articles indexed it by its terms:
    # a story window after its first report it could not be found, and another outlet's report of
    # the same talks founded a second story.
    start = -5 * DAY  # in the past: every key lives as long as at a crawl of today
    first = await index.classify(article("https://one.example/a", body(SEED_000), title=TITLE_A, minutes=start))
    for n, minutes in enumerate((start + 2 * DAY, start + int(3.5 * DAY))):
        copy = await index.classify(article(f"https://copy{n}.example/a", body(SEED_000), minutes=minutes))
        assert (copy.status, copy.story_id) == (Status.DUPLICATE, first.story_id)
    report = await index.classify(
        article("https://two.example/b", body(SEED_004), title=TITLE_B, minutes=start + 4 * DAY)
    )
    assert (report.status, report.story_id) == (Status.NEW, first.story_id)


async def test_an_article_late_by_more_than_a_story_window_joins_the_story_it_falls_in(index: DedupIndex) -> None:
    # A story from day -5 kept going by copies until today; an article from day -5 processed late
    # (a backlog, a reprocess whose partitions run days apart) still belongs to it.
    first = await index.classify(article("https://one.example/a", body(SEED_000), title=TITLE_A, minutes=-5 * DAY))
    for n, minute in enumerate([-3 * DAY, -DAY, 0]):
        await index.classify(article(f"https://copy{n}.example/a", body(SEED_000), minutes=minute))
    late = await index.classify(article("https://two.example/b", body(SEED_004), title=TITLE_B, minutes=-5 * DAY + 236))
    assert (late.status, late.story_id) == (Status.NEW, first.story_id)


# --- a URL crawled again after the window ---------------------------------------------------------


class Later:
    """Days going by without sleeping through them. Each page is classified when it was fetched
    (the index's wall clock is its fetched_at, so every expiry follows fetched_at alone), in Redis
    as it is by then (:func:`expire_until`: expiry is absolute)."""

    def __init__(self, redis_client: aioredis.Redis, settings: Settings, config: DedupConfig) -> None:
        self.redis, self.prefix, self.at = redis_client, settings.redis_prefix, T0.timestamp()
        self.index = DedupIndex(redis_client, self.prefix, config, wall_clock=lambda: self.at)

    async def classify(self, page: Article) -> DedupDecision:
        self.at = page.fetched_at.timestamp()
        await expire_until(self.redis, self.prefix, self.at)
        return await self.index.classify(page)


@pytest.fixture
def later(redis_client: aioredis.Redis, settings: Settings) -> Later:
    # the window and the article lifetime of the settings, as the worker has them
    return Later(redis_client, settings, dataclasses.replace(DedupConfig.from_settings(settings), buckets=64))


def sig_key(settings: Settings, url: str) -> str:
    return f"{settings.redis_prefix}:dd:s8:{hashlib.blake2b(url.encode(), digest_size=8).hexdigest()}"


async def test_a_url_crawled_again_after_the_window_is_unchanged_and_matched_as_an_original_again(
    later: Later, redis_client: aioredis.Redis, settings: Settings
) -> None:
    # A sitemap revisit ten days on: the article is still stored (article_ttl_days), but its URL's
    # doc had expired with the window, and the same page was "new" again: its story founded again,
    # its terms counted again, its page outcome "new".
    url = "https://one.example/a"
    page = article(url, body(SEED_000), title=TITLE_A)
    first = await later.classify(page)
    again = await later.classify(article(url, body(SEED_000), title=TITLE_A, minutes=10 * DAY))
    assert (again.status, again.story_id, again.emit) == (Status.UNCHANGED, first.story_id, False)
    # its window had passed (its signature expired), and it is live again for near-duplicate
    # matching: a copy of it is a copy, in its story
    assert await redis_client.exists(sig_key(settings, url))
    copy = await later.classify(article("https://two.example/copy", body(SEED_000), minutes=10 * DAY + 30))
    assert (copy.status, copy.duplicate_of, copy.story_id) == (Status.DUPLICATE, page.article_id, first.story_id)


async def test_a_url_changed_after_the_window_is_an_update_in_its_live_story(later: Later) -> None:
    # A correction to a week-old article whose story is still running: it was "new" again (a known
    # article published as new), founding or joining a story by its terms.
    url = "https://one.example/a"
    first = await later.classify(article(url, body(SEED_000), title=TITLE_A))
    joined = await later.classify(article("https://two.example/b", body(SEED_004), title=TITLE_B, minutes=2 * DAY))
    # a copy of the second outlet's article keeps the story going (its last sighting: day 4.5)
    copy = await later.classify(article("https://three.example/c", body(SEED_004), minutes=4 * DAY + 12 * 60))
    assert {joined.story_id, copy.story_id} == {first.story_id}
    when = 7 * DAY + 120
    corrected = await later.classify(article(url, body(SEED_000) + "\nتصحيح: الاجتماع يوم الخميس.", title=TITLE_A, minutes=when))
    assert (corrected.status, corrected.story_id, corrected.duplicate_of) == (Status.UPDATE, first.story_id, None)
    story = await later.index.story(first.story_id)
    assert story is not None and story.last == T0 + timedelta(minutes=when)
    assert T0 + timedelta(minutes=when) in story.articles.values()


async def test_a_url_changed_after_its_story_expired_is_an_update_that_keeps_its_story_id(later: Later) -> None:
    # The article's story ended (a story window without articles): the update keeps the story id
    # the newsroom has it under, in a story that it alone brings back, and which takes no article
    # by its terms: an old article's correction does not pull today's events into a story from
    # days ago (as a copy of an article whose story expired does not: see above). It was "new",
    # published as a new article in a new story.
    url = "https://one.example/a"
    page = article(url, body(SEED_000), title=TITLE_A)
    first = await later.classify(page)
    when = T0 + timedelta(days=12)
    corrected = await later.classify(article(url, body(SEED_000) + "\nتحديث", title=TITLE_A, minutes=12 * DAY))
    assert (corrected.status, corrected.story_id) == (Status.UPDATE, first.story_id)
    story = await later.index.story(first.story_id)
    assert story is not None and (story.first, story.last) == (when, when)
    assert story.articles == {page.article_id: when}
    today = await later.classify(article("https://two.example/b", body(SEED_004), title=TITLE_B, minutes=12 * DAY + 60))
    assert today.status is Status.NEW and today.story_id != first.story_id


async def test_a_url_stays_known_as_long_as_its_article_is_stored_and_matched_for_a_window(
    redis_client: aioredis.Redis, settings: Settings
) -> None:
    # Written now (the worker's clock: never sooner than that from writing): the doc's lifetime is
    # the store's article lifetime, the signature's and index entries' the window; the longer of
    # the two when the window is longer.
    day_s = 86400
    for window_days, article_ttl_days in [(settings.dedup_window_days, settings.article_ttl_days), (10.0, 2.0)]:
        config = DedupConfig(buckets=64, window_days=window_days, article_ttl_days=article_ttl_days)
        index = DedupIndex(redis_client, settings.redis_prefix, config)
        url = f"https://one.example/{window_days}"
        for page in [article(url, body(SEED_000)), article(url, body(SEED_000), minutes=5)]:  # new, unchanged
            await index.classify(page)
            doc_ttl, sig_ttl = await redis_client.ttl(doc_key(settings, url)), await redis_client.ttl(sig_key(settings, url))
            # (+ 1: expiries are whole seconds, rounded up)
            assert max(window_days, article_ttl_days) * day_s - 60 < doc_ttl <= max(window_days, article_ttl_days) * day_s + 1
            assert window_days * day_s - 60 < sig_ttl <= window_days * day_s + 1
        await redis_client.delete(doc_key(settings, url), sig_key(settings, url))


async def test_a_url_s_memos_are_those_of_the_window_before_its_newest_version(
    later: Later, redis_client: aioredis.Redis, settings: Settings
) -> None:
    # Its doc lives as long as its article may be stored: a page changing every day would keep a
    # memo a day, up to MEMOS_KEPT, of deliveries that a replay finds older than the newest
    # version anyway (unchanged: the store would say stale).
    url = "https://live.example/daily"
    crawls = [article(url, body(SEED_000) + f"\nاليوم {day}", minutes=day * DAY) for day in range(12)]
    decisions = [await later.classify(page) for page in crawls]
    assert [d.status for d in decisions] == [Status.NEW] + [Status.UPDATE] * 11

    async def memos() -> list[bytes]:
        return sorted(f for f in await redis_client.hkeys(doc_key(settings, url)) if f.startswith(b"m:"))

    memo_fields = [later.index._prepare(page).memo_field.encode() for page in crawls]
    assert await memos() == sorted(memo_fields[4:])  # days 4 to 11: a window before day 11
    # a redelivery of the newest delivery gets its decision back; one of an older version's,
    # whose memo went, finds a newer version
    assert await later.index.classify(crawls[-1]) == decisions[-1]
    assert (await later.index.classify(crawls[1])).status is Status.UNCHANGED
    # Crawled again unchanged more than a window later: the doc keeps the memo of the delivery
    # that wrote its version (a reprocess by a newer pipeline version gets that decision back, and
    # stores the article again; deciding again, it found its own doc: unchanged), and no other.
    again = await later.classify(article(url, crawls[-1].text, minutes=20 * DAY))
    assert again.status is Status.UNCHANGED
    assert await memos() == [memo_fields[-1]]
    held = await redis_client.hkeys(doc_key(settings, url))
    assert sorted(f for f in held if not f.startswith(b"m:")) == [b"id", b"story", b"t", b"v"]
    assert await later.index.classify(crawls[-1]) == decisions[-1]


# --- document frequencies ---------------------------------------------------------------------


def _distinct_text(i: int) -> str:
    """A text that shares no word with another one's: each is new, and counted."""
    return " ".join(f"كلمة{i}و{j}" for j in range(60))


async def test_only_the_detector_s_languages_have_document_frequencies_of_their_own(
    index: DedupIndex, redis_client: aioredis.Redis, settings: Settings
) -> None:
    # A page's declared language is used when detection is unsure: any two or three letters.
    # Each had a DF array of its own (512 KiB in every worker, a Redis key a day): 400 junk codes
    # held 200 MiB.
    for i, language in enumerate(["qqq", "xx", "ZZ", None, "AR"]):
        decision = await index.classify(article(f"https://one.example/{i}", _distinct_text(i), minutes=i, language=language))
        assert decision.status is Status.NEW
    await index.flush()
    counters = {
        ":".join(key.decode().split(":")[2:4])
        for kind in ("df", "n")
        async for key in redis_client.scan_iter(match=f"{settings.redis_prefix}:st:{kind}:*")
    }
    assert counters == {"df:und", "n:und", "df:ar", "n:ar"}


async def test_a_worker_holds_the_document_frequencies_of_a_bounded_number_of_languages(
    index: DedupIndex,
) -> None:
    languages = sorted(DETECTED_LANGUAGES)[: DF_LANGUAGES_HELD + 1]  # the detector's
    for i, language in enumerate(languages):
        decision = await index.classify(article(f"https://one.example/{i}", _distinct_text(i), language=language))
        assert decision.status is Status.NEW
    assert len(index._stats) == DF_LANGUAGES_HELD and languages[0] not in index._stats  # the least recent left
    # Read again, its snapshot has the article this worker counted in it before it left.
    again = await index.classify(article("https://two.example/0", _distinct_text(999), language=languages[0]))
    assert again.status is Status.NEW
    assert index._stats[languages[0]].stats.documents == 2
