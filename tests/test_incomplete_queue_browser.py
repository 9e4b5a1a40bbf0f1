"""In Chromium: an annotator goes from the home page to the queue's "Incomplete labels" tab, opens an
accepted image whose imported nails have no finger nor landmarks, and completes it: the page is editable
(not read-only as accepted labels are), the finger set with the keyboard is saved, base and tip too, and
the submitted labels go back to review and leave the queue."""
import pytest
from playwright.sync_api import expect

from labeling.annotations import import_annotation
from labeling.models import Annotation
from tests.browser import console_errors, login, watched_page
from tests.conftest import make_user, wait_for

pytestmark = [pytest.mark.django_db(transaction=True)]

NAIL = [[100, 100], [200, 100], [200, 250], [100, 250]]
COMPLETE = {"nails": [{"polygon": [[300, 120], [400, 120], [400, 260], [300, 260]], "finger": 8, "base": [350, 250], "tip": [350, 130]}]}


def test_complete_an_accepted_imported_outline_from_the_queue(browser, live_server, make_image):
    make_user("ann", "annotator")
    outline, complete = make_image(640, 480), make_image(640, 480)
    import_annotation(outline, {"nails": [{"polygon": NAIL}]}, status="accepted", note="imported")
    import_annotation(complete, COMPLETE, status="accepted", note="imported")
    url = live_server.url
    page, errors, _ = watched_page(browser, viewport={"width": 1400, "height": 900})
    console = console_errors(page)
    login(page, url, "ann", "ann-password-123")

    page.click("#link-annotate")
    expect(page.locator("#tab-incomplete .tab-count")).to_have_text("1")
    page.click("#tab-incomplete")
    expect(page.locator("#incomplete-list tbody tr")).to_have_count(1)
    expect(page.locator("#incomplete-list tbody tr")).to_have_attribute("data-image", str(outline.pk))
    page.click("#next-incomplete")
    page.wait_for_url(f"{url}/annotate/{outline.pk}/?queue=incomplete")
    expect(page.locator("#app")).to_have_attribute("data-ready", "1", timeout=15_000)
    assert Annotation.objects.get(image=outline).assignee.username == "ann"  # claimed

    # Editable although accepted: no read-only banner, the tools and Submit are enabled, the banner says what to do.
    expect(page.locator("#readonly-banner")).to_have_count(0)
    expect(page.locator("#incomplete-banner")).to_contain_text("no finger or no base/tip")
    expect(page.locator("#submit")).to_be_enabled()
    expect(page.locator("button[data-tool=nail]")).to_be_enabled()

    page.keyboard.press("Tab")                    # selects the nail
    page.keyboard.press("l")
    page.keyboard.press("2")                      # left index
    expect(page.locator("#nails .nail-row .code")).to_have_text(["L2"])
    saved = wait_for(lambda: (a := Annotation.objects.get(image=outline)).geometry["nails"][0]["finger"] == 2 and a,
                     timeout=20, message="the finger to be saved")
    assert saved.status == "draft" and saved.assignee.username == "ann" and saved.revisions.latest("version").author.username == "ann"

    # Base and tip at the mouse (B, T), then submit: back to review, out of the incomplete queue. The label
    # suggestions (fetched at start and after each save) must be in first: their hint can change the layout,
    # and with it where the photo lies on the page.
    expect(page.locator(".hands-hint")).to_contain_text("G accepts", timeout=15_000)
    view = page.evaluate("annotator.view.snapshot()")
    box = page.locator("#stage canvas.layer-ui").bounding_box()

    def to_page(x, y):
        return box["x"] + view["tx"] + x * view["scale"], box["y"] + view["ty"] + y * view["scale"]

    page.mouse.move(*to_page(150, 240))
    page.keyboard.press("b")
    page.mouse.move(*to_page(150, 110))
    page.keyboard.press("t")
    expect(page.locator("#issues .issue.ok")).to_have_count(1, timeout=10_000)  # complete: ready to submit
    page.click("#submit")
    done = wait_for(lambda: (a := Annotation.objects.get(image=outline)).status == "submitted" and a, timeout=20,
                    message="the labels to be submitted")
    nail = done.geometry["nails"][0]
    assert nail["finger"] == 2 and abs(nail["base"][1] - 240) < 2 and abs(nail["tip"][1] - 110) < 2

    page.goto(f"{url}/annotate/?queue=incomplete")
    expect(page.locator("#tab-incomplete .tab-count")).to_have_text("0")
    expect(page.locator("#incomplete-list")).to_have_count(0)
    assert errors == [] and console == []
    page.context.close()


def open_one_nail(browser, live_server, make_image):
    """An accepted imported outline with a finger and no base/tip, open in the page for an annotator:
    ``(image, page, errors)``."""
    make_user("ann", "annotator")
    image = make_image(640, 480)
    import_annotation(image, {"nails": [{"polygon": NAIL, "finger": 2}]}, status="accepted", note="imported")
    page, errors, _ = watched_page(browser, viewport={"width": 1400, "height": 900})
    login(page, live_server.url, "ann", "ann-password-123")
    page.goto(f"{live_server.url}/annotate/{image.pk}/?queue=incomplete")
    expect(page.locator("#app")).to_have_attribute("data-ready", "1", timeout=15_000)
    return image, page, errors


def landmarks_of_first_nail(page):
    nail = page.evaluate("annotator.scene.geometry.nails[0]")
    return nail["base"], nail["tip"], nail.get("suggested")


def test_shift_t_aims_the_arrow_at_the_mouse_in_one_key(browser, live_server, make_image):
    """Shift+T with the mouse by the nail's tip puts base and tip where the nail's axis through its middle towards
    the mouse leaves the outline (one undoable edit), as the suggestions place them; saved like B / T."""
    image, page, errors = open_one_nail(browser, live_server, make_image)
    page.keyboard.press("Tab")                    # selects the nail
    expect(page.locator(".hands-hint")).to_contain_text("G accepts", timeout=15_000)   # the layout has settled
    view = page.evaluate("annotator.view.snapshot()")
    box = page.locator("#stage canvas.layer-ui").bounding_box()
    page.mouse.move(box["x"] + view["tx"] + 170 * view["scale"], box["y"] + view["ty"] + 60 * view["scale"])
    page.keyboard.press("Shift+T")               # up and a little right of the middle (150, 175): the top edge

    base, tip, marks = landmarks_of_first_nail(page)
    # From (150, 175) towards (170, 60): the top edge (y = 100) at x = 163.04, the bottom (y = 250) at x = 136.96.
    assert abs(tip[0] - 163.04) < 0.6 and abs(tip[1] - 100) < 0.02, tip
    assert abs(base[0] - 136.96) < 0.6 and abs(base[1] - 250) < 0.02, base
    assert not marks
    page.keyboard.press("Control+z")
    assert landmarks_of_first_nail(page)[:2] == (None, None)
    page.keyboard.press("Control+Shift+z")
    assert landmarks_of_first_nail(page)[:2] == (base, tip)
    saved = wait_for(lambda: (a := Annotation.objects.get(image=image)).geometry["nails"][0]["tip"] and a, timeout=20,
                     message="base and tip to be saved")
    assert saved.geometry["nails"][0]["base"] == base and saved.geometry["nails"][0]["tip"] == tip
    assert errors == []
    page.context.close()


def test_shift_drag_draws_the_arrow_from_base_to_tip_in_one_stroke(browser, live_server, make_image):
    """Shift+drag from a nail's base to its tip sets both ends where the drag began and ended (snapped onto the
    outline; one undoable edit, confirmed, saved); a Shift+drag that starts on no nail changes no landmark."""
    image, page, errors = open_one_nail(browser, live_server, make_image)
    view = page.evaluate("annotator.view.snapshot()")
    box = page.locator("#stage canvas.layer-ui").bounding_box()

    def to_screen(x, y):
        return box["x"] + view["tx"] + x * view["scale"], box["y"] + view["ty"] + y * view["scale"]

    def shift_drag(start, end):
        page.keyboard.down("Shift")
        page.mouse.move(*to_screen(*start))
        page.mouse.down()
        page.mouse.move(*to_screen((start[0] + end[0]) / 2, (start[1] + end[1]) / 2), steps=4)
        page.mouse.move(*to_screen(*end), steps=4)
        page.mouse.up()
        page.keyboard.up("Shift")

    shift_drag((400, 400), (450, 300))             # starts on no nail: the view pans, no landmark is set
    assert landmarks_of_first_nail(page)[:2] == (None, None)
    view = page.evaluate("annotator.view.snapshot()")
    shift_drag((140, 249), (165, 101))             # from just inside the bottom edge to just inside the top one
    base, tip, marks = landmarks_of_first_nail(page)
    assert base == [140, 249] and tip == [165, 101], (base, tip)
    assert not marks                               # drawn by hand: confirmed
    shift_drag((120, 230), (230, 80))              # ends outside the outline: snapped onto its nearest edge
    base, tip, _ = landmarks_of_first_nail(page)
    assert base == [120, 230] and tip[1] == 100 and 195 <= tip[0] <= 200, (base, tip)
    page.keyboard.press("Control+z")
    assert landmarks_of_first_nail(page)[:2] == ([140, 249], [165, 101])
    page.keyboard.press("Control+Shift+z")
    assert landmarks_of_first_nail(page)[:2] == (base, tip)
    page.keyboard.press("n")                       # in the nail tool too, while no outline is being drawn
    shift_drag((150, 249), (150, 101))
    assert landmarks_of_first_nail(page)[:2] == ([150, 249], [150, 101]) and page.evaluate("annotator.editor.drawing.length") == 0
    page.keyboard.press("Control+z")
    saved = wait_for(lambda: (a := Annotation.objects.get(image=image)).geometry["nails"][0]["tip"] == tip and a,
                     timeout=20, message="the drawn arrow to be saved")
    assert saved.geometry["nails"][0]["base"] == base
    assert errors == []
    page.context.close()
