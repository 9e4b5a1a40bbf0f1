"""In Chromium on a phone-sized screen: a participant consents, uploads two photos and a short video,
sees the progress and the resulting list; an admin then sees the images, video frames included."""
import re

import pytest
from playwright.sync_api import expect

from labeling.models import Image, Participant
from tests.browser import login
from tests.conftest import jpeg_bytes, make_user, synthetic_picture
from tests.media import video_bytes
from tests.worker import running_worker

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def worker(django_db_blocker):
    with running_worker("intake-browser@localhost", queues="default") as process:
        yield process


def test_participant_uploads_from_a_phone_and_admin_sees_frames(browser, live_server, worker, tmp_path):
    participant = Participant.objects.create(code="P-PHONE")
    files = []
    for name, data in [("left.jpg", jpeg_bytes(synthetic_picture(120, 90, (180, 90, 100)))),
                       ("right.jpg", jpeg_bytes(synthetic_picture(90, 120, (90, 180, 100)))),
                       ("wave.mp4", video_bytes(seconds=3, fps=10))]:
        path = tmp_path / name
        path.write_bytes(data)
        files.append(str(path))

    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = phone.new_page()
    page.goto(f"{live_server.url}{participant.upload_path}")
    page.click("#consent-submit")  # without ticking the box: refused
    expect(page.get_by_role("alert")).to_contain_text("tick the box")
    page.check("#agree")
    page.click("#consent-submit")
    page.wait_for_selector("#uploader[data-ready='1']")  # the uploader module has attached its handlers
    page.set_input_files("#files", files)
    for name in ("left.jpg", "right.jpg", "wave.mp4"):
        row = page.locator("#queue li", has_text=name)
        expect(row.locator(".state")).to_have_text(re.compile("received"), timeout=30_000)
        expect(row.locator("progress")).to_have_attribute("value", "100")
    expect(page.locator("#sent li[data-status=ready]")).to_have_count(3, timeout=60_000)
    expect(page.locator("#sent li", has_text="wave.mp4")).to_contain_text("frames")
    expect(page.locator("#sent img").first).to_be_visible()
    page.screenshot(path=str(tmp_path / "participant.png"), full_page=True)
    phone.close()

    frames = Image.objects.filter(participant=participant, frame_index__isnull=False).count()
    assert frames >= 2 and Image.objects.filter(participant=participant).count() == 2 + frames

    make_user("chief", is_staff=True, is_superuser=True)
    desk = browser.new_context()
    page = desk.new_page()
    login(page, live_server.url, "chief", "chief-password-123")
    page.goto(f"{live_server.url}/admin/labeling/image/?participant__id__exact={participant.pk}")
    expect(page.locator("#result_list tbody tr")).to_have_count(2 + frames)
    expect(page.locator("#result_list tbody td.field-frame_index", has_text=re.compile(r"\d"))).to_have_count(frames)
    desk.close()
