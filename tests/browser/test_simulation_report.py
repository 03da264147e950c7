"""The policy simulation's HTML report as a browser shows it: the rates first, charts with their days."""

from __future__ import annotations

from typer.testing import CliRunner

from govflow.cli import app as cli

SCENARIO = """\
period: {days: 2, drain_days: 2}
arrivals: {per_day: 10}
streets: {gulou.nanjie: 1}
matters: {road.*: 1}
decisions: {call_out: 0.8}
evaluations: {silent: 0}
"""


def test_the_report_reads_in_a_browser(browser, tmp_path, artefacts):
    scenario, report = tmp_path / "scenario.yaml", tmp_path / "report.html"
    scenario.write_text(SCENARIO, "utf-8")
    result = CliRunner().invoke(cli, ["simulate", "--scenario", str(scenario), "--seed", "3", "--html", str(report)])
    assert result.exit_code == 0, result.output
    page = browser.new_page(viewport={"width": 1280, "height": 1600})
    try:
        page.goto(report.as_uri())
        headings = page.locator("h3").all_inner_texts()
        assert headings[:2] == ["Supervision rates (district)", "Queues and waits"]
        rates = {
            row[0]: row[2]
            for row in page.locator("table.rates tr").evaluate_all(
                "rows => rows.slice(1).map(r => [...r.cells].map(c => c.innerText))"
            )
        }
        assert len(rates) == 18
        for name in ("call_accuracy", "report_in_rating", "disposal_rating", "satisfaction", "completion_rate"):
            assert rates[name] != "-", name  # the simulated people give every rating
        charts = page.locator("svg")
        assert charts.count() == 3
        for index in range(3):
            box = charts.nth(index).bounding_box()
            assert box is not None and box["width"] >= 800 and box["height"] >= 200
        ticks = charts.nth(0).locator("text").all_text_contents()
        assert "day 1" in ticks and "2" in ticks  # the time axis says which day of the run
        # nothing wider than the window: no sideways scrolling to read a table
        assert page.evaluate("document.documentElement.scrollWidth") <= 1280
        page.screenshot(path=str(artefacts / "simulation-report.png"), full_page=True)
    finally:
        page.close()
