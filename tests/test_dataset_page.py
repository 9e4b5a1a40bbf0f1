"""The dataset page: captions and a legend on the spot-check grid, one control per export format with its
state (not exported, exporting with progress, ready with size and date, withdrawn with its reason, failed),
and the count of incomplete labels linking to the queue of exactly those images."""
import re

import numpy as np
import pytest
from PIL import Image as PILImage

from curation.export_status import export_states
from curation.models import Export, ParticipantSplit, Snapshot
from curation.snapshots import build_snapshot
from dataset.raster import PALETTE
from jobs.models import Job
from jobs.runner import enqueue_job, execute_job
from labeling import queue
from labeling.annotations import import_annotation
from labeling.erasure import erase_participant
from labeling.intake import create_image
from labeling.models import Participant
from tests.conftest import synthetic_picture

SQUARE = [[10, 10], [30, 10], [30, 30], [10, 30]]
OTHER = [[36, 8], [56, 8], [56, 40], [36, 40]]
COMPLETE = {"polygon": SQUARE, "finger": 2, "base": [20, 28], "tip": [20, 12]}


def image_of(participant, n):
    image, _ = create_image(participant, synthetic_picture(64, 48, (n * 40 % 256, 90, 160)), "PNG")
    return image


@pytest.fixture
def labelled(db):
    """Two participants with complete accepted labels, plus incomplete ones: an accepted outline-only image
    (two nails lacking things), a submitted one with a nail without landmarks, and a draft (not counted)."""
    people = [Participant.objects.create(code=code) for code in ("DA", "DB")]
    images = {}
    for i, person in enumerate(people):
        for j in range(2):
            images[f"{person.code}{j}"] = image = image_of(person, 2 * i + j)
            import_annotation(image, {"nails": [COMPLETE]}, status="accepted", note="import")
    images["outline"] = image_of(people[0], 7)
    import_annotation(images["outline"], {"nails": [{"polygon": SQUARE}, {"polygon": OTHER}]}, status="accepted", note="import")
    images["partial"] = image_of(people[1], 8)
    import_annotation(images["partial"], {"nails": [COMPLETE, {"polygon": OTHER, "finger": 7}]}, status="submitted", note="import")
    images["draft"] = image_of(people[1], 9)
    import_annotation(images["draft"], {"nails": [{"polygon": SQUARE}]}, status="draft", note="import")
    return people, images


def page(client, user) -> str:
    client.force_login(user)
    response = client.get("/dataset/")
    assert response.status_code == 200
    return response.content.decode()


def cell(html: str, snapshot: str, fmt: str) -> str:
    row = re.search(rf'<tr data-snapshot="{snapshot}">(.*?)</tr>', html, re.S).group(1)
    return re.search(rf'<td class="export" data-format="{fmt}"(.*?)</td>', row, re.S).group(0)


def test_incomplete_count_links_to_the_queue_of_exactly_those_images(client, users, labelled):
    _, images = labelled
    html = page(client, users["admin"])
    counts = re.search(r'<p id="incomplete" data-images="(\d+)" data-nails="(\d+)"', html)
    assert counts.groups() == ("2", "3")  # outline (2 nails) + partial (1 nail); the draft is the normal queue's
    link = re.search(r'<a href="([^"]+)" id="incomplete-link">([^<]+)</a>', html)
    assert link.group(1) == "/annotate/?queue=incomplete"
    assert link.group(2) == "3 nails without finger / landmarks in 2 submitted or accepted images"
    # the link's target lists exactly those images
    assert sorted(a.image_id for a in queue.incomplete_for(users["admin"])) == sorted([images["outline"].pk, images["partial"].pk])
    target = client.get(link.group(1)).content.decode()
    assert sorted(int(pk) for pk in re.findall(r'<tr data-image="(\d+)"', target)) == sorted([images["outline"].pk, images["partial"].pk])
    # reviewers see the count, without a link into a queue they cannot open
    html = page(client, users["reviewer"])
    assert 'id="incomplete-link"' not in html and "3 nails without finger / landmarks in 2 submitted or accepted images" in html


def test_spot_check_has_captions_and_a_legend(client, users, labelled):
    people, images = labelled
    build_snapshot("captions")  # gives the participants their split
    splits = dict(ParticipantSplit.objects.values_list("participant__code", "split"))
    html = page(client, users["reviewer"])
    figures = re.findall(r'<figure data-image="(\d+)">(.*?)</figure>', html, re.S)
    assert len(figures) == 7  # every image with nails (12 at most), the draft included
    by_id = {image.pk: image for image in images.values()}
    for pk, body in figures:
        image = by_id[int(pk)]
        caption = re.search(r"<figcaption>(.*?)</figcaption>", body, re.S).group(1)
        assert f'href="/review/{pk}/">Image {pk}</a>' in caption
        assert f"· {image.participant.code} ·" in caption and f'<span class="split">{splits[image.participant.code]}</span>' in caption
        assert f"/dataset/spot-check/{pk}/classes.png" in body and f"/dataset/spot-check/{pk}/field.png" in body
    legend = re.search(r'<div class="legend" id="legend">(.*?)<div class="spot-check">', html, re.S).group(1)
    for finger, name in ((1, "left thumb"), (10, "right little")):
        assert f'background:#{"%02x%02x%02x" % tuple(PALETTE[finger])}"></span>{name}</li>' in legend
    assert "finger not set" in legend and "red</strong> right" in legend and "no base/tip landmarks" in legend


def test_field_picture_greys_nails_without_landmarks(client, users, labelled):
    _, images = labelled
    client.force_login(users["reviewer"])
    response = client.get(f"/dataset/spot-check/{images['outline'].pk}/field.png")
    pixels = np.asarray(PILImage.open(__import__("io").BytesIO(response.content)).convert("RGB")).astype(int)
    original = np.asarray(PILImage.open(images["outline"].file.open("rb")).convert("RGB")).astype(int)
    inside = pixels[20, 20]
    assert np.allclose(inside, 0.35 * original[20, 20] + 0.65 * 128, atol=2)  # grey: no field to learn here
    assert np.allclose(pixels[2, 2], original[2, 2], atol=1)                   # outside the nails: the photo
    assert client.get(f"/dataset/spot-check/{images['outline'].pk}/nope.png").status_code == 404


@pytest.mark.django_db(transaction=True)
def test_one_control_per_export_format_with_its_state(client, labelled, django_capture_on_commit_callbacks):
    from tests.conftest import make_user

    admin, reviewer = make_user("boss", "admin"), make_user("rev", "reviewer")
    people, _ = labelled
    build_snapshot("ds1")
    build_snapshot("ds2")
    for fmt in ("masks", "coco"):  # both exported through the job, as the Export buttons do
        job, _ = enqueue_job("export_snapshot", {"snapshot": "ds1", "format": fmt}, user=admin, send=False)
        assert execute_job(job.pk).status == "succeeded"
    with django_capture_on_commit_callbacks(execute=True):  # the masks zip holds DB's pictures: withdrawn
        erase_participant(people[1], requested_by="test")
    job, _ = enqueue_job("export_snapshot", {"snapshot": "ds1", "format": "coco"}, user=admin, send=False)
    assert execute_job(job.pk).status == "succeeded"  # coco exported again, without them: ready
    running, _ = enqueue_job("export_snapshot", {"snapshot": "ds1", "format": "yolo"}, user=admin, send=False)
    Job.objects.filter(pk=running.pk).update(status="running", progress=0.42, message="image 3 of 7")
    Job.objects.create(kind="export_snapshot", key="export_snapshot:failed", status="failed", error="disk full",
                       arguments={"snapshot": "ds2", "format": "coco"})
    Job.objects.create(kind="export_snapshot", key="export_snapshot:folder", status="running",  # a folder export: not a download
                       arguments={"snapshot": "ds2", "format": "masks", "out": "/tmp/x"})

    states = {(s.snapshot, s.format): s for states in export_states(list(Snapshot.objects.all())).values() for s in states}
    assert {key: s.state for key, s in states.items()} == {
        ("ds1", "coco"): "ready", ("ds1", "masks"): "withdrawn", ("ds1", "yolo"): "exporting",
        ("ds2", "coco"): "failed", ("ds2", "masks"): "none", ("ds2", "yolo"): "none",
        **{(name, fmt): "none" for name in ("ds1", "ds2") for fmt in ("cvat", "labelme")}}  # never exported

    html = page(client, admin)
    ready = cell(html, "ds1", "coco")
    export = Export.objects.get(snapshot__name="ds1", format="coco")
    assert 'data-state="ready"' in ready and 'href="/api/snapshots/ds1/download/coco/"' in ready and "Download COCO" in ready
    assert f'{export.created_at:%Y-%m-%d %H:%M}' in ready and re.search(r"\d+(\.\d)?\xa0(bytes|KB|MB)", ready)
    assert "Export again" in ready
    withdrawn = cell(html, "ds1", "masks")
    reason = Export.objects.get(snapshot__name="ds1", format="masks").withdrawn_reason
    assert 'data-state="withdrawn"' in withdrawn and "Masks withdrawn" in withdrawn and "download" not in withdrawn
    assert reason and reason.split(":")[0] in withdrawn and "Export again" in withdrawn
    exporting = cell(html, "ds1", "yolo")
    assert f'data-job="{running.pk}"' in exporting and '<progress max="100" value="42">' in exporting
    assert "42 % · image 3 of 7" in exporting and "<button" not in exporting  # no second start while it runs
    failed = cell(html, "ds2", "coco")
    assert 'data-state="failed"' in failed and "disk full" in failed and ">Retry</button>" in failed
    never = cell(html, "ds2", "yolo")
    assert "YOLO: not exported" in never and 'data-export="ds2" data-format="yolo">Export YOLO</button>' in never
    assert "data-export" not in page(client, reviewer)  # reviewers see the states, admins export
    assert len(re.findall(r'<td class="export"', html)) == 2 * 5  # one control per format and snapshot, nothing beside


@pytest.mark.django_db(transaction=True)
def test_export_control_in_chromium(browser, live_server, labelled):
    """Export turns the format's control into a progress bar that follows the job (queued here: no worker
    runs in this test); the snapshot name's pattern is a valid regular expression (no console error)."""
    from playwright.sync_api import expect

    from tests.browser import console_errors, login, watched_page
    from tests.conftest import make_user

    make_user("boss", "admin")
    build_snapshot("ds1")
    page, errors, _ = watched_page(browser, viewport={"width": 1440, "height": 900})
    console = console_errors(page)
    login(page, live_server.url, "boss", "boss-password-123")
    page.goto(f"{live_server.url}/dataset/")
    name = page.locator("#new-snapshot input[name=name]")
    name.fill("good_name-2")
    assert name.evaluate("input => input.checkValidity()") is True
    name.fill("bad name!")
    assert name.evaluate("input => input.checkValidity()") is False
    control = page.locator("tr[data-snapshot=ds1] td.export[data-format=yolo]")
    expect(control).to_have_attribute("data-state", "none")
    control.locator("button[data-export]").click()
    expect(control).to_have_attribute("data-state", "exporting")
    expect(control.locator("progress")).to_have_count(1)
    job = Job.objects.get(kind="export_snapshot", arguments__snapshot="ds1", arguments__format="yolo")
    expect(control).to_have_attribute("data-job", str(job.pk))
    expect(control.locator("[data-role=message]")).to_contain_text("0 %")
    page.reload()  # still queued: the page shows it exporting and follows it
    expect(control).to_have_attribute("data-state", "exporting")
    expect(control.locator("button")).to_have_count(0)
    assert errors == [] and console == []
