"""`govflow rates verify` and `govflow rates rebuild --verify` on a temporary SQLite file."""

from __future__ import annotations

from sqlalchemy import update

from govflow.engine.store.db import RateCounter, make_engine
from tests.test_cli import (  # noqa: F401  (fixtures)
    db_url,
    deployed,
    report_case,
    run,
    upgraded,
)


def test_verify_says_equal_then_catches_a_typed_in_counter_and_rebuild_repairs_it(deployed, principals):  # noqa: F811
    report_case(deployed, principals)
    ok = run("rates", "verify")
    assert ok.exit_code == 0 and "equals a full recomputation" in ok.stdout, ok.output
    engine = make_engine(deployed)
    try:
        with engine.begin() as conn:
            conn.execute(update(RateCounter).where(RateCounter.metric == "received").values(value=99))
    finally:
        engine.dispose()
    bad = run("rates", "verify")
    assert bad.exit_code == 1 and "received: record 1, stored 99" in bad.stdout, bad.output
    fixed = run("rates", "rebuild", "--verify")
    assert fixed.exit_code == 0 and fixed.stdout.startswith("rebuilt ") and "equals" in fixed.stdout, fixed.output
