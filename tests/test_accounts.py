"""API tokens (hashed, expiring, revocable) and the login lockout on /api/auth/token/ and /accounts/login/."""
import hashlib
import json
import subprocess
import sys
from datetime import timedelta
from io import StringIO

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from accounts import lockout
from accounts.models import ApiToken, FailedLoginCounter
from tests.worker import database_url

BOSS = {"username": "boss", "password": "boss-password-123"}
WRONG = {"username": "boss", "password": "not-the-password"}


def get_token(client=None, credentials=BOSS, **extra):
    return (client or APIClient()).post("/api/auth/token/", credentials, format="json", **extra)


def end_lockouts():
    """What waiting out the lockout does, without waiting: every lock ends now."""
    FailedLoginCounter.objects.update(locked_until=timezone.now() - timedelta(seconds=1))


# --- tokens -----------------------------------------------------------------------------------------

def test_token_is_stored_only_as_a_digest_and_expires_after_the_configured_days(users, settings):
    settings.NAILSET_API_TOKEN_DAYS = 7
    response = get_token()
    assert response.status_code == 200
    key = response.json()["token"]
    token = ApiToken.objects.get(user=users["admin"])
    assert token.key_digest == hashlib.sha256(key.encode()).hexdigest()
    assert token.key_prefix == key[:8] == response.json()["prefix"]
    with connection.cursor() as cursor:  # the key is nowhere in the table
        cursor.execute("SELECT * FROM accounts_apitoken")
        assert not any(key in str(value) for row in cursor.fetchall() for value in row)
    expires = timezone.datetime.fromisoformat(response.json()["expires_at"])
    assert abs(expires - (timezone.now() + timedelta(days=7))) < timedelta(minutes=1)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.get("/api/images/").status_code == 200
    assert ApiToken.objects.get(pk=token.pk).last_used_at is not None
    assert get_token(credentials=WRONG).status_code == 400
    assert get_token(credentials={"username": "boss"}).status_code == 400


def test_expired_revoked_and_unknown_tokens_get_401_saying_so(users):
    token, key = ApiToken.issue(users["annotator"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.get("/api/images/").status_code == 200
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = client.get("/api/images/")
    assert response.status_code == 401 and "this API token expired on" in response.json()["detail"]
    assert response["WWW-Authenticate"] == "Token"

    token, key = ApiToken.issue(users["annotator"])
    token.revoke()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    response = client.get("/api/images/")
    assert response.status_code == 401 and "was revoked" in response.json()["detail"]

    client.credentials(HTTP_AUTHORIZATION="Token " + "x" * 43)
    assert client.get("/api/images/").status_code == 401


def test_delete_revokes_the_token_it_was_sent_with(users):
    key = get_token().json()["token"]
    other_key = get_token().json()["token"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.delete("/api/auth/token/").status_code == 204
    response = client.get("/api/images/")
    assert response.status_code == 401 and "revoked" in response.json()["detail"]
    client.credentials(HTTP_AUTHORIZATION=f"Token {other_key}")
    assert client.get("/api/images/").status_code == 200  # only the one used
    # A new login works even with the revoked token still in the header.
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert get_token(client).status_code == 200
    assert APIClient().delete("/api/auth/token/").status_code == 401
    session = APIClient()
    session.force_login(users["admin"])
    response = session.delete("/api/auth/token/")
    assert response.status_code == 400 and "not made with an API token" in response.json()["detail"]


def test_issuing_drops_this_users_long_ended_tokens(users):
    old, _ = ApiToken.issue(users["admin"])
    recent, _ = ApiToken.issue(users["admin"])
    other, _ = ApiToken.issue(users["reviewer"])
    long_ago = timezone.now() - timedelta(days=31)
    ApiToken.objects.filter(pk__in=[old.pk, other.pk]).update(expires_at=long_ago)
    ApiToken.issue(users["admin"])
    assert not ApiToken.objects.filter(pk=old.pk).exists()
    assert ApiToken.objects.filter(pk__in=[recent.pk, other.pk]).count() == 2
    with pytest.raises(ValueError):
        ApiToken.issue(users["admin"], days=0)


def test_create_api_token_command(users):
    out, err = StringIO(), StringIO()
    call_command("create_api_token", "rev", "--days", "2", "--name", "nightly export", stdout=out, stderr=err)
    key = out.getvalue().strip()
    token = ApiToken.objects.get(key_digest=hashlib.sha256(key.encode()).hexdigest())
    assert token.user == users["reviewer"] and token.name == "nightly export"
    assert abs(token.expires_at - (timezone.now() + timedelta(days=2))) < timedelta(minutes=1)
    assert key[:8] in err.getvalue()
    with pytest.raises(CommandError, match="no user named 'ghost'"):
        call_command("create_api_token", "ghost", stdout=StringIO(), stderr=StringIO())
    with pytest.raises(CommandError, match="--days must be a positive number"):
        call_command("create_api_token", "rev", "--days", "0", stdout=StringIO(), stderr=StringIO())


def test_admin_lists_tokens_by_prefix_and_revokes_them(users):
    token, key = ApiToken.issue(users["annotator"], name="laptop")
    superuser = User.objects.create_superuser("root", password="root-password-123")
    client = Client()
    client.force_login(superuser)
    page = client.get("/admin/accounts/apitoken/").content.decode()
    assert token.key_prefix in page and key not in page and "laptop" in page
    assert client.get("/admin/accounts/apitoken/add/").status_code == 403  # keys come from the API or the command
    response = client.post("/admin/accounts/apitoken/", {"action": "revoke", "_selected_action": [token.pk]})
    assert response.status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None


# --- lockout ----------------------------------------------------------------------------------------

def test_fifty_wrong_passwords_on_the_token_endpoint_are_throttled(users):
    statuses = [get_token(credentials=WRONG) for _ in range(50)]
    assert [r.status_code for r in statuses[:5]] == [400] * 5
    assert all(r.status_code == 429 for r in statuses[5:])
    assert all(0 < int(r["Retry-After"]) <= 30 for r in statuses[5:])
    # The right password is refused too while locked; the counter does not grow meanwhile.
    assert get_token().status_code == 429
    assert FailedLoginCounter.objects.get(scope="username", key="boss").failures == 5
    end_lockouts()
    assert get_token().status_code == 200
    assert not FailedLoginCounter.objects.filter(key__in=["boss", "127.0.0.1"]).exists()  # a success resets
    assert get_token(credentials=WRONG).status_code == 400


def test_lockout_doubles_with_each_failure_after_it_ends(users, settings):
    settings.NAILSET_LOGIN_LOCKOUT_MAX_SECONDS = 100
    assert [lockout.lockout_seconds(n) for n in range(5)] == [30, 60, 100, 100, 100]
    for _ in range(5):
        get_token(credentials=WRONG)
    waits = []
    for _ in range(3):
        response = get_token(credentials=WRONG)
        waits.append(int(response["Retry-After"]))
        end_lockouts()
        assert get_token(credentials=WRONG).status_code == 400
    assert waits[0] <= 30 and 30 < waits[1] <= 60 and 60 < waits[2] <= 100


def test_lockout_is_per_username_and_per_address(users):
    for _ in range(5):
        get_token(credentials=WRONG)
    # The username is locked from any address; another username from the same address is not.
    assert get_token(credentials=WRONG, REMOTE_ADDR="10.0.0.9").status_code == 429
    assert get_token(credentials={"username": "rev", "password": "rev-password-123"}).status_code == 200
    # Guessing across many usernames from one address locks the address, for every username.
    for n in range(20):
        get_token(credentials={"username": f"guess{n}", "password": "x"}, REMOTE_ADDR="10.0.0.7")
    response = get_token(credentials={"username": "ann", "password": "ann-password-123"}, REMOTE_ADDR="10.0.0.7")
    assert response.status_code == 429 and int(response["Retry-After"]) > 0
    assert get_token(credentials={"username": "ann", "password": "ann-password-123"}, REMOTE_ADDR="10.0.0.8").status_code == 200


def test_forwarded_address_counts_only_behind_configured_proxies(users, settings):
    request = type("R", (), {"META": {"REMOTE_ADDR": "10.0.0.1", "HTTP_X_FORWARDED_FOR": "1.2.3.4, 5.6.7.8"}})()
    assert lockout.client_address(request) == "10.0.0.1"  # a client cannot pick its address by a header
    settings.NAILSET_NUM_PROXIES = 1
    assert lockout.client_address(request) == "5.6.7.8"


def test_fifty_wrong_passwords_on_the_login_page_are_throttled(users):
    client = Client()
    responses = [client.post("/accounts/login/", {"username": "ann", "password": "wrong"}) for _ in range(50)]
    assert [r.status_code for r in responses[:5]] == [200] * 5
    assert b"did not match" in responses[0].content
    assert all(r.status_code == 429 for r in responses[5:])
    assert all(0 < int(r["Retry-After"]) <= 30 for r in responses[5:])
    page = responses[-1].content.decode()
    assert "Too many failed logins" in page and "Please wait" in page and " seconds, then try again" in page
    # The right password during the lockout: refused, not logged in.
    response = client.post("/accounts/login/", {"username": "ann", "password": "ann-password-123"})
    assert response.status_code == 429 and "_auth_user_id" not in client.session
    end_lockouts()
    response = client.post("/accounts/login/", {"username": "ann", "password": "ann-password-123"})
    assert response.status_code == 302 and client.session["_auth_user_id"] == str(users["annotator"].pk)
    assert not FailedLoginCounter.objects.filter(key="ann").exists()


def test_admin_login_goes_through_the_same_page(users):
    response = Client().get("/admin/login/?next=/admin/")
    assert response.status_code == 302 and response["Location"] == "/accounts/login/?next=/admin/"


@pytest.mark.django_db(transaction=True)
def test_lockout_holds_across_processes():
    """Failures made by another process (another gunicorn worker) lock this one out too."""
    User.objects.create_user("boss", password="boss-password-123")
    script = (
        "import django, json; django.setup()\n"
        "from django.test import Client\n"
        "c = Client()\n"
        "codes = [c.post('/api/auth/token/', json.dumps({'username': 'boss', 'password': 'no'}),"
        " content_type='application/json').status_code for _ in range(5)]\n"
        "print(codes)\n"
    )
    env = {"DATABASE_URL": database_url(), "DJANGO_SETTINGS_MODULE": "annotation_site.settings",
           "NAILSET_VAR_DIR": str(settings.VAR_DIR), "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-c", script], cwd=settings.BASE_DIR, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.stdout.strip() == "[400, 400, 400, 400, 400]", result.stderr
    assert get_token().status_code == 429
    assert Client().post("/accounts/login/", {"username": "boss", "password": "boss-password-123"}).status_code == 429


def test_a_token_can_be_named_for_the_admin(users):
    body = json.dumps({**BOSS, "name": "ci"})
    response = APIClient().post("/api/auth/token/", body, content_type="application/json")
    assert response.status_code == 200 and ApiToken.objects.get().name == "ci"
