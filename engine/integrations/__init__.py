"""Integrations: what leaves govflow and what other systems send in.

* :mod:`.feed` — the change feed, which is also the outbox: every committed case event in its
  public form (no personal data), numbered in commit order inside the commit's own transaction
  (a projector of the unit of work), read with an opaque resumable cursor.
* :mod:`.delivery` — sinks that take the outbox (webhooks, plugins' publishers), each through
  leased streams per shard of the feed, with retries, dead letters and a delivery log.
* :mod:`.webhooks` — integrators' webhook endpoints: registration, signing, URL safety.
* :mod:`.open311` — Open311 GeoReport v2 over the pack's catalog and forms.

``docs/integrations.md`` explains the ordering mechanism and the delivery guarantees.
"""
