"""bench/click_labels.py (issue #18): the effort bench's label-fix rule, and one photo replayed as the tool would."""
import cv2
import numpy as np
import pytest

from bench.click_labels import fixes_needed, measure_photo, summarize
from tests.test_click_segmentation import synthetic_nail

ANSWER = {"finger": 7, "base": [100.0, 200.0], "tip": [100.0, 100.0]}   # 100 px long: 5 px tolerance


@pytest.mark.parametrize("finger, base, tip, expected", [
    (7, [100, 202], [103, 101], {"finger": 0, "swap": 0, "aim": 0, "arrow": 0, "ends": 0, "landmarks": 0, "actions": 0}),  # within 5 %: nothing
    (2, [100, 200], [100, 100], {"finger": 1, "swap": 0, "aim": 0, "arrow": 0, "ends": 0, "landmarks": 0, "actions": 1}),  # a wrong finger: a click
    (7, [100, 100], [100, 200], {"finger": 0, "swap": 1, "aim": 0, "arrow": 0, "ends": 0, "landmarks": 1, "actions": 1}),  # the wrong way round: X
    (7, [100, 200], [110, 100], {"finger": 0, "swap": 0, "aim": 0, "arrow": 0, "ends": 1, "landmarks": 1, "actions": 1}),  # the tip 10 px off: T
    (8, [130, 190], [70, 110], {"finger": 1, "swap": 0, "aim": 1, "arrow": 0, "ends": 0, "landmarks": 1, "actions": 2}),   # aimed at the tip: Shift+T
])
def test_the_fixes_are_the_effort_benchs(finger, base, tip, expected):
    nail = [[80, 100], [120, 100], [120, 200], [80, 200]]   # base and tip of ANSWER on its vertical axis's ends
    assert fixes_needed(finger, base, tip, ANSWER, nail) == expected
    if expected["aim"]:   # a nail whose answer is off its axis through the centroid: one Shift+drag, base to tip
        off_axis = [[60, 100], [100, 100], [100, 200], [60, 200]]
        assert fixes_needed(finger, base, tip, ANSWER, off_axis) == {**expected, "aim": 0, "arrow": 1, "ends": 2}


def test_a_photo_is_replayed_nail_by_nail_with_the_nails_before_confirmed(tmp_path):
    photo, truth = synthetic_nail(seed=3)
    path = tmp_path / "one.png"
    cv2.imwrite(str(path), cv2.cvtColor(photo, cv2.COLOR_RGB2BGR))
    contour = max(cv2.findContours(truth.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)[0],
                  key=cv2.contourArea)
    polygon = contour.reshape(-1, 2).astype(float).tolist()
    left = (np.asarray(polygon) + [-200, 40]).tolist()     # a copy further left: clicked first
    nails = [{"polygon": polygon, "finger": 8, "base": [320.0, 290.0], "tip": [320.0, 190.0]},
             {"polygon": left, "finger": 7, "base": [120.0, 330.0], "tip": [120.0, 230.0]}]
    records = measure_photo({"path": str(path), "file_name": "one.png", "participant": "p", "held_out": True,
                             "nails": nails})
    assert [r["nail"] for r in records] == [1, 0] and [r["drawn_before"] for r in records] == [0, 1]
    assert records[1]["image"]["outline_iou"] >= 0.9        # the real nail: the click's outline is kept
    for r in records:
        fixes = r["image"]
        assert set(fixes) >= {"suggested_finger", "finger", "swap", "aim", "arrow", "ends", "landmarks", "actions", "confidence"}
        assert fixes["landmarks"] == fixes["swap"] + fixes["aim"] + (1 if fixes["arrow"] else fixes["ends"])
        assert fixes["actions"] == fixes["finger"] + fixes["landmarks"]
    # The first nail is drawn and confirmed as a right index (7) when the second is clicked: its finger is not.
    assert records[1]["image"]["suggested_finger"] not in (None, 7) and "model" not in records[0]
    summary = summarize(records, "image")
    assert summary["nails"] == 2 and summary["first_nails"] == 1
    assert summary["no_fix"] == sum(r["image"]["actions"] == 0 for r in records)
