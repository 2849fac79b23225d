"""Alerts: rules over articles and stories, fired once per (rule, article) or (rule, story), delivered
to the ``alerts`` topic, a Redis stream and webhooks.

* :mod:`.rules`: the rules file (schema, parsing, explanation). Pure.
* :mod:`.match`: which rules an article or its story satisfies. Pure.
* :mod:`.messages`: the alert and the webhook dead letter, as published.
* :mod:`.ledger`: Redis: the once-only firing script, the stream, delivery markers.
* :mod:`.engine`: :class:`~.engine.AlertEngine`, called by the pipeline for every article.
* :mod:`.webhooks`: signed HTTP delivery, run by its own agent on the ``alerts`` topic.
* :mod:`.commands`: ``wirefeed alerts tail`` and ``wirefeed rules check``.
"""
