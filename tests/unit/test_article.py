from workers.stages.article import article_id_for, canonical_url, content_hash, domain_of


def test_same_host_canonical_link_is_the_identity():
    assert canonical_url("https://www.site.example/a?x=1", "https://www.site.example/story/1") == "https://www.site.example/story/1"


def test_cross_host_canonical_link_is_ignored():
    # A syndicated copy pointing at the original must not take over the original's identity.
    assert canonical_url("https://copy.example/story", "https://original.example/story") == "https://copy.example/story"


def test_canonical_url_is_normalised():
    assert canonical_url("HTTPS://WWW.Site.Example:443/a?utm_source=feed#comments", None) == "https://www.site.example/a"


def test_article_id_is_stable_and_depends_only_on_the_canonical_url():
    url = canonical_url("https://site.example/a?utm_medium=x", None)
    assert article_id_for(url) == article_id_for(canonical_url("https://site.example/a#top", None))
    assert len(article_id_for(url)) == 32
    assert article_id_for(url) != article_id_for("https://site.example/b")


def test_content_hash_ignores_spacing_and_unicode_composition_but_not_words():
    base = content_hash("كيري", "قال   كيري\nإن الجهود ستتواصل")
    assert base == content_hash("كيري", "قال كيري إن الجهود ستتواصل")
    assert content_hash(None, "e\u0301") == content_hash(None, "\u00e9")
    assert base != content_hash("كيري", "قال كيري إن الجهود توقفت")


def test_domain_drops_www_only():
    assert domain_of("https://www.bbc.co.uk/news/1") == "bbc.co.uk"
    assert domain_of("https://arabic.cnn.com/x") == "arabic.cnn.com"
