"""The try-on page without an active model explains, in the page, how to get one (with links each role may
open) and shows no dead control: no broken "After" image, no download link to '#', no shell advice. With a
model, the "After" picture and the download appear only once a photo is painted."""
import re
from html.parser import HTMLParser

import pytest
from django.test import Client
from playwright.sync_api import expect

from tests.browser import login, watched_page
from tests.conftest import jpeg_bytes, make_user
from tests.test_tryon import hand_picture, make_model_version


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links, self.images, self.controls = [], [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "a":
            self.links.append(attrs.get("href"))
        elif tag == "img":
            self.images.append(attrs.get("src"))
        elif tag in ("button", "input", "select"):
            self.controls.append(attrs.get("id") or attrs.get("name") or tag)


def _main(html: str) -> str:
    return html.split("<main>", 1)[1].split("</main>", 1)[0]  # the page itself, not the navigation bar


def _tags(html: str) -> _Tags:
    tags = _Tags()
    tags.feed(_main(html))
    return tags


@pytest.mark.django_db
def test_without_a_model_each_role_is_told_how_to_get_one(users):
    pages = {}
    for role in ("admin", "reviewer", "annotator"):
        client = Client()
        client.force_login(users[role])
        html = client.get("/tryon/").content.decode()
        tags = _tags(html)
        assert "No active model" in html and "manage.py" not in html, role
        assert "#" not in tags.links and None not in tags.links, (role, tags.links)
        assert tags.images == [], (role, tags.images)  # no "After" (or any) picture without a model
        assert not {"photo", "render", "webcam-start", "color", "download"} & set(tags.controls), (role, tags.controls)
        assert 'id="download"' not in html and "tryon.js" not in html
        for href in tags.links:  # every link on the page opens for this user
            assert client.get(href).status_code == 200, (role, href)
        pages[role] = tags.links
    assert {"/training/", "/models/", "/dataset/"} <= set(pages["admin"])
    assert {"/training/", "/models/"} <= set(pages["reviewer"])
    assert pages["annotator"] == []  # they could open neither: told that an admin does it

    make_model_version("waiting", active=False)
    admin = Client()
    admin.force_login(users["admin"])
    html = admin.get("/tryon/").content.decode()
    assert "1 trained version is waiting" in html and "/models/" in _tags(html).links


def _no_broken_pictures(page):
    broken = page.evaluate("""() => [...document.images].filter((img) => img.offsetParent !== null
        && (!img.getAttribute("src") || !img.complete || img.naturalWidth === 0)).map((img) => img.outerHTML)""")
    assert broken == [], broken


@pytest.mark.django_db(transaction=True)
def test_in_chromium_no_dead_control_and_the_download_only_after_painting(browser, live_server, tmp_path):
    make_user("boss", "admin", is_staff=True)
    page, errors, _ = watched_page(browser, viewport={"width": 1100, "height": 900})
    failures = []
    page.on("response", lambda r: r.status >= 400 and failures.append(f"{r.status} {r.url}"))
    login(page, live_server.url, "boss", "boss-password-123")

    page.goto(f"{live_server.url}/tryon/")
    expect(page.locator("#no-model")).to_be_visible()
    expect(page.locator("#get-a-model")).to_contain_text("Start a training run")
    assert page.locator("main a[href='#'], #download, #after, #render, #photo").count() == 0
    expect(page.locator("main")).not_to_contain_text("manage.py")
    _no_broken_pictures(page)
    page.screenshot(path=str(tmp_path / "tryon-no-model.png"), full_page=True)
    page.click("#get-a-model a[href='/training/']")
    page.wait_for_url(f"{live_server.url}/training/")
    page.go_back()
    page.click("#get-a-model a[href='/models/']")
    page.wait_for_url(f"{live_server.url}/models/")

    # With an active model (painted by the server): nothing to download until a photo is painted.
    make_model_version()
    photo = tmp_path / "hand.jpg"
    photo.write_bytes(jpeg_bytes(hand_picture(480, 360)))
    page.goto(f"{live_server.url}/tryon/")
    expect(page.locator("#model-name")).to_have_text("tiny-tryon")
    expect(page.locator("#engine-note")).not_to_contain_text("manage.py")
    expect(page.locator("#download")).to_be_hidden()
    assert page.locator("#download").get_attribute("href") is None
    page.set_input_files("#photo", str(photo))
    expect(page.locator("#before")).to_be_visible()
    expect(page.locator("#nail-count")).to_have_text(re.compile(r"^\d+ nails? found$"), timeout=60_000)
    expect(page.locator("#after")).to_be_visible()
    expect(page.locator("#download")).to_be_visible()
    expect(page.locator("#download")).to_have_attribute("href", re.compile(r"^data:image/jpeg;base64,"))
    _no_broken_pictures(page)
    page.screenshot(path=str(tmp_path / "tryon-painted.png"), full_page=True)
    assert not errors, errors
    assert failures == [], failures
    page.context.close()
