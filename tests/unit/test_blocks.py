"""Structural body filters of workers/stages/blocks.py, on small pages built for each case."""

from __future__ import annotations

import json
import unicodedata

import lxml.html
import pytest

from tests.builders import PARAGRAPHS
from tests.shared_data import BENCH
from tests.unit.test_extract import extract, page
from workers.stages.blocks import _ends_as_sentence


def assert_removed_for(body: str, marker: str, reason: str) -> None:
    """On the test page with ``body`` at the end of the article, the block holding ``marker`` goes
    (for ``reason``) and the article's paragraphs stay."""
    doc = extract(page(body=body))
    assert marker not in doc.text
    assert {r.reason for r in doc.removed if marker in r.text} == {reason}
    for paragraph in PARAGRAPHS:
        assert paragraph in doc.text


@pytest.mark.parametrize(
    "box_class",
    # (trafilatura already drops boxes it knows by name, "newsletter" or "share": not these)
    ["c-inlineSignup", "product-disclosure", "ad__container"],
)
def test_a_small_box_named_by_its_class_goes(box_class: str) -> None:
    box = f'<div class="{box_class}"><p>Get the best of the city in your inbox every morning, free.</p></div>'
    assert_removed_for(box, "in your inbox", "boilerplate_box")


@pytest.mark.parametrize(
    ("block", "marker", "reason"),
    [
        # calls to action whose own links are contact schemes or social profiles
        ('<p>Got a tip about the council? Write to us at <a href="mailto:tips@news.example">'
         'tips@news.example</a> or on <a href="https://wa.me/4912345">WhatsApp</a>.</p>', "Got a tip", "contact_cta"),
        ('<p>Questions about the budget? <a href="mailto:city@news.example">Write to the city desk</a></p>',
         "Questions about", "contact_cta"),
        ("<p>Updated: March 6, 2024 09:00</p>", "Updated:", "dateline"),
        ('<div class="photo-credit"><p>Photo by Jane Doe for The Daily Example</p></div>', "Photo by", "caption"),
        ('<p class="sr-only">Press enter to skip to the next section of this article.</p>', "Press enter", "hidden"),
        ("<p>https://www.news.example/city/budget</p>", "https://www.news.example", "url_line"),
        ("<h2>Most read this week</h2><p>Bridge closed</p>", "Most read", "widget_heading"),
    ],
)
def test_a_block_about_the_page_not_the_story_goes(block: str, marker: str, reason: str) -> None:
    assert_removed_for(block, marker, reason)


def test_a_sentence_naming_a_date_or_linking_a_profile_within_the_article_stays() -> None:
    # the dateline filter takes short lines, and the call-to-action filter a sentence only when
    # it closes the article ("Email the author at ...")
    sentence = (
        '<p>The budget, first presented on March 6, 2024, was drafted by the finance director, who '
        'described it on <a href="https://twitter.com/financedirector">her public account</a> as the '
        "hardest of her career, because the regional transfers fell by a fifth within a single year.</p>"
    )
    closing = "The council will vote on the museum renovation in a separate session next month."
    doc = extract(page(body=f"{sentence}<p>{closing}</p>"))
    assert "hardest of her career" in doc.text and closing in doc.text
    assert not doc.removed or {r.reason for r in doc.removed} == {"title"}


@pytest.mark.parametrize(
    "lead",
    [
        "The earthquake struck at 03:17 local time.",
        "الانفجار وقع عند الساعة 19:32 مساء.",
        "地震于2024年1月1日发生。",
    ],
)
def test_a_short_sentence_naming_a_time_or_a_date_is_the_articles_above_its_prose_and_within_it(lead: str) -> None:
    # A block naming a time with up to 8 other words above the first prose paragraph (2 between
    # prose paragraphs, and Chinese counted two characters a word) was a dateline: the lead went.
    for html_text in (page(before=f"<p>{lead}</p>"), page().replace("</p>", f"</p><p>{lead}</p>", 1)):
        doc = extract(html_text)
        assert lead in doc.text, [(r.reason, r.text) for r in doc.removed]


@pytest.mark.parametrize("line", ["Updated at 1:23 p.m.", "Published 8 December 2016, 11:34 GMT.", "Posted 5:45 p.m. ET."])
def test_a_time_line_ending_in_a_full_stop_is_still_a_dateline(line: str) -> None:
    assert_removed_for(f"<p>{line}</p>", line.split()[0], "dateline")


@pytest.mark.parametrize("line", ["Open daily 10:00-18:00", "Mon–Fri 9:00 – 17:30", "Kipchoge 2:01:09"])
def test_a_span_of_time_is_no_dateline(line: str) -> None:
    # opening hours, a schedule, a race time: what the article says, not when it was published
    for html_text in (page().replace("</p>", f"</p><p>{line}</p>", 1), page(body=f"<p>{line}</p>")):
        doc = extract(html_text)
        assert line in doc.text, [(r.reason, r.text) for r in doc.removed]


def test_a_time_with_seconds_beside_a_date_is_still_a_dateline() -> None:
    assert_removed_for("<p>Updated 2024-03-06 19:32:05</p>", "Updated", "dateline")


def test_a_class_name_is_read_by_its_words_not_as_a_substring() -> None:
    # "head", "shadow", "loaded": none of them is the word "ad"
    box = '<div class="shadow-loaded head"><p>The bridge will close for two weeks in March for repairs.</p></div>'
    doc = extract(page(body=box))
    assert "The bridge will close" in doc.text


def test_a_large_element_named_like_a_box_is_the_article_and_stays() -> None:
    # a site marking its whole article body "related"/"promo" does not lose the article
    wrapped = page().replace('<div class="body">', '<div class="body promo-article">')
    doc = extract(wrapped)
    for paragraph in PARAGRAPHS:
        assert paragraph in doc.text


def test_a_short_line_beside_one_long_paragraph_is_the_article() -> None:
    # the long paragraph weighs most of the body alone; the line after it, in the same
    # container, is not "after the article"
    long_paragraph = " ".join(PARAGRAPHS)
    closing = "Gut investierte zwanzig Cent, auch wenn das Bild kein Meisterwerk war."
    html_text = f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"></head><body>
<main><article><h1>A small joy</h1><div class="entry"><p>{long_paragraph}</p>
<div class="wp-caption"><img src="/a.jpg" alt=""><p class="wp-caption-text">The basket</p></div>
<p>{closing}</p></div><div class="entryfooter"><p>Tags: <a href="/tag/a">a</a></p></div></article></main>
</body></html>"""
    doc = extract(html_text)
    assert closing in doc.text


def test_a_long_box_below_the_article_container_goes() -> None:
    about = (
        "Example Corp is a global provider of communication solutions for hospitals and care homes, "
        "with offices in twenty countries and more than three thousand employees. " * 3
    ).strip()
    more = f"<p>{PARAGRAPHS[1]} {PARAGRAPHS[2]}</p>"
    doc = extract(page(body=more, after=f'<div class="text parbase"><p>{about}</p></div>'))
    assert "Example Corp" not in doc.text
    assert [r.reason for r in doc.removed if r.text.startswith("Example Corp")] == ["after_article"]
    for paragraph in PARAGRAPHS:
        assert paragraph in doc.text


def test_the_paragraphs_around_a_group_holding_most_of_the_article_are_the_article() -> None:
    # WordPress's block editor: a group (wp-block-group) holding most of the text inside the
    # body; the deepest element holding most of the text is the group, and the paragraphs after
    # it, written as the one before it, went as after the article
    lead = "The regional council approved its budget on Tuesday after a debate that lasted until late at night."
    closing = ["The next session is scheduled for March, when the museum plan is voted on.",
               "Residents can submit comments until the end of February."]
    group = "".join(f"<p>{paragraph}</p>" for paragraph in PARAGRAPHS * 2)
    html_text = f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"></head><body>
<main><article class="post"><h1>City council approves the budget</h1><div class="entry-content"><p>{lead}</p>
<div class="wp-block-group"><div class="wp-block-group__inner-container">{group}</div></div>
{"".join(f"<p>{line}</p>" for line in closing)}</div>
<div class="about-box"><p>The Daily Example is an independent newspaper founded in 1901.</p></div></article></main>
</body></html>"""
    doc = extract(html_text)
    assert lead in doc.text and all(line in doc.text for line in closing), [(r.reason, r.text) for r in doc.removed]
    assert [r.reason for r in doc.removed if r.text.startswith("The Daily Example")] == ["after_article"]


def test_a_sentence_citing_several_links_is_the_article() -> None:
    # most of the sentence is link text, as in a report that cites its sources as it goes
    cited = (
        '<p>The government <a href="/a">imposed tariffs on steel and aluminium</a> in 2018, '
        '<a href="/b">prompting retaliatory measures on farm goods</a>, until both sides '
        '<a href="/c">agreed to lift them</a> a year later.</p>'
    )
    doc = extract(page(body=cited))
    assert "prompting retaliatory measures" in doc.text
    assert not [r for r in doc.removed if "retaliatory" in r.text]


def test_a_paragraph_of_links_without_a_sentence_goes() -> None:
    menu = (
        '<p><a href="/a">Steel and aluminium tariffs explained</a> · <a href="/b">Farm goods and '
        'retaliation</a> · <a href="/c">Lifting the tariffs a year later</a></p>'
    )
    doc = extract(page(body=menu))
    assert "Farm goods and retaliation" not in doc.text
    assert [r.reason for r in doc.removed if "Farm goods" in r.text] == ["link_dense"]


def test_the_article_continued_after_an_advert_in_the_same_markup_stays() -> None:
    # the site splits its body into segments of identical markup around an advert; the last
    # paragraph is in the second segment, so outside the container that holds most of the text
    first = "".join(f'<div class="seg"><p class="txt">{p}</p></div>' for p in PARAGRAPHS[:3])
    closing = ("The budget takes effect in January, and the council will publish a first report on "
               "the school programme before the summer break.")
    html_text = f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"></head><body>
<main><article><h1>City council approves the budget</h1>
<div class="body-part"><div class="col">{first}</div></div>
<div class="advert-slot"><a href="/ads/1"><img src="/ad.png" alt=""></a></div>
<div class="body-part"><div class="col"><div class="seg"><p class="txt">{closing}</p></div>
<div class="seg"><p class="txt">Photo: Jane Roe</p></div></div></div>
</article></main></body></html>"""
    doc = extract(html_text)
    assert closing in doc.text
    assert "Photo: Jane Roe" not in doc.text


# --- an article body split into segments (split_body_segments) ---------------------------------

CONTINUED = [
    "Engineers in the north have tested the coating on frozen ponds for three winters, measuring how "
    "much sunlight the treated ice reflects back into the sky.",
    "The results were mixed: on some days the treated ice lasted a week longer, on others the wind "
    "carried the material away before it could make any difference at all.",
    "Critics say that spreading anything over the Arctic is a gamble, and that the money would do more "
    "good if it were spent on cutting emissions at the source.",
    "The team answers that the two are not alternatives, and that a few more summers of ice could "
    "matter a great deal to the animals and people who depend on it.",
]


def _segment(paragraphs: list[str], *, extra: str = "") -> str:
    # a section of the page grid: a segment of the body, and an advert beside it. trafilatura takes
    # the *first* element whose class names it as the article body ("article-body") as the article
    text = "".join(f"<p>{p}</p>" for p in paragraphs)
    return (f'<div class="grid"><div class="grid-item"><div class="article-body">{extra}{text}</div></div>'
            '<div class="grid-item"><aside class="ad"><a href="/ad"><img src="/ad.png" alt=""></a></aside></div></div>')


def _split_page(*segments: str, after: str = "") -> str:
    return f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"></head><body>
<header><nav><ul><li><a href="/">Home</a></li><li><a href="/city">City</a></li></ul></nav></header>
<article class="story"><header><h1>A heat shield for the ice</h1></header><div class="chunks">
{'<div class="newsletter"><p>Sign up for the daily newsletter.</p></div>'.join(segments)}
</div></article>{after}<footer><p>Copyright 2024 The Daily Example</p></footer></body></html>"""


def test_an_article_split_into_segments_of_the_same_markup_is_kept_whole_and_in_order() -> None:
    html_text = _split_page(_segment(PARAGRAPHS), _segment(CONTINUED[:2]), _segment(CONTINUED[2:]))
    without = extract(html_text, recover_split_body=False)
    assert not any(p in without.text for p in CONTINUED), "trafilatura alone keeps the first segment only"
    doc = extract(html_text)
    positions = [doc.text.find(p) for p in (*PARAGRAPHS, *CONTINUED)]
    assert -1 not in positions and positions == sorted(positions)
    assert "Sign up for the daily newsletter" not in doc.text
    assert (doc.recovered_paragraphs, without.recovered_paragraphs) == (len(CONTINUED), 0)


def test_a_copy_of_the_body_markup_with_a_headline_of_its_own_is_another_article() -> None:
    # an endless-scroll page appends the next article in the same markup, inside the same element
    html_text = _split_page(_segment(PARAGRAPHS), _segment(CONTINUED, extra="<h1>The next story</h1>"))
    doc = extract(html_text)
    assert not any(p in doc.text for p in CONTINUED)
    assert doc.recovered_paragraphs == 0


def test_the_body_markup_outside_the_article_element_is_not_the_article() -> None:
    other = f'<div class="chunks">{_segment(CONTINUED)}</div>'
    doc = extract(_split_page(_segment(PARAGRAPHS), after=other))
    assert not any(p in doc.text for p in CONTINUED)


def test_a_copy_holding_one_paragraph_or_a_form_is_a_widget() -> None:
    form = f'<form action="/comment"><p>{CONTINUED[0]}</p><p>{CONTINUED[1]}</p></form>'
    doc = extract(_split_page(_segment(PARAGRAPHS), _segment(CONTINUED[2:3]), _segment([], extra=form)))
    assert not any(p in doc.text for p in CONTINUED)


def test_a_real_article_split_across_the_page_grid_is_kept_whole() -> None:
    # The New Yorker (fundus test data, MIT): three body segments; trafilatura alone keeps the first
    page_id = "us_TheNewYorker_2023_05_16"
    truth = next(
        record for line in (BENCH / "fundus" / "ground_truth.jsonl").read_text().splitlines()
        if (record := json.loads(line))["id"] == page_id
    )
    paragraphs = [line.strip() for line in truth["text"].splitlines() if line.strip()]
    html_text = (BENCH / "fundus" / f"{page_id}.html").read_text(encoding="utf-8")
    doc = extract(html_text, truth["url"])
    found = [paragraph[:60] in doc.text for paragraph in paragraphs]
    assert found[-1] and sum(found) >= len(paragraphs) - 2, found
    alone = extract(html_text, truth["url"], recover_split_body=False)
    assert paragraphs[-1][:60] not in alone.text


def test_a_subheading_over_short_paragraphs_at_the_end_is_the_article() -> None:
    # an explainer ends with a section of short paragraphs: its heading comes after the last long
    # paragraph, like a widget's heading, but the article goes on after it
    section = ("<h2>Who checks the budget?</h2><p>The regional audit office reviews the accounts every "
               "year and publishes its findings in the spring.</p>")
    comments = "<h2>Comments</h2><ul><li><a href='/login'>Log in to comment</a></li></ul>"
    doc = extract(page(body=section, after=comments))
    assert "Who checks the budget?" in doc.text
    assert "The regional audit office reviews" in doc.text
    assert "Comments" not in doc.text


@pytest.mark.parametrize(
    "closing",
    ["Crédits photos : Bestimage", "（責任編輯：年巍）", "Filed under: City politics |", "المصدر: وكالات"],
)
def test_a_label_line_closing_the_body_is_an_attribution_and_goes(closing: str) -> None:
    assert_removed_for(f"<p>{closing}</p>", closing, "attribution_line")


@pytest.mark.parametrize(
    "closing",
    [
        "© 2022, Breaking News Ltd. This article is the copyrighted property of Breaking News. Written "
        "permission must be obtained before reprint.",
        "Copyright © 2023 The Daily Gazette, LLC.",
        "© جميع الحقوق محفوظة لموقع الأخبار 2024",
    ],
)
def test_a_copyright_notice_closing_the_body_goes(closing: str) -> None:
    assert_removed_for(f"<p>{closing}</p>", closing[:20], "copyright_line")


def test_a_copyright_sign_inside_the_body_or_deep_in_a_closing_sentence_stays() -> None:
    inside = "<p>© Reuters: the agency's photograph of the bridge was the one every paper printed.</p>"
    doc = extract(page(before=f'<div class="body">{inside}</div>'))
    assert "the agency's photograph" in doc.text
    closing = "The exhibition shows the posters of the 1950s, each marked © by the studio that printed it."
    assert closing in extract(page(body=f"<p>{closing}</p>")).text


def test_a_label_line_inside_the_body_or_in_a_closing_list_stays() -> None:
    facts = "<p>Address: 5 Harbour Street</p>" + "".join(f"<p>{p}</p>" for p in PARAGRAPHS[:2])
    doc = extract(page(before=f'<div class="body">{facts}</div>'))
    assert "Address: 5 Harbour Street" in doc.text
    listed = extract(page(body="<ul><li>Schools: 12 million</li><li>Bridge: 4 million</li></ul>"))
    assert "Bridge: 4 million" in listed.text


def test_a_closing_quotation_that_ends_as_a_sentence_stays() -> None:
    closing = "The mayor said: we build it."
    doc = extract(page(body=f"<p>{closing}</p>"))
    assert closing in doc.text


def test_a_photo_summary_closed_by_its_credit_goes_though_its_box_names_neither() -> None:
    summary = (
        '<div class="col-md-12 summary-box"><div class="row"><div class="col-md-8"><div>'
        '<p class="summary">Officers lift the seized boat out of the water at the harbour on Sunday. '
        '<span class="credit video-credit">By HARBOUR POLICE</span></p></div></div></div></div>'
    )
    assert_removed_for(summary, "Officers lift", "caption")


def test_a_credit_inside_a_sentence_or_a_long_paragraph_stays() -> None:
    inside = "The photograph by <span class=\"credit\">Jane Doe</span> won the city's prize this year."
    assert "won the city's prize" in extract(page(body=f"<p>{inside}</p>")).text
    long = " ".join(PARAGRAPHS[0].split()[:35])
    closing = f'<p>{long} <span class="credit">Jane Doe</span></p>'
    assert long in extract(page(body=closing)).text


@pytest.mark.parametrize(
    "call",
    ["Watch the whole council session on our channel!", "شاهد الجلسة كاملة على قناتنا:", "会見の動画はこちら！"],
)
def test_a_closing_call_to_the_embed_below_it_goes(call: str) -> None:
    embed = '<iframe src="https://video.example/embed/council" title="player"></iframe>'
    assert_removed_for(f"<p><strong>{call}</strong></p><p>{embed}</p>", call, "embed_call")


def test_a_closing_sentence_before_an_advert_frame_or_a_call_before_text_stays() -> None:
    frame = '<iframe src="https://ads.example/slot/1"></iframe>'
    sentence = "The council meets again on Monday to vote on the budget."
    assert sentence in extract(page(body=f"<p>{sentence}</p>{frame}")).text
    call = "Watch the whole council session on our channel!"
    assert call in extract(page(body=f"<p>{call}</p><p>Reporting by the city desk team today.</p>")).text
    mid = extract(page(before=f'<div class="body"><p>{call}</p>{frame}</div>'))
    assert call in mid.text


def test_a_short_paragraph_set_entirely_in_small_print_goes() -> None:
    captions = (
        "<p><em><sub>Abbildung 4: klassische Schwachschicht, Quelle SLF Davos</sub></em></p>"
        "<p><small>E-Mail eines Mandanten, November 2018</small></p>"
    )
    assert_removed_for(captions, "Abbildung 4", "small_print")
    assert_removed_for(captions, "E-Mail eines Mandanten", "small_print")


def test_small_print_inside_a_sentence_or_as_the_body_type_stays() -> None:
    inline = "<p>The council will vote again in May <small>(two members abstained)</small> on the harbour plan.</p>"
    doc = extract(page(body=inline))
    assert "two members abstained" in doc.text
    # a site that sets all its text small: its short paragraphs are the article too
    small_site = page(body="<p>The vote ended at midnight.</p>").replace("<p>", "<p><small>").replace("</p>", "</small></p>")
    doc = extract(small_site)
    assert "The vote ended at midnight." in doc.text
    for paragraph in PARAGRAPHS:
        assert paragraph in doc.text


_LOOK_ALIKES = str.maketrans("AaeioscpyxABEKMHOPCTX", "АаеіоѕсрухАВЕКМНОРСТХ")  # Latin -> Cyrillic


def _disguised(text: str) -> str:
    """Text with Latin letters swapped for Cyrillic look-alikes, as advertising inserts do."""
    return text.translate(_LOOK_ALIKES)


def test_text_disguised_with_look_alike_letters_goes() -> None:
    advert = "Advertise with the most visited news site ~ " + _disguised(
        "We offer fully customizable and flexible digital marketing packages. Contact us at sales."
    )
    assert_removed_for(f"<p>{advert}</p>", "Advertise", "obfuscated")


def test_scripts_side_by_side_are_not_look_alikes() -> None:
    russian = "Компания Apple представила новый iPhone 16 в Москве, сообщает агентство Reuters со ссылкой на пресс-службу."
    greek = "Η κυβέρνηση ανακοίνωσε ότι τα σωματίδια PM2.5 και PM10 μετρήθηκαν σε 5 μm φίλτρα στην Αθήνα."
    doc = extract(page(body=f"<p>{russian}</p><p>{greek}</p>"))
    assert russian in doc.text and greek in doc.text


def test_an_article_disguised_throughout_is_still_the_article() -> None:
    # a site that swaps letters in its whole text against copying: that is its article
    html_text = page()
    for paragraph in PARAGRAPHS:
        html_text = html_text.replace(paragraph, _disguised(paragraph))
    doc = extract(html_text)
    for paragraph in PARAGRAPHS:
        assert _disguised(paragraph) in doc.text


def test_a_sentence_naming_a_date_or_a_ticker_entry_led_by_its_time_stays() -> None:
    sentences = ["The vote is now scheduled for March 12, 2025.", "Doors open at 18:30.",
                 "<strong>19:32</strong> La policía confirma dos detenidos en el centro de la ciudad."]
    closing = "The council will publish the full budget and the minutes of the vote on its website next week."
    doc = extract(page(body="".join(f"<p>{s}</p>" for s in sentences) + f"<p>{closing}</p>"))
    assert "scheduled for March 12, 2025." in doc.text and "Doors open at 18:30." in doc.text
    assert "19:32 La policía confirma" in doc.text


def test_short_sentences_between_the_paragraphs_of_the_article_stay() -> None:
    quoted = '<p>"We did it for the fans," <a href="https://twitter.com/coachmartin">Martin</a> wrote.</p>'
    scorers = '<p><a href="/people/jose-garcia">José García</a> scored twice; <a href="/people/luis-perez">Luis Pérez</a> once.</p>'
    doc = extract(page(before=f'<div class="body"><p>{PARAGRAPHS[0]}</p>{quoted}{scorers}<p>{PARAGRAPHS[1]}</p></div>'))
    assert "We did it for the fans" in doc.text and "José García scored twice" in doc.text


def test_a_table_of_figures_beside_linked_names_is_the_article() -> None:
    rows = "".join(f'<tr><td>{i}</td><td><a href="/teams/{i}">Team number {i}</a></td><td>{80 - i}</td></tr>'
                   for i in range(1, 5))
    doc = extract(page(body=f"<table>{rows}</table><p>{PARAGRAPHS[0]}</p>"))
    assert "Team number 3" in doc.text


def test_the_article_continued_in_a_segment_with_a_modifier_class_stays() -> None:
    first = "".join(f"<p>{p}</p>" for p in PARAGRAPHS)
    rest = ("<p>Der Kanzler zeigte sich dennoch zuversichtlich.</p>"
            "<p>Eine Einigung sei bis Ostern möglich, sagte er am Abend in Berlin vor Journalisten.</p>")
    html_text = f"""<!DOCTYPE html><html lang="de"><head><meta charset="utf-8"></head><body>
<main><article><h1>Klimapaket</h1><div class="story-body"><div class="text-block text-block--first">{first}</div>
<div class="ad-slot"><span>Anzeige</span></div><div class="text-block">{rest}</div></div></article></main></body></html>"""
    doc = extract(html_text)
    assert "Der Kanzler zeigte sich" in doc.text and "Eine Einigung sei bis Ostern" in doc.text


def test_a_closing_list_under_its_subheading_and_a_closing_fact_stay() -> None:
    points = "<h2>Что изменится для водителей</h2><ul><li>платные участки появятся на шести трассах;</li><li>штрафы останутся прежними.</li></ul>"
    assert "Что изменится для водителей" in extract(page(body=points)).text
    assert "अंतिम तिथि: 31 मार्च" in extract(page(body="<p>अंतिम तिथि: 31 मार्च</p>")).text


# --- sentences in every script --------------------------------------------------------------------

# An article in each script, holding what the filters took for chrome while the script's way of
# ending a sentence was not read: a short sentence naming a time (a dateline while no paragraph
# counted as prose), a paragraph citing its sources in links (link_dense), a subheading over a
# short closing paragraph (widget_heading). Amharic ።, Burmese ။, Khmer ។, Armenian ։, Greek ';'
# (written here once as U+037E, which NFC folds into ';'), Japanese 。 inside 「」, Tibetan ། and
# Thai and Lao, which mark no sentence end. Where the script's word count makes a short sentence
# longer than a dateline, the page has no time line.
SCRIPT_ARTICLES = {
    "am": ("የከተማው ምክር ቤት በጀቱን አጸደቀ", [
        "<p>የአዲስ አበባ ከተማ ምክር ቤት ማክሰኞ ዕለት አዲሱን የከተማውን በጀት ያጸደቀ ሲሆን፣ ከንቲባዋ ገንዘቡ በመጀመሪያ ለትምህርት ቤቶች "
        "ግንባታ፣ ለአሮጌው ድልድይ ጥገና እና ለመንገዶች እድሳት እንደሚውል ቃል ገብተዋል፤ ውይይቱም እስከ ምሽት ድረስ ዘልቋል።</p>",
        "<p>የምክር ቤቱ ቀጣይ ስብሰባ 18:30 ላይ ይጀምራል።</p>",
        '<p>የተቃዋሚ አባላት <a href="/a">የወደብ አካባቢው ከሁለት ዓመት በፊት ቃል የተገባለትን ኢንቨስትመንት</a> እንዳላገኘ እና <a '
        'href="/b">የታክስ ጭማሪው ትናንሽ ሱቆችን እንደሚጎዳ</a> ተከራክረዋል።</p>',
        "<h2>በጀቱን የሚቆጣጠረው ማን ነው</h2>",
        "<p>የክልሉ ዋና ኦዲተር መሥሪያ ቤት የከተማውን ሂሳብ በየዓመቱ በጥንቃቄ ይመረምራል፤ ግኝቱንም ለሕዝብ ተወካዮችና ለነዋሪዎች በፀደይ ወቅት "
        "ያሳትማል።</p>",
    ]),
    "my": ("ရန်ကုန်မြို့တော် ဘတ်ဂျက်ကို အတည်ပြု", [
        "<p>ရန်ကုန်မြို့တော်စည်ပင်သာယာရေးကော်မတီသည် အင်္ဂါနေ့တွင် ဘတ်ဂျက်အသစ်ကို အတည်ပြုခဲ့ပြီး "
        "မြို့တော်ဝန်က ရန်ပုံငွေကို ကျောင်းများနှင့် တံတားဟောင်း ပြုပြင်ရေးအတွက် ဦးစွာ "
        "အသုံးပြုမည်ဟု ကတိပြုခဲ့သည်။</p>",
        '<p>အတိုက်အခံအမတ်များက အစီအစဉ်တွင် <a href="/a">ဆိပ်ကမ်းရပ်ကွက်အတွက် ကတိပြုထားသော '
        'ရင်းနှီးမြှုပ်နှံမှု</a> မပါဝင်ကြောင်းနှင့် <a href="/b">အခွန်တိုးမြှင့်မှုသည် '
        'အသေးစားဆိုင်များကို ထိခိုက်မည်</a>ဖြစ်ကြောင်း ပြောဆိုခဲ့သည်။</p>',
        "<h2>ဘတ်ဂျက်ကို မည်သူ စစ်ဆေးမည်နည်း</h2>",
        "<p>ပြည်နယ်စာရင်းစစ်ရုံးက မြို့၏စာရင်းများကို နှစ်စဉ် စစ်ဆေးသည်။</p>",
    ]),
    "km": ("ក្រុមប្រឹក្សារាជធានីអនុម័តថវិកា", [
        "<p>ក្រុមប្រឹក្សារាជធានីភ្នំពេញបានអនុម័តថវិកាថ្មីកាលពីថ្ងៃអង្គារ "
        "បន្ទាប់ពីការជជែកវែកញែកដ៏យូររហូតដល់យប់ជ្រៅ ហើយអភិបាលបានសន្យាថា "
        "ថវិកានេះនឹងប្រើសម្រាប់សាលារៀន និងការជួសជុលស្ពានចាស់ជាមុនសិន។</p>",
        '<p>សមាជិកបក្សប្រឆាំងបានលើកឡើងថា <a '
        'href="/a">ផែនការនេះមិនមានការវិនិយោគសម្រាប់តំបន់កំពង់ផែ</a> ដូចការសន្យា ហើយ<a '
        'href="/b">ការដំឡើងពន្ធនឹងប៉ះពាល់ដល់ហាងតូចៗ</a>។</p>',
        "<h2>តើនរណាជាអ្នកត្រួតពិនិត្យថវិកា</h2>",
        "<p>សវនករជាតិពិនិត្យគណនីទីក្រុងរៀងរាល់ឆ្នាំ។</p>",
    ]),
    "hy": ("Ավագանին հաստատեց բյուջեն", [
        "<p>Երևանի ավագանին երեքշաբթի օրը հաստատեց նոր բյուջեն՝ մինչև ուշ գիշեր տևած քննարկումից "
        "հետո, և քաղաքապետը խոստացավ, որ գումարն առաջին հերթին կուղղվի դպրոցներին ու հին կամրջի "
        "վերանորոգմանը, իսկ մնացածը՝ քաղաքային տրանսպորտին ու այգիներին։</p>",
        "<p>Հաջորդ նիստը կսկսվի ժամը 18:30-ին։</p>",
        '<p>Ընդդիմության անդամները պնդեցին, որ <a href="/a">ծրագիրը նավահանգստի թաղամասին չի '
        'տալիս խոստացված ներդրումները</a>, և որ <a href="/b">հարկերի բարձրացումը կհարվածի փոքր '
        'խանութներին</a>։</p>',
        "<h2>Ո՞վ է վերահսկում բյուջեն</h2>",
        "<p>Վերահսկիչ պալատն ամեն տարի ստուգում է քաղաքի հաշիվները և գարնանը հրապարակում իր "
        "եզրակացությունները։</p>",
    ]),
    "el": ("Το δημοτικό συμβούλιο ενέκρινε τον προϋπολογισμό", [
        "<p>Το δημοτικό συμβούλιο ενέκρινε την Τρίτη τον νέο προϋπολογισμό μετά από συζήτηση που "
        "κράτησε μέχρι αργά το βράδυ, με τον δήμαρχο να υπόσχεται ότι τα χρήματα θα πάνε πρώτα "
        "στα σχολεία και στην επισκευή της παλιάς γέφυρας.</p>",
        '<p>Γιατί, ρωτούν οι κάτοικοι, <a href="/a">η περιφέρεια μείωσε τις μεταβιβάσεις προς τον '
        'δήμο</a>, ενώ <a href="/b">τα έσοδα από τον τουρισμό αυξήθηκαν</a> και πάλι '
        'πέρυσι\u037e</p>',
        "<h2>Τι αλλάζει για τους κατοίκους</h2>",
        "<p>Θα πληρώσουν τελικά οι κάτοικοι του λιμανιού περισσότερους φόρους, όταν οι επενδύσεις "
        "που τους υποσχέθηκαν δεν έχουν γίνει ακόμη;</p>",
    ]),
    "th": ("สภากรุงเทพฯ อนุมัติงบประมาณ", [
        "<p>สภากรุงเทพมหานครอนุมัติงบประมาณฉบับใหม่เมื่อวันอังคาร "
        "หลังการอภิปรายที่ยืดเยื้อจนถึงดึก ผู้ว่าราชการสัญญาว่าเงินก้อนนี้จะนำไปใช้กับโรงเรียนและก"
        "ารซ่อมแซมสะพานเก่าเป็นอันดับแรก</p>",
        "<p>ประชุมเริ่ม 18:30 น.</p>",
        "<h2>ใครตรวจสอบงบประมาณ</h2>",
        "<p>สำนักงานตรวจเงินแผ่นดินตรวจสอบบัญชีของเมืองทุกปี</p>",
    ]),
    "lo": ("ສະພານະຄອນຫຼວງຮັບຮອງງົບປະມານ", [
        "<p>ສະພານະຄອນຫຼວງວຽງຈັນໄດ້ຮັບຮອງເອົາງົບປະມານສະບັບໃໝ່ໃນວັນອັງຄານ "
        "ຫຼັງຈາກການປຶກສາຫາລືທີ່ແກ່ຍາວຈົນເຖິງດຶກ "
        "ເຈົ້າຄອງນະຄອນໄດ້ສັນຍາວ່າເງິນຈຳນວນນີ້ຈະນຳໃຊ້ເຂົ້າໃນໂຮງຮຽນ ແລະ ການສ້ອມແປງຂົວເກົ່າກ່ອນ</p>",
        "<p>ກອງປະຊຸມເລີ່ມ 18:30 ໂມງ</p>",
        "<h2>ໃຜກວດສອບງົບປະມານ</h2>",
        "<p>ອົງການກວດສອບແຫ່ງລັດກວດບັນຊີຂອງນະຄອນທຸກໆປີ</p>",
    ]),
    "ja": ("市議会が新年度予算を可決", [
        "<p>市議会は火曜日、深夜まで続いた議論の末に新年度の予算案を可決した。市長は、予算をまず学校の整備と古い橋の修理に充てると約束し、観光収入の見通しがまとまる春に改めて見直す考え"
        "を示した。</p>",
        '<p>「港湾地区への投資は、<a href="/a">二年前に約束されたまま</a>で、まだ何も始まっていない。<a '
        'href="/b">増税は大型店よりも小さな商店に重くのしかかる</a>。」</p>',
        "<h2>予算は誰が監査するのか</h2>",
        "<p>「監査委員会は毎年、市の会計を確認し、その結果を春に公表している。」</p>",
    ]),
    "bo": ("ལྷ་ས་གྲོང་ཁྱེར་གྱིས་འཆར་རྩིས་ཆོག་མཆན་བྱས།", [
        "<p>ལྷ་ས་གྲོང་ཁྱེར་གྱི་ཚོགས་འདུས་གཟའ་མིག་དམར་ཉིན་ལོ་འདིའི་འཆར་རྩིས་གསར་པ་ཆོག་མཆན་བྱས་པ་དང་"
        "། གྲོང་དཔོན་གྱིས་དངུལ་དེ་སློབ་གྲྭ་དང་ཟམ་པ་རྙིང་པ་ཉམས་གསོ་ལ་སྔོན་ལ་བེད་སྤྱོད་གཏོང་རྒྱུ་ཡིན"
        "་ཞེས་ཁས་བླངས་པ་རེད།</p>",
        '<p>ཕྱོགས་འགལ་ཚོགས་མིས་<a '
        'href="/a">གྲུ་ཁའི་ས་ཁུལ་ལ་མ་དངུལ་འཇོག་རྒྱུའི་ཁས་ལེན་</a>ལག་བསྟར་མ་བྱས་པ་དང་། <a '
        'href="/b">ཁྲལ་འབབ་ཆེ་རུ་བཏང་ན་ཚོང་ཁང་ཆུང་ཆུང་ལ་གནོད་</a>ཅེས་བརྗོད་པ་རེད།</p>',
        "<h2>འཆར་རྩིས་སུས་ཞིབ་བཤེར་བྱེད་དམ།</h2>",
        "<p>རྩིས་ཞིབ་ཁང་གིས་ལོ་ལྟར་རྩིས་ཁྲ་ཞིབ་བཤེར་བྱེད།</p>",
    ]),
}


def _article_in(lang: str, title: str, blocks: list[str]) -> str:
    return f"""<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8"></head><body>
<header><nav><ul><li><a href="/">Home</a></li><li><a href="/city">City</a></li></ul></nav></header>
<main><article><h1>{title}</h1><div class="body">{"".join(blocks)}</div></article></main>
</body></html>"""


def _block_text(block: str) -> str:
    text = " ".join(lxml.html.fromstring(block).text_content().split())
    return unicodedata.normalize("NFC", text)


@pytest.mark.parametrize("lang", list(SCRIPT_ARTICLES))
def test_an_article_is_read_as_sentences_in_every_script(lang: str) -> None:
    title, blocks = SCRIPT_ARTICLES[lang]
    doc = extract(_article_in(lang, title, blocks))
    assert [r.reason for r in doc.removed] == ["title"]
    for block in blocks:
        assert _block_text(block) in doc.text


def test_chrome_of_a_script_without_sentence_marks_still_goes() -> None:
    # Thai ends no sentence with a mark, so a linked headline with its time stamp ends as a
    # paragraph does and is as long as one (most of it is link text, which prose is not), and a
    # short call to follow a profile reads like a short sentence (it is not prose-length)
    title, blocks = SCRIPT_ARTICLES["th"]
    follow = '<p>ติดตามเราได้ที่ <a href="https://www.facebook.com/dailyexample">เฟซบุ๊ก</a></p>'
    headlines = [
        "นายกฯ ลงพื้นที่ตรวจสถานการณ์น้ำท่วมที่เชียงใหม่",
        "ครม. อนุมัติงบช่วยเหลือเกษตรกรผู้ประสบภัยแล้ง",
        "ตลาดหุ้นไทยปิดบวกต่อเนื่องเป็นวันที่สาม",
    ]
    hours_ago = "ชั่วโมงที่แล้ว"
    latest = "".join(
        f'<p><a href="/news/{i}">{headline}</a> {i} {hours_ago}</p>'
        for i, headline in enumerate(headlines, 1)
    )
    page_blocks = [blocks[0], follow, *blocks[1:], "<h2>ข่าวล่าสุด</h2>", latest]
    doc = extract(_article_in("th", title, page_blocks))
    reasons = {r.reason for r in doc.removed if r.reason != "title"}
    assert reasons == {"contact_cta", "widget_heading", "link_dense"}
    assert "ติดตามเรา" not in doc.text and "ข่าวล่าสุด" not in doc.text
    assert not any(headline in doc.text for headline in headlines)
    for block in blocks:
        assert _block_text(block) in doc.text


def test_a_widget_heading_after_an_amharic_article_still_goes() -> None:
    # the teaser under it is as long as a paragraph, but Amharic ends its sentences with ።: a line
    # without it is a headline, not prose that the heading would introduce
    title, blocks = SCRIPT_ARTICLES["am"]
    most_read = ("<h2>በብዛት የተነበቡ</h2><p>የነዳጅ ዋጋ ከነገ ጀምሮ በሊትር ሦስት ብር ጭማሪ እንደሚደረግበት የንግድ ሚኒስቴር "
                 "ዛሬ ባወጣው መግለጫ አስታወቀ</p>")
    doc = extract(_article_in("am", title, [*blocks, most_read]))
    assert [r.reason for r in doc.removed if "በብዛት የተነበቡ" in r.text] == ["widget_heading"]
    assert _block_text(blocks[-1]) in doc.text


def test_a_semicolon_ends_a_sentence_only_in_greek() -> None:
    # Greek's question mark is ';'; in a Latin paragraph the sign ends a clause, and a line of links
    # ending in it is no sentence
    listing = ('<p>Background: <a href="/a">the steel and aluminium tariffs</a>, '
               '<a href="/b">the retaliation on farm goods</a> and the ruling;</p>')
    doc = extract(page(body=listing))
    assert [r.reason for r in doc.removed if "Background" in r.text] == ["link_dense"]


@pytest.mark.parametrize(
    ("text", "ends"),
    [
        ("ጉባኤው መቼ ይካሄዳል፧", True),  # Ethiopic question mark
        ("ምዕራፉ በዚህ ይጠናቀቃል፨", True),  # Ethiopic paragraph separator
        ("धर्मो रक्षति रक्षितः ॥", True),  # Devanagari double danda
        ("སྐད་ཆ་འདི་མཇུག་རྫོགས་སོ༎", True),  # Tibetan double shad
        ("（詳細は後日発表する。）", True),
        ("『必ず戻ってくる。』", True),
        ("Η απάντηση θα δοθεί αύριο;", True),
        ("The council listed three options;", False),
        ("Read more »", False),
        ("Rome, 5 March:", False),
    ],
)
def test_the_end_marks_of_every_script_end_a_sentence(text: str, ends: bool) -> None:
    assert _ends_as_sentence(text) is ends


# --- the standfirst (standfirst) -------------------------------------------------------------------

LEAD = ("The council's vote ends a year of quarrels over the harbour and the schools, and leaves the mayor "
        "with a bridge to repair before winter.")
LEAD_AR = ("أقر مجلس المدينة الميزانية الجديدة بعد نقاش استمر حتى ساعة متأخرة من الليل، ووعد رئيس البلدية "
           "بأن تذهب الأموال أولاً إلى المدارس وإصلاح الجسر القديم")
# how sites set the standfirst apart: trafilatura drops such a box as a teaser
_LEAD_BOX = '<div class="teaser-text"><p>{}</p></div>'


def _described(text: str) -> str:
    return f'<meta name="description" content="{text}"><meta property="og:description" content="{text}">'


@pytest.mark.parametrize(("lead", "lang"), [(LEAD, "en"), (LEAD_AR, "ar")])
def test_the_standfirst_that_shows_the_description_is_the_body_s_first_paragraph(lead: str, lang: str) -> None:
    html_text = page(head=_described(lead), before=_LEAD_BOX.format(lead), lang=lang)
    assert lead not in extract(html_text, recover_standfirst=False).text, "trafilatura alone drops it"
    doc = extract(html_text)
    assert doc.text.startswith(lead + "\n") and doc.text.count(lead) == 1
    assert all(paragraph in doc.text for paragraph in PARAGRAPHS)
    assert doc.recovered_paragraphs == 1


def test_a_description_truncated_by_the_site_finds_its_whole_standfirst() -> None:
    truncated = LEAD[:90].rsplit(" ", 1)[0] + " …"
    doc = extract(page(head=_described(truncated), before=_LEAD_BOX.format(LEAD)))
    assert doc.text.startswith(LEAD + "\n")


@pytest.mark.parametrize(
    ("before", "after", "outside"),
    [
        # the same words after the body: a summary box, not the standfirst
        ("", _LEAD_BOX.format(LEAD), ""),
        # above the headline: a site's tagline, which a page without a description of its own declares
        ("", "", f'<p class="site-description">{LEAD}</p>'),
    ],
)
def test_the_description_shown_elsewhere_than_under_the_headline_is_not_added(before: str, after: str, outside: str) -> None:
    html_text = page(head=_described(LEAD), before=before, after=after).replace("<main>", f"{outside}<main>")
    assert LEAD not in extract(html_text).text


@pytest.mark.parametrize(
    "before",
    # a paragraph of its own; inline text under the headline, which trafilatura keeps outside any
    # paragraph of the body (dziennikwschodni.pl)
    [f"<p>{LEAD}</p>", f"<strong>{LEAD}</strong>"],
)
def test_a_standfirst_already_in_the_body_is_not_added_twice(before: str) -> None:
    doc = extract(page(head=_described(LEAD), before=before))
    assert doc.text.count(LEAD) == 1 and doc.recovered_paragraphs == 0


def test_a_short_description_is_not_looked_for() -> None:
    short = "Budget approved."
    assert short not in extract(page(head=_described(short), before=_LEAD_BOX.format(short))).text


def test_a_standfirst_made_of_links_is_not_added() -> None:
    linked = f'<div class="teaser-text"><p><a href="/city/other-story">{LEAD}</a></p></div>'
    assert LEAD not in extract(page(head=_described(LEAD), before=linked)).text


def test_a_standfirst_the_precision_run_left_above_its_region_is_kept() -> None:
    # El País: the standfirst is a subheading in the article's header, above the body's region
    paragraphs = "".join(f"<p>{p}</p>" for p in PARAGRAPHS)
    html_text = f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">{_described(LEAD)}</head><body>
<header><nav><ul><li><a href="/">Home</a></li><li><a href="/city">City</a></li></ul></nav></header>
<article class="a"><header class="a_e"><div class="a_e_txt"><h1>City council approves the budget</h1>
<h2 class="a_st">{LEAD}</h2></div></header><div class="a_c"><div class="a_b">{paragraphs}</div></div></article>
<footer><p>Copyright 2024 The Daily Example</p></footer></body></html>"""
    without = extract(html_text, recover_standfirst=False)
    assert [r.reason for r in without.removed if r.text == LEAD] == ["outside_main_region"]
    doc = extract(html_text)
    assert doc.text.startswith(LEAD + "\n") and not any(r.text == LEAD for r in doc.removed)
