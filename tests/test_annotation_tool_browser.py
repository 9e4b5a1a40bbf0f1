"""The annotation tool and the review workflow in headless Chromium.

1. An annotator opens the next image, draws two nails by clicking, sets their fingers by keyboard, places
   base and tip, drags a vertex, undoes and redoes, waits for the autosave, reloads and gets exactly that
   geometry from the API (screen clicks mapped to image pixels through the canvas transform). A second
   browser saves from a stale version, sees the conflict and keeps its labels as a new revision: both
   versions are in the revision history. The first browser then gets a conflict too and reloads theirs
   (its own labels stay one undo away). The annotator submits; a reviewer compares two revisions and
   rejects with a comment; the annotator sees the comment in the queue and on the image.
2. On a 4032x3024 photo with 20 nails, mouse moves and a vertex drag redraw only the interaction layer
   (the scene layer is drawn once when the drag starts and once when it ends); vertex insertion and
   deletion, nail deletion and moves, landmark drags, ignore regions, zoom, pan, brightness, the
   rasterizer overlay and the help overlay work there too.
3. Invalid labels are saved as drawn, flagged, and come back flagged after a reload; labels the server has not
   got (saves failing) are kept in the browser and offered back after a reload.
"""

import pytest
from playwright.sync_api import expect

from labeling.annotations import save_annotation
from labeling.models import Annotation, AnnotationRevision
from tests.browser import login
from tests.conftest import make_user

pytestmark = [pytest.mark.django_db(transaction=True)]


VIEWPORT = {"width": 1400, "height": 900}
EPS = 0.011  # coordinates are stored with 2 decimals


class Canvas:
    """Maps image pixels to page pixels through the page's view transform, and back."""

    def __init__(self, page):
        self.page = page
        self.refresh()

    def refresh(self):
        view = self.page.evaluate("annotator.view.snapshot()")
        box = self.page.locator("#stage canvas.layer-ui").bounding_box()
        self.scale, self.tx, self.ty = view["scale"], view["tx"], view["ty"]
        self.left, self.top = box["x"], box["y"]

    def to_page(self, x, y):
        """The whole page pixel nearest to image point (x, y) (with the transform of now)."""
        self.refresh()
        return round(self.left + self.tx + x * self.scale), round(self.top + self.ty + y * self.scale)

    def to_image(self, px, py):
        return [round((px - self.left - self.tx) / self.scale, 2), round((py - self.top - self.ty) / self.scale, 2)]

    def click(self, x, y, **options):
        px, py = self.to_page(x, y)
        self.page.mouse.click(px, py, **options)
        return self.to_image(px, py)

    def move(self, x, y):
        px, py = self.to_page(x, y)
        self.page.mouse.move(px, py)
        return self.to_image(px, py)

    def drag(self, start, end, steps=8):
        self.move(*start)
        self.page.mouse.down()
        px, py = self.to_page(*end)
        self.page.mouse.move(px, py, steps=steps)
        self.page.mouse.up()
        return self.to_image(px, py)


def assert_points_close(actual, expected, what):
    assert actual is not None and expected is not None, (what, actual, expected)
    assert len(actual) == len(expected), (what, actual, expected)
    for a, e in zip(actual, expected):
        if isinstance(e[0], (list, tuple)):
            assert_points_close(a, e, what)
        else:
            assert abs(a[0] - e[0]) <= EPS and abs(a[1] - e[1]) <= EPS, (what, actual, expected)


def assert_geometry(geometry, expected):
    nails = geometry["nails"]
    assert len(nails) == len(expected["nails"]), geometry
    for index, (nail, want) in enumerate(zip(nails, expected["nails"])):
        assert nail["finger"] == want["finger"], (index, nail)
        assert_points_close(nail["polygon"], want["polygon"], f"nail {index + 1} polygon")
        assert_points_close([nail["base"], nail["tip"]], [want["base"], want["tip"]], f"nail {index + 1} landmarks")
    assert geometry.get("ignore", []) == expected.get("ignore", [])


def open_tool(page, errors):
    page.on("pageerror", lambda error: errors.append(str(error)))
    expect(page.locator("#app")).to_have_attribute("data-ready", "1", timeout=15_000)
    return Canvas(page)


def scene_geometry(page):
    return page.evaluate("JSON.parse(JSON.stringify(annotator.scene.geometry))")


def wait_saved(page, timeout=15_000):
    expect(page.locator("#save-state")).to_have_text("All changes saved", timeout=timeout)


def test_annotate_autosave_reload_conflict_and_review(browser, live_server, make_image):
    make_user("ann", "annotator")
    make_user("rev", "reviewer")
    image = make_image(640, 480)
    url = live_server.url
    errors = []

    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    login(page, url, "ann", "ann-password-123")
    page.click("#link-annotate")
    expect(page.locator("[data-count=remaining]")).to_have_text("1")
    page.click("#next-image")
    page.wait_for_url(f"{url}/annotate/{image.pk}/")
    canvas = open_tool(page, errors)

    # Two nails, drawn by clicking; the first closed with Enter, the second by clicking its first vertex.
    page.keyboard.press("n")
    first = [canvas.click(x, y) for x, y in [(100, 100), (200, 100), (200, 250), (100, 250)]]
    page.keyboard.press("Enter")
    page.keyboard.press("l")
    page.keyboard.press("2")                      # left index
    second = [canvas.click(x, y) for x, y in [(300, 120), (400, 120), (400, 260), (300, 260)]]
    canvas.click(300, 120)                        # on the first vertex: closes the polygon
    page.keyboard.press("r")
    page.keyboard.press("3")                      # right middle
    expect(page.locator("#nails .nail-row")).to_have_count(2)
    expect(page.locator("#nails .nail-row .code")).to_have_text(["L2", "R3"])

    # Base and tip: with the base & tip tool for nail 1, with B / T at the mouse for nail 2. A nail is selected
    # (the one just drawn), so the tool does one nail and the tool before (draw nail) comes back.
    assert page.evaluate("annotator.scene.selection.kind") == "nail"
    page.keyboard.press("a")
    base1, tip1 = canvas.click(150, 240), canvas.click(150, 110)
    assert page.evaluate("annotator.editor.tool") == "nail"
    page.keyboard.press("v")
    base2 = canvas.move(350, 250)
    page.keyboard.press("b")
    tip2 = canvas.move(350, 130)
    page.keyboard.press("t")

    # Drag a vertex of nail 1, undo, redo.
    page.keyboard.press("Tab")                    # selects nail 1
    moved = canvas.drag((200, 250), (215, 266))
    expected = {"nails": [
        {"polygon": [first[0], first[1], moved, first[3]], "finger": 2, "base": base1, "tip": tip1},
        {"polygon": second, "finger": 8, "base": base2, "tip": tip2},
    ], "ignore": []}
    assert_geometry(scene_geometry(page), expected)
    page.keyboard.press("Control+z")
    assert_points_close([scene_geometry(page)["nails"][0]["polygon"][2]], [first[2]], "undone drag")
    page.keyboard.press("Control+Shift+z")
    assert_geometry(scene_geometry(page), expected)
    expect(page.locator("#issues .issue.ok")).to_have_count(1)  # complete: ready to submit

    # Autosave, then a reload gets exactly that geometry back from the API.
    wait_saved(page)
    assert_geometry(Annotation.objects.get(image=image).geometry, expected)
    page.reload()
    canvas = open_tool(page, errors)
    api = page.request.get(f"{url}/api/images/{image.pk}/annotation/").json()
    assert_geometry(api["geometry"], expected)
    assert_geometry(scene_geometry(page), expected)
    version = api["version"]
    assert api["status"] == "draft" and api["assignee"] == "ann"

    # A second browser opens the same version; the first saves a change, the second saves from a stale version.
    other = browser.new_context(viewport=VIEWPORT)
    page_b = other.new_page()
    login(page_b, url, "ann", "ann-password-123")
    page_b.goto(f"{url}/annotate/{image.pk}/")
    open_tool(page_b, errors)
    page.keyboard.press("Tab")
    page.keyboard.press("l")
    page.keyboard.press("1")                      # A: nail 1 is the left thumb
    wait_saved(page)
    page_b.keyboard.press("Tab")
    page_b.keyboard.press("Tab")
    page_b.keyboard.press("r")
    page_b.keyboard.press("4")                    # B: nail 2 is the right ring
    conflict = page_b.locator("#conflict")
    expect(conflict).to_be_visible(timeout=15_000)
    expect(conflict).to_contain_text("Someone else saved")
    expect(conflict).to_contain_text(f"ann saved version {version + 1}")
    expect(page_b.locator("#conflict-diff")).to_contain_text("finger")
    page_b.click("#conflict-keep")
    wait_saved(page_b)
    revisions = {r.version: r for r in AnnotationRevision.objects.filter(annotation__image=image)}
    assert [n["finger"] for n in revisions[version + 1].geometry["nails"]] == [1, 8]   # A's
    assert [n["finger"] for n in revisions[version + 2].geometry["nails"]] == [2, 9]   # B's, kept as a new revision
    assert "conflict" in revisions[version + 2].note

    # A is stale now: its next save conflicts too; it reloads theirs, its own labels stay one undo away.
    page.keyboard.press("x")                      # swap base and tip of nail 1
    expect(page.locator("#conflict")).to_be_visible(timeout=15_000)
    page.click("#conflict-reload")
    assert [n["finger"] for n in scene_geometry(page)["nails"]] == [2, 9]
    page.keyboard.press("Control+z")
    mine = scene_geometry(page)["nails"][0]
    assert mine["finger"] == 1 and mine["base"] == revisions[version + 1].geometry["nails"][0]["tip"]
    page.keyboard.press("Control+Shift+z")
    wait_saved(page)

    # Submit; the reviewer compares two revisions and rejects with a comment.
    page.click("#submit")
    expect(page.locator("#status-chip")).to_have_text("submitted")
    assert Annotation.objects.get(image=image).status == "submitted"
    other.close()

    desk = browser.new_context(viewport=VIEWPORT)
    review = desk.new_page()
    review.on("pageerror", lambda error: errors.append(str(error)))
    login(review, url, "rev", "rev-password-123")
    review.click("#link-review")
    review.click("#review-next")
    review.wait_for_url(f"{url}/review/{image.pk}/")
    expect(review.locator("#app")).to_have_attribute("data-ready", "1", timeout=15_000)
    expect(review.locator("#revisions tbody tr")).to_have_count(version + 4)  # versions 1.. + "0" (empty)
    review.check(f"#revisions tr[data-version='{version + 1}'] input[name=a]")
    expect(review.locator("#diff")).to_contain_text("finger L1 -> L2")
    expect(review.locator("#diff")).to_contain_text("finger R3 -> R4")
    expect(review.locator("#diff-summary")).to_contain_text("IoU")
    review.click("#reject")
    expect(review.locator("#decision-message")).to_contain_text("Write what to fix")
    review.fill("#comment", "Nail 2 is the right middle finger, not the ring finger.")
    review.click("#reject")
    expect(review.locator("#decision-message")).to_contain_text("Rejected")
    assert Annotation.objects.get(image=image).status == "rejected"
    desk.close()

    # The annotator sees the comment in the queue and on the image.
    page.goto(f"{url}/annotate/")
    row = page.locator(f"tr[data-image='{image.pk}']")
    expect(row).to_contain_text("rejected")
    expect(row).to_contain_text("not the ring finger")
    page.click("#next-image")
    page.wait_for_url(f"{url}/annotate/{image.pk}/")
    open_tool(page, errors)
    expect(page.locator("#review-banner")).to_contain_text("Rejected by rev")
    expect(page.locator("#review-banner")).to_contain_text("not the ring finger")
    context.close()
    assert not errors, errors


def twenty_nails(width, height):
    nails, ignore = [], []
    for k in range(20):
        cx, cy = 300 + (k % 5) * 800, 400 + (k // 5) * 700
        ring = [[cx - 120, cy - 160], [cx, cy - 200], [cx + 120, cy - 160], [cx + 130, cy + 150], [cx, cy + 190], [cx - 130, cy + 150]]
        nails.append({"polygon": ring, "finger": k % 10 + 1, "base": [cx, cy + 150], "tip": [cx, cy - 150]})
    return {"nails": nails, "ignore": ignore}


def test_large_photo_redraws_only_the_interaction_layer_while_editing(browser, live_server, make_image):
    annotator = make_user("ann", "annotator")
    image = make_image(4032, 3024)
    save_annotation(image, annotator, geometry=twenty_nails(4032, 3024), version=0)
    errors = []
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    login(page, live_server.url, "ann", "ann-password-123")
    page.goto(f"{live_server.url}/annotate/{image.pk}/")
    canvas = open_tool(page, errors)
    page.wait_for_timeout(300)  # the pyramid levels arrive
    first_paint = page.evaluate("annotator.stage.firstImagePaint")
    print(f"\npage open to first paint of the 4032x3024 photo (PNG): {first_paint:.0f} ms")
    stats = lambda: page.evaluate("({...annotator.stage.stats})")  # noqa: E731

    # Hovering over nails and vertices: only the interaction layer.
    before = stats()
    for k in range(40):
        canvas.move(300 + k * 90, 400 + (k % 7) * 100)
    after = stats()
    assert after["scene"] == before["scene"] and after["image"] == before["image"], (before, after)
    assert after["ui"] > before["ui"]

    # Dragging a vertex of nail 1: the scene layer is redrawn once when the drag starts and once at the end.
    page.keyboard.press("Tab")
    page.wait_for_timeout(50)
    before = stats()
    page.evaluate("""() => { window.__frames = []; let last = performance.now();
        const tick = (t) => { window.__frames.push(t - last); last = t; if (window.__frames.length < 400) requestAnimationFrame(tick); };
        requestAnimationFrame(tick); }""")
    moved = canvas.drag((430, 550), (520, 620), steps=40)
    page.wait_for_timeout(50)
    after = stats()
    assert after["scene"] - before["scene"] <= 3, (before, after)
    assert after["image"] == before["image"]
    assert after["ui"] - before["ui"] >= 20
    frames = sorted(page.evaluate("window.__frames"))
    print(f"\nframe time while dragging a vertex with 20 nails on a 4032x3024 photo: "
          f"median {frames[len(frames) // 2]:.1f} ms, p95 {frames[int(len(frames) * 0.95)]:.1f} ms (headless, no GPU)")
    assert_points_close([scene_geometry(page)["nails"][0]["polygon"][3]], [moved], "dragged vertex")

    # Insert a vertex by clicking an edge of the selected nail, delete it with a right-click.
    count = len(scene_geometry(page)["nails"][0]["polygon"])
    inserted = canvas.click(360, 220)  # the middle of the edge (300, 200)-(420, 240)
    polygon = scene_geometry(page)["nails"][0]["polygon"]
    assert len(polygon) == count + 1
    # between vertices 2 and 3, on the edge point nearest to the click (the click is within a screen pixel of it)
    assert abs(polygon[2][0] - inserted[0]) < 1.5 / canvas.scale and abs(polygon[2][1] - inserted[1]) < 1.5 / canvas.scale
    canvas.click(*polygon[2], button="right")
    assert len(scene_geometry(page)["nails"][0]["polygon"]) == count

    # Delete a nail, bring it back; draw an ignore region.
    page.keyboard.press("Delete")
    assert len(scene_geometry(page)["nails"]) == 19
    page.keyboard.press("Control+z")
    assert len(scene_geometry(page)["nails"]) == 20
    page.keyboard.press("i")
    for x, y in [(3800, 2800), (3950, 2800), (3950, 2950)]:
        canvas.click(x, y)
    page.keyboard.press("Enter")
    assert len(scene_geometry(page)["ignore"]) == 1

    # Zoom to the mouse with the wheel, pan with space-drag, fit, brightness; nothing is edited by any of it.
    before = scene_geometry(page)
    px, py = canvas.to_page(2000, 1500)
    at = canvas.to_image(px, py)
    page.mouse.move(px, py)
    page.mouse.wheel(0, -400)
    page.wait_for_timeout(100)
    canvas.refresh()
    still = canvas.to_image(px, py)  # the same image point under the mouse (wheel events have whole-pixel offsets)
    assert canvas.scale > 0.3 and abs(still[0] - at[0]) < 1 / canvas.scale and abs(still[1] - at[1]) < 1 / canvas.scale
    tx = canvas.tx
    page.keyboard.down(" ")
    page.mouse.down()
    page.mouse.move(px + 120, py + 40, steps=5)
    page.mouse.up()
    page.keyboard.up(" ")
    canvas.refresh()
    assert abs(canvas.tx - tx - 120) < 1
    page.keyboard.press("f")
    page.keyboard.press("]")
    assert page.evaluate("annotator.stage.canvases.image.style.filter") == "brightness(1.1) contrast(1)"
    assert scene_geometry(page) == before

    # Move a whole nail (its landmarks follow), then drag its tip.
    page.keyboard.press("v")
    start = canvas.move(3450, 2500)
    end = canvas.drag((3450, 2500), (3400, 2440))
    dx, dy = end[0] - start[0], end[1] - start[1]
    moved_nail, old_nail = scene_geometry(page)["nails"][19], before["nails"][19]
    for new_point, old_point in zip(moved_nail["polygon"] + [moved_nail["base"], moved_nail["tip"]],
                                    old_nail["polygon"] + [old_nail["base"], old_nail["tip"]]):
        assert abs(new_point[0] - old_point[0] - dx) < 0.02 and abs(new_point[1] - old_point[1] - dy) < 0.02
    tip = canvas.drag(moved_nail["tip"], (moved_nail["tip"][0] + 10, moved_nail["tip"][1] - 30))
    assert_points_close([scene_geometry(page)["nails"][19]["tip"]], [tip], "dragged tip")

    # The "what the model learns" overlay is the server's rasterizer output.
    page.keyboard.press("Escape")
    page.keyboard.press("o")
    expect(page.locator("#overlay-info")).to_contain_text("nail mask as the rasterizer makes it (1024×768", timeout=15_000)
    assert page.evaluate("annotator.overlay.requests") >= 1
    page.keyboard.press("?")
    expect(page.locator("#help")).to_be_visible()
    expect(page.locator("#help")).to_contain_text("Undo")
    page.keyboard.press("Escape")
    expect(page.locator("#help")).to_be_hidden()
    wait_saved(page)
    saved = Annotation.objects.get(image=image).geometry
    assert len(saved["nails"]) == 20 and len(saved["ignore"]) == 1
    assert saved["nails"][0]["polygon"][3] == scene_geometry(page)["nails"][0]["polygon"][3]  # exactly (522.0 == 522)
    context.close()
    assert not errors, errors


def test_invalid_labels_are_saved_flagged_and_unsent_labels_survive_a_reload_in_this_browser(browser, live_server, make_image):
    make_user("ann", "annotator")
    image = make_image(640, 480)
    errors = []
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())  # "leave the page with unsaved changes?"
    login(page, live_server.url, "ann", "ann-password-123")
    page.goto(f"{live_server.url}/annotate/{image.pk}/")
    canvas = open_tool(page, errors)
    page.keyboard.press("n")
    bow_tie = [canvas.click(x, y) for x, y in [(100, 100), (300, 300), (300, 100), (100, 300)]]
    page.keyboard.press("Enter")
    expect(page.locator("#issues .issue.error")).to_contain_text("crosses itself")  # live validation
    wait_saved(page)                                                                 # saved anyway, flagged
    annotation = Annotation.objects.get(image=image)
    assert annotation.version == 1 and annotation.geometry["nails"] == []
    assert [(s["kind"], s["index"], s["errors"][0]["rule"]) for s in annotation.invalid_shapes] == [("nail", 0, "self_intersecting")]
    expect(page.locator("#flagged-banner")).to_contain_text("nail 1")
    page.reload()
    open_tool(page, errors)
    assert_points_close(scene_geometry(page)["nails"][0]["polygon"], bow_tie, "flagged polygon from the server")
    expect(page.locator("#issues .issue.error")).to_contain_text("crosses itself")
    expect(page.locator("#nails .nail-row.invalid")).to_have_count(1)

    # Labels the server has not got yet (here: every save fails) stay in this browser and are offered back.
    page.route("**/annotation/", lambda route: route.abort() if route.request.method == "PUT" else route.continue_())
    page.keyboard.press("Tab")
    page.keyboard.press("Delete")                 # fix it: delete the bad nail ...
    page.keyboard.press("n")
    good = [canvas.click(x, y) for x, y in [(100, 100), (300, 100), (300, 300)]]
    page.keyboard.press("Enter")                  # ... and draw a good one
    expect(page.locator("#save-state")).to_have_text("Save failed", timeout=10_000)
    page = context.new_page()                     # the same browser opens the image again (the first tab stays open)
    page.goto(f"{live_server.url}/annotate/{image.pk}/")
    open_tool(page, errors)
    assert scene_geometry(page)["nails"][0]["polygon"] != scene_geometry(context.pages[0])["nails"][0]["polygon"]
    expect(page.locator("#backup-banner")).to_contain_text("not saved")
    page.click("#backup-restore")
    assert_points_close(scene_geometry(page)["nails"][0]["polygon"], good, "restored polygon")
    wait_saved(page)
    annotation = Annotation.objects.get(image=image)
    assert len(annotation.geometry["nails"]) == 1 and annotation.invalid_shapes == []
    expect(page.locator("#flagged-banner")).to_have_count(0)
    assert page.evaluate("Object.keys(localStorage).filter((k) => k.startsWith('nailset:unsaved:'))") == []
    context.close()
    assert not errors, errors


def test_base_and_tip_tool_does_the_selected_nail_then_gives_the_tool_back(browser, live_server, make_image):
    """A with a nail selected: base and tip of one nail, then the tool before comes back (the next click selects
    the next nail); A with none selected: base and tip nail after nail until another tool is chosen."""
    annotator = make_user("ann", "annotator")
    image = make_image(800, 600)
    square = lambda x: [[x, 200], [x + 100, 200], [x + 100, 350], [x, 350]]  # noqa: E731
    save_annotation(image, annotator, geometry={"nails": [{"polygon": square(100)}, {"polygon": square(300)},
                                                          {"polygon": square(500)}], "ignore": []}, version=0)
    errors = []
    page = browser.new_context(viewport=VIEWPORT).new_page()
    login(page, live_server.url, "ann", "ann-password-123")
    page.goto(f"{live_server.url}/annotate/{image.pk}/")
    canvas = open_tool(page, errors)
    tool = lambda: page.evaluate("annotator.editor.tool")  # noqa: E731
    selected = lambda: page.evaluate("annotator.scene.selection && annotator.scene.selection.index")  # noqa: E731

    canvas.click(150, 300)                        # select nail 1
    assert tool() == "select" and selected() == 0
    page.keyboard.press("a")
    assert tool() == "landmarks"
    base1, tip1 = canvas.click(150, 340), canvas.click(150, 210)
    assert tool() == "select"                     # back: the next click selects nail 2
    canvas.click(350, 300)
    assert selected() == 1
    nails = scene_geometry(page)["nails"]
    assert_points_close([nails[0]["base"], nails[0]["tip"]], [base1, tip1], "nail 1 landmarks")
    assert nails[1]["base"] is None and nails[1]["tip"] is None

    page.keyboard.press("Escape")                 # nothing selected: the tool stays on, nail after nail
    assert page.evaluate("annotator.scene.selection") is None
    page.keyboard.press("a")
    base2, tip2 = canvas.click(350, 340), canvas.click(350, 210)
    assert tool() == "landmarks"
    base3, tip3 = canvas.click(550, 340), canvas.click(550, 210)
    assert tool() == "landmarks"
    nails = scene_geometry(page)["nails"]
    assert_points_close([nails[1]["base"], nails[1]["tip"], nails[2]["base"], nails[2]["tip"]],
                        [base2, tip2, base3, tip3], "nails 2 and 3 landmarks")
    page.keyboard.press("v")
    assert tool() == "select" and not errors
