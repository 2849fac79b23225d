"""Page metadata: title agreement, the cheap fallbacks, one date search at most."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from html import escape

import pytest
from trafilatura.metadata import extract_author
from trafilatura.utils import load_html

from workers.models import _MAX_URL_CHARS
from workers.stages import metadata
from workers.stages.metadata import byline, choose_title, clean_text, extract_page_metadata, standard_month_names


def test_the_headline_and_visible_heading_outvote_og_title_copies() -> None:
    # twitter:title and <title> repeat og:title: together they weigh as much as one more source
    title = choose_title(
        {"ld": "Only a third of the children came", "og": "Calm but hot Monday", "h1": "Only a third of the children came",
         "tw": "Calm but hot Monday", "tt": "Calm but hot Monday"},
        ["news.example"],
    )
    assert title == "Only a third of the children came"


def test_a_title_between_a_kicker_and_the_site_name_is_supported() -> None:
    sites = ["The Times", "times.example"]
    headline = "Newborns left in dustbins: state tops cases for 5th year"
    title = choose_title(
        {"ld": headline, "og": f"Infant Abandonment | {headline} | City News - The Times", "h1": headline,
         "tw": f"Infant Abandonment | {headline} | City News - The Times", "tt": f"Infant Abandonment | {headline} | City News - The Times"},
        sites,
    )
    assert title == headline


PAGE = """<html lang="en"><head><title>Budget approved - news.example</title>
{head}</head><body><h1>Budget approved</h1>
<div class="byline">By Jane Doe <time>May 5</time></div>
<div class="comments"><span class="author">Troll Person</span></div>
<p>The council approved the budget.</p></body></html>"""


def test_declared_dates_need_no_date_search(monkeypatch: pytest.MonkeyPatch) -> None:
    # Calls are recorded, not refused by raising: the date search swallows htmldate's exceptions.
    searches: list[object] = []

    def search(*args: object, **kwargs: object) -> None:
        searches.append(kwargs.get("extensive_search"))

    monkeypatch.setattr(metadata, "find_date", search)
    head = '<meta property="article:published_time" content="2024-03-05T10:00:00+01:00">'
    meta = extract_page_metadata(load_html(PAGE.format(head=head)), "https://news.example/a")
    assert meta.published == "2024-03-05T10:00:00+01:00"
    assert meta.modified is None  # not declared: not guessed
    assert searches == []


def test_an_undeclared_date_is_searched_once_quickly(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[bool] = []

    def quick(*args: object, extensive_search: bool, **kwargs: object) -> str:
        calls.append(extensive_search)
        return "2024-03-05T00:00:00"

    monkeypatch.setattr(metadata, "find_date", quick)
    meta = extract_page_metadata(load_html(PAGE.format(head="")), "https://news.example/a")
    assert meta.published == "2024-03-05T00:00:00" and calls == [False]


def test_the_date_search_allows_the_latest_local_date_on_earth(monkeypatch: pytest.MonkeyPatch) -> None:
    # a Tokyo page published at 05:10 local time is dated tomorrow in UTC until 15:00 UTC
    limits: list[object] = []

    def search(*args: object, max_date: object, **kwargs: object) -> str:
        limits.append(max_date)
        return "2024-03-05T00:00:00"

    monkeypatch.setattr(metadata, "find_date", search)
    before = metadata.latest_local_date(datetime.now(UTC))
    extract_page_metadata(load_html(PAGE.format(head="")), "https://news.example/a")
    after = metadata.latest_local_date(datetime.now(UTC))
    assert limits and limits[0] in {before, after}
    assert metadata.latest_local_date(datetime(2026, 11, 23, 20, 30, tzinfo=UTC)) == "2026-11-24"
    assert metadata.latest_local_date(datetime(2026, 11, 23, 9, 59, tzinfo=UTC)) == "2026-11-23"
    assert metadata.latest_local_date(datetime(2026, 11, 23, 10, 0, tzinfo=UTC)) == "2026-11-24"


def _undated_page(lang: str, dateline: str) -> str:
    """A page that declares no date: a logo h1, the headline, a dateline in words under it, and a
    copyright year in the footer (which htmldate's extensive search takes for 1 January)."""
    return f"""<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8"></head><body>
<header><h1>CNN</h1></header><main><h1>معارضون يسيطرون على مخازن للصواريخ بريف دمشق</h1>
<div class="stamp">{dateline}</div><p>{"قال المرصد السوري لحقوق الإنسان إن مقاتلين سيطروا على مستودعات. " * 4}</p></main>
<footer><p>© 2013 Cable News Network</p></footer></body></html>"""


@pytest.mark.parametrize(
    "dateline",
    ["الأربعاء، 28 آب/اغسطس 2013، آخر تحديث 14:00", "الأربعاء ٢٨ أغسطس ٢٠١٣"],
)
def test_a_dateline_in_words_under_the_headline_gives_the_day(dateline: str) -> None:
    # Levantine month names (آب, أيلول...) with or without their Egyptian twin, Eastern digits
    meta = extract_page_metadata(load_html(_undated_page("ar", dateline)), "https://arabic.example/syria/clashes")
    assert meta.published == "2013-08-28T00:00:00"


@pytest.mark.parametrize(
    "dateline",
    [
        "الأحد 13 أكتوبر 2024م",
        # both calendars, as Saudi and Gulf dailies write them, either first
        "الأحد 10 ربيع الآخر 1446هـ - 13 أكتوبر 2024م",
        "الأحد 13 أكتوبر 2024 م الموافق 10 ربيع الآخر 1446 هـ",
        "الأحد 13 تشرين الأول/أكتوبر 2024 م",
    ],
)
def test_a_dateline_with_era_markers_or_two_calendars_gives_the_gregorian_day(dateline: str) -> None:
    meta = extract_page_metadata(load_html(_undated_page("ar", dateline)), "https://arabic.example/syria/clashes")
    assert meta.published == "2024-10-13T00:00:00"


@pytest.mark.parametrize(
    ("lang", "dateline"),
    [
        # Amharic "Sunday, Tikimt 3, 2017 E.C.": dateparser read "3 ቀን 2017" as "3 days [ago]"
        ("am", "እሑድ ጥቅምት 3 ቀን 2017 ዓ.ም"),
        ("de", "vor 3 Stunden | Archiv 2013"),
    ],
)
def test_a_dateline_is_never_resolved_against_the_workers_clock(
    lang: str, dateline: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the same page must give the same date on every run and every replay, whatever the clock says
    page = load_html(_undated_page(lang, dateline))
    first = extract_page_metadata(page, "https://news.example/a").published
    later = datetime.now() + timedelta(days=5)
    real_search = metadata.search_dates

    def five_days_later(text: str, languages: list[str], settings: dict[str, object]) -> object:
        return real_search(text, languages=languages, settings={**settings, "RELATIVE_BASE": later})

    monkeypatch.setattr(metadata, "search_dates", five_days_later)
    assert extract_page_metadata(load_html(_undated_page(lang, dateline)), "https://news.example/a").published == first
    assert first is None or first.startswith("2013")


@pytest.mark.parametrize(
    ("lang", "dateline", "expected"),
    [
        # the units of the figures written out (CLDR's long date), which dateparser does not know
        ("lt", "2024 m. spalio 13 d. 14:05", "2024-10-13T14:05:00"),
        ("lv", "2024. gada 13. oktobris", "2024-10-13T00:00:00"),
        # an abbreviated month's dot, or a day's ordinal dot, stopped dateparser's search
        ("de", "So., 13. Okt. 2024, 14:05 Uhr", "2024-10-13T14:05:00"),
        ("ru", "13 окт. 2024 г., 14:05", "2024-10-13T14:05:00"),
        ("fr", "dim. 13 oct. 2024 à 14h05", "2024-10-13T14:05:00"),
        ("sl", "13. oktober 2024", "2024-10-13T00:00:00"),
        ("th", "13 ต.ค. 2024", "2024-10-13T00:00:00"),
        # a Thai year of the Buddhist era, with or without its marker: 2567 BE is 2024
        ("th", "13 ต.ค. 2567", "2024-10-13T00:00:00"),
        ("th", "13 ตุลาคม 2567", "2024-10-13T00:00:00"),
        ("th", "วันอาทิตย์ที่ 13 ตุลาคม พ.ศ. 2567 14:05 น.", "2024-10-13T14:05:00"),
    ],
)
def test_a_dateline_is_read_in_the_forms_of_its_language(
    lang: str, dateline: str, expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # htmldate finds only the copyright year, as on pages whose dateline its patterns miss (it reads
    # some of these lines here, the only date on the page, but without their time)
    monkeypatch.setattr(metadata, "find_date", lambda *args, **kwargs: "2013-01-01T00:00:00")
    meta = extract_page_metadata(load_html(_undated_page(lang, dateline)), "https://news.example/a")
    assert meta.published == expected


@pytest.mark.parametrize(
    ("lang", "dateline"),
    [
        # a Buddhist-era year on a page not declared Thai: no year of ours, nor of the 26th century
        ("en", "13 ตุลาคม 2567"),
        ("", "13 ตุลาคม 2567"),
        # the solar hijri calendar is not read: 22 Mehr 1403 must not become a date in 1403 (or 2024
        # by another calendar's arithmetic)
        ("fa", "یکشنبه ۲۲ مهر ۱۴۰۳"),
        ("fa", "یکشنبه 22 مهر 1403"),
    ],
)
def test_a_dateline_of_another_calendar_gives_no_date_rather_than_a_wrong_year(
    lang: str, dateline: str
) -> None:
    meta = extract_page_metadata(load_html(_undated_page(lang, dateline)), "https://news.example/a")
    assert meta.published is None


def test_a_declared_buddhist_or_solar_hijri_year_is_no_plausible_date() -> None:
    for value in ("2567-10-13T14:05:00+07:00", "2567-10-13",
                  "1403-07-22T14:05:00+03:30", "1403-07-22"):
        assert metadata.plausible_date(value, now=datetime(2026, 11, 24, tzinfo=UTC)) is None


def test_levantine_month_names_are_replaced_as_whole_words_only() -> None:
    assert standard_month_names("28 آب/اغسطس 2013") == "28 اغسطس 2013"
    assert standard_month_names("3 تشرين الأول 2012") == "3 أكتوبر 2012"
    # "آب" (August) begins "آباء" (fathers) and "آبار" (wells)
    assert standard_month_names("الآباء يحفرون 5 آبار في 12 آب 2013") == "الآباء يحفرون 5 آبار في 12 أغسطس 2013"


def test_a_year_found_alone_is_no_publication_day() -> None:
    # no dateline, or no declared language to read it in: the date stays unknown, not "1 January"
    for page in (_undated_page("ar", "آخر تحديث"), _undated_page("", "الأربعاء، 28 آب/اغسطس 2013")):
        meta = extract_page_metadata(load_html(page), "https://arabic.example/syria/clashes")
        assert meta.published is None


def test_a_relative_dateline_is_not_read_against_the_clock() -> None:
    meta = extract_page_metadata(load_html(_undated_page("de", "Heute, 14:00 Uhr · Archiv seit 2013")), "https://news.example/a")
    assert meta.published is None


def test_byline_fallback_is_trafilaturas() -> None:
    tree = load_html(PAGE.format(head=""))
    assert byline(tree) == extract_author(tree) == "Jane Doe"
    meta = extract_page_metadata(tree, "https://www.news.example/a")
    assert meta.authors == ("Jane Doe",)
    assert meta.site_name == "news.example"  # the domain part of <title>


@pytest.mark.parametrize(
    ("value", "kept"),
    [("2028-02-29T08:00:00+00:00", True), ("2028-03-01T11:00:00+00:00", True),
     # a local time of UTC+14 read as UTC is at most 14 h ahead; a day and more is not the article's
     ("2028-03-01T13:00:00+00:00", False), ("2028-06-01T08:00:00+00:00", False), ("2029-02-28T08:00:00+00:00", False),
     ("1994-12-31T08:00:00+00:00", True)],
)
def test_a_date_is_plausible_up_to_a_day_ahead_also_on_a_leap_day(value: str, kept: bool) -> None:
    # "now a year on" was now.replace(year=+1), which raised on 29 February: every page with a date failed
    leap_day = datetime(2028, 2, 29, 12, tzinfo=UTC)
    assert (metadata.plausible_date(value, now=leap_day) == value) is kept


@pytest.mark.parametrize(
    ("value", "kept"),
    [("1989-11-10T05:00:00-05:00", True), ("1901-05-01", True),
     # what a CMS writes for "no date"
     ("0001-01-01T00:00:00Z", False), ("1900-01-01", False), ("1970-01-01T00:00:00+00:00", False),
     ("1970-01-01T01:00:00+01:00", False), ("1899-12-31", False)],
)
def test_an_archive_articles_real_date_is_kept_and_a_placeholder_is_not(value: str, kept: bool) -> None:
    # dropped, a 1989 article would be indexed, and alerted on, as news of the day it was crawled
    assert (metadata.plausible_date(value, now=datetime(2026, 11, 24, tzinfo=UTC)) == value) is kept


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-10-13T10:30:00+03:00", datetime(2024, 10, 13, 7, 30, tzinfo=UTC)),
        ("2024-10-13T10:30:00.123+0300", datetime(2024, 10, 13, 7, 30, tzinfo=UTC)),
        ("2024-10-13T10:30:00 +03:00", datetime(2024, 10, 13, 7, 30, tzinfo=UTC)),
        ("2024-10-13T10:30:00 GMT+3", datetime(2024, 10, 13, 7, 30, tzinfo=UTC)),
        ("2024-10-13T10:30:00GMT-05:00", datetime(2024, 10, 13, 15, 30, tzinfo=UTC)),
        ("2024-10-13T10:30:00 UTC", datetime(2024, 10, 13, 10, 30, tzinfo=UTC)),
        ("2024-10-13T10:30:00+03:00[Asia/Riyadh]", datetime(2024, 10, 13, 7, 30, tzinfo=UTC)),  # Java's form
        ("2024-10-13T24:00:00Z", datetime(2024, 10, 14, tzinfo=UTC)),  # the end of the 13th
        ("2024-10-13 10:30:00", datetime(2024, 10, 13, 10, 30, tzinfo=UTC)),  # no zone: taken as UTC
        # a zone that cannot be read keeps the day, not a time hours off
        ("2024-10-13T10:30:00CST", datetime(2024, 10, 13, tzinfo=UTC)),  # US Central or China
        ("2024-10-13T10:30:00+2500", datetime(2024, 10, 13, tzinfo=UTC)),
        ("2024-10-13 Sunday", datetime(2024, 10, 13, tzinfo=UTC)),
        ("Sunday", None),
    ],
)
def test_declared_dates_are_read_with_their_zone(value: str, expected: datetime | None) -> None:
    assert metadata.parse_iso(value) == expected


@pytest.mark.parametrize(
    ("published", "modified", "expected"),
    [
        # Tokyo: published 08:30 local is 23:30 UTC the day before, and the 09:00 update is kept
        ('"2024-10-13T08:30:00"', '"2024-10-13T09:00:00+09:00"',
         (datetime(2024, 10, 12, 23, 30, tzinfo=UTC), datetime(2024, 10, 13, 0, 0, tzinfo=UTC))),
        ('"2024-10-13T08:30:00-05:00"', '"2024-10-13T10:00:00"',
         (datetime(2024, 10, 13, 13, 30, tzinfo=UTC), datetime(2024, 10, 13, 15, 0, tzinfo=UTC))),
        # both without a zone: both taken as UTC, their order kept
        ('"2024-10-13T08:30:00"', '"2024-10-13T09:00:00"',
         (datetime(2024, 10, 13, 8, 30, tzinfo=UTC), datetime(2024, 10, 13, 9, 0, tzinfo=UTC))),
    ],
)
def test_a_date_without_a_zone_takes_the_zone_of_the_pages_other_date(published, modified, expected) -> None:
    head = (
        '<script type="application/ld+json">{"@type": "NewsArticle", "headline": "Talks resume", '
        f'"datePublished": {published}, "dateModified": {modified}}}</script>'
    )
    meta = extract_page_metadata(load_html(PAGE.format(head=head)), "https://www.news.example/a")
    assert (metadata.parse_iso(meta.published), metadata.parse_iso(meta.modified)) == expected


def _page_with_time(head: str, shown: str) -> str:
    """PAGE with ``head`` declared and the byline's date shown as ``<time datetime=shown>``."""
    shown_time = f'<time datetime="{shown}">4 March</time>'
    return PAGE.format(head=head).replace("<time>May 5</time>", shown_time)


@pytest.mark.parametrize(
    "head",
    [
        '<meta property="article:published_time" content="2025-03-04T08:30:00">',
        '<meta name="pubdate" content="2025-03-04T08:30:00">',
        '<meta name="date" content="2025-03-04 08:30:00">',
        '<script type="application/ld+json">{"@type": "NewsArticle", '
        '"datePublished": "2025-03-04T08:30:00"}</script>'
        '<meta property="article:published_time" content="2025-03-04T08:30:00+09:00">',
    ],
)
def test_a_date_without_a_zone_takes_the_zone_of_a_statement_of_the_same_time(head: str) -> None:
    # read as 08:30 UTC, a Tokyo article was 9 hours younger than it is (alerts' staleness check,
    # the time index)
    page = load_html(_page_with_time(head, "2025-03-04T08:30:00+09:00"))
    meta = extract_page_metadata(page, "https://news.example/a")
    assert metadata.parse_iso(meta.published) == datetime(2025, 3, 3, 23, 30, tzinfo=UTC)


def test_a_modification_date_without_a_zone_takes_the_zone_of_its_shown_time() -> None:
    head = (
        '<meta property="article:published_time" content="2025-03-04T08:30:00">'
        '<meta property="article:modified_time" content="2025-03-04T10:00:00">'
    )
    page = load_html(_page_with_time(head, "2025-03-04T10:00:00+09:00"))
    meta = extract_page_metadata(page, "https://news.example/a")
    # the modification's zone is the CMS's, and so the publication's
    assert metadata.parse_iso(meta.modified) == datetime(2025, 3, 4, 1, 0, tzinfo=UTC)
    assert metadata.parse_iso(meta.published) == datetime(2025, 3, 3, 23, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("declared", "shown"),
    [
        # another time: another item's date (a related article's, an update's), not this one's zone
        ("2025-03-04T08:30:00", "2025-03-04T12:00:00+09:00"),
        # no zone shown either, or nothing readable
        ("2025-03-04T08:30:00", "2025-03-04T08:30:00"),
        ("2025-03-04T08:30:00", "PT5M"),
    ],
)
def test_a_date_without_a_zone_and_no_zoned_statement_of_its_time_is_kept_as_declared(
    declared: str, shown: str
) -> None:
    head = f'<meta property="article:published_time" content="{declared}">'
    meta = extract_page_metadata(load_html(_page_with_time(head, shown)), "https://news.example/a")
    assert meta.published == declared


@pytest.mark.parametrize(
    ("declared", "shown"),
    [("2025-03-03T23:30:00", "2025-03-04T08:30:00+09:00"), ("2025-03-04T08:30:00", "2025-03-04T17:30:00+09:00")],
)
def test_a_date_without_a_zone_that_the_page_states_as_the_same_moment_is_utc(declared: str, shown: str) -> None:
    head = f'<meta property="article:published_time" content="{declared}">'
    meta = extract_page_metadata(load_html(_page_with_time(head, shown)), "https://news.example/a")
    assert meta.published == declared + "+00:00"


def test_a_date_the_page_states_in_utc_does_not_take_the_zone_of_its_other_date() -> None:
    # JSON-LD writes UTC without a zone; the meta tag states the same moment in Riyadh's time. The
    # modification's zone lent to it made the article 3 hours older than it is.
    head = (
        '<script type="application/ld+json">{"@type": "NewsArticle", "headline": "Talks resume", '
        '"datePublished": "2024-10-13T05:30:00", "dateModified": "2024-10-13T09:00:00+03:00"}</script>'
        '<meta property="article:published_time" content="2024-10-13T08:30:00+03:00">'
    )
    meta = extract_page_metadata(load_html(PAGE.format(head=head)), "https://www.news.example/a")
    assert metadata.parse_iso(meta.published) == datetime(2024, 10, 13, 5, 30, tzinfo=UTC)
    assert metadata.parse_iso(meta.modified) == datetime(2024, 10, 13, 6, 0, tzinfo=UTC)


def test_a_declared_canonical_keeps_its_story_number_and_loses_trackers_and_fragment() -> None:
    head = '<link rel="canonical" href="/viewstory.php?utm_source=rss&newsid=2412345&lang=ar#top">'
    page = load_html(PAGE.format(head=head))
    declared = extract_page_metadata(page, "https://www.spa.gov.sa/viewstory.php?newsid=2412345&lang=ar").canonical_url
    assert declared == "https://www.spa.gov.sa/viewstory.php?lang=ar&newsid=2412345"


def test_a_declared_canonical_has_upper_case_percent_escapes() -> None:
    page = load_html(PAGE.format(head='<meta property="og:url" content="https://news.example/%d8%ad%d9%84%d8%a8">'))
    assert extract_page_metadata(page, "https://news.example/x").canonical_url == "https://news.example/%D8%AD%D9%84%D8%A8"


def test_a_page_without_a_site_name_is_named_by_its_host_in_unicode() -> None:
    # as its article's domain (workers/urlnorm.py), not in the punycode of the crawled URL
    tree = load_html("<html><head><title>خبر</title></head><body><p>نص</p></body></html>")
    assert extract_page_metadata(tree, "https://www.xn--mgbh0fb.xn--wgbh1c/a").site_name == "مثال.مصر"


def _every_run(title: str) -> set[str]:
    """The runs of a title's parts, listed one by one (what ``_Runs`` must agree with)."""
    cuts = [(0, 0), *((m.start(), m.end()) for m in metadata._PART_SEPARATORS.finditer(title)), (len(title), len(title))]
    return {
        run for i in range(len(cuts)) for j in range(i + 1, len(cuts))
        if (run := metadata.clean_text(title[cuts[i][1] : cuts[j][0]]))
    }


def test_the_runs_of_a_title_are_those_between_its_separators() -> None:
    pieces = ["Budget", "approved", "City", "News", "a", "-", "|", "--", ":", "｜", "*", " ", "::", "/", "B-C", "x|y"]
    generator = random.Random(7)
    for _ in range(400):
        title = metadata.clean_text(" ".join(generator.choice(pieces) for _ in range(generator.randint(1, 9))))
        if not title:
            continue
        runs = metadata._Runs.of(title)
        listed = _every_run(title)
        assert {text for text in listed if text in runs} == listed
        for candidate in {title[i:j].strip() for i in range(len(title)) for j in range(i + 1, len(title) + 1)}:
            assert (candidate in runs) == (candidate in listed), (title, candidate)


def test_a_title_of_hundreds_of_separators_is_not_cut_into_every_run(monkeypatch: pytest.MonkeyPatch) -> None:
    # listing every run is cubic in the separators: 96 s for a 7 KB title of 1,000 " | "
    calls = 0
    clean = metadata.clean_text

    def counted(value: object) -> str | None:
        nonlocal calls
        calls += 1
        return clean(value)

    monkeypatch.setattr(metadata, "clean_text", counted)
    stuffed = " | ".join(f"word{i}" for i in range(300))
    title = choose_title({"og": f"Budget approved | {stuffed}", "h1": "Budget approved", "tt": stuffed}, ["news.example"])
    assert title == "Budget approved"
    assert calls < 100  # 45,000 runs of the 300 parts


def test_json_ld_nested_deeper_than_python_recurses_is_read_or_passed_over() -> None:
    # the parser gives up at about 1,000 levels (RecursionError, not ValueError), and walking
    # what it reads recursively gave up at about 500: the whole page failed
    article = '{"@type": "NewsArticle", "headline": "Budget approved", "author": %s}' % ("[" * 600 + '"Jane Doe"' + "]" * 600)
    scripts = "".join(
        f'<script type="application/ld+json">{blob}</script>'
        for blob in ("[" * 3000 + "]" * 3000, '{"@graph":' * 700 + "{}" + "}" * 700, article)
    )
    tree = load_html(f"<html><head>{scripts}</head><body><h1>Budget approved</h1><p>Text.</p></body></html>")
    found = extract_page_metadata(tree, "https://news.example/a")
    assert found.title == "Budget approved" and found.authors == ("Jane Doe",)


@pytest.mark.parametrize(("extra", "kept"), [(0, True), (1, False)])
def test_a_canonical_longer_than_a_url_may_be_is_ignored(extra: int, kept: bool) -> None:
    # normalising a 6 MB canonical of 400,000 parameters cost seconds, here and again in the
    # main process for the article's identity
    base = "https://news.example/a?story="
    canonical = base + "1" * (_MAX_URL_CHARS - len(base) + extra)
    tree = load_html(f'<html><head><link rel="canonical" href="{canonical}"></head><body><p>Text.</p></body></html>')
    found = extract_page_metadata(tree, "https://news.example/a?story=1")
    assert found.canonical_url == (canonical if kept else None)


def headline_page(headline: str, header: str = "") -> metadata.PageMetadata:
    tree = load_html(
        f"<html><head><title>{escape(headline, quote=False)}</title></head><body><article><header>"
        f"<h1>{escape(headline, quote=False)}</h1>{header}</header>"
        "<p>The council met on Tuesday.</p></article></body></html>"
    )
    return extract_page_metadata(tree, "https://news.example/a")


def urgent_signal(headline: str, header: str = "") -> str | None:
    return headline_page(headline, header).urgent_signal


@pytest.mark.parametrize(
    "headline",
    [
        "Flash-flood warnings issued across Jeddah",
        "Developing-country debt talks resume in Geneva",
        "Urgent-care clinics extend their opening hours",
        "Breaking-dance at the Olympics draws a record crowd",
        "Alerte-enlèvement déclenchée dans le Nord",
        "Eil-Zustellung kostet ab Juli mehr",
        "Eil- und Expressdienste kosten ab Juli mehr",
    ],
)
def test_a_word_joined_to_the_next_by_a_hyphen_is_no_urgent_marker(headline: str) -> None:
    assert urgent_signal(headline) is None


@pytest.mark.parametrize(
    ("headline", "marker"),
    [
        ("عاجل: المجلس يقر الميزانية", "عاجل"),
        ("عاجل | المجلس يقر الميزانية", "عاجل"),
        ("BREAKING: Council approves the budget", "breaking"),
        ("EIL: Bundestag beschließt den Haushalt", "eil"),
        ("Flash - Le conseil adopte le budget", "flash"),
        ("Developing — Council approves the budget", "developing"),
        ("[Urgent] – Council approves the budget", "urgent"),
    ],
)
def test_an_urgent_word_set_off_from_the_headline_is_a_marker(headline: str, marker: str) -> None:
    assert urgent_signal(headline) == f"headline:{marker}"


@pytest.mark.parametrize(
    ("headline", "marker"),
    [
        # a bracketed label, in the brackets of any script, and after other labels
        ("[BREAKING] Council approves the budget", "breaking"),
        ("[속보] 국회, 내년도 예산안 통과", "속보"),
        ("【速報】首相が辞任を表明", "速報"),
        ("「ニュース速報」首相が辞任を表明", "ニュース速報"),
        ("[快讯]北京站自动取票8秒成功", "快讯"),
        ("【動画】【速報】首相が辞任を表明", "速報"),
        ("(Video) BREAKING: Council approves the budget", "breaking"),
        # full-width colons and bars, exclamation marks
        ("突发：国务院召开常务会议", "突发"),
        ("突發｜立法會通過預算案", "突發"),
        ("ด่วน! ครม. อนุมัติงบประมาณ", "ด่วน"),
        ("Son dakika! Meclis bütçeyi onayladı", "son dakika"),
        # upper case without accents (Greek drops the tonos), Turkish dotted capitals, tatweel
        ("ΕΚΤΑΚΤΟ: Σεισμός 5,2 Ρίχτερ στην Κρήτη", "έκτακτο"),
        ("DERNIERE MINUTE : Le Sénat adopte le budget", "dernière minute"),
        ("SON DAKİKA: Meclis bütçeyi onayladı", "son dakika"),
        ("عـاجـل | المجلس يقر الميزانية", "عاجل"),
        # the words of languages the list lacked
        ("דחוף: הממשלה אישרה את התקציב", "דחוף"),
        ("ข่าวด่วน: ครม. อนุมัติงบประมาณ", "ข่าวด่วน"),
        ("[긴급] 국회, 내년도 예산안 통과", "긴급"),
        ("Tin nóng: Quốc hội thông qua ngân sách", "tin nóng"),
        ("ब्रेकिंग न्यूज़: संसद ने बजट पारित किया", "ब्रेकिंग न्यूज़"),
        ("بریکنگ نیوز: قومی اسمبلی نے بجٹ منظور کر لیا", "بریکنگ نیوز"),
        ("خبر فوری: مجلس بودجه را تصویب کرد", "خبر فوری"),
        ("ሰበር ዜና፦ ፓርላማው በጀቱን አፀደቀ", "ሰበር ዜና"),
        # angle brackets, which Unicode files as math symbols
        ("<速報>首相が辞任を表明", "速報"),
        ("＜速報＞首相が辞任を表明", "速報"),
        # a space, in scripts that space phrases, not words
        ("ด่วน ครม. อนุมัติงบประมาณ", "ด่วน"),
        ("速報\u3000首相が辞任を表明", "速報"),
        ("突发 国务院召开常务会议", "突发"),
    ],
)
def test_an_urgent_word_in_any_script_and_house_format_is_a_marker(headline: str, marker: str) -> None:
    found = headline_page(headline)
    assert found.urgent_signal == f"headline:{marker}"
    # the title is the headline as the outlet shows it, marker included, as "عاجل: ..." is
    assert found.title == " ".join(headline.split())


@pytest.mark.parametrize(
    "headline",
    [
        "Flash flood warning issued for Jeddah",
        "Breaking Bad star opens a café in Albuquerque",
        "[Video] Council approves the budget",
        "【動画】首相が辞任を表明",
        "(Updated) Council approves the budget",
        "[Live] Council votes on the budget",
        "(Updated) Flash flood warning issued for Jeddah",
        "「速報値」を上方修正 内閣府",
        "Έκτακτα μέτρα για τη λειψυδρία στις Κυκλάδες",
        "ΕΚΤΑΚΤΑ ΜΕΤΡΑ: Η κυβέρνηση ανακοινώνει στήριξη",
        "Khan: London will not be cowed",  # "khẩn" (Vietnamese "urgent") without its marks
        "긴급 회의 소집한 국회의장",  # Korean spaces its words: an urgent meeting
        "速報値 上方修正へ",  # the first phrase is another word
        "<Analysis> Council approves the budget",
    ],
)
def test_a_headline_that_only_starts_with_a_label_or_a_like_word_is_not_urgent(headline: str) -> None:
    assert urgent_signal(headline) is None


@pytest.mark.parametrize(
    "header",
    [
        '<button class="topic-alert-button">Get alerts</button>',
        '<div class="alert alert-info">Updated 5 min ago</div>',
        '<div class="flash flash-notice">Saved to your reading list</div>',
    ],
)
def test_a_notice_or_button_named_alert_is_no_urgent_badge(header: str) -> None:
    assert urgent_signal("Council approves the budget", header) is None


@pytest.mark.parametrize(
    ("header", "badge"),
    [
        ('<span class="alert alert-danger">Breaking</span>', "Breaking"),
        ('<span class="news-alert">عاجل</span>', "عاجل"),
        ('<span class="label-breaking">Live</span>', "Live"),  # the class names urgency itself
        ('<span class="alert">【速報】</span>', "【速報】"),
        ('<span class="news-alert">ΕΚΤΑΚΤΟ</span>', "ΕΚΤΑΚΤΟ"),
        ('<span class="alert">BREAKING ⚡\ufe0f</span>', "BREAKING ⚡\ufe0f"),
    ],
)
def test_an_alert_badge_counts_when_it_says_urgent_or_its_class_names_urgency(header: str, badge: str) -> None:
    assert urgent_signal("Council approves the budget", header) == f"header_badge:{badge}"


def valley_page(header: str, article_top: str = "") -> str:
    """A page of an unseen site whose header holds the site's name as an h1 and a breaking-news
    bar, and whose article shows its headline as an h2."""
    return (
        '<html lang="es"><head><title>El ayuntamiento aprueba el presupuesto</title></head><body>'
        f'<header class="cabecera">{header}'
        '<div class="barra"><span class="label-urgent">Última hora</span>'
        '<a href="/sucesos/incendio">Un incendio obliga a evacuar a doscientos vecinos</a></div></header>'
        f'<main><article>{article_top}<h2 class="entry-title">El ayuntamiento aprueba el presupuesto</h2>'
        "<p>El pleno aprobó el martes las cuentas del próximo año con los votos de la mayoría.</p>"
        "</article></main></body></html>"
    )


SITE_HEADINGS = [
    '<h1 class="site-title"><a href="/">Diario del Valle</a></h1>',
    '<h1><a href="https://www.diariodelvalle.example/">Diario del Valle</a></h1>',
    '<h1>Diario del Valle</h1><meta property="og:site_name" content="Diario del Valle">',
]


@pytest.mark.parametrize("site_heading", SITE_HEADINGS)
def test_a_breaking_bar_in_the_site_header_does_not_make_the_article_urgent(site_heading: str) -> None:
    url = "https://diariodelvalle.example/ciudad/presupuesto"
    found = extract_page_metadata(load_html(valley_page(site_heading)), url)
    assert found.urgent is False, found.urgent_signal
    # the same badge by the article's own headline does
    found = extract_page_metadata(load_html(valley_page(site_heading, '<span class="label-urgent">Última hora</span>')), url)
    assert found.urgent_signal == "header_badge:Última hora"


@pytest.mark.parametrize("site_heading", SITE_HEADINGS)
def test_the_site_name_set_as_an_h1_is_not_the_title(site_heading: str) -> None:
    found = extract_page_metadata(load_html(valley_page(site_heading)), "https://diariodelvalle.example/ciudad/presupuesto")
    assert found.title == "El ayuntamiento aprueba el presupuesto"


def test_a_bar_of_headlines_by_the_headline_is_a_ticker_whatever_its_class() -> None:
    bar = '<div class="top-stories"><span class="breaking">Breaking</span><a href="/b/2">Floods close the coastal road</a></div>'
    tree = load_html(
        f"<html><head><title>Council approves the budget</title></head><body><article>{bar}"
        "<h1>Council approves the budget</h1><p>The council met on Tuesday.</p></article></body></html>"
    )
    assert extract_page_metadata(tree, "https://harbourtimes.example/a").urgent_signal is None


def test_control_characters_of_a_page_never_reach_a_title_or_an_author():
    """ESC and BEL from a JSON-LD "\u001b" (or an HTML "&#x1b;") reached the title, the alerts
    and the terminal of whoever printed them."""
    assert clean_text("\x1b]0;PWNED\x07\x1b[2JFAKE:\x7f Ceasefire\x9b collapses") == "]0;PWNED[2JFAKE: Ceasefire collapses"
    assert clean_text("Jane\x1b[8m Doe") == "Jane[8m Doe"


def test_a_link_that_does_not_parse_in_the_headline_does_not_fail_the_page():
    """Every link in an h1 is checked for the home page (a logo); "http://[oops/" raised and the
    page was dead-lettered as an extractor error."""
    tree = load_html('<html><body><h1><a href="http://[oops/">Council approves the budget</a></h1><p>Text.</p></body></html>')
    assert extract_page_metadata(tree, "https://news.example/a/b").title == "Council approves the budget"


def test_an_og_title_cut_short_by_an_unescaped_quotation_mark_is_read_whole_from_the_headline():
    # content="...und "royaler Besuch"" ends at the quotation mark: og:title and twitter:title
    # said "...Sieger und", and two cut copies outvoted the headline and <title>
    headline = 'Hamburg Marathon 2024: Überlegener Sieger und "royaler Besuch"'
    head = f'<title>{escape(headline, quote=False)}</title><meta property="og:title" content="{headline}">' \
        f'<meta name="twitter:title" content="{headline}">'
    tree = load_html(f"<html><head>{head}</head><body><h1>{escape(headline, quote=False)}</h1><p>Text.</p></body></html>")
    assert extract_page_metadata(tree, "https://www.abendblatt.example/sport/marathon").title == headline
    # a headline that merely goes on past an og:title does not replace it
    tree = load_html(
        '<html><head><meta property="og:title" content="Council approves the budget">'
        "</head><body><h1>Council approves the budget for 2025</h1><p>Text.</p></body></html>"
    )
    assert extract_page_metadata(tree, "https://news.example/a").title == "Council approves the budget"


# --- found by a review of the metadata stage (the nineteenth session) -------------------------------


NAV_TERMS = (
    '<div class="row"><a href="/category/politics">Politics</a> <a href="/category/breaking-news">Breaking News</a></div>',
    '<aside><div class="trending-topics"><a href="/tag/breaking">Breaking</a> <a href="/tag/election">Election</a></div></aside>',
)


@pytest.mark.parametrize("nav", NAV_TERMS)
def test_a_link_to_a_breaking_news_tag_page_in_the_menu_does_not_make_the_article_urgent(nav: str) -> None:
    # trafilatura's tag search reads any div.row or "topics" box: a site's menu made every article
    # of the site urgent, an alert each
    html_text = f"<html><head><title>Council approves the budget</title></head><body>{nav}" + (
        "<article><h1>Council approves the budget</h1><p>The council voted on Tuesday.</p></article></body></html>"
    )
    assert extract_page_metadata(load_html(html_text), "https://citypost.example/a").urgent_signal is None
    declared = html_text.replace("</head>", '<meta property="article:tag" content="Breaking News"></head>')
    assert extract_page_metadata(load_html(declared), "https://citypost.example/a").urgent_signal == "tag:Breaking News"


@pytest.mark.parametrize(
    "keywords",
    [
        '<meta name="keywords" content="أخبار, عاجل, الأردن, رياضة, طقس">',
        '<meta name="keywords" content="calgary, news, breaking news, canada, local news, weather, tv">',
        '<meta name="news_keywords" content="産経新聞,ニュース,速報,政治,経済,社会,国際,スポーツ">',
        '<meta name="keywords" content="HABER, son dakika, yangın, son dakika haber">',
    ],
)
def test_the_pages_search_keywords_do_not_make_the_article_urgent(keywords: str) -> None:
    # many sites put the same list on every page: each article of the site was urgent, an alert each
    html_text = (
        f"<html><head><title>Council approves the budget</title>{keywords}</head><body>"
        "<article><h1>Council approves the budget</h1><p>The council voted on Tuesday.</p></article></body></html>"
    )
    found = extract_page_metadata(load_html(html_text), "https://citypost.example/a")
    assert found.urgent is False, found.urgent_signal
    assert found.tags  # still the page's tags
    ld = '<script type="application/ld+json">{"@type": "NewsArticle", "articleSection": ["عاجل"]}</script>'
    declared = extract_page_metadata(load_html(html_text.replace("</head>", f"{ld}</head>")), "https://citypost.example/a")
    assert declared.urgent_signal == "tag:عاجل"


@pytest.mark.parametrize(
    "bar",
    [
        '<div class="breaking-news"><b>BREAKING</b> <a href="/n/fire">Fire closes Main Street</a></div>',
        '<div class="breaking-bar"><a href="/n/seismos">Σεισμός 5,2 Ρίχτερ στην Κρήτη</a></div>',
        '<div class="breaking-news"><span class="label">عاجل</span> <span>انفجار في الميناء</span></div>',
    ],
)
def test_a_bar_named_breaking_that_holds_another_headline_is_a_ticker_not_a_badge(bar: str) -> None:
    html_text = (
        f"<html><head><title>Council approves the budget</title></head><body><main>{bar}"
        "<h1>Council approves the budget</h1><p>The council voted on Tuesday.</p></main></body></html>"
    )
    assert extract_page_metadata(load_html(html_text), "https://citypost.example/a").urgent_signal is None


def _ld(*objects: str) -> str:
    return "".join(f'<script type="application/ld+json">{o}</script>' for o in objects)


def test_the_pages_own_article_object_wins_over_a_list_of_related_ones_before_it() -> None:
    related = (
        '{"@type": "ItemList", "itemListElement": [{"@type": "ListItem", "item": {"@type": "NewsArticle", '
        '"headline": "Older story", "datePublished": "2024-10-01T10:00:00Z", "author": {"@type": "Person", "name": "Tom Roe"}}}]}'
    )
    own = (
        '{"@type": "NewsArticle", "headline": "Budget approved", "datePublished": "2024-10-13T08:30:00Z", '
        '"author": {"@type": "Person", "name": "Jane Doe"}, "publisher": {"@type": "Organization", "name": "City Post"}, '
        '"mainEntityOfPage": "https://citypost.example/a", "articleBody": "The council approved the budget."}'
    )
    meta = extract_page_metadata(load_html(PAGE.format(head=_ld(related, own))), "https://citypost.example/a")
    assert (meta.published, meta.authors) == ("2024-10-13T08:30:00Z", ("Jane Doe",))


def test_references_of_a_json_ld_graph_are_read_as_the_objects_they_name() -> None:
    # Yoast (WordPress) writes the author, publisher and image of the article as {"@id": ...}
    graph = """{"@context": "https://schema.org", "@graph": [
      {"@type": "NewsArticle", "@id": "https://daily.example/a/#article", "headline": "Budget approved",
       "datePublished": "2024-10-13T08:30:00+00:00", "author": {"@id": "https://daily.example/#/schema/person/abc"},
       "publisher": {"@id": "https://daily.example/#organization"}, "image": {"@id": "https://daily.example/a/#primaryimage"}},
      {"@type": "Person", "@id": "https://daily.example/#/schema/person/abc", "name": "Jane Smith"},
      {"@type": "Organization", "@id": "https://daily.example/#organization", "name": "The Daily"},
      {"@type": "ImageObject", "@id": "https://daily.example/a/#primaryimage", "url": "https://daily.example/img/budget.jpg",
       "caption": "The town hall"}]}"""
    meta = extract_page_metadata(load_html(PAGE.format(head=_ld(graph))), "https://daily.example/a/")
    assert meta.authors == ("Jane Smith",)
    assert meta.site_name == "The Daily"
    assert meta.image == "https://daily.example/img/budget.jpg"


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ('{"@type": "ImageObject", "name": "Waves over the harbour wall", "url": "https://cdn.example/storm.jpg"}',
         "https://cdn.example/storm.jpg"),
        ('{"@type": "ImageObject", "contentUrl": "https://cdn.example/storm.jpg"}', "https://cdn.example/storm.jpg"),
        # a reference to nothing on the page is no address
        ('{"@id": "https://daily.example/a/#primaryimage"}', None),
    ],
)
def test_a_json_ld_image_object_gives_its_address_never_its_name_or_id(image: str, expected: str | None) -> None:
    article = f'{{"@type": "NewsArticle", "headline": "Budget approved", "image": {image}}}'
    meta = extract_page_metadata(load_html(PAGE.format(head=_ld(article))), "https://daily.example/a/")
    assert meta.image == expected


def test_a_published_date_ahead_of_now_is_a_typo_and_the_pages_other_statement_is_read() -> None:
    now = datetime.now(UTC)
    typo, right = (now + timedelta(days=40)).isoformat(), (now - timedelta(days=2)).isoformat()
    head = _ld(f'{{"@type": "NewsArticle", "headline": "Budget approved", "datePublished": "{typo}"}}') + (
        f'<meta property="article:published_time" content="{right}">'
    )
    assert extract_page_metadata(load_html(PAGE.format(head=head)), "https://daily.example/a/").published == right


def test_a_sections_h1_above_the_articles_is_not_the_title() -> None:
    html_text = (
        "<html><head><title>Scholz stellt Vertrauensfrage im Bundestag - DER SPIEGEL</title></head><body>"
        '<h1 class="section">Politik</h1><article><h1>Scholz stellt Vertrauensfrage im Bundestag</h1>'
        "<p>Der Kanzler hat die Vertrauensfrage gestellt.</p></article></body></html>"
    )
    meta = extract_page_metadata(load_html(html_text), "https://www.spiegel.example/politik/a")
    assert meta.title == "Scholz stellt Vertrauensfrage im Bundestag"


@pytest.mark.parametrize("joined", ["_", "|", "-", "｜"])
def test_a_site_name_joined_to_the_title_without_spaces_is_cut(joined: str) -> None:
    html_text = (
        f'<html lang="zh-CN"><head><title>国务院召开常务会议部署经济工作{joined}新华网</title>'
        '<meta property="og:site_name" content="新华网"></head><body><p>正文</p></body></html>'
    )
    meta = extract_page_metadata(load_html(html_text), "http://www.news.example/politics/abc.htm")
    assert meta.title == "国务院召开常务会议部署经济工作"
    # joined to what is not the site's name, a title keeps its parts ("COVID-19", "新闻_新浪网")
    other = html_text.replace(f"{joined}新华网</title>", "_新闻_新浪网</title>")
    assert extract_page_metadata(load_html(other), "http://www.news.example/a").title == "国务院召开常务会议部署经济工作_新闻_新浪网"


def test_a_name_that_starts_like_a_byline_word_keeps_it() -> None:
    assert metadata.clean_authors(["Ved Prakash Sharma", "Di Stefano", "di Mario Rossi", "Di: Anna Bianchi"]) == (
        "Ved Prakash Sharma", "Di Stefano", "Mario Rossi", "Anna Bianchi",
    )


@pytest.mark.parametrize(
    "keywords", ["الاقتصاد، الميزانية، مصر", "国务院，常务会议，经济", "国务院、常务会议、经济", "economy; budget; Egypt"]
)
def test_keywords_split_on_the_comma_of_their_script(keywords: str) -> None:
    head = f'<meta name="keywords" content="{keywords}">'
    assert len(extract_page_metadata(load_html(PAGE.format(head=head)), "https://news.example/a").tags) == 3


def test_a_live_blogs_own_object_wins_over_its_updates() -> None:
    blog = (
        '{"@type": "LiveBlogPosting", "headline": "Riots LIVE", "datePublished": "2024-08-04T13:23:00Z", '
        '"author": [{"@type": "Person", "name": "Lucy Thornton"}], "liveBlogUpdate": [{"@type": "BlogPosting", '
        '"headline": "Stand-off in Plymouth", "datePublished": "2024-08-05T21:00:18+01:00", "articleBody": "'
        + "Police held the line. " * 20 + '", "author": {"@type": "Person", "name": "Tim Hanlon"}}]}'
    )
    meta = extract_page_metadata(load_html(PAGE.format(head=_ld(blog))), "https://www.mirror.example/live")
    assert (meta.published, meta.authors) == ("2024-08-04T13:23:00Z", ("Lucy Thornton",))


@pytest.mark.parametrize(
    ("head", "body"),
    [
        ('<meta property="og:image" content="http://[::1/logo.png">', ""),
        ('<meta name="twitter:image" content="https://[cdn.example/x.jpg">', ""),
        ('<script type="application/ld+json">{"@type": "NewsArticle", "image": {"url": "http://[x/a.jpg"}}</script>', ""),
        ('<script type="application/ld+json">{"@type": "NewsArticle", "datePublished": "9999-12-31T24:00"}</script>', ""),
        # a comment's date, searched for when the declared one has no zone
        ('<meta property="article:published_time" content="2024-10-13T08:30:00">',
         '<div class="comments"><time datetime="9999-12-31T24:00">x</time></div>'),
    ],
)
def test_an_odd_metadata_value_is_left_out_and_the_page_kept(head: str, body: str) -> None:
    # the ValueError of urljoin and the OverflowError of the day after 9999-12-31 failed the page
    html_text = f"<html><head><title>Budget approved</title>{head}</head><body><h1>Budget approved</h1>{body}</body></html>"
    found = extract_page_metadata(load_html(html_text), "https://news.example/2024/10/13/budget")
    assert found.image is None
    assert found.published is None or found.published.startswith("2024-10-13")


@pytest.mark.parametrize(
    ("declared", "moment"),
    [
        ("Mon, 18 Nov 2019 16:07:38 -0600", "2019-11-18T16:07:38-06:00"),  # RFC 2822
        ("Tue Nov 19 2019 03:05:46 GMT+0300", "2019-11-19T03:05:46+03:00"),  # JavaScript (not POSIX's GMT+3)
        ("Fri Apr 28 19:20:36 CEST 2023", "2023-04-28T19:20:36+02:00"),  # Java
        ("November 19, 2019, 07:47 PM EST", "2019-11-19T19:47:00-05:00"),
        ("19 Nov 2019 07:09 GMT", "2019-11-19T07:09:00+00:00"),
        ("20120104T1205+0400Z", "2012-01-04T12:05:00+04:00"),  # ISO's basic format
        ("2022-1-26T14:32:06+02:00", "2022-01-26T14:32:06+02:00"),
        ("2019-11-20 4:00:00 -0600", "2019-11-20T04:00:00-06:00"),  # was its day only
        ("২০২০-০৮-২৯T১০:৪৬:০৬+০১:০০", "2020-08-29T10:46:06+01:00"),  # Bengali digits
        ("1750680000000", "2025-06-23T12:00:00+00:00"),  # Unix time in milliseconds
        ("May 15th, 2023", "2023-05-15T00:00:00+00:00"),
        # a zone that names several offsets (India, Ireland, Israel): the day only
        ("01:38:07 PM IST Nov 20, 2019", "2019-11-20T00:00:00+00:00"),
    ],
)
def test_declared_dates_in_other_formats_than_iso_are_read_with_their_zone(declared: str, moment: str) -> None:
    # unread, the date search found the day and gave it midnight UTC or no zone: hours off
    assert metadata.parse_iso(declared) == datetime.fromisoformat(moment)


@pytest.mark.parametrize("declared", ["04/05/2019", "May 15", "march 2024", "Sunday", "الأربعاء، 07 أكتوبر 2020 - 12:09 م"])
def test_a_declared_date_that_leaves_its_day_or_year_open_is_not_read(declared: str) -> None:
    # April or May; the year or the day would be today's
    assert metadata.parse_iso(declared) is None


def test_the_site_name_is_the_outlets_not_its_twitter_handle() -> None:
    # twitter:site came before the JSON-LD publisher: "AJENews" for Al Jazeera, on 37 bench pages
    head = ('<meta name="twitter:site" content="@AJENews">'
            '<script type="application/ld+json">{"@type": "NewsArticle", "publisher": {"@type": "Organization", '
            '"name": "Al Jazeera"}}</script>')
    assert extract_page_metadata(load_html(PAGE.format(head=head)), "https://www.aljazeera.com/a").site_name == "Al Jazeera"
    handle_only = '<meta name="twitter:site" content="@tazgezwitscher">'
    found = extract_page_metadata(load_html(PAGE.format(head=handle_only)), "https://taz.de/a")
    assert found.site_name != "tazgezwitscher"


def test_categories_tags_and_descriptions_escaped_twice_are_read_once_more() -> None:
    head = ('<meta property="article:section" content="Biotech &amp;amp; Health">'
            '<meta property="article:tag" content="CD&amp;amp;V">'
            '<meta name="description" content="Verlinden (46) maakt voor CD&amp;amp;V opnieuw haar opwachting.">')
    found = extract_page_metadata(load_html(PAGE.format(head=head)), "https://news.example/a")
    assert found.categories == ("Biotech & Health",)
    assert found.tags == ("CD&V",)
    assert found.description == "Verlinden (46) maakt voor CD&V opnieuw haar opwachting."


def test_an_author_is_a_name_not_a_user_number_nor_the_publishers_logo() -> None:
    numbered = '<meta name="author" content="105092">'
    assert extract_page_metadata(load_html(PAGE.format(head=numbered)), "https://news.example/a").authors == ()
    # a publisher's microdata inside the byline: its logo's address was read as four names
    logo = (
        '<html><head><title>Budget approved</title></head><body><h1>Budget approved</h1>'
        '<div class="byline" itemprop="publisher" itemscope><span itemprop="name">Sputnik</span>'
        '<span itemprop="logo" itemscope><span itemprop="url">https://cdnarabic.img/i/logo.png</span></span></div>'
        "<p>The council approved the budget.</p></body></html>"
    )
    assert extract_page_metadata(load_html(logo), "https://news.example/a").authors == ("Sputnik",)


def test_the_pages_own_json_ld_article_comes_before_one_nested_in_it_that_has_a_date() -> None:
    # the page's NewsArticle had no datePublished (its date is in a meta tag): a related article
    # nested in it had one and won, with its date and its author
    own = ('{"@type": "NewsArticle", "headline": "Budget approved", "author": {"@type": "Person", "name": "Jane Doe"},'
           ' "relatedLink": [{"@type": "NewsArticle", "headline": "Older story", "datePublished": "2023-01-05T10:00:00Z",'
           ' "author": {"@type": "Person", "name": "Tom Roe"}}]}')
    head = '<meta property="article:published_time" content="2024-10-13T08:30:00Z">' + _ld(own)
    found = extract_page_metadata(load_html(PAGE.format(head=head)), "https://citypost.example/a")
    assert (found.published, found.authors) == ("2024-10-13T08:30:00Z", ("Jane Doe",))


def test_a_live_blog_is_published_when_its_coverage_started_not_at_its_latest_update() -> None:
    live = ('{"@type": "LiveBlogPosting", "headline": "Election night live", "coverageStartTime": "2024-11-05T18:00:00-05:00",'
            ' "author": {"@type": "Person", "name": "Jane Doe"}, "liveBlogUpdate": [{"@type": "BlogPosting",'
            ' "headline": "Polls close in Florida", "datePublished": "2024-11-06T01:12:00-05:00",'
            ' "author": {"@type": "Person", "name": "Tom Roe"}}]}')
    found = extract_page_metadata(load_html(PAGE.format(head=_ld(live))), "https://citypost.example/a")
    assert (found.published, found.authors) == ("2024-11-05T18:00:00-05:00", ("Jane Doe",))


@pytest.mark.parametrize(
    "headline",
    ["عاجل.. انفجار في مرفأ بيروت", "عاجل..انفجار في مرفأ بيروت", "عاجل ... انفجار في مرفأ بيروت",
     "عاجل/ انفجار في مرفأ بيروت", "عاجل، انفجار في مرفأ بيروت", "BREAKING... Explosion in Beirut port"],
)
def test_an_urgent_word_set_off_by_an_ellipsis_a_slash_or_an_arabic_comma_is_a_marker(headline: str) -> None:
    # as youm7, masrawy and almasryalyoum write it: "عاجل.." was no marker
    assert urgent_signal(headline) is not None


def test_a_breaking_bar_whose_items_a_script_loads_is_a_ticker_not_a_badge() -> None:
    # only the bar's label is in the HTML: it was read as the article's own "عاجل" badge
    page = (
        '<html lang="ar"><head><title>مجلس النواب يقر الموازنة العامة</title></head><body><div class="container">'
        '<div class="breaking-news"><span class="breaking-title">عاجل</span><ul id="breaking-items"></ul></div>'
        "<h1>مجلس النواب يقر الموازنة العامة</h1><p>وافق مجلس النواب على الموازنة.</p></div></body></html>"
    )
    found = extract_page_metadata(load_html(page), "https://news.example/a/1")
    assert found.urgent is False, found.urgent_signal
