"""The studio's case view shows how smart dispatch routed a report and its duplicate links.

A citizen reports a missing manhole cover; a second citizen reports the same one a few metres
away and is linked to the first case. The case view lists the routing candidates the API
returns (best first, with their probabilities and the evidence), the duplicate's main case and
the main case's duplicates.
"""

from __future__ import annotations

from tests.browser.test_studio import READY, Studio, api

WHERE = {"lat": 26.0865, "lng": 119.3025}


def report(server, token: str, text: str, location: dict[str, float]) -> dict:
    with api(server, token) as citizen:
        created = citizen.post("/api/v1/cases", json={"channel": "app", "description": text, "location": location})
    assert created.status_code == 201, created.text
    with api(server, "demo-dongjie") as street:
        return street.get(f"/api/v1/cases/{created.json()['id']}").json()


def test_the_case_view_shows_the_routing_candidates_and_the_duplicate_links(browser, server):
    main = report(server, "demo-citizen-zhang", "东街口有个井盖没了，晚上很危险", WHERE)
    copy = report(server, "demo-citizen-li", "东街口那个井盖不见了，只剩一个黑洞", {"lat": 26.08652, "lng": 119.30252})
    assert main["routing"]["candidates"][0]["matter"] == "road.manhole_cover"
    assert copy["linked_to"] == main["id"]

    studio = Studio(browser, server, "demo-district").open(ready=READY)
    page = studio.page
    page.fill("#case-id", main["id"])
    page.click("#case-open")
    studio.ready("case")
    shown = page.locator(".gf-candidates li").evaluate_all("els => els.map(e => e.dataset.matter)")
    assert shown == [c["matter"] for c in main["routing"]["candidates"]]
    assert "井盖缺失破损 road.manhole_cover · 100%" in page.inner_text(".gf-candidates li:first-child")
    assert "井盖" in page.inner_text(".gf-evidence")
    assert page.locator(f".gf-case-duplicates li[data-case='{copy['id']}']").count() == 1

    page.fill("#case-id", copy["id"])
    page.click("#case-open")
    page.wait_for_selector(f".gf-case-linked[data-main='{main['id']}']")
    studio.close()
