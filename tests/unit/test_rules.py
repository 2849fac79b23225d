"""The rules file: schema, semantic checks, parsing into frozen rules, and the explanation."""

import json
from datetime import timedelta
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from workers.alerts.rules import SCHEMA_PATH, ArticleConditions, RuleKind, RulesError, StoryConditions, explain, load_rules, parse_rules

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "rules.yaml"

VALID = """
version: 1
webhooks:
  desk: {url: "https://hooks.example/x", secret: desk-key}
rules:
  - id: aleppo
    kind: article
    match: {terms: ["حلب", "Aleppo"], languages: [ar, en]}
    deliver: {webhooks: [desk]}
  - id: breaking
    kind: breaking_story
    match: {min_outlets: 2, within_minutes: 30}
"""


def problems(text: str, *, source: str = "rules.yaml", secrets=("desk-key",)) -> list[str]:
    with pytest.raises(RulesError) as caught:
        parse_rules(text, source=source, secret_names=set(secrets))
    return caught.value.problems


def test_the_packaged_schema_is_the_published_one():
    assert SCHEMA_PATH.resolve() == (REPO / "schemas" / "rules.v1.schema.json").resolve()
    Draft202012Validator.check_schema(json.loads(SCHEMA_PATH.read_text(encoding="utf-8")))


def test_a_valid_file_becomes_frozen_rules_with_tokenised_terms():
    ruleset = parse_rules(VALID, source="rules.yaml", secret_names={"desk-key"})
    aleppo, breaking = ruleset.rules
    assert aleppo.kind is RuleKind.ARTICLE and aleppo.webhooks == ("desk",)
    assert isinstance(aleppo.conditions, ArticleConditions)
    assert [t.tokens for t in aleppo.conditions.any_terms] == [("حلب",), ("aleppo",)]
    assert aleppo.conditions.languages == {"ar", "en"}
    assert breaking.conditions == StoryConditions(min_outlets=2, within=timedelta(minutes=30))
    assert ruleset.webhook("desk").url == "https://hooks.example/x"
    with pytest.raises(AttributeError):
        aleppo.id = "other"  # type: ignore[misc]


def test_json_files_are_read_as_json():
    document = {"version": 1, "rules": [{"id": "x", "kind": "article", "match": {"urgent": True}}]}
    ruleset = parse_rules(json.dumps(document), source="rules.json", secret_names=set())
    assert ruleset.rules[0].conditions.urgent is True
    assert "not valid JSON" in problems("version: 1", source="rules.json")[0]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("version: 1\nrules: [{id: x, kind: article, match: {}}]", "should be non-empty"),
        ("version: 1\nrules: [{id: x, kind: article, match: {terms: []}}]", "should be non-empty"),
        ("version: 1\nrules: [{id: x, kind: article, match: {min_outlets: 2, within_minutes: 5}}]", "Additional properties"),
        ("version: 1\nrules: [{id: x, kind: breaking_story, match: {min_outlets: 1, within_minutes: 5}}]", "less than the minimum"),
        ("version: 1\nrules: [{id: X Y, kind: article, match: {urgent: true}}]", "does not match"),
        ("version: 1\nrules: [{id: x, kind: article, match: {domains: [www.bbc.co.uk]}}]", "does not match"),
        ("version: 2\nrules: []", "1 was expected"),
        ("version: 1\nrules: [{id: x, kind: article, match: {urgent: true}, secret: s3cr3t}]", "Additional properties"),
        ("version: 1\nrules: [{id: x, kind: article\n", "not valid YAML"),
    ],
)
def test_schema_violations_are_reported_with_their_location(text, expected):
    found = problems(text)
    assert any(expected in p for p in found), found
    assert all(p.startswith("rules.yaml: ") for p in found)


def test_what_the_schema_cannot_say_is_checked_too():
    text = """
version: 1
webhooks: {desk: {url: "https://hooks.example/x", secret: unknown-key}}
rules:
  - {id: a, kind: article, match: {terms: ["__"]}, deliver: {webhooks: [desk, nowhere]}}
  - {id: a, kind: article, match: {urgent: true}}
"""
    found = problems(text)
    assert any("term '__' has no word in it" in p for p in found)
    assert any("unknown webhook 'nowhere'" in p for p in found)
    assert any("duplicate rule id" in p for p in found)
    assert any("secret 'unknown-key' is not in WIREFEED_ALERT_WEBHOOK_SECRETS" in p for p in found)
    # Without the secrets at hand (rules check --no-secrets) only the secret problem goes away.
    with pytest.raises(RulesError) as caught:
        parse_rules(text, source="rules.yaml", secret_names=None)
    assert len(caught.value.problems) == len(found) - 1


def test_the_example_file_is_valid_and_explained(tmp_path):
    ruleset = load_rules(EXAMPLE, secret_names={"newsdesk"})
    text = explain(ruleset)
    assert "5 active rule(s), 1 disabled" in text
    assert "'وقف إطلاق النار' (as 'وقف اطلاق النار')" in text  # what the term is matched as
    assert "at least 3 distinct outlets within 60 minutes" in text
    with pytest.raises(RulesError, match="cannot read"):
        load_rules(tmp_path / "missing.yaml", secret_names=None)


@pytest.mark.parametrize("outlet", ["xn--mgbh0fb.xn--wgbh1c", "مثال.مصر"])
def test_rule_domains_take_the_spelling_of_article_domains(outlet):
    # articles name an internationalised outlet in Unicode (workers.stages.article.domain_of)
    text = f"""
version: 1
rules:
  - {{id: outlet, kind: article, match: {{domains: ["{outlet}", reuters.com]}}}}
  - {{id: story, kind: breaking_story, match: {{min_outlets: 2, within_minutes: 30, domains: ["news.{outlet}"]}}}}
"""
    outlet_rule, story_rule = parse_rules(text, source="rules.yaml", secret_names=None).rules
    assert outlet_rule.conditions.domains == {"مثال.مصر", "reuters.com"}
    assert story_rule.conditions.domains == {"news.مثال.مصر"}
