"""The incomplete-labels queue: submitted or accepted labels (imported outlines, mostly) whose nails lack a
finger class or base/tip landmarks. Exactly those images are in it; annotators claim them as in the normal
queue (never another annotator's claim), open them editable although they are accepted, complete them (the
labels go back to review as submitted) and they leave the queue."""
import pytest

from labeling import queue
from labeling.annotations import NotAllowed, import_annotation, review_annotation, save_annotation
from labeling.models import Annotation

SQUARE = [[10, 10], [30, 10], [30, 30], [10, 30]]
OTHER = [[36, 8], [56, 8], [56, 40], [36, 40]]
COMPLETE_NAIL = {"polygon": SQUARE, "finger": 2, "base": [20, 28], "tip": [20, 12]}
OUTLINE_ONLY = {"nails": [{"polygon": SQUARE}]}                                    # no finger, no landmarks
FINGER_ONLY = {"nails": [COMPLETE_NAIL, {"polygon": OTHER, "finger": 3}]}          # second nail: no landmarks
COMPLETE = {"nails": [COMPLETE_NAIL]}


@pytest.fixture
def dataset(users, make_image):
    """Images in every situation; ``incomplete`` holds the ones the queue must list (oldest first)."""
    images = {name: make_image() for name in (
        "accepted_outline", "submitted_partial", "accepted_complete", "draft_outline", "unlabeled", "accepted_empty",
        "rejected_outline")}
    import_annotation(images["accepted_outline"], OUTLINE_ONLY, status="accepted", note="import")
    import_annotation(images["submitted_partial"], FINGER_ONLY, status="submitted", note="import")
    import_annotation(images["accepted_complete"], COMPLETE, status="accepted", note="import")
    import_annotation(images["draft_outline"], OUTLINE_ONLY, status="draft", note="import")       # the normal queue's
    import_annotation(images["accepted_empty"], {"nails": []}, status="accepted", note="import")  # no nail: nothing to complete
    import_annotation(images["rejected_outline"], OUTLINE_ONLY, status="rejected", note="import")
    images["incomplete"] = [images["accepted_outline"], images["submitted_partial"]]
    return images


def test_exactly_the_incomplete_images_are_in_the_queue(users, dataset):
    assert queue.is_incomplete("accepted", OUTLINE_ONLY) and queue.is_incomplete("submitted", FINGER_ONLY)
    assert not queue.is_incomplete("accepted", COMPLETE) and not queue.is_incomplete("draft", OUTLINE_ONLY)
    assert not queue.is_incomplete("accepted", {"nails": []})
    expected = [image.pk for image in dataset["incomplete"]]
    assert list(queue.incomplete_annotations().order_by("image_id").values_list("image_id", flat=True)) == expected
    assert list(queue.incomplete_for(users["annotator"]).values_list("image_id", flat=True)) == expected
    assert queue.incomplete_counts(users["annotator"]).to_dict() == {"mine": 0, "open": 2, "remaining": 2}


def test_claims_follow_the_normal_queue_rules_and_never_take_another_claim(users, dataset):
    ann, other = users["annotator"], users["annotator2"]
    first, second = dataset["incomplete"]
    assert queue.claim_next_incomplete(ann) == first
    assert Annotation.objects.get(image=first).assignee == ann
    assert queue.claim_next_incomplete(ann) == first        # a claim comes back first until it is done
    assert queue.claim_next_incomplete(other) == second     # never ann's claim
    assert queue.claim_next_incomplete(users["admin"]) is None
    assert queue.incomplete_counts(ann).to_dict() == {"mine": 1, "open": 0, "remaining": 1}
    assert [a.image_id for a in queue.incomplete_for(other)] == [second.pk]
    # ann cannot save over other's claim; other can
    with pytest.raises(NotAllowed, match="assigned to ann2"):
        save_annotation(second, ann, geometry=FINGER_ONLY, version=1)
    with pytest.raises(queue.QueueNotAllowed):
        queue.claim_next_incomplete(users["reviewer"])


def test_completing_accepted_labels_sends_them_to_review_and_out_of_the_queue(users, dataset):
    ann = users["annotator"]
    image = dataset["accepted_outline"]
    assert queue.claim_next_incomplete(ann) == image
    # accepted, yet editable because it is incomplete: a draft first (still missing landmarks is fine in a draft)
    draft = {"nails": [{"polygon": SQUARE, "finger": 2}]}
    saved = save_annotation(image, ann, geometry=draft, version=1).annotation
    assert (saved.status, saved.assignee, saved.version) == ("draft", ann, 2)
    assert image.pk not in set(queue.incomplete_annotations().values_list("image_id", flat=True))  # left the queue
    assert queue.claim_next(ann) == image                    # now ordinary work of ann's: their draft comes first
    done = save_annotation(image, ann, geometry=COMPLETE, version=2, status="submitted").annotation
    assert done.status == "submitted" and done.geometry["nails"][0]["finger"] == 2
    assert queue.incomplete_counts(ann).remaining == 1       # only the other incomplete image is left
    review_annotation(image, users["reviewer"], decision="accept")
    # complete and accepted: read-only for annotators again
    with pytest.raises(NotAllowed, match="accepted"):
        save_annotation(image, ann, geometry=OUTLINE_ONLY, version=4)


def test_complete_accepted_labels_stay_read_only(users, dataset):
    with pytest.raises(NotAllowed, match="accepted"):
        save_annotation(dataset["accepted_complete"], users["annotator"], geometry=COMPLETE, version=1)


def test_queue_page_tab_next_and_annotation_page(client, users, dataset):
    client.force_login(users["annotator"])
    page = client.get("/annotate/").content.decode()
    assert 'href="/annotate/?queue=incomplete"' in page and 'data-count="incomplete">2<' in page
    page = client.get("/annotate/?queue=incomplete").content.decode()
    listed = [image.pk for image in dataset["incomplete"]]
    for pk in listed:
        assert f'href="/annotate/{pk}/?queue=incomplete"' in page
    for name in ("accepted_complete", "draft_outline", "unlabeled", "accepted_empty", "rejected_outline"):
        assert f'data-image="{dataset[name].pk}"' not in page
    response = client.post("/annotate/next/", {"queue": "incomplete"})
    assert response.status_code == 302 and response.url == f"/annotate/{listed[0]}/?queue=incomplete"
    assert Annotation.objects.get(image_id=listed[0]).assignee == users["annotator"]
    opened = client.get(response.url)
    config = opened.context["config"]
    assert config["incompleteLabels"] is True and config["nextUrl"] == "/annotate/next/?queue=incomplete"
    assert client.get(f"/annotate/{dataset['accepted_complete'].pk}/").context["config"]["incompleteLabels"] is False
    # another annotator takes the second one: it leaves this annotator's list, their own claim comes back
    assert queue.claim_next_incomplete(users["annotator2"]).pk == listed[1]
    assert client.post("/annotate/next/?queue=incomplete").url == f"/annotate/{listed[0]}/?queue=incomplete"
    page = client.get("/annotate/?queue=incomplete").content.decode()
    assert f'data-image="{listed[0]}"' in page and f'data-image="{listed[1]}"' not in page
    assert client.get(f"/annotate/{listed[1]}/").status_code == 404  # someone else's claim


def test_empty_incomplete_queue_and_unknown_queue_names(client, users, make_image):
    client.force_login(users["annotator"])
    response = client.post("/annotate/next/", {"queue": "incomplete"})
    assert response.url == "/annotate/?queue=incomplete&empty=1"
    assert b"No incomplete labels left" in client.get(response.url).content
    bad = client.get("/annotate/?queue=nope")
    assert bad.status_code == 400 and b"unknown queue 'nope'" in bad.content
    assert client.post("/annotate/next/", {"queue": "nope"}).status_code == 400


def test_queue_api(client_for, users, dataset):
    client = client_for("annotator")
    assert client.get("/api/queue/?queue=incomplete").json() == {"mine": 0, "open": 2, "remaining": 2}
    body = client.post("/api/queue/next/?queue=incomplete").json()
    assert body["image"]["id"] == dataset["accepted_outline"].pk and body["annotation"]["assignee"] == "ann"
    assert body["counts"] == {"mine": 1, "open": 1, "remaining": 2}
    # the save of an accepted incomplete image goes through the API like any other
    saved = client.put(f"/api/images/{body['image']['id']}/annotation/", {"version": 1, "geometry": COMPLETE, "status": "submitted"},
                       format="json")
    assert saved.status_code == 200 and saved.json()["status"] == "submitted"
    assert client.get("/api/queue/?queue=incomplete").json() == {"mine": 0, "open": 1, "remaining": 1}
    assert client.get("/api/queue/?queue=nope").status_code == 400
    assert client_for("reviewer").get("/api/queue/?queue=incomplete").status_code == 403
