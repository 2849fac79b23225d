"""The README's first command, ``wirefeed demo``, on the real stack: every sample page comes out,
and both seed articles are printed whole, with none of the chrome lines named in
shared/seeds/README.md in their bodies and every line of their article."""

from __future__ import annotations

import subprocess
import sys

import pytest
from worker_harness import REPO, WorkerProcess, settings_env

from tests.shared_data import SEEDS

from workers import SAMPLE_PAGES
from workers.settings import Settings

pytestmark = pytest.mark.integration

SEED_PAGES = {
    "https://irfaasawtak.example/world/2016/12/08/kerry-lavrov-aleppo": ("000_14b0707699333d86", 35),
    "https://masr-news.example/egypt/2016/12/08/aleppo-ceasefire-talks": ("004_27e70a19afe18911", 27),
}


def sections(output: str) -> dict[str, list[str]]:
    """The demo's report, page by page: the URL line, then that page's lines."""
    found: dict[str, list[str]] = {}
    for block in output.split("=" * 100)[1:]:
        url, *lines = block.strip("\n").split("\n")
        found[url] = lines
    return found


def flat(text: str) -> str:
    return " ".join(text.split())


def test_the_demo_shows_every_sample_page_and_both_seed_articles_without_their_chrome(settings: Settings):
    # the demo's worker gets its own web port, as a second worker on a host must
    env = settings_env(WorkerProcess(settings, REPO / "unused.log").settings)
    done = subprocess.run(
        [sys.executable, "-m", "workers", "demo"], env=env, cwd=REPO, capture_output=True, text=True, timeout=240
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = sections(done.stdout)
    assert len(report) == len(list(SAMPLE_PAGES.glob("*.html")))
    assert all(any(line.startswith("  title     :") for line in lines) for lines in report.values()), report

    for url, (seed, body_end) in SEED_PAGES.items():
        lines = report[url]
        body = flat(" ".join(lines[lines.index("  body      :") + 1 :]))
        assert not body.endswith("..."), "a seed article is printed whole"
        seed_lines = (SEEDS / f"{seed}.txt").read_text(encoding="utf-8").split("\n")
        chrome = [flat(line) for line in [seed_lines[0], *seed_lines[body_end:]] if line.strip()]
        article = [flat(line) for line in seed_lines[6:body_end] if line.strip()]
        assert chrome and article
        assert [line for line in chrome if line in body] == [], seed
        assert [line for line in article if line not in body] == [], seed
