"""Alert rules: a YAML or JSON file, validated against ``schemas/rules.v1.schema.json``, parsed into
frozen dataclasses. Pure: :func:`parse_rules` takes the file's text, never touches the disk
(:func:`load_rules` is the one-line exception for callers that hold a path).

Terms are normalised and tokenised here, once per load, with :mod:`workers.textnorm`, so that the
matcher (:mod:`workers.alerts.match`) compares tokens only and ``wirefeed rules check`` can show
an editor exactly what a term will match.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Collection, Hashable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from functools import cache
from ipaddress import IPv4Address, IPv6Address, ip_address
from pathlib import Path

import idna
import langcodes
import yaml
from jsonschema import Draft202012Validator, ValidationError
from yarl import URL

from workers.textnorm import fold_dotless_i, normalize, tokenize
from workers.urlnorm import unicode_host

# A symlink to schemas/rules.v1.schema.json, so that the installed package carries the contract.
SCHEMA_PATH = Path(__file__).with_name("rules.v1.schema.json")


class RulesError(ValueError):
    """A rules file that cannot be used; ``problems`` lists every reason, each with its location."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class RuleKind(StrEnum):
    ARTICLE = "article"
    BREAKING_STORY = "breaking_story"


@dataclass(frozen=True, slots=True)
class Term:
    """A word or phrase as written in the file, and the tokens it matches."""

    text: str
    tokens: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ArticleConditions:
    any_terms: tuple[Term, ...] = ()
    all_terms: tuple[Term, ...] = ()
    exclude_terms: tuple[Term, ...] = ()
    domains: frozenset[str] = frozenset()
    languages: frozenset[str] = frozenset()
    urgent: bool | None = None

    @property
    def terms(self) -> tuple[Term, ...]:
        return self.any_terms + self.all_terms + self.exclude_terms


@dataclass(frozen=True, slots=True)
class StoryConditions:
    min_outlets: int
    within: timedelta
    domains: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    kind: RuleKind
    conditions: ArticleConditions | StoryConditions
    webhooks: tuple[str, ...] = ()
    description: str = ""
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class WebhookTarget:
    name: str
    url: str
    secret: str


@dataclass(frozen=True, slots=True)
class RuleSet:
    rules: tuple[Rule, ...] = ()
    webhooks: Mapping[str, WebhookTarget] = field(default_factory=dict)

    @property
    def active(self) -> tuple[Rule, ...]:
        return tuple(rule for rule in self.rules if rule.enabled)

    def webhook(self, name: str) -> WebhookTarget | None:
        return self.webhooks.get(name)


EMPTY = RuleSet()


@cache
def _validator() -> Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return Draft202012Validator(schema)


_TOO_DEEP = "nested deeper than a rules file can be"
# YAML's aliases repeat a value without writing it again: ten aliases of ten aliases... made a
# 600-byte file of a billion values, which the validator's message quoted (memory exhausted).
_MAX_VALUES = 200_000
_MESSAGE_CHARS = 300
_TOO_LARGE = f"more than {_MAX_VALUES:,} values once its aliases (*name) are expanded, or a value that holds itself"


def parse_rules(
    text: str, *, source: str, secret_names: Collection[str] | None, allow_private_addresses: bool = False
) -> RuleSet:
    """Parse and validate a rules file's text (``source`` names it in errors; a ``.json`` name is
    read as JSON, anything else as YAML). ``secret_names``: the webhook secrets the settings hold
    (None: not checked, for a check where the secrets are not at hand). ``allow_private_addresses``:
    the setting ``alert_webhook_allow_private_addresses`` (webhooks on ``localhost`` or a
    non-public IP address are refused without it).
    Raises :class:`RulesError` listing every problem found."""
    try:
        document = (
            json.loads(text, object_pairs_hook=_unique_keys) if source.endswith(".json") else yaml.load(text, _UniqueKeyLoader)
        )
    except (ValueError, yaml.YAMLError) as exc:
        raise RulesError([f"{source}: not valid {'JSON' if source.endswith('.json') else 'YAML'}: {_syntax_error(exc)}"]) from exc
    except RecursionError as exc:
        raise RulesError([f"{source}: {_TOO_DEEP}"]) from exc
    if _values(document, {}) > _MAX_VALUES:
        raise RulesError([f"{source}: {_TOO_LARGE}"])
    try:
        # the validator and its messages recurse too (a message quotes the nested value)
        errors = sorted(_validator().iter_errors(document), key=lambda e: list(map(str, e.absolute_path)))
        problems = [f"{source}: {_where(e.absolute_path)}: {_schema_problem(e)}" for e in errors]
    except RecursionError as exc:
        raise RulesError([f"{source}: {_TOO_DEEP}"]) from exc
    if problems:
        raise RulesError(problems)
    if problems := _number_problems(document) + _domain_problems(document):
        raise RulesError([f"{source}: {problem}" for problem in problems])
    ruleset = _build(document)
    problems = _semantic_problems(ruleset, secret_names, allow_private_addresses=allow_private_addresses)
    if problems:
        raise RulesError([f"{source}: {problem}" for problem in problems])
    return ruleset


def load_rules(
    path: Path, *, secret_names: Collection[str] | None, allow_private_addresses: bool = False
) -> RuleSet:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RulesError([f"{path}: cannot read: {exc}"]) from exc
    return parse_rules(text, source=str(path), secret_names=secret_names, allow_private_addresses=allow_private_addresses)


def _unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    """A JSON object, refused when it names a key twice: the parser keeps the last value, and a
    rule written with two ``terms`` would watch only the second list."""
    document: dict[str, object] = {}
    for key, value in pairs:
        if key in document:
            raise ValueError(f"the key {key!r} is written twice in one object")
        document[key] = value
    return document


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a mapping that names a key twice (as ``_unique_keys``)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[object, object]:
        seen: set[object] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            if not isinstance(key, Hashable):  # YAML's "? [a, b]": no name of a field
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping", node.start_mark, "a key that is a list or a mapping", key_node.start_mark
                )
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping", node.start_mark, f"the key {key!r} is written twice", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _values(value: object, counted: dict[int, int]) -> int:
    """How many values ``value`` holds once every alias is written out (``counted``: by id, the
    values already counted, each alias's target once; one still being counted holds itself)."""
    if not isinstance(value, (dict, list)):
        return 1
    if id(value) in counted:
        return counted[id(value)]
    counted[id(value)] = _MAX_VALUES + 1
    items = [*value.keys(), *value.values()] if isinstance(value, dict) else value
    total = 1
    for item in items:
        total += _values(item, counted)
        if total > _MAX_VALUES:
            break
    counted[id(value)] = total
    return total


def _number_problems(document: dict) -> list[str]:  # type: ignore[type-arg]
    """What the schema lets through in numbers: NaN, which no comparison refuses (its maximum of a
    year for within_minutes refuses .inf, which overflowed the window's arithmetic)."""
    return [
        f"rules/{index}/match/within_minutes: not a number of minutes"
        for index, spec in enumerate(document["rules"])
        if isinstance(within := spec["match"].get("within_minutes"), float) and not math.isfinite(within)
    ]


def _domain_problems(document: dict) -> list[str]:  # type: ignore[type-arg]
    """What the schema's pattern lets through in domains: a character IDNA refuses in a host name
    (U+FFFD, a private-use one), or one that IDNA's mapping turns into a domain the pattern refuses
    (a fullwidth 'ｗｗｗ.' prefix, a soft hyphen that was a whole label)."""
    pattern = re.compile(_validator().schema["$defs"]["domains"]["items"]["pattern"])
    problems = []
    for index, spec in enumerate(document["rules"]):
        for position, domain in enumerate(spec["match"].get("domains", ())):
            where = f"rules/{index}/match/domains/{position}"
            try:
                mapped = _idna_mapped(domain)
            except idna.IDNAError as exc:
                problems.append(f"{where}: not a host name (IDNA: {exc})")
                continue
            if not pattern.search(mapped):
                problems.append(f"{where}: {domain!r} reads as {mapped!r} (IDNA), which does not match {pattern.pattern!r}")
    return problems


def _syntax_error(exc: ValueError | yaml.YAMLError) -> str:
    """Where and what, without the line's text: a webhook URL on it may hold a password. (json's
    messages name a position only.)"""
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        return f"{exc.problem} at line {exc.problem_mark.line + 1}, column {exc.problem_mark.column + 1}"
    return str(exc)


def _schema_problem(error: ValidationError) -> str:
    """The schema's complaint. Under ``webhooks`` the value is never quoted (jsonschema's message
    does): a webhook's URL may hold a password, whether in its ``url`` or written where the webhook
    should be, and the message goes to logs, the readiness probe's output and `rules check`."""
    if list(error.absolute_path)[:1] != ["webhooks"]:
        # the message quotes the value, which may be a whole list of terms
        return error.message if len(error.message) <= _MESSAGE_CHARS else error.message[: _MESSAGE_CHARS - 1] + "…"
    if error.validator == "pattern":
        return f"does not match {error.validator_value!r}"
    if error.validator in ("type", "enum", "const", "format", "minLength", "maxLength"):
        return f"fails the schema's {error.validator!r}: {json.dumps(error.validator_value, ensure_ascii=False)}"
    return f"fails the schema's {error.validator!r}"


def _where(path: Collection[object]) -> str:
    return "/".join(map(str, path)) or "<root>"


def _terms(values: list[str] | None) -> tuple[Term, ...]:
    return tuple(Term(value, tuple(tokenize(fold_dotless_i(normalize(value))))) for value in values or ())


def language_forms(code: str) -> frozenset[str]:
    """A language code as written and as BCP 47 has it now ("iw" and "heb" are "he", "tl" is
    "fil"): the detector and the pages write one or the other."""
    if not langcodes.tag_is_valid(code):
        return frozenset({code})
    return frozenset({code, langcodes.standardize_tag(code, macro=True)})


def _languages(values: list[str] | None) -> frozenset[str]:
    return frozenset().union(*(language_forms(value) for value in values or ()))


def _domains(values: list[str] | None) -> frozenset[str]:
    """In the spelling of article domains (:func:`workers.urlnorm.domain_of`): a rule may
    name an internationalised outlet in punycode or in Unicode, and in Unicode as any keyboard or
    editor writes it (:func:`_idna_mapped`)."""
    return frozenset(unicode_host(_idna_mapped(value)) for value in values or ())


def _idna_mapped(domain: str) -> str:
    """The domain as IDNA maps a name before looking it up (UTS #46, nontransitional: ß stays ß):
    composed (NFC), compatibility forms folded, in lower case. An article's domain comes from a
    URL, in that form: a rule's 'münchen.de' written decomposed (u and a combining diaeresis, as
    macOS and some editors write it) or a fullwidth 'ＢＢＣ.com' never equalled it. Raises
    idna.IDNAError for a character no host name may hold."""
    return idna.uts46_remap(domain, std3_rules=False, transitional=False)


def _build(document: dict) -> RuleSet:  # type: ignore[type-arg]
    webhooks = {
        name: WebhookTarget(name=name, url=spec["url"], secret=spec["secret"])
        for name, spec in (document.get("webhooks") or {}).items()
    }
    rules = []
    for spec in document["rules"]:
        match = spec["match"]
        kind = RuleKind(spec["kind"])
        conditions: ArticleConditions | StoryConditions
        if kind is RuleKind.ARTICLE:
            conditions = ArticleConditions(
                any_terms=_terms(match.get("terms")),
                all_terms=_terms(match.get("all_terms")),
                exclude_terms=_terms(match.get("exclude_terms")),
                domains=_domains(match.get("domains")),
                languages=_languages(match.get("languages")),
                urgent=match.get("urgent"),
            )
        else:
            conditions = StoryConditions(
                min_outlets=int(match["min_outlets"]),  # YAML's 2.0 is an integer to the schema
                within=timedelta(minutes=match["within_minutes"]),
                domains=_domains(match.get("domains")),
            )
        rules.append(
            Rule(
                id=spec["id"],
                kind=kind,
                conditions=conditions,
                webhooks=tuple((spec.get("deliver") or {}).get("webhooks", ())),
                description=spec.get("description", ""),
                enabled=spec.get("enabled", True),
            )
        )
    return RuleSet(rules=tuple(rules), webhooks=webhooks)


# A newsroom's terms are names and phrases of a few words: a longer one is text pasted by mistake,
# and each of its words is a node of the matcher's trie (a term of 100,000 words held 170 MB).
# 1,000 is above the longest term the matching benchmark builds (bench/alerts.py: one term of 500
# words repeated in an article, and phrases of a Chinese text, whose "words" between spaces are
# runs of up to some 550 characters).
_MAX_TERM_TOKENS = 1000
_QUOTED_CHARS = 60


def _quoted(text: str) -> str:
    return repr(text if len(text) <= _QUOTED_CHARS else text[: _QUOTED_CHARS - 1] + "…")


def _reads_as_a_letter(term: Term) -> bool:
    """Whether a term written with more than a letter reads as that letter alone: "C++", "C#", "F#"
    matched every "C" ("Vitamin C", "a note in C major"). A one-character term written so ("中",
    "R") means it."""
    return len(term.tokens) == 1 and len(term.tokens[0]) == 1 and len(term.text.strip()) > 1


def _semantic_problems(
    ruleset: RuleSet, secret_names: Collection[str] | None, *, allow_private_addresses: bool
) -> list[str]:
    """What the schema cannot say: unique ids, references that resolve, terms that can match,
    webhook URLs that can be requested."""
    problems = [
        f"webhooks/{target.name}: url {problem}"
        for target in ruleset.webhooks.values()
        if (problem := _url_problem(target.url, allow_private_addresses=allow_private_addresses))
    ]
    seen: set[str] = set()
    for index, rule in enumerate(ruleset.rules):
        where = f"rules/{index} ({rule.id})"
        if rule.id in seen:
            problems.append(f"{where}: duplicate rule id")
        seen.add(rule.id)
        problems.extend(
            f"{where}: unknown webhook {name!r}" for name in rule.webhooks if ruleset.webhook(name) is None
        )
        if isinstance(rule.conditions, ArticleConditions):
            problems.extend(
                f"{where}: term {term.text!r} has no word in it" for term in rule.conditions.terms if not term.tokens
            )
            problems.extend(
                f"{where}: term {_quoted(term.text)} is {len(term.tokens):,} words long: a term has at most "
                f"{_MAX_TERM_TOKENS:,} (in a script without spaces, characters)"
                for term in rule.conditions.terms
                if len(term.tokens) > _MAX_TERM_TOKENS
            )
            problems.extend(
                f"{where}: term {term.text!r} reads as the one letter {term.tokens[0]!r} (a term is matched as words,"
                " and its other characters are no part of one): it would match that letter standing alone anywhere"
                for term in rule.conditions.terms
                if _reads_as_a_letter(term)
            )
            problems.extend(
                f"{where}: language {code!r} is no ISO 639 language code"
                for code in sorted(rule.conditions.languages)
                if not langcodes.tag_is_valid(code)
            )
    problems.extend(
        f"webhooks/{target.name}: secret {target.secret!r} is not in WIREFEED_ALERT_WEBHOOK_SECRETS"
        " (`wirefeed rules check --no-secrets FILE` checks a file without the secrets at hand)"
        for target in ruleset.webhooks.values()
        if secret_names is not None and target.secret not in secret_names
    )
    return problems


# A host label once IDNA-encoded (RFC 1035's letters, digits and hyphens; the underscore some
# internal names carry resolves all the same).
_HOST_LABEL = re.compile(r"[a-z0-9_-]{1,63}")


def _url_problem(url: str, *, allow_private_addresses: bool) -> str | None:
    """Why a webhook URL cannot be POSTed to, as the HTTP client and the resolver would find out
    at every attempt; None when it can. The URL itself is never quoted: it may hold a password."""
    try:
        parsed = URL(url)
    except (ValueError, TypeError) as exc:
        return f"is not a URL ({exc})"
    if parsed.user is not None or parsed.password is not None:
        # It would be in every `rules check` output and dead letter; a receiver authenticates the
        # signature (X-Wirefeed-Signature) instead.
        return "has a user name or password (user:password@) in it: remove it, the signature authenticates the POST"
    try:
        host = parsed.host  # yarl decodes punycode labels here
    except UnicodeError as exc:
        return f"host cannot be decoded (IDNA: {exc})"
    if not host:
        return "has no host"
    try:
        address: IPv4Address | IPv6Address | None = ip_address(host)
    except ValueError:
        address = None
    if address is not None:
        if not allow_private_addresses and not is_public_address(address):
            return (
                f"host {host} is not a public address (loopback, link-local, private, unspecified, multicast ...): "
                "allowed only with WIREFEED_ALERT_WEBHOOK_ALLOW_PRIVATE_ADDRESSES"
            )
        return None
    try:
        # What the resolver does with the name at every attempt (yarl gives it in punycode).
        ascii_host = (parsed.raw_host or "").encode("idna").decode("ascii")
    except UnicodeError as exc:
        return f"host {host!r} cannot be encoded (IDNA: {exc}): a label is empty or longer than 63 characters"
    # a fully qualified name ends in the root's empty label ("hooks.example.com.")
    labels = ascii_host.lower().removesuffix(".").split(".")
    if bad := [label for label in labels if not _HOST_LABEL.fullmatch(label)]:
        return f"host {host!r} has an empty or invalid label ({bad[0]!r})"
    if labels[-1].isdigit():
        return f"host {host!r} is neither a name nor an IP address in its usual form"
    if not allow_private_addresses and labels[-1] == "localhost":
        return f"host {host} is this machine: allowed only with WIREFEED_ALERT_WEBHOOK_ALLOW_PRIVATE_ADDRESSES"
    return None


def is_public_address(address: IPv4Address | IPv6Address) -> bool:
    """Whether webhooks may be POSTed to ``address`` by default: not loopback, link-local, private
    (RFC 1918, ULA fc00::/7), unspecified, multicast, nor any other range that is not routed
    on the internet (shared, documentation, reserved). An IPv4-mapped IPv6 address is its IPv4 one.
    An internal service (a cloud's metadata endpoint at 169.254.169.254, an admin port on
    localhost) must not get article titles, nor show its answers in ``alerts.dlq``."""
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def explain(ruleset: RuleSet) -> str:
    """What each rule does, in plain words, for ``wirefeed rules check``."""
    lines = [f"{len(ruleset.active)} active rule(s), {len(ruleset.rules) - len(ruleset.active)} disabled"]
    for rule in ruleset.rules:
        lines.append("")
        lines.append(f"rule {rule.id} ({rule.kind}{'' if rule.enabled else ', DISABLED'})")
        if rule.description:
            lines.append(f"  {rule.description}")
        lines.extend(f"  {line}" for line in _explain_conditions(rule.conditions))
        targets = ", ".join(f"{name} -> {ruleset.webhook(name).url}" for name in rule.webhooks)  # type: ignore[union-attr]
        lines.append(f"  delivered to: alerts topic, Redis stream{', webhooks ' + targets if targets else ''}")
        once = "story" if rule.kind is RuleKind.BREAKING_STORY else "article and its copies"
        lines.append(f"  fires at most once per {once}")
    return "\n".join(lines)


def _explain_conditions(conditions: ArticleConditions | StoryConditions) -> list[str]:
    if isinstance(conditions, StoryConditions):
        lines = [
            f"when a story is reported by at least {conditions.min_outlets} distinct outlets "
            f"within {conditions.within.total_seconds() / 60:g} minutes of each other"
        ]
        if conditions.domains:
            lines.append(
                f"counting only the outlets {', '.join(sorted(conditions.domains))} (an outlet is a registered "
                "domain: all its hosts count as one)"
            )
        return lines
    lines = ["when the article"]
    if conditions.any_terms:
        lines.append(f"  mentions any of: {_show(conditions.any_terms)}")
    if conditions.all_terms:
        lines.append(f"  mentions all of: {_show(conditions.all_terms)}")
    if conditions.exclude_terms:
        lines.append(f"  mentions none of: {_show(conditions.exclude_terms)}")
    if conditions.domains:
        lines.append(f"  comes from {', '.join(sorted(conditions.domains))} (or a subdomain)")
    if conditions.languages:
        lines.append(f"  is in {', '.join(sorted(conditions.languages))}")
    if conditions.urgent is not None:
        lines.append(f"  is {'' if conditions.urgent else 'not '}flagged urgent by its outlet")
    return lines


def _show(terms: tuple[Term, ...]) -> str:
    """Each term with the tokens it is matched as, when they differ from what was written."""
    shown = []
    for term in terms:
        matched = " ".join(term.tokens)
        shown.append(repr(term.text) if matched == term.text.casefold() else f"{term.text!r} (as {matched!r})")
    return ", ".join(shown)
