"""The policy staff's workbench in a real browser (headless Chromium, Playwright).

One officer's round: open the reference diagram, change the sign-for deadline and a task's
assignee through the properties panel, break a flow and see the error marker on it, fix it,
save a new version, see the diff, activate it, report a case and see it follow the new
deadline on the case view. Then what must be refused: a stale save, a file that is not a
diagram, a draft that does not validate — each a message, nothing stored — and a citizen, who
sees no edit action and whom the API refuses anyway. Screenshots: var/artefacts/studio/.
"""

from __future__ import annotations

import datetime as dt
import io
import zipfile

import httpx
import pytest

from govflow.settings import REFERENCE_PACK
from tests.web.diagram_specs import specs

DIAGRAM = "processes/frontline_disposal.bpmn"
READY = f"body[data-ready='{DIAGRAM}']"


class Studio:
    """A browser tab on the studio, signed in with a demo token."""

    def __init__(self, browser, server, token: str | None, *, lang: str = "zh") -> None:
        self.server = server
        self.context = browser.new_context(viewport={"width": 1500, "height": 950}, locale="zh-CN")
        self.context.add_init_script(f"localStorage.setItem('govflow.lang', '{lang}')")
        if token:
            self.context.add_init_script(f"sessionStorage.setItem('govflow.token', '{token}')")
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("request", lambda request: self.requests.append(request.url))
        self.page.on("dialog", lambda dialog: dialog.accept())

    def open(self, fragment: str = "", ready: str | None = READY) -> Studio:
        self.page.goto(f"{self.server.url}/studio/{fragment}")
        if ready:
            self.page.wait_for_selector(ready, state="attached", timeout=30_000)
        return self

    def ready(self, what: str) -> None:
        """Wait until the page says it shows ``what`` (a file, ``diff``, ``case``); say why not."""
        try:
            self.page.wait_for_selector(f"body[data-ready='{what}']", state="attached", timeout=45_000)
        except Exception as exc:
            shown = self.page.locator(".gf-message").all_inner_texts()
            raise AssertionError(f"not ready: {what}; page errors {self.errors}; messages {shown}") from exc

    def validated(self, state: str) -> None:
        """Wait until the draft as it is now has been validated, with this outcome."""
        self.page.wait_for_function(
            "state => govflowStudio.validated === govflowStudio.revision && govflowStudio.validation === state",
            arg=state,
            timeout=45_000,
        )
        assert self.page.locator(f".gf-validation[data-state='{state}']").count() == 1

    def select(self, element: str) -> None:
        assert self.page.evaluate(f"govflowStudio.editor.jumpTo('{element}')")

    def close(self) -> None:
        assert self.errors == []
        # offline: nothing is fetched from anywhere but the govflow server
        assert [url for url in self.requests if not url.startswith((self.server.url, "data:", "blob:"))] == []
        self.context.close()


def api(server, token: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30)


def versions(server) -> list[tuple[str, bool]]:
    with api(server, "demo-district") as client:
        return [(v["version"], v["active"]) for v in client.get("/api/v1/packs").json()]


def test_an_officer_changes_a_deadline_and_an_assignee_compares_deploys_and_a_case_follows(browser, server, artefacts):
    studio = Studio(browser, server, None).open(ready=None)
    page = studio.page
    page.fill("#token", "demo-district")
    page.click("#signin button[type=submit]")
    page.wait_for_selector(READY, state="attached", timeout=30_000)
    studio.validated("ok")
    assert page.locator("a.bjs-powered-by").is_visible()  # the bpmn.io watermark stays
    assert "启动手动工具" in (page.locator(".djs-palette [data-action='hand-tool']").get_attribute("title") or "") + (
        page.locator(".djs-palette [data-action='hand-tool']").get_attribute("aria-label") or ""
    )
    assert page.locator(".gf-version[data-version='1.0.0'][data-state='active']").count() == 1
    page.screenshot(path=artefacts / "01-modeler.png")

    # opened and saved unchanged by the real modeler: the same specs as the original
    original = (REFERENCE_PACK / DIAGRAM).read_bytes()
    unchanged = page.evaluate("govflowStudio.editor.xml()").encode()
    assert specs("frontline_disposal.bpmn", unchanged) == specs("frontline_disposal.bpmn", original)

    # the assignee of the review, through the properties panel
    page.click(".djs-element[data-element-id='review'] .djs-hit")
    page.select_option("#bio-properties-panel-govflow-assignee", "command_centre")
    # the sign-for deadline: inside the intake sub-process, on its overdue timer
    page.click("[data-container-id='intake'] .bjs-drilldown")
    # the event's own hit area, clicked as a DOM event: a neighbouring label may lie over part of it
    page.locator(".djs-element[data-element-id='sign_overdue'] > .djs-hit").dispatch_event("click")
    page.wait_for_selector("#bio-properties-panel-govflow-limit-simple-amount")
    assert page.input_value("#bio-properties-panel-govflow-timer-step") == "sign_for"
    page.fill("#bio-properties-panel-govflow-limit-simple-amount", "30")
    page.screenshot(path=artefacts / "02-properties-panel.png")
    studio.validated("ok")
    assert sorted(page.evaluate("govflowStudio.draft.changes()")) == ["deadlines.simple.sign_for", DIAGRAM]

    # break a flow: the server's validation marks it, and the list jumps to it
    studio.select("flow_routed")
    page.fill("#bio-properties-panel-govflow-condition", "__import__('os').system('x')")
    studio.validated("issues")
    assert page.locator(".djs-connection.gf-issue[data-element-id='flow_routed']").count() == 1
    assert page.locator(".gf-issue-badge[data-element='flow_routed']").count() == 1
    issue = page.locator(".gf-issues li[data-element='flow_routed']")
    text = issue.inner_text()
    assert text.startswith(f"{DIAGRAM}:") and "[flow_routed]: unsafe or invalid expression" in text
    page.screenshot(path=artefacts / "03-error-marker.png")
    studio.select("case_reported")
    issue.locator("a").click()
    assert page.evaluate("govflowStudio.editor.get('selection').get().map(e => e.id)") == ["flow_routed"]
    # a save now is refused: nothing stored
    page.click("#save")
    page.wait_for_selector(".gf-message[data-kind='error']")
    assert "未通过校验" in page.inner_text(".gf-message")
    assert versions(server) == [("1.0.0", True)]
    # fixed: the marker goes
    page.fill("#bio-properties-panel-govflow-condition", "owner_unit is not None")
    studio.validated("ok")
    assert page.locator(".gf-issue").count() == 0

    # the rule tables: the deadline changed in the panel is the table's; the responsibility list
    # is edited with pickers, each cell checked as it is typed and the draft by the server
    page.click(".gf-file[data-path='@deadlines']")
    studio.ready("@deadlines")
    cell = page.locator("td[data-tier='simple'][data-step='sign_for']")
    assert cell.locator(".gf-amount").input_value() == "30" and "gf-cell-changed" in cell.get_attribute("class")
    page.click(".gf-file[data-path='@responsibility']")
    studio.ready("@responsibility")
    row = page.locator("tr[data-matter='road.pothole']")
    row.locator(".gf-amount").fill("0")
    assert row.locator(".gf-col-time_limit .gf-cell-error").inner_text() == "须为正数"
    studio.validated("issues")
    assert page.locator(".gf-issues li[data-file='policies/responsibility.yaml']").count() >= 1
    row.locator(".gf-amount").fill("4")
    row.locator(".gf-add-coop").select_option("gulou.ylzx")
    assert "gf-row-changed" in row.get_attribute("class")
    studio.validated("ok")
    page.screenshot(path=artefacts / "03b-responsibility.png")
    page.click(f".gf-file[data-path='{DIAGRAM}']")
    studio.ready(DIAGRAM)

    # save as a new staged version; the diff follows
    assert page.input_value("#save-version") == "1.0.1"
    page.click("#save")
    studio.ready("diff")
    assert "已保存为 reference 1.0.1" in page.inner_text(".gf-message")
    assert versions(server) == [("1.0.0", True), ("1.0.1", False)]
    row = page.locator("tr.gf-diff-changed[data-element='review'][data-property='assignee']")
    assert (row.locator(".gf-old").inner_text(), row.locator(".gf-new").inner_text()) == ("owner", "command_centre")
    deadline = page.locator("tr[data-setting='deadlines.simple.sign_for']")
    assert (deadline.locator(".gf-old").inner_text(), deadline.locator(".gf-new").inner_text()) == (
        "10 分钟",
        "30 分钟",
    )
    entry = page.locator("tr[data-matter='road.pothole']")
    assert "4 工作小时" in entry.locator(".gf-new").inner_text() and "园林" in entry.locator(".gf-new").inner_text()
    assert page.locator("[data-side='new'] .djs-element.gf-diff-changed[data-element-id='review']").count() == 1
    assert page.locator("[data-side='old'] .djs-element.gf-diff-changed[data-element-id='review']").count() == 1
    page.screenshot(path=artefacts / "04-diff.png", full_page=True)
    with api(server, "demo-district") as client:
        stored = client.get(f"/api/v1/packs/reference/1.0.1/files/{DIAGRAM}").content
        shown = client.get("/api/v1/packs/reference/1.0.1").json()
    assert b"BPMNDiagram" in stored and shown["extends"]["version"] == "1.0.0"
    changed_specs = specs("frontline_disposal.bpmn", stored)["frontline_disposal"]["task_specs"]
    assert changed_specs["review"]["extensions"]["properties"]["assignee"] == "command_centre"

    # activate from the page
    page.click(".gf-version[data-version='1.0.1'] .gf-activate")
    page.wait_for_selector(".gf-version[data-version='1.0.1'][data-state='active']")
    assert versions(server) == [("1.0.0", False), ("1.0.1", True)]

    # a case reported now follows the new deadline: sign for within 30 minutes
    with api(server, "demo-citizen-zhang") as citizen:
        created = citizen.post(
            "/api/v1/cases",
            json={
                "channel": "app",
                "description": "东街口有个井盖没了，晚上很危险",
                "location": {"lat": 26.0865, "lng": 119.3025},
            },
        ).json()
    with api(server, "demo-dongjie") as street:
        case = street.get(f"/api/v1/cases/{created['id']}").json()
    assert case["pack"] == {"name": "reference", "version": "1.0.1"}
    [task] = case["open_tasks"]
    due = dt.datetime.fromisoformat(task["due_at"]) - dt.datetime.fromisoformat(task["created_at"])
    assert task["name"] == "sign_for" and abs(due - dt.timedelta(minutes=30)) < dt.timedelta(seconds=5)

    # … and the case view shows it on the diagram of 1.0.1, sign-for open, with its timeline
    page.fill("#case-id", created["id"])
    page.click("#case-open")
    studio.ready("case")
    assert page.locator(".djs-element.gf-case-open[data-element-id='sign_for']").count() == 1
    assert page.locator(".djs-element.gf-case-done[data-element-id='route_gw']").count() == 1
    assert "reference 1.0.1" in page.inner_text(".gf-case-facts")
    assert page.locator(".gf-timeline li[data-kind='case.reported']").count() == 1
    page.screenshot(path=artefacts / "05-case-view.png")

    # roll back from the page: 1.0.0 is active again (running cases keep 1.0.1)
    page.click(".gf-rollback")
    page.wait_for_selector(".gf-version[data-version='1.0.0'][data-state='active']")
    assert versions(server) == [("1.0.0", True), ("1.0.1", False)]
    assert "reference 1.0.0" in page.inner_text(".gf-message")
    studio.close()


def test_stale_saves_and_bad_files_are_refused_with_a_message_and_nothing_stored(browser, server, artefacts, tmp_path):
    first = Studio(browser, server, "demo-district").open(f"#/edit/reference/1.0.0/{DIAGRAM}")
    second = Studio(browser, server, "demo-district").open(f"#/edit/reference/1.0.0/{DIAGRAM}")
    for studio, assignee in ((first, "command_centre"), (second, "reporter")):
        studio.validated("ok")
        studio.select("review")
        studio.page.select_option("#bio-properties-panel-govflow-assignee", assignee)
        studio.validated("ok")
    first.page.click("#save")
    first.ready("diff")
    # the second officer started from the same version: told someone saved first
    second.page.click("#save")
    second.page.wait_for_selector(".gf-message[data-kind='error']")
    assert "有人在您之前保存了" in second.page.inner_text(".gf-message")
    # … also under another version number: the draft is stale, not just its number
    second.page.fill("#save-version", "1.0.2")
    second.page.click("#save")
    second.page.wait_for_selector(".gf-message[data-kind='error']")
    assert "有人在您之前保存了新版本" in second.page.inner_text(".gf-message")
    second.page.screenshot(path=artefacts / "06-stale.png")
    assert versions(server) == [("1.0.0", True), ("1.0.1", False)]

    # a file that is not a diagram: a clear message, the open diagram unchanged
    page = second.page
    not_bpmn = tmp_path / "notes.bpmn"
    not_bpmn.write_text("这不是流程图", encoding="utf-8")
    before = page.evaluate("govflowStudio.editor.xml()")
    page.set_input_files("#import-file", str(not_bpmn))
    page.wait_for_selector(".gf-message[data-kind='error']")
    assert "“notes.bpmn” 不是有效的 BPMN 文件" in page.inner_text(".gf-message")
    assert page.evaluate("govflowStudio.editor.xml()") == before
    first.close()
    second.close()

    # English is one switch away, palette included
    english = Studio(browser, server, "demo-district", lang="en").open(f"#/edit/reference/1.0.1/{DIAGRAM}")
    assert english.page.inner_text(".gf-signout") == "Sign out"
    hand = english.page.locator(".djs-palette [data-action='hand-tool']")
    assert "Activate hand tool" in (hand.get_attribute("title") or "") + (hand.get_attribute("aria-label") or "")
    english.close()


@pytest.mark.parametrize("token", ["demo-citizen-zhang"])
def test_a_citizen_sees_no_edit_action_and_the_api_refuses_them(browser, server, artefacts, token):
    studio = Studio(browser, server, token).open("#/", ready=".gf-packs .gf-empty")
    page = studio.page
    assert "您无权查看任何辖区的流程包" in page.inner_text(".gf-packs")
    for action in ("#save", ".gf-activate", ".gf-rollback", "#import-file", ".gf-version"):
        assert page.locator(action).count() == 0, action
    page.screenshot(path=artefacts / "07-citizen.png")
    # a citizen who crafts the requests anyway is refused by the API
    draft = io.BytesIO()
    with zipfile.ZipFile(draft, "w") as archive:
        archive.writestr("pack.yaml", "name: reference\nversion: 9.9.9\nextends: reference@1.0.0\n")
    headers = {"Content-Type": "application/zip"}
    with api(server, token) as citizen:
        assert citizen.post("/api/v1/packs", content=draft.getvalue(), headers=headers).status_code == 403
        assert citizen.post("/api/v1/packs/validate", content=draft.getvalue(), headers=headers).status_code == 403
        # (a version the caller may not read may be answered as if it did not exist)
        assert citizen.post("/api/v1/packs/reference/1.0.0/activate").status_code in (403, 404)
        assert citizen.post("/api/v1/packs/rollback", json={"district": "gulou"}).status_code in (403, 404)
        assert citizen.get(f"/api/v1/packs/reference/1.0.0/files/{DIAGRAM}").status_code in (403, 404)
    assert versions(server) == [("1.0.0", True)]
    studio.close()
