"""POST /api/auth/token/ issues an expiring API token for a username and password; DELETE revokes the token
the request was made with."""
from django.contrib.auth import authenticate
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from .models import ApiToken
from .throttles import AddressLoginThrottle, UsernameLoginThrottle


class TokenRequestSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=4096, trim_whitespace=False, style={"input_type": "password"})
    name = serializers.CharField(max_length=100, required=False, allow_blank=True, default="",
                                 help_text="what the token is for, shown in the admin")


class IssuedTokenSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="send as `Authorization: Token <token>`; shown only now")
    prefix = serializers.CharField(help_text="the token's first 8 characters, as the admin lists it")
    expires_at = serializers.DateTimeField()


class ApiTokenView(APIView):
    """POST needs no authentication (a stale Authorization header does not get in the way of a new login) and
    is locked out after repeated failures; DELETE needs the token it revokes."""

    def is_login(self) -> bool:
        request = getattr(self, "request", None)  # None while drf-spectacular builds the schema
        return request is not None and request.method == "POST"

    def get_authenticators(self):
        return [] if self.is_login() else super().get_authenticators()

    def get_permissions(self):
        return [AllowAny()] if self.is_login() else [IsAuthenticated()]

    def get_throttles(self):
        return [AddressLoginThrottle(), UsernameLoginThrottle()] if self.is_login() else []

    @extend_schema(request=TokenRequestSerializer, auth=[], responses={
        200: IssuedTokenSerializer,
        400: OpenApiResponse(description="wrong username or password, or a malformed body"),
        429: OpenApiResponse(description="too many failed logins for this username or address: see Retry-After")})
    def post(self, request):
        """A new API token, valid NAILSET_API_TOKEN_DAYS days. Only its digest is stored: keep the key."""
        body = TokenRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        user = authenticate(request=request, username=body.validated_data["username"],
                            password=body.validated_data["password"])
        if user is None:
            return Response({"detail": "wrong username or password"}, status=status.HTTP_400_BAD_REQUEST)
        token, key = ApiToken.issue(user, name=body.validated_data["name"])
        return Response(IssuedTokenSerializer({"token": key, "prefix": token.key_prefix, "expires_at": token.expires_at}).data)

    @extend_schema(request=None, responses={
        204: OpenApiResponse(description="revoked: the token no longer authenticates"),
        400: inline_serializer("NoTokenUsed", {"detail": serializers.CharField()})})
    def delete(self, request):
        """Revoke the API token this request was authenticated with."""
        if not isinstance(request.auth, ApiToken):
            return Response({"detail": "this request was not made with an API token: send Authorization: Token <key>"},
                            status=status.HTTP_400_BAD_REQUEST)
        request.auth.revoke()
        return Response(status=status.HTTP_204_NO_CONTENT)
