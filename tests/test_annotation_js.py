"""The annotation page's JavaScript: its Node unit tests (tests/js/), and the page's live validation
(labeling/static/labeling/geometry.js) against the server's rules (dataset/geometry.py) on many random
geometries: the page must flag exactly what the server refuses."""
import json
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from dataset.geometry import validate_geometry

ROOT = Path(__file__).resolve().parent.parent
NODE = shutil.which("node")


@pytest.fixture(autouse=True)
def node_is_installed():
    """`make test` installs Node; a missing Node fails these tests instead of skipping them."""
    assert NODE, "Node.js is not installed (needed for the JS unit tests): run `make test`"


def test_node_unit_tests_pass():
    result = subprocess.run([NODE, "--test", "tests/js/"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "# fail 0" in result.stdout


def _point(rng, width, height):
    kind = rng.random()
    if kind < 0.05:
        return [rng.uniform(-8, width + 8), rng.uniform(-8, height + 8)]
    if kind < 0.5:
        return [rng.randint(-1, width + 1) / 1, rng.randint(-1, height + 1) / 1]
    return [round(rng.uniform(0, width), 2), round(rng.uniform(0, height), 2)]


def _polygon(rng, width, height):
    style = rng.random()
    if style < 0.1:  # collinear
        x0, y0, dx, dy = rng.randint(0, 20), rng.randint(0, 20), rng.randint(-3, 3), rng.randint(-3, 3)
        return [[x0 + k * dx, y0 + k * dy] for k in range(rng.randint(3, 5))]
    if style < 0.2:  # a duplicate vertex somewhere
        pts = [_point(rng, width, height) for _ in range(rng.randint(3, 6))]
        return pts + [list(rng.choice(pts))]
    if style < 0.6:  # star-shaped (simple) around a centre
        cx, cy, n = rng.uniform(5, width - 5), rng.uniform(5, height - 5), rng.randint(3, 9)
        angles = sorted(rng.sample(range(360), n))
        import math
        return [[round(cx + r * math.cos(math.radians(a)), 2), round(cy + r * math.sin(math.radians(a)), 2)]
                for a, r in ((a, rng.uniform(1, 12)) for a in angles)]
    return [_point(rng, width, height) for _ in range(rng.randint(2, 7))]


def _geometry(rng, width, height):
    nails = []
    for _ in range(rng.randint(0, 4)):
        polygon = _polygon(rng, width, height)
        nail = {"polygon": polygon, "finger": rng.choice([None, None, 1, 2, 5, 6, 10, 10, 0, 11]), "base": None, "tip": None}
        landmarks = rng.random()
        if landmarks < 0.3 and polygon:
            nail["base"], nail["tip"] = list(rng.choice(polygon)), list(rng.choice(polygon))
        elif landmarks < 0.5:
            nail["base"], nail["tip"] = _point(rng, width, height), _point(rng, width, height)
        elif landmarks < 0.6:
            nail["base"] = _point(rng, width, height)
        marks = rng.random()  # the "suggested" marks (dataset/geometry.py), good and bad
        if marks < 0.25:
            nail["suggested"] = {"finger": rng.choice([0.5, 1, 0, 1.5, -0.1, True, "0.5"])}
        elif marks < 0.4:
            nail["suggested"] = {"landmarks": rng.random(), **({"finger": 0.9} if rng.random() < 0.5 else {})}
        elif marks < 0.45:
            nail["suggested"] = rng.choice([{}, [], "finger", {"hand": 0.5}, None])
        nails.append(nail)
    ignore = [_polygon(rng, width, height) for _ in range(rng.randint(0, 2))]
    return {"nails": nails, "ignore": ignore}


def _issues(report):
    return sorted(json.dumps([i["rule"], i.get("nail"), i.get("ignore"), i.get("field")]) for i in report)


def test_page_validation_matches_the_server_rules():
    rng = random.Random(20261104)
    cases = []
    for n in range(600):
        width, height = rng.randint(16, 60), rng.randint(16, 60)
        cases.append({"geometry": _geometry(rng, width, height), "width": width, "height": height, "requireComplete": n % 3 == 0})
    result = subprocess.run([NODE, "tests/js/validate_cli.mjs"], cwd=ROOT, input=json.dumps(cases), capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    reports = json.loads(result.stdout)
    mismatches = []
    for case, js in zip(cases, reports):
        py = validate_geometry(case["geometry"], case["width"], case["height"], require_complete=case["requireComplete"]).to_dict()
        if _issues(py["errors"]) != _issues(js["errors"]) or _issues(py["warnings"]) != _issues(js["warnings"]):
            mismatches.append({"case": case, "python": _issues(py["errors"]), "js": _issues(js["errors"])})
    assert not mismatches, json.dumps(mismatches[:3], indent=1)
    assert sum(bool(r["errors"]) for r in reports) > 100  # the random cases do exercise the rules
