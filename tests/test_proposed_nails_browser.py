"""A model draft's nails the model is unsure of, in Chromium (issue #18): they are proposed (ghosted), not shown
as nails; the first is selected at the start; P / Shift+P select the next / previous one (the view follows it
off screen); Delete rejects the selected one (gone, the next selected), a click selects one and Enter accepts it (a normal nail, selected, one undoable edit); submitting waits until each is
decided. What is saved holds the sure nail, the accepted one and the undecided ones, never the rejected one; the
help lists the keys."""
import numpy as np
import pytest
from PIL import Image as PILImage
from playwright.sync_api import expect

from labeling.intake import create_image
from labeling.models import Annotation
from ml.postprocess import postprocess
from prelabel import drafts, proposals
from tests.browser import open_annotation_tool
from tests.conftest import make_user, wait_for
from tests.test_annotation_tool_browser import Canvas
from tests.test_prelabel_suggested import model_version
from training.serving import ImagePrediction

pytestmark = [pytest.mark.django_db(transaction=True)]

WIDTH, HEIGHT = 96, 48
COLUMNS = {"sure": slice(6, 22), "unsure_a": slice(38, 54), "unsure_b": slice(70, 86)}   # three nails, left to right
ROWS = slice(10, 38)


def centre(name):
    return (COLUMNS[name].start + COLUMNS[name].stop) / 2, (ROWS.start + ROWS.stop) / 2


def draft_with_unsure_nails(participant):
    picture = np.full((HEIGHT, WIDTH, 3), (180, 160, 150), np.uint8)
    fg = np.full((HEIGHT, WIDTH), 0.02, np.float32)
    for name, columns in COLUMNS.items():
        picture[ROWS, columns] = (220, 40, 120)
        fg[ROWS, columns] = 0.95 if name == "sure" else proposals.PROPOSE_BELOW - 0.05
    image, _ = create_image(participant, PILImage.fromarray(picture), "PNG")
    result = ImagePrediction(postprocess(fg, None, None), fg, uncertainty=0.1, input_size=(HEIGHT, WIDTH), seconds=0.01)
    prediction = drafts.save_prediction(image, model_version("unsure-model"), result)
    assert prediction.draft_state == "drafted" and prediction.nail_count == 3
    return image


def column_of(polygon):
    x = sum(p[0] for p in polygon) / len(polygon)
    return next(name for name, columns in COLUMNS.items() if columns.start <= x <= columns.stop)


def test_unsure_draft_nails_are_accepted_or_rejected_with_one_key(browser, live_server, participant):
    make_user("ann", "annotator")
    image = draft_with_unsure_nails(participant)
    page, errors, _, console = open_annotation_tool(browser, live_server.url, "ann", "ann-password-123", image.pk)
    wait_for(lambda: page.evaluate("annotator.proposed.nails.length") == 2, timeout=15, message="the proposals")
    canvas = Canvas(page)
    nails = lambda: [column_of(n["polygon"]) for n in page.evaluate("annotator.scene.geometry.nails")]  # noqa: E731
    proposed = lambda: [column_of(e["nail"]["polygon"]) for e in page.evaluate("annotator.proposed.nails")]  # noqa: E731
    assert nails() == ["sure"] and proposed() == ["unsure_a", "unsure_b"]
    assert page.evaluate("annotator.proposed.current") == 0
    expect(page.locator("#prelabel-banner")).to_contain_text("Enter accepts the selected one, Delete rejects it")
    expect(page.locator("#message")).to_contain_text("Enter accepts it as a nail, Delete rejects it")
    assert page.evaluate("annotator.autosaver.dirty") is False   # taking them out is not an edit

    page.keyboard.press("p")                                       # P: the next proposed nail ...
    assert page.evaluate("annotator.proposed.current") == 1
    expect(page.locator("#message")).to_contain_text("Proposed nail 2 of 2")
    page.keyboard.press("Shift+P")                                 # ... Shift+P the previous one
    assert page.evaluate("annotator.proposed.current") == 0
    on_screen = lambda name: page.evaluate(  # noqa: E731
        "([x, y]) => { const [sx, sy] = annotator.view.toScreen(x, y);"
        " return sx >= 0 && sy >= 0 && sx <= annotator.view.width && sy <= annotator.view.height; }", list(centre(name)))
    for _ in range(6):
        page.keyboard.press("+")                                   # zoomed in on the middle: unsure_b is off screen ...
    assert not on_screen("unsure_b")
    page.keyboard.press("p")                                       # ... P selects it and the view follows it
    assert page.evaluate("annotator.proposed.current") == 1 and on_screen("unsure_b")
    page.keyboard.press("p")                                       # round the list: the first again
    assert page.evaluate("annotator.proposed.current") == 0 and on_screen("unsure_a")
    page.keyboard.press("f")
    assert page.evaluate("annotator.autosaver.dirty") is False     # selecting is not an edit

    canvas.click(*centre("sure"))
    page.keyboard.press("Control+Enter")                           # submitting waits for a decision on each proposal
    expect(page.locator("#message")).to_contain_text("2 proposed nail(s) to decide on first")
    assert page.evaluate("annotator.proposed.current") == 0 and page.evaluate("annotator.scene.selection") is None
    assert Annotation.objects.get(image=image).status == "draft"

    page.keyboard.press("Delete")                                  # rejects unsure_a; unsure_b is selected
    assert proposed() == ["unsure_b"] and page.evaluate("annotator.proposed.current") == 0
    assert nails() == ["sure"]
    assert page.evaluate("annotator.autosaver.dirty") is True     # the rejection is saved ...
    page.keyboard.press("Control+s")
    kept = wait_for(lambda: (lambda g: g if len(g["nails"]) == 2 else None)(Annotation.objects.get(image=image).geometry),
                    timeout=15, message="the save of the rejection")
    assert sorted(column_of(n["polygon"]) for n in kept["nails"]) == ["sure", "unsure_b"]  # ... the undecided one stays

    canvas.click(*centre("sure"))                                  # selecting a nail deselects the proposal
    assert page.evaluate("annotator.proposed.current") is None
    page.keyboard.press("Escape")
    canvas.click(*centre("unsure_b"))                              # a click inside a proposal selects it
    assert page.evaluate("annotator.proposed.current") == 0
    assert page.evaluate("annotator.scene.selection") is None
    page.keyboard.press("Enter")                                   # accepts it: a normal nail, selected
    assert nails() == ["sure", "unsure_b"] and proposed() == []
    assert page.evaluate("annotator.scene.selection.index") == 1
    assert page.evaluate("annotator.scene.history.undoLabel") == "Accept proposed nail"
    page.keyboard.press("Escape")
    page.keyboard.press("Control+z")                               # undoing the accept proposes it again ...
    assert nails() == ["sure"] and proposed() == ["unsure_b"]
    page.keyboard.press("Control+Shift+z")                         # ... and redoing accepts it again
    assert nails() == ["sure", "unsure_b"] and proposed() == []

    page.keyboard.press("Control+s")
    saved = wait_for(lambda: (lambda g: g if len(g["nails"]) == 2 else None)(Annotation.objects.get(image=image).geometry),
                     timeout=15, message="the save")
    assert sorted(column_of(n["polygon"]) for n in saved["nails"]) == ["sure", "unsure_b"]

    page.keyboard.press("?")
    expect(page.locator("#help-body")).to_contain_text("Reject the selected proposed nail")
    expect(page.locator("#help-body")).to_contain_text("Select the next / previous proposed nail")
    assert errors == [] and console == []
