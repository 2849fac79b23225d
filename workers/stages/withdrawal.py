"""Whether a crawled page withdraws the article its URL made: its publisher took it down (404 Not
Found, 410 Gone, 451 Unavailable For Legal Reasons: a retraction, a legal takedown).

Decided from the page's own data (its status and ``fetched_at``), never the worker's clock, so
that a redelivery or a replay withdraws exactly as the first run did. Which article, and whether
the withdrawal is newer than the article's version, is the store's to say
(:meth:`workers.sinks.redis_store.ArticleStore.withdraw`)."""

from __future__ import annotations

from typing import get_args

from workers.models import RawPage, Withdrawal, WithdrawingStatus

WITHDRAWING_STATUSES: frozenset[int] = frozenset(get_args(WithdrawingStatus))


def withdrawal_by(page: RawPage) -> Withdrawal | None:
    """The withdrawal the page says, or None when its status says nothing about the article (a
    2xx page, a server error, a refused crawler, a redirect without its target)."""
    if page.status not in WITHDRAWING_STATUSES:
        return None
    return Withdrawal(at=page.fetched_at, http_status=page.status)


def withdrawn_urls(page: RawPage) -> tuple[str, ...]:
    """The URLs whose article the page withdraws, in the form page records are keyed by: the URL
    crawled, then the one it was redirected to (a moved page that is gone is the target's)."""
    urls = (str(page.url),)
    if page.final_url is not None and str(page.final_url) != urls[0]:
        urls += (str(page.final_url),)
    return urls
