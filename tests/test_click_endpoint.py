"""bench/click_endpoint.py (issue #18): the endpoint timed as the tool calls it, on a small synthetic photo."""
import cv2
import pytest

from bench.click_endpoint import click_photo, render, summary, upscaled
from tests.test_click_segmentation import synthetic_nail


def test_upscaling_scales_the_answers_with_the_photo(tmp_path):
    photo, _ = synthetic_nail(seed=3)                         # 640 x 480
    path = tmp_path / "p.png"
    cv2.imwrite(str(path), cv2.cvtColor(photo, cv2.COLOR_RGB2BGR))
    big, nails = upscaled(path, [{"polygon": [[10, 20], [30, 20], [30, 60]], "finger": 7, "base": [20, 60],
                                  "tip": None}], pixels=4 * 640 * 480)
    assert (big.width, big.height) == (1280, 960)
    assert nails[0]["polygon"][2] == [60.0, 120.0] and nails[0]["base"] == [40.0, 120.0] and nails[0]["tip"] is None


@pytest.mark.django_db
def test_each_nail_is_clicked_left_to_right_with_the_nails_before_sent(client_for, make_image):
    image = make_image(640, 480)
    left = {"polygon": [[100, 200], [160, 200], [160, 280], [100, 280]], "finger": 2, "base": None, "tip": None}
    right = {"polygon": [[300, 200], [360, 200], [360, 280], [300, 280]], "finger": 3, "base": None, "tip": None}
    records = click_photo(client_for("annotator"), image.pk, [right, left])
    assert [r["call"] for r in records] == [0, 1] and all(r["ms"] > 0 for r in records)
    assert {r["source"] for r in records} == {"image"}
    with pytest.raises(RuntimeError, match="404"):          # an image that is not there: said, not timed
        click_photo(client_for("annotator"), 999999, [left])
    s = summary(records + [{**records[1], "call": 2, "ms": 1000.0}])
    assert s["first"]["calls"] == 1 and s["later"]["calls"] == 2 and s["later"]["max_ms"] == 1000.0
    text = render({"when": "now", "wall_s": 1.0, "command": "test", "photos": 1, "size": [640, 480], "model": None,
                   "machine": {"cpu": "cpu", "nproc": 2, "load": [0.0], "commit": "x"},
                   "modes": {"image": {"summary": s}}})
    assert "| image (image) |" in text and "<!-- click_endpoint:end -->" in text
