"""Deployment checks: migrations complete, `check --deploy` clean, docker-compose.yml agrees with settings."""
import os
import re
import secrets
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
import yaml
from django.conf import settings
from django.core.management import call_command

from jobs.registry import JOB_KINDS

ROOT = Path(settings.BASE_DIR)
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
TEST_ONLY_QUEUES = {"test-isolated"}


def settings_env_names() -> set[str]:
    source = (ROOT / "annotation_site" / "settings.py").read_text()
    return set(re.findall(r'(?:os\.environ\.get|env_bool|env_list|env_weights)\(\s*"([A-Z0-9_]+)"', source))


def resolve(value: str) -> str:
    """${NAME:?msg} / ${NAME:-default} -> a stand-in value, as compose would after substitution."""
    value = re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", str(value))
    return re.sub(r"\$\{[A-Z_]+:\?[^}]*\}", lambda _: secrets.token_urlsafe(50), value)


def app_environment() -> dict[str, str]:
    return {name: resolve(value) for name, value in COMPOSE["services"]["web"]["environment"].items()}


@pytest.mark.django_db
def test_migrations_are_complete():
    call_command("makemigrations", "--check", "--dry-run", stdout=StringIO())


def test_check_deploy_with_production_variables_has_no_warning(tmp_path):
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DJANGO_", "DATABASE_URL", "CELERY_"))}
    env.update(app_environment())
    env.update(DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}", NAILSET_VAR_DIR=str(tmp_path / "var"),
               MEDIA_ROOT=str(tmp_path / "media"), STATIC_ROOT=str(tmp_path / "static"))
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout, result.stdout + result.stderr


def test_check_deploy_flags_an_unsafe_configuration(tmp_path):
    """The same check with DEBUG on and no HTTPS must complain: the test above can fail."""
    env = dict(os.environ, DJANGO_DEBUG="1", DJANGO_HTTPS="0", DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
               NAILSET_VAR_DIR=str(tmp_path / "var"))
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "security.W018" in result.stderr + result.stdout  # DEBUG on


def test_compose_has_the_production_services():
    services = COMPOSE["services"]
    assert {"web", "worker", "training-worker", "postgres", "redis"} <= set(services)
    assert "gunicorn annotation_site.wsgi:application" in services["web"]["command"]
    assert "media" in COMPOSE["volumes"] and any(v.startswith("media:") for v in services["web"]["volumes"])
    for name in ("worker", "training-worker"):
        assert services[name]["command"].startswith("celery -A annotation_site worker")
        assert services[name]["volumes"] == services["web"]["volumes"]  # workers read and write the same media


def test_model_vote_weights_come_from_the_environment(monkeypatch, settings):
    from django.core.exceptions import ImproperlyConfigured

    from annotation_site.settings import env_weights
    from labeling.suggestions import suggestion_rules

    keys = ("finger", "digit", "direction")
    monkeypatch.setenv("NAILSET_MODEL_VOTE_WEIGHTS", " finger=1, direction=0.5 ")
    assert env_weights("NAILSET_MODEL_VOTE_WEIGHTS", keys) == {"finger": 1.0, "direction": 0.5}
    for bad in ("hand=1", "finger=x", "finger=-1", "direction", "digit=11"):
        monkeypatch.setenv("NAILSET_MODEL_VOTE_WEIGHTS", f"finger=1,{bad}")
        with pytest.raises(ImproperlyConfigured, match=f"NAILSET_MODEL_VOTE_WEIGHTS: '{bad}' is not KEY=NUMBER"):
            env_weights("NAILSET_MODEL_VOTE_WEIGHTS", keys)
    monkeypatch.setenv("NAILSET_MODEL_VOTE_WEIGHTS", "")
    assert env_weights("NAILSET_MODEL_VOTE_WEIGHTS", keys) == {}
    # The suggestions take them over SuggestionRules' defaults.
    settings.NAILSET_MODEL_VOTE_WEIGHTS = {}
    assert suggestion_rules() is None
    settings.NAILSET_MODEL_VOTE_WEIGHTS = {"finger": 1.0, "direction": 0.5}
    rules = suggestion_rules()
    assert (rules.model_weight, rules.model_direction_weight, rules.model_digit_weight) == (1.0, 0.5, 0.5)


def test_compose_environment_is_read_by_settings():
    env = app_environment()
    unknown = set(env) - settings_env_names()
    assert not unknown, f"docker-compose sets variables that settings.py never reads: {unknown}"
    assert env["DATABASE_URL"].startswith("postgres://") and "@postgres:5432/" in env["DATABASE_URL"]
    assert env["CELERY_BROKER_URL"].startswith("redis://redis:6379")
    assert env["DJANGO_DEBUG"] == "0" and env["DJANGO_HTTPS"] == "1"


def test_every_job_queue_has_a_worker_in_compose():
    consumed = set()
    for service in COMPOSE["services"].values():
        command = service.get("command", "")
        if isinstance(command, str) and "celery" in command and "--queues" in command:
            consumed |= set(command.split("--queues", 1)[1].split()[0].split(","))
    needed = {kind.queue for kind in JOB_KINDS.values()} - TEST_ONLY_QUEUES
    assert needed <= consumed, f"queues without a worker in docker-compose.yml: {needed - consumed}"
    assert "training" in consumed


def test_openapi_schema_is_valid_without_warnings(tmp_path):
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yml"))
    schema = yaml.safe_load((tmp_path / "schema.yml").read_text())
    assert "/api/images/{id}/annotation/" in schema["paths"] and "uploadToken" in schema["components"]["securitySchemes"]
