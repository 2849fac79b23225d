"""The published contracts: every schema is valid, its examples pass, and what the code produces
passes too (the integration tests also validate messages read back from the real topics)."""

import ast
import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Annotated

import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError
from contract import SCHEMAS, TOPIC_SCHEMAS, assert_valid, schema_file, validator

import workers
from workers import SAMPLE_PAGES, models
from workers.alerts import messages
from workers.alerts.messages import alert_id_for
from workers.alerts.rules import RuleKind
from workers.feed import page_from_html_file
from workers.models import MAX_HEADERS, DeadLetter, RawPage, SourcePosition
from workers.settings import Settings
from workers.stages.article import article_id_for, build_article, content_hash
from workers.stages.deadletter import dead_letter
from workers.stages.decode import OLDEST_FETCH, decode_message
from workers.stages.extract import ExtractedDocument
from workers.stages.outcome import Dropped, Failed, Kept
from workers.urlnorm import domain_of

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
SOURCE = SourcePosition(topic="pages.raw", partition=0, offset=7)
MAX_HTML_BYTES = Settings.model_fields["max_html_bytes"].default


@pytest.mark.parametrize("name", sorted({contract.file for contract in TOPIC_SCHEMAS.values()}))
def test_schema_examples_are_valid_for_exactly_one_topic_of_their_file(name):
    examples = schema_file(name)["examples"]
    assert examples, "every schema carries at least one realistic example"
    topics = [topic for topic, contract in TOPIC_SCHEMAS.items() if contract.file == name]
    for example in examples:
        valid_for = [topic for topic in topics if not list(validator(topic).iter_errors(example))]
        assert len(valid_for) == 1, f"{name}: an example valid for {valid_for} of {topics}: {json.dumps(example)[:200]}"


def test_every_schema_file_is_mapped_to_a_topic():
    assert {p.name for p in SCHEMAS.glob("*.schema.json")} == {contract.file for contract in TOPIC_SCHEMAS.values()}


def test_an_alert_and_an_alert_dead_letter_do_not_pass_for_each_other():
    by_schema = {example["schema"]: example for example in schema_file("alerts.v1.schema.json")["examples"]}
    alert, letter = by_schema["wirefeed.alert/1"], by_schema["wirefeed.alert.dlq/1"]
    assert_valid("alerts", alert)
    assert_valid("alerts.dlq", letter)
    assert list(validator("alerts").iter_errors(letter))
    assert list(validator("alerts.dlq").iter_errors(alert))


def examples(topic: str) -> list[dict]:
    return [example for example in schema_file(TOPIC_SCHEMAS[topic].file)["examples"]
            if not list(validator(topic).iter_errors(example))]


def test_the_articles_examples_carry_the_fields_derived_as_the_pipeline_derives_them():
    for article in examples("articles"):
        assert article["article_id"] == article_id_for(article["canonical_url"])
        assert article["content_hash"] == content_hash(article["title"], article["text"])
        assert article["domain"] == domain_of(article["canonical_url"])
        assert article["extraction"]["text_chars"] == len(article["text"])


def test_the_alerts_examples_carry_the_ids_derived_as_the_engine_derives_them():
    articles = {article["article_id"]: article for article in examples("articles")}
    alerts = examples("alerts") + [letter["alert"] for letter in examples("alerts.dlq")]
    assert {alert["rule_kind"] for alert in alerts} == set(RuleKind)
    for alert in alerts:
        # the alert's article is one of the articles examples, as it stands there
        article = articles[alert["article"]["article_id"]]
        assert alert["article"] == {name: article[name] for name in alert["article"]}
        kind = RuleKind(alert["rule_kind"])
        if kind is RuleKind.BREAKING_STORY:
            subject = alert["story"]["story_id"]
        else:
            subject = article["duplicate_of"] or article["article_id"]  # a copy fires for its original
        assert alert["alert_id"] == alert_id_for(alert["rule_id"], kind, subject)


def test_the_pages_raw_examples_are_pages_the_decode_stage_keeps():
    for page in examples("pages.raw"):
        assert isinstance(decode_message(json.dumps(page).encode(), max_html_bytes=MAX_HTML_BYTES), Kept)


def test_the_pages_dlq_examples_are_the_dead_letters_of_their_originals():
    for example in examples("pages.dlq"):
        letter = DeadLetter.model_validate(example)
        key = base64.b64decode(letter.original_key_b64) if letter.original_key_b64 is not None else None
        value = base64.b64decode(letter.original_value_b64)
        result = decode_message(value, max_html_bytes=MAX_HTML_BYTES, sent_at_ms=letter.source_timestamp_ms)
        assert isinstance(result, Dropped | Failed), result
        assert (result.stage, result.reason) == (letter.stage, letter.reason)
        rebuilt = dead_letter(
            result, key=key, value=value, source=letter.source, source_timestamp_ms=letter.source_timestamp_ms,
            pipeline_version=letter.pipeline_version, failed_at=letter.failed_at,
            max_record_bytes=Settings.model_fields["max_message_bytes"].default,
        )
        assert rebuilt == letter


def produced_reasons() -> tuple[dict[str, set[str]], list[str]]:
    """The reasons the workers end a page with, by outcome, read from the code: the literal
    reason of every Failed(...), Failed.from_exception(...) and Dropped(...) call; and where a
    call's reason is not a literal, which this cannot read."""
    reasons: dict[str, set[str]] = {"failed": set(), "dropped": set()}
    unreadable = []
    package = Path(workers.__file__).parent
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            callee = ast.unparse(node.func).split(".")
            if callee[-1] in ("Failed", "Dropped"):
                outcome = callee[-1].lower()
            elif callee[-2:] == ["Failed", "from_exception"]:
                outcome = "failed"
            else:
                continue
            keyword = next((k.value for k in node.keywords if k.arg == "reason"), None)
            reason = node.args[1] if len(node.args) > 1 else keyword
            if isinstance(reason, ast.Constant) and isinstance(reason.value, str):
                reasons[outcome].add(reason.value)
            else:
                unreadable.append(f"{path.relative_to(package.parent)}:{node.lineno}")
    return reasons, unreadable


def test_every_reason_the_workers_dead_letter_with_is_in_the_pages_dlq_schema():
    reasons, unreadable = produced_reasons()
    assert not unreadable, f"reasons this test cannot read (write them as literals): {unreadable}"
    assert {"schema", "unsupported_version", "timeout", "internal_error"} <= reasons["failed"]
    assert {"not_html", "too_short"} <= reasons["dropped"]
    for outcome, found in reasons.items():
        for reason in sorted(found):
            result = Failed("decode", reason, "Error", "x") if outcome == "failed" else Dropped("decode", reason, "x")
            letter = dead_letter(
                result, key=None, value=b"{}", source=SOURCE, source_timestamp_ms=None,
                pipeline_version=1, failed_at=NOW, max_record_bytes=1 << 20,
            )
            assert_valid("pages.dlq", letter.model_dump_json(by_alias=True))


def removal_reasons() -> set[str]:
    """The reasons the extraction stage gives for a block it removes, read from the code: the
    literals assigned to a block's ``removed``, to ``within_prose[...]`` (decided later), and
    passed to ``_mark_closing_note``."""
    reasons: set[str] = set()
    stages = Path(workers.__file__).parent / "stages"
    for path in (stages / "blocks.py", stages / "extract.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            values: list[ast.AST] = []
            if isinstance(node, ast.Assign) and any(
                (isinstance(t, ast.Attribute) and t.attr == "removed")
                or (isinstance(t, ast.Subscript) and ast.unparse(t.value) == "within_prose")
                for t in node.targets
            ):
                values = [node.value]
            elif isinstance(node, ast.Call) and ast.unparse(node.func) == "_mark_closing_note":
                values = [node.args[-1]]
            for value in values:
                reasons |= {
                    c.value for c in ast.walk(value) if isinstance(c, ast.Constant) and isinstance(c.value, str)
                }
    return reasons


def test_every_reason_a_block_is_removed_for_is_explained_in_the_articles_schema():
    reasons = removal_reasons()
    assert {"teaser_list", "teaser_link", "site_chrome", "embed_call", "title"} <= reasons
    extraction = schema_file("articles.v1.schema.json")["properties"]["extraction"]
    described = extraction["properties"]["removed"]["items"]["properties"]["reason"]["description"]
    for reason in sorted(reasons):
        assert f"{reason} (" in described, f"{reason} is not explained in the articles schema"


def test_the_pages_dlq_schema_refuses_a_reason_it_does_not_list_and_one_under_the_wrong_outcome():
    letter = schema_file("pages.dlq.v1.schema.json")["examples"][0]
    assert (letter["outcome"], letter["reason"]) == ("failed", "charset_mismatch")
    assert list(validator("pages.dlq").iter_errors(letter | {"reason": "made_up"}))
    assert list(validator("pages.dlq").iter_errors(letter | {"outcome": "dropped"}))


def test_the_schema_rejects_what_the_pipeline_rejects():
    bad = {"url": "https://a.example/", "fetched_at": "2026-11-22T10:00:00Z", "html": "x", "html_b64": "eA=="}
    assert list(validator("pages.raw").iter_errors(bad))
    assert list(validator("pages.raw").iter_errors({"html": "x", "fetched_at": "2026-11-22T10:00:00Z"}))
    assert list(validator("pages.raw").iter_errors({"url": "https://a.example/", "fetched_at": "yesterday", "html": "x"}))


def test_the_pages_raw_schema_takes_the_same_bodies_as_the_model():
    base = {"url": "https://a.example/", "fetched_at": "2026-11-22T10:00:00Z"}
    # A producer that serialises every field sends the absent body as null.
    for body in ({"html": "x", "html_b64": None}, {"html": None, "html_b64": "eA=="}):
        RawPage.model_validate(base | body)
        assert_valid("pages.raw", base | body)
    for body in ({"html": "x", "html_b64": "eA=="}, {}, {"html": None}, {"html": None, "html_b64": None}):
        with pytest.raises(ValidationError):
            RawPage.model_validate(base | body)
        assert list(validator("pages.raw").iter_errors(base | body)), body


def test_messages_built_by_the_feeder_follow_the_pages_raw_schema():
    sample_pages = sorted(SAMPLE_PAGES.glob("*.html"))
    assert sample_pages, f"no sample pages in {SAMPLE_PAGES}"
    for path in sample_pages:
        page = page_from_html_file(path, base_url="https://samples.example/", fetched_at=NOW)
        assert_valid("pages.raw", page.model_dump_json(by_alias=True, exclude_none=True))


def test_built_articles_follow_the_articles_schema():
    raw = json.dumps({"url": "https://www.News.example/a?utm_source=x#top", "fetched_at": "2026-11-22T09:00:00Z", "html": "<p>x</p>"})
    decoded = decode_message(raw.encode(), max_html_bytes=1 << 20)
    assert isinstance(decoded, Kept)
    document = ExtractedDocument(
        title="عنوان", text="نص المقال", language="ar", declared_language="ar",
        published_at=NOW, canonical_url=None,
    )
    article = build_article(decoded.value, document, source=SOURCE, pipeline_version=1, processed_at=NOW)
    assert_valid("articles", article.model_dump_json(by_alias=True))


def test_dead_letters_follow_the_dlq_schema():
    letter = dead_letter(
        Failed("decode", "not_json", "JSONDecodeError", "Expecting value"),
        key=None, value=b"\x00\xff", source=SOURCE, source_timestamp_ms=None,
        pipeline_version=1, failed_at=NOW, max_record_bytes=1 << 20,
    )
    assert_valid("pages.dlq", letter.model_dump_json(by_alias=True))


def agree(field: str, value: object) -> bool:
    """Whether the pages.raw schema and RawPage both accept a message with this field (asserting
    they decide alike, also for a crawler whose validator takes formats as annotations only)."""
    document = {"url": "https://a.example/", "fetched_at": "2026-11-22T10:00:00Z", "html": "x"} | {field: value}
    try:
        RawPage.model_validate(document)
        model_ok = True
    except ValidationError:
        model_ok = False
    for formats in (True, False):
        schema_ok = not list(validator("pages.raw", formats=formats).iter_errors(document))
        assert schema_ok == model_ok, (
            f"{field}={value!r}: the schema {'accepts' if schema_ok else 'rejects'} it, not the model"
            f"{'' if formats else ' (formats not checked)'}"
        )
    return model_ok


@pytest.mark.parametrize("field", ["url", "final_url"])
@pytest.mark.parametrize(
    ("url", "accepted"),
    [
        ("https://example.com/حلب", True),
        ("https://مثال.مصر/حلب", True),
        ("https://a.example/a b", True),
        ("https://a.example/a[1]|b", True),
        ("HTTPS://A.EXAMPLE/x", True),
        ("Http://a.example", True),
        ("http://10.0.0.1/x", True),
        ("https://u:p@a.example/x", True),
        ("https://a.example/" + "a" * 2065, True),  # 2083 characters
        ("https://a.example/" + "ح" * 2065, True),  # 2083 characters, 4148 bytes
        ("https://a.example/" + "a" * 2066, False),
        ("https://", False),
        ("https:///x", False),
        ("https://:80/", False),
        ("https://@/x", False),
        ("https:a.example", False),
        (" https://a.example/", False),
        ("ftp://a.example/", False),
        ("a.example/x", False),
    ],
)
def test_the_pages_raw_schema_takes_the_same_urls_as_the_model(field, url, accepted):
    assert agree(field, url) == accepted


@pytest.mark.parametrize(
    ("fetched_at", "accepted"),
    [
        ("2026-11-22T10:00:00Z", True),
        ("2026-11-22T10:00:00.123456+02:00", True),
        ("2026-11-22t10:00:00z", True),
        ("2026-11-22T10:00:00", False),  # no offset: .timestamp() would read it in local time
        ("2026-11-22", False),
        ("2026-11-22 10:00:00Z", False),
        ("2026-11-22T10:00Z", False),
        ("1732269600", False),
        (1732269600, False),
        ("yesterday", False),
        ("2026-11-22T10:00:00+0200", False),
        ("２０２６-11-22T10:00:00Z", False),  # digits, but not ASCII ones
    ],
)
def test_the_pages_raw_schema_takes_the_same_fetch_times_as_the_model(fetched_at, accepted):
    assert agree("fetched_at", fetched_at) == accepted


@pytest.mark.parametrize(
    ("status", "accepted"),
    [
        (200, True), (200.0, True), (2e2, True), ("200", False), (True, False), (200.5, False), (99, False),
        (600.0, False),
    ],
)
def test_the_pages_raw_schema_takes_the_same_statuses_as_the_model(status, accepted):
    assert agree("status", status) == accepted


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"content-type": "text/html"},
        {"Content-Type": "text/html"},
        {"CONTENT-TYPE": "text/html", "Last-Modified": "x"},
    ],
)
def test_the_pages_raw_schema_takes_header_names_in_any_case_as_the_model_does(headers):
    assert agree("headers", headers)


def test_the_pages_raw_schema_takes_as_many_headers_as_the_model():
    assert agree("headers", {f"x-{i}": "" for i in range(MAX_HEADERS)})
    assert not agree("headers", {f"x-{i}": "" for i in range(MAX_HEADERS + 1)})


def test_the_limits_the_worker_enforces_on_a_page_are_in_the_pages_raw_schema():
    properties = schema_file("pages.raw.v1.schema.json")["properties"]
    for body in ("html", "html_b64"):
        assert str(MAX_HTML_BYTES) in properties[body]["description"]
    assert "bad_base64" in properties["html_b64"]["description"]
    assert "fetched_in_future" in properties["fetched_at"]["description"]
    assert "fetched_in_past" in properties["fetched_at"]["description"]
    assert OLDEST_FETCH.isoformat().replace("+00:00", "Z") in properties["fetched_at"]["description"]


def test_no_setting_lets_an_article_be_published_without_text():
    assert schema_file("articles.v1.schema.json")["properties"]["text"]["minLength"] == 1
    with pytest.raises(ValidationError):
        Settings(_env_file=None, min_text_chars=0)
    assert Settings(_env_file=None, min_text_chars=1).min_text_chars == 1


def test_a_page_without_a_utc_offset_is_a_schema_error_that_says_so():
    raw = json.dumps({"url": "https://a.example/", "fetched_at": "2026-11-22T10:00:00", "html": "<p>x</p>"})
    result = decode_message(raw.encode(), max_html_bytes=1 << 20)
    assert isinstance(result, Failed) and result.reason == "schema"
    assert "fetched_at" in result.detail and "offset" in result.detail


def test_articles_keep_the_offset_of_the_fetch_time_and_follow_the_schema():
    raw = json.dumps({"url": "https://a.example/حلب", "fetched_at": "2026-11-22T12:00:00+02:00", "html": "<p>x</p>"})
    decoded = decode_message(raw.encode(), max_html_bytes=1 << 20)
    assert isinstance(decoded, Kept)
    document = ExtractedDocument(
        title="عنوان", text="نص", language="ar", declared_language="ar", published_at=None, canonical_url=None
    )
    article = build_article(decoded.value, document, source=SOURCE, pipeline_version=1, processed_at=NOW)
    assert article.fetched_at.utcoffset() == timedelta(hours=2) and article.fetched_at.timestamp() == NOW.timestamp()
    assert_valid("articles", article.model_dump_json(by_alias=True))


@pytest.mark.parametrize(
    ("module", "some_fields"),
    [
        (models, {("RawPage", "fetched_at"), ("Article", "published_at"), ("Article", "processed_at"), ("DeadLetter", "failed_at")}),
        (messages, {("AlertArticle", "published_at"), ("StoryOutlet", "first_seen"), ("Alert", "fired_at"), ("AlertDeadLetter", "failed_at")}),
    ],
    ids=["models", "alert messages"],
)
def test_every_datetime_a_message_holds_is_aware(module: ModuleType, some_fields: set[tuple[str, str]]):
    naive = datetime(2026, 11, 22, 10, 0)
    fields = [
        (model, name, field)
        for model in vars(module).values()
        if isinstance(model, type) and issubclass(model, BaseModel)
        for name, field in model.model_fields.items()
        if "datetime" in str(field.annotation).lower()
    ]
    assert {(model.__name__, name) for model, name, _ in fields} >= some_fields
    for _model, _name, field in fields:
        adapter = TypeAdapter(Annotated[(field.annotation, *field.metadata)] if field.metadata else field.annotation)
        with pytest.raises(ValidationError):
            adapter.validate_python(naive)
        assert adapter.validate_python(NOW) == NOW
