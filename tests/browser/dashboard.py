"""The dashboard in a real headless Chromium (Debian's), driven by Playwright.

Run by the integration test `dashboard_browser` with a daemon and a dashboard
already running for a project whose task `todo` finds TODO comments:

    dashboard.py URL TOKEN PROJECT_DIR SCREENSHOT_DIR BGTASK

Opens the overview (a project card), runs `todo` from the project page and
sees it run and finish without reloading, pauses automation with a reason
and resumes it, opens the run and sees the finding's
source line, turns its task off and on and sees an edit that would break
the config refused with its problem, then stops the daemon, sees the page say so, and starts it again
from the page. Screenshots of
each page go to SCREENSHOT_DIR; timings are printed as one JSON line. Any
failed expectation raises, and the exit code is not 0.
"""

import json
import os
import subprocess
import sys
import time

from playwright.sync_api import expect, sync_playwright

url, token, project_dir, shots, bgtask = sys.argv[1:6]
chromium = os.environ.get("BGTASK_CHROMIUM", "/usr/bin/chromium")
timings = {}

with sync_playwright() as pw:
    browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
    page = browser.new_page(viewport={"width": 1100, "height": 800}, color_scheme="light")

    try:
        started = time.monotonic()
        page.goto(f"{url}/?token={token}")
        card = page.locator(".card").first
        expect(card).to_contain_text("daemon up")
        timings["first_card_ms"] = round((time.monotonic() - started) * 1000, 1)
        assert "token=" not in page.url, f"the token stays out of the address bar: {page.url}"
        expect(page.locator("#live")).to_have_text("live")
        page.screenshot(path=f"{shots}/overview.png", full_page=True)

        card.locator("h2 a").click()
        expect(page.get_by_role("heading", name="Run a task")).to_be_visible()
        page.get_by_role("button", name="Run todo").click()
        expect(page.locator("#said")).to_contain_text("queued")
        # Seen running, then in the history: the page follows the event
        # stream; it is never reloaded.
        expect(page.locator("table").filter(has_text="elapsed")).to_contain_text("todo")
        history = page.locator("table").filter(has_text="verdict")
        expect(history).to_contain_text("manual: dashboard", timeout=30000)
        expect(page.get_by_text("Nothing runs.")).to_be_visible(timeout=30000)
        expect(history).not_to_contain_text("running")
        page.screenshot(path=f"{shots}/project.png", full_page=True)
        # Automation paused from the page with a reason (a small form),
        # shown on the project's card, and resumed.
        page.get_by_role("button", name="Pause automation…").click()
        dialog = page.locator("#pause-dialog")
        dialog.get_by_label("Reason").fill("big refactor")
        dialog.get_by_role("button", name="Pause", exact=True).click()
        banner = page.locator(".paused")
        expect(banner).to_contain_text("Automation paused: big refactor")
        status = subprocess.run([bgtask, "status", "--json"], cwd=project_dir, check=True, capture_output=True, text=True)
        assert json.loads(status.stdout)["automation"]["reason"] == "big refactor", status.stdout
        page.screenshot(path=f"{shots}/paused.png", full_page=True)
        banner.get_by_role("button", name="Resume").click()
        expect(page.get_by_role("button", name="Pause automation…")).to_be_visible()
        expect(banner).to_have_count(0)
        page.get_by_role("button", name="Check health now").click()
        expect(page.locator("#said")).to_contain_text("health ")
        page.get_by_role("button", name="Clean up now").click()
        expect(page.locator("#said")).to_contain_text("cleaned up:")
        # The history filtered (from the store, by the daemon) and sorted.
        page.get_by_label("outcome").select_option("failed")
        expect(page.get_by_text("No runs match.")).to_be_visible()
        page.get_by_label("outcome").select_option("")
        expect(history).to_contain_text("manual: dashboard")
        page.get_by_role("button", name="took").click()
        expect(page.locator("#history th[aria-sort=ascending]")).to_contain_text("took")
        page.locator("#nav").get_by_role("link", name="Trust").click()
        expect(page.get_by_role("heading", name="Trust")).to_be_visible()
        expect(page.locator("table").filter(has_text="what it runs")).to_contain_text("todo")
        # Trusting asks first, as `bgtask trust` does; a "no" trusts nothing.
        page.once("dialog", lambda d: d.dismiss())
        page.get_by_role("button", name="Trust what is listed…").click()
        expect(page.locator("#said")).to_have_text("not trusted")
        page.once("dialog", lambda d: d.accept())
        page.get_by_role("button", name="Trust what is listed…").click()
        expect(page.get_by_text("Everything listed is trusted.")).to_be_visible()
        status = subprocess.run([bgtask, "trust", "--status", "--json"], cwd=project_dir, check=True, capture_output=True, text=True)
        assert json.loads(status.stdout)["todo"]["state"] == "trusted", status.stdout
        page.locator("#nav").get_by_role("link", name="Project").click()
        history = page.locator("table").filter(has_text="verdict")

        history.locator("a").first.click()
        expect(page.locator("h2")).to_contain_text("Run")
        expect(page.locator("tr.source")).to_contain_text("TODO: handle the empty list")
        expect(page.locator("h4")).to_contain_text("app.py")
        expect(page.locator("tr.finding .new")).to_have_text("new")
        expect(page.get_by_text("the task's first run: everything is new")).to_be_visible()
        page.screenshot(path=f"{shots}/run.png", full_page=True)
        # A severity hidden and shown again (kept in this browser).
        severity = page.locator("fieldset.filters input").first
        severity.uncheck()
        expect(page.locator("tr.finding")).to_have_count(0)
        page.locator("fieldset.filters input").first.check()
        expect(page.locator("tr.finding")).to_have_count(1)

        # Tasks: turned off and on again, and an edit that would break the
        # config refused with its problem, from the page.
        page.locator("#nav").get_by_role("link", name="Tasks & config").click()
        row = page.locator("tr").filter(has_text="todo").first
        row.get_by_role("button", name="Disable").click()
        expect(row.locator("td").nth(1)).to_have_text("off")
        local = json.load(open(os.path.join(project_dir, ".background-tasks.local.json")))
        assert local == {"tasks": {"todo": {"enabled": False}}}, local
        editor = page.locator("#editor")
        editor.get_by_label("Name").fill("broken")
        editor.get_by_label("Definition").fill('{"analyzers": ["nope"], "triggers": ["save"]}')
        editor.get_by_role("button", name="Save").click()
        expect(page.locator("#problems")).to_contain_text(".background-tasks.local.json:")
        expect(page.locator("#problems")).to_contain_text("unknown analyzer `nope`")
        page.screenshot(path=f"{shots}/tasks.png", full_page=True)
        row.get_by_role("button", name="Enable").click()
        expect(row.locator("td").nth(1)).to_have_text("on")

        subprocess.run([bgtask, "stop"], cwd=project_dir, check=True, capture_output=True)
        page.goto(f"{url}/#/")
        expect(page.locator(".card").first).to_contain_text("daemon down")
        expect(page.locator(".card").first).to_contain_text("bgtask start")
        page.screenshot(path=f"{shots}/down.png", full_page=True)
        page.get_by_role("button", name="Start it").click()
        expect(page.locator(".card").first).to_contain_text("daemon up", timeout=20000)
    except Exception:
        # What the page showed when an expectation failed.
        page.screenshot(path=f"{shots}/failure.png", full_page=True)
        raise
    browser.close()

print(json.dumps(timings))
