"""The site's navigation bar: one list decides which pages each role sees and which one is current.

Each entry names a page by its URL name and the roles whose views let them open it (the views keep their
own checks; tests/test_site_pages.py proves the two agree: every link shown opens, every page hidden
refuses). ``navigation`` is a template context processor (settings.TEMPLATES) giving base.html the
entries for the request's user, the current section marked.
"""
from __future__ import annotations

from dataclasses import dataclass

from django.urls import reverse

from accounts.roles import ADMIN, ANNOTATOR, REVIEWER, STAFF_ROLES, role_of

REVIEWERS = (ADMIN, REVIEWER)
EVERYONE = ("*",)  # every signed-in user, whatever their role (the page itself is public)


@dataclass(frozen=True)
class NavEntry:
    label: str
    url_name: str
    roles: tuple[str, ...]
    description: str = ""  # what the page is for, on the start page
    needs_staff_flag: bool = False  # Django's admin opens only for users with is_staff, whatever their groups

    def allows(self, user, role: str | None) -> bool:
        if self.needs_staff_flag:
            return bool(user.is_active and user.is_staff)
        return self.roles == EVERYONE or role in self.roles


NAV_ENTRIES: tuple[NavEntry, ...] = (
    NavEntry("Queue", "annotate-queue", (ADMIN, ANNOTATOR), "your images and the next one to annotate"),
    NavEntry("Review", "review-list", REVIEWERS, "submitted labels waiting for a decision"),
    NavEntry("Dataset", "dataset", REVIEWERS, "statistics, splits, snapshots and exports, a spot-check"),
    NavEntry("Training", "training", REVIEWERS, "training runs and their curves"),
    NavEntry("Models", "models", REVIEWERS, "model versions, metrics, exports, the active model"),
    NavEntry("Pre-label", "prelabel-review", REVIEWERS, "the model's predictions on new uploads"),
    NavEntry("Try-on", "tryon", STAFF_ROLES, "paint nails on a photo or the webcam"),
    NavEntry("Jobs", "jobs", (ADMIN,), "every background job: progress, logs, cancel"),
    NavEntry("API docs", "api-docs", EVERYONE, "the REST API for scripts"),
    NavEntry("Admin", "admin:index", (ADMIN,), "accounts, participants and records", needs_staff_flag=True),
)


def entries_for(user, path: str = "") -> list[dict]:
    """The entries ``user`` may open, as ``{"label", "url", "current", "name", "description"}``. ``current``
    is ``"page"`` on the entry's own page, ``"true"`` below it (a run page is in Training), else ``""``
    (values of aria-current)."""
    if user is None or not getattr(user, "is_authenticated", False) or not getattr(user, "pk", None):
        return []
    role = role_of(user)
    entries = []
    for entry in NAV_ENTRIES:
        if not entry.allows(user, role):
            continue
        url = reverse(entry.url_name)
        current = "page" if path == url else ("true" if path.startswith(url) else "")
        entries.append({"label": entry.label, "url": url, "current": current, "name": entry.url_name,
                        "description": entry.description})
    return entries


def navigation(request) -> dict:
    """Context processor: ``nav_entries`` for base.html, and ``nav_names``, the URL names among them, for
    templates that link a page only for those who may open it (``{% if "models" in nav_names %}``)."""
    entries = entries_for(getattr(request, "user", None), request.path)
    return {"nav_entries": entries, "nav_names": {entry["name"] for entry in entries}}
