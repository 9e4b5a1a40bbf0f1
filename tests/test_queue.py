"""The annotator's queue: the order in which images are handed out, atomic claims (two annotators never
get the same image, also under concurrency), counts, and the queue page."""
import threading

import pytest
from django.db import connection

from labeling import queue
from labeling.annotations import assign_annotation, review_annotation, save_annotation
from labeling.models import Annotation
from tests.conftest import make_user

SQUARE = [[10, 10], [30, 10], [30, 30], [10, 30]]
COMPLETE = {"nails": [{"polygon": SQUARE, "finger": 2, "base": [20, 28], "tip": [20, 12]}]}


def annotation(image):
    return Annotation.objects.get(image=image)


def test_claim_order_assigned_then_rejected_then_oldest_open(users, make_image):
    ann, other = users["annotator"], users["annotator2"]
    open_old, open_new, theirs, mine, rejected = (make_image() for _ in range(5))
    assign_annotation(theirs, other)
    # A rejected image of ann's
    save_annotation(rejected, ann, geometry=COMPLETE, version=0, status="submitted")
    review_annotation(rejected, users["reviewer"], decision="reject", comment="tip is on the cuticle")
    assign_annotation(mine, ann)  # assigned by an admin

    assert queue.claim_next(ann) == mine                 # 1. assigned to ann, not started
    save_annotation(mine, ann, geometry=COMPLETE, version=0, status="submitted")
    assert queue.claim_next(ann) == rejected             # 2. rejected, back with ann
    save_annotation(rejected, ann, geometry=COMPLETE, version=2, status="submitted")
    assert queue.claim_next(ann) == open_old             # 3. the oldest open image, now claimed
    assert annotation(open_old).assignee == ann
    assert queue.claim_next(ann) == open_old             # a claimed, unfinished image comes back first
    assert queue.claim_next(other) == theirs
    save_annotation(theirs, other, geometry=COMPLETE, version=0, status="submitted")
    assert queue.claim_next(other) == open_new           # never ann's claimed image
    assert annotation(open_new).assignee == other
    save_annotation(open_old, ann, geometry=COMPLETE, version=0, status="submitted")
    assert queue.claim_next(ann) is None                 # nothing left for ann


def test_counts(users, make_image):
    ann = users["annotator"]
    images = [make_image() for _ in range(5)]
    assert queue.counts_for(ann).to_dict() == {"assigned": 0, "rejected": 0, "open": 5, "submitted": 0, "accepted": 0,
                                               "done": 0, "remaining": 5}
    save_annotation(images[0], ann, geometry=COMPLETE, version=0, status="submitted")
    save_annotation(images[1], ann, geometry=COMPLETE, version=0, status="submitted")
    review_annotation(images[1], users["reviewer"], decision="accept")
    save_annotation(images[2], ann, geometry=COMPLETE, version=0, status="submitted")
    review_annotation(images[2], users["reviewer"], decision="reject", comment="redo the thumb")
    queue.claim_next(ann)
    counts = queue.counts_for(ann)
    assert (counts.done, counts.submitted, counts.accepted, counts.rejected) == (2, 1, 1, 1)
    assert (counts.assigned, counts.open, counts.remaining) == (0, 2, 3)  # the rejected one comes first


def test_reviewers_have_no_queue(users, make_image):
    make_image()
    with pytest.raises(queue.QueueNotAllowed):
        queue.claim_next(users["reviewer"])


def test_queue_api(client_for, users, make_image):
    first, second = make_image(), make_image()
    client = client_for("annotator")
    response = client.post("/api/queue/next/")
    assert response.status_code == 200
    body = response.json()
    assert body["image"]["id"] == first.pk and body["annotation"]["assignee"] == "ann"
    assert body["counts"]["remaining"] == 2 and body["counts"]["assigned"] == 1
    assert client_for("annotator2").post("/api/queue/next/").json()["image"]["id"] == second.pk
    assert client.get("/api/queue/").json()["open"] == 0
    assert client_for("reviewer").post("/api/queue/next/").status_code == 403
    assert client_for(None).post("/api/queue/next/").status_code == 401
    save_annotation(first, users["annotator"], geometry=COMPLETE, version=0, status="submitted")
    assert client.post("/api/queue/next/").json() == {"image": None, "annotation": None,
                                                      "counts": client.get("/api/queue/").json()}


@pytest.mark.django_db(transaction=True)
def test_concurrent_claims_never_return_the_same_image(make_image):
    annotators = [make_user(f"worker{i}", "annotator") for i in range(6)]
    images = [make_image() for _ in range(4)]
    barrier = threading.Barrier(len(annotators))
    claimed, errors = {}, []

    def claim(user):
        try:
            barrier.wait()
            image = queue.claim_next(user)
            claimed[user.username] = image.pk if image else None
        except Exception as exc:  # pragma: no cover  (reported below)
            errors.append(repr(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=claim, args=(user,)) for user in annotators]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    got = [pk for pk in claimed.values() if pk is not None]
    assert sorted(got) == sorted(image.pk for image in images)  # each image once, all of them handed out
    assert list(claimed.values()).count(None) == 2
    for username, pk in claimed.items():
        if pk is not None:
            assert Annotation.objects.get(image_id=pk).assignee.username == username


def test_queue_page_and_next_redirect(client, users, make_image):
    image = make_image()
    client.force_login(users["annotator"])
    page = client.get("/annotate/")
    assert page.status_code == 200 and b"Next image" in page.content
    response = client.post("/annotate/next/")
    assert response.status_code == 302 and response.url == f"/annotate/{image.pk}/"
    save_annotation(image, users["annotator"], geometry=COMPLETE, version=0, status="submitted")
    review_annotation(image, users["reviewer"], decision="reject", comment="the ring finger nail is missing")
    page = client.get("/annotate/")
    assert b"the ring finger nail is missing" in page.content
    assert client.post("/annotate/next/").url == f"/annotate/{image.pk}/"
    save_annotation(image, users["annotator"], geometry=COMPLETE, version=2, status="submitted")
    assert client.post("/annotate/next/").url == "/annotate/?empty=1"
    assert b"queue is empty" in client.get("/annotate/?empty=1").content


def test_queue_pages_need_the_right_role(client, users):
    assert client.get("/annotate/").status_code == 302  # to the login page
    client.force_login(users["nobody"])
    assert client.get("/annotate/").status_code == 403
    assert client.post("/annotate/next/").status_code == 403
    client.force_login(users["reviewer"])
    assert client.get("/annotate/").url == "/review/"
