"""Every role, in Chromium: start at the home page and reach every page of the role through the navigation
bar alone (clicking its links), with no console error and no 4xx/5xx answer to any request; the links a
role may not use are not there. The admin also cancels a job on the jobs page and watches a new job appear."""
import os
import re

import pytest
from playwright.sync_api import expect

from jobs.models import Job
from tests.browser import login, watched_page
from tests.site_support import populate_site

SITE_PAGES = {  # the navigation bar's pages in the site's own layout, with a path the page must end on
    "annotate-queue": "/annotate/", "review-list": "/review/", "dataset": "/dataset/", "training": "/training/",
    "models": "/models/", "prelabel-review": "/prelabel/", "tryon": "/tryon/", "jobs": "/jobs/",
}
ROLE_PAGES = {
    "ann": ["annotate-queue", "tryon", "api-docs"],
    "rev": ["review-list", "dataset", "training", "models", "prelabel-review", "tryon", "api-docs"],
    "root": ["annotate-queue", "review-list", "dataset", "training", "models", "prelabel-review", "tryon", "jobs",
             "api-docs", "admin:index"],
}
ALL_NAMES = set(ROLE_PAGES["root"])
SCREENSHOTS = os.environ.get("NAILSET_SCREENSHOTS")  # a folder: the walk also saves what each page looks like


@pytest.fixture
def site(db, participant, make_image):
    """Every page has something to show (tests/site_support.py), plus jobs."""
    populate_site("nav", make_image)
    queued = Job.objects.create(kind="snapshot", key="snapshot:nav", status="queued", message="waiting for a worker")
    Job.objects.create(kind="verify_media", key="verify_media:nav", status="succeeded", progress=1.0, message="all good",
                       log="checked 2 files")
    return {"queued": queued}


class Walk:
    """A signed-in page that records console errors, uncaught exceptions and every 4xx/5xx answer."""

    def __init__(self, browser, base_url: str, username: str, viewport=(1440, 900)):
        self.page, self.errors, _ = watched_page(browser, viewport={"width": viewport[0], "height": viewport[1]})
        self.console: list[str] = []
        self.failed: list[str] = []
        self.page.on("console", lambda m: self.console.append(f"{m.text} ({m.location.get('url')})") if m.type == "error" else None)
        self.page.on("response", lambda r: self.failed.append(f"{r.status} {r.request.method} {r.url}") if r.status >= 400 else None)
        self.page.on("requestfailed", lambda r: self.failed.append(f"failed {r.method} {r.url}: {r.failure}"))
        self.base_url = base_url
        login(self.page, base_url, username, f"{username}-password-123")

    def nav_names(self) -> list[str]:
        return self.page.locator("nav.site-nav a").evaluate_all("links => links.map(a => a.dataset.nav)")

    def follow(self, name: str):
        """Click the navigation bar's link ``name`` and wait for the page it opens."""
        with self.page.expect_navigation():
            self.page.click(f"nav.site-nav a[data-nav='{name}']")
        self.page.wait_for_load_state("load")
        self.page.wait_for_timeout(400)  # the page's own first requests
        return self.page

    def assert_clean(self):
        self.page.wait_for_timeout(300)
        assert self.failed == [], self.failed
        assert self.console == [], self.console
        assert self.errors == [], self.errors


def walk_every_page(walk: Walk, username: str, base_url: str):
    page = walk.page
    assert page.url == f"{base_url}/"
    expected = ROLE_PAGES[username]
    assert walk.nav_names() == expected
    for name in ALL_NAMES - set(expected):  # what this role may not open is not offered
        assert page.locator(f"nav.site-nav a[data-nav='{name}']").count() == 0
    for name in [n for n in expected if n in SITE_PAGES]:
        walk.follow(name)
        assert page.url.startswith(f"{base_url}{SITE_PAGES[name]}"), (name, page.url)
        expect(page.locator("nav.site-nav a[aria-current=page]")).to_have_attribute("data-nav", name)
        assert walk.nav_names() == expected  # the same bar on every page
        if SCREENSHOTS:
            page.screenshot(path=os.path.join(SCREENSHOTS, f"{username}-{name}.png"), full_page=True)
    # The API docs and Django's admin have their own layout: they come last, back to the site in between.
    walk.follow("api-docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("NailSet API", timeout=30_000)
    page.go_back()
    page.wait_for_load_state("load")
    if "admin:index" in expected:
        walk.follow("admin:index")
        expect(page.locator("#site-name, h1").first).to_be_visible()
        assert page.url == f"{base_url}/admin/"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("username", ["ann", "rev", "root"])
def test_each_role_reaches_its_pages_through_the_navigation_bar(browser, live_server, site, username):
    walk = Walk(browser, live_server.url, username)
    walk_every_page(walk, username, live_server.url)
    walk.assert_clean()
    walk.page.context.close()


@pytest.mark.django_db(transaction=True)
def test_jobs_page_cancels_and_refreshes_itself(browser, live_server, site):
    walk = Walk(browser, live_server.url, "root")
    page = walk.follow("jobs")
    queued = site["queued"]
    row = page.locator(f"tr[data-job='{queued.pk}']")
    expect(row.locator(".job-status")).to_have_text("queued")
    row.locator("button[data-cancel]").click()
    expect(row.locator(".job-status")).to_have_text("cancelled")
    expect(row.locator("button[data-cancel]")).to_have_count(0)
    assert Job.objects.get(pk=queued.pk).status == "cancelled"
    # a job started elsewhere shows up without a reload, with its progress and log
    fresh = Job.objects.create(kind="train", key="train:nav", queue="training", status="running", progress=0.25,
                               message="epoch 1/4", log="epoch 1 started")
    new_row = page.locator(f"tr[data-job='{fresh.pk}']")
    expect(new_row).to_contain_text("epoch 1/4", timeout=10_000)
    expect(new_row).to_contain_text("25\u00a0%")
    new_row.locator("summary").click()
    expect(new_row.locator("pre")).to_have_text("epoch 1 started")
    Job.objects.filter(pk=fresh.pk).update(progress=0.5, message="epoch 2/4")
    expect(new_row).to_contain_text("epoch 2/4", timeout=10_000)
    expect(new_row.locator("details")).to_have_attribute("open", "")  # an open log stays open across refreshes
    # the filters
    page.select_option("#job-filters select[name=status]", "cancelled")
    with page.expect_navigation():
        page.click("#job-filters button")
    expect(page.locator("#jobs-table tbody tr[data-job]")).to_have_count(1)
    expect(page.locator("#jobs-count")).to_have_text(re.compile(r"^1 job\b"))
    walk.assert_clean()
    walk.page.context.close()


@pytest.mark.django_db(transaction=True)
def test_navigation_wraps_on_a_phone(browser, live_server, site):
    walk = Walk(browser, live_server.url, "root", viewport=(390, 844))
    page = walk.page
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390  # nothing runs off the side
    for link in page.locator("nav.site-nav a").all():
        box = link.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390, box
    if SCREENSHOTS:
        page.screenshot(path=os.path.join(SCREENSHOTS, "root-home-phone.png"), full_page=True)
    walk.assert_clean()
    walk.page.context.close()
