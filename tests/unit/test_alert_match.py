"""Matching articles and stories against rules: whole words in every script, Arabic and Hebrew
clitics in those languages only, orthographic variants, CJK runs, domains, languages, the urgent
flag, the breaking-story window."""

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from workers.alerts.match import ArticleFacts, Matcher, StoryInfo, breaking_outlets, clitic_forms, covers
from workers.alerts.rules import ArticleConditions, Rule, RuleKind, RuleSet, Term, parse_rules
from workers.models import Article, ExtractionInfo, SourcePosition
from workers.textnorm import MATCHED_CHARS

T0 = datetime(2016, 12, 8, 19, 32, tzinfo=UTC)
SEED_TITLE = "كيري: الجهود ستتواصل بشأن حلب.. والجيش السوري يستمر في التقدّم"
SEED_TEXT = (
    "أعلن مسؤول أميركي أن وزيري الخارجية الأميركي جون كيري والروسي سيرغي لافروف لم يحققا أيّ تقدّم "
    "في محادثاتهما الخميس، 8 كانون الأول/ديسمبر، حول التوصل إلى وقف لإطلاق النار في حلب."
)


def article(title: str | None, text: str, *, domain: str = "irfaasawtak.example", language: str | None = "ar") -> Article:
    return Article(
        article_id="8c96e064df17d9ace6d8a45853a86804", url=f"https://{domain}/a", canonical_url=f"https://{domain}/a",
        domain=domain, title=title, text=text, language=language, published_at=T0, fetched_at=T0,
        content_hash="sha256:" + "0" * 64, pipeline_version=1, processed_at=T0,
        source=SourcePosition(topic="pages.raw", partition=0, offset=1),
        extraction=ExtractionInfo(extractor="trafilatura", extractor_version="2.3.1", html_bytes=1, text_chars=1, encoding="utf-8"),
    )


def matcher(rules_yaml: str) -> Matcher:
    return Matcher(parse_rules("version: 1\nrules:\n" + rules_yaml, source="rules.yaml", secret_names=None))


def fired(rules_yaml: str, title: str | None, text: str, *, urgent: bool = False, **fields: str | None) -> dict[str, tuple[str, ...]]:
    facts = ArticleFacts.of(article(title, text, **fields), urgent=urgent)
    return {m.rule.id: m.terms for m in matcher(rules_yaml).match_article(facts)}


def terms_rule(*terms: str) -> str:
    return "  - {id: t, kind: article, match: {terms: [" + ", ".join(f'"{t}"' for t in terms) + "]}}\n"


def test_the_seed_article_matches_arabic_keywords_and_reports_them_as_written():
    rules = terms_rule("حلب", "Aleppo") + "  - {id: both, kind: article, match: {all_terms: [\"كيري\", \"لافروف\"]}}\n"
    assert fired(rules, SEED_TITLE, SEED_TEXT) == {"t": ("حلب",), "both": ("كيري", "لافروف")}


@pytest.mark.parametrize(
    ("term", "text", "hit"),
    [
        # Diacritics, alef forms, alef maqsura, taa marbuta and hamza seats are folded on both sides.
        ("التقدم", "يستمر في التقدّم", True),
        ("أمريكي", "مسؤول امريكي", True),
        ("الرئيسي", "المحتوى الرئيسى", True),
        ("مسئول", "أعلن مسؤول", True),
        # Clitics written joined: conjunction, preposition, article, ل + ال.
        ("حلب", "المعارك بحلب اليوم", True),
        ("حلب", "في دمشق وحلب", True),
        ("الجيش", "وقال للجيش", True),
        ("الجيش", "وبالجيش", True),
        ("لافروف", "كيري ولافروف", True),
        # ... and nothing else: never inside a longer word.
        ("حلب", "الحلبي", False),
        ("حلب", "مطالب", False),
        ("كيري", "يري", False),
        ("علم", "العلماء", False),
        # Latin: case, accents, word boundaries; digits of any script.
        ("Iran", "IRAN says", True),
        ("Iran", "Iranian officials", False),
        ("Société Générale", "la SOCIETE GENERALE annonce", True),
        ("2016", "في ٢٠١٦", True),
        # Phrases: consecutive words, punctuation in between ignored.
        ("وقف إطلاق النار", "التوصل إلى وقف لإطلاق النار في حلب", True),  # "ceasefire", with ل joined
        ("وقف إطلاق النار", "وقف العمليات وإطلاق النار", False),
        ("Kerry Lavrov", "Kerry, Lavrov meet", True),
        ("Kerry Lavrov", "Kerry met Lavrov", False),
        # Scripts without spaces: character bigrams, found inside a run.
        ("北京", "在北京大学举行", True),
        ("北京大学", "在北京大学举行", True),
        ("北京大学", "北京的大学", False),
        ("東京都", "東京都庁で会見", True),
        ("停火", "双方同意停火协议", True),
        # Korean: a particle joined to the noun (이, 의, 은) still leaves the noun found.
        ("북한", "합참은 북한의 미사일 발사를 포착했다", True),
        ("북한", "북한이 탄도미사일을 발사했다", True),
        ("미사일", "미사 일정", False),
    ],
)
def test_term_matching(term, text, hit):
    assert bool(fired(terms_rule(term), None, text)) is hit


def test_a_phrase_does_not_run_from_the_title_into_the_text():
    assert not fired(terms_rule("Aleppo talks"), "News from Aleppo", "Talks failed")
    assert fired(terms_rule("Aleppo"), "News from Aleppo", "Talks failed")


def test_arabic_clitic_forms():
    forms = clitic_forms("حلب", "ar")
    assert {"حلب", "بحلب", "وحلب", "لحلب", "الحلب", "بالحلب", "للحلب", "وبالحلب"} <= forms
    assert "الالحلب" not in forms and "لالحلب" not in forms
    assert {"الجيش", "للجيش", "وللجيش", "بالجيش"} <= clitic_forms("الجيش", "ar")
    assert clitic_forms("aleppo", "ar") == {"aleppo"}


def test_hebrew_clitic_forms():
    forms = clitic_forms("כנסת", "he")
    assert {"כנסת", "הכנסת", "בכנסת", "לכנסת", "מהכנסת", "והכנסת", "שהכנסת", "כשהכנסת", "ושבכנסת"} <= forms
    assert "ככנסת" in forms and "מכנסת" in forms
    assert "בהכנסת" not in forms  # ב ל כ absorb the article
    assert "ווכנסת" not in forms and "שוכנסת" not in forms  # ו comes first, once


@pytest.mark.parametrize(
    ("term", "text", "hit"),
    [
        # Proclitics written joined: preposition, conjunction, article, subordinator, and combinations.
        ("ירושלים", "הפגנה גדולה בירושלים הערב", True),
        ("ירושלים", "בתל אביב וירושלים", True),
        ("ירושלים", "הוא חזר מירושלים", True),
        ("ירושלים", "כשבירושלים יורד שלג", True),
        ("כנסת", "הדיון בכנסת נדחה", True),
        ("כנסת", "יצא מהכנסת", True),
        ("ממשלה", "אמרו שהממשלה תתכנס", True),
        # Points and cantillation on either side.
        ("ירושלים", "שלום על יְרוּשָׁלַיִם", True),
        ("יְרוּשָׁלַיִם", "הפגנה בירושלים", True),
        # ... and never a suffix or a letter that is not a proclitic.
        ("ירושלים", "עיתונאי ירושלמי", False),
        ("ירושלים", "אירושלים", False),
        # Other scripts: the word forms a rule lists, no other (no stemming).
        ("Путин", "заявил Путин", True),
        ("Путин", "встреча Путина и Си", False),
    ],
)
def test_hebrew_proclitics_and_points_and_no_stemming_elsewhere(term, text, hit):
    assert bool(fired(terms_rule(term), None, text, language="he")) is hit


def test_proclitics_are_those_of_the_language_not_of_the_script():
    # Arabic's varieties (as the detector names Egyptian and Moroccan) write Arabic's; Persian,
    # Urdu and the other languages in Arabic letters, and Yiddish in Hebrew ones, write none.
    assert clitic_forms("حلب", "arz") == clitic_forms("حلب", "ary") == clitic_forms("حلب", "ar")
    assert clitic_forms("כנסת", "he") == clitic_forms("כנסת", "hbo") != {"כנסת"}
    for language in ("fa", "ur", "ps", "ckb", "sd", "ug", "en", "he"):
        assert clitic_forms("حلب", language) == {"حلب"}
    for language in ("yi", "lad", "ar"):
        assert clitic_forms("כנסת", language) == {"כנסת"}
    # Unknown: each script's, as written in it.
    for unknown in (None, "und", "mul", "zxx"):
        assert clitic_forms("حلب", unknown) == clitic_forms("حلب", "ar")
        assert clitic_forms("כנסת", unknown) == clitic_forms("כנסת", "he")


@pytest.mark.parametrize(
    ("language", "term", "text", "hit"),
    [
        # Persian: "Fars" (the province, the news agency) is not "and Aras"; "did" (کرد, whose ک
        # normalize() folds into Arabic's) is not "as rejection"; the word itself still matches.
        ("fa", "ارس", "به گزارش خبرگزاری فارس", False),
        ("fa", "رد", "وزیر خارجه اعلام کرد", False),
        ("fa", "ارس", "منطقه آزاد ارس", True),
        # Urdu: Bilal went to the mosque, not the Lal Masjid.
        ("ur", "لال مسجد", "بلال مسجد گئے", False),
        ("ur", "لال مسجد", "لال مسجد کے باہر احتجاج", True),
        # Pashto, Kurdish (Sorani), Sindhi, Uyghur alike.
        ("ps", "ارس", "د فارس خلیج", False),
        ("ckb", "ارس", "کەنداوی فارس", False),
        ("sd", "ارس", "فارس", False),
        ("ug", "ارس", "فارس", False),
        # Yiddish: Biden is not "in the Jews" (ב + ייִדן).
        ("yi", "ייִדן", "ביידן האָט געזאָגט", False),
        ("yi", "ייִדן", "די ייִדן אין ניו יאָרק", True),
        # Arabic and its varieties, and Hebrew, keep theirs.
        ("ar", "مدينة", "وبالمدينة أعلن", True),
        ("arz", "مدينة", "وبالمدينة أعلن", True),
        ("he", "כנסת", "יצא מהכנסת", True),
        # An article of unknown language: each word with its script's (as before languages counted).
        (None, "مدينة", "وبالمدينة أعلن", True),
        (None, "כנסת", "יצא מהכנסת", True),
        ("und", "مدينة", "وبالمدينة أعلن", True),
        # An Arabic word quoted in an article in another language is matched as written there.
        ("en", "حلب", "the name بحلب", False),
        ("en", "حلب", "the name حلب", True),
    ],
)
def test_proclitics_match_in_their_language_only(language, term, text, hit):
    assert bool(fired(terms_rule(term), None, text, language=language)) is hit


def test_one_compiled_ruleset_serves_articles_of_every_language():
    persian_rule = "  - {id: fa, kind: article, match: {terms: [\"ارس\"], languages: [fa]}}\n"
    rules = matcher(terms_rule("ارس") + persian_rule)
    in_language = {
        language: ArticleFacts.of(article(None, "فارس", language=language), urgent=False)
        for language in ("ar", "fa", None)
    }
    for language in ("ar", "fa", None, "fa", "ar"):
        fired_ids = {m.rule.id for m in rules.match_article(in_language[language])}
        assert fired_ids == (set() if language == "fa" else {"t"})


def test_conditions_combine_with_and():
    rules = (
        "  - {id: ar-urgent, kind: article, match: {urgent: true, languages: [ar]}}\n"
        "  - {id: not-urgent, kind: article, match: {urgent: false}}\n"
        "  - {id: outlet, kind: article, match: {domains: [irfaasawtak.example]}}\n"
        "  - {id: excluded, kind: article, match: {terms: [\"حلب\"], exclude_terms: [\"لافروف\"]}}\n"
        "  - {id: disabled, kind: article, enabled: false, match: {terms: [\"حلب\"]}}\n"
    )
    assert set(fired(rules, SEED_TITLE, SEED_TEXT, urgent=True)) == {"ar-urgent", "outlet"}
    assert set(fired(rules, SEED_TITLE, SEED_TEXT, urgent=False)) == {"not-urgent", "outlet"}
    assert set(fired(rules, SEED_TITLE, SEED_TEXT, urgent=True, language="en", domain="news.other.example")) == set()


def test_a_domain_covers_its_subdomains_only():
    domains = frozenset({"bbc.co.uk"})
    assert covers(domains, "bbc.co.uk") and covers(domains, "news.bbc.co.uk")
    assert not covers(domains, "notbbc.co.uk") and not covers(domains, "co.uk")


def story(**minutes: float) -> StoryInfo:
    return StoryInfo("st-1", {f"{name}.example": T0 + timedelta(minutes=m) for name, m in minutes.items()})


BREAKING = "  - {id: breaking, kind: breaking_story, match: {min_outlets: 3, within_minutes: 30}}\n"


def test_a_story_breaks_when_enough_outlets_report_it_within_the_window():
    rules = matcher(BREAKING)
    assert rules.match_story(story(a=0, b=10)) == []
    assert rules.match_story(story(a=0, b=10, c=45)) == []  # three outlets, but over 45 minutes
    (match,) = rules.match_story(story(a=0, b=20, c=45, d=50))  # b, c, d within 30 minutes
    assert match.rule.id == "breaking"
    assert [domain for domain, _ in match.outlets] == ["b.example", "c.example", "d.example"]


def test_a_breaking_story_rule_can_count_only_some_outlets():
    rules = matcher("  - {id: b, kind: breaking_story, match: {min_outlets: 2, within_minutes: 30, domains: [a.example, c.example]}}\n")
    assert rules.match_story(story(a=0, b=1)) == []
    assert [d for d, _ in rules.match_story(story(a=0, b=1, c=2))[0].outlets] == ["a.example", "c.example"]


def test_a_breaking_story_rule_naming_a_host_counts_its_outlet():
    # Stories count outlets by registrable domain: edition.cnn.com's reports are cnn.com's.
    rules = matcher("  - {id: b, kind: breaking_story, match: {min_outlets: 2, within_minutes: 30, domains: [edition.cnn.com, a.example]}}\n")
    reported = StoryInfo("st-1", {"cnn.com": T0, "a.example": T0 + timedelta(minutes=1), "cnn.co.uk": T0})
    assert [d for d, _ in rules.match_story(reported)[0].outlets] == ["cnn.com", "a.example"]
    assert rules.match_story(StoryInfo("st-2", {"notcnn.com": T0, "a.example": T0})) == []


def test_story_rules_do_not_match_articles_and_article_rules_do_not_match_stories():
    rules = matcher(BREAKING + terms_rule("حلب"))
    assert [m.rule.id for m in rules.match_article(ArticleFacts.of(article(SEED_TITLE, SEED_TEXT), urgent=False))] == ["t"]
    assert [m.rule.id for m in rules.match_story(story(a=0, b=1, c=2))] == ["breaking"]


def test_a_rule_names_an_internationalised_outlet_in_punycode_too():
    # the article's domain is in Unicode (workers.urlnorm.domain_of)
    rules = (
        "  - {id: outlet, kind: article, match: {domains: [xn--mgbh0fb.xn--wgbh1c]}}\n"
        "  - {id: story, kind: breaking_story, match: {min_outlets: 2, within_minutes: 30, domains: [xn--mgbh0fb.xn--wgbh1c, b.example]}}\n"
    )
    assert set(fired(rules, SEED_TITLE, SEED_TEXT, domain="news.مثال.مصر")) == {"outlet"}
    reported = StoryInfo("st-1", {"مثال.مصر": T0, "b.example": T0 + timedelta(minutes=5)})
    assert [d for d, _ in matcher(rules).match_story(reported)[0].outlets] == ["مثال.مصر", "b.example"]


def test_a_text_is_matched_on_its_first_matched_chars_only():
    # The bound keeps the work on one article bounded (README, Alerts): a term after it is not
    # seen, and the word the bound falls in is left out whole, not matched by its first letters.
    sentence = "Talks continue in Geneva. "
    longer = sentence * (MATCHED_CHARS // len(sentence) + 1)
    assert fired(terms_rule("Geneva"), None, longer + "Aleppo") == {"t": ("Geneva",)}
    assert fired(terms_rule("Aleppo"), None, longer + "Aleppo") == {}
    assert fired(terms_rule("Aleppo"), "Aleppo", longer + "Aleppo") == {"t": ("Aleppo",)}  # the title is read apart
    head = sentence * ((MATCHED_CHARS - 5) // len(sentence) - 1)
    iran_at_the_bound = head + "x" * (MATCHED_CHARS - 5 - len(head)) + " Iranian officials"
    assert iran_at_the_bound[MATCHED_CHARS - 4 : MATCHED_CHARS] == "Iran"
    assert fired(terms_rule("Iran"), None, iran_at_the_bound) == {}


# --- found by a review of the alerts (the nineteenth session) ---------------------------------------


@pytest.mark.parametrize(
    ("term", "text"),
    [("Diyarbakır", "DİYARBAKIR'DA PATLAMA"), ("Iğdır", "IĞDIR VALİSİ AÇIKLADI"), ("DİYARBAKIR", "Diyarbakır'da patlama"),
     ("istanbul", "İSTANBUL'DA YAĞMUR")],
)
def test_turkish_dotless_and_dotted_i_meet_in_any_case(term: str, text: str):
    # casefold makes İ and I both i, and keeps ı: an all-caps Turkish headline never matched
    assert fired(terms_rule(term), text, "", language="tr") == {"t": (term,)}


@pytest.mark.parametrize(
    ("rule_language", "article_language", "hit"),
    [("ar", "arz", True), ("ar", "ary", True), ("heb", "he", True), ("iw", "he", True), ("ara", "ar", True),
     ("tl", "tl", True), ("no", "nn", True), ("nb", "nn", False), ("ar", "fa", False)],
)
def test_a_rule_language_matches_as_the_detector_and_pages_write_it(rule_language: str, article_language: str, hit: bool):
    # quoted: YAML reads a bare no as false (the schema refuses it)
    rule = "  - {id: t, kind: article, match: {terms: [حلب], languages: ['" + rule_language + "']}}\n"
    assert bool(fired(rule, SEED_TITLE, SEED_TEXT, language=article_language)) is hit


@pytest.mark.parametrize(("written", "crawled"), [("straße.de", "xn--strae-oqa.de"), ("xn--strae-oqa.de", "straße.de")])
def test_an_outlet_whose_name_only_idna_2008_reads_matches_in_either_spelling(written: str, crawled: str):
    # Python's codec (IDNA 2003) cannot read xn--strae-oqa: the outlet stayed in punycode, matched
    # only as written, and counted as two outlets in a story
    from workers.urlnorm import domain_of

    rules = "  - {id: outlet, kind: article, match: {domains: [" + written + "]}}\n"
    assert set(fired(rules, SEED_TITLE, SEED_TEXT, domain=domain_of(f"https://{crawled}/a"))) == {"outlet"}
    assert domain_of("https://xn--strae-oqa.de/a") == domain_of("https://straße.de/a") == "straße.de"


def test_a_story_rule_whose_outlet_count_yaml_wrote_as_a_float_still_counts():
    # 2.0 is an integer to the schema: every story match raised TypeError, and no article of a
    # story fired any rule
    rules = matcher("  - {id: b, kind: breaking_story, match: {min_outlets: 2.0, within_minutes: 30}}\n")
    assert [m.rule.id for m in rules.match_story(story(a=0, b=1))] == ["b"]


@pytest.mark.parametrize(
    ("term", "text"),
    [
        # ال as the word's own letters once the alef is folded: the article reading alone never
        # wrote ل or ال in front of the whole word
        ("ألمانيا", "وصل الرئيس لألمانيا أمس"),
        ("هجوم إلكتروني", "تعرضت الوزارة للهجوم الإلكتروني"),
        ("إلكتروني", "الهجوم الإلكتروني على الوزارة"),
        ("التزام", "أكد الالتزام بالاتفاق"),
        # and the article's reading as before
        ("الجيش", "قال متحدث باسم الجيش وللجيش"),
    ],
)
def test_an_arabic_term_beginning_with_alef_lam_matches_in_both_readings(term: str, text: str) -> None:
    assert fired(terms_rule(term), None, text, language="ar")


@pytest.mark.parametrize(("term", "text"), [("佐々木", "佐々木氏が会見した"), ("代々木", "代々木公園で爆発"), ("二〇二四年", "二〇二四年大选")])
def test_a_japanese_name_with_the_iteration_mark_matches_in_running_text(term: str, text: str) -> None:
    # 々 was no CJK character: 佐々木 ended in the token 木, and 木氏 never is 木
    assert fired(terms_rule(term), None, text, language=None)


@pytest.mark.parametrize(
    ("term", "text", "hit"),
    [
        # the article's run goes on where the term's one-character run stops
        ("A股", "A股市场今日大跌", True),
        ("3月11日", "3月11日に発生した地震", True),
        ("新iPhone", "苹果发布新iPhone", True),
        ("A股", "A股", True),
        # ... the other numbers and words still have to be there
        ("3月1日", "3月11日に発生した地震", False),
        ("A股", "B股市场", False),
        ("新iPhone", "新款iPhone", False),
        # a one-character term alone is still a one-character run only
        ("股", "股市", False),
        # ... and no character of the article is read twice, for the term's edge and for the word
        # beside it ending (beginning) with the same character
        ("中国 国", "中国人", False),
        ("市·市", "股市中国", False),
        ("股 股市", "炒股市场", False),
        ("전 전", "목전에", False),
        ("中国 国", "他说中国 国", True),
    ],
)
def test_a_one_character_run_at_a_terms_edge_matches_a_longer_run(term: str, text: str, hit: bool) -> None:
    assert bool(fired(terms_rule(term), None, text, language=None)) is hit


@pytest.mark.parametrize(
    ("terms", "text", "fired_rules"),
    [
        # a long term whose tokens repeat, on a text repeating them: found once, wherever it starts
        (["哈" * 20], "哈" * 1000, {"r0"}),
        (["ha " * 50], "ha " * 49, set()),
        (["ha " * 50], "ha " * 500, {"r0"}),
        # terms that are prefixes of each other: each found where it is complete, not more
        (["a " * length for length in range(1, 8)], "a " * 5 + "b", {"r0", "r1", "r2", "r3", "r4"}),
        (["a b c d", "a b"], "a b a b c a b c d", {"r0", "r1"}),
        (["a b c d", "a b"], "a b a b c a b c", {"r1"}),
    ],
)
def test_a_term_already_found_is_read_no_further_and_every_term_is_still_found(
    terms: list[str], text: str, fired_rules: set[str]
) -> None:
    # A partial match of a term found already was followed at every token: a term of 500 words
    # repeated in an article cost 1.9 s (bench/alerts.py, repeated_terms).
    rules = "".join(f'  - {{id: r{i}, kind: article, match: {{terms: ["{term}"]}}}}\n' for i, term in enumerate(terms))
    facts = ArticleFacts.of(article(None, text, language=None), urgent=False)
    assert {m.rule.id for m in matcher(rules).match_article(facts)} == fired_rules


def test_many_phrases_sharing_their_first_words_each_match_only_where_written() -> None:
    rules = "".join(f'  - {{id: r{i}, kind: article, match: {{terms: ["the president {i}"]}}}}\n' for i in range(1000))
    rules += '  - {id: short, kind: article, match: {terms: ["the president"]}}\n'
    rules += '  - {id: longer, kind: article, match: {terms: ["the president 7 said"]}}\n'
    facts = ArticleFacts.of(article(None, "Then the president 7 spoke, and the president 999 said", language="en"), urgent=False)
    assert {m.rule.id for m in matcher(rules).match_article(facts)} == {"r7", "r999", "short"}


class _CountedTokens(tuple):
    """A term's tokens that count how often they are hashed (hashing them reads all of them)."""

    hashed = 0

    def __hash__(self) -> int:
        _CountedTokens.hashed += 1
        return super().__hash__()


def test_a_long_term_is_read_a_bounded_number_of_times_to_load_and_is_found() -> None:
    # Each trie node held the terms below it as their token tuples, hashed once per node: a term of
    # n words took n² to load (60,000 words: 8 s; 100,000: 22 s; bench/alerts.py measures it). The
    # rules file caps a term far below that; the matcher does not rely on it.
    words = _CountedTokens(f"w{n}" for n in range(2_000))
    rule = Rule(id="long", kind=RuleKind.ARTICLE, conditions=ArticleConditions(any_terms=(Term("a passage", words),)))
    _CountedTokens.hashed = 0
    long_term = Matcher(RuleSet(rules=(rule,)))
    assert _CountedTokens.hashed < 10  # 2,000 before: once per node
    facts = ArticleFacts(domain="a.example", language="en", urgent=False, token_fields=(("w0",), tuple(words)))
    assert [match.terms for match in long_term.match_article(facts)] == [("a passage",)]


def test_terms_written_differently_that_match_alike_are_one_term_to_every_rule() -> None:
    rules = terms_rule("Aleppo") + "  - {id: u, kind: article, match: {all_terms: [ALEPPO, Homs], exclude_terms: [aleppo!]}}\n"
    assert fired(rules, None, "Aleppo and Homs") == {"t": ("Aleppo",)}
    assert fired(rules.replace("exclude_terms: [aleppo!]", "exclude_terms: [Idlib]"), None, "Aleppo and Homs") == {
        "t": ("Aleppo",), "u": ("ALEPPO", "Homs")
    }


# --- found by mutation testing ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("term", "text", "hit"),
    [
        # the article's place takes the prefixes written with it: ب ل و in front of ال
        ("الجيش", "وبالجيش", True),
        # ... but the article is not dropped: a term written with it needs it (or a clitic that absorbs it)
        ("الجيش", "قال جيش الاحتلال", False),
        ("الجيش", "وقال بجيش", False),
        # ك ("like, as") is a preposition written joined as ب and ل are
        ("حلب", "مدينة كحلب", True),
    ],
)
def test_an_arabic_term_with_the_article_matches_its_clitic_forms_only(term: str, text: str, hit: bool) -> None:
    assert bool(fired(terms_rule(term), None, text, language="ar")) is hit


@pytest.mark.parametrize(
    ("term", "text", "hit"),
    [
        # a term whose last word is one character of a run matches the start of a longer run,
        # whatever the length of its first word
        ("2024年", "2024年度报告", True),
        # a one-character term alone is a one-character run only: not the end of a longer one
        ("股", "炒股", False),
    ],
)
def test_a_one_character_run_at_a_terms_end_matches_whatever_its_first_word(term: str, text: str, hit: bool) -> None:
    assert bool(fired(terms_rule(term), None, text, language=None)) is hit


def test_article_facts_and_matches_are_frozen_values() -> None:
    facts = ArticleFacts.of(article(SEED_TITLE, SEED_TEXT), urgent=False)
    (match,) = matcher(terms_rule("حلب")).match_article(facts)
    (breaking,) = matcher(BREAKING).match_story(story(a=0, b=1, c=2))
    for value in (facts, match, breaking, story(a=0)):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(value, dataclasses.fields(value)[0].name, None)


def test_all_terms_fire_only_when_every_one_is_found():
    rules = "  - {id: both, kind: article, match: {all_terms: [Kerry, Lavrov]}}\n"
    assert fired(rules, None, "Kerry and Lavrov met") == {"both": ("Kerry", "Lavrov")}
    assert fired(rules, None, "Kerry met the press") == {}


def test_a_matcher_watches_stories_only_with_a_breaking_story_rule_on():
    assert matcher(BREAKING).watches_stories is True
    assert matcher(terms_rule("Aleppo")).watches_stories is False
    assert matcher(BREAKING.replace("kind: breaking_story,", "kind: breaking_story, enabled: false,")).watches_stories is False


def test_a_story_that_has_not_broken_has_no_breaking_outlets():
    conditions = matcher(BREAKING).ruleset.rules[0].conditions
    assert breaking_outlets(conditions, story(a=0, b=10)) == ()
    assert [outlet for outlet, _ in breaking_outlets(conditions, story(a=0, b=10, c=20))] == ["a.example", "b.example", "c.example"]
