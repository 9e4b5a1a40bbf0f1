"""Roles live in the accounts app, and every page checks them the one way, ``accounts.decorators.role_required``:
anonymous visitors go to the login page (and come back), a signed-in user of another role gets the styled 403."""
import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.test import Client, RequestFactory
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from accounts.decorators import role_required
from accounts.roles import ADMIN, ANNOTATOR, REVIEWER, STAFF_ROLES, describe_roles, role_of

APPS = ("accounts", "jobs", "labeling", "curation", "training", "tryon", "prelabel")
# Pages of an app that need no account: the participant's pages, opened with their upload link.
PUBLIC_PAGES = {"labeling.views.participant_page", "labeling.views.participant_consent",
                "labeling.views.participant_erase", "labeling.views.participant_thumbnail"}
SAMPLE_ARGUMENTS = {"int": 1, "string": "classes", "slug": "no-such-model", "path": "x"}


def app_pages():
    """``(url name, url, view)`` of every function view in an app's views.py, across the whole URL conf."""
    def walk(patterns):
        for entry in patterns:
            if isinstance(entry, URLResolver):
                yield from walk(entry.url_patterns)
            elif isinstance(entry, URLPattern) and not hasattr(entry.callback, "view_class"):
                module = entry.callback.__module__
                if module.split(".")[0] in APPS and module.endswith(".views"):
                    yield entry

    for entry in walk(get_resolver().url_patterns):
        converters = entry.pattern.converters
        kwargs = {name: SAMPLE_ARGUMENTS[type(conv).__name__.replace("Converter", "").lower()]
                  for name, conv in converters.items()}
        yield entry.name, reverse(entry.name, kwargs=kwargs), entry.callback


def test_every_staff_page_checks_its_roles_with_role_required():
    unchecked = [f"{view.__module__}.{view.__name__} ({url})" for _, url, view in app_pages()
                 if f"{view.__module__}.{view.__name__}" not in PUBLIC_PAGES and not getattr(view, "required_roles", None)]
    assert not unchecked, "pages without @role_required: " + ", ".join(unchecked)
    assert len(list(app_pages())) > 20  # the walk found the pages


@pytest.mark.django_db
def test_every_page_sends_anonymous_to_login_and_refuses_other_roles(users):
    checked = 0
    for name, url, view in app_pages():
        roles = getattr(view, "required_roles", None)
        if not roles:
            continue
        anonymous = Client().get(url)
        assert anonymous.status_code == 302 and anonymous["Location"].startswith("/accounts/login/?next="), (name, anonymous)
        for who in ("admin", "annotator", "reviewer", "nobody"):
            client = Client()
            client.force_login(users[who])
            response = client.get(url)
            if role_of(users[who]) in roles:
                assert response.status_code != 403, (name, who)
            else:
                assert response.status_code == 403, (name, who, response.status_code)
                html = response.content.decode()
                assert 'id="error-403"' in html and "only" in html, (name, who)
        checked += 1
    assert checked >= 20


@pytest.mark.django_db
def test_role_required_redirects_refuses_and_lets_through(users):
    @role_required(ADMIN, REVIEWER)
    def page(request):
        return HttpResponse("the page")

    factory = RequestFactory()
    request = factory.get("/somewhere/?x=1")
    request.user = AnonymousUser()
    response = page(request)
    assert response.status_code == 302 and response["Location"] == "/accounts/login/?next=/somewhere/%3Fx%3D1"
    for who, allowed in (("admin", True), ("reviewer", True), ("annotator", False), ("nobody", False)):
        request = factory.get("/somewhere/")
        request.user = users[who]
        if allowed:
            assert page(request).content == b"the page"
        else:
            with pytest.raises(PermissionDenied, match="^reviewers and admins only$"):
                page(request)
    assert page.required_roles == (ADMIN, REVIEWER) and page.__name__ == "page"


@pytest.mark.django_db
def test_role_required_says_the_given_reason(users):
    @role_required(ADMIN, message="only admins see every job")
    def page(request):
        return HttpResponse("jobs")

    request = RequestFactory().get("/jobs/")
    request.user = users["reviewer"]
    with pytest.raises(PermissionDenied, match="^only admins see every job$"):
        page(request)


def test_role_required_needs_a_role():
    with pytest.raises(ValueError, match="at least one role"):
        role_required()


def test_roles_in_plain_words():
    assert describe_roles((ADMIN,)) == "admins"
    assert describe_roles((ADMIN, REVIEWER)) == "reviewers and admins"
    assert describe_roles(STAFF_ROLES) == "annotators, reviewers and admins"
    assert describe_roles((ANNOTATOR, ADMIN)) == "annotators and admins"


def test_roles_have_one_home():
    """labeling no longer holds the roles (no re-export left behind)."""
    with pytest.raises(ModuleNotFoundError):
        __import__("labeling.permissions")
    from django.conf import settings
    assert settings.REST_FRAMEWORK["DEFAULT_PERMISSION_CLASSES"] == ["accounts.permissions.IsStaffRole"]
