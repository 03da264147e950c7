"""``govflow incidents list|retry`` against a real database."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import update

from govflow.engine.cases.timers import fire_due
from govflow.engine.store.db import CaseRow, make_engine
from tests.test_cli import db_url, deployed, report_case, run, upgraded  # noqa: F401 (fixtures)


def test_incidents_are_listed_and_retried_from_the_cli(deployed, principals):  # noqa: F811
    case = report_case(deployed, principals)
    engine = make_engine(deployed)
    with engine.begin() as conn:
        past = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
        conn.execute(update(CaseRow).where(CaseRow.id == uuid.UUID(case)).values(state=b"broken", next_due=past))
    from govflow.cli import _build, _settings

    assert fire_due(_build(_settings(deployed)).cases).failed == 1
    listed = run("incidents", "list")
    assert listed.exit_code == 0, listed.output
    [line] = listed.stdout.splitlines()
    incident, status, listed_case, _element, attempts = line.split("\t")[:5]
    assert (status, listed_case, attempts) == ("open", case, "1")
    again = run("incidents", "retry", incident, "--actor", "ops")
    assert again.exit_code == 1 and "the retry failed" in again.output
    assert run("incidents", "list").stdout.split("\t")[4] == "2"
    assert run("incidents", "retry", "424242").exit_code == 1
