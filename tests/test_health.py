"""GET /healthz: database, broker and worker; 503 when one of them is down."""
import pytest
from django.test import Client

from annotation_site.celery import app
from tests.worker import running_worker

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_healthz_reports_worker_up_then_down(django_db_blocker):
    with running_worker("health-test@localhost", queues="health-test"):
        response = Client().get("/healthz")
        assert response.status_code == 200, response.json()
        body = response.json()
        assert body["ok"] and body["database"]["ok"] and body["broker"]["ok"]
        assert "health-test@localhost" in body["workers"]["detail"]
    response = Client().get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["database"]["ok"] and body["broker"]["ok"] and not body["workers"]["ok"]
    assert "no worker answered a ping within 2 s" in body["workers"]["detail"]


def test_healthz_reports_broker_down(monkeypatch):
    monkeypatch.setattr(app.conf, "broker_write_url", "redis://127.0.0.1:9/0")  # nothing listens on port 9
    monkeypatch.setitem(app.conf, "broker_transport", None)  # embedded mode names its transport; Redis is named by the URL
    response = Client().get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["database"]["ok"] and not body["broker"]["ok"] and not body["workers"]["ok"]
