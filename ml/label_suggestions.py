"""Label suggestions for polygon-only nails: which finger (hand + digit) each nail is, and its base/tip.

Plain Python + NumPy + OpenCV + Shapely (issue #16); never imports Django or an app.

    from ml.label_suggestions import suggest_labels
    suggestions = suggest_labels(polygons, image)          # one NailSuggestion per polygon, same order
    [s.to_dict() for s in suggestions]

How it decides (every number below lives in :class:`SuggestionRules`):

1. Per nail: area centroid, principal axis, length (extent along the axis), width (across), area. With a
   photo, :mod:`ml.nail_direction` (a small CNN on a crop aligned with the axis: the nail, its free edge
   and cuticle, and the skin beyond both ends) votes on which end of the axis is the tip, its probability
   capped at ``photo_vote_cap``; a nail about as wide as long (aspect < ``round_aspect``) is read on both
   its axes, and in a hand (not its thumb) it takes the axis its finger runs along as the finger-axis
   network of :mod:`ml.nail_direction` reads it (of 12 reads every 15 degrees, the one it is most decided
   on); without that network, the hand's axis (the fingers' own axes and the normal of the fingertip line),
   its suggested base/tip then following its finger's axis read from the skin around it
   (:mod:`ml.finger_axis`) when that reads clearly (``skin_clarity``).
2. Hands: a photo of at most ``one_hand_up_to`` nails shows one hand; otherwise nails closer than ``hand_gap`` nail widths (single linkage) are one hand; a lone nail within
   ``thumb_reach`` widths of a hand of fewer than five joins it (a thumb far from the fingers); a group of
   more than five is cut at its longest link until no group has more than five.
3. Within a hand every hypothesis is scored: (direction sign of the hand) x (left / right) x (which nail
   is the thumb, or none) x (which of little, ring, middle, index the other nails are, in their order
   across the hand). Hand and direction fix the side the index is on: with ``D`` the fingers'
   base -> tip direction and ``A`` the little -> index direction across the hand, the 2-D cross product
   ``D.x * A.y - D.y * A.x`` is negative for a right hand and positive for a left hand (back of a right
   hand, fingers up: ``D = (0, -1)``, thumb on the image's left, ``A = (-1, 0)``, cross = -1). Curled
   fingers seen from the palm side mirror the view *and* reverse the nails' direction, so the same rule
   holds. The score (a log-likelihood, Gaussian penalties in nail widths) adds:
   - spacing: neighbouring fingers are ``finger_spacing`` nail widths apart (twice that across a skipped
     finger);
   - widths: middle ~ index > ring > little (``digit_widths``, one free scale per hand; the thumb's free);
   - fingertip line: along ``D`` the middle nail is furthest, the little one well behind (``digit_reach``,
     one free offset), the thumb behind them all;
   - the thumb: apart from the other nails (``thumb_gap``), turned away from their direction, on the
     index side, its tip along ``D`` or, less often (``thumb_against``: curled under, across a fist),
     against it; the other four point along ``D``;
   - the thumb's shape (``thumb_shape``: seen from above, or edge-on: narrow and long);
   - the photo's vote on each nail's direction (``ml.nail_direction``) and, when given, the model's
     per-nail votes (below);
   - ``known`` labels as constraints (a hypothesis that contradicts a known finger is dropped; one that
     contradicts a known base/tip is all but excluded).
   The hypotheses' scores, times ``temperature``, give a posterior; the best one assigns the fingers
   (one-to-one within a hand) and each nail's ``confidence`` is the mass of its suggested finger in that
   posterior sharpened by ``confidence_sharpness`` and capped at ``max_confidence`` (both set for the
   calibration on the tuning participants), ``direction_confidence`` that of its suggested direction. Two groups in one photo are weighed
   jointly with a prior that they are a left and a right hand (``two_hands_differ``).

Model votes (``model_votes[i] = {"finger_probs": [10 floats], "direction": [dx, dy],
"direction_confidence": c}``, any key optional): each hypothesis adds ``model_weight * log(p[finger])`` and
``model_digit_weight * log(p[left digit] + p[right digit])`` for every nail (a confident class head moves the
geometric cues, an unsure one barely does; the weights are set by ``bench/fit_model_votes.py``'s
cross-validation, where each photo's votes come from a model that never saw its participant), and the
model's direction is a vote on the nail's direction like the photo's (a vote ``p`` adds ``log 2p`` along it, ``log
2(1 - p)`` against: 0.5 adds nothing), with ``p = 0.5 + model_direction_weight * 0.5 * c`` (capped at 0.98).

Known labels (``known[i] = {"finger": f|None, "base": [x, y]|None, "tip": [x, y]|None}``) are returned
unchanged (confidence 1) and constrain the others.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass, field
from typing import Sequence

import numpy as np
from shapely.geometry import Polygon

from ml.finger_axis import skin_axis, skin_lab
from ml.hand_groups import group_hands
from ml.nail_direction import finger_axis_reads, tip_probabilities
from ml.postprocess import angle_between, axis_ends, nail_axis

__all__ = ["DIGIT_NAMES", "NailSuggestion", "SuggestionRules", "finger_of", "hand_and_digit", "short_name",
           "direction_reads", "suggest_labels"]

DIGIT_NAMES = ("thumb", "index", "middle", "ring", "little")  # digit 1..5


def finger_of(hand: str, digit: int) -> int:
    """Finger class (1..10) of a hand ("left"/"right") and digit (1 thumb .. 5 little)."""
    return digit + (5 if hand == "right" else 0)


def hand_and_digit(finger: int) -> tuple[str, int]:
    return ("left" if finger <= 5 else "right"), (finger - 1) % 5 + 1


def short_name(finger: int | None) -> str:
    """"R index", "L thumb", or "?" for None."""
    if finger is None:
        return "?"
    hand, digit = hand_and_digit(finger)
    return f"{hand[0].upper()} {DIGIT_NAMES[digit - 1]}"


@dataclass(frozen=True)
class SuggestionRules:
    """The numbers of the rules (lengths in nail widths: the hand's median nail width)."""

    round_aspect: float = 1.25       # below this length/width a nail's own axis says little
    line_weight: float = 0.5         # per finger: the weight of the fingertip line's normal in the hand's axis
    skin_clarity: float = 2.0        # a round nail's tip/base follow the skin's axis (ml.finger_axis) this clear
    hand_gap: float = 4.0            # single-linkage distance between nails of one hand
    thumb_reach: float = 9.0         # a lone nail this close to a hand of < 5 nails joins it
    finger_spacing: float = 1.6      # between neighbouring fingers' nails, across the hand
    spacing_log_sd: float = 0.45
    digit_widths: tuple = (1.25, 1.0, 1.03, 0.95, 0.8)    # thumb..little, relative
    width_log_sd: float = 0.13
    digit_reach: tuple = (0.0, 0.0, 0.7, 0.35, -1.0)      # index..little along D (thumb unused)
    reach_sd: float = 0.8
    thumb_behind: float = -0.5       # the thumb's reach relative to the others' offset: at most this
    thumb_behind_sd: float = 1.0
    thumb_gap: float = 2.2           # the thumb's distance to its nearest other nail: at least this
    thumb_gap_sd: float = 0.8
    finger_angle_sd: float = 22.0    # degrees between a finger's axis and D
    thumb_angle: float = 35.0        # typical angle between the thumb's axis and D
    thumb_angle_sd: float = 30.0
    thumb_side_sd: float = 1.5       # the thumb lies on the index side
    thumb_against: float = 0.2       # prior chance that the thumb's tip points against the fingers' (curled
                                     # under, across a fist: 6 of the tuning participants' 28 thumbs)
    # A thumb's log(aspect / the fingers' median) and log(width / the fingers' median): seen from above
    # (weight, r mean, r sd, w mean, w sd), edge-on (the same), and a finger's (r sd, w mean, w sd); read
    # off the tuning participants' confirmed labels (28 thumbs, 159 fingers).
    thumb_shape: tuple = ((0.6, 0.1, 0.2, 0.05, 0.25), (0.4, 1.2, 0.35, -1.3, 0.4), (0.24, -0.03, 0.3))
    thumb_prior: float = 0.5         # prior chance that a hand's thumb nail is among the nails
    tip_net: object | None = None    # ml.nail_direction's network (None: its trained weights, WEIGHTS_PATH)
    axis_net: object | None = None   # its finger-axis network (None: its trained weights, AXIS_WEIGHTS_PATH;
                                     # False: none, a round finger nail takes the hand's axis or the skin's)
    photo_vote_cap: float = 0.95     # the photo's vote on a nail's direction is at most this sure
    max_confidence: float = 0.9      # no suggestion is certain
    # A model's votes (bench/fit_model_votes.py: CV with a CPU-trained model per fold; their fields were within
    # 30 deg for 62.6 % of the nails): class votes on the finger, on the digit (p[left d] + p[right d]), direction.
    model_weight: float = 0.25       # model_weight * log(p[finger]) per nail
    model_digit_weight: float = 0.5  # model_digit_weight * log(p[left d] + p[right d])
    model_direction_weight: float = 0.0  # P(right) = 0.5 + weight * (0.5 * c), c the field's agreement
    known_direction_penalty: float = 12.0
    two_hands_differ: float = 2.0    # log-odds that two hands in a photo are a left and a right one
    one_hand_up_to: int = 5          # a photo with at most this many nails shows one hand
    temperature: float = 0.2         # the hypotheses' posterior = softmax(temperature * score)
    confidence_sharpness: float = 2.0  # the confidences': softmax(sharpness * temperature * score)
    few_nails_cap: tuple = (0.35, 0.6)    # confidence caps for hands of 1 and 2 nails


@dataclass
class NailSuggestion:
    """The suggestion for one nail. ``finger`` 1..10 (None: no basis at all), ``hand`` "left"/"right",
    ``digit`` 1 (thumb) .. 5 (little); ``base``/``tip`` [x, y] where the nail's axis leaves its polygon;
    ``confidence``: the chance the finger is right; ``direction_confidence``: the chance base -> tip is
    right (within 30 degrees); ``reasons``: short strings for the UI."""

    finger: int | None
    hand: str | None
    digit: int | None
    base: list[float]
    tip: list[float]
    confidence: float
    direction_confidence: float
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["confidence"] = round(self.confidence, 3)
        out["direction_confidence"] = round(self.direction_confidence, 3)
        out["base"] = [round(float(v), 2) for v in self.base]
        out["tip"] = [round(float(v), 2) for v in self.tip]
        return out


# ----------------------------------------------------------------------------------------------------
# One nail
# ----------------------------------------------------------------------------------------------------


@dataclass
class _Nail:
    index: int
    polygon: np.ndarray
    centre: np.ndarray
    major: np.ndarray        # unit, pointing up in the image
    length: float
    width: float
    area: float
    axis: np.ndarray = None  # the axis used (major, or minor for a round nail); sign arbitrary
    votes: list = field(default_factory=list)   # (unit direction, p_right, source)
    known_dir: np.ndarray | None = None
    known_finger: int | None = None
    finger_probs: np.ndarray | None = None
    photo_axis: np.ndarray | None = None  # a round nail's axis that the photo reads most clearly
    finger_axis: np.ndarray | None = None  # a round nail's axis read by the finger-axis network
    skin_axis: np.ndarray | None = None   # the finger's axis from the skin around the nail (ml.finger_axis)
    skin_clarity: float = 0.0

    @property
    def aspect(self) -> float:
        return self.length / max(self.width, 1e-6)


def _measure(index: int, polygon) -> _Nail:
    pts = np.asarray(polygon, np.float64)
    centre, major = nail_axis(pts)
    minor = np.array([-major[1], major[0]])
    rel = pts - centre
    along, across = rel @ major, rel @ minor
    length = float(along.max() - along.min())
    width = float(across.max() - across.min())
    area = float(abs(Polygon(pts).area))
    return _Nail(index, pts, np.asarray(centre, np.float64), major, max(length, 1e-3), max(width, 1e-3), area,
                 axis=major.copy())


def _axes_to_read(nail: _Nail, rules: SuggestionRules) -> list[np.ndarray]:
    """The axes whose ends a nail's direction is read on: its major axis, and its minor one when round."""
    axes = [nail.major]
    if nail.aspect < rules.round_aspect:
        axes.append(np.array([-nail.major[1], nail.major[0]]))
    return axes


def direction_reads(polygons: Sequence, rules: SuggestionRules | None = None) -> list[list[np.ndarray]]:
    """Per nail, the axes whose ends :func:`suggest_labels` asks the photo about (``bench/fit_label_suggestions.py``
    trains ``ml.nail_direction``'s network on the one closest to each confirmed direction)."""
    rules = rules or SuggestionRules()
    return [_axes_to_read(_measure(i, p), rules) for i, p in enumerate(polygons)]


def _direction_votes(nails: list[_Nail], image: np.ndarray | None, rules: SuggestionRules) -> None:
    """Each nail's vote on its direction (both axes of a round nail are tried later, so vote on both), and a
    round nail's finger axis as the finger-axis network reads it (none with ``axis_net=False``)."""
    reads = [(k, axis) for k, nail in enumerate(nails) for axis in _axes_to_read(nail, rules)]
    probabilities = tip_probabilities(image, [(nails[k].polygon, axis) for k, axis in reads], rules.tip_net)
    best = [0.0] * len(nails)
    for (k, axis), p in zip(reads, probabilities):
        if p is None:
            continue
        nail = nails[k]
        p = min(max(p, 1 - rules.photo_vote_cap), rules.photo_vote_cap)
        nail.votes.append((np.asarray(axis, np.float64), p, "photo"))
        if nail.aspect < rules.round_aspect and abs(p - 0.5) > best[k]:
            best[k], nail.photo_axis = abs(p - 0.5), np.asarray(axis, np.float64)
    if rules.axis_net is False:
        return
    round_nails = [nail for nail in nails if nail.aspect < rules.round_aspect]
    for nail, read in zip(round_nails, finger_axis_reads(image, [nail.polygon for nail in round_nails], rules.axis_net)):
        if read is not None:
            nail.finger_axis = read[0]


# ----------------------------------------------------------------------------------------------------
# Hands
# ----------------------------------------------------------------------------------------------------


def _two_hands(nails: list[_Nail], rules: SuggestionRules, candidates: int = 12) -> list[list[int]]:
    """Six to ten nails: the split into two hands (at most five each) whose hypotheses explain the nails
    best. The ``candidates`` most compact splits (k-means objective) are scored in full."""
    n = len(nails)
    centres = np.array([nail.centre for nail in nails])
    splits = []
    for size in range(n - 5, n // 2 + 1):
        for first in itertools.combinations(range(1, n), size - 1) if size * 2 == n else \
                itertools.combinations(range(n), size):
            a = sorted(set(first) | ({0} if size * 2 == n else set()))
            b = [i for i in range(n) if i not in a]
            if not a or not b or len(a) > 5 or len(b) > 5:
                continue
            spread = sum(float(((centres[g] - centres[g].mean(axis=0)) ** 2).sum()) for g in (a, b))
            splits.append((spread, a, b))
    splits.sort(key=lambda x: x[0])
    cache: dict[tuple, float] = {}

    def explained(group) -> float:
        key = tuple(group)
        if key not in cache:
            hyps = _hand_hypotheses([nails[i] for i in group], rules)
            scores = np.array([h.score for h in hyps]) * rules.temperature if hyps else np.array([-1e9])
            top = scores.max()
            cache[key] = float(top + math.log(np.exp(scores - top).sum()))
        return cache[key]
    best = max(splits[:candidates], key=lambda x: explained(x[1]) + explained(x[2]))
    return [best[1], best[2]]


def _axial_mean(vectors: list[np.ndarray], weights: list[float]) -> np.ndarray:
    """Mean of axes (sign-free) by doubled angles."""
    c = s = 0.0
    for v, w in zip(vectors, weights):
        a = 2 * math.atan2(v[1], v[0])
        c, s = c + w * math.cos(a), s + w * math.sin(a)
    a = math.atan2(s, c) / 2
    return np.array([math.cos(a), math.sin(a)])


def _gauss(z: float) -> float:
    return -0.5 * z * z


@dataclass
class _Hypothesis:
    score: float
    hand: str
    fingers: dict          # nail index -> finger
    directions: dict       # nail index -> unit base -> tip
    thumb: int | None


def _hand_hypotheses(nails: list[_Nail], rules: SuggestionRules) -> list[_Hypothesis]:
    """Every hypothesis for one hand's nails, scored (see the module docstring)."""
    n = len(nails)
    unit = float(np.median([nail.width for nail in nails]))
    out: list[_Hypothesis] = []
    thumb_choices = [None] + list(range(n))
    for thumb in thumb_choices:
        fingers_idx = [i for i in range(n) if i != thumb]
        if len(fingers_idx) > 4:
            continue
        d_axis = _hand_axis(nails, fingers_idx or [thumb], rules)
        # Round nails take the hand's direction (their own axes say little).
        axes = {}
        for i, nail in enumerate(nails):
            axis = nail.major
            if nail.aspect < rules.round_aspect and nail.known_dir is None:
                if i == thumb or not fingers_idx:  # the thumb: the axis the tip network reads best
                    axis = nail.photo_axis if nail.photo_axis is not None else axis
                else:  # a finger: the finger-axis network's axis, or the hand's
                    axis = nail.finger_axis if nail.finger_axis is not None else d_axis
            axes[i] = axis
        prior = math.log(rules.thumb_prior if thumb is not None else 1 - rules.thumb_prior)
        # The thumb's tip points along the fingers' or, less often, against them (its own sign).
        thumb_signs = (1.0, -1.0) if thumb is not None and fingers_idx and rules.thumb_against > 0 else (1.0,)
        for sign, thumb_sign in itertools.product((1.0, -1.0), thumb_signs):
            d = d_axis * sign
            directions = {}
            direction_score = 0.0
            if len(thumb_signs) == 2:
                direction_score += math.log(rules.thumb_against if thumb_sign < 0 else 1 - rules.thumb_against)
            for i, nail in enumerate(nails):
                u = axes[i] if axes[i] @ d >= 0 else -axes[i]
                if i == thumb:
                    u = u * thumb_sign
                directions[i] = u
                for vote, p, _ in nail.votes:
                    if abs(vote @ u) > 0.7:  # a vote on this axis, against a vote of 0.5 (no opinion: 0)
                        direction_score += math.log(2 * (p if vote @ u > 0 else 1 - p))
                if nail.known_dir is not None and nail.known_dir @ u < 0.5:
                    direction_score -= rules.known_direction_penalty
            shape_score = 0.0
            for i in fingers_idx:
                shape_score += _gauss(angle_between(axes[i], d, axial=True) / rules.finger_angle_sd)
            if thumb is not None and fingers_idx:
                shape_score += _gauss((angle_between(axes[thumb], d, axial=True) - rules.thumb_angle) / rules.thumb_angle_sd)
                shape_score += _thumb_shape(nails[thumb], [nails[i] for i in fingers_idx], rules)
                gap = min(np.linalg.norm(nails[thumb].centre - nails[i].centre) for i in fingers_idx) / unit
                if gap < rules.thumb_gap:
                    shape_score += _gauss((rules.thumb_gap - gap) / rules.thumb_gap_sd)
            for hand in ("left", "right"):
                a = np.array([-d[1], d[0]]) if hand == "left" else np.array([d[1], -d[0]])
                s = {i: float(nails[i].centre @ a) / unit for i in range(n)}
                t = {i: float(nails[i].centre @ d) / unit for i in range(n)}
                order = sorted(fingers_idx, key=lambda i: s[i])
                for positions in itertools.combinations(range(4), len(order)):
                    digits = {i: 5 - p for i, p in zip(order, positions)}  # position 0 = little
                    if thumb is not None:
                        digits[thumb] = 1
                    fingers = {i: finger_of(hand, k) for i, k in digits.items()}
                    if any(nails[i].known_finger is not None and nails[i].known_finger != f
                           for i, f in fingers.items()):
                        continue
                    score = prior + direction_score + shape_score
                    score += _layout_score(nails, order, positions, digits, thumb, s, t, unit, rules)
                    for i, f in fingers.items():
                        probs = nails[i].finger_probs
                        if probs is not None:
                            score += rules.model_weight * math.log(max(float(probs[f - 1]), 1e-4))
                            if rules.model_digit_weight:  # the digit whichever the hand: p[left d] + p[right d]
                                digit = digits[i] - 1
                                score += rules.model_digit_weight * math.log(max(float(probs[digit] + probs[digit + 5]), 1e-4))
                    out.append(_Hypothesis(score, hand, fingers, directions, thumb))
    return out


def _hand_axis(nails: list[_Nail], basis: list[int], rules: SuggestionRules) -> np.ndarray:
    """The fingers' axis (sign-free): the mean of the nails' own axes, weighted by how elongated they are,
    and, with three or more fingers, the normal of the line through their centres (the fingertips lie
    across the hand), weighted by how straight that line is (``line_weight``)."""
    vectors = [nails[i].major for i in basis]
    weights = [min(nails[i].aspect, 3.0) - 0.9 for i in basis]
    if len(basis) >= 3:
        centres = np.array([nails[i].centre for i in basis])
        values, vectors_ = np.linalg.eigh(np.cov((centres - centres.mean(axis=0)).T))
        line = vectors_[:, 1]
        vectors.append(np.array([-line[1], line[0]]))
        weights.append(rules.line_weight * (1 - values[0] / max(values[1], 1e-9)) * len(basis))
    return _axial_mean(vectors, weights)


def _thumb_shape(thumb: _Nail, fingers: list[_Nail], rules: SuggestionRules) -> float:
    """Log-likelihood ratio (over the temperature) of the thumb's shape relative to the fingers':
    ``r = log(aspect / the fingers' median aspect)``, ``w = log(width / the fingers' median width)``; a thumb
    is seen from above (about a finger's elongation, a little wider) or edge-on (narrow and long); a
    finger's ``r`` and ``w`` are near 0 (``thumb_shape``: (weight, r mean, r sd, w mean, w sd) of the
    two thumb views, then (r sd, w mean, w sd) of a finger)."""
    r = math.log(thumb.aspect / float(np.median([f.aspect for f in fingers])))
    w = math.log(thumb.width / float(np.median([f.width for f in fingers])))
    top, edge, finger = rules.thumb_shape

    def density(x, m, sd):
        return math.exp(-0.5 * ((x - m) / sd) ** 2) / sd
    thumb_p = sum(weight * density(r, rm, rs) * density(w, wm, ws) for weight, rm, rs, wm, ws in (top, edge))
    finger_p = density(r, 0.0, finger[0]) * density(w, finger[1], finger[2])
    return math.log(max(thumb_p, 1e-12) / max(finger_p, 1e-12)) / rules.temperature


def _layout_score(nails, order, positions, digits, thumb, s, t, unit, rules) -> float:
    score = 0.0
    # Spacing across the hand.
    for (i, p), (j, q) in zip(zip(order, positions), zip(order[1:], positions[1:])):
        gap = max(s[j] - s[i], 0.05)
        score += _gauss(math.log(gap / ((q - p) * rules.finger_spacing)) / rules.spacing_log_sd)
    # Widths: one free scale; the thumb's is free too (it is often seen edge-on: narrow and long).
    fingers = {i: k for i, k in digits.items() if k != 1}
    if len(fingers) > 1:
        logs = {i: math.log(nails[i].width / unit) - math.log(rules.digit_widths[k - 1]) for i, k in fingers.items()}
        mean = sum(logs.values()) / len(logs)
        score += sum(_gauss((v - mean) / rules.width_log_sd) for v in logs.values())
    # Fingertip line along D: one free offset.
    if order:
        rel = {i: t[i] - rules.digit_reach[digits[i] - 1] for i in order}
        offset = sum(rel.values()) / len(rel)
        score += sum(_gauss((v - offset) / rules.reach_sd) for v in rel.values())
        if thumb is not None:
            ahead = t[thumb] - offset - rules.thumb_behind
            if ahead > 0:
                score += _gauss(ahead / rules.thumb_behind_sd)
            beside = max(s[i] for i in order) - s[thumb]
            if beside > 0:
                score += _gauss(beside / rules.thumb_side_sd)
    return score


# ----------------------------------------------------------------------------------------------------
# The entry point
# ----------------------------------------------------------------------------------------------------


def _posterior(hypotheses: list[_Hypothesis], rules: SuggestionRules, hand_weight: dict | None = None,
               sharpness: float = 1.0):
    """softmax(temperature * score + the hand's weight), all times ``sharpness``."""
    scores = np.array([h.score for h in hypotheses]) * rules.temperature
    if hand_weight:
        scores = scores + np.array([hand_weight[h.hand] for h in hypotheses])
    scores = scores * sharpness
    scores = scores - scores.max()
    weights = np.exp(scores)
    return weights / weights.sum()


def _hand_log_mass(hypotheses, rules) -> dict:
    scores = np.array([h.score for h in hypotheses]) * rules.temperature
    top = scores.max()
    out = {}
    for hand in ("left", "right"):
        sel = [sc for sc, h in zip(scores, hypotheses) if h.hand == hand]
        out[hand] = top + math.log(sum(math.exp(v - top) for v in sel)) if sel else -math.inf
    return out


def suggest_labels(polygons: Sequence, image: np.ndarray | None = None, *, known: Sequence | None = None,
                   model_votes: Sequence | None = None, rules: SuggestionRules | None = None
                   ) -> list[NailSuggestion]:
    """Suggestions for the nails of one image (see the module docstring), one per polygon, same order.

    ``polygons``: lists of [x, y] (image px); ``image``: uint8 RGB array of the photo, or None;
    ``known``: per nail None or ``{"finger", "base", "tip"}`` (each optional / None); ``model_votes``: per
    nail None or ``{"finger_probs", "direction", "direction_confidence"}``."""
    rules = rules or SuggestionRules()
    nails = [_measure(i, p) for i, p in enumerate(polygons)]
    n = len(nails)
    known = list(known) if known is not None else [None] * n
    model_votes = list(model_votes) if model_votes is not None else [None] * n
    if len(known) != n or len(model_votes) != n:
        raise ValueError("known and model_votes need one entry per polygon")
    for nail, k, v in zip(nails, known, model_votes):
        if k:
            if k.get("finger") is not None:
                nail.known_finger = int(k["finger"])
            if k.get("base") is not None and k.get("tip") is not None:
                vec = np.asarray(k["tip"], np.float64) - np.asarray(k["base"], np.float64)
                if np.hypot(*vec) > 0:
                    nail.known_dir = vec / np.hypot(*vec)
                    nail.major = nail.known_dir.copy()
                    nail.length = max(nail.length, nail.width)
        if v:
            if v.get("finger_probs") is not None:
                probs = np.clip(np.asarray(v["finger_probs"], np.float64), 0, None)
                if probs.shape == (10,) and probs.sum() > 0:
                    nail.finger_probs = probs / probs.sum()
            if v.get("direction") is not None:
                vec = np.asarray(v["direction"], np.float64)
                if np.hypot(*vec) > 0:
                    c = float(v.get("direction_confidence", 0.5) or 0.0)
                    p = 0.5 + rules.model_direction_weight * (min(0.98, 0.5 + 0.5 * c) - 0.5)
                    nail.votes.append((vec / np.hypot(*vec), p, "model"))
    _direction_votes(nails, image, rules)
    # The finger's axis from the skin: for the round nails the finger-axis network did not read (the only ones
    # whose suggestion it can turn).
    skin_read = [nail for nail in nails
                 if nail.aspect < rules.round_aspect and nail.finger_axis is None and nail.known_dir is None]
    if image is not None and rules.skin_clarity > 0 and skin_read:
        lab = skin_lab(image)
        for nail in skin_read:
            nail.skin_axis, nail.skin_clarity = skin_axis(lab, nail.polygon, nail.centre, nail.width, nail.length)
    groups, group_notes = group_hands([n.centre for n in nails], [n.width for n in nails], rules)
    if 6 <= n <= 10 and not any(k and k.get("finger") for k in known):
        groups = _two_hands(nails, rules)
        group_notes = [note for note in group_notes if "split" not in note]
    per_group = [_hand_hypotheses([nails[i] for i in g], rules) for g in groups]
    # Two hands: weigh their hands jointly (usually one left and one right).
    hand_weights: list[dict | None] = [None] * len(groups)
    if len(groups) == 2 and all(per_group):
        masses = [_hand_log_mass(h, rules) for h in per_group]
        joint = {(a, b): masses[0][a] + masses[1][b] + (rules.two_hands_differ if a != b else 0.0)
                 for a in ("left", "right") for b in ("left", "right")}
        top = max(joint.values())
        for g in range(2):
            for_hand = {}
            for hand in ("left", "right"):
                sel = [v for key, v in joint.items() if key[g] == hand]
                marginal = top + math.log(total) if (total := sum(math.exp(v - top) for v in sel)) > 0 else -math.inf
                for_hand[hand] = marginal - masses[g][hand] if masses[g][hand] > -math.inf else 0.0
            hand_weights[g] = for_hand

    results: list[NailSuggestion | None] = [None] * n
    for g, (members, hyps) in enumerate(zip(groups, per_group)):
        if not hyps:  # known fingers contradict each other: no basis
            for i in members:
                results[i] = _fallback(nails[i], known[i], ["known labels of this hand contradict each other"])
            continue
        post = _posterior(hyps, rules, hand_weights[g], rules.confidence_sharpness)  # sharpening keeps the argmax
        best = hyps[int(np.argmax(post))]
        reasons_hand = _hand_reasons(best, [nails[i] for i in members], group_notes, len(groups))
        for local, i in enumerate(members):
            nail = nails[i]
            finger = best.fingers[local]
            u = best.directions[local]
            if nail.skin_axis is not None and nail.skin_clarity >= rules.skin_clarity:  # read only where it may turn
                u = nail.skin_axis if nail.skin_axis @ u >= 0 else -nail.skin_axis
            p_finger = float(sum(w for w, h in zip(post, hyps) if h.fingers[local] == finger))
            p_dir = float(sum(w for w, h in zip(post, hyps) if h.directions[local] @ u > 0.5))
            cap = rules.few_nails_cap[len(members) - 1] if len(members) <= 2 else 1.0
            if any("split" in note for note in group_notes):
                cap = min(cap, 0.5)
            p_finger = min(p_finger, cap, rules.max_confidence)
            p_dir = min(p_dir, rules.max_confidence)
            reasons = list(reasons_hand)
            if any(src == "photo" for _, _, src in nail.votes):
                reasons.append("direction from the photo (the finger continues past the base)")
            if any(src == "model" for _, _, src in nail.votes) or nail.finger_probs is not None:
                reasons.append("model votes")
            if not nail.votes and nail.known_dir is None:
                reasons.append("direction from the hand's layout only")
            k = known[i] or {}
            if k.get("finger") is not None:
                finger, p_finger = int(k["finger"]), 1.0
                reasons = ["finger given"]
            if nail.known_dir is not None:
                base, tip = list(map(float, k["base"])), list(map(float, k["tip"]))
                p_dir = 1.0
            else:
                base, tip = (list(map(float, v)) for v in axis_ends(nail.polygon, nail.centre, u))
            hand, digit = hand_and_digit(finger)
            results[i] = NailSuggestion(finger, hand, digit, base, tip, p_finger, p_dir, reasons)
    return results


def _fallback(nail: _Nail, known: dict | None, reasons: list[str]) -> NailSuggestion:
    base, tip = axis_ends(nail.polygon, nail.centre, nail.major)
    known = known or {}
    finger = known.get("finger")
    hand, digit = hand_and_digit(finger) if finger else (None, None)
    return NailSuggestion(finger, hand, digit, list(map(float, base)), list(map(float, tip)),
                          1.0 if finger else 0.0, 0.0, reasons)


def _hand_reasons(best: _Hypothesis, nails: list[_Nail], notes: list[str], n_groups: int) -> list[str]:
    reasons = []
    if n_groups > 1:
        reasons.append(f"one of {n_groups} hands in the photo")
    reasons.extend(notes)
    if len(nails) <= 2:
        reasons.append(f"only {len(nails)} nail{'s' if len(nails) > 1 else ''} of this hand: a guess")
    if best.thumb is not None and len(nails) > 1:
        reasons.append("thumb: the nail apart from the others, turned away, on the index side")
    elif len(nails) > 1:
        reasons.append("no thumb among these nails; order across the hand, sizes and fingertip line")
    reasons.append(f"{best.hand} hand: the thumb/index side relative to the fingers' direction")
    return reasons
