"""Teaser lists of workers/stages/teasers.py, on small pages of sites the filters were not fitted on."""

from __future__ import annotations

from tests.unit.test_extract import extract, page


def test_a_list_of_facts_led_by_linked_names_is_the_article() -> None:
    facts = "".join(
        f'<li><a href="/p/{i}">{name}</a> said the deal was the best possible outcome for the country.</li>'
        for i, name in enumerate(["Prime Minister Anna Berg", "Opposition leader Karl Holm", "Finance Minister Eva Lind"])
    )
    doc = extract(page(body=f"<ul>{facts}</ul>"))
    assert "Opposition leader Karl Holm said the deal" in doc.text


def test_related_stories_cut_off_as_bare_paragraphs_go() -> None:
    teasers = "".join(
        f'<p>متابعة {who}: {what}... <a href="/story/{i}">المزيد</a></p>'
        for i, (who, what) in enumerate([
            ("سامي علي", "أعلنت السلطات الخميس عن إطلاق حملة واسعة لإعادة إعمار المدن المحررة"),
            ("منى حسن", "دعا زعماء المنطقة إلى عقد قمة طارئة لبحث تداعيات الأزمة الاقتصادية"),
            ("علي قيس", "اقترحت المفوضية الأوروبية الأربعاء خطة جديدة لتوزيع اللاجئين على الدول"),
        ])
    )
    doc = extract(page(body=f"<h3>أخبار ذات صلة</h3>{teasers}"))
    assert "قمة طارئة" not in doc.text
    assert {r.reason for r in doc.removed if "قمة طارئة" in r.text} == {"teaser_list"}
