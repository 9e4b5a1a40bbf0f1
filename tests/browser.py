"""Playwright with Debian's Chromium (never `playwright install`: nothing may be downloaded).

The ``browser`` fixture lives in tests/conftest.py (one Chromium for the whole session: Playwright
refuses a second instance in the same thread); this module holds what it launches and helpers."""

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def login(page, base_url: str, username: str, password: str) -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    page.wait_for_url(f"{base_url}/")


def watched_page(browser, **context_options):
    """A page in a new context that records its uncaught script errors and every request's URL:
    ``(page, errors, requests)``; tests assert ``errors == []`` and what was (not) requested."""
    page = browser.new_context(**context_options).new_page()
    errors, requests = [], []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("request", lambda request: requests.append(request.url))
    return page, errors, requests


def console_errors(page) -> list[str]:
    """The texts of the console errors the page logs from now on (tests assert the list stays empty)."""
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text) if message.type == "error" else None)
    return console


def open_annotation_tool(browser, base_url: str, username: str, password: str, image_id: int, query: str = ""):
    """Logged in as ``username``, the annotation tool of one image, ready to use (1400x900):
    ``(page, errors, requests, console)`` as :func:`watched_page` and :func:`console_errors` give them."""
    from playwright.sync_api import expect

    page, errors, requests = watched_page(browser, viewport={"width": 1400, "height": 900})
    console = console_errors(page)
    login(page, base_url, username, password)
    page.goto(f"{base_url}/annotate/{image_id}/{query}")
    expect(page.locator("#app")).to_have_attribute("data-ready", "1", timeout=15_000)
    return page, errors, requests, console
