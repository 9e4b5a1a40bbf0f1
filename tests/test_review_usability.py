"""The review list keeps human decisions apart from labels imported as accepted, and labels without any
nail offer no Accept (the page says why, and the API refuses it)."""
import re

import pytest

from labeling import queue
from labeling.annotations import AnnotationError, import_annotation, review_annotation, save_annotation

SQUARE = [[10, 10], [30, 10], [30, 30], [10, 30]]
COMPLETE = {"nails": [{"polygon": SQUARE, "finger": 2, "base": [20, 28], "tip": [20, 12]}]}


def rows(html: str, section: str) -> list[int]:
    """Image ids of the rows of the review list's ``section`` card."""
    card = re.search(rf'<div class="card" id="{section}">(.*?)\n</div>', html, re.S).group(1)
    return [int(pk) for pk in re.findall(r'<tr data-image="(\d+)"', card)]


def test_latest_decisions_are_human_ones_and_imports_are_listed_apart(client, users, make_image):
    ann, rev = users["annotator"], users["reviewer"]
    imported = [make_image() for _ in range(3)]
    for image in imported:
        import_annotation(image, {"nails": [{"polygon": SQUARE}]}, status="accepted", note="import")
    accepted, rejected = make_image(), make_image()
    for image in (accepted, rejected):
        save_annotation(image, ann, geometry=COMPLETE, version=0, status="submitted")
    review_annotation(accepted, rev, decision="accept")
    review_annotation(rejected, rev, decision="reject", comment="the thumb is the index")

    assert queue.review_counts() == {"submitted": 0, "accepted": 1, "rejected": 1, "imported": 3}
    client.force_login(rev)
    html = client.get("/review/").content.decode()
    assert rows(html, "decisions") == [rejected.pk, accepted.pk]  # newest first, no imported row
    assert sorted(rows(html, "imported")) == sorted(image.pk for image in imported)
    assert re.search(r'data-count="imported">3<', html) and re.search(r'data-count="accepted">1<', html)
    decisions = re.search(r'<div class="card" id="decisions">(.*?)\n</div>', html, re.S).group(1)
    assert "—" not in decisions
    assert "the thumb is the index" in decisions
    # the imported rows say what they lack (a finger and landmarks on their one nail)
    imported_card = re.search(r'<div class="card" id="imported">(.*?)\n</div>', html, re.S).group(1)
    assert imported_card.count("<td>1</td><td>1</td><td>1</td>") == 3


def test_no_accept_on_labels_without_a_nail(client, client_for, users, make_image):
    empty, labelled = make_image(), make_image()
    save_annotation(empty, users["annotator"], geometry={"nails": []}, version=0, status="submitted")
    save_annotation(labelled, users["annotator"], geometry=COMPLETE, version=0, status="submitted")
    client.force_login(users["reviewer"])
    page = client.get(f"/review/{empty.pk}/").content.decode()
    assert 'id="accept"' not in page and 'id="reject"' in page
    assert re.search(r'id="no-accept"[^>]*>No Accept: these labels have no nail, so there is nothing to accept', page)
    page = client.get(f"/review/{labelled.pk}/").content.decode()
    assert 'id="accept"' in page and 'id="reject"' in page and 'id="no-accept"' not in page
    # the API refuses it too, with the reason; rejecting works
    response = client_for("reviewer").post(f"/api/images/{empty.pk}/review/", {"decision": "accept"}, format="json")
    assert response.status_code == 400 and "no nail" in response.json()["detail"]
    with pytest.raises(AnnotationError, match="nothing to accept"):
        review_annotation(empty, users["reviewer"], decision="accept")
    review_annotation(empty, users["reviewer"], decision="reject", comment="draw the five nails")


def test_no_decision_buttons_on_labels_that_are_not_submitted(client, users, make_image):
    draft = make_image()
    save_annotation(draft, users["annotator"], geometry=COMPLETE, version=0)
    client.force_login(users["reviewer"])
    page = client.get(f"/review/{draft.pk}/").content.decode()
    assert 'id="accept"' not in page and 'id="reject"' not in page and 'id="decision-message"' in page
