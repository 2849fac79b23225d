#!/usr/bin/env python3
"""Extraction benchmark: the project's extraction stage against plain trafilatura, on every
evaluation set, scored by the official scorer (shared/bench/score.py).

    python bench/extraction.py [--bench ../shared/bench] --pred-root OUT [--jobs 2] [--record FILE]

What it does, as the pipeline would:
* pages are delivered grouped by site (domain of the page URL; DAnIEL ids carry the domain) in a
  shuffled but fixed order (``--seed``), so the site-learned chrome learns as it goes, through the
  same interface as in production (``MemoryChromeIndex``, or a real Redis with ``--redis-url``):
  ``known_chrome(domain)`` before extraction, ``observe(domain, article_id, block_hashes)`` after;
* the extraction runs in a process pool, with ``--jobs`` crawlers each delivering one site's pages
  one after the other;
* predictions go to OUT/<dataset>/<id>.txt, plain trafilatura's (``extract(include_comments=False)``,
  same decoded input, same run, in processes of its own where trafilatura is as released) to
  OUT/_plain/<dataset>/<id>.txt; the official scorer scores both;
* the datasets are the folders of ``--bench`` that hold a ``ground_truth.jsonl`` (as score.py
  finds them) or a ``manifest.jsonl`` (the Arabic set's layout), or those ``--datasets`` names;
* metadata is scored on every dataset whose ground truth gives it (fundus: title exact match
  after white-space normalisation, authors F1 on names as written after white-space
  normalisation, published date same day in the ground truth's time zone) and on manifest
  datasets (the Arabic set: body text with the scorer's own bag-of-words metric, snippets, dates,
  titles);
* the seed pages, wrapped in the aggregator template of tests/unit/test_extract_seeds.py, are
  extracted after a few other pages of their (shared) domain and their chrome lines counted.

The summary JSON is printed and written to OUT/summary.json (and ``--record FILE``).
``--set name=value`` overrides an ExtractionOptions field (``chrome.<name>`` a chrome index
setting) for measuring alternatives.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import importlib.util
import json
import random
import re
import statistics
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from common import decoded_html, read_jsonl, truth_url  # noqa: E402

from workers.chrome_index import ChromeIndexSettings, MemoryChromeIndex, RedisChromeIndex  # noqa: E402
from workers.stages.extract import ExtractionOptions, use_trafilatura_as_released  # noqa: E402

GROUND_TRUTH = "ground_truth.jsonl"
# A dataset of expected texts, snippets, dates and titles per page (the Arabic set's layout).
MANIFEST = "manifest.jsonl"


# --- pages ------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Page:
    dataset: str
    id: str
    path: Path
    url: str
    site: str
    truth: dict[str, Any]


def _site(dataset: str, page_id: str, url: str | None) -> str:
    if url and url.startswith(("http://", "https://")):
        host = (urlsplit(url).hostname or "").lower()
        if host in ("web.archive.org", "archive.org"):
            match = re.search(r"/web/\d+[a-z_]*/(?:https?://)?([^/]+)", url)
            host = match.group(1).lower() if match else host
        return host.removeprefix("www.")
    if dataset == "daniel":
        parts = page_id.split("_")
        if len(parts) >= 3:
            return parts[1].removeprefix("www.")
    return f"{dataset}:{page_id}"


def find_datasets(bench: Path, named: str | None) -> tuple[str, ...]:
    """The datasets of ``bench``: those ``named`` (comma-separated), each of which must be there,
    else every folder holding a ground truth or a manifest."""
    found = sorted(
        folder.name for folder in bench.iterdir()
        if folder.is_dir() and ((folder / GROUND_TRUTH).is_file() or (folder / MANIFEST).is_file())
    )
    if not named:
        if not found:
            raise SystemExit(f"{bench}: no <dataset>/{GROUND_TRUTH} or <dataset>/{MANIFEST} in it")
        return tuple(found)
    datasets = tuple(name.strip() for name in named.split(",") if name.strip())
    if missing := [name for name in datasets if name not in found]:
        raise SystemExit(f"{bench}: no dataset {', '.join(missing)} (it has {', '.join(found) or 'none'})")
    return datasets


def load_pages(bench: Path, datasets: tuple[str, ...]) -> list[Page]:
    pages = []
    for dataset in datasets:
        folder = bench / dataset
        if not (folder / GROUND_TRUTH).is_file():
            for row in read_jsonl(folder / MANIFEST):
                url = row.get("url") or ""
                pages.append(Page(dataset, row["id"], folder / row["file"], url, _site(dataset, row["id"], url), row))
            continue
        for row in read_jsonl(folder / GROUND_TRUTH):
            url = truth_url(row)
            pages.append(Page(dataset, row["id"], folder / f"{row['id']}.html", url, _site(dataset, row["id"], url), row))
    return pages


def crawl_order(pages: list[Page], seed: int) -> list[list[Page]]:
    """Sites in a shuffled order, each site's pages in a shuffled order (fixed by the seed)."""
    rng = random.Random(seed)
    by_site: dict[str, list[Page]] = {}
    for page in sorted(pages, key=lambda p: (p.site, p.dataset, p.id)):
        by_site.setdefault(page.site, []).append(page)
    sites = sorted(by_site)
    rng.shuffle(sites)
    ordered = []
    for site in sites:
        group = by_site[site]
        rng.shuffle(group)
        ordered.append(group)
    return ordered


# --- work done in the pool --------------------------------------------------------------------


def run_project(path: str, url: str, options: ExtractionOptions, known: frozenset[str]) -> dict[str, Any]:
    from workers.stages.article import article_id_for, canonical_url
    from workers.stages.extract import extract_document
    from workers.stages.outcome import Kept

    html = decoded_html(Path(path).read_bytes())
    start = time.perf_counter()
    result = extract_document(html, url, options, known_chrome=known)
    elapsed = time.perf_counter() - start
    if not isinstance(result, Kept):
        return {"text": "", "outcome": f"{type(result).__name__}:{result.reason}", "seconds": elapsed}
    doc = result.value
    page_id = article_id_for(canonical_url(url, doc.canonical_url)) if url else None
    return {
        "text": doc.text,
        "outcome": "kept",
        "seconds": elapsed,
        "page_id": page_id,
        "title": doc.title,
        "authors": list(doc.authors),
        "published": doc.published_at.isoformat() if doc.published_at else None,
        "modified": doc.modified_at.isoformat() if doc.modified_at else None,
        "language": doc.language,
        "declared_language": doc.declared_language,
        "urgent": doc.urgent,
        "canonical_url": doc.canonical_url,
        "site_name": doc.site_name,
        "block_hashes": sorted(doc.block_hashes),
        "removed": [(r.reason, r.text) for r in doc.removed],
        "chrome_withheld": doc.chrome_withheld,
        "recovered_paragraphs": doc.recovered_paragraphs,
    }


def run_plain(path: str, url: str) -> dict[str, Any]:
    import trafilatura

    html = decoded_html(Path(path).read_bytes())
    start = time.perf_counter()
    try:
        text = trafilatura.extract(html, url=url or None, include_comments=False) or ""
    except Exception as exc:  # noqa: BLE001 - scored as an empty prediction, and counted
        return {"text": "", "seconds": time.perf_counter() - start, "error": f"{type(exc).__name__}: {exc}"}
    return {"text": text, "seconds": time.perf_counter() - start}


# --- scoring ----------------------------------------------------------------------------------


def _scorer(bench: Path) -> Any:
    spec = importlib.util.spec_from_file_location("official_score", bench / "score.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def official_scores(bench: Path, pred_root: Path, out_json: Path) -> dict[str, Any]:
    subprocess.run(
        [sys.executable, str(bench / "score.py"), "--bench", str(bench), "--pred-root", str(pred_root),
         "--json", str(out_json)],
        check=True, stdout=subprocess.DEVNULL,
    )
    return json.loads(out_json.read_text())


def headline(scores: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for name, s in scores.items():
        if name.startswith(" "):
            continue
        entry: dict[str, Any] = {"pages": s["pages"], "empty": s["empty_pred"]}
        if "bow" in s:
            entry["bow_P"], entry["bow_R"], entry["bow_F1"] = (round(s["bow"][k], 4) for k in ("P_mean", "R_mean", "F1_mean"))
        if "sh4" in s:
            entry["sh4_P"], entry["sh4_R"], entry["sh4_F1"] = (round(s["sh4"][k], 4) for k in ("P", "R", "F1"))
        if "snip" in s:
            entry["snip_P"], entry["snip_R"], entry["snip_F1"], entry["leak"] = (
                round(s["snip"][k], 4) for k in ("P", "R", "F1", "leak")
            )
        out[name] = entry
    return out


def white_space_normalised(value: str | None) -> str:
    return " ".join((value or "").split())


def same_day(predicted: str | None, expected: str | None) -> bool:
    """Both name the same calendar day, the prediction read in the expected time's zone when both
    carry one (a date alone is compared as written)."""
    if not predicted or not expected:
        return False
    try:
        got, want = datetime.fromisoformat(predicted), datetime.fromisoformat(expected)
    except ValueError:
        return predicted[:10] == expected[:10]
    if got.tzinfo is not None and want.tzinfo is not None:
        got = got.astimezone(want.tzinfo)
    return got.date() == want.date()


_METADATA_FIELDS = ("title", "authors", "published")


def metadata_scores(pages: list[Page], results: dict[tuple[str, str], dict[str, Any]], scorer: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for dataset in dict.fromkeys(page.dataset for page in pages):
        of_dataset = [page for page in pages if page.dataset == dataset]
        if all(field in page.truth for page in of_dataset for field in _METADATA_FIELDS):
            out[dataset] = _ground_truth_metadata(of_dataset, results)
        elif all("file" in page.truth for page in of_dataset):  # a manifest
            out[dataset] = _manifest_metadata(of_dataset, results, scorer)
    return out


def _ground_truth_metadata(pages: list[Page], results: dict[tuple[str, str], dict[str, Any]]) -> dict[str, Any]:
    title_ok = date_ok = 0
    author_f1 = []
    misses: dict[str, list[Any]] = {"title": [], "date": []}
    for page in pages:
        r = results.get((page.dataset, page.id), {})
        if white_space_normalised(r.get("title")) == white_space_normalised(page.truth.get("title")):
            title_ok += 1
        else:
            misses["title"].append([page.id, r.get("title"), page.truth.get("title")])
        if same_day(r.get("published"), page.truth.get("published")):
            date_ok += 1
        else:
            misses["date"].append([page.id, r.get("published"), page.truth.get("published")])
        gold = {white_space_normalised(a) for a in page.truth.get("authors") or []}
        pred = {white_space_normalised(a) for a in r.get("authors") or []}
        if not gold and not pred:
            author_f1.append(1.0)
        else:
            tp = len(gold & pred)
            p = tp / len(pred) if pred else 0.0
            rc = tp / len(gold) if gold else 0.0
            author_f1.append(2 * p * rc / (p + rc) if p + rc else 0.0)
    return {
        "pages": len(pages),
        "title_exact": round(title_ok / len(pages), 4),
        "authors_F1": round(statistics.mean(author_f1), 4),
        "published_same_day": round(date_ok / len(pages), 4),
        "misses": misses,
    }


def _manifest_metadata(pages: list[Page], results: dict[tuple[str, str], dict[str, Any]], scorer: Any) -> dict[str, Any]:
    bows, snips, dates, titles = [], [], [], []
    rows = []
    for page in pages:
        r = results.get((page.dataset, page.id), {})
        t = page.truth
        row: dict[str, Any] = {"id": page.id, "language": r.get("language"), "urgent": r.get("urgent")}
        if t.get("expected_text"):
            s = scorer.bow_scores(t["expected_text"], r.get("text") or "")
            bows.append(s["F1"])
            row["bow_F1"] = round(s["F1"], 4)
        if t.get("expected_with") is not None:
            rec = {"with": t["expected_with"], "without": t.get("expected_without") or []}
            tp, fp, fn, tn = scorer.snippet_counts(rec, r.get("text") or "")
            snips.append((tp, fp, fn, tn))
            row["snip"] = [tp, fp, fn, tn]
        expected_date = t.get("expected_published_date") or t.get("expected_published")
        if expected_date:
            dates.append(same_day(r.get("published"), expected_date))
            row["date"] = [r.get("published"), expected_date]
        if t.get("expected_title"):
            ok = white_space_normalised(r.get("title")) == white_space_normalised(t["expected_title"])
            titles.append(ok)
            row["title_ok"] = ok
        rows.append(row)
    snip = scorer.snippet_aggregate(snips) if snips else {}
    return {
        "pages": len(pages),
        "bow_F1_mean": round(statistics.mean(bows), 4) if bows else None,
        "bow_pages": len(bows),
        "snip_F1": round(snip.get("F1", 0.0), 4) if snips else None,
        "leak": round(snip.get("leak", 0.0), 4) if snips else None,
        "published_same_day": round(sum(dates) / len(dates), 4) if dates else None,
        "date_pages": len(dates),
        "title_exact": round(sum(titles) / len(titles), 4) if titles else None,
        "title_pages": len(titles),
        # the language detected is the one the manifest gives the page
        "language_as_given": sum(1 for page, row in zip(pages, rows, strict=True) if row["language"] == page.truth.get("lang")),
        "pages_detail": rows,
    }


# --- seeds ------------------------------------------------------------------------------------


def seed_check(seeds: Path, options: ExtractionOptions, chrome: ChromeIndexSettings) -> dict[str, Any] | None:
    helper = REPO / "tests" / "unit" / "test_extract_seeds.py"
    if not helper.exists() or not seeds.exists():
        return None
    spec = importlib.util.spec_from_file_location("seed_helper", helper)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    try:
        spec.loader.exec_module(module)
        return module.seed_report(seeds, options, chrome)
    except Exception as exc:  # noqa: BLE001 - the seed check must not lose the whole run
        return {"error": f"{type(exc).__name__}: {exc}"}


# --- driver -----------------------------------------------------------------------------------


def _coerce(value: str, current: Any) -> Any:
    if isinstance(current, bool):
        return value.lower() in ("1", "true", "yes", "on")
    if isinstance(current, int):
        return int(value)
    if isinstance(current, float):
        return float(value)
    return value


def build_config(overrides: list[str]) -> tuple[ExtractionOptions, ChromeIndexSettings]:
    options, chrome = ExtractionOptions(), ChromeIndexSettings()
    for item in overrides:
        name, _, value = item.partition("=")
        if name.startswith("chrome."):
            key = name.removeprefix("chrome.")
            chrome = dataclasses.replace(chrome, **{key: _coerce(value, getattr(chrome, key))})
        else:
            options = dataclasses.replace(options, **{name: _coerce(value, getattr(options, name))})
    return options, chrome


async def run_project_pages(
    ordered: list[list[Page]], options: ExtractionOptions, index: Any, pool: ProcessPoolExecutor, jobs: int
) -> dict[tuple[str, str], dict[str, Any]]:
    """Each of ``jobs`` crawlers takes the next site of ``ordered`` and delivers its pages one after
    the other, as a crawl of one site at a time does."""
    loop = asyncio.get_running_loop()
    results: dict[tuple[str, str], dict[str, Any]] = {}
    sites = iter(ordered)

    async def crawler() -> None:
        for group in sites:  # shared: each site goes to one crawler
            for page in group:
                known = await index.known_chrome(page.site)
                result = await loop.run_in_executor(pool, run_project, str(page.path), page.url, options, known)
                result["known_chrome"] = len(known)
                results[(page.dataset, page.id)] = result
                if result["outcome"] == "kept":
                    page_id = result.get("page_id") or f"{page.dataset}/{page.id}"
                    await index.observe(page.site, page_id, result["block_hashes"])

    await asyncio.gather(*(crawler() for _ in range(jobs)))
    return results


async def run_plain_pages(pages: list[Page], pool: ProcessPoolExecutor) -> dict[tuple[str, str], dict[str, Any]]:
    loop = asyncio.get_running_loop()
    futures = {(p.dataset, p.id): loop.run_in_executor(pool, run_plain, str(p.path), p.url) for p in pages}
    return {key: await future for key, future in futures.items()}


def write_predictions(root: Path, results: dict[tuple[str, str], dict[str, Any]]) -> None:
    for (dataset, page_id), result in results.items():
        folder = root / dataset
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{page_id}.txt").write_text(result.get("text") or "", encoding="utf-8")


def timing(results: dict[tuple[str, str], dict[str, Any]]) -> dict[str, float]:
    seconds = sorted(r["seconds"] for r in results.values())
    if not seconds:
        return {}
    return {
        "median_ms": round(1000 * statistics.median(seconds), 1),
        "mean_ms": round(1000 * statistics.mean(seconds), 1),
        "p90_ms": round(1000 * seconds[int(0.9 * (len(seconds) - 1))], 1),
        "max_ms": round(1000 * seconds[-1], 1),
    }


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    bench = Path(args.bench).resolve()
    pred_root = Path(args.pred_root).resolve()
    datasets = find_datasets(bench, args.datasets)
    options, chrome = build_config(args.set or [])
    pages = load_pages(bench, datasets)
    ordered = crawl_order(pages, args.seed)

    client = None
    if args.redis_url:
        import redis.asyncio as aioredis

        client = aioredis.Redis.from_url(args.redis_url)
        prefix = f"wfbench{int(time.time())}"
        index: Any = RedisChromeIndex(client, prefix, chrome)
    else:
        index = MemoryChromeIndex(chrome)

    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        project = await run_project_pages(ordered, options, index, pool, args.jobs)
        project_wall = time.perf_counter() - started
    plain: dict[tuple[str, str], dict[str, Any]] = {}
    if not args.no_plain:
        with ProcessPoolExecutor(max_workers=args.jobs, initializer=use_trafilatura_as_released) as pool:
            plain = await run_plain_pages(pages, pool)
    if client is not None:
        async for key in client.scan_iter(match=f"{prefix}:*", count=1000):
            await client.delete(key)
        await client.aclose()

    write_predictions(pred_root, project)
    scored_datasets = [d for d in datasets if (bench / d / GROUND_TRUTH).is_file()]
    summary: dict[str, Any] = {
        "command": " ".join(sys.argv),
        "options": dataclasses.asdict(options),
        "chrome_index": dataclasses.asdict(chrome),
        "seed": args.seed,
        "pages": len(pages),
        "sites": len(ordered),
    }
    scorer = _scorer(bench)
    if scored_datasets:
        project_scores = official_scores(bench, pred_root, pred_root / "scores.json")
        summary["project"] = headline({k: v for k, v in project_scores.items() if k in scored_datasets})
    if plain:
        write_predictions(pred_root / "_plain", plain)
        if scored_datasets:
            plain_scores = official_scores(bench, pred_root / "_plain", pred_root / "_plain" / "scores.json")
            summary["plain"] = headline({k: v for k, v in plain_scores.items() if k in scored_datasets})
        manifests = [p for p in pages if not (bench / p.dataset / GROUND_TRUTH).is_file()]
        for dataset, scores in metadata_scores(manifests, plain, scorer).items():
            summary[f"plain_{dataset}"] = {k: v for k, v in scores.items() if k in ("bow_F1_mean", "snip_F1", "leak")}
    summary["metadata"] = metadata_scores(pages, project, scorer)
    removed: dict[str, int] = {}
    for result in project.values():
        for reason, _ in result.get("removed", []):
            removed[reason] = removed.get(reason, 0) + 1
    summary["removed_blocks"] = removed
    recovered = [r["recovered_paragraphs"] for r in project.values() if r.get("recovered_paragraphs")]
    summary["recovered_paragraphs"] = {"pages": len(recovered), "paragraphs": sum(recovered)}
    summary["chrome_withheld_pages"] = sum(1 for r in project.values() if r.get("chrome_withheld"))
    summary["pages_with_known_chrome"] = sum(1 for r in project.values() if r.get("known_chrome"))
    summary["outcomes"] = {}
    for result in project.values():
        summary["outcomes"][result["outcome"]] = summary["outcomes"].get(result["outcome"], 0) + 1
    summary["timing_project"] = timing(project) | {"wall_s": round(project_wall, 1), "jobs": args.jobs}
    summary["slowest_project"] = [
        [f"{dataset}/{page_id}", round(1000 * result["seconds"])]
        for (dataset, page_id), result in sorted(project.items(), key=lambda item: -item[1]["seconds"])[:5]
    ]
    if plain:
        summary["timing_plain"] = timing(plain)
        summary["plain_errors"] = {f"{d}/{i}": r["error"] for (d, i), r in plain.items() if "error" in r}
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bench", default=str(REPO.parent / "shared" / "bench"))
    parser.add_argument("--pred-root", required=True)
    parser.add_argument("--datasets", help="comma-separated names of datasets of --bench (default: all it has)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=20161208)
    parser.add_argument("--redis-url", help="use a real Redis for the chrome index (keys cleaned after)")
    parser.add_argument("--set", action="append", metavar="NAME=VALUE", help="override an option (chrome.NAME for the index)")
    parser.add_argument("--no-plain", action="store_true", help="skip plain trafilatura (faster, no comparison)")
    parser.add_argument("--seeds", default=str(REPO.parent / "shared" / "seeds"), help="the seed pages' folder")
    parser.add_argument("--no-seeds", action="store_true")
    parser.add_argument("--record", help="also write the summary JSON to this file")
    parser.add_argument("--quiet", action="store_true", help="print the headline figures only")
    args = parser.parse_args()
    summary = asyncio.run(main_async(args))
    if not args.no_seeds:
        summary["seeds"] = seed_check(Path(args.seeds), *build_config(args.set or []))
    pred_root = Path(args.pred_root)
    pred_root.mkdir(parents=True, exist_ok=True)
    text = json.dumps(summary, ensure_ascii=False, indent=2)
    (pred_root / "summary.json").write_text(text, encoding="utf-8")
    if args.record:
        Path(args.record).parent.mkdir(parents=True, exist_ok=True)
        Path(args.record).write_text(text + "\n", encoding="utf-8")
    if args.quiet:
        brief = {k: summary.get(k) for k in ("project", "plain", "plain_errors", "removed_blocks", "recovered_paragraphs", "timing_project")}
        brief |= {k: v for k, v in summary.items() if k.startswith("plain_") and k not in ("plain_errors",)}
        meta = summary.get("metadata", {})
        brief["metadata"] = {
            name: {k: v for k, v in values.items() if k not in ("misses", "pages_detail")} for name, values in meta.items()
        }
        brief["seeds"] = (summary.get("seeds") or {}).get("summary") if summary.get("seeds") else None
        print(json.dumps(brief, ensure_ascii=False, indent=1))
    else:
        print(text)


if __name__ == "__main__":
    main()
