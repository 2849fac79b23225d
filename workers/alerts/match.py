"""Which rules an article, or the story it belongs to, satisfies. Pure: no I/O, no clock.

Terms are compared as token sequences (:func:`workers.textnorm.tokenize` of
:func:`workers.textnorm.normalize`-d text), which gives word boundaries in every script: "Iran"
never matches inside "Irani", "حلب" never inside "حلبي". Two exceptions follow from how scripts
are written:

* Arabic attaches the conjunctions و/ف, the prepositions ب/ك/ل and the article ال to the next
  word ("بحلب", "وحلب", "والحلب"); a term also matches with those in front of it, and only those.
* Scripts without spaces (Chinese, Japanese, Thai ...) are tokenised as overlapping character
  bigrams, so a term of two or more characters matches wherever its characters appear in a run,
  as a newsroom expects of a CJK keyword. A one-character CJK term only matches a one-character run.

Rules are compiled once per rules file (:class:`Matcher`) into an index from token to the terms
that start with it, so an article costs one dictionary look-up per token whatever the number of rules.
An article's title and text are matched on their first :data:`workers.textnorm.MATCHED_CHARS`
characters: a term found only after them does not match.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from workers.alerts.rules import ArticleConditions, Rule, RuleSet, StoryConditions
from workers.models import Article
from workers.textnorm import matched_text, normalize, tokenize

# Arabic letters after normalize() (which folded the alef and yeh variants).
_ARABIC_WORD = re.compile("^[\u0621-\u064a]+$")
_ARTICLE = "ال"


def arabic_clitic_forms(token: str) -> frozenset[str]:
    """The token as it may be written with Arabic proclitics: an optional conjunction (و ف), an
    optional preposition (ب ك ل), and the article ال unless the token has it; ل + ال is written لل."""
    if not _ARABIC_WORD.match(token):
        return frozenset({token})
    has_article = token.startswith(_ARTICLE)
    forms = set()
    for conjunction in ("", "و", "ف"):
        for preposition in ("", "ب", "ك", "ل"):
            prefix = conjunction + preposition
            if has_article and preposition == "ل":
                forms.add(conjunction + "لل" + token[len(_ARTICLE) :])
            else:
                forms.add(prefix + token)
            if not has_article:
                forms.add(conjunction + ("لل" if preposition == "ل" else preposition + _ARTICLE) + token)
    return frozenset(forms)


@dataclass(frozen=True, slots=True)
class StoryInfo:
    """The story an article belongs to, as the story tracker knows it: the outlets (domains) that
    reported it, each with the time it first did."""

    story_id: str
    outlets: Mapping[str, datetime]


@dataclass(frozen=True, slots=True)
class ArticleFacts:
    """What rules look at, tokenised once per article."""

    domain: str
    language: str | None
    urgent: bool
    # Title and text apart, so that a phrase never runs from the end of one into the other.
    token_fields: tuple[tuple[str, ...], ...]

    @classmethod
    def of(cls, article: Article, *, urgent: bool) -> ArticleFacts:
        return cls(
            domain=article.domain,
            language=article.language,
            urgent=urgent,
            token_fields=tuple(
                tuple(tokenize(normalize(matched_text(field)))) for field in (article.title or "", article.text)
            ),
        )


@dataclass(frozen=True, slots=True)
class ArticleMatch:
    rule: Rule
    terms: tuple[str, ...]
    """The rule's terms found in the article, as written in the rules file."""


@dataclass(frozen=True, slots=True)
class StoryMatch:
    rule: Rule
    outlets: tuple[tuple[str, datetime], ...]
    """The outlets that made the story break, with their first-seen times, earliest first."""


@dataclass(frozen=True, slots=True)
class _Pattern:
    tokens: tuple[str, ...]
    forms: tuple[frozenset[str], ...]


def covers(domains: frozenset[str], domain: str) -> bool:
    """``domain`` is one of ``domains`` or a subdomain of one."""
    while True:
        if domain in domains:
            return True
        if "." not in domain:
            return False
        domain = domain.split(".", 1)[1]


class Matcher:
    """The rules of one :class:`RuleSet`, compiled for matching."""

    def __init__(self, ruleset: RuleSet) -> None:
        self.ruleset = ruleset
        self._article_rules = [r for r in ruleset.active if isinstance(r.conditions, ArticleConditions)]
        self._story_rules = [r for r in ruleset.active if isinstance(r.conditions, StoryConditions)]
        patterns = {
            term.tokens: _Pattern(term.tokens, tuple(arabic_clitic_forms(t) for t in term.tokens))
            for rule in self._article_rules
            for term in rule.conditions.terms  # type: ignore[union-attr]
        }
        self._by_first_form: dict[str, list[_Pattern]] = {}
        for pattern in patterns.values():
            for form in pattern.forms[0]:
                self._by_first_form.setdefault(form, []).append(pattern)

    def match_article(self, article: ArticleFacts) -> list[ArticleMatch]:
        found = self._found_terms(article.token_fields) if self._by_first_form else set()
        matches = []
        for rule in self._article_rules:
            conditions: ArticleConditions = rule.conditions  # type: ignore[assignment]
            if conditions.domains and not covers(conditions.domains, article.domain):
                continue
            if conditions.languages and article.language not in conditions.languages:
                continue
            if conditions.urgent is not None and article.urgent is not conditions.urgent:
                continue
            if any(term.tokens in found for term in conditions.exclude_terms):
                continue
            if not all(term.tokens in found for term in conditions.all_terms):
                continue
            hits = [term.text for term in conditions.any_terms if term.tokens in found]
            if conditions.any_terms and not hits:
                continue
            hits += [term.text for term in conditions.all_terms]
            matches.append(ArticleMatch(rule, tuple(dict.fromkeys(hits))))
        return matches

    def match_story(self, story: StoryInfo) -> list[StoryMatch]:
        matches = []
        for rule in self._story_rules:
            outlets = breaking_outlets(rule.conditions, story)  # type: ignore[arg-type]
            if outlets:
                matches.append(StoryMatch(rule, outlets))
        return matches

    def _found_terms(self, token_fields: tuple[tuple[str, ...], ...]) -> set[tuple[str, ...]]:
        found: set[tuple[str, ...]] = set()
        for tokens in token_fields:
            for start, token in enumerate(tokens):
                for pattern in self._by_first_form.get(token, ()):
                    if pattern.tokens in found:
                        continue
                    end = start + len(pattern.tokens)
                    if end <= len(tokens) and all(
                        tokens[start + i] in forms for i, forms in enumerate(pattern.forms[1:], start=1)
                    ):
                        found.add(pattern.tokens)
        return found


def breaking_outlets(conditions: StoryConditions, story: StoryInfo) -> tuple[tuple[str, datetime], ...]:
    """The earliest ``min_outlets`` outlets whose first reports fall within ``within`` of each
    other, or ``()`` when the story has not broken (yet)."""
    seen = sorted(
        ((first_seen, domain) for domain, first_seen in story.outlets.items()
         if not conditions.domains or covers(conditions.domains, domain)),
    )
    last_start = len(seen) - conditions.min_outlets
    for start in range(last_start + 1):
        window = seen[start : start + conditions.min_outlets]
        if window[-1][0] - window[0][0] <= conditions.within:
            return tuple((domain, first_seen) for first_seen, domain in window)
    return ()
