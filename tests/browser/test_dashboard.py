"""The supervision dashboard in headless Chromium: the figures on the page equal the API's.

The browser comes from this folder's conftest (Debian's Chromium through Playwright)."""

from __future__ import annotations

import datetime as dt
import socket
import threading
import time
from pathlib import Path

import pytest
import uvicorn

from govflow.api.app import create_app
from govflow.api.pages import dist_folder
from govflow.engine.cases.timers import fire_due

CHROMIUM = "/usr/bin/chromium"
SHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def live(govflow):
    """The real API and pages of the test app, served by uvicorn on a free local port."""
    if not (dist_folder() / "dashboard" / "index.html").is_file():
        pytest.skip("the dashboard is not built: scripts/setup builds web/ when Node.js and npm are there")
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(govflow), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the test server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def test_the_dashboard_shows_the_apis_figures(live, browser, client, tokens, govflow, clock):
    def as_(who):
        return {"Authorization": f"Bearer {tokens[who]}"}

    body = {"channel": "app", "description": "东街口有个井盖没了", "location": {"lat": 26.0865, "lng": 119.3025}}
    for _ in range(3):
        assert client.post("/api/v1/cases", json=body, headers=as_("citizen.zhang")).status_code == 201
    inbox = client.get("/api/v1/tasks", headers=as_("dongjie.dispatcher")).json()
    task = next(t for t in inbox if t["name"] == "sign_for")
    assert (
        client.post(
            f"/api/v1/tasks/{task['id']}/complete", json={"data": {}}, headers=as_("dongjie.dispatcher")
        ).status_code
        == 200
    )

    # three days on: the signed case's handling is overdue (its timer fired, the task stays open), the
    # unsigned ones went up to the command centre and the city; three reports at one place: a warning
    clock.advance(dt.timedelta(days=3))
    fire_due(govflow.cases)
    assert client.post("/api/v1/warnings/scan", headers=as_("cc.supervisor")).status_code == 200

    page = browser.new_page()
    page.goto(f"{live}/dashboard/")
    page.wait_for_selector("body[data-ready=true], body[data-ready=error]")
    assert page.get_attribute("body", "data-ready") == "true", page.inner_text("body")
    # not signed in: the public board only, equal to the API's
    api_board = client.get("/api/v1/board").json()
    for row in api_board["rows"]:
        for stage, count in row["counts"].items():
            cell = page.locator(f'#board tr[data-unit="{row["unit"]}"] td[data-stage="{stage}"]')
            assert cell.inner_text() == str(count)
    assert page.locator("#rates").count() == 0
    # the command centre signs in: every unit's figures, the ranking, the trend
    page.fill("#token", tokens["cc.supervisor"])
    page.click("#sign-in")
    page.wait_for_selector("body[data-ready=true] #rates td[data-metric], body[data-ready=error]")
    assert page.get_attribute("body", "data-ready") == "true", page.inner_text("body")
    api_rates = client.get("/api/v1/rates?level=street", headers=as_("cc.supervisor")).json()
    checked = 0
    for row in api_rates["rows"]:
        for cell in page.locator(f'#rates tr[data-unit="{row["unit"]}"] td[data-metric]').all():
            metric, shown = cell.get_attribute("data-metric"), cell.get_attribute("data-value")
            expected = row[metric]
            assert (shown == "" and expected is None) or float(shown) == pytest.approx(expected), (row["unit"], metric)
            checked += 1
    assert checked >= 10 * 8
    dongjie = next(r for r in api_rates["rows"] if r["unit"] == "gulou.dongjie")
    assert page.locator('#rates tr[data-unit="gulou.dongjie"] td[data-metric="call_rate"]').inner_text() == "0.0%"
    assert dongjie["call_rate"] == 0.0
    ranking = client.get("/api/v1/rates/ranking?metric=completion_rate", headers=as_("cc.supervisor")).json()
    shown_units = [r.get_attribute("data-unit") for r in page.locator("#ranking tbody tr").all()]
    assert shown_units == [r["unit"] for r in ranking["rows"]]
    page.wait_for_selector("#trend-chart canvas")
    # the early warnings, as the API lists them
    api_warnings = client.get("/api/v1/warnings?limit=20", headers=as_("cc.supervisor")).json()
    assert api_warnings and [r.get_attribute("data-warning") for r in page.locator("#warnings tbody tr").all()] == [
        w["id"] for w in api_warnings
    ]
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "dashboard.png"), full_page=True)
    # a street signs in: its own row only, and no other street's scorecard
    page.click("#sign-out")
    page.wait_for_selector("body[data-ready=true]:not(:has(#rates))")  # signed out: the public view
    page.fill("#token", tokens["dongjie.dispatcher"])
    page.click("#sign-in")
    page.wait_for_selector("body[data-ready=true] #rates td[data-metric], body[data-ready=error]")
    assert page.get_attribute("body", "data-ready") == "true", page.inner_text("body")
    assert [r.get_attribute("data-unit") for r in page.locator("#rates tbody tr").all()] == ["gulou.dongjie"]
    # its overdue work, as its scorecard gives it: the handling whose deadline fired is there
    card = client.get("/api/v1/units/gulou.dongjie/scorecard", headers=as_("dongjie.dispatcher")).json()
    assert [w["task"] for w in card["worst_cases"]] == ["handle"]
    shown = [r.get_attribute("data-case") for r in page.locator("#overdue tbody tr").all()]
    assert shown == [w["case_id"] for w in card["worst_cases"]]
    for metric in ("overdue_count", "escalated_count"):
        assert page.locator(f'#overdue b[data-metric="{metric}"]').inner_text() == str(round(card["figures"][metric]))
    assert page.locator("#warnings").count() == 0 and page.locator(".gf-denied").count() >= 1
