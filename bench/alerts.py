"""Benchmark of alert matching (workers.alerts.match) on real article texts.

    python bench/alerts.py [--bench DIR] [--out FILE]

Prints one JSON document (and writes it to ``--out``): the time to match one article against
rule sets of growing size, on the ground-truth texts of every page of ``--bench`` that has one
(scrapinghub, daniel, fundus: many languages and scripts), tokenisation apart from matching.
Rules are built from words of those texts, so they are found as often as a newsroom's: each
rule lists one word of six or more letters and one phrase of two to four words starting at a
random word. A second
figure is the worst case of an index by first word: phrases that all begin with the same words
("the president 0" ... "the president 999") on a text that repeats them. The last are the worst
cases of a trie read in one pass: a long term whose tokens repeat, on a text that repeats them
(every token starts a partial match of it again), and terms that are prefixes of each other.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import REPO, emit, read_jsonl  # noqa: E402  (puts tests/ on the path too)
from builders import article  # noqa: E402

from workers.alerts.match import ArticleFacts, Matcher  # noqa: E402
from workers.alerts.rules import parse_rules  # noqa: E402
from workers.textnorm import normalize, tokenize  # noqa: E402

RULE_COUNTS = (10, 100, 1000)
SEED = 20261124


def texts(bench: Path) -> list[tuple[str, str]]:
    """(language, ground-truth text) of every page that has one, in a fixed order."""
    found = []
    for truth in sorted(bench.glob("*/ground_truth.jsonl")):
        for page in read_jsonl(truth):
            if page.get("text"):
                found.append((page.get("language") or "und", page["text"]))
    return found


def ruleset(rules: list[list[str]]) -> Matcher:
    lines = ["version: 1", "rules:"]
    for number, terms in enumerate(rules):
        lines.append(f"  - {{id: r{number}, kind: article, match: {{terms: {json.dumps(terms, ensure_ascii=False)}}}}}")
    return Matcher(parse_rules("\n".join(lines) + "\n", source="bench", secret_names=None))


def sampled_rules(corpus: list[tuple[str, str]], count: int, rng: random.Random) -> list[list[str]]:
    rules = []
    while len(rules) < count:
        words = normalize(rng.choice(corpus)[1]).split()
        if len(words) < 8:
            continue
        start = rng.randrange(len(words) - 4)
        phrase = " ".join(words[start : start + rng.randint(2, 4)])
        word = rng.choice(words)
        if len(word) < 6:  # a keyword, not "the"
            continue
        if tokenize(phrase) and tokenize(word):
            rules.append([word, phrase])
    return rules


def facts(language: str, text: str) -> ArticleFacts:
    page = article("https://bench.wirefeed.invalid/a", text, fetched_at=datetime(2026, 11, 24, tzinfo=UTC), language=language)
    return ArticleFacts.of(page, urgent=False)


def timed(matcher: Matcher, articles: list[ArticleFacts]) -> tuple[list[float], int]:
    times, matches = [], 0
    for article in articles:
        start = time.perf_counter()
        matches += len(matcher.match_article(article))
        times.append(time.perf_counter() - start)
    return times, matches


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bench", type=Path, default=REPO.parent / "shared" / "bench")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    corpus = texts(args.bench)
    start = time.perf_counter()
    articles = [facts(language, text) for language, text in corpus]
    tokenising = time.perf_counter() - start
    rng = random.Random(SEED)
    by_rules = {}
    for count in RULE_COUNTS:
        times, matches = timed(ruleset(sampled_rules(corpus, count, rng)), articles)
        by_rules[str(count)] = {
            "ms_per_article_mean": round(1000 * statistics.fmean(times), 3),
            "ms_per_article_p99": round(1000 * statistics.quantiles(times, n=100)[98], 3),
            "matches_per_article": round(matches / len(articles), 2),
        }
    shared_start = ruleset([[f"the president {number}"] for number in range(1000)])
    repeated = facts("en", "the president said " * 5000)
    start = time.perf_counter()
    shared_start.match_article(repeated)
    shared_first_words_s = time.perf_counter() - start
    repeated_terms = {
        "one_term_of_100_han_on_200000_han_s": (ruleset([["哈" * 100]]), facts("zh", "哈" * 200_000)),
        "one_term_of_500_words_on_60000_words_s": (ruleset([["ha " * 500]]), facts("en", "ha " * 60_000)),
        "199_nested_terms_on_90000_words_s": (
            ruleset([["a " * length] for length in range(1, 200)]), facts("en", "a " * 90_000)
        ),
    }
    worst_cases = {}
    for name, (matcher, text) in repeated_terms.items():
        start = time.perf_counter()
        matcher.match_article(text)
        worst_cases[name] = round(time.perf_counter() - start, 3)
    emit(
        {
            "articles": len(articles),
            "tokens_per_article_mean": round(statistics.fmean(sum(map(len, a.token_fields)) for a in articles), 1),
            "tokenising_ms_per_article": round(1000 * tokenising / len(articles), 3),
            "matching_by_rule_count": by_rules,
            "shared_first_words_1000_rules_15000_tokens_s": round(shared_first_words_s, 3),
            "repeated_terms": worst_cases,
        },
        args.out,
    )


if __name__ == "__main__":
    main()
