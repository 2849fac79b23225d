"""Alerts in Redis: the once-only firing, the stream newsroom tools read, and delivery markers.

| key | type | content | lifetime |
| --- | --- | --- | --- |
| ``{p}:alert:{alert_id}`` | hash | ``json`` (the alert as first fired), ``source`` (the record whose processing fired it: the only one that publishes it; emptied when that record could not publish it, and the next record to fire it takes it over, as it does once the owner has held it unpublished for ``TAKEOVER_S``), ``owned_at`` (when ``source`` took it, Redis server time), ``published`` (``1`` once the ``alerts`` topic acknowledged it) | ``fired_ttl_s`` after the last time it matched a changed article (it fired, or would have; an unchanged re-crawl, which matches nothing, does not renew it): longer than the ``pages.raw`` replay window, so a replay never fires again, and renewed while its subject changes |
| ``{p}:alert:{alert_id}:webhooks`` | hash | webhook name -> ``delivered`` or ``dead_lettered``, written by ``workers.alerts.webhooks.DeliveryQueue``; deleted when the alert fires again after ``{p}:alert:{alert_id}`` expired, so that its webhooks get the new firing | ``webhook_marker_ttl_days`` |
| ``{p}:alerts`` | stream | one entry per alert, fields ``alert_id``, ``rule_id``, ``json`` | ``MAXLEN ~ stream_maxlen`` |

Firing is one Lua script: if the alert's hash is absent it is created, the alert is appended
to the stream and the outcomes of an earlier firing's webhook deliveries are forgotten,
atomically, so the stream holds every alert exactly once however many workers see the article
and however often, and each firing reaches the webhooks. Publishing to the ``alerts`` topic
comes after and is marked only once the broker acknowledged it (like the ``published`` field of
articles): a crash in between leaves the alert fired but unpublished, and the redelivered page
publishes it then, with the JSON stored at first firing, so every copy of an alert is the same
bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

import redis.asyncio as aioredis

from workers.alerts.messages import Alert, read_alert
from workers.settings import Settings

_FIRE = """
local alert_key, stream, webhooks_key = KEYS[1], KEYS[2], KEYS[3]
local json, ttl, maxlen, alert_id, rule_id, source = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local takeover_s, create = tonumber(ARGV[7]), ARGV[8] == '1'
local now = tonumber(redis.call('TIME')[1])
local stored = redis.call('HMGET', alert_key, 'json', 'published', 'source', 'owned_at')
if stored[1] then
  if create then
    -- Its subject still matches: it is remembered for fired_ttl_s from now. A story or a live
    -- page that goes on for longer than that would otherwise see the marker expire and fire again.
    redis.call('EXPIRE', alert_key, ttl)
  end
  local owner = stored[3] or ''
  if stored[2] ~= '1' then
    local owned_at = tonumber(stored[4] or '')
    if owner == source or not owned_at then
      -- its owner publishing it again (a redelivery), or an alert fired before owned_at was kept:
      -- the time to wait for it counts from now
      redis.call('HSET', alert_key, 'owned_at', now)
    elseif owner == '' or now - owned_at >= takeover_s then
      -- released by a record that could not publish it (AlertLedger.release), or held unpublished
      -- for longer than any publish takes: its record will not publish it (redelivered too old to
      -- fire, or dead-lettered this time), so this one takes it over
      redis.call('HSET', alert_key, 'source', source, 'owned_at', now)
      owner = source
    end
  end
  return {0, stored[1], stored[2] or '', owner}
end
if not create then
  return {-1, '', '', ''}
end
redis.call('HSET', alert_key, 'json', json, 'source', source, 'owned_at', now)
redis.call('EXPIRE', alert_key, ttl)
-- A firing after the last one's marker expired is a new one, and its webhooks get it: the outcomes
-- of the last firing's deliveries outlive its marker (webhook_marker_ttl_days: 45 against 30).
redis.call('DEL', webhooks_key)
redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*', 'alert_id', alert_id, 'rule_id', rule_id, 'json', json)
return {1, json, '', source}
"""

_RELEASE = """
if redis.call('HGET', KEYS[1], 'source') == ARGV[1] then
  redis.call('HSET', KEYS[1], 'source', '')
end
"""

# Only on an alert still held: a marker on an expired alert would recreate it without a TTL.
_MARK_PUBLISHED = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HSET', KEYS[1], 'published', '1')
end
"""


# How long a record may hold a fired alert unpublished before the next record firing it takes it
# over: far longer than a publish takes (the broker acknowledges in milliseconds; an outage is
# waited out, and the owner renews nothing meanwhile, so a takeover during one long outage can
# publish the alert twice, which the topic's readers and the webhooks take by its id).
TAKEOVER_S = 600


def stream_key(prefix: str) -> str:
    return f"{prefix}:alerts"


class DeliveryState(StrEnum):
    DELIVERED = "delivered"
    DEAD_LETTERED = "dead_lettered"


@dataclass(frozen=True, slots=True)
class Fired:
    alert: Alert
    """The alert as first fired (for a repeat: the stored one, not the one just built)."""
    first_time: bool
    published: bool
    owned: bool
    """Fired while processing this very source record (a redelivery of it, or its first run): only
    its owner publishes an unpublished alert. Another page that fires the same story alert at the
    same moment must not, or the topic gets it twice; if the owner crashes before publishing, its
    record is redelivered, owns the alert again and publishes it then; if it could not publish it
    for good, it released it (:meth:`AlertLedger.release`) and the next record firing the alert
    owns it."""


class AlertLedger:
    def __init__(self, client: aioredis.Redis, *, prefix: str, fired_ttl_s: int, stream_maxlen: int) -> None:
        self._redis = client
        self._prefix = prefix
        self._fired_ttl_s = fired_ttl_s
        self._stream_maxlen = stream_maxlen
        self._fire = client.register_script(_FIRE)
        self._mark = client.register_script(_MARK_PUBLISHED)
        self._release = client.register_script(_RELEASE)

    @classmethod
    def from_settings(cls, client: aioredis.Redis, settings: Settings) -> AlertLedger:
        return cls(
            client,
            prefix=settings.redis_prefix,
            fired_ttl_s=int(timedelta(days=settings.alert_fired_ttl_days).total_seconds()),
            stream_maxlen=settings.alert_stream_maxlen,
        )

    @property
    def stream_key(self) -> str:
        return stream_key(self._prefix)

    def alert_key(self, alert_id: str) -> str:
        return f"{self._prefix}:alert:{alert_id}"

    def webhooks_key(self, alert_id: str) -> str:
        return f"{self._prefix}:alert:{alert_id}:webhooks"

    async def fire(self, alert: Alert, *, source: str, create: bool = True) -> Fired | None:
        """Fire ``alert`` for the record ``source``, or only take over an unpublished one fired
        before (``create=False``: a page whose alerts are suppressed finishes what was begun);
        None when it was never fired and ``create`` is False."""
        first_time, stored, published, owner = await self._fire(
            keys=[self.alert_key(alert.alert_id), self.stream_key, self.webhooks_key(alert.alert_id)],
            args=[
                alert.model_dump_json(by_alias=True),
                self._fired_ttl_s,
                self._stream_maxlen,
                alert.alert_id,
                alert.rule_id,
                source,
                TAKEOVER_S,
                "1" if create else "0",
            ],
        )
        if first_time == -1:
            return None
        return Fired(
            # stored by any release: one that added a field must not stop this one firing
            alert=alert if first_time else read_alert(stored),
            first_time=bool(first_time),
            published=published == b"1",
            owned=owner.decode() == source,
        )

    async def release(self, alert: Alert, *, source: str) -> None:
        """Give up the publishing of an alert that ``source`` owns and could not publish for good
        (the record will be acknowledged without it): the next record that fires it publishes it,
        e.g. a replay of ``source`` with alerts on."""
        await self._release(keys=[self.alert_key(alert.alert_id)], args=[source])

    async def mark_published(self, alert: Alert) -> None:
        await self._mark(keys=[self.alert_key(alert.alert_id)])

    async def delivery_state(self, alert_id: str, webhook: str) -> DeliveryState | None:
        state = await self._redis.hget(self.webhooks_key(alert_id), webhook)
        return DeliveryState(state.decode()) if state is not None else None
