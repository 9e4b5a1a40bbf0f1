"""The annotator-effort bench (bench/annotation_effort.py, issue #18): its checks on their own, and its core on
one synthetic photo with two nails: the simulated annotator labels it in Chromium from scratch and with
click-to-nail (image only, no model), each nail is checked against the answer as saved through the API, every
action sent to the page is counted, and click-to-nail takes fewer actions than drawing; and correcting a draft
whose unsure nails are proposed: a good one is accepted with Enter, a spurious one rejected with Delete."""
import numpy as np
import pytest

from bench.annotation_effort import (PASSWORD, TRAIN_BUDGET, USER, activate_model, add_photos, check_nail,
                                     describe_budget, match, run_mode, section, summarize, synthetic_photo, updated,
                                     write_drafts)

SQUARE = [[10, 10], [50, 10], [50, 50], [10, 50]]
ANSWER = {"polygon": SQUARE, "finger": 2, "base": [30, 50], "tip": [30, 10]}


def test_a_nail_is_finished_only_when_outline_finger_and_landmarks_are_right():
    right = {"polygon": SQUARE, "finger": 2, "base": [30, 49], "tip": [30.5, 11]}
    assert check_nail(right, 0.95, ANSWER)["finished"]
    assert not check_nail(right, 0.89, ANSWER)["finished"]                                  # outline under the bar
    assert not check_nail({**right, "finger": 7}, 0.95, ANSWER)["finished"]                 # wrong finger
    assert not check_nail({**right, "tip": [30, 14]}, 0.95, ANSWER)["finished"]             # tip 4 px off: > 5 % of 40
    assert not check_nail({**right, "suggested": {"finger": 0.8}}, 0.95, ANSWER)["finished"]  # only suggested
    assert not check_nail(None, 0.0, ANSWER)["finished"]


def nail_record(mode, photo, held_out, actions, click=None):
    record = {"mode": mode, "photo": photo, "nail": 0, "held_out": held_out, "actions": actions, "label_actions": 1,
              "seconds": 0.1, "finished": True, "iou": 0.95}
    return {**record, "click": click} if click else record


def test_a_rerun_replaces_its_modes_on_its_photos_and_no_row_mixes_two_runs():
    earlier_nails = [nail_record(mode, photo, photo == "held", actions)
                     for mode, actions in (("scratch", 17), ("click", 14), ("drafts", 20)) for photo in ("held", "other")]
    earlier = {"summary": summarize(earlier_nails), "nails": earlier_nails, "when": "then"}
    rerun_nails = [nail_record("scratch", "held", True, 16),
                   nail_record("click", "held", True, 6, {"proposal_ious": [0.6, 0.8, 0.3], "points": ["+", "+"]})]
    rerun = {"summary": summarize(rerun_nails), "nails": rerun_nails, "when": "now", "wall_s": 1.0, "command": "rerun",
             "machine": {"load": [0.0]}, "rules": {}}
    report, records = updated(earlier, rerun)
    assert len(records) == 6 and sum(r["run"] == "rerun" for r in records) == 2
    held, every = report["summary"]["held_out"], report["summary"]["all"]
    assert held["click"]["actions_median"] == 6 and not held["click"].get("earlier")          # the rerun's
    assert held["drafts"]["actions_median"] == 20 and not held["drafts"].get("earlier")       # not rerun
    assert every["click"]["actions_median"] == 14 and every["click"]["earlier"]               # not mixed: earlier
    assert every["drafts"]["actions_median"] == 20 and not every["drafts"].get("earlier")
    rerun_info = report["rerun"]
    assert (rerun_info["positive_points"], rerun_info["positive_gained"], rerun_info["positive_leaked"]) == (2, 1, 1)
    assert rerun_info["earlier"]["held_out"]["click"]["actions_median"] == 14


def test_a_row_an_update_kept_from_an_earlier_run_stays_kept_through_the_next_update():
    """Update 1 reruns scratch on the held-out photo only, so the all-photos scratch row keeps the first run's
    figures; update 2 reruns click only: that scratch row must still be the first run's, not recomputed from
    nails of two runs with different rules."""
    first_nails = [nail_record(mode, photo, photo == "held", actions)
                   for mode, actions in (("scratch", 17), ("click", 14)) for photo in ("held", "other")]
    first = {"summary": summarize(first_nails), "nails": first_nails, "when": "then"}

    def rerun_of(mode, actions):
        nails = [nail_record(mode, "held", True, actions)]
        return {"summary": summarize(nails), "nails": nails, "when": "now", "wall_s": 1.0, "command": "rerun",
                "machine": {"load": [0.0]}, "rules": {}}
    once, records = updated(first, rerun_of("scratch", 9))
    assert once["summary"]["all"]["scratch"]["actions_median"] == 17 and once["summary"]["all"]["scratch"]["earlier"]
    twice, _ = updated({**once, "nails": records}, rerun_of("click", 5))   # the results file's nails
    assert twice["summary"]["all"]["scratch"] == once["summary"]["all"]["scratch"]       # still the first run's
    assert twice["summary"]["held_out"]["scratch"]["actions_median"] == 9                  # update 1's rerun
    assert twice["summary"]["held_out"]["click"]["actions_median"] == 5 and twice["summary"]["all"]["click"]["earlier"]


def test_a_rerun_of_a_rerun_says_what_changed_and_keeps_the_earlier_counts():
    earlier_nails = [nail_record(mode, "held", True, actions) for mode, actions in (("scratch", 17), ("click", 14))]
    earlier = {"summary": summarize(earlier_nails), "nails": earlier_nails, "when": "then", "wall_s": 2.0, "command": "first",
               "model": None, "machine": {"nproc": 2, "cpu": "cpu", "load": [1.0], "commit": "a"},
               "rerun": {"positive_points": 175, "positive_gained": 59, "positive_leaked": 33}}
    rerun_nails = [nail_record("click", "held", True, 6, {"proposal_ious": [0.6, 0.8], "points": ["+"]})]
    rerun = {"summary": summarize(rerun_nails), "nails": rerun_nails, "when": "now", "wall_s": 1.0, "command": "rerun",
             "machine": {"load": [0.5], "commit": "b"}, "rules": {}}
    report, _ = updated(earlier, rerun, "small seeds", "scratch from the first run")
    assert report["rerun"]["positive_before"] == {"points": 175, "gained": 59, "leaked": 33}
    text = section(report)
    assert ", small seeds: modes click on 1 photos" in text and "(scratch from the first run)" in text
    assert "click-to-nail, image only, held out: median 14 -> 6 actions" in text
    assert "of 1, 1 raised the proposal's IoU and 0 dropped it" in text and "(the earlier run: of 175, 59 raised" in text


def test_the_docs_say_where_the_model_trained_and_whether_a_deadline_cut_it():
    assert describe_budget({"budget": TRAIN_BUDGET}) == "preset web-336, 4 epochs x 25 steps of 4 on 2 CPU threads"
    before = {k: v for k, v in TRAIN_BUDGET.items() if k != "device"}  # a training.json from before "device"
    assert describe_budget({"budget": before}).endswith("on 2 CPU threads")
    gpu = {"budget": {**TRAIN_BUDGET, "epochs": 60, "steps_per_epoch": 12, "batch_size": 16, "device": "cuda",
                      "workers": 6}, "device": "NVIDIA H200", "status": "completed", "epochs_completed": 60}
    assert describe_budget(gpu) == "preset web-336, 60 epochs x 12 steps of 16 on NVIDIA H200 (6 loader processes)"
    cut = {**gpu, "status": "cancelled", "epochs_completed": 41}
    assert "41 of 60 epochs (stopped at its deadline) x 12 steps" in describe_budget(cut)


def test_matching_is_one_to_one_best_first():
    shifted = [[p[0] + 4, p[1]] for p in SQUARE]
    far = [[p[0] + 200, p[1]] for p in SQUARE]
    found = match([shifted, SQUARE, far], [ANSWER, {**ANSWER, "polygon": shifted}])
    assert found[0][0] == 1 and found[1][0] == 0 and found[0][1] == pytest.approx(1.0)


@pytest.mark.django_db(transaction=True)
def test_scratch_and_click_on_a_synthetic_photo(browser, live_server):
    from django.contrib.auth.models import Group, User

    User.objects.create_user(USER, password=PASSWORD).groups.add(Group.objects.get_or_create(name="annotator")[0])
    picture, answers = synthetic_photo()
    records = []
    for mode in ("scratch", "click"):
        records += run_mode(browser, live_server.url, mode, [picture], [answers], ["synthetic"], [True])
    assert len(records) == 4 and all(r["finished"] for r in records), records
    scratch = [r for r in records if r["mode"] == "scratch"]
    click = [r for r in records if r["mode"] == "click"]
    # N, >= 3 vertex clicks, Enter, the finger, A, base, tip
    assert all(r["actions"] >= 9 for r in scratch)
    assert all(r["click"]["outline"] in ("proposal", "proposal+drags", "scratch") and r["actions"] >= 2 for r in click)
    assert sum(r["actions"] for r in click) < sum(r["actions"] for r in scratch)
    assert all(r["seconds"] > 0 for r in records)
    assert all(r["label_actions"] >= 1 for r in scratch)                     # at least the finger's click
    assert all(0 <= r["label_actions"] < r["actions"] for r in records)

    summary = summarize(records)
    assert summary["held_out"]["scratch"]["finished"] == 2 and summary["all"]["click"]["nails"] == 2
    assert summary["all"]["click"]["ratio_to_scratch"] > 1
    text = section({"when": "now", "wall_s": 1.0, "command": "test", "summary": summary, "model": None,
                    "machine": {"nproc": 2, "cpu": "cpu", "load": [0.0], "commit": "x"}})
    assert "| all photos | click-to-nail, image only | 2 | 2 |" in text and "not run" in text


@pytest.mark.django_db(transaction=True)
def test_drafts_with_proposed_nails_on_a_synthetic_photo(browser, live_server):
    """A draft of the synthetic photo: the left nail sure (shown, its outline exact), the right nail unsure
    (proposed, exact), and a spurious unsure nail (proposed, first in the list: selected at the start). The
    annotator rejects the spurious one with one key, accepts the right one (P selects it + Enter) and gives
    each its finger and base/tip; nothing spurious is saved."""
    from django.contrib.auth.models import Group, User

    from prelabel import drafts, proposals
    from tests.test_prelabel_suggested import model_version
    from training.serving import ImagePrediction

    User.objects.create_user(USER, password=PASSWORD).groups.add(Group.objects.get_or_create(name="annotator")[0])
    picture, answers = synthetic_photo()
    (image_id,) = add_photos("drafts", [picture])
    unsure = proposals.PROPOSE_BELOW - 0.1
    spurious = [[560, 60], [600, 60], [600, 100], [560, 100]]
    entries = [{"polygon": polygon, "finger": None, "base": None, "tip": None, "suggested": {}, "confidence": confidence}
               for polygon, confidence in ((spurious, unsure), (answers[0]["polygon"], 0.95), (answers[1]["polygon"], unsure))]
    from labeling.models import Image

    image = Image.objects.get(pk=image_id)
    result = ImagePrediction(entries, np.zeros((image.height, image.width), np.float32), uncertainty=0.1,
                             input_size=(image.height, image.width), seconds=0.01)
    assert drafts.save_prediction(image, model_version("effort-test"), result).draft_state == "drafted"

    records = run_mode(browser, live_server.url, "drafts", [picture], [answers], ["synthetic"], [True], [image_id])
    assert all(r["finished"] for r in records), records
    left, right = records
    assert left["proposed"] is False and right["proposed"] is True
    assert left["draft_iou"] == right["draft_iou"] == 1.0
    # left: Delete (the spurious proposal, selected at the start; counted to the photo's first nail), a click
    # selecting the nail, then finger, a Shift+drag from the base to the tip; right: P (the next proposal; with
    # none selected, the first), Enter, then finger, the Shift+drag.
    assert left["label_actions"] == right["label_actions"] == 2, records
    assert left["label_fixes"] == right["label_fixes"] == ["finger", "arrow"], records
    assert left["actions"] == right["actions"] == 4, records


@pytest.mark.django_db
def test_the_bench_drafts_are_written_as_prelabeling_writes_them():
    """The drafts mode's drafts come with their prediction (the nails' confidences): without it the page's open
    call has no draft to describe and proposes nothing."""
    from labeling.models import Annotation
    from prelabel.models import Prediction
    from tests.prelabel_support import nail_photo, tiny_checkpoint

    checkpoint = tiny_checkpoint()
    version = activate_model(checkpoint)
    (image_id,) = add_photos("drafts", [nail_photo(nails=((30, 36, 14, 9, 0.4), (66, 36, 14, 9, 1.2)))])
    write_drafts([image_id], checkpoint, version, size=64)
    prediction = Prediction.objects.get(image_id=image_id, model_version=version)
    assert prediction.draft_state == "drafted" and prediction.draft_version == Annotation.objects.get(image_id=image_id).version
    assert prediction.nails and all(0 < n["confidence"] <= 1 for n in prediction.nails)
