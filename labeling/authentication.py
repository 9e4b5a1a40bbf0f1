"""Participants have no account: their upload token, sent as ``X-Upload-Token``, is their identity."""
from django.utils.functional import cached_property
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from .models import Participant

UPLOAD_TOKEN_HEADER = "HTTP_X_UPLOAD_TOKEN"


class ParticipantPrincipal:
    """Stands in for ``request.user`` when a participant authenticates with an upload token."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    pk = None
    id = None

    def __init__(self, participant: Participant):
        self.participant = participant

    @cached_property
    def username(self) -> str:
        return f"participant:{self.participant.code}"

    def has_perm(self, perm, obj=None) -> bool:
        return False

    def __str__(self):
        return self.username


def participant_for_token(token: str) -> Participant:
    """The participant of a valid upload token; AuthenticationFailed saying why otherwise."""
    participant = Participant.objects.filter(upload_token=token).first() if token else None
    if participant is None:
        raise exceptions.AuthenticationFailed("this upload link is not valid (it may have been replaced by a new one)")
    problem = participant.token_problem()
    if problem:
        raise exceptions.AuthenticationFailed(problem)
    return participant


class UploadTokenAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        token = request.META.get(UPLOAD_TOKEN_HEADER)
        if token is None:
            return None
        return ParticipantPrincipal(participant_for_token(token.strip())), token

    def authenticate_header(self, request):
        return "Upload-Token"


class UploadTokenScheme(OpenApiAuthenticationExtension):
    target_class = "labeling.authentication.UploadTokenAuthentication"
    name = "uploadToken"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "X-Upload-Token",
                "description": "a participant's upload token (from their upload link)"}
