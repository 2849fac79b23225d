"""One spelling for URLs and hosts that name the same page or outlet. Pure.

Article identity (:mod:`workers.stages.article`), the canonical link a page declares
(:mod:`workers.stages.metadata`) and the domains of alert rules (:mod:`workers.alerts.rules`) are
compared in these forms, so every one of them goes through this module and none has its own;
:func:`url_digest` makes the keys of both. It imports nothing of the pipeline's, so that loading
alert rules or the Redis store (the command line, the readiness probe) does not load the
extractor and its language model.
"""

from __future__ import annotations

import hashlib
import re
from urllib.parse import quote, quote_plus, unquote_plus, urlsplit, urlunsplit

import idna
from courlan import normalize_url
from tld import get_fld

_IDNA_PREFIX = "xn--"
_PERCENT_ESCAPE = re.compile("%[0-9a-fA-F]{2}")
# What a query keeps unescaped before it is split (the escapes themselves included): only the
# characters outside ASCII (and spaces, controls) are escaped then, as UTF-8.
_QUERY_SAFE = "!#$%&'()*+,-./:;=?@[]^_`{|}~"
# Parameters that only say how a reader arrived (campaigns, ad clicks, shares) or who they are
# (sessions). Only unambiguous names: a tracker kept splits one article into two ids, which the
# duplicate detector joins again; a story number taken for a tracker merges two articles into
# one, and the older is lost. courlan's own list is not used for that reason: it also matches
# names that start with "ref", "ga" or "gl" and names such as "cid", "uid" and "source"
# (?gallery=2, ?global=1, ?cid=4411 on sites that number their stories so).
_TRACKING_PARAMETER = re.compile(
    r"^(?:utm|ga|gs|mc|mtm|pk|piwik|itm|mkt|oly|vero|hsa|ads?)_"
    r"|^(?:dc|fbc|gc|twc|yc|ysc)lid$|^(?:gbra|wbra|igsh|msclk|click)id$"
    r"|^_(?:ga|gl|hsenc|hsmi|ke)$"
    r"|^(?:gclsrc|ocid|smid|cmpid|icid|xtor|ref_src|ref_url|at_medium|at_campaign)$"
    r"|^(?:j|php|asp)?sessionid$|^(?:phpsessid|jsessionid|sessid)$"
)


def unicode_host(host: str) -> str:
    """The host in lower case with its IDNA labels in Unicode: ``xn--mgbh0fb.xn--wgbh1c``,
    ``مثال.مصر`` and ``XN--MGBH0FB.مصر`` are one outlet. Crawlers and :mod:`workers.models` write
    hosts in punycode, courlan (hence canonical URLs) and people writing rules in Unicode; the
    Unicode form is the one a person reads. A label that is not valid punycode is kept as
    written: the page still has a host, only not an internationalised one."""
    labels = []
    # "cnn.com." (the root's dot written out) is cnn.com
    for label in host.lower().removesuffix(".").split("."):
        if label.startswith(_IDNA_PREFIX):
            try:
                # IDNA 2008 (the idna package): Python's own codec is IDNA 2003's, which cannot
                # read the labels with ß, ς or the zero-width joiners Persian names need
                label = idna.decode(label)
            except (idna.IDNAError, UnicodeError):
                try:
                    label = label.encode("ascii").decode("idna")
                except UnicodeError:
                    pass
        labels.append(label)
    return ".".join(labels)


def registrable_domain(host: str) -> str:
    """The domain registered under the host's public suffix, in the spelling of ``host``:
    ``edition.cnn.com``, ``amp.cnn.com`` and ``m.cnn.com`` are ``cnn.com``, ``news.bbc.co.uk`` is
    ``bbc.co.uk``, and a site under a suffix where anyone gets a name (``x.blogspot.com``) is
    its own. The suffixes are Mozilla's Public Suffix List as shipped in the ``tld`` package, read
    from the package, never fetched. A host without one (an IP address, ``localhost``, a name
    under no listed suffix) is itself."""
    return get_fld(host, fix_protocol=True, fail_silently=True) or host


def normalized_url(url: str) -> str:
    """The URL as article identity spells it. courlan normalises the scheme, host and path: scheme
    and host in lower case, the host's IDNA labels in Unicode, the scheme's default port dropped.
    The query is this module's: tracking parameters
    (``_TRACKING_PARAMETER``) and empty ones removed, the others kept, sorted by name (courlan's
    strict mode kept only a short list of names, and ``?newsid=1`` and ``?newsid=2`` were one
    article). The fragment is dropped: it names a place in a page, never another page, and so are
    a user and password: they are a crawler's, and would publish its secrets.
    Percent-escapes are upper case (RFC 3986 6.2.2.1: ``%d8%ad`` is ``%D8%AD``). Raises
    ValueError for a URL that cannot be parsed (an IPv6 host without its closing bracket)."""
    parts = urlsplit(without_credentials(url))
    normal = urlsplit(normalize_url(urlunsplit((*parts[:3], "", "")), strict=False))
    host = normal.netloc
    if normal.hostname and ":" not in normal.hostname:  # not an IPv6 address
        # courlan decodes punycode with Python's IDNA 2003 codec, which keeps the labels only IDNA
        # 2008 reads (ß, ς, Persian names' zero-width non-joiner) in punycode: a crawled URL and its
        # page's canonical link in Unicode were two articles
        try:
            port = normal.port
        except ValueError:  # ":99999", ":8a": the netloc as courlan left it
            pass
        else:
            host = unicode_host(normal.hostname) + (f":{port}" if port is not None else "")
    query = _query(parts.query)
    normalized = urlunsplit((normal.scheme, host, normal.path or ("/" if query else ""), query, ""))
    return _PERCENT_ESCAPE.sub(lambda escape: escape.group().upper(), normalized)


def _query(query: str) -> str:
    """The query without trackers and empty parameters (``p=``), sorted by name. Byte for byte
    otherwise: a parameter without a value is kept (``news.php?120345`` numbers a story), and an
    escape that is not UTF-8 stays that byte (``?title=%D3%E6%D1%ED%C7``, windows-1256: read as
    UTF-8, every such title was U+FFFD and one article). Characters written unescaped are escaped
    as UTF-8, as browsers send them."""
    kept = []
    # Each character of these strings stands for one byte of the query (Latin-1).
    for parameter in quote(query, safe=_QUERY_SAFE).split("&"):
        name, equals, value = (unquote_plus(part, encoding="latin-1") for part in parameter.partition("="))
        if not (name or equals) or (equals and not value) or _TRACKING_PARAMETER.search(name.lower()):
            continue
        kept.append((name, equals, value))
    kept.sort(key=lambda parameter: parameter[0])
    return "&".join(
        quote_plus(name, encoding="latin-1") + (equals and "=" + quote_plus(value, encoding="latin-1"))
        for name, equals, value in kept
    )


def is_home_page(url: str) -> bool:
    """Whether ``url`` is a site's home page ("https://site/", "/index.html"): no query, and no
    path but an index file's. Raises ValueError for a URL that cannot be parsed."""
    parts = urlsplit(url)
    return not parts.query and parts.path.strip("/") in ("", "index.html", "index.htm", "index.php")


def names_the_home_page_instead_of(canonical: str, page_url: str) -> bool:
    """Whether a page's declared ``canonical`` names its site's home page while the page is
    another: a template's mistake, repeated on every page of the site, that would make them all
    one article."""
    try:
        return is_home_page(canonical) and not is_home_page(page_url)
    except ValueError:
        return False


def without_credentials(url: str) -> str:
    """``url`` without its user and password ("https://user:pass@host/a" is "https://host/a").
    Raises ValueError for a URL that cannot be parsed."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def url_digest(url: str) -> str:
    """The first 32 hex digits of the URL's SHA-256: article ids (of canonical URLs) and the keys
    of page outcomes (of URLs as crawled)."""
    return hashlib.sha256(url.encode("utf-8")).hexdigest()[:32]


def domain_of(url: str) -> str:
    """The outlet: the host without "www.", in one spelling whether the URL has it in punycode
    (a crawled URL) or in Unicode (a canonical one), so that chrome statistics, domain indexes,
    page metadata and alert rules agree on it."""
    return unicode_host(urlsplit(url).hostname or "").removeprefix("www.")
