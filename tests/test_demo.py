"""`make run`'s demo set-up: users, demo participant and the shared photos with their labels; idempotent."""
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from labeling.models import Annotation, Participant

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "nails-cc0"


@pytest.mark.skipif(not SHARED.exists(), reason=f"{SHARED} is not there (CI always has it)")
def test_setup_demo_twice(db):
    first = StringIO()
    call_command("setup_demo", "--demo-data", str(SHARED), stdout=first)
    assert "40 labelled photos imported" in first.getvalue()
    passwords = [line.split()[-1] for line in first.getvalue().splitlines() if line.startswith("  ")]
    second = StringIO()
    call_command("setup_demo", "--demo-data", str(SHARED), stdout=second)
    assert "imported" not in second.getvalue()
    assert [line.split()[-1] for line in second.getvalue().splitlines() if line.startswith("  ")] == passwords
    assert User.objects.get(username="admin").check_password(passwords[0])
    assert {u.username: [g.name for g in u.groups.all()] for u in User.objects.all()} == {
        "admin": ["admin"], "annotator": ["annotator"], "reviewer": ["reviewer"]}
    assert Annotation.objects.filter(status="accepted").count() == 40
    assert Participant.objects.filter(code="DEMO01").exists()
