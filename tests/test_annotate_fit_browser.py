"""The annotation tool fits the image after a submit and on "Next": an annotator who zoomed in to fix a nail
is not left at several hundred percent on an empty corner (headless Chromium, the page's view transform)."""
import pytest
from playwright.sync_api import expect

from labeling.annotations import save_annotation
from labeling.models import Annotation
from tests.browser import login
from tests.conftest import make_user

pytestmark = [pytest.mark.django_db(transaction=True)]

COMPLETE = {"nails": [{"polygon": [[200, 150], [260, 150], [260, 230], [200, 230]], "finger": 2,
                       "base": [230, 225], "tip": [230, 155]}]}


def view_of(page):
    return page.evaluate("({...annotator.view.snapshot(), fitted: annotator.view.fitted, fitScale: annotator.view.fitScale,"
                         " zoom: document.getElementById('zoom').textContent})")


def assert_fitted(view, width, height):
    assert view["fitted"], view
    assert view["scale"] == pytest.approx(view["fitScale"]), view
    assert view["tx"] == pytest.approx((view["width"] - width * view["scale"]) / 2), view  # centred
    assert view["ty"] == pytest.approx((view["height"] - height * view["scale"]) / 2), view
    assert view["zoom"] == f"{round(view['scale'] * 100)}%", view


def test_submit_and_next_show_the_whole_image(browser, live_server, make_image, tmp_path):
    annotator = make_user("ann", "annotator")
    first, second = make_image(640, 480), make_image(800, 600)
    save_annotation(first, annotator, geometry=COMPLETE, version=0)  # a draft of ann's, ready to submit
    errors = []
    page = browser.new_context(viewport={"width": 1440, "height": 900}).new_page()
    page.on("pageerror", lambda error: errors.append(str(error)))
    login(page, live_server.url, "ann", "ann-password-123")
    page.goto(f"{live_server.url}/annotate/{first.pk}/")
    expect(page.locator("#app")).to_have_attribute("data-ready", "1", timeout=15_000)
    assert_fitted(view_of(page), 640, 480)

    page.locator("#stage canvas.layer-ui").click(position={"x": 5, "y": 5})
    for _ in range(8):
        page.keyboard.press("+")                      # zoom in far (about 6x the fitted scale)
    zoomed = view_of(page)
    assert not zoomed["fitted"] and zoomed["scale"] > 5 * zoomed["fitScale"], zoomed

    page.click("#submit")
    expect(page.locator("#status-chip")).to_have_text("submitted", timeout=10_000)
    assert Annotation.objects.get(image=first).status == "submitted"
    assert_fitted(view_of(page), 640, 480)

    for _ in range(6):
        page.keyboard.press("+")
    assert not view_of(page)["fitted"]
    page.click("#next")
    page.wait_for_url(f"{live_server.url}/annotate/{second.pk}/")
    expect(page.locator("#app")).to_have_attribute("data-ready", "1", timeout=15_000)
    assert_fitted(view_of(page), 800, 600)
    page.screenshot(path=str(tmp_path / "fit-next.png"))
    page.context.close()
    assert not errors, errors
