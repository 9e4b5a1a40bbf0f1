"""In Chromium: an annotator opens the try-on page, uploads a photo, picks a colour and a finish.

* Without a TensorFlow.js export the server paints the photo with the active (tiny, untrained) model.
* With one, the page runs the model in the browser (TF.js), post-processes (postprocess.js) and paints
  (render.js) there, shows the time of each stage and the frame rate, repaints a new colour without running
  the model again, and paints the webcam live; its nails are those ml/postprocess.py finds on the same
  model outputs."""
import base64
import re

import cv2
import numpy as np
import pytest
from playwright.sync_api import expect

from tests.browser import login, watched_page
from tests.conftest import jpeg_bytes, make_user
from tests.test_tryon import hand_picture, make_model_version
from tests.test_tryon_postprocess_js import compare
from training import serving

pytestmark = pytest.mark.django_db(transaction=True)


def test_tryon_page_paints_an_uploaded_photo(browser, live_server, tmp_path):
    make_user("painter", "annotator")
    photo = tmp_path / "hand.jpg"
    photo.write_bytes(jpeg_bytes(hand_picture(480, 360)))

    page, errors, _ = watched_page(browser, viewport={"width": 1100, "height": 900})
    login(page, live_server.url, "painter", "painter-password-123")

    # No active model yet: the page says so and offers no control that cannot work (tests/test_tryon_without_model.py).
    page.goto(f"{live_server.url}/tryon/")
    expect(page.locator("#no-model")).to_be_visible()
    expect(page.locator("#engine-note")).to_contain_text("In-browser inference comes with the model's TensorFlow.js export")
    expect(page.locator("#render")).to_have_count(0)

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
    expect(page.locator("#inbrowser")).to_be_hidden()
    expect(page.locator("#after-canvas")).to_be_hidden()

    # Another finish and a colour from the picker re-render the same photo.
    page.check("input[name=finish][value=matte]")
    expect(page.locator("#status")).to_have_text("Painted #1F2A44 matte.", timeout=60_000)
    page.fill("#color", "#00827f")
    expect(page.locator("#status")).to_have_text("Painted #00827F matte.", timeout=60_000)
    expect(page.locator("#download")).to_have_attribute("href", re.compile(r"^data:image/jpeg"))
    expect(page.locator("#error")).to_have_text("")
    page.screenshot(path=str(tmp_path / "tryon.png"), full_page=True)
    assert not errors, errors
    page.context.close()


# ---------------------------------------------------------------------------------------------------
# In the browser, with the model's TensorFlow.js export
# ---------------------------------------------------------------------------------------------------


@pytest.fixture
def tfjs_model():
    """The export tests' tiny model (random weights with strong heads: it finds a few blobs) exported to
    TF.js (the conversion and its TensorFlow parity only, ~40 s: the browser parity is test_export_tfjs's)
    and made the active model."""
    from ml.export.tfjs_driver import export_python
    from tests.export_support import make_model_version as make_export_version
    from training.exports.core import export_version

    try:
        export_python()
    except Exception as exc:  # noqa: BLE001  never skipped: `make test` creates the export environment
        pytest.fail(str(exc))
    version = make_export_version("tfjs-tryon")
    artifact = export_version(version, "tfjs", browser=False)
    assert artifact.passed, artifact.parity
    version.is_active = True
    version.save()
    serving.predictors.clear()
    return version


READ_FRAME = """() => {
  const t = window.nailsetTryon;
  const enc = (a) => {
    const b = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
    let s = "";
    for (let i = 0; i < b.length; i += 0x8000) s += String.fromCharCode.apply(null, b.subarray(i, i + 0x8000));
    return btoa(s);
  };
  const canvas = document.getElementById("after-canvas");
  const painted = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  return {
    width: t.outputs.width, height: t.outputs.height, fg: enc(t.outputs.fgProb), classes: enc(t.outputs.classMap),
    field: enc(t.outputs.field), photo: enc(t.pixels.data), painted: enc(painted), timings: t.timings,
    nails: t.nails.map(({ mask, ...n }) => ({ ...n, mask: enc(mask) })),
  };
}"""

FAKE_WEBCAM = """(dataUrl) => {
  navigator.mediaDevices.getUserMedia = async () => {
    const image = new Image();
    image.src = dataUrl;
    await image.decode();
    const canvas = document.createElement("canvas");
    canvas.width = image.width;
    canvas.height = image.height;
    const ctx = canvas.getContext("2d");
    let k = 0;
    const draw = () => { ctx.drawImage(image, (k++ % 7) - 3, 0); };
    draw();
    setInterval(draw, 40);
    return canvas.captureStream(25);
  };
}"""


def decode(text, dtype, shape):
    return np.frombuffer(base64.b64decode(text), dtype).reshape(shape)


def test_tryon_page_paints_in_the_browser_with_the_tfjs_export(browser, live_server, tmp_path, tfjs_model):
    from ml.postprocess import postprocess, to_dicts
    from ml.render import render

    make_user("painter", "annotator")
    photo_bytes = jpeg_bytes(hand_picture(480, 360))
    photo = tmp_path / "hand.jpg"
    photo.write_bytes(photo_bytes)
    page, errors, requests = watched_page(browser, viewport={"width": 1100, "height": 900})
    login(page, live_server.url, "painter", "painter-password-123")
    page.goto(f"{live_server.url}/tryon/")
    expect(page.locator("#engine-note")).to_contain_text("runs in this browser")

    # A photo: segmented, post-processed and painted here; the stages' times and the frame rate shown.
    page.set_input_files("#photo", str(photo))
    expect(page.locator("#inbrowser")).to_have_attribute("data-state", "done", timeout=120_000)
    expect(page.locator("#status")).to_have_text("Painted #C8102E glossy in this browser.")
    expect(page.locator("#inbrowser-note")).to_contain_text(re.compile(r"(webgl|cpu) backend, \d+ ms at 128x96 px"))
    expect(page.locator("#fps")).to_have_text(re.compile(r"^\d+\.\d FPS \(model \+ post-processing \+ rendering"))
    expect(page.locator("#stage-times")).to_have_text(
        re.compile(r"^Model \d+\.\d ms · post-processing \d+\.\d ms · rendering \d+\.\d ms$"))
    expect(page.locator("#after-canvas")).to_be_visible()
    expect(page.locator("#after")).to_be_hidden()
    expect(page.locator("#nail-count")).to_have_text(re.compile(r"^\d+ nails? found$"))
    assert not any("/api/tryon/render" in url for url in requests)  # nothing painted on the server

    frame = page.evaluate(READ_FRAME)
    h, w = frame["height"], frame["width"]
    assert (w, h) == (480, 360)
    fg = decode(frame["fg"], np.float32, (h, w))
    classes = decode(frame["classes"], np.int32, (h, w))
    field = decode(frame["field"], np.float32, (h, w, 2))
    assert 0 < (fg > 0.5).mean() < 0.5 and classes.min() >= 1 and classes.max() <= 10

    before = decode(frame["photo"], np.uint8, (h, w, 4))

    # The same nails as Python's post-processing of the same model outputs and photo.
    nails = postprocess(fg, classes, field, image=np.ascontiguousarray(before[..., :3]))
    py = to_dicts(nails)
    for d, n in zip(py, nails):
        d["_mask"] = n.mask.astype(np.uint8).reshape(-1)
    js = [{"polygon": n["polygon"], "finger": n["finger"], "base": n["base"], "tip": n["tip"], "angle": n["angle"],
           "confidence": n["confidence"], "class_confidence": n["classConfidence"], "direction_source": n["directionSource"],
           "area": n["area"], "bbox": n["bbox"], "merged_from": n["mergedFrom"], "mask": n["mask"]} for n in frame["nails"]]
    assert len(py) >= 1
    compare(py, js, noisy=True, shape=(h, w))  # an untrained model's blobs: irregular, with spurs
    assert page.locator("#nail-count").inner_text() == f"{len(py)} nail{'s' if len(py) != 1 else ''} found"

    # The painted canvas: the photo with the nails painted where Python paints them, the rest untouched.
    after = decode(frame["painted"], np.uint8, (h, w, 4))
    changed = (after != before).any(axis=2)
    py_paint = render(np.ascontiguousarray(before[..., :3]), nails, "#C8102E", "glossy")
    near = cv2.dilate((py_paint.alpha > 0).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    assert changed[py_paint.alpha > 0.5].mean() > 0.9
    assert not (changed & ~near).any(), (changed & ~near).sum()
    assert (after[..., 3] == 255).all()

    # A new colour repaints the same nails: no model run, no request.
    model_ms = page.locator("#stage-times").get_attribute("data-model")
    page.click(".swatch[aria-label='Teal']")
    expect(page.locator("#status")).to_have_text("Painted #00827F glossy in this browser.")
    page.check("input[name=finish][value=metallic]")
    expect(page.locator("#status")).to_have_text("Painted #00827F metallic in this browser.")
    assert page.locator("#stage-times").get_attribute("data-model") == model_ms
    repainted = decode(page.evaluate(READ_FRAME)["painted"], np.uint8, (h, w, 4))
    assert (repainted != after).any(axis=2)[py_paint.alpha > 0.5].mean() > 0.9
    # "Paint my nails" runs the whole pipeline again, warm: the frame rate no longer counts compiling the model.
    page.click("#render")
    expect(page.locator("#fps")).not_to_contain_text("first run", timeout=120_000)
    expect(page.locator("#status")).to_have_text("Painted #00827F metallic in this browser.")
    href = page.evaluate("() => { document.getElementById('download').click(); return document.getElementById('download').href; }")
    assert href.startswith("data:image/jpeg")
    page.screenshot(path=str(tmp_path / "tryon-inbrowser.png"), full_page=True)

    # The webcam (a canvas stream standing in for a camera): painted live, frame after frame, with its FPS.
    page.evaluate(FAKE_WEBCAM, "data:image/jpeg;base64," + base64.b64encode(photo_bytes).decode())
    page.click("#webcam-start")
    expect(page.locator("#inbrowser")).to_have_attribute("data-state", "live", timeout=60_000)
    expect(page.locator("#fps")).to_have_text(re.compile(r"^\d+\.\d FPS \(webcam, live\)$"), timeout=60_000)
    page.wait_for_function("() => window.nailsetTryon && window.nailsetTryon.fps > 0")
    fps = float(page.locator("#fps").get_attribute("data-fps"))
    assert fps > 0
    page.click("#webcam-stop")
    assert not any("/api/tryon/render" in url for url in requests)
    assert all(u.startswith(live_server.url) or u.startswith(("blob:", "data:")) for u in requests)
    assert not errors, errors
    page.context.close()
