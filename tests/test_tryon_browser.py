"""In Chromium: an annotator opens the try-on page, uploads a photo, picks a colour and a finish, and gets
the photo painted by the server with the active (tiny, untrained) model."""
import re

import pytest
from playwright.sync_api import expect

from tests.browser import login
from tests.conftest import jpeg_bytes, make_user
from tests.test_tryon import hand_picture, make_model_version

pytestmark = pytest.mark.django_db(transaction=True)


def test_tryon_page_paints_an_uploaded_photo(browser, live_server, tmp_path):
    make_user("painter", "annotator")
    photo = tmp_path / "hand.jpg"
    photo.write_bytes(jpeg_bytes(hand_picture(480, 360)))

    context = browser.new_context(viewport={"width": 1100, "height": 900})
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    login(page, live_server.url, "painter", "painter-password-123")

    # No active model yet: the page says so and cannot paint.
    page.goto(f"{live_server.url}/tryon/")
    expect(page.locator("#no-model")).to_be_visible()
    expect(page.locator("#engine-note")).to_contain_text("In-browser inference comes with the model's TensorFlow.js export")
    expect(page.locator("#render")).to_be_disabled()

    make_model_version()
    page.goto(f"{live_server.url}/tryon/")
    expect(page.locator("#model-name")).to_have_text("tiny-tryon")
    expect(page.locator("#engine-note")).to_contain_text("rendered on the server")
    page.click(".swatch[aria-label='Navy']")
    expect(page.locator("#color-value")).to_have_text("#1F2A44")
    expect(page.locator(".swatch[aria-label='Navy']")).to_have_attribute("aria-pressed", "true")
    page.set_input_files("#photo", str(photo))
    expect(page.locator("#nail-count")).to_have_text(re.compile(r"^\d+ nails? found$"), timeout=60_000)
    expect(page.locator("#after")).to_have_attribute("src", re.compile(r"^data:image/jpeg;base64,"))
    expect(page.locator("#status")).to_have_text("Painted #1F2A44 glossy.")
    width = page.eval_on_selector("#after", "img => img.naturalWidth")
    assert width == 480
    expect(page.locator("#timing")).to_contain_text("inference")

    # Another finish and a colour from the picker re-render the same photo.
    page.check("input[name=finish][value=matte]")
    expect(page.locator("#status")).to_have_text("Painted #1F2A44 matte.", timeout=60_000)
    page.fill("#color", "#00827f")
    expect(page.locator("#status")).to_have_text("Painted #00827F matte.", timeout=60_000)
    expect(page.locator("#download")).to_have_attribute("href", re.compile(r"^data:image/jpeg"))
    expect(page.locator("#error")).to_have_text("")
    page.screenshot(path=str(tmp_path / "tryon.png"), full_page=True)
    assert not errors, errors
    context.close()
