"""The studio (/studio/) in headless Chromium: how long a policy officer waits.

Printed, each as the median of several runs (min–max beside it), against the targets:

* **page ready**: from navigation to the reference diagram rendered in the modeler, with the
  properties panel and the versions list; cold (a fresh browser context each run: nothing
  cached, the reference diagram — which has no layout — laid out) and warm (the same browser
  profile again: assets revalidated, the layout from the previous visit); beside each, the
  page's main-thread busy time (Chromium's TaskDuration), which a busy machine inflates less
  than the wall clock; target ≤ 1 s;
* **validate round trip**: the page's draft (the reference pack with an edited diagram, so
  nothing is served from the compiled-diagram cache) zipped, POSTed to
  ``/api/v1/packs/validate``, answered and its issues drawn; target ≤ 300 ms; the same
  request from Python beside it (no browser);
* **save + diff**: from the click on "save as a new version" to the diff of the new version
  against its base drawn (both diagrams, coloured, property table); target ≤ 1 s.

The server is the real API (tests/browser/server.py) on a fresh SQLite file. Needs the
studio built (scripts/setup), Playwright and Debian's Chromium (the browser tests install it).
Run: ``.venv/bin/python bench/bench_studio.py [--runs 7]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

from govflow.engine.packs.loader import files_to_zip  # noqa: E402
from govflow.settings import REFERENCE_PACK  # noqa: E402
from tests.browser.server import CHROMIUM_ARGS, serve  # noqa: E402

DIAGRAM = "processes/frontline_disposal.bpmn"
READY = f"body[data-ready='{DIAGRAM}']"


def figure(name: str, values: list[float], target: float) -> None:
    median = statistics.median(values)
    verdict = "met" if median <= target else "NOT met"
    print(
        f"{name:<34} median {median * 1000:7.0f} ms   (min {min(values) * 1000:.0f}, max {max(values) * 1000:.0f}, "
        f"{len(values)} runs)   target ≤ {target * 1000:.0f} ms: {verdict}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory() as folder, serve(Path(folder)) as server, sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS)
        print(f"studio benchmark: Chromium {browser.version}, {runs} runs each, server {server.url}")
        print(f"load average before: {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cores")

        def studio(fragment: str):
            context = browser.new_context(viewport={"width": 1500, "height": 950})
            context.add_init_script("sessionStorage.setItem('govflow.token', 'demo-district')")
            page = context.new_page()
            page.on("dialog", lambda dialog: dialog.accept())
            page.cdp = context.new_cdp_session(page)
            page.cdp.send("Performance.enable")
            page.goto(f"{server.url}/studio/{fragment}")
            page.wait_for_selector(READY, state="attached", timeout=60_000)
            return context, page

        # warm the server once (the first compile of a version is not what an officer waits for)
        context, page = studio(f"#/edit/reference/1.0.0/{DIAGRAM}")
        context.close()

        def busy(page) -> float:
            """Main-thread busy seconds since the last call (Chromium's TaskDuration)."""
            metrics = {m["name"]: m["value"] for m in page.cdp.send("Performance.getMetrics")["metrics"]}
            spent = metrics["TaskDuration"] - getattr(page, "busy_before", 0.0)
            page.busy_before = metrics["TaskDuration"]
            return spent

        ready, ready_busy, warm, warm_busy = [], [], [], []
        for _ in range(runs):
            context, page = studio(f"#/edit/reference/1.0.0/{DIAGRAM}")
            ready.append(page.evaluate("performance.now()") / 1000)
            ready_busy.append(busy(page))
            page.reload()
            page.busy_before = 0.0  # a new document: Chromium's counters start again
            page.wait_for_selector(READY, state="attached", timeout=60_000)
            warm.append(page.evaluate("performance.now()") / 1000)
            warm_busy.append(busy(page))
            context.close()

        context, page = studio(f"#/edit/reference/1.0.0/{DIAGRAM}")
        page.wait_for_selector(".gf-validation[data-state='ok']")
        validate = []
        for i in range(runs):
            # an edit the server has not compiled before: rename the review task
            page.evaluate(
                "(name) => { const e = govflowStudio.editor; const el = e.get('elementRegistry').get('review');"
                " e.get('modeling').updateLabel(el, name); }",
                f"Review the result 审核 {i}",
            )
            page.wait_for_function("() => govflowStudio.validated === govflowStudio.revision")
            started = page.evaluate("performance.now()")
            page.evaluate("govflowStudio.validateNow()")
            validate.append((page.evaluate("performance.now()") - started) / 1000)
        context.close()

        files = {"pack.yaml": b"name: reference\nversion: '9.9.9'\nextends: reference@1.0.0\n"}
        original = (REFERENCE_PACK / DIAGRAM).read_bytes()
        direct = []
        with httpx.Client(base_url=server.url, headers={"Authorization": "Bearer demo-district"}) as client:
            for i in range(runs):
                body = files_to_zip({**files, DIAGRAM: original.replace(b"Review the result", f"Review {i}".encode())})
                started = time.perf_counter()
                answer = client.post(
                    "/api/v1/packs/validate", content=body, headers={"Content-Type": "application/zip"}
                )
                direct.append(time.perf_counter() - started)
                assert answer.json()["valid"], answer.text

        save = []
        base = "1.0.0"
        for i in range(runs):
            context, page = studio(f"#/edit/reference/{base}/{DIAGRAM}")
            page.wait_for_selector(".gf-validation[data-state='ok']")
            assert page.evaluate("govflowStudio.editor.jumpTo('review')")
            page.select_option("#bio-properties-panel-govflow-assignee", "command_centre" if i % 2 == 0 else "owner")
            page.wait_for_function(
                "() => govflowStudio.validated === govflowStudio.revision && govflowStudio.validation === 'ok'"
            )
            version = page.input_value("#save-version")
            started = page.evaluate("performance.now()")
            page.click("#save")
            page.wait_for_selector("body[data-ready='diff']", state="attached", timeout=60_000)
            save.append((page.evaluate("performance.now()") - started) / 1000)
            base = version
            context.close()
        browser.close()

    figure("page ready, cold", ready, 1.0)
    figure("  main-thread busy", ready_busy, 1.0)
    figure("page ready, warm", warm, 1.0)
    figure("  main-thread busy", warm_busy, 1.0)
    figure("validate round trip (in the page)", validate, 0.3)
    figure("validate round trip (HTTP only)", direct, 0.3)
    figure("save + diff", save, 1.0)


if __name__ == "__main__":
    main()
