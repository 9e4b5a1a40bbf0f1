"""The Django admin cannot delete what holds a participant's photos (Upload, Image), one at a time or in bulk:
that would skip the erasure (labeling/erasure.py) and leave the files and the rows derived from them behind.
The rows and their files stay; the participant's "Erase all data" action is the way to remove them."""
import pytest
from django.test import Client

from labeling.models import Image, Upload
from tests.conftest import make_user
from tests.test_erasure import photographed, their_files


@pytest.fixture
def admin_browser(db):
    client = Client()
    client.force_login(make_user("chief", is_staff=True, is_superuser=True))
    return client


@pytest.mark.parametrize("model, admin_name", [(Upload, "upload"), (Image, "image")])
def test_admin_cannot_delete_uploads_or_images_one_by_one(participant, admin_browser, model, admin_name):
    photographed(participant, 1)
    row = model.objects.get(participant=participant)
    files = their_files(participant)
    assert files
    url = f"/admin/labeling/{admin_name}/{row.pk}/delete/"
    assert admin_browser.get(url).status_code == 403
    assert admin_browser.post(url, {"post": "yes"}).status_code == 403
    assert model.objects.filter(pk=row.pk).exists()
    assert their_files(participant) == files
    change = admin_browser.get(f"/admin/labeling/{admin_name}/{row.pk}/change/")
    assert change.status_code == 200 and f"/admin/labeling/{admin_name}/{row.pk}/delete/".encode() not in change.content


@pytest.mark.parametrize("model, admin_name", [(Upload, "upload"), (Image, "image")])
def test_admin_has_no_bulk_delete_for_uploads_or_images(participant, admin_browser, model, admin_name):
    photographed(participant, 2)
    pks = list(model.objects.filter(participant=participant).values_list("pk", flat=True))
    files = their_files(participant)
    changelist = f"/admin/labeling/{admin_name}/"
    assert b'value="delete_selected"' not in admin_browser.get(changelist).content
    admin_browser.post(changelist, {"action": "delete_selected", "_selected_action": pks, "post": "yes"})
    assert model.objects.filter(pk__in=pks).count() == 2
    assert their_files(participant) == files
