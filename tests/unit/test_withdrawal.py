"""Which crawled pages withdraw the article their URL made, decided from the page's data alone."""

import json
from datetime import UTC, datetime

import pytest
from contract import assert_valid, schema_file

from workers.models import Article, Withdrawal
from workers.sinks.redis_store import publish_marker
from workers.stages.decode import decode_message
from workers.stages.outcome import Dropped
from workers.stages.withdrawal import WITHDRAWING_STATUSES, withdrawal_by, withdrawn_urls

MAX_HTML_BYTES = 1 << 20


def dropped(status: int, **fields: object) -> Dropped:
    message = {"url": "https://Masr-News.example/مصر/حلب", "fetched_at": "2026-11-22T12:00:00+02:00", "status": status,
               "html": "<h1>غير موجودة</h1>"} | fields
    result = decode_message(json.dumps(message).encode(), max_html_bytes=MAX_HTML_BYTES)
    assert isinstance(result, Dropped) and (result.stage, result.reason) == ("decode", "http_status")
    return result


@pytest.mark.parametrize("status", [404, 410, 451])
def test_a_page_gone_withdraws_as_of_its_own_fetch_time(status):
    page = dropped(status).page
    assert page is not None
    withdrawal = withdrawal_by(page)
    assert withdrawal == Withdrawal(at=datetime(2026, 11, 22, 10, 0, tzinfo=UTC), http_status=status)
    assert withdrawal.model_dump_json() == f'{{"at":"2026-11-22T12:00:00+02:00","http_status":{status}}}'


@pytest.mark.parametrize("status", [500, 502, 503, 504, 403, 401, 429, 301, 302, 304, 400, 408])
def test_a_status_that_says_nothing_about_the_article_withdraws_nothing(status):
    page = dropped(status).page
    assert page is not None and withdrawal_by(page) is None


def test_the_withdrawing_statuses_are_those_the_articles_schema_allows():
    allowed = schema_file("articles.v1.schema.json")["properties"]["withdrawn"]["properties"]["http_status"]["enum"]
    assert WITHDRAWING_STATUSES == set(allowed) == {404, 410, 451}


def test_a_page_names_its_url_as_page_records_key_it_then_the_url_it_was_redirected_to():
    assert withdrawn_urls(dropped(410).page) == ("https://masr-news.example/%D9%85%D8%B5%D8%B1/%D8%AD%D9%84%D8%A8",)
    redirected = dropped(410, final_url="https://masr-news.example/archive/1").page
    assert withdrawn_urls(redirected)[1] == "https://masr-news.example/archive/1"
    same = dropped(404, final_url="https://masr-news.example/مصر/حلب").page
    assert len(withdrawn_urls(same)) == 1


def test_a_withdrawn_article_is_the_article_with_the_field_last_and_a_current_one_has_none():
    current, withdrawn_example = (e for e in schema_file("articles.v1.schema.json")["examples"]
                                  if e["article_id"] == "2c2077f459e9ae77c4e72184bef1d56c")
    article = Article.model_validate(current)
    assert "withdrawn" not in json.loads(article.model_dump_json(by_alias=True))
    withdrawal = Withdrawal.model_validate(withdrawn_example["withdrawn"])
    withdrawn = article.model_copy(update={"withdrawn": withdrawal})
    # what Redis writes (the json before, the field appended) is what the model dumps
    dumped = withdrawn.model_dump_json(by_alias=True)
    assert dumped == article.model_dump_json(by_alias=True)[:-1] + f',"withdrawn":{withdrawal.model_dump_json()}}}'
    assert Article.model_validate(withdrawn_example) == withdrawn
    assert_valid("articles", dumped)
    # another version for the publish decision: the withdrawal is sent, and its restore after it
    assert publish_marker(withdrawn) == f"{publish_marker(article)}|{withdrawal.model_dump_json()}"
    assert_valid("articles", article.model_dump_json(by_alias=True))
