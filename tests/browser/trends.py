"""The project page's plots over time in a real headless Chromium (Debian's),
driven by Playwright.

Run by the integration test `dashboard_trends` with a daemon and a dashboard
already running for a project whose task `todo` ran twice:

    trends.py URL TOKEN SCREENSHOT_DIR

Opens the project page and sees every plot drawn (a canvas, a caption with
the latest values), picks the task `todo` and sees the captions say its
runs, then looks again in dark mode in a narrow window (no plot wider than
the page). Any message on the console (an error, a CSP refusal) fails it.
Screenshots go to SCREENSHOT_DIR (trends.png, trends-dark-narrow.png). Any
failed expectation raises, and the exit code is not 0.
"""

import json
import os
import sys
import time

from playwright.sync_api import expect, sync_playwright

url, token, shots = sys.argv[1:4]
chromium = os.environ.get("BGTASK_CHROMIUM", "/usr/bin/chromium")
PLOTS = ["Findings by severity", "New and fixed findings", "Run duration", "Success rate", "Queue wait"]
timings = {}


def console(problems, m):
    # The browser's own request for a favicon is not the page's.
    if m.type in ("error", "warning") and not m.location.get("url", "").endswith("/favicon.ico"):
        problems.append(f"console {m.type}: {m.text} ({m.location.get('url')})")


def project_page(page, problems):
    page.on("console", lambda m: console(problems, m))
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    started = time.monotonic()
    page.goto(f"{url}/?token={token}")
    page.locator(".card h2 a").first.click()
    expect(page.get_by_role("heading", name="Over time")).to_be_visible()
    expect(page.locator("#plots canvas")).to_have_count(len(PLOTS), timeout=15000)
    return round((time.monotonic() - started) * 1000, 1)


def check_plots(page):
    captions = page.locator("#plots figcaption")
    expect(captions).to_have_count(len(PLOTS))
    for i, title in enumerate(PLOTS):
        cap = captions.nth(i)
        expect(cap).to_contain_text(title)
        expect(cap).to_contain_text("latest of")
        # The caption is the plot's text alternative.
        labelled = page.locator(f'#plots [role="img"][aria-labelledby="{cap.get_attribute("id")}"]')
        expect(labelled).to_have_count(1)
        assert labelled.locator("canvas").first.bounding_box()["width"] > 100, title
    # A plot drew something: pixels that are not the background.
    drawn = page.evaluate("""() => {
        const c = document.querySelector('#plots canvas');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 3; i < d.length; i += 4) if (d[i]) n++;
        return n;
    }""")
    assert drawn > 100, f"only {drawn} pixels drawn"


with sync_playwright() as pw:
    browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
    problems = []
    page = browser.new_page(viewport={"width": 1100, "height": 900}, color_scheme="light")
    try:
        timings["plots_drawn_ms"] = project_page(page, problems)
        check_plots(page)
        page.select_option("#trend-task", "todo")
        expect(page.locator("#trend-task")).to_have_value("todo")
        expect(page.locator("#plots figcaption").nth(2)).to_contain_text("2 runs")
        expect(page.locator("#plots canvas")).to_have_count(len(PLOTS))
        page.locator("#trends").screenshot(path=f"{shots}/trends.png")
    except Exception:
        page.screenshot(path=f"{shots}/failure.png", full_page=True)
        raise
    page.close()

    narrow = browser.new_page(viewport={"width": 420, "height": 900}, color_scheme="dark")
    try:
        project_page(narrow, problems)
        check_plots(narrow)
        widest = narrow.evaluate("() => Math.max(...[...document.querySelectorAll('#plots .uplot')].map((u) => u.getBoundingClientRect().right))")
        assert widest <= 420, f"a plot reaches {widest}px in a 420px window"
        axis = narrow.evaluate("() => getComputedStyle(document.documentElement).getPropertyValue('--muted').trim()")
        assert axis == "#9198a1", f"dark colours: {axis}"
        narrow.locator("#trends").screenshot(path=f"{shots}/trends-dark-narrow.png")
    except Exception:
        narrow.screenshot(path=f"{shots}/failure.png", full_page=True)
        raise
    browser.close()
    assert not problems, "\n".join(problems)

print(json.dumps(timings))
