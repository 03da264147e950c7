"""Grants take effect at once (issue 14, seen 5): a principal's demotion, unit move or revoked token,
loaded by `govflow principals load` in another process, is honoured by a running `govflow serve`
on the very next request, without restart."""

from __future__ import annotations

import time

import pytest
import yaml

from tests.live_server import govflow, serve

pytestmark = pytest.mark.usefixtures("database")

DONGJIE = {"lat": 26.0865, "lng": 119.3025, "address": "东街口"}


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_running_server_honours_principal_changes_on_the_next_request(database, tmp_path):
    url = database.url.render_as_string(hide_password=False)
    with serve(url) as live:
        http = live.client
        reported = http.post(
            "/api/v1/cases",
            headers=_auth("demo-citizen-zhang"),
            json={
                "channel": "app",
                "description": "东街口井盖没了",
                "location": DONGJIE,
                "reporter": {"name": "张伟", "phone": "13812345678"},
            },
        )
        assert reported.status_code == 201, reported.text
        case = f"/api/v1/cases/{reported.json()['id']}"
        shown = http.get(case, headers=_auth("demo-district"))
        assert shown.status_code == 200 and shown.json()["reporter"]["name"] == "张伟"
        assert http.get(case, headers=_auth("demo-dongjie")).status_code == 200
        assert any(
            t["case_id"] == reported.json()["id"]
            for t in http.get("/api/v1/tasks", headers=_auth("demo-dongjie")).json()
        )
        assert http.get("/api/v1/me", headers=_auth("demo-cgj")).status_code == 200

        changes = tmp_path / "changes.yaml"
        changes.write_text(
            yaml.safe_dump(
                {
                    "principals": [
                        # a district supervisor demoted to citizen
                        {"id": "district.supervisor", "name": "黄丽君", "roles": ["citizen"], "token": "demo-district"},
                        # a dispatcher moved from Dongjie to Nanjie
                        {
                            "id": "dongjie.dispatcher",
                            "name": "陈静",
                            "unit": "gulou.nanjie",
                            "roles": ["street_dispatcher"],
                            "token": "demo-dongjie",
                        },
                        # a handler whose token was replaced (the old one is revoked)
                        {
                            "id": "cgj.handler",
                            "name": "林志勇",
                            "unit": "gulou.cgj",
                            "roles": ["department_handler"],
                            "token": "new-cgj-token",
                        },
                    ]
                },
                allow_unicode=True,
            )
        )
        loaded = govflow("principals", "load", str(changes), "--database-url", url)
        assert loaded.returncode == 0, loaded.stdout + loaded.stderr
        changed_at = time.monotonic()

        demoted = http.get(case, headers=_auth("demo-district"))
        assert demoted.status_code == 404, demoted.text  # the next request: no read right (so, no such case)
        assert "张伟" not in demoted.text and "13812345678" not in demoted.text
        packs = http.get("/api/v1/packs", headers=_auth("demo-district"))
        assert packs.status_code == 200 and packs.json() == []  # nor any pack administration
        moved = http.get(case, headers=_auth("demo-dongjie"))
        assert moved.status_code == 404, moved.text
        assert not any(
            t["case_id"] == reported.json()["id"]
            for t in http.get("/api/v1/tasks", headers=_auth("demo-dongjie")).json()
        )
        assert http.get("/api/v1/me", headers=_auth("demo-cgj")).status_code == 401
        assert http.get("/api/v1/me", headers=_auth("new-cgj-token")).json()["id"] == "cgj.handler"
        assert time.monotonic() - changed_at < 5
        # the moved dispatcher now works for Nanjie: a Nanjie case is readable with its personal data
        nanjie = http.post(
            "/api/v1/cases",
            headers=_auth("demo-citizen-li"),
            json={
                "channel": "app",
                "description": "南街这边路灯不亮了好几天",
                "location": {"lat": 26.0780, "lng": 119.2950},
                "reporter": {"name": "李娜"},
            },
        )
        assert nanjie.status_code == 201, nanjie.text
        seen = http.get(f"/api/v1/cases/{nanjie.json()['id']}", headers=_auth("demo-dongjie"))
        assert seen.status_code == 200 and seen.json()["reporter"]["name"] == "李娜"
        # a hostile report on the real server: refused with a problem, and the log holds none of it
        hostile = http.post(
            "/api/v1/cases",
            headers=_auth("demo-citizen-zhang"),
            json={
                "channel": "app",
                "description": "机密描述\x00",
                "reporter": {"name": "张伟", "phone": "13812345678"},
            },
        )
        assert hostile.status_code == 422 and hostile.headers["content-type"].startswith("application/problem+json")
        assert http.get("/api/v1/tasks?offset=9223372036854775808", headers=_auth("demo-dongjie")).status_code == 422
        log = live.log()
        assert "POST /api/v1/cases 422" in log
        for secret in ("张伟", "13812345678", "机密描述", "李娜", "东街口井盖没了"):
            assert secret not in log
