"""The console in a real browser: Debian's Chromium, driven by Playwright.

Run by the end-to-end test `console::browser` (tests/tests/e2e/console/browser.rs),
which starts the real suite and the console, registers the units and files the
complaints. The two talk over stdin/stdout, one line each way:

    this script prints  "need complaint"   the test files one, with a photo,
    the test answers    "sr <SR number>"   once intake has it

and "step <words>" lines say how far the script got. Every check is an
`expect` that waits for the page (live updates arrive by server-sent events,
never by reloading); the first that fails ends the script with its message.
Screenshots go to --artifacts.
"""

import argparse
import re
import sys
from pathlib import Path

from playwright.sync_api import Page, expect, sync_playwright

LIVE = 20_000  # ms: a live update arrives within a few 2 s polls


def step(words: str) -> None:
    print(f"step {words}", flush=True)


def ask_for_complaint() -> str:
    print("need complaint", flush=True)
    answer = sys.stdin.readline().split()
    if len(answer) != 2 or answer[0] != "sr":
        raise SystemExit(f"expected 'sr <number>' from the test, got {answer!r}")
    return answer[1]


def sign_in(page: Page, url: str, role: str, badge: str, precinct: str) -> None:
    page.goto(f"{url}/sign-in")
    expect(page.get_by_text("Development only.")).to_be_visible()
    page.get_by_label("Role").select_option(role)
    page.get_by_label("Badge or staff number").fill(badge)
    page.get_by_label("Precinct").fill(precinct)
    page.get_by_role("button", name="Sign in").click()


def close_as(page: Page, resolution: str) -> None:
    details = page.locator("details.close")
    if details.get_attribute("open") is None:
        page.get_by_text("Close the job", exact=True).first.click()
    page.get_by_label("What you did").select_option(resolution)
    page.get_by_role("button", name="Close the job").click()


def main() -> None:
    args = argparse.ArgumentParser()
    args.add_argument("--url", required=True)
    args.add_argument("--chromium", default="/usr/bin/chromium")
    args.add_argument("--precinct", required=True)
    args.add_argument("--supervisor", required=True)
    args.add_argument("--officer", required=True)
    args.add_argument("--unit", required=True, help="the officer's unit's call sign")
    args.add_argument("--emergency-unit", required=True, help="a unit on a 911 job")
    args.add_argument("--waiting-job", required=True, help="id of a queued job with a short SLA")
    args.add_argument("--latitude", type=float, required=True)
    args.add_argument("--longitude", type=float, required=True)
    args.add_argument("--expired-cookie", required=True)
    args.add_argument("--cookie-name", required=True)
    args.add_argument("--artifacts", type=Path, required=True)
    opts = args.parse_args()
    opts.artifacts.mkdir(parents=True, exist_ok=True)
    for stale in opts.artifacts.glob("failed-*.png"):
        stale.unlink()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=opts.chromium, headless=True, args=["--no-sandbox"]
        )
        try:
            run(browser, opts)
        except BaseException:
            # what each page showed when it failed, beside the screenshots
            for n, context in enumerate(browser.contexts):
                for m, page in enumerate(context.pages):
                    page.screenshot(path=opts.artifacts / f"failed-{n}-{m}.png", full_page=True)
            raise
        browser.close()
    print("done", flush=True)


def run(browser, opts) -> None:
    url = opts.url
    desk = browser.new_context(viewport={"width": 1400, "height": 900})
    board = desk.new_page()

    step("the supervisor signs in and sees the board")
    sign_in(board, url, "supervisor", opts.supervisor, opts.precinct)
    expect(board).to_have_url(f"{url}/board")
    expect(board.get_by_role("heading", name=f"Precinct {opts.precinct}")).to_be_visible()
    units = board.locator("#units")
    expect(units).to_contain_text(opts.unit)
    expect(units.locator(f"tr[data-unit='{opts.emergency_unit}']")).to_contain_text("On a 911 job")
    waiting_clock = board.locator(f"tr[data-job='{opts.waiting_job}'] time.sla")
    expect(waiting_clock).to_contain_text("left")

    step("a new complaint appears on the board without a reload")
    board.evaluate("window.stillTheSamePage = true")
    sr = ask_for_complaint()
    row = board.locator("#queue tr", has_text=sr)
    expect(row).to_be_visible(timeout=LIVE)
    assert board.evaluate("window.stillTheSamePage === true"), "the board reloaded"
    board.screenshot(path=opts.artifacts / "board.png", full_page=True)

    step("the officer's phone waits for an assignment")
    phone = browser.new_context(
        viewport={"width": 390, "height": 844},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        geolocation={"latitude": opts.latitude, "longitude": opts.longitude},
        permissions=["geolocation"],
    )
    officer = phone.new_page()
    sign_in(officer, url, "officer", opts.officer, opts.precinct)
    expect(officer).to_have_url(f"{url}/officer")
    expect(officer.locator("#assignment")).to_contain_text("No assignment")

    step("the supervisor assigns the recommended unit; the 911 unit is not offered")
    row.get_by_role("link", name=sr).click()
    recommended = board.locator("#recommended")
    expect(recommended).to_contain_text(opts.unit)
    expect(recommended).not_to_contain_text(opts.emergency_unit)
    board.get_by_role("button", name=re.compile(f"^Assign {re.escape(opts.unit)}")).click()
    expect(board.locator("#job-state")).to_have_text("Assigned")

    step("the assignment arrives on the phone live")
    assignment = officer.locator("#assignment")
    expect(assignment).to_contain_text(sr, timeout=LIVE)
    expect(officer.locator("#assignment-state")).to_have_text("Assigned")
    maps = officer.get_by_role("link", name="Open in maps")
    expect(maps).to_have_attribute("href", re.compile(r"^geo:40\.\d+,-73\.\d+$"))

    for button, state in [
        ("Acknowledge", "Acknowledged"),
        ("En route", "En route"),
        ("On scene", "On scene"),
    ]:
        step(f"the officer taps {button}")
        officer.get_by_role("button", name=button, exact=True).click()
        expect(officer.locator("#assignment-state")).to_have_text(state)
    officer.screenshot(path=opts.artifacts / "officer.png", full_page=True)

    step("closing a police matter as outside jurisdiction is refused in words")
    close_as(officer, "RESOLUTION_CODE_OUTSIDE_JURISDICTION")
    refusal = officer.locator("#refusal")
    expect(refusal).to_contain_text("police jurisdiction")
    expect(refusal).to_contain_text("Choose what officers did at the scene.")
    expect(refusal).not_to_contain_text("POLICE_MATTER")
    officer.screenshot(path=opts.artifacts / "officer-refused.png", full_page=True)

    step("closing before the photo is opened is refused in words")
    close_as(officer, "RESOLUTION_CODE_ACTION_TAKEN")
    expect(refusal).to_contain_text("open the photos first")
    expect(refusal).to_contain_text("Open the photos below, then close the job.")

    step("the officer relays a question to the complainant")
    officer.get_by_text("Ask the complainant a question").click()
    officer.get_by_label(re.compile("^Your question")).fill("Is the car still in front of the hydrant?")
    officer.get_by_role("button", name="Send the question").click()
    expect(officer.get_by_role("status")).to_contain_text("Your question went to the complainant")

    step("the officer opens the photo, then closes")
    officer.get_by_role("link", name="Open photo 1").click()
    expect(officer.locator("img.evidence")).to_be_visible()
    assert officer.locator("img.evidence").evaluate("img => img.naturalWidth > 0"), "the photo shows"
    officer.get_by_role("link", name="← Back").click()
    close_as(officer, "RESOLUTION_CODE_ACTION_TAKEN")
    expect(officer.locator("#assignment")).to_contain_text(f"{sr} is closed", timeout=LIVE)
    expect(officer.locator("#assignment")).to_contain_text("No assignment")

    step("the supervisor's job page shows it closed, live, and the timeline verified")
    expect(board.locator("#job-state")).to_have_text("Closed", timeout=LIVE)
    expect(board.locator(".timeline")).to_contain_text("Photo opened")
    expect(board.locator(".timeline")).to_contain_text("Is the car still in front of the hydrant?")
    board.reload()
    expect(board.locator("#verification")).to_contain_text("Verified: the chain of")
    board.screenshot(path=opts.artifacts / "job.png", full_page=True)

    step("the fast closure is on the review list")
    board.get_by_role("link", name="Review").click()
    review_row = board.locator("#review tr", has_text=sr)
    expect(review_row).to_have_count(1)
    expect(review_row).to_contain_text("Closed fast: closed")
    board.screenshot(path=opts.artifacts / "review.png", full_page=True)

    step("the figures show the closure")
    board.get_by_role("link", name="Figures").click()
    expect(board.locator("table.figures")).to_contain_text("the last 24 hours")

    step("the waiting job's SLA clock turns overdue")
    board.get_by_role("link", name="Board").click()
    waiting_clock = board.locator(f"tr[data-job='{opts.waiting_job}'] time.sla")
    expect(waiting_clock).to_contain_text("overdue", timeout=90_000)
    expect(board.locator(f"tr[data-job='{opts.waiting_job}']")).to_have_class(re.compile("overdue"))

    step("every control has a label, the keyboard reaches them, nothing overflows at 200% zoom")
    for page in (board, officer):
        unlabelled = page.evaluate(
            """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
                   .filter(c => c.labels.length === 0 && !c.getAttribute('aria-label'))
                   .map(c => c.outerHTML)"""
        )
        assert unlabelled == [], f"controls without a label: {unlabelled}"
    board.get_by_role("link", name="Board").click()
    board.keyboard.press("Tab")
    focused = board.evaluate("document.activeElement.textContent.trim()")
    assert focused == "dispatch311", f"the first Tab reaches the first link, got {focused!r}"
    outline = board.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("none", ""), f"the focused link shows its focus ({outline})"
    # 200% zoom of a 1400-pixel window: the page lays out in 700 CSS pixels
    board.set_viewport_size({"width": 700, "height": 450})
    overflow = board.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the board is {overflow} px wider than the window at 200%"
    board.screenshot(path=opts.artifacts / "board-200-percent.png", full_page=True)
    board.set_viewport_size({"width": 1400, "height": 900})

    step("an officer opening the board is turned away")
    answer = officer.goto(f"{url}/board")
    assert answer is not None and answer.status == 403, answer and answer.status
    expect(officer.get_by_role("heading", name="Not for your role")).to_be_visible()

    step("a signed-out visitor, a forged cookie and an expired one reach the sign-in page")
    for name, cookie in [
        ("nobody", None),
        ("forged", "bm90IGEgc2Vzc2lvbg"),
        ("expired", opts.expired_cookie),
    ]:
        visitor = browser.new_context()
        if cookie is not None:
            visitor.add_cookies([{"name": opts.cookie_name, "value": cookie, "url": url}])
        page = visitor.new_page()
        page.goto(f"{url}/board")
        expect(page, f"{name} is sent to sign in").to_have_url(f"{url}/sign-in")
        visitor.close()


if __name__ == "__main__":
    main()
