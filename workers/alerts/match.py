"""Which rules an article, or the story it belongs to, satisfies. Pure: no I/O, no clock.

Terms are compared as token sequences (:func:`workers.textnorm.tokenize` of
:func:`workers.textnorm.normalize`-d text), which gives word boundaries in every script: "Iran"
never matches inside "Irani", "حلب" never inside "حلبي". Two exceptions follow from how scripts
are written:

* Arabic and Hebrew attach conjunctions, prepositions and the article to the next word
  (Arabic "بحلب", "وحلب", "والحلب"; Hebrew "בירושלים", "וירושלים", "מהכנסת"); a term also matches
  with those in front of it, and only those (:func:`clitic_forms`). These belong to the
  languages, not to their scripts: Persian, Urdu, Pashto, Kurdish... in Arabic letters and Yiddish
  in Hebrew ones join none, so a term matches there as in any other language ("ارس" never matches
  "فارس" in Persian). Other languages match the word forms a rule lists, no other: "Путин" does
  not match "Путина".
* Scripts without spaces (Chinese, Japanese, Thai ...) are tokenised as overlapping character
  bigrams, so a term of two or more characters matches wherever its characters appear in a run,
  as a newsroom expects of a CJK keyword. A one-character CJK term only matches a one-character run.
  In a term that also has other words ("A股", "3月11日", "G7峰会"), a one-character run at its
  end matches the start of a longer run ("A股市场", "3月11日に"), and one at its start the end
  of a longer run: the article's run goes on where the term's stops. Not when the word beside it
  ends (begins) with that same character ("中国 国", "전 전"): the bigrams cannot tell whether the
  article's character is that word's own ("中国人" read as 中国 and 国人), so the term matches only
  as written.

Rules are compiled once per rules file (:class:`Matcher`) into a trie of their terms' tokens, so
an article costs a dictionary look-up per token, and one more per token of each term it goes on
matching until that term is found, whatever the number of rules ("the president", "the prime
minister"... cost no more than one of them).
An article's title and text are matched on their first :data:`workers.textnorm.MATCHED_CHARS`
characters: a term found only after them does not match.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from langcodes.data_dicts import MACROLANGUAGES

from workers.alerts.rules import ArticleConditions, Rule, RuleSet, StoryConditions, language_forms
from workers.models import Article
from workers.textnorm import fold_dotless_i, is_unspaced, matched_text, normalize, tokenize


@dataclass(frozen=True, slots=True)
class _Proclitics:
    """The words a language writes joined in front of the next one (``languages``: it and its
    varieties), for the words of its script (``word``): slots of alternatives in the order they
    are written ("" for none). With an ``article``, the last slot is the article, and a token
    written with it takes the prefixes that end with it too, in its place."""

    languages: frozenset[str]
    word: re.Pattern[str]
    slots: tuple[tuple[str, ...], ...]
    article: str = ""
    contractions: tuple[tuple[str, str], ...] = ()  # (as composed, as written)

    def forms(self, token: str) -> frozenset[str]:
        forms = self._prefixed(token, article_only=False)
        if self.article and token.startswith(self.article):
            # the article, or the word's own letters (ألمانيا, إلكتروني and التزام after the alef
            # is folded): both readings
            forms |= self._prefixed(token[len(self.article) :], article_only=True)
        return frozenset(forms)

    def _prefixed(self, stem: str, *, article_only: bool) -> set[str]:
        forms = set()
        for parts in itertools.product(*self.slots):
            if article_only and parts[-1] != self.article:
                continue
            prefix = "".join(parts)
            for composed, written in self.contractions:
                prefix = prefix.replace(composed, written)
            forms.add(prefix + stem)
        return forms


@functools.lru_cache(maxsize=512)
def _language_codes(language: str | None) -> frozenset[str]:
    """An article's language as a rule may name it: its code, the code BCP 47 has now ("tl" is
    "fil"), and its macrolanguage (the detector's "arz" and "ary" are Arabic, "nn" and "nb"
    Norwegian). A rule's own codes (workers.alerts.rules) are never widened so: "nb" is not "nn"."""
    if not language:
        return frozenset()
    return language_forms(language) | {MACROLANGUAGES.get(language, language)}


def _with_varieties(macrolanguage: str) -> frozenset[str]:
    """The code of ``macrolanguage`` and of each language ISO 639-3 counts in it: an article's
    language may be one of those ("arz", "ary" from the detector, "apc" as a page declares it)."""
    return frozenset({macrolanguage}).union(
        code for code, macro in MACROLANGUAGES.items() if macro == macrolanguage
    )


_PROCLITICS = (
    # Arabic letters after normalize() (which folded the alef and yeh variants, and the kaf and
    # yeh of Persian keyboards): a conjunction (و ف), a preposition (ب ك ل), the article ال;
    # ل + ال is written لل.
    _Proclitics(
        _with_varieties("ar"),
        re.compile("^[\u0621-\u064a]+$"),
        (("", "و", "ف"), ("", "ب", "ك", "ل"), ("", "ال")),
        article="ال",
        contractions=(("لال", "لل"),),
    ),
    # Hebrew letters (normalize() removed the points): a conjunction (ו), a subordinator (ש, כש),
    # a preposition or the article (ה ב ל כ מ, מ + ה). ב ל כ absorb the article in unpointed
    # writing ("the Knesset" הכנסת, "in the Knesset" בכנסת), and a word-initial ה is as often
    # the word's own letter (הרצוג: להרצוג): a term is matched with the article added, never
    # taken off, so a rule names "כנסת" to find all of them. Modern and Ancient Hebrew (the
    # detector tells them apart); not Yiddish, which writes its prepositions and article apart.
    _Proclitics(
        frozenset({"he", "hbo"}),
        re.compile("^[\u05d0-\u05ea]+$"),
        (("", "ו"), ("", "ש", "כש"), ("", "ה", "ב", "ל", "כ", "מ", "מה")),
    ),
)
# Codes that name no one language: undetermined, multiple languages, no linguistic content (the
# detector's answer for text without words).
_NO_LANGUAGE = frozenset({"und", "mul", "zxx"})
# Every combination of proclitics an article's language puts in effect (:func:`_proclitics_in`).
_IN_EFFECT = ((), *((proclitics,) for proclitics in _PROCLITICS), _PROCLITICS)


def _proclitics_in(language: str | None) -> tuple[_Proclitics, ...]:
    """The proclitics of an article in ``language``: its language's, if any. When the language is
    unknown, each script's for the words written in it, as before languages counted: the detector
    names a language for any text, so that is an article without text or declared language, whose
    title's Arabic-letter words are more likely Arabic's (the language most written in its script)
    than not, and a missed alert costs a newsroom more than a spurious one."""
    if language is None or language in _NO_LANGUAGE:
        return _PROCLITICS
    return next(((p,) for p in _PROCLITICS if language in p.languages), ())


def _forms(token: str, in_effect: tuple[_Proclitics, ...]) -> frozenset[str]:
    for proclitics in in_effect:
        if proclitics.word.match(token):
            return proclitics.forms(token)
    return frozenset({token})


def clitic_forms(token: str, language: str | None) -> frozenset[str]:
    """The token as it may be written in an article in ``language`` (an ISO 639 code, None when
    unknown): with the proclitics of Arabic or Hebrew in those languages, or when the language is
    unknown and the token is in their script; else the token alone."""
    return _forms(token, _proclitics_in(language))


@dataclass(frozen=True, slots=True)
class StoryInfo:
    """The story an article belongs to, as the story tracker knows it: the outlets (registrable
    domains, :func:`workers.urlnorm.registrable_domain`) that reported it, each with the time it
    first did."""

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
                tuple(tokenize(fold_dotless_i(normalize(matched_text(field)))))
                for field in (article.title or "", article.text)
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


@dataclass(slots=True)
class _Node:
    """A prefix of the terms' tokens: the terms it completes, if any, and its continuations, keyed
    by a term token (or a run edge key, :func:`_trie_keys`)."""

    children: dict[str, _Node] = field(default_factory=dict)
    term: int | None = None
    # The terms it is a prefix of, by index: a term's tokens hashed at each of its nodes made
    # loading a term of n tokens take n² (a term of 100,000 words, 22 s).
    below: set[int] = field(default_factory=set)


# Keys of a one-character run at a term's end (start) that matches a run beginning (ending) with
# it; no token holds these characters.
_RUN_STARTING = "<"
_RUN_ENDING = ">"


def _trie_keys(tokens: tuple[str, ...]) -> list[str]:
    keys = list(tokens)
    # Not when the token next to it ends (begins) with the character: the article's gram after
    # (before) it may be in the same run, the character read twice ("中国 国" in "中国人").
    if len(tokens) > 1:
        if len(tokens[-1]) == 1 and is_unspaced(tokens[-1]) and tokens[-2][-1] != tokens[-1]:
            keys[-1] = _RUN_STARTING + tokens[-1]
        if len(tokens[0]) == 1 and is_unspaced(tokens[0]) and tokens[1][0] != tokens[0]:
            keys[0] = _RUN_ENDING + tokens[0]
    return keys


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
        self._trie = _Node()
        # Each term's index, the same for terms written differently that match alike ("Aleppo",
        # "ALEPPO"): the trie and the terms found hold these.
        self._term_index: dict[tuple[str, ...], int] = {}
        words: set[str] = set()
        run_starts: set[str] = set()
        run_ends: set[str] = set()
        for rule in self._article_rules:
            for term in rule.conditions.terms:  # type: ignore[union-attr]
                if term.tokens in self._term_index:
                    continue
                index = self._term_index[term.tokens] = len(self._term_index)
                node = self._trie
                for key in _trie_keys(term.tokens):
                    node = node.children.setdefault(key, _Node())
                    node.below.add(index)
                    if key[0] == _RUN_STARTING:
                        run_starts.add(key[1])
                    elif key[0] == _RUN_ENDING:
                        run_ends.add(key[1])
                node.term = index
                words.update(term.tokens)
        self._run_starts = frozenset(run_starts)
        self._run_ends = frozenset(run_ends)
        # For each combination of proclitics in effect, built here: the term tokens an article's
        # token may be written for, so that an article never computes a form.
        self._words_of_form: dict[tuple[_Proclitics, ...], dict[str, tuple[str, ...]]] = {}
        for in_effect in _IN_EFFECT:
            words_of_form: dict[str, list[str]] = {}
            for word in words:
                for form in _forms(word, in_effect):
                    words_of_form.setdefault(form, []).append(word)
            self._words_of_form[in_effect] = {form: tuple(w) for form, w in words_of_form.items()}

    def match_article(self, article: ArticleFacts) -> list[ArticleMatch]:
        found = self._found_terms(article.token_fields, self._words_of_form[_proclitics_in(article.language)])
        matches = []
        for rule in self._article_rules:
            conditions: ArticleConditions = rule.conditions  # type: ignore[assignment]
            if conditions.domains and not covers(conditions.domains, article.domain):
                continue
            if conditions.languages and not conditions.languages & _language_codes(article.language):
                continue
            if conditions.urgent is not None and article.urgent is not conditions.urgent:
                continue
            if any(self._term_index[term.tokens] in found for term in conditions.exclude_terms):
                continue
            if not all(self._term_index[term.tokens] in found for term in conditions.all_terms):
                continue
            hits = [term.text for term in conditions.any_terms if self._term_index[term.tokens] in found]
            if conditions.any_terms and not hits:
                continue
            hits += [term.text for term in conditions.all_terms]
            matches.append(ArticleMatch(rule, tuple(dict.fromkeys(hits))))
        return matches

    @property
    def watches_stories(self) -> bool:
        """Whether a rule looks at stories (a breaking-story rule is on)."""
        return bool(self._story_rules)

    def match_story(self, story: StoryInfo) -> list[StoryMatch]:
        matches = []
        for rule in self._story_rules:
            outlets = breaking_outlets(rule.conditions, story)  # type: ignore[arg-type]
            if outlets:
                matches.append(StoryMatch(rule, outlets))
        return matches

    def _found_terms(
        self, token_fields: tuple[tuple[str, ...], ...], words_of_form: dict[str, tuple[str, ...]]
    ) -> set[int]:
        """The indexes of the terms found in the fields."""
        found: set[int] = set()
        get = words_of_form.get
        run_edges = self._run_starts or self._run_ends
        for tokens in token_fields:
            # The trie nodes that the tokens up to here end in: one per term prefix read so far.
            reached: list[_Node] = []
            for token in tokens:
                keys = self._keys_of(token, words_of_form) if run_edges else get(token, ())
                if not keys:  # the common case: no term goes on or starts here
                    reached = []
                    continue
                reached.append(self._trie)
                # a prefix of terms all found already reads no further (a long term repeated in an
                # article would be read again at each of its tokens)
                reached = [
                    child for node in reached for key in keys
                    if (child := node.children.get(key)) and not child.below <= found
                ]
                found.update(node.term for node in reached if node.term is not None)
        return found

    def _keys_of(self, token: str, words_of_form: dict[str, tuple[str, ...]]) -> tuple[str, ...]:
        keys = words_of_form.get(token, ())
        if token[0] in self._run_starts:
            keys += (_RUN_STARTING + token[0],)
        if token[-1] in self._run_ends:
            keys += (_RUN_ENDING + token[-1],)
        return keys


def breaking_outlets(conditions: StoryConditions, story: StoryInfo) -> tuple[tuple[str, datetime], ...]:
    """The earliest ``min_outlets`` outlets whose first reports fall within ``within`` of each
    other, or ``()`` when the story has not broken (yet)."""
    seen = sorted(
        ((first_seen, outlet) for outlet, first_seen in story.outlets.items()
         if not conditions.domains or _counts(conditions.domains, outlet)),
    )
    last_start = len(seen) - conditions.min_outlets
    for start in range(last_start + 1):
        window = seen[start : start + conditions.min_outlets]
        if window[-1][0] - window[0][0] <= conditions.within:
            return tuple((outlet, first_seen) for first_seen, outlet in window)
    return ()


def _counts(domains: frozenset[str], outlet: str) -> bool:
    """A story rule's ``domains`` count ``outlet`` (a registrable domain, as the story tracker
    counts outlets) when one of them is it, a parent of it, or one of its hosts: a rule naming
    ``edition.cnn.com`` counts ``cnn.com``, whose hosts the story no longer tells apart."""
    return covers(domains, outlet) or any(domain.endswith("." + outlet) for domain in domains)
