"""Label suggestions (ml/label_suggestions.py) on synthetic hands drawn here, and the complete-labels bench's
core (bench/complete_labels.py) on a small synthetic COCO file.

The renderer draws the back of a RIGHT hand with its fingers pointing up (anatomy: the thumb on the image's
left) as a palm, an arm running off the photo and five fingers as round-capped strokes, each with a
polished nail ellipse and a light free edge at its tip; a left hand is its mirror image, other poses are
rotations; ``curled_palm_side`` turns it into a hand seen from the palm side with its fingers curled (the
tips point back toward the palm). The ground truth comes from the drawing, not from the rules under test."""
import json
import math

import cv2
import numpy as np
import pytest

from ml.label_suggestions import NailSuggestion, SuggestionRules, finger_of, short_name, suggest_labels

# Canonical right hand, back view, fingers up; units of one finger width; x right, y down.
# digit: (knuckle x, knuckle y, length, tilt degrees (positive: tip leans to the image's left), width)
FINGERS = {
    2: (-1.5, 0.0, 3.5, 6.0, 1.0),     # index: on the thumb side (left)
    3: (-0.5, -0.15, 3.9, 0.0, 1.05),
    4: (0.5, 0.0, 3.6, -5.0, 0.98),
    5: (1.5, 0.35, 2.8, -12.0, 0.82),
    1: (-2.4, 2.6, 3.0, 40.0, 1.2),    # thumb: behind, on the left, leaning out
}
# Unpainted nails, each a little different (the photo's direction reader, ml.nail_direction, learned from real
# photos: a pink nail bed, a light free edge and the finger's skin around them).
NAIL_TONES = {1: (214, 140, 140), 2: (206, 134, 138), 3: (210, 128, 132), 4: (218, 146, 142), 5: (204, 138, 136)}
# Painted nails, a colour per digit (strong contrast with the skin: what the tiny segmentation models learn from).
POLISH = {1: (200, 30, 60), 2: (30, 120, 200), 3: (40, 170, 60), 4: (150, 40, 170), 5: (210, 140, 20)}


def _transform(points, centre, scale, angle_deg, mirror):
    pts = np.asarray(points, np.float64).reshape(-1, 2) * scale
    if mirror:
        pts[:, 0] = -pts[:, 0]
    a = math.radians(angle_deg)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    return pts @ rot.T + np.asarray(centre, np.float64)


def hand_parts(centre, scale=20.0, angle_deg=0.0, mirror=False, digits=(1, 2, 3, 4, 5)):
    """Skin strokes and nails of one hand in image px. ``angle_deg`` rotates the drawing clockwise on
    screen (y down); ``mirror`` makes it a left hand."""
    tf = lambda pts: _transform(pts, centre, scale, angle_deg, mirror)  # noqa: E731
    hand = "left" if mirror else "right"
    strokes = [(tf([[0, 1.5], [0, 14]]), 4.6 * scale), (tf([[-0.2, 0.5], [0.2, 2.8]]), 3.8 * scale)]
    nails = []
    for digit in digits:
        x, y, length, tilt, width = FINGERS[digit]
        d = np.array([-math.sin(math.radians(tilt)), -math.cos(math.radians(tilt))])
        knuckle = np.array([x, y])
        tip = knuckle + d * length
        strokes.append((tf([knuckle, tip]), width * scale))
        nail_w = 0.6 * width
        nail_l = nail_w * (1.1 if digit == 1 else 1.4)
        c = tip - d * (0.08 + nail_l / 2)
        ang = np.linspace(0, 2 * np.pi, 28, endpoint=False)
        perp = np.array([-d[1], d[0]])
        ellipse = c + np.outer(np.cos(ang) * nail_l / 2, d) + np.outer(np.sin(ang) * nail_w / 2, perp)
        nails.append({"digit": digit, "finger": finger_of(hand, digit), "polygon": tf(ellipse),
                      "base": tf(c - d * nail_l / 2)[0], "tip": tf(c + d * nail_l / 2)[0],
                      "free_edge": tf(c + d * nail_l * 0.32)[0]})
    return strokes, nails


def render(size, hands, seed=0, tones=NAIL_TONES):
    """(image uint8 RGB, nails) of several ``hand_parts`` results on one noisy grey background; ``tones``:
    each digit's nail colour (``NAIL_TONES`` or ``POLISH``)."""
    width, height = size
    rng = np.random.default_rng(seed)
    image = np.clip(95 + rng.normal(0, 6, (height, width, 3)), 0, 255).astype(np.uint8)
    skin = (222, 172, 142)
    all_nails = []
    for strokes, nails in hands:
        for pts, thickness in strokes:
            a, b = np.round(pts).astype(int)
            cv2.line(image, tuple(map(int, a)), tuple(map(int, b)), skin, int(round(thickness)), cv2.LINE_AA)
        for nail in nails:
            poly = nail["polygon"]
            cv2.fillPoly(image, [np.round(poly - 0.5).astype(np.int32)], tones[nail["digit"]])
            mask = np.zeros((height, width), np.uint8)
            cv2.fillPoly(mask, [np.round(poly - 0.5).astype(np.int32)], 1)
            u = (nail["tip"] - nail["base"]) / np.linalg.norm(nail["tip"] - nail["base"])
            ys, xs = np.nonzero(mask)
            edge = ((xs + 0.5 - nail["free_edge"][0]) * u[0] + (ys + 0.5 - nail["free_edge"][1]) * u[1]) > 0
            image[ys[edge], xs[edge]] = (246, 240, 232)
            all_nails.append(nail)
    return image, all_nails


def angle_error(s: NailSuggestion, nail) -> float:
    u = np.subtract(s.tip, s.base)
    v = nail["tip"] - nail["base"]
    c = float(u @ v / np.linalg.norm(u) / np.linalg.norm(v))
    return math.degrees(math.acos(np.clip(c, -1, 1)))


def check(suggestions, nails, min_conf=0.0):
    assert [s.finger for s in suggestions] == [n["finger"] for n in nails], \
        [short_name(s.finger) for s in suggestions]
    for s, nail in zip(suggestions, nails):
        assert angle_error(s, nail) < 30, (short_name(s.finger), angle_error(s, nail))
        assert s.confidence >= min_conf, (short_name(s.finger), s.confidence)
        assert 0 <= s.direction_confidence <= 1


def polygons(nails):
    return [n["polygon"].tolist() for n in nails]


@pytest.mark.parametrize("mirror", [False, True], ids=["right", "left"])
@pytest.mark.parametrize("angle", [0, 90, 180, 270, 33])
def test_whole_hand_any_rotation_with_photo(angle, mirror):
    image, nails = render((420, 420), [hand_parts((210, 200), 22, angle, mirror)])
    suggestions = suggest_labels(polygons(nails), image)
    check(suggestions, nails, min_conf=0.5)
    hand = "left" if mirror else "right"
    assert {s.hand for s in suggestions} == {hand}
    assert all(s.direction_confidence > 0.8 for s in suggestions)


def curled_palm_side(centre, scale, angle_deg, hand):
    """A hand seen from the palm side with its fingers curled toward the camera (the "showing off nails"
    pose): each nail's tip (its light free edge) points back toward the palm. The nails lie as in the
    back view turned half a turn (so the same cross-product rule gives the hand: the mirrored view and the
    reversed direction cancel), the palm right beyond the tips and each curled finger around its nail: its
    pad beyond the tip, the finger foreshortened beyond the base."""
    _, nails = hand_parts(centre, scale, angle_deg + 180, mirror=(hand == "left"))
    centres = np.array([(n["base"] + n["tip"]) / 2 for n in nails])
    d = np.mean([(n["tip"] - n["base"]) / np.linalg.norm(n["tip"] - n["base"]) for n in nails], axis=0)
    d /= np.linalg.norm(d)
    palm = centres.mean(axis=0) + d * 3.6 * scale
    strokes = [(np.array([palm, palm + d * 4 * scale]), 5.5 * scale)]
    for nail, c in zip(nails, centres):
        u = (nail["tip"] - nail["base"]) / np.linalg.norm(nail["tip"] - nail["base"])
        strokes.append((np.array([c - u * 1.2 * scale, c + u * 1.5 * scale]), 0.95 * scale))
    return strokes, nails


@pytest.mark.parametrize("hand", ["right", "left"])
@pytest.mark.parametrize("angle", [0, 90, 200])
def test_curled_palm_side_hand_tips_toward_the_palm(angle, hand):
    image, nails = render((420, 420), [curled_palm_side((210, 200), 22, angle, hand)])
    suggestions = suggest_labels(polygons(nails), image)
    check(suggestions, nails)
    assert {s.hand for s in suggestions} == {hand}


def test_landmarks_lie_on_the_nail_outline():
    from shapely.geometry import Point, Polygon
    image, nails = render((420, 420), [hand_parts((210, 200), 22, 33, False)])
    for s, nail in zip(suggest_labels(polygons(nails), image), nails):
        outline = Polygon(nail["polygon"]).exterior
        assert outline.distance(Point(s.base)) < 0.5 and outline.distance(Point(s.tip)) < 0.5
        assert np.linalg.norm(np.subtract(s.tip, s.base)) > 0.8 * np.linalg.norm(nail["tip"] - nail["base"])


@pytest.mark.parametrize("mirror", [False, True], ids=["right", "left"])
@pytest.mark.parametrize("angle", [0, 90, 200])
def test_polygons_only(angle, mirror):
    _, nails = render((420, 420), [hand_parts((210, 200), 22, angle, mirror)])
    suggestions = suggest_labels(polygons(nails))
    check(suggestions, nails)
    assert all("direction from the hand's layout only" in s.reasons for s in suggestions)


def test_two_hands_in_one_photo():
    left = hand_parts((190, 230), 18, -15, True)
    right = hand_parts((470, 230), 18, 15, False)
    image, nails = render((660, 460), [left, right])
    suggestions = suggest_labels(polygons(nails), image)
    check(suggestions, nails, min_conf=0.4)
    assert any("one of 2 hands in the photo" in r for r in suggestions[0].reasons)


@pytest.mark.parametrize("mirror", [False, True], ids=["right", "left"])
@pytest.mark.parametrize("angle", [0, 120])
def test_four_fingers_without_thumb(angle, mirror):
    image, nails = render((420, 420), [hand_parts((210, 200), 22, angle, mirror, digits=(2, 3, 4, 5))])
    suggestions = suggest_labels(polygons(nails), image)
    check(suggestions, nails)
    full = suggest_labels(*(lambda im, ns: (polygons(ns), im))(*render(
        (420, 420), [hand_parts((210, 200), 22, angle, mirror)])))
    # Without the thumb the hand's side rests on weaker cues: never surer than with the thumb.
    assert np.mean([s.confidence for s in suggestions]) <= np.mean([s.confidence for s in full]) + 1e-6


def test_two_fingers_are_a_low_confidence_guess():
    image, nails = render((420, 420), [hand_parts((210, 200), 22, 10, False, digits=(2, 3))])
    suggestions = suggest_labels(polygons(nails), image)
    assert all(s.confidence <= 0.6 for s in suggestions)
    assert all(angle_error(s, n) < 30 for s, n in zip(suggestions, nails))  # the photo still orients them
    assert len({s.finger for s in suggestions}) == 2
    assert any("only 2 nails" in r for r in suggestions[0].reasons)
    one = suggest_labels(polygons(nails[:1]), image)
    assert one[0].confidence <= 0.35


def test_known_labels_are_kept_and_constrain_the_rest():
    # Polygons only, hand drawn mirrored (left) and rotated: a known finger on one nail fixes the side.
    _, nails = render((420, 420), [hand_parts((210, 200), 22, 75, True, digits=(2, 3, 4, 5))])
    known = [None] * len(nails)
    known[0] = {"finger": nails[0]["finger"], "base": nails[0]["base"].tolist(), "tip": nails[0]["tip"].tolist()}
    suggestions = suggest_labels(polygons(nails), known=known)
    assert suggestions[0].finger == nails[0]["finger"] and suggestions[0].confidence == 1.0
    assert suggestions[0].base == pytest.approx(nails[0]["base"].tolist())
    check(suggestions, nails)
    # A deliberately different known finger is never changed, and the others follow it.
    known[0] = {"finger": finger_of("right", 3)}
    changed = suggest_labels(polygons(nails), known=known)
    assert changed[0].finger == finger_of("right", 3)
    assert all(s.hand == "right" for s in changed)
    assert len({s.finger for s in changed}) == len(changed)


def test_model_votes_override_a_weak_geometric_guess():
    # Two fingers, polygons only: geometry can barely tell; confident model votes decide, weighed fully (the
    # defaults weigh a model's votes as far as a CPU-trained model's were right, bench/fit_model_votes.py).
    _, nails = render((420, 420), [hand_parts((210, 200), 22, 0, True, digits=(4, 5))])
    full = SuggestionRules(model_weight=1.0, model_direction_weight=1.0)
    alone = suggest_labels(polygons(nails))
    assert all(s.confidence <= 0.6 for s in alone)

    def votes_for(fingers):
        out = []
        for nail, finger in zip(nails, fingers):
            probs = np.full(10, 0.01)
            probs[finger - 1] = 0.91
            out.append({"finger_probs": probs.tolist(), "direction": (nail["tip"] - nail["base"]).tolist(),
                        "direction_confidence": 0.9})
        return out

    suggestions = suggest_labels(polygons(nails), model_votes=votes_for([n["finger"] for n in nails]), rules=full)
    check(suggestions, nails)
    assert all("model votes" in s.reasons for s in suggestions)
    assert all(s.confidence > max(a.confidence for a in alone) for s in suggestions)
    assert all(s.direction_confidence >= 0.85 for s in suggestions)
    # Votes for other (still plausible) fingers: the suggestion follows the model, not the geometry.
    other = suggest_labels(polygons(nails), model_votes=votes_for([3, 4]), rules=full)
    assert [s.finger for s in other] == [3, 4]
    # With the defaults its direction is not heard and its class votes weigh less, but still decide here.
    default = suggest_labels(polygons(nails), model_votes=votes_for([3, 4]))
    assert [s.finger for s in default] == [3, 4]
    assert all(d.direction_confidence < 0.7 < f.direction_confidence for d, f in zip(default, other))


@pytest.mark.parametrize("turn", [0, 35, 60, 90])
def test_a_models_direction_weighed_zero_changes_nothing(turn):
    # model_direction_weight 0 (the default) makes a model's direction a vote of 0.5: no opinion, whichever
    # axis it lies on (it once counted as log 0.5 against every hypothesis whose nail axis it lay along).
    rng = np.random.default_rng(turn)
    image, nails = render((420, 420), [hand_parts((210, 200), 22, 20, False)])
    _, fingers = render((420, 420), [hand_parts((210, 200), 22, 20, False, digits=(2, 3, 4, 5))])
    round_nails, round_fingers = ([{**n, "polygon": _round(n)} for n in scene] for scene in (nails, fingers))
    # (round finger nails without a photo take the hand's axis, a round thumb its own: hypotheses then differ in
    # which nails' axes the vote lies along)
    for scene, photo in ((nails, image), (fingers, None), (round_nails, image), (round_fingers, None)):
        votes = [{"direction": _turned(n["tip"] - n["base"], turn + rng.uniform(-10, 10)).tolist(),
                  "direction_confidence": 0.9} for n in scene]
        plain = [s.to_dict() for s in suggest_labels(polygons(scene), image=photo)]
        voted = [s.to_dict() for s in suggest_labels(polygons(scene), image=photo, model_votes=votes)]
        for s in plain + voted:
            s.pop("reasons")
        assert voted == plain


def _turned(v, degrees):
    a = np.radians(degrees)
    return np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]) @ np.asarray(v, float)


def _round(nail):
    """The nail's polygon squeezed along its axis to a round nail (length about its width)."""
    pts = np.asarray(nail["polygon"], float)
    axis = _unit(nail["tip"] - nail["base"])
    centre = pts.mean(0)
    along = (pts - centre) @ axis
    return pts - np.outer(along * 0.3, axis)


def test_rules_are_tunable_and_suggestions_serialise():
    image, nails = render((420, 420), [hand_parts((210, 200), 22, 0, False)])
    out = suggest_labels(polygons(nails), image, rules=SuggestionRules(temperature=0.2))
    data = json.loads(json.dumps([s.to_dict() for s in out]))
    assert set(data[0]) == {"finger", "hand", "digit", "base", "tip", "confidence", "direction_confidence", "reasons"}
    assert suggest_labels([]) == []


# ----------------------------------------------------------------------------------------------------
# bench/complete_labels.py on a small synthetic COCO file
# ----------------------------------------------------------------------------------------------------


def _synthetic_confirmed(tmp_path, poses):
    """A data folder (images/, participants.csv) and a confirmed COCO file as the exporter writes it."""
    from dataset.formats.coco import categories, nail_to_annotation

    (tmp_path / "images").mkdir()
    coco = {"images": [], "annotations": [], "categories": categories()}
    rows = ["file_name,participant"]
    ann_id = 1
    for k, (angle, mirror) in enumerate(poses):
        image, nails = render((400, 400), [hand_parts((200, 190), 21, angle, mirror)], seed=k)
        name = f"hand{k}.png"
        cv2.imwrite(str(tmp_path / "images" / name), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        coco["images"].append({"id": k + 1, "file_name": name, "width": 400, "height": 400})
        rows.append(f"{name},person{k}")
        for nail in nails:
            geometry_nail = {"polygon": np.round(nail["polygon"], 2).tolist(), "finger": nail["finger"],
                             "base": nail["base"].tolist(), "tip": nail["tip"].tolist()}
            coco["annotations"].append(nail_to_annotation(geometry_nail, ann_id, k + 1))
            ann_id += 1
    (tmp_path / "participants.csv").write_text("\n".join(rows) + "\n")
    labels = tmp_path / "confirmed.json"
    labels.write_text(json.dumps(coco))
    return labels


def test_complete_labels_bench_on_synthetic_coco(tmp_path):
    from bench.complete_labels import evaluate, held_out, load_labels, section

    poses = [(0, False), (90, True), (180, False), (270, True), (33, False), (140, True)]
    labels = _synthetic_confirmed(tmp_path, poses)
    loaded = load_labels(labels)
    assert sorted(loaded) == [f"hand{k}.png" for k in range(6)]
    assert {n["finger"] for n in loaded["hand1.png"]} == {1, 2, 3, 4, 5}  # mirrored: a left hand
    held = held_out([f"person{k}" for k in range(6)], 3, tuned_on=())
    assert evaluate(labels, tmp_path, held, cross_validation=False)["all"] is None   # held out: not even read
    result = evaluate(labels, tmp_path, held, show_held_out=True)
    everything = result["all"]
    assert everything["nails"] == 30 and everything["participants"] == 6
    assert result["tuning"]["nails"] == 20 and result["cross_validation"]["nails"] == 20
    assert result["tuned_on"] == sorted(set(f"person{k}" for k in range(6)) - set(held))
    assert everything["finger_accuracy"] == 1.0 and everything["hand_accuracy"] == 1.0
    assert everything["within_30"] == 1.0 and everything["angle_median"] < 15
    assert len(result["held_out"]) == 2 and result["held_out_metrics"]["nails"] == 10
    assert sum(b["nails"] for b in everything["finger_by_confidence"]) == 30
    text = section(result, "python bench/complete_labels.py --labels confirmed.json")
    assert "<!-- complete_labels:start -->" in text and "| held-out participants | 10 |" in text
    assert "| tuning, participant-grouped 5-fold | 20 |" in text

    # --json keeps a run made elsewhere (the GPU machine) with its command and machine, for --from-json here.
    from bench.complete_labels import main

    saved_path = tmp_path / "elsewhere.json"
    assert main(["--labels", str(labels), "--data", str(tmp_path), "--no-cv", "--no-docs", "--json", str(saved_path)]) == 0
    saved = json.loads(saved_path.read_text())
    assert saved["command"].startswith("python bench/complete_labels.py --labels ") and saved["records"]
    saved["machine"]["cpu"] = "the other machine's CPU"
    assert "Machine: the other machine's CPU." in section(saved, saved["command"])

    # A confirmed label that disagrees with the suggestion counts as a miss.
    data = json.loads(labels.read_text())
    data["annotations"][0]["category_id"] = 10 if data["annotations"][0]["category_id"] != 10 else 9
    data["annotations"][1]["keypoints"] = [*data["annotations"][1]["keypoints"][3:5], 2,
                                           *data["annotations"][1]["keypoints"][0:2], 2]  # base <-> tip
    labels.write_text(json.dumps(data))
    worse = evaluate(labels, tmp_path, held, show_held_out=True, cross_validation=False)["all"]
    assert worse["finger_accuracy"] == pytest.approx(29 / 30)
    assert worse["within_30"] == pytest.approx(29 / 30)


# ----------------------------------------------------------------------------------------------------
# The parts: ml/nail_direction.py (which end is the tip) and ml/hand_groups.py
# ----------------------------------------------------------------------------------------------------


def _unit(v):
    return np.asarray(v, np.float64) / np.linalg.norm(v)


def test_the_trained_tip_reader_reads_either_way_along_the_axis():
    from ml.nail_direction import load_tip_net, tip_probabilities

    assert load_tip_net() is not None  # the committed weights (bench/fit_label_suggestions.py)
    image, nails = render((420, 420), [hand_parts((210, 200), 22, 33, False)])
    ahead = [(n["polygon"], _unit(n["tip"] - n["base"])) for n in nails]
    behind = [(polygon, -u) for polygon, u in ahead]
    p_ahead, p_behind = tip_probabilities(image, ahead), tip_probabilities(image, behind)
    assert np.allclose(np.add(p_ahead, p_behind), 1.0, atol=1e-5)   # antisymmetric by construction
    assert min(p_ahead) > 0.8, p_ahead
    # No photo (or no read): nothing to say.
    assert tip_probabilities(None, ahead) == [None] * len(ahead)
    assert tip_probabilities(image, []) == []


def test_the_crop_follows_the_axis_and_the_nail_size():
    from ml.nail_direction import nail_crop

    def scene(scale):
        image = np.full((int(200 * scale), int(200 * scale), 3), 90, np.uint8)
        cv2.circle(image, (int(100 * scale), int(70 * scale)), int(6 * scale), (250, 250, 250), -1)  # beyond +u
        polygon = np.array([[90, 85], [110, 85], [110, 115], [90, 115]], np.float64) * scale
        return image, polygon

    image, polygon = scene(1)
    up = nail_crop(image, polygon, [0, -1])     # +u points up the image: the spot is in the first rows
    assert up.shape == (4, 48, 24) and up.dtype == np.float32
    assert up[0, :16].max() > 2 > 0.5 > up[0, 32:].max()
    down = nail_crop(image, polygon, [0, 1])
    assert np.allclose(down, up[:, ::-1, ::-1], atol=0.05)
    assert up[3, 24, 12] == 1 and up[3, 0, 0] == up[3, -1, -1] == 0   # the nail's mask
    assert up[3].mean() == pytest.approx((20 * 30) / ((2 * 1.4 * 20) * (2 * 1.6 * 30)), rel=0.3)
    large = nail_crop(*scene(8), [0, -1])     # a large nail is shrunk first: the same crop
    assert np.abs(large - up).mean() < 0.1


def test_train_save_and_load_the_tip_reader(tmp_path):
    from ml.nail_direction import load_tip_net, save_tip_net, tip_probabilities, train_tip_net

    rng = np.random.default_rng(1)
    samples, checks = [], []
    for k in range(48):
        angle = rng.uniform(0, 360)
        image, nails = render((300, 300), [hand_parts((150, 150), 16, angle, bool(k % 2))], seed=k)
        for nail in nails[1:3]:
            u = _unit(nail["tip"] - nail["base"])
            sign = 1 if rng.random() < 0.5 else -1
            (samples if k < 40 else checks).append((image, nail["polygon"], sign * u, sign > 0))
    net = train_tip_net(samples, epochs=12, width=4, seed=0)
    p = [tip_probabilities(image, [(polygon, axis)], net)[0] for image, polygon, axis, _ in checks]
    assert np.mean([(q > 0.5) == ahead for q, (*_, ahead) in zip(p, checks)]) >= 0.9
    untrained = train_tip_net(samples, epochs=0, width=4, seed=0)   # the same start, no steps: a coin
    q = [tip_probabilities(image, [(polygon, axis)], untrained)[0] for image, polygon, axis, _ in checks]
    assert np.mean(np.abs(np.subtract(q, 0.5))) < np.mean(np.abs(np.subtract(p, 0.5)))

    path = save_tip_net(net, tmp_path / "tip.npz", {"nails": len(samples)})
    again = load_tip_net(path)
    image, polygon, axis, _ = checks[0]
    assert tip_probabilities(image, [(polygon, axis)], again) == pytest.approx(tip_probabilities(image, [(polygon, axis)], net))
    assert load_tip_net(tmp_path / "missing.npz") is None


def _round_finger_scene(rng, angle_deg):
    """A round nail at the end of a finger held out over a dark ground, the finger at ``angle_deg``:
    (image, nail polygon, unit knuckle -> fingertip direction)."""
    image = np.clip(45 + rng.normal(0, 5, (160, 160, 3)), 0, 255).astype(np.uint8)
    a = math.radians(angle_deg)
    d = np.array([math.cos(a), math.sin(a)])
    centre = np.array([80.0, 80.0]) + rng.normal(0, 3, 2)
    cv2.line(image, tuple(np.round(centre - d * 90).astype(int)), tuple(np.round(centre + d * 9).astype(int)),
             (222, 172, 142), 26, cv2.LINE_AA)
    ring = np.linspace(0, 2 * np.pi, 28, endpoint=False)
    nail = centre + np.c_[np.cos(ring), np.sin(ring)] * rng.uniform(6.5, 7.5)
    cv2.fillPoly(image, [np.round(nail - 0.5).astype(np.int32)], (206, 134, 138))
    return image, nail, d


def test_the_finger_axis_reader_learns_which_way_a_round_nail_s_finger_runs(tmp_path):
    """ml.nail_direction's finger-axis network, trained on round nails of fingers at random angles (it is
    told only the base -> tip direction): on new fingers the read it is most decided on lies along the
    finger, tip end ahead; an untrained one reads at random; it saves and loads like the tip reader; and the
    suggestions turn a round finger nail along it."""
    from ml.nail_direction import finger_axis_reads, load_axis_net, save_tip_net, train_axis_net

    rng = np.random.default_rng(3)
    samples = [_round_finger_scene(rng, rng.uniform(0, 360)) for _ in range(60)]
    net = train_axis_net(samples, epochs=15, width=4, seed=0)
    checks = [_round_finger_scene(rng, angle) for angle in (10, 75, 130, 200, 250, 320)]

    def errors(reader):
        out = []
        for image, polygon, d in checks:
            (axis, decided), = finger_axis_reads(image, [polygon], reader)
            assert 0 <= decided <= 0.5 and abs(np.linalg.norm(axis) - 1) < 1e-9
            out.append(math.degrees(math.acos(np.clip(float(axis @ d), -1, 1))))
        return out

    trained = errors(net)
    assert max(trained) <= 30, trained
    untrained = errors(train_axis_net(samples, epochs=0, width=4, seed=0))
    assert np.mean(untrained) > np.mean(trained) + 20, (untrained, trained)
    again = load_axis_net(save_tip_net(net, tmp_path / "axis.npz", {"nails": len(samples)}))
    assert errors(again) == pytest.approx(trained)
    assert load_axis_net(tmp_path / "missing.npz") is None
    assert finger_axis_reads(None, [checks[0][1]], net) == [None]

    # Four round finger nails in a row across the hand, their fingers slanted 40 degrees off the row's normal:
    # the hand's axis says "up", the finger-axis network says "along each finger".
    image = np.clip(45 + rng.normal(0, 5, (260, 360, 3)), 0, 255).astype(np.uint8)
    a = math.radians(-90 + 40)
    d = np.array([math.cos(a), math.sin(a)])
    nails = []
    for k in range(4):
        centre = np.array([70.0 + 70 * k, 120.0])
        cv2.line(image, tuple(np.round(centre - d * 90).astype(int)), tuple(np.round(centre + d * 9).astype(int)),
                 (222, 172, 142), 26, cv2.LINE_AA)
        ring = np.linspace(0, 2 * np.pi, 28, endpoint=False)
        nail = centre + np.c_[np.cos(ring), np.sin(ring)] * 7
        cv2.fillPoly(image, [np.round(nail - 0.5).astype(np.int32)], (206, 134, 138))
        nails.append(nail.tolist())
    along = suggest_labels(nails, image, rules=SuggestionRules(axis_net=net))
    hand_only = suggest_labels(nails, image, rules=SuggestionRules(axis_net=False, skin_clarity=0.0))

    def axial_error(s):
        u = _unit(np.subtract(s.tip, s.base))
        return math.degrees(math.acos(min(1.0, abs(float(u @ d)))))
    assert max(axial_error(s) for s in along) <= 25, [axial_error(s) for s in along]
    assert min(axial_error(s) for s in hand_only) >= 25, [axial_error(s) for s in hand_only]


def test_a_thumb_may_point_against_the_fingers_when_the_photo_says_so():
    """A thumb curled under the hand: its tip points against the other fingers'. Without a word from the photo
    it is suggested along them (``thumb_against`` is a minority); a sure vote on its own direction turns it,
    and only it; with ``thumb_against`` 0 the vote cannot."""
    _, nails = hand_parts((210, 200), 22, 0, False)
    thumb = next(k for k, n in enumerate(nails) if n["digit"] == 1)
    reversed_thumb = (nails[thumb]["base"] - nails[thumb]["tip"]) / np.linalg.norm(nails[thumb]["base"] - nails[thumb]["tip"])
    votes = [None] * len(nails)
    votes[thumb] = {"direction": reversed_thumb.tolist(), "direction_confidence": 0.9}
    plain = suggest_labels(polygons(nails), None)
    check(plain, nails)
    heard = SuggestionRules(model_direction_weight=1.0)  # a model's direction votes, weighed fully
    turned = suggest_labels(polygons(nails), None, model_votes=votes, rules=heard)
    assert [s.finger for s in turned] == [n["finger"] for n in nails]
    assert angle_error(turned[thumb], nails[thumb]) > 150
    assert all(angle_error(s, n) < 30 for k, (s, n) in enumerate(zip(turned, nails)) if k != thumb)
    held = suggest_labels(polygons(nails), None, model_votes=votes,
                          rules=SuggestionRules(thumb_against=0.0, model_direction_weight=1.0))
    assert angle_error(held[thumb], nails[thumb]) < 30
    # The model's direction votes weigh what ``model_direction_weight`` says: at 0 they say nothing.
    unheard = suggest_labels(polygons(nails), None, model_votes=votes, rules=SuggestionRules(model_direction_weight=0.0))
    assert [s.tip for s in unheard] == [s.tip for s in plain]
    assert [s.direction_confidence for s in unheard] == pytest.approx([s.direction_confidence for s in plain])


def test_the_models_digit_votes_weigh_the_digit_whichever_the_hand():
    """A class head unsure of the hand but sure of the digit (the same mass on left and right digit d): with
    ``model_digit_weight`` its digits decide, with only ``model_weight`` (the whole finger) the geometry keeps
    its own guess of the digits, and with both 0 the votes say nothing."""
    _, nails = render((420, 420), [hand_parts((210, 200), 22, 0, True, digits=(4, 5))])
    alone = suggest_labels(polygons(nails))
    guessed = [s.digit for s in alone]
    wanted = [2, 3] if guessed != [2, 3] else [3, 4]
    votes = []
    for digit in wanted:
        probs = np.full(10, 0.01)
        probs[digit - 1] = probs[digit + 4] = 0.46
        votes.append({"finger_probs": probs.tolist()})
    by_digit = suggest_labels(polygons(nails), model_votes=votes, rules=SuggestionRules(model_weight=0.0, model_digit_weight=1.0))
    assert [s.digit for s in by_digit] == wanted
    off = suggest_labels(polygons(nails), model_votes=votes, rules=SuggestionRules(model_weight=0.0, model_digit_weight=0.0))
    assert [(s.finger, s.confidence) for s in off] == [(s.finger, s.confidence) for s in alone]


def test_hand_groups():
    from ml.hand_groups import group_hands

    rules = SuggestionRules()
    row = [[100 + 30 * k, 100] for k in range(5)]
    assert group_hands(row, [20] * 5, rules)[0] == [[0, 1, 2, 3, 4]]
    assert group_hands(row[:2] + [[900, 100]], [20] * 3, rules)[0] == [[0, 1, 2]]  # few nails: one hand
    far = row + [[x + 800, y] for x, y in row]
    assert sorted(group_hands(far, [20] * 10, rules)[0]) == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]
    assert group_hands([], [], rules) == ([], [])


def test_two_hands_where_known_labels_exclude_a_hand_outright():
    """Two far-apart nails, the first a known left index: the joint weighing of the two hands must not take the
    log of an empty mass (it did: math domain error, found by click-a-nail)."""
    square = [[10, 10], [40, 10], [40, 40], [10, 40]]
    far = [[400, 200], [440, 200], [440, 260], [400, 260]]
    known = [{"finger": 2, "base": [25, 40], "tip": [25, 10]}, None]
    first, second = suggest_labels([square, far], None, known=known)
    assert first.finger == 2 and first.confidence == 1
    assert second.finger is not None and 0 <= second.confidence <= 1


@pytest.mark.parametrize("angle", [0, 35, 100])
def test_skin_axis_follows_the_finger_and_a_round_nail_takes_it(angle):
    """A round nail (no axis of its own) on a finger held out over a dark ground: ml.finger_axis reads the
    finger's axis from the skin, clearly; on plain skin (a palm) it reads nothing clear; a lone round nail's
    suggested base -> tip lies along the finger."""
    from ml.finger_axis import skin_axis, skin_lab

    rng = np.random.default_rng(1)
    image = np.clip(40 + rng.normal(0, 4, (400, 400, 3)), 0, 255).astype(np.uint8)
    a = math.radians(angle)
    d = np.array([math.cos(a), math.sin(a)])  # knuckle -> fingertip
    centre = np.array([200.0, 200.0])
    cv2.line(image, tuple(np.round(centre - d * 160).astype(int)), tuple(np.round(centre + d * 16).astype(int)),
             (222, 172, 142), 44, cv2.LINE_AA)
    ring = np.linspace(0, 2 * np.pi, 32, endpoint=False)
    nail = centre + np.c_[np.cos(ring), np.sin(ring)] * 11
    cv2.fillPoly(image, [np.round(nail - 0.5).astype(np.int32)], (200, 60, 90))
    axis, clarity = skin_axis(skin_lab(image), nail, centre, 22.0, 22.0)
    assert abs(float(axis @ d)) > math.cos(math.radians(15)) and clarity >= SuggestionRules().skin_clarity
    palm = np.full_like(image, (222, 172, 142))
    cv2.fillPoly(palm, [np.round(nail - 0.5).astype(np.int32)], (200, 60, 90))
    assert skin_axis(skin_lab(palm), nail, centre, 22.0, 22.0)[1] < 0.5
    (s,) = suggest_labels([nail.tolist()], image, rules=SuggestionRules(axis_net=False))
    u = np.subtract(s.tip, s.base)
    assert abs(float(u @ d)) / np.linalg.norm(u) > math.cos(math.radians(20))
    (plain,) = suggest_labels([nail.tolist()], image, rules=SuggestionRules(skin_clarity=0.0, axis_net=False))
    assert plain.finger is not None  # the skin axis can be turned off


def test_fit_label_suggestions_trains_and_saves_the_tip_reader(tmp_path, capsys):
    from bench.complete_labels import load_labels, load_participants
    from bench.fit_label_suggestions import axis_samples, main, participant_folds, training_samples
    from ml.nail_direction import load_axis_net, load_tip_net

    labels = _synthetic_confirmed(tmp_path, [(0, False), (90, True), (180, False), (270, True)])
    loaded, people = load_labels(labels), load_participants(tmp_path)
    samples, groups = training_samples(loaded, tmp_path, people, only={"person1"})
    assert len(samples) == 5 and set(groups) == {"person1"}            # only those participants' photos
    truth = {tuple(np.round(n["polygon"][0], 2)): n for n in loaded["hand1.png"]}
    for photo, polygon, axis, ahead in samples:                           # the axis read closest to the answer
        nail = truth[tuple(np.round(polygon[0], 2))]
        d = np.subtract(nail["tip"], nail["base"])
        assert photo.shape[2] == 3 and abs(float(axis @ d)) > 0.9 * np.linalg.norm(d) and ahead == (float(axis @ d) > 0)
    folds = participant_folds([f"person{k}" for k in range(4)] * 2, 3)
    assert sorted(sum(folds, [])) == [f"person{k}" for k in range(4)] and len(folds) == 3

    out, axis_out = tmp_path / "tip.npz", tmp_path / "axis.npz"
    assert main(["--labels", str(labels), "--data", str(tmp_path), "--epochs", "2", "--folds", "2", "--out", str(out),
                 "--axis-out", str(axis_out)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["nails"] == 20 and report["participants"] == 4 and report["saved"] == str(out)
    assert report["cross_validation"]["folds"] == 2 and 0 <= report["cross_validation"]["accuracy"] <= 1
    assert load_tip_net(out) is not None
    axis = report["axis"]   # every nail with a confirmed direction; the round ones scored in the folds
    assert axis["nails"] == 20 and axis["saved"] == str(axis_out) and load_axis_net(axis_out) is not None
    assert axis["cross_validation"]["folds"] == 2 and axis["cross_validation"]["round_nails"] >= 0
    samples, groups = axis_samples(loaded, tmp_path, people, only={"person1"})
    assert len(samples) == 5 and set(groups) == {"person1"}
    for photo, polygon, direction in samples:    # the confirmed base -> tip, as a unit vector
        nail = truth[tuple(np.round(polygon[0], 2))]
        assert np.allclose(direction, _unit(np.subtract(nail["tip"], nail["base"])))
    assert main(["--labels", str(labels), "--data", str(tmp_path), "--epochs", "1", "--folds", "0", "--no-save",
                 "--out", str(tmp_path / "none.npz"), "--axis-out", str(tmp_path / "none-axis.npz")]) == 0
    assert not (tmp_path / "none.npz").exists() and not (tmp_path / "none-axis.npz").exists()


def test_the_model_vote_weights_are_chosen_by_the_cross_validation(tmp_path):
    """``bench/fit_model_votes.py``'s sweep on synthetic hands whose votes (as a fold model's would be) name the
    wrong finger with confidence: the rows that weigh them lose fingers, so the chosen weights are 0; votes
    that name the right finger leave the geometry's answer as it is (already right: the smaller weights win)."""
    from bench.complete_labels import load_labels, load_participants
    from bench.fit_model_votes import BUDGET, render, sweep

    labels = load_labels(_synthetic_confirmed(tmp_path, [(0, False), (90, True), (180, False), (270, True)]))
    people = load_participants(tmp_path)

    def votes(shift):
        out = {}
        for name, nails in labels.items():
            out[name] = []
            for nail in nails:
                probs = np.full(10, 0.005)
                probs[(nail["finger"] - 1 + shift) % 10] = 0.955
                out[name].append({"finger_probs": probs.tolist()})
        return out

    wrong = sweep(labels, people, sorted(set(people.values())), votes(1), tmp_path, epochs=1)
    assert wrong["without_model"]["finger_accuracy"] == 1.0 and wrong["without_model"]["nails"] == 20
    assert len(wrong["stage1"]) == 3 and len(wrong["stage2"]) == 12
    assert wrong["best"]["model_weight"] == 0.0 and wrong["best"]["model_digit_weight"] == 0.0
    heavy = next(r for r in wrong["stage2"] if r["model_weight"] == 1.0 and r["model_digit_weight"] == 1.0)
    assert heavy["finger_accuracy"] < 0.5 and heavy["model_finger_accuracy"] == 0.0 and heavy["model_digit_accuracy"] == 0.0
    text = render({"when": "2026-12-06 17:00 UTC", "total_s": 30.0, "command": "python bench/fit_model_votes.py",
                   "commit": "abc", "machine": {"cpu": "a CPU", "nproc": 2}, "budget": BUDGET, "folds": 5,
                   "tuning_participants": 4, "models": {"fold-0": {"photos": 3, "wall_s": 12.0}}, **wrong})
    assert text.count("(best)") == 1 and "| **2 (best)** | 0 | 0 |" in text and "| no model | - | - | - |" in text
    right = sweep(labels, people, sorted(set(people.values())), votes(0), tmp_path, epochs=1)
    assert all(r["finger_accuracy"] == 1.0 for r in right["stage2"])
    assert right["best"] == {"model_weight": 0.0, "model_digit_weight": 0.0, "model_direction_weight": 0.0}
