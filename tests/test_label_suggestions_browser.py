"""In Chromium (issue #16): an annotator opens an accepted image whose imported nails are outlines only
(the incomplete-labels queue), sees the suggestion ghosted (the finger dashed in the two-hands panel, with
its confidence), presses G to accept the selected nail's suggestion and Shift+G for the rest, submits, and the
fingers and base/tip are stored confirmed (no "suggested" marks), the right fingers for the drawn hand."""
import pytest
from playwright.sync_api import expect

from labeling.annotations import import_annotation
from labeling.models import Annotation
from tests.browser import open_annotation_tool
from tests.conftest import make_user, wait_for
from tests.test_complete_labels import hand_image, outlines

pytestmark = [pytest.mark.django_db(transaction=True)]


def test_accept_suggestions_with_the_keyboard(browser, live_server, participant):
    make_user("ann", "annotator")
    image, truth = hand_image(participant)
    import_annotation(image, outlines(truth), status="accepted", note="imported outlines")
    url = live_server.url
    page, errors, _, console = open_annotation_tool(browser, url, "ann", "ann-password-123", image.pk, "?queue=incomplete")
    expect(page.locator("#readonly-banner")).to_have_count(0)

    page.keyboard.press("Tab")                                   # selects nail 1
    first = truth[0]["finger"]
    ghost = page.locator(f"#hands .finger.ghost[data-finger='{first}']")
    expect(ghost).to_have_count(1)                                # the suggested finger, dashed
    expect(page.locator("#hands .finger.ghost")).to_have_count(1)
    expect(page.locator("#hands .hands-hint")).to_contain_text("suggested")
    expect(page.locator("#hands .hands-hint")).to_contain_text("G accepts")
    expect(page.locator("#nails .nail-row .code").first).to_have_text("?")  # not set until accepted

    page.keyboard.press("g")
    expect(page.locator("#nails .nail-row .code").first).not_to_have_text("?")
    expect(page.locator("#hands .finger.ghost")).to_have_count(0)
    saved = wait_for(lambda: (a := Annotation.objects.get(image=image)).geometry["nails"][0]["finger"] is not None and a,
                     timeout=20, message="the accepted suggestion to be saved")
    nail = saved.geometry["nails"][0]
    assert nail["finger"] == first and nail["base"] and nail["tip"] and "suggested" not in nail
    assert all(n["finger"] is None for n in saved.geometry["nails"][1:])   # G touched the selected nail only
    assert saved.revisions.latest("version").author.username == "ann"

    page.keyboard.press("Control+z")                              # undoable like any edit
    expect(page.locator("#nails .nail-row .code").first).to_have_text("?")
    page.keyboard.press("Shift+G")                                # every nail
    expect(page.locator("#issues .issue.ok")).to_have_count(1, timeout=10_000)   # complete: ready to submit
    page.keyboard.press("Control+Enter")
    done = wait_for(lambda: (a := Annotation.objects.get(image=image)).status == "submitted" and a, timeout=20,
                    message="the labels to be submitted")
    for nail, true in zip(done.geometry["nails"], truth):
        assert nail["finger"] == true["finger"] and "suggested" not in nail
        assert (nail["tip"][1] < nail["base"][1]) == (true["tip"][1] < true["base"][1])
    assert errors == [] and console == []
    page.context.close()


def test_picking_the_suggested_finger_in_the_panel_confirms_it(browser, live_server, participant):
    """The dashed (suggested) finger of the selected nail, clicked in the two-hands panel (or picked with its keys),
    becomes its confirmed finger, as G would make it; before, the click did nothing (the finger was already set)."""
    make_user("ann", "annotator")
    image, truth = hand_image(participant)
    geometry = outlines(truth)
    finger = truth[0]["finger"]
    geometry["nails"][0].update(finger=finger, suggested={"finger": 0.7})
    import_annotation(image, geometry, status="accepted", note="imported outlines, one suggested finger")
    url = live_server.url
    page, errors, _, _ = open_annotation_tool(browser, url, "ann", "ann-password-123", image.pk, "?queue=incomplete")
    page.keyboard.press("Tab")                                   # selects nail 1
    expect(page.locator(f"#hands .finger.ghost[data-finger='{finger}']")).to_have_count(1)
    page.click(f"#hands .finger[data-finger='{finger}']")
    expect(page.locator("#hands .finger.ghost")).to_have_count(0)
    expect(page.locator(f"#hands .finger.current[data-finger='{finger}']")).to_have_count(1)
    saved = wait_for(lambda: "suggested" not in (a := Annotation.objects.get(image=image)).geometry["nails"][0] and a,
                     timeout=20, message="the confirmed finger to be saved")
    assert saved.geometry["nails"][0]["finger"] == finger
    assert errors == []
    page.context.close()


def test_a_nail_just_drawn_shows_its_suggestion_before_the_autosave(browser, live_server, participant):
    """The ghosts follow an edit within a moment (the page asks with its own nails), not after the autosave's
    2.5 s pause: a quick annotator sees the suggestion of the nail just drawn, read against the others."""
    from shapely.geometry import Polygon

    from tests.test_annotation_tool_browser import Canvas
    from tests.test_click_nail_browser import wait_js

    make_user("ann", "annotator")
    image, truth = hand_image(participant)
    page, errors, requests, console = open_annotation_tool(browser, live_server.url, "ann", "ann-password-123", image.pk)
    canvas = Canvas(page)
    wait_js(page, "annotator.suggestions.answered >= 1")          # the first question, at start
    outline = Polygon(truth[2]["polygon"]).simplify(0.8).exterior.coords[:-1]
    page.keyboard.press("n")
    for x, y in outline:
        canvas.click(x, y)
    page.keyboard.press("Enter")
    assert page.evaluate("annotator.scene.geometry.nails.length") == 1
    wait_js(page, "annotator.suggestions.ghost(annotator.scene.geometry, 0)", timeout=2)
    ghost = page.evaluate("annotator.suggestions.ghost(annotator.scene.geometry, 0)")
    assert ghost["base"] and ghost["tip"]
    assert Annotation.objects.get(image=image).version == 0        # nothing saved yet: the page's own nails
    assert errors == [] and console == []
    page.context.close()


def test_g_on_a_field_only_suggested_takes_the_suggestion_of_the_nail_as_it_is_now(browser, live_server, participant):
    """A finger and arrow stored as suggestions (a draft's, say, made before its outline was corrected) give way
    to the page's suggestion of the nail as it is now: G sets that one, confirmed."""
    make_user("ann", "annotator")
    image, truth = hand_image(participant)
    labels = outlines(truth)
    stale = truth[0]["finger"] % 10 + 1                                   # a wrong finger, only suggested
    labels["nails"][0].update(finger=stale, base=truth[0]["tip"], tip=truth[0]["base"],
                              suggested={"finger": 0.3, "landmarks": 0.3})
    import_annotation(image, labels, status="accepted", note="a draft's stale suggestions")
    page, errors, _, console = open_annotation_tool(browser, live_server.url, "ann", "ann-password-123", image.pk,
                                                    "?queue=incomplete")
    wait_for(lambda: page.evaluate("annotator.suggestionsSettled() && annotator.suggestions.answered >= 1"),
             timeout=15, message="the suggestions of the page's nails")
    page.keyboard.press("Tab")                                            # selects nail 1
    expect(page.locator(f"#hands .finger.ghost[data-finger='{truth[0]['finger']}']")).to_have_count(1)
    page.keyboard.press("g")
    nail = page.evaluate("JSON.parse(JSON.stringify(annotator.scene.geometry.nails[0]))")
    assert nail["finger"] == truth[0]["finger"] and "suggested" not in nail
    assert (nail["tip"][1] < nail["base"][1]) == (truth[0]["tip"][1] < truth[0]["base"][1])   # the arrow turned
    assert errors == [] and console == []
    page.context.close()
