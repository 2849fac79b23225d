"""Alerts: rules over articles and stories, fired once per (rule, article) or (rule, story), delivered
to the ``alerts`` topic, a Redis stream and webhooks.

* :mod:`.rules`: the rules file (schema, parsing, explanation). Pure.
* :mod:`.match`: which rules an article or its story satisfies. Pure.
* :mod:`.messages`: the alert and the letters of ``alerts.dlq``, as published and as read back.
* :mod:`.ledger`: Redis: the once-only firing script, the stream, delivery markers.
* :mod:`.engine`: :class:`~.engine.AlertEngine`, called by the pipeline for every article.
* :mod:`.webhooks`: signed HTTP delivery: the per-webhook queues in Redis, retries, dead letters.
* :mod:`.agent`: the ``webhooks`` agent on the ``alerts`` topic, which queues and delivers them.
* :mod:`.commands`: ``wirefeed alerts tail``, ``wirefeed alerts redrive`` and ``wirefeed rules check``.
"""
