"""The navigation bar, the models index, the jobs page, the favicon and the styled error pages."""
import re

import pytest
from django.core.files.base import ContentFile
from django.test import Client
from django.urls import path, reverse

from annotation_site.navigation import NAV_ENTRIES
from jobs.models import Job
from tests.conftest import make_user
from training.models import ModelArtifact, ModelVersion


def boom(request):
    raise RuntimeError("a bug in a view")


# This module doubles as a URLconf (pytest.mark.urls below): the site's URLs plus a view that fails.
from annotation_site.urls import urlpatterns as site_urlpatterns  # noqa: E402

urlpatterns = [path("boom/", boom), *site_urlpatterns]


@pytest.fixture
def people(users):
    """The conftest roles plus a superuser (is_staff: the only kind of admin Django's admin lets in)."""
    return {**users, "root": make_user("root", is_staff=True, is_superuser=True)}


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def nav_links(html: str) -> dict[str, str]:
    """``{url name: href}`` of the navigation bar's links."""
    nav = re.search(r'<nav class="site-nav".*?</nav>', html, re.S)
    if not nav:
        return {}
    return {name: href for href, name in re.findall(r'<a href="([^"]+)" data-nav="([^"]+)"', nav.group(0))}


def make_version(name: str, *, active=False, metrics=None, weights=True) -> ModelVersion:
    version = ModelVersion(name=name, config={}, metrics=metrics if metrics is not None else {"miou": 0.61234, "nail_iou": 0.7},
                           snapshot_content_hash="ab" * 32, is_active=active)
    if weights:
        version.weights.save("model.pt", ContentFile(b"weights"), save=False)
    else:
        version.weights.name = f"models/{name}/gone.pt"
    version.save()
    return version


# --------------------------------------------------------------------------------------------------------
# The navigation bar
# --------------------------------------------------------------------------------------------------------

EXPECTED = {
    "annotator": {"annotate-queue", "tryon", "api-docs"},
    "reviewer": {"review-list", "dataset", "training", "models", "prelabel-review", "tryon", "api-docs"},
    "admin": {"annotate-queue", "review-list", "dataset", "training", "models", "prelabel-review", "tryon", "jobs", "api-docs"},
    "root": {entry.url_name for entry in NAV_ENTRIES},
    "nobody": {"api-docs"},
}


@pytest.mark.parametrize("who", sorted(EXPECTED))
def test_each_role_sees_exactly_the_pages_it_may_open(people, who):
    client = signed_in(people[who])
    links = nav_links(client.get("/").content.decode())
    assert set(links) == EXPECTED[who]
    # The one list and the views agree: every page shown opens; every page hidden refuses (403, or the
    # login page / another page for a view that sends this role elsewhere).
    for entry in NAV_ENTRIES:
        response = client.get(reverse(entry.url_name))
        if entry.url_name in links:
            assert response.status_code == 200, (who, entry.url_name, response.status_code)
        else:
            assert response.status_code in (302, 403), (who, entry.url_name, response.status_code)


def test_the_current_page_is_marked(people):
    client = signed_in(people["root"])
    html = client.get("/models/").content.decode()
    assert re.search(r'<a href="/models/" data-nav="models" aria-current="page">Models</a>', html)
    assert html.count("aria-current=") == 1
    # below a section's page the section is current too (a run page is in Training)
    html = client.get("/prelabel/metrics/").content.decode()
    assert re.search(r'data-nav="prelabel-review" aria-current="true"', html)
    assert 'data-nav="models" aria-current' not in html


def test_anonymous_pages_have_no_navigation(client):
    html = client.get("/accounts/login/").content.decode()
    assert nav_links(html) == {}
    assert 'rel="icon" href="/favicon.ico"' in html


# --------------------------------------------------------------------------------------------------------
# /models/
# --------------------------------------------------------------------------------------------------------


def test_models_index_lists_versions_metrics_active_flag_and_exports(people):
    active = make_version("cascade-v2", active=True, metrics={"miou": 0.71234, "nail_iou": 0.8, "per_class": [1, 2]})
    make_version("cascade-v1", metrics={"miou": 0.61234})
    make_version("lost-weights", metrics={}, weights=False)
    ModelArtifact.objects.create(model_version=active, format="onnx", passed=True, parity={}, metadata={})
    ModelArtifact.objects.create(model_version=active, format="tfjs", options={"quantize": "uint8"}, passed=False, parity={}, metadata={})

    response = signed_in(people["reviewer"]).get("/models/")
    assert response.status_code == 200
    html = response.content.decode()
    sections = re.findall(r'<section class="card model" id="model-([\w-]+)"', html)
    assert sections[0] == "cascade-v2"  # the active one first
    assert set(sections) == {"cascade-v2", "cascade-v1", "lost-weights"}
    v2 = html[html.index('id="model-cascade-v2"'):html.index('id="model-cascade-v1"')]
    assert '<span class="chip active">active</span>' in v2
    assert '<dd data-metric="miou">0.7123</dd>' in v2 and '<dd data-metric="nail_iou">0.8000</dd>' in v2
    assert "per_class" not in v2  # only numbers are shown
    assert '<span class="chip pass">ONNX</span>' in v2 and '<span class="chip fail">TensorFlow.js uint8</span>' in v2
    assert 'href="/models/cascade-v2/exports/"' in v2
    assert "weights file missing" in html[html.index('id="model-lost-weights"'):]
    assert "No metrics were stored" in html[html.index('id="model-lost-weights"'):]
    assert 'class="promote"' not in html  # reviewers do not promote


def test_models_index_offers_promotion_to_admins_for_inactive_versions_only(people):
    make_version("cascade-v2", active=True)
    make_version("cascade-v1")
    html = signed_in(people["admin"]).get("/models/").content.decode()
    assert re.findall(r'<form class="promote" data-model="([\w-]+)"', html) == ["cascade-v1"]
    assert "training/models.js" in html


def test_models_index_is_for_reviewers_and_admins(people, client):
    assert signed_in(people["annotator"]).get("/models/").status_code == 403
    assert client.get("/models/").status_code == 302  # to the login page


def test_model_names_link_to_their_entry(people):
    make_version("cascade-v2", active=True)
    client = signed_in(people["reviewer"])
    assert '<strong id="active-model"><a href="/models/#model-cascade-v2">cascade-v2</a></strong>' in client.get("/prelabel/").content.decode()
    metrics = client.get("/prelabel/metrics/").content.decode()
    assert '<a href="/models/#model-cascade-v2">cascade-v2</a>' in metrics
    assert 'href="/models/"' in client.get("/training/").content.decode()


def test_models_index_without_versions_says_where_they_come_from(people):
    html = signed_in(people["admin"]).get("/models/").content.decode()
    assert "No model version yet" in html and 'href="/training/"' in html


# --------------------------------------------------------------------------------------------------------
# /jobs/
# --------------------------------------------------------------------------------------------------------


@pytest.fixture
def some_jobs(people):
    return {
        "queued": Job.objects.create(kind="snapshot", key="snapshot:1", status="queued", message="waiting for a worker",
                                     created_by=people["admin"]),
        "running": Job.objects.create(kind="train", key="train:1", queue="training", status="running", progress=0.4,
                                      message="epoch 2/5", log="epoch 1 done\nepoch 2 started"),
        "failed": Job.objects.create(kind="snapshot", key="snapshot:2", status="failed", progress=0.2,
                                     message="stopped", error="ValueError: no accepted labels"),
    }


def rows(html: str) -> dict[int, str]:
    return {int(pk): body for pk, body in re.findall(r'<tr data-job="(\d+)"[^>]*>(.*?)</tr>', html, re.S)}


def test_jobs_page_shows_every_job_with_its_state_and_cancel_for_active_ones(people, some_jobs):
    response = signed_in(people["root"]).get("/jobs/")
    assert response.status_code == 200
    html = response.content.decode()
    table = rows(html)
    assert set(table) == {job.pk for job in some_jobs.values()}
    running = table[some_jobs["running"].pk]
    assert "train" in running and "training queue" in running and "epoch 2/5" in running and "40&nbsp;%" in running
    assert "<summary>log</summary><pre>epoch 1 done\nepoch 2 started</pre>" in running
    assert "command" in running  # started by a management command
    assert "boss" in table[some_jobs["queued"].pk]
    assert "ValueError: no accepted labels" in table[some_jobs["failed"].pk]
    assert [pk for pk, body in table.items() if "data-cancel=" in body] == sorted(
        [some_jobs["queued"].pk, some_jobs["running"].pk], reverse=True)
    assert "jobs/jobs.js" in html
    assert "3 jobs" in html


def test_jobs_page_filters_by_kind_and_status(people, some_jobs):
    client = signed_in(people["admin"])
    assert set(rows(client.get("/jobs/?kind=snapshot").content.decode())) == {some_jobs["queued"].pk, some_jobs["failed"].pk}
    assert set(rows(client.get("/jobs/?kind=snapshot&status=failed").content.decode())) == {some_jobs["failed"].pk}
    html = client.get("/jobs/?status=succeeded").content.decode()
    assert rows(html) == {} and "No job matches these filters." in html
    # the JS polls the API with the same filters
    assert 'data-kind="snapshot" data-status="failed"' in client.get("/jobs/?kind=snapshot&status=failed").content.decode()
    api = signed_in(people["admin"]).get("/api/jobs/?kind=snapshot&status=failed").json()
    assert [job["id"] for job in api["results"]] == [some_jobs["failed"].pk]


def test_jobs_page_names_a_bad_filter(people, some_jobs):
    client = signed_in(people["admin"])
    response = client.get("/jobs/?status=lost")
    assert response.status_code == 400 and "unknown job status 'lost'" in response.content.decode()
    response = client.get("/jobs/?kind=nope")
    assert response.status_code == 400 and "unknown job kind 'nope'" in response.content.decode()


@pytest.mark.parametrize("who", ["annotator", "reviewer", "nobody"])
def test_jobs_page_is_for_admins_only(people, who):
    response = signed_in(people[who]).get("/jobs/")
    assert response.status_code == 403
    assert "only admins see every job" in response.content.decode()


def test_cancel_as_the_jobs_page_sends_it(people, some_jobs):
    """The page's Cancel: POST /api/jobs/{id}/cancel/ with the session cookie and the CSRF token."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(people["admin"])
    client.get("/jobs/")
    token = client.cookies["csrftoken"].value
    queued = some_jobs["queued"]
    assert client.post(f"/api/jobs/{queued.pk}/cancel/").status_code == 403  # without the token: refused
    response = client.post(f"/api/jobs/{queued.pk}/cancel/", HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 202 and response.json()["status"] == "cancelled"
    table = rows(client.get("/jobs/").content.decode())
    assert "cancelled" in table[queued.pk] and "data-cancel=" not in table[queued.pk]
    response = client.post(f"/api/jobs/{some_jobs['failed'].pk}/cancel/", HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 409 and "already ended (failed)" in response.json()["detail"]


# --------------------------------------------------------------------------------------------------------
# Favicon and error pages
# --------------------------------------------------------------------------------------------------------


def test_favicon_is_served_and_linked(client, people, participant):
    response = client.get("/favicon.ico")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/svg+xml"
    assert response.content.startswith(b"<svg")
    assert 'rel="icon" href="/favicon.ico"' in signed_in(people["reviewer"]).get("/").content.decode()
    assert 'rel="icon" href="/favicon.ico"' in client.get(participant.upload_path).content.decode()


def test_404_page_is_styled_and_keeps_the_navigation(people, client, settings):
    assert settings.DEBUG is False
    response = signed_in(people["reviewer"]).get("/no/such/page/")
    assert response.status_code == 404
    html = response.content.decode()
    assert 'id="error-404"' in html and "<code>/no/such/page/</code>" in html
    assert set(nav_links(html)) == EXPECTED["reviewer"]
    anonymous = client.get("/no/such/page/").content.decode()
    assert 'id="error-404"' in anonymous and nav_links(anonymous) == {}
    assert signed_in(people["reviewer"]).get("/models/nope/exports/").status_code == 404


def test_403_page_is_styled_and_says_why(people):
    response = signed_in(people["annotator"]).get("/dataset/")
    assert response.status_code == 403
    html = response.content.decode()
    assert 'id="error-403"' in html and "reviewers and admins only" in html and "signed in as <strong>ann</strong>" in html
    assert set(nav_links(html)) == EXPECTED["annotator"]


@pytest.mark.urls("tests.test_site_pages")
def test_500_page_is_styled_and_needs_no_request_context(people):
    client = Client(raise_request_exception=False)
    client.force_login(people["reviewer"])
    response = client.get("/boom/")
    assert response.status_code == 500
    html = response.content.decode()
    assert 'id="error-500"' in html and "Something went wrong on the server" in html
    assert "{%" not in html and "{{" not in html and "{#" not in html
    assert "a bug in a view" not in html  # nothing of the error is shown
