"""The participant page on a phone (Chromium at 390x844): a refused file looks refused (red row, a cross, the name
still on its line, the reason wrapped below it, no full progress bar), and sending the same file again updates
its row instead of adding one."""
import pytest
from django.conf import settings
from django.utils import timezone
from playwright.sync_api import expect

from labeling.models import Participant, Upload
from tests.conftest import jpeg_bytes, synthetic_picture

pytestmark = [pytest.mark.django_db(transaction=True)]

REFUSED_NAME = "holiday-photo-of-my-left-hand-with-the-new-red-polish-taken-on-the-beach.jpg"


def test_refused_files_look_refused_and_repeats_update_their_row(browser, live_server, tmp_path):
    participant = Participant.objects.create(code="P-REFUSE", consent_at=timezone.now(),
                                             consent_version=settings.NAILSET_CONSENT_VERSION)
    text = tmp_path / REFUSED_NAME
    text.write_text("these are my shopping notes, not a photo\n" * 20)
    good = tmp_path / "hand.jpg"
    good.write_bytes(jpeg_bytes(synthetic_picture(120, 90, (180, 90, 100))))
    copy = tmp_path / "hand-copy.jpg"
    copy.write_bytes(good.read_bytes())

    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = phone.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{live_server.url}{participant.upload_path}")
    page.wait_for_selector("#uploader[data-ready='1']")
    page.set_input_files("#files", [str(text), str(good)])

    refused = page.locator("#queue li", has_text=REFUSED_NAME)
    expect(refused).to_have_class("upload refused", timeout=15_000)
    expect(refused.locator(".state")).to_have_text("refused")
    expect(refused.locator(".icon")).to_have_text("✕")
    expect(refused.locator("progress")).to_be_hidden()
    reason = refused.locator(".reason")
    expect(reason).to_be_visible()
    expect(reason).to_contain_text("not a photo or video we can read")       # the server's reason, in full
    assert page.evaluate("getComputedStyle(document.querySelector('#queue li.refused')).backgroundColor") != "rgba(0, 0, 0, 0)"

    name = refused.locator(".name")
    expect(name).to_be_visible()
    row_box, name_box, reason_box = refused.bounding_box(), name.bounding_box(), reason.bounding_box()
    assert name_box["width"] > 120, name_box                                   # the name keeps its room ...
    assert name_box["x"] + name_box["width"] <= row_box["x"] + row_box["width"] + 0.5, (name_box, row_box)
    assert name.evaluate("(node) => node.scrollWidth > node.clientWidth")      # ... cut with an ellipsis
    assert name.get_attribute("title") == REFUSED_NAME
    assert reason_box["y"] >= name_box["y"] + name_box["height"] - 0.5, (reason_box, name_box)  # the reason is below it
    assert reason_box["x"] + reason_box["width"] <= row_box["x"] + row_box["width"] + 0.5     # and wraps inside the row
    assert page.evaluate("document.documentElement.scrollWidth") <= 390                     # nothing pushed off screen

    accepted = page.locator("#queue li", has_text="hand.jpg")
    expect(accepted).to_have_class("upload ok", timeout=15_000)
    expect(accepted.locator(".state")).to_have_text("received")
    expect(accepted.locator("progress")).to_have_attribute("value", "100")
    page.screenshot(path=str(tmp_path / "refused.png"))
    page.screenshot(path=str(tmp_path / "refused.png"))

    page.set_input_files("#files", [str(good)])          # the same file again: its row says so, no new row
    expect(accepted.locator(".state")).to_have_text("already sent")
    page.set_input_files("#files", [str(copy)])          # the same bytes under another name: the server knows it
    expect(page.locator("#queue li")).to_have_count(2)
    expect(accepted.locator(".state")).to_have_text("already sent")
    page.wait_for_timeout(500)
    expect(page.locator("#queue li")).to_have_count(2)
    assert Upload.objects.filter(participant=participant).count() == 1

    page.set_input_files("#files", [str(text)])          # a refused file again: tried again in its own row
    expect(page.locator("#queue li")).to_have_count(2)
    expect(refused).to_have_class("upload refused", timeout=15_000)
    phone.close()
    assert not errors, errors
