"""The rules file: schema, semantic checks, parsing into frozen rules, and the explanation."""

import dataclasses
import json
import logging
import os
import unicodedata
from datetime import timedelta
from ipaddress import ip_address
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from workers.alerts.engine import RulesFile
from workers.alerts.rules import (
    SCHEMA_PATH,
    ArticleConditions,
    Rule,
    RuleKind,
    RulesError,
    StoryConditions,
    explain,
    is_public_address,
    language_forms,
    load_rules,
    parse_rules,
)

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
    # articles name an internationalised outlet in Unicode (workers.urlnorm.domain_of)
    text = f"""
version: 1
rules:
  - {{id: outlet, kind: article, match: {{domains: ["{outlet}", reuters.com]}}}}
  - {{id: story, kind: breaking_story, match: {{min_outlets: 2, within_minutes: 30, domains: ["news.{outlet}"]}}}}
"""
    outlet_rule, story_rule = parse_rules(text, source="rules.yaml", secret_names=None).rules
    assert outlet_rule.conditions.domains == {"مثال.مصر", "reuters.com"}
    assert story_rule.conditions.domains == {"news.مثال.مصر"}


def with_webhook(url: str) -> str:
    return f"""
version: 1
webhooks: {{desk: {{url: "{url}", secret: desk-key}}}}
rules: [{{id: a, kind: article, match: {{urgent: true}}, deliver: {{webhooks: [desk]}}}}]
"""


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        # aiohttp took these, and the resolver's IDNA encoding failed at every attempt
        ("https://hooks..newsroom.example/x", "a label is empty or longer than 63 characters"),
        (f"https://{'a' * 64}.newsroom.example/x", "a label is empty or longer than 63 characters"),
        ("https://hooks.news room.example/x", "empty or invalid label"),
        ("https://hooks.newsroom.example:99999/x", "is not a URL"),
        ("http://?x=1", "has no host"),
        ("http://:8080/x", "host is required"),
        ("http://2130706433/x", "neither a name nor an IP address"),
        ("http://127.1/x", "neither a name nor an IP address"),
    ],
)
def test_a_webhook_url_that_cannot_be_requested_is_refused(url, expected):
    (problem,) = problems(with_webhook(url))
    assert problem.startswith("rules.yaml: webhooks/desk: url ")
    assert expected in problem


@pytest.mark.parametrize("userinfo", ["newsdesk:hunter2@", ":hunter2@", "newsdesk@"])
def test_a_webhook_url_with_credentials_is_refused_without_showing_them(userinfo):
    """They would be in `rules check` output and in every dead letter of the webhook."""
    (problem,) = problems(with_webhook(f"https://{userinfo}hooks.newsroom.example/x"))
    assert "user name or password" in problem
    assert "hunter2" not in problem and "newsdesk@" not in problem


PRIVATE = [
    "http://169.254.169.254/latest",  # a cloud's metadata endpoint
    "http://127.0.0.1:1/",
    "http://10.0.0.8/hook",
    "http://172.16.5.4/hook",
    "http://192.168.1.20/hook",
    "http://[fd12:3456::1]/hook",
    "http://[fe80::1%25eth0]/hook",
    "http://[::1]:8080/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://0.0.0.0/hook",
    "http://224.0.0.1/hook",
    "http://localhost:8080/hook",
    "http://LocalHost/hook",
    "http://admin.localhost/hook",
]


@pytest.mark.parametrize("url", PRIVATE)
def test_a_webhook_on_a_private_address_is_refused_unless_the_setting_allows_it(url):
    (problem,) = problems(with_webhook(url))
    assert "WIREFEED_ALERT_WEBHOOK_ALLOW_PRIVATE_ADDRESSES" in problem
    ruleset = parse_rules(with_webhook(url), source="rules.yaml", secret_names={"desk-key"}, allow_private_addresses=True)
    assert ruleset.webhook("desk").url == url


@pytest.mark.parametrize(
    "url", ["https://hooks.newsroom.example/x", "http://8.8.8.8/x", "http://[2001:4860:4860::8888]/x", "https://مثال.مصر/x"]
)
def test_a_public_webhook_url_is_taken(url):
    assert parse_rules(with_webhook(url), source="rules.yaml", secret_names={"desk-key"}).webhook("desk").url == url


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True), ("2001:4860:4860::8888", True), ("::ffff:8.8.8.8", True),
        ("127.0.0.1", False), ("169.254.169.254", False), ("10.1.2.3", False), ("100.64.0.1", False),
        ("0.0.0.0", False), ("224.0.0.1", False), ("239.1.2.3", False), ("::", False), ("::1", False),
        ("fe80::1", False), ("fc00::1", False), ("ff02::1", False), ("::ffff:10.0.0.1", False),
    ],
)
def test_which_addresses_are_public(address, public):
    assert is_public_address(ip_address(address)) is public


def test_a_rules_file_missing_at_start_is_a_rules_error_naming_it(tmp_path):
    """Not a bare FileNotFoundError: `wirefeed worker` and `wirefeed check` report RulesError."""
    with pytest.raises(RulesError, match=f"{tmp_path / 'rules.yaml'}: cannot read"):
        RulesFile(tmp_path / "rules.yaml", secret_names=(), check_interval_s=5)


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param("version: 1\nrules: [{id: a, kind: article, match: {urgent: true}}, {id: a, kind: article, match: {urgent: false}}]\n", id="duplicate id"),
        pytest.param(with_webhook("https://hooks.newsroom.example/x").replace("desk-key", "other-key"), id="secret missing"),
        pytest.param(with_webhook("http://169.254.169.254/latest"), id="private address"),
        pytest.param(with_webhook("https://hooks..newsroom.example/x"), id="bad host"),
    ],
)
def test_a_rules_file_that_turns_bad_while_running_leaves_the_last_good_rules_in_force(tmp_path, caplog, bad):
    path, now = tmp_path / "rules.yaml", [0.0]
    path.write_text(with_webhook("https://hooks.newsroom.example/x"), encoding="utf-8")
    rules = RulesFile(path, secret_names={"desk-key"}, check_interval_s=5, monotonic=lambda: now[0])
    path.write_text(bad, encoding="utf-8")
    os.utime(path, ns=(10**18, 10**18))  # a new version whatever the file system's time resolution
    now[0] += 5
    with caplog.at_level(logging.ERROR, logger="workers.alerts.engine"):
        ruleset = rules.current().ruleset
    assert [rule.id for rule in ruleset.rules] == ["a"]
    assert ruleset.webhook("desk").url == "https://hooks.newsroom.example/x"
    (record,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "is invalid, keeping the rules in force" in record.getMessage()


@pytest.mark.parametrize(
    "rules",
    [
        # the schema's pattern refuses the leading space: its message quoted the whole URL
        "version: 1\nwebhooks: {desk: {url: ' https://wirefeed:HOOKPW-123@hooks.newsroom.example/x', secret: desk}}\n"
        "rules: [{id: a, kind: article, match: {urgent: true}, deliver: {webhooks: [desk]}}]\n",
        # a YAML error quoted the line it is on
        "version: 1\nwebhooks: {desk: {url: https://wirefeed:HOOKPW-123@hooks.newsroom.example/x, secret: [desk}}\n",
        # the URL written where the webhook should be: "... is not of type 'object'" quoted it
        "version: 1\nwebhooks: {desk: 'https://wirefeed:HOOKPW-123@hooks.newsroom.example/x'}\n"
        "rules: [{id: a, kind: article, match: {urgent: true}}]\n",
    ],
)
def test_a_problem_of_a_webhook_url_never_quotes_its_password(rules: str):
    with pytest.raises(RulesError) as raised:
        parse_rules(rules, source="rules.yaml", secret_names=None)
    assert raised.value.problems and all("HOOKPW" not in problem for problem in raised.value.problems), raised.value.problems


def test_a_fully_qualified_webhook_host_is_a_host():
    """"hooks.newsroom.example." (the root's empty label last) is a name the client can POST to:
    refused, it stopped the workers from starting."""
    rules = (
        "version: 1\nwebhooks: {desk: {url: 'https://hooks.newsroom.example./x', secret: desk}}\n"
        "rules: [{id: a, kind: article, match: {urgent: true}, deliver: {webhooks: [desk]}}]\n"
    )
    ruleset = parse_rules(rules, source="rules.yaml", secret_names=None)
    assert [webhook.url for webhook in ruleset.webhooks.values()] == ["https://hooks.newsroom.example./x"]


# --- found by a review of the alerts (the nineteenth session) ---------------------------------------


@pytest.mark.parametrize("within", [".inf", ".nan", "1.0e+12", "600000"])
def test_a_story_window_that_is_no_number_of_minutes_or_over_a_year_is_refused(within: str):
    # .inf and .nan passed the schema and raised OverflowError / ValueError, not RulesError: the
    # worker crashed on start and `rules check` printed a traceback
    text = VALID.replace("within_minutes: 30", f"within_minutes: {within}")
    assert any("within_minutes" in problem for problem in problems(text))


@pytest.mark.parametrize(
    ("text", "source"),
    [
        ("version: 1\nrules:\n  - id: a\n    kind: article\n    match:\n      terms: [Aleppo]\n      terms: [حلب]\n",
         "rules.yaml"),
        ('{"version": 1, "rules": [{"id": "a", "kind": "article", "match": {"terms": ["Aleppo"], "terms": ["حلب"]}}]}',
         "rules.json"),
    ],
)
def test_a_key_written_twice_is_refused_not_read_as_its_last_value(text: str, source: str):
    (problem,) = problems(text, source=source)
    assert "terms" in problem and "twice" in problem


def test_a_language_that_is_no_code_is_refused_and_retired_codes_read_as_today():
    assert any("'xx' is no ISO 639" in p for p in problems(VALID.replace("languages: [ar, en]", "languages: [ar, xx]")))
    ruleset = parse_rules(VALID.replace("languages: [ar, en]", "languages: [iw, ara]"), source="rules.yaml", secret_names=None)
    assert {"he", "ar"} <= ruleset.rules[0].conditions.languages


# --- found by a review of alert delivery (the twentieth session) -----------------------------------


@pytest.mark.parametrize("host", ["xn--zz.newsroom.example", "xn--.newsroom.example"])
def test_a_webhook_host_that_is_no_punycode_is_a_problem_of_the_file(host: str):
    # yarl decodes xn-- labels when asked for the host: UnicodeError, no RulesError, so `rules
    # check` and the readiness probe printed a traceback and a reload failed the page's alerts
    rules = (
        f"version: 1\nwebhooks: {{desk: {{url: 'https://{host}/hook', secret: desk}}}}\n"
        "rules: [{id: a, kind: article, match: {urgent: true}, deliver: {webhooks: [desk]}}]\n"
    )
    with pytest.raises(RulesError) as raised:
        parse_rules(rules, source="rules.yaml", secret_names=None)
    assert any("webhooks/desk" in problem and "host cannot be decoded" in problem for problem in raised.value.problems)


@pytest.mark.parametrize(("source", "text"), [
    ("rules.yaml", "version: 1\nrules: " + "[" * 20000 + "]" * 20000 + "\n"),
    ("rules.json", '{"version": 1, "rules": ' + "[" * 100000 + "]" * 100000 + "}"),
])
def test_a_rules_file_nested_past_the_parsers_depth_is_a_problem_of_the_file(source: str, text: str):
    with pytest.raises(RulesError) as raised:
        parse_rules(text, source=source, secret_names=None)
    assert raised.value.problems == [f"{source}: nested deeper than a rules file can be"]


def test_a_rules_file_whose_validation_recurses_past_the_limit_is_a_problem_of_the_file(monkeypatch):
    # A JSON file nested some 980 deep parses, then the schema's message quoting the nested
    # value recursed past the limit: RecursionError, a traceback (the depth at which it happens
    # depends on the stack the call starts from, so the validator is made to recurse here).
    import workers.alerts.rules as rules_module

    class Recursing:
        def iter_errors(self, document):  # noqa: ANN001, ANN202
            raise RecursionError("maximum recursion depth exceeded while getting the repr of an object")

    monkeypatch.setattr(rules_module, "_validator", Recursing)
    with pytest.raises(RulesError) as raised:
        parse_rules(VALID, source="rules.yaml", secret_names=None)
    assert raised.value.problems == ["rules.yaml: nested deeper than a rules file can be"]


# --- found by a review of rule matching (the twenty-first session) --------------------------------


@pytest.mark.parametrize("key", ["? [a, b]\n  : 1", "? {a: 1}\n  : 1"])
def test_a_yaml_key_that_is_a_list_or_a_mapping_is_a_problem_of_the_file(key: str):
    # it was a TypeError (unhashable type): a traceback from `rules check`, the readiness probe and start
    rules = f"version: 1\nrules:\n- id: a\n  kind: article\n  match: {{urgent: true}}\n  {key}\n"
    with pytest.raises(RulesError) as raised:
        parse_rules(rules, source="rules.yaml", secret_names=None)
    assert raised.value.problems[0].startswith("rules.yaml: not valid YAML: a key that is a list or a mapping at line ")


def test_yaml_aliases_that_expand_past_any_rules_file_are_a_problem_of_the_file():
    # ten aliases of ten aliases...: 612 bytes, a billion values, and a validator's message that
    # quoted them exhausted memory
    anchors = ["  a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    anchors += [f"  a{n}: &a{n} [" + ", ".join([f"*a{n - 1}"] * 10) + "]" for n in range(1, 9)]
    bomb = "x-anchors:\n" + "\n".join(anchors) + "\nversion: 1\nrules: [{id: a, kind: article, match: {terms: [*a8]}}]\n"
    for text in (bomb, "version: 1\nrules: &itself [*itself]\n"):
        with pytest.raises(RulesError) as raised:
            parse_rules(text, source="rules.yaml", secret_names=None)
        assert raised.value.problems == [
            "rules.yaml: more than 200,000 values once its aliases (*name) are expanded, or a value that holds itself"
        ]
    # an alias the size of a rules file is a rules file's (a list of terms shared by two rules)
    shared = (
        "version: 1\nrules:\n- {id: a, kind: article, match: {terms: &places [Aleppo, Homs, Idlib]}}\n"
        "- {id: b, kind: article, match: {terms: *places, urgent: true}}\n"
    )
    assert [rule.id for rule in parse_rules(shared, source="rules.yaml", secret_names=None).rules] == ["a", "b"]


def test_a_schema_message_quotes_at_most_a_line_of_the_value():
    terms = ", ".join(f"[term {n}]" for n in range(2000))
    with pytest.raises(RulesError) as raised:
        parse_rules(f"version: 1\nrules: [{{id: a, kind: article, match: {{terms: [{terms}]}}}}]\n", source="rules.yaml", secret_names=None)
    assert raised.value.problems and all(len(problem) < 400 for problem in raised.value.problems)


# --- found by mutation testing ----------------------------------------------------------------------


def test_a_rules_error_reads_as_its_problems():
    with pytest.raises(RulesError) as caught:
        parse_rules("version: 2\nrules: []", source="rules.yaml", secret_names=None)
    assert str(caught.value) == "; ".join(caught.value.problems) != ""


def test_every_part_of_a_parsed_ruleset_is_frozen():
    ruleset = parse_rules(VALID, source="rules.yaml", secret_names={"desk-key"})
    aleppo, breaking = ruleset.rules
    parts = (ruleset, aleppo, breaking, aleppo.conditions, breaking.conditions, aleppo.conditions.any_terms[0], ruleset.webhook("desk"))
    for part in parts:
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(part, dataclasses.fields(part)[0].name, None)


def test_a_rule_is_enabled_unless_written_otherwise():
    assert Rule(id="x", kind=RuleKind.ARTICLE, conditions=ArticleConditions(urgent=True)).enabled is True


def test_a_long_schema_message_is_cut_to_three_hundred_characters():
    (problem,) = problems("version: 1\nrules: [{id: a, kind: article, match: {terms: " + "x" * 1000 + "}}]\n", secrets=())
    message = problem.removeprefix("rules.yaml: rules/0/match/terms: ")
    assert len(message) == 300 and message.startswith("'xxx") and message.endswith("…")


def test_a_rules_file_that_is_not_utf_8_is_a_rules_error_naming_it(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_bytes("version: 1\nrules: [{id: x, kind: article, match: {terms: [\"Société\"]}}]\n".encode("latin-1"))
    with pytest.raises(RulesError, match="cannot read"):
        load_rules(path, secret_names=None)


def test_a_rules_file_loaded_from_disk_refuses_a_private_webhook_address_by_default(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text(VALID.replace("https://hooks.example/x", "http://127.0.0.1:8080/x"), encoding="utf-8")
    with pytest.raises(RulesError, match="not a public address"):
        load_rules(path, secret_names={"desk-key"})
    assert load_rules(path, secret_names={"desk-key"}, allow_private_addresses=True).webhook("desk").url == "http://127.0.0.1:8080/x"


@pytest.mark.parametrize(
    ("webhook", "expected"),
    [
        ("{url: ftp://hooks.example/x, secret: k}", "webhooks/desk/url: does not match '^https?://[^\\\\s/]+'"),
        ("{url: [https://hooks.example/x], secret: k}", "webhooks/desk/url: fails the schema's 'type': \"string\""),
        ("{url: \"https://hooks.example/x\", secret: k, extra: 1}", "webhooks/desk: fails the schema's 'additionalProperties'"),
    ],
)
def test_a_schema_problem_of_a_webhook_names_the_rule_it_fails_not_the_value(webhook: str, expected: str):
    text = "version: 1\nwebhooks: {desk: " + webhook + "}\nrules: [{id: a, kind: article, match: {urgent: true}}]\n"
    assert problems(text, secrets=()) == [f"rules.yaml: {expected}"]


def test_a_rule_language_is_kept_as_written_and_as_bcp_47_has_it_with_its_macrolanguage():
    text = "version: 1\nrules: [{id: a, kind: article, match: {terms: [x], languages: [iw, arb]}}]\n"
    (rule,) = parse_rules(text, source="rules.yaml", secret_names=None).rules
    assert rule.conditions.languages == {"iw", "he", "arb", "ar"}


def test_the_explanation_says_what_each_rule_does_in_full():
    text = """
version: 1
webhooks:
  desk: {url: "https://hooks.example/x", secret: desk-key}
rules:
  - id: aleppo
    kind: article
    description: Aleppo in Arabic or English
    match: {terms: ["حلب", "Aleppo"], all_terms: [talks], exclude_terms: [sport], domains: [b.example, a.example], languages: [ar], urgent: false}
    deliver: {webhooks: [desk]}
  - id: breaking
    kind: breaking_story
    enabled: false
    match: {min_outlets: 2, within_minutes: 30, domains: [b.example, a.example]}
"""
    assert explain(parse_rules(text, source="rules.yaml", secret_names=None)) == "\n".join(
        [
            "1 active rule(s), 1 disabled",
            "",
            "rule aleppo (article)",
            "  Aleppo in Arabic or English",
            "  when the article",
            "    mentions any of: 'حلب', 'Aleppo'",
            "    mentions all of: 'talks'",
            "    mentions none of: 'sport'",
            "    comes from a.example, b.example (or a subdomain)",
            "    is in ar",
            "    is not flagged urgent by its outlet",
            "  delivered to: alerts topic, Redis stream, webhooks desk -> https://hooks.example/x",
            "  fires at most once per article and its copies",
            "",
            "rule breaking (breaking_story, DISABLED)",
            "  when a story is reported by at least 2 distinct outlets within 30 minutes of each other",
            "  counting only the outlets a.example, b.example (an outlet is a registered domain: all its hosts count as one)",
            "  delivered to: alerts topic, Redis stream",
            "  fires at most once per story",
        ]
    )


def test_a_language_that_is_no_code_has_only_its_written_form():
    # an article's declared language may be anything ("english"): langcodes raises on it
    assert language_forms("english") == {"english"}
    assert language_forms("") == {""}


# --- found by a review of alert rules, matching and delivery ---------------------------------------


def test_a_term_longer_than_any_newsrooms_is_refused_naming_its_start_and_its_length():
    # a term had no length limit: a pasted text of 100,000 words was a valid term, whose loading
    # took 22 s (and 400,000 words 7 minutes) at every start and reload of the rules
    longest = " ".join(["ha"] * 1000)
    assert parse_rules(VALID.replace('"Aleppo"', f'"{longest}"'), source="rules.yaml", secret_names=None).rules
    (problem,) = problems(VALID.replace('"Aleppo"', f'"{longest} ha"'))
    assert problem == (
        "rules.yaml: rules/0 (aleppo): term '" + "ha " * 19 + "ha…' is 1,001 words long: a term has at most 1,000"
        " (in a script without spaces, characters)"
    )


@pytest.mark.parametrize(
    ("written", "outlet"),
    [
        (unicodedata.normalize("NFD", "münchen.de"), "münchen.de"),  # ü as u + U+0308, as macOS writes it
        ("ＢＢＣ.com", "bbc.com"),  # fullwidth letters, as a CJK input method writes them
        ("ﬁnance.example", "finance.example"),  # a ligature
    ],
)
def test_a_rule_domain_in_any_unicode_form_is_read_as_idna_maps_it(written: str, outlet: str):
    # these were valid and explained as the outlet, but never equalled an article's domain (which
    # comes from a URL, composed and in ASCII where it can be): the rule never fired
    text = f"""
version: 1
rules:
  - {{id: outlet, kind: article, match: {{domains: ["{written}"]}}}}
  - {{id: story, kind: breaking_story, match: {{min_outlets: 2, within_minutes: 30, domains: ["news.{written}"]}}}}
"""
    outlet_rule, story_rule = parse_rules(text, source="rules.yaml", secret_names=None).rules
    assert outlet_rule.conditions.domains == {outlet}
    assert story_rule.conditions.domains == {f"news.{outlet}"}


@pytest.mark.parametrize(
    ("domain", "expected"),
    [
        ("bad\ufffd.example", "rules/0/match/domains/0: not a host name (IDNA: Codepoint U+FFFD not allowed"),
        ("ｗｗｗ.bbc.com", "rules/0/match/domains/0: 'ｗｗｗ.bbc.com' reads as 'www.bbc.com' (IDNA), which does not match"),
    ],
)
def test_a_rule_domain_idna_refuses_or_maps_to_an_invalid_one_is_a_problem_of_the_file(domain: str, expected: str):
    # a domain no host can have was valid, and never matched; one IDNA refuses would now raise
    # idna.IDNAError from the parser, not RulesError
    (problem,) = problems(f'version: 1\nrules: [{{id: a, kind: article, match: {{domains: ["{domain}"]}}}}]\n')
    assert problem.startswith(f"rules.yaml: {expected}"), problem


@pytest.mark.parametrize("term", ["C++", "C#", "F#", " R. "])
def test_a_term_that_reads_as_one_letter_is_a_problem_of_the_file(term: str) -> None:
    # its symbols are no part of a word: "C++" matched "Vitamin C deficiency" and "C#" "a note in C major"
    (problem,) = problems(VALID.replace('"Aleppo"', json.dumps(term)))
    letter = term.strip()[0].lower()
    assert problem == (
        f"rules.yaml: rules/0 (aleppo): term {term!r} reads as the one letter {letter!r} (a term is matched as "
        "words, and its other characters are no part of one): it would match that letter standing alone anywhere"
    )


@pytest.mark.parametrize("term", ["R", "中", "Q&A", "AT&T", "U.S."])
def test_a_one_letter_term_as_written_or_a_term_of_several_words_is_no_problem(term: str) -> None:
    assert parse_rules(VALID.replace('"Aleppo"', json.dumps(term)), source="rules.yaml", secret_names=None).rules
