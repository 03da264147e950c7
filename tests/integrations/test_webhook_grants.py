"""Grants take effect at once in a running delivery worker too (issue 14.6): once an endpoint's
owner is demoted by `govflow principals load`, the worker that is already running delivers it
nothing more within ``ENDPOINTS_TTL`` (5 s); the events wait in the outbox and go out when the
owner's powers return."""

from __future__ import annotations

import time

import yaml
from sqlalchemy.orm import Session

from govflow.engine.access.identity import parse_principals, store_principals
from govflow.engine.integrations.hub import ENDPOINTS_TTL
from tests.integrations.test_webhooks import drain, hooks, receiver, register, report, worker  # noqa: F401

HOTLINE = {"id": "hotline12345", "name": "12345热线平台", "kind": "system", "unit": "gulou.cc", "token": "demo-hotline"}


def load(govflow, roles: list[str]) -> None:
    """What `govflow principals load` does with a file naming the hotline with these roles."""
    text = yaml.safe_dump({"principals": [{**HOTLINE, "roles": roles}]}, allow_unicode=True)
    entries = parse_principals(text, [govflow.packs.active("gulou").catalog])
    with Session(govflow.db) as session, session.begin():
        store_principals(session, entries, govflow.clock.now())


def cases_of(receiver) -> set[str]:  # noqa: F811
    return {r.event["case_id"] for r in receiver.accepted}


def test_a_demoted_owner_gets_nothing_more_from_the_running_worker(api, hooks, worker, receiver, govflow, principals):  # noqa: F811
    register(api, url=receiver.url())
    first = str(report(govflow, principals["citizen.zhang"], "东街口井盖没了").case_id)
    assert drain(worker, lambda: first in cases_of(receiver))

    load(govflow, ["citizen"])  # no more manage_webhooks in gulou
    demoted = time.monotonic()
    while time.monotonic() - demoted <= ENDPOINTS_TTL:  # the worker keeps running meanwhile
        worker.tick()
        time.sleep(0.1)
    later = str(report(govflow, principals["citizen.zhang"], "东街口路灯不亮").case_id)
    for _ in range(20):
        worker.tick()
        time.sleep(0.05)
    assert later not in cases_of(receiver), "delivered to an owner demoted more than 5 s ago"

    load(govflow, ["integrator"])  # the powers return: what waited in the outbox goes out
    assert drain(worker, lambda: later in cases_of(receiver), timeout=ENDPOINTS_TTL + 30)
