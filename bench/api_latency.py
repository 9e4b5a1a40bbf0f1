#!/usr/bin/env python
"""API latency benchmark: the image list (with filters) and the annotation GET / PUT under concurrent
clients against gunicorn on PostgreSQL, plus the SQL query count of each request (no N+1 queries).

    .venv/bin/python bench/api_latency.py                 # full run: 10,000 images, 20 clients (~5 min)
    .venv/bin/python bench/api_latency.py --images 1000 --requests 400 --no-docs   # quick check

What it does, in order (every step in its own process, with the same environment):

1. drops and re-creates a scratch PostgreSQL database (``--database-url``, default
   ``postgres://postgres@127.0.0.1:5432/nailset_bench``; its name must contain "bench") and runs
   ``manage.py migrate`` on it; media and everything else the site writes go to a temporary
   ``NAILSET_VAR_DIR``;
2. seeds it with ``bulk_create``: an admin, a reviewer, 20 annotators, 100 participants, ``--images``
   images (all pointing at one real 640x480 JPEG, unique sha256 each), one annotation per image with
   5 nails (8-20 vertex polygons, finger, base/tip) and 5 revisions (versions 1..5), a mix of statuses
   and assignees (10 % unassigned model pre-labels); then ``VACUUM ANALYZE``;
3. counts the SQL queries of each request in-process (DRF ``APIClient`` + ``CaptureQueriesContext``),
   the list at page_size 10 and 50 (equal counts: no N+1), and times each request in-process;
4. starts gunicorn (``--workers`` / ``--threads``, DJANGO_DEBUG off) and waits until it answers;
5. measures every endpoint first with one client (unloaded latency), then with ``--clients``
   closed-loop clients (keep-alive ``http.client`` connections, token auth, no think time), each phase
   after a warm-up: p50 / p95 / p99 / mean / max, throughput, errors and 409s;
6. prints a summary and replaces the ``api_latency`` section of ``docs/benchmarks.md``;
7. stops gunicorn and drops the database (``--keep-db`` keeps it and the media directory), even on error.

Every number written is measured by the run; nothing is hard-coded.
"""
from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import http.client
import json
import logging
import math
import os
import random
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
from benchdoc import DOC, cpu_snapshot, fmt, free_port, git_commit, log, machine_info, markers, setup_django, write_section  # noqa: E402  (bench/ is on sys.path when run as a script)

SECTION_START, SECTION_END = markers("api_latency")
GOAL_P95_MS = 50.0
IMAGE_W, IMAGE_H = 640, 480
NAILS = 5
REVISIONS = 5
N_ANNOTATORS = 20
N_PARTICIPANTS = 100
UNASSIGNED_SHARE = 0.10  # model pre-labels nobody has claimed yet (the annotators' open queue)
STATUS_MIX = (("draft", 0.40), ("submitted", 0.25), ("accepted", 0.20), ("rejected", 0.15))

# The endpoints measured, in order. "who" is the account the clients use.
ENDPOINTS = {
    "list_filtered": {"label": "GET /api/images/?status=draft&participant=P&page_size=50", "who": "admin"},
    "list_assignee": {"label": "GET /api/images/?assignee=me&page=N", "who": "annotator (own queue)"},
    "get_annotation": {"label": "GET /api/images/{id}/annotation/", "who": "annotator (own image)"},
    "put_annotation": {"label": "PUT /api/images/{id}/annotation/", "who": "annotator (own image)"},
}


# --------------------------------------------------------------------------------------------------
# Small helpers shared by every phase
# --------------------------------------------------------------------------------------------------

def make_geometry(rng: random.Random, nails: int = NAILS, width: int = IMAGE_W, height: int = IMAGE_H) -> dict:
    """A realistic, valid labelling of one hand: ``nails`` elliptic nails of 8-20 vertices, each with
    its finger class and base / tip landmarks inside the polygon (already in normalized form)."""
    hand = rng.choice((0, 5))
    out = []
    slot = width / NAILS
    for k in range(nails):
        cx = slot * (k + 0.5) + rng.uniform(-10, 10)
        cy = rng.uniform(height * 0.3, height * 0.7)
        half_len = rng.uniform(18, 30)
        half_wid = rng.uniform(10, min(16, slot / 2 - 14))
        theta = rng.uniform(-0.4, 0.4)
        cos_t, sin_t = math.cos(theta), math.sin(theta)

        def at(x, y):
            return [round(cx + x * cos_t - y * sin_t, 2) + 0.0, round(cy + x * sin_t + y * cos_t, 2) + 0.0]

        vertices = rng.randint(8, 20)
        polygon = [at(half_wid * math.cos(2 * math.pi * j / vertices), half_len * math.sin(2 * math.pi * j / vertices))
                   for j in range(vertices)]
        out.append({"polygon": polygon, "finger": hand + k + 1, "base": at(0, 0.8 * half_len), "tip": at(0, -0.8 * half_len)})
    return {"nails": out, "ignore": []}


def percentile(sorted_values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not sorted_values:
        return float("nan")
    pos = (len(sorted_values) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def summarize(latencies_s: list[float]) -> dict:
    ms = sorted(v * 1000.0 for v in latencies_s)
    if not ms:
        return {"n": 0}
    return {"n": len(ms), "mean": sum(ms) / len(ms), "p50": percentile(ms, 50), "p95": percentile(ms, 95),
            "p99": percentile(ms, 99), "max": ms[-1], "min": ms[0]}


# --------------------------------------------------------------------------------------------------
# Phase "seed" (child process, Django set up on the scratch database)
# --------------------------------------------------------------------------------------------------

def phase_seed(args) -> None:
    setup_django()
    from django.conf import settings
    from django.contrib.auth.models import Group, User
    from django.db import connection, transaction
    from django.utils import timezone
    from PIL import Image as PILImage

    from accounts.models import ApiToken
    from dataset.geometry import normalize_geometry, validate_geometry
    from labeling.models import Annotation, AnnotationRevision, Image, Participant

    rng = random.Random(args.seed)
    started = time.perf_counter()
    for _ in range(20):  # the generator must only produce geometry the API accepts as is
        sample = make_geometry(rng)
        report = validate_geometry(sample, IMAGE_W, IMAGE_H, require_complete=True)
        assert report.ok and not report.warnings, report.to_dict()
        assert normalize_geometry(sample) == sample

    # One real picture for every row: the API never opens it for these endpoints, but it exists.
    relative = "images/bench/bench-640x480.jpg"
    path = Path(settings.MEDIA_ROOT) / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    picture = PILImage.new("RGB", (IMAGE_W, IMAGE_H), (210, 160, 150))
    for x in range(0, IMAGE_W, 4):
        picture.putpixel((x, (x * 7) % IMAGE_H), (x % 256, 30, 200))
    picture.save(path, "JPEG", quality=85)

    now = timezone.now()
    with transaction.atomic():
        groups = {name: Group.objects.get_or_create(name=name)[0] for name in ("admin", "reviewer", "annotator")}
        admin = User(username="bench-admin", is_staff=True, is_superuser=True)
        reviewer = User(username="bench-reviewer")
        annotators = [User(username=f"annotator{i:02d}") for i in range(N_ANNOTATORS)]
        everyone = [admin, reviewer, *annotators]
        for user in everyone:
            user.set_unusable_password()  # token auth only; no slow password hashing
        User.objects.bulk_create(everyone)
        groups["reviewer"].user_set.add(reviewer)
        groups["annotator"].user_set.add(*annotators)
        tokens = {user.username: ApiToken.issue(user, name="bench")[1] for user in everyone}

        participants = Participant.objects.bulk_create(
            [Participant(code=f"P{i:04d}", consent_at=now, consent_version="bench") for i in range(1, N_PARTICIPANTS + 1)])
        images = Image.objects.bulk_create(
            [Image(participant=participants[i * N_PARTICIPANTS // args.images], file=relative, width=IMAGE_W, height=IMAGE_H,
                   sha256=hashlib.sha256(f"nailset-bench-{i}".encode()).hexdigest()) for i in range(args.images)],
            batch_size=2000)
        log(f"seed: {len(images)} images ({time.perf_counter() - started:.1f} s)")

        statuses, weights = zip(*STATUS_MIX)
        annotations, meta = [], []
        for image in images:
            geometry = make_geometry(rng)
            if rng.random() < UNASSIGNED_SHARE:
                assignee, status, source = None, "draft", "model"
            else:
                assignee, status, source = rng.choice(annotators), rng.choices(statuses, weights)[0], "human"
            reviewed = status in ("accepted", "rejected")
            annotations.append(Annotation(
                image=image, geometry=geometry, version=REVISIONS, status=status, assignee=assignee,
                reviewer=reviewer if reviewed else None, review_comment="nail 3: tip is off" if status == "rejected" else "",
                reviewed_at=now if reviewed else None, updated_by=reviewer if reviewed else assignee, updated_at=now))
            meta.append((geometry, source))
        annotations = Annotation.objects.bulk_create(annotations, batch_size=2000)
        log(f"seed: {len(annotations)} annotations ({time.perf_counter() - started:.1f} s)")

        revisions = []
        for annotation, (geometry, source) in zip(annotations, meta):
            # Versions 1..4 are the labelling in progress (nail by nail), version 5 the current state;
            # a reviewed annotation was submitted at version 4 and reviewed at version 5.
            final = annotation.status
            for version in range(1, REVISIONS + 1):
                nails = geometry["nails"][:max(1, NAILS * version // REVISIONS)] if version < REVISIONS - 1 else geometry["nails"]
                if version == REVISIONS:
                    status = final
                elif version == REVISIONS - 1 and final in ("submitted", "accepted", "rejected"):
                    status = "submitted"
                else:
                    status = "draft"
                is_review = version == REVISIONS and final in ("accepted", "rejected")
                revisions.append(AnnotationRevision(
                    annotation=annotation, version=version, geometry={"nails": nails, "ignore": []}, status=status,
                    source=source if not is_review else "human",
                    model_version="bench-prelabel-v1" if source == "model" and not is_review else "",
                    author=annotation.reviewer if is_review else annotation.assignee,
                    note=("accept" if final == "accepted" else "reject: nail 3: tip is off") if is_review else "",
                    created_at=now - dt.timedelta(minutes=REVISIONS - version)))
        AnnotationRevision.objects.bulk_create(revisions, batch_size=5000)
        log(f"seed: {len(revisions)} revisions ({time.perf_counter() - started:.1f} s)")

    with connection.cursor() as cursor:  # production tables have planner statistics; so should these
        cursor.execute("VACUUM ANALYZE")
    sizes = {}
    with connection.cursor() as cursor:
        for table in ("labeling_image", "labeling_annotation", "labeling_annotationrevision"):
            cursor.execute("SELECT pg_size_pretty(pg_total_relation_size(%s))", [table])
            sizes[table] = cursor.fetchone()[0]

    per_annotator = {user.username: {"image_ids": [], "editable": [], "count": 0} for user in annotators}
    drafts_per_participant: dict[str, int] = {}
    unassigned_image = None
    for annotation, image in zip(annotations, images):
        if annotation.assignee is None:
            unassigned_image = unassigned_image or image.pk
        else:
            entry = per_annotator[annotation.assignee.username]
            entry["image_ids"].append(image.pk)
            entry["count"] += 1
            if annotation.status != "accepted":
                entry["editable"].append([image.pk, annotation.version])
    # drafts per participant (what the filtered list returns for the admin)
    code_of = {p.pk: p.code for p in participants}
    for annotation, image in zip(annotations, images):
        if annotation.status == "draft":
            drafts_per_participant[code_of[image.participant_id]] = drafts_per_participant.get(code_of[image.participant_id], 0) + 1
    # One editable image of the first annotator is kept for the in-process PUT query count.
    first = per_annotator[annotators[0].username]
    reserved = first["editable"].pop()
    plan = {
        "tokens": tokens, "admin": admin.username, "reviewer": reviewer.username,
        "annotators": [u.username for u in annotators], "participants": [p.code for p in participants],
        "per_annotator": per_annotator, "drafts_per_participant": drafts_per_participant,
        "reserved_put": reserved, "unassigned_image": unassigned_image, "images": len(images),
        "annotations": len(annotations), "revisions": len(revisions), "table_sizes": sizes,
        "seed_seconds": time.perf_counter() - started,
    }
    Path(args.plan).write_text(json.dumps(plan))


# --------------------------------------------------------------------------------------------------
# Phase "queries" (child process): SQL query count and in-process time of each request
# --------------------------------------------------------------------------------------------------

def phase_queries(args) -> None:
    setup_django()
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from rest_framework.test import APIClient

    plan = json.loads(Path(args.plan).read_text())
    annotator = plan["annotators"][0]
    own = plan["per_annotator"][annotator]
    participant = max(plan["drafts_per_participant"], key=plan["drafts_per_participant"].get)
    put_image = plan["reserved_put"][0]
    page = 2 if own["count"] > 100 else 1  # a page that exists at page_size 10 and 50
    rng = random.Random(args.seed + 1)

    def client(username):
        c = APIClient(HTTP_ACCEPT="application/json")
        c.credentials(HTTP_AUTHORIZATION=f"Token {plan['tokens'][username]}")
        return c

    admin, ann = client(plan["admin"]), client(annotator)
    logging.getLogger("django.request").setLevel(logging.ERROR)  # no "Conflict: ..." lines for expected 4xx
    state = {"version": ann.get(f"/api/images/{put_image}/annotation/").json()["version"]}

    def put():
        body = {"version": state["version"], "geometry": make_geometry(rng), "status": "draft"}
        response = ann.put(f"/api/images/{put_image}/annotation/", body, format="json")
        if response.status_code == 200:
            state["version"] = response.json()["version"]
        return response

    cases = [
        ("list_filtered", "page_size=10", lambda: admin.get(f"/api/images/?status=draft&participant={participant}&page_size=10")),
        ("list_filtered", "page_size=50", lambda: admin.get(f"/api/images/?status=draft&participant={participant}&page_size=50")),
        ("list_assignee", "page_size=10", lambda: ann.get(f"/api/images/?assignee={annotator}&page={page}&page_size=10")),
        ("list_assignee", "page_size=50", lambda: ann.get(f"/api/images/?assignee={annotator}&page={page}&page_size=50")),
        ("list_annotator_filtered", "page_size=10", lambda: ann.get(f"/api/images/?status=draft&participant={participant}&page_size=10")),
        ("list_annotator_filtered", "page_size=50", lambda: ann.get(f"/api/images/?status=draft&participant={participant}&page_size=50")),
        ("get_annotation", "", lambda: ann.get(f"/api/images/{own['image_ids'][0]}/annotation/")),
        ("put_annotation", "", put),
    ]
    results = []
    for name, variant, call in cases:
        call()  # warm caches (URL resolver, serializers, ...)
        with CaptureQueriesContext(connection) as captured:
            response = call()
        sql = [q["sql"] for q in captured.captured_queries]  # now: the log is cleared by the next request
        body = response.json()
        rows = len(body.get("results", [])) if isinstance(body, dict) else None
        timings, cpu_times = [], []
        for _ in range(args.inprocess_repeat):
            t0, c0 = time.perf_counter(), time.thread_time()
            call()
            timings.append(time.perf_counter() - t0)
            cpu_times.append(time.thread_time() - c0)
        results.append({"endpoint": name, "variant": variant, "status": response.status_code, "rows": rows,
                        "queries": len(sql), "sql": sql,
                        "inprocess": summarize(timings), "inprocess_cpu": summarize(cpu_times)})
        log(f"queries: {name:24s} {variant:13s} -> HTTP {response.status_code}, {len(sql)} queries"
            f"{'' if rows is None else f', {rows} rows'}, in-process p50 {results[-1]['inprocess']['p50']:.1f} ms "
            f"(Python CPU {results[-1]['inprocess_cpu']['p50']:.1f} ms)")

    profile_text = None
    if args.profile:
        import cProfile
        import io
        import pstats

        for name, variant, call in cases:
            if variant not in ("", "page_size=50") or name == "list_annotator_filtered":
                continue
            profiler = cProfile.Profile()
            profiler.enable()
            for _ in range(50):
                call()
            profiler.disable()
            buffer = io.StringIO()
            pstats.Stats(profiler, stream=buffer).sort_stats("cumulative").print_stats(30)
            profile_text = (profile_text or "") + f"\n===== {name} {variant} (50 calls, cumulative) =====\n{buffer.getvalue()}"
        Path(args.plan).with_name("profile.txt").write_text(profile_text)
        log(f"queries: profile written to {Path(args.plan).with_name('profile.txt')}")
    Path(args.out).write_text(json.dumps({"cases": results, "participant": participant}))


# --------------------------------------------------------------------------------------------------
# Load generator (orchestrator process; no Django): keep-alive HTTP clients in threads
# --------------------------------------------------------------------------------------------------

class HttpClient:
    def __init__(self, port: int, token: str):
        self.port = port
        self.headers = {"Authorization": f"Token {token}", "Accept": "application/json"}
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.reconnects = 0

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes, float]:
        headers = dict(self.headers, **({"Content-Type": "application/json"} if body is not None else {}))
        t0 = time.perf_counter()
        for attempt in (1, 2):
            try:
                self.conn.request(method, path, body=body, headers=headers)
                response = self.conn.getresponse()
                data = response.read()
                if response.will_close:
                    self.conn.close()
                return response.status, data, time.perf_counter() - t0
            except (http.client.HTTPException, ConnectionError, OSError):
                # A keep-alive connection the server closed while idle: retry once on a new one.
                self.conn.close()
                self.reconnects += 1
                if attempt == 2:
                    return 0, b"", time.perf_counter() - t0
        raise AssertionError("unreachable")

    def close(self):
        self.conn.close()


class Worker:
    """One simulated client: an annotator with their own images, plus the admin token for the
    filtered list (the view of someone browsing one participant's drafts)."""

    def __init__(self, index: int, plan: dict, port: int, seed: int):
        self.rng = random.Random(seed * 1000 + index)
        self.username = plan["annotators"][index % len(plan["annotators"])]
        own = plan["per_annotator"][self.username]
        self.own_ids = own["image_ids"]
        self.pages = max(1, math.ceil(own["count"] / 50))
        # Clients beyond the 20 annotators share an annotator; give each its own slice of editable images.
        sharers = [i for i in range(plan["n_clients"]) if i % len(plan["annotators"]) == index % len(plan["annotators"])]
        slot = sharers.index(index)
        self.editable = own["editable"][slot::len(sharers)]
        self.cursor = 0
        self.participants = plan["participants"]
        self.annotator = HttpClient(port, plan["tokens"][self.username])
        self.admin = HttpClient(port, plan["tokens"][plan["admin"]])
        self.geometries = [json.dumps(make_geometry(self.rng)).encode() for _ in range(8)]
        self.conflicts = 0

    def call(self, endpoint: str) -> tuple[int, bytes, float]:
        if endpoint == "list_filtered":
            code = self.rng.choice(self.participants)
            return self.admin.request("GET", f"/api/images/?status=draft&participant={code}&page_size=50")
        if endpoint == "list_assignee":
            page = self.rng.randint(1, self.pages)
            return self.annotator.request("GET", f"/api/images/?assignee={urllib.parse.quote(self.username)}&page={page}")
        if endpoint == "get_annotation":
            return self.annotator.request("GET", f"/api/images/{self.rng.choice(self.own_ids)}/annotation/")
        if endpoint == "put_annotation":
            item = self.editable[self.cursor % len(self.editable)]
            self.cursor += 1
            body = b'{"version": %d, "status": "draft", "geometry": %s}' % (item[1], self.rng.choice(self.geometries))
            status, data, elapsed = self.annotator.request("PUT", f"/api/images/{item[0]}/annotation/", body)
            if status == 200:
                item[1] = json.loads(data)["version"]
            elif status == 409:
                self.conflicts += 1
                try:
                    item[1] = json.loads(data)["current"]["version"]
                except (ValueError, KeyError, TypeError):
                    pass
            return status, data, elapsed
        raise ValueError(endpoint)

    def close(self):
        self.annotator.close()
        self.admin.close()


def cpu_usage(before: dict, after: dict, wall: float, server_pid: int | None) -> dict | None:
    """Cores used on average during a phase, by gunicorn, PostgreSQL, this load generator and the rest."""
    if not before["machine"] or not after["machine"] or wall <= 0:
        return None
    tick = os.sysconf("SC_CLK_TCK")
    total = after["machine"]["total"] - before["machine"]["total"]
    busy = total - (after["machine"]["idle"] - before["machine"]["idle"])
    ncpu = total / tick / wall if total else 0
    groups = {"gunicorn": 0, "postgres": 0, "load generator": 0}
    for pid, (comm, ppid, ticks) in after["procs"].items():
        used = ticks - before["procs"].get(pid, (comm, ppid, 0))[2]
        if server_pid is not None and (pid == server_pid or ppid == server_pid):
            groups["gunicorn"] += used
        elif comm == "postgres":
            groups["postgres"] += used
        elif pid == os.getpid():
            groups["load generator"] += used
    cores = {k: v / tick / wall for k, v in groups.items()}
    cores["other"] = max(0.0, busy / tick / wall - sum(cores.values()))
    return {"cpus": round(ncpu, 2), "busy_cores": busy / tick / wall, "busy_pct": 100.0 * busy / total if total else 0.0,
            "steal_pct": 100.0 * (after["machine"]["steal"] - before["machine"]["steal"]) / total if total else 0.0, "cores": cores}


def wait_for_quiet(max_wait: float, threshold: float = 0.3, window: float = 3.0) -> float | None:
    """Wait (at most ``max_wait`` s) until the other processes of the machine use under ``threshold``
    cores; returns what they used in the last window. The numbers are only as good as a quiet machine."""
    deadline = time.monotonic() + max_wait
    while True:
        before = cpu_snapshot()
        time.sleep(window)
        usage = cpu_usage(before, cpu_snapshot(), window, None)
        if usage is None:
            return None
        busy = max(0.0, usage["busy_cores"] - usage["cores"]["load generator"])
        if busy < threshold or time.monotonic() >= deadline:
            return busy
        log(f"other processes keep {busy:.2f} cores busy; waiting up to {deadline - time.monotonic():.0f} s more for a quieter machine")


def run_phase(workers: list[Worker], endpoint: str, per_client: int, warmup: int, server_pid: int | None = None) -> dict:
    """Every worker in its own thread: ``warmup`` unrecorded calls, a barrier, then ``per_client``
    recorded calls back to back (closed loop, no think time)."""
    barrier = threading.Barrier(len(workers) + 1)
    records: list[list[tuple[int, float]]] = [[] for _ in workers]
    rows: list[int] = []
    finished_at = [0.0] * len(workers)
    failures: list[str] = []

    def body(i: int, worker: Worker):
        try:
            for n in range(warmup):
                status, data, _ = worker.call(endpoint)
                if n == 0 and status == 200 and endpoint.startswith("list"):
                    rows.append(len(json.loads(data)["results"]))
        except Exception as exc:  # noqa: BLE001 - reported, never hides the barrier
            failures.append(f"{type(exc).__name__}: {exc}")
        barrier.wait()
        try:
            out = records[i]
            for _ in range(per_client):
                status, _, elapsed = worker.call(endpoint)
                out.append((status, elapsed))
        except Exception as exc:  # noqa: BLE001
            failures.append(f"{type(exc).__name__}: {exc}")
        finished_at[i] = time.perf_counter()

    conflicts_before = sum(w.conflicts for w in workers)
    threads = [threading.Thread(target=body, args=(i, w), daemon=True) for i, w in enumerate(workers)]
    for thread in threads:
        thread.start()
    barrier.wait()
    cpu_before = cpu_snapshot()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = max(finished_at) - started
    cpu = cpu_usage(cpu_before, cpu_snapshot(), time.perf_counter() - started, server_pid)
    done = sum(len(r) for r in records)
    if cpu and done:  # CPU time spent per request, whatever else ran on the machine meanwhile
        cpu["ms_per_request"] = {k: v * (time.perf_counter() - started) * 1000.0 / done for k, v in cpu["cores"].items()}
    flat = [r for rs in records for r in rs]
    statuses: dict[int, int] = {}
    for status, _ in flat:
        statuses[status] = statuses.get(status, 0) + 1
    ok = [elapsed for status, elapsed in flat if status == 200]
    result = summarize([elapsed for _, elapsed in flat])
    result.update(
        endpoint=endpoint, clients=len(workers), wall_s=wall, throughput=len(flat) / wall if wall > 0 else 0.0,
        statuses={str(k): v for k, v in sorted(statuses.items())}, ok=len(ok),
        conflicts=sum(w.conflicts for w in workers) - conflicts_before,
        errors=sum(v for k, v in statuses.items() if k not in (200, 409)),
        rows_per_page=(sum(rows) / len(rows)) if rows else None, failures=failures[:5], cpu=cpu,
    )
    return result


# --------------------------------------------------------------------------------------------------
# Orchestrator
# --------------------------------------------------------------------------------------------------

def child_env(args, var_dir: Path) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CELERY_", "DJANGO_", "NAILSET_")) and k not in ("MEDIA_ROOT", "STATIC_ROOT", "DATABASE_URL")}
    env.update(DATABASE_URL=args.database_url, NAILSET_VAR_DIR=str(var_dir), DJANGO_DEBUG="0",
               DJANGO_SETTINGS_MODULE="annotation_site.settings", LOG_LEVEL="WARNING", PYTHONUNBUFFERED="1",
               PYTHONPATH=str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else ""))
    return env


def maintenance(args, sql: str) -> None:
    import psycopg

    url = urllib.parse.urlsplit(args.database_url)
    admin_url = urllib.parse.urlunsplit(url._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql)


def db_name(args) -> str:
    name = urllib.parse.urlsplit(args.database_url).path.lstrip("/")
    if "bench" not in name or not name.replace("_", "").isalnum():
        sys.exit(f"refusing to drop and re-create database {name!r}: a scratch database's name must contain 'bench'")
    return name


def run_child(args, env, *argv, label: str) -> None:
    started = time.perf_counter()
    subprocess.run([sys.executable, *argv], cwd=ROOT, env=env, check=True)
    log(f"{label} done in {time.perf_counter() - started:.1f} s")


def start_gunicorn(args, env, port: int, log_path: Path) -> subprocess.Popen:
    gunicorn = Path(sys.executable).with_name("gunicorn")
    command = [str(gunicorn), "annotation_site.wsgi:application", "--bind", f"127.0.0.1:{port}",
               "--workers", str(args.workers), "--threads", str(args.threads), "--worker-class", args.worker_class,
               "--log-level", "warning", "--timeout", "120", *shlex.split(args.gunicorn_extra)]
    handle = open(log_path, "wb")
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)
    process.command = command  # type: ignore[attr-defined]
    return process


def stop_gunicorn(process: subprocess.Popen | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)  # graceful: the master stops its workers
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # its own session: the master and its workers only
        process.wait(timeout=10)


def wait_until_up(port: int, token: str, process: subprocess.Popen, log_path: Path, timeout: float = 60.0) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            status, _, _ = HttpClient(port, token).request("GET", "/api/images/?page_size=1")
            if status == 200:
                return time.perf_counter() - started
        except OSError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"gunicorn did not answer within {timeout:.0f} s:\n{log_path.read_text()[-3000:]}")


def versions(args) -> dict:
    out = {}
    try:
        import django
        import gunicorn
        import rest_framework

        out.update(django=django.get_version(), drf=rest_framework.VERSION, gunicorn=gunicorn.__version__)
    except ImportError:
        pass
    try:
        import psycopg

        with psycopg.connect(args.database_url) as conn:
            out["postgresql"] = conn.execute("SHOW server_version").fetchone()[0]
    except Exception:  # noqa: BLE001 - informational only
        pass
    out["commit"] = git_commit(untracked=False) or None
    return out


def cpu_text(cpu: dict | None) -> str:
    if not cpu:
        return "-"
    c = cpu["cores"]
    return (f"{cpu['busy_cores']:.2f} of {cpu['cpus']:.0f} cores busy (gunicorn {c['gunicorn']:.2f}, PostgreSQL {c['postgres']:.2f}, "
            f"load generator {c['load generator']:.2f}, other {c['other']:.2f}" + (f", steal {cpu['steal_pct']:.0f} %" if cpu["steal_pct"] >= 1 else "") + ")")


def short_sql(sql: str, limit: int = 600) -> str:
    """The SQL with its column list elided (``SELECT ... FROM``), so that joins and filters show."""
    if sql.startswith("SELECT ") and " FROM " in sql and not sql.startswith("SELECT COUNT"):
        sql = "SELECT ... FROM " + sql.split(" FROM ", 1)[1]
    if sql.startswith("UPDATE ") and " SET " in sql and " WHERE " in sql:
        sql = sql.split(" SET ", 1)[0] + " SET ... WHERE " + sql.rsplit(" WHERE ", 1)[1]
    if sql.startswith("INSERT INTO ") and " VALUES " in sql:
        sql = sql.split(" VALUES ", 1)[0] + " VALUES (...)"
    sql = re.sub(r"(\"accounts_apitoken\".\"key_digest\" = )'[0-9a-f]+'", r"\1'<token digest>'", sql.replace("`", "'"))
    return sql if len(sql) <= limit else sql[:limit - 3] + "..."


def inproc(case: dict) -> str:
    return f"{fmt(case['inprocess']['p50'])} ({fmt(case['inprocess_cpu']['p50'])})"


def render(report: dict) -> str:
    args, info, ver, plan = report["args"], report["machine"], report["versions"], report["plan"]
    loaded, single, queries = report["loaded"], report["single"], report["queries"]
    worst = max(loaded, key=lambda r: r["p95"])
    met = all(r["p95"] < GOAL_P95_MS and r["errors"] == 0 for r in loaded)
    lines = [SECTION_START, "## API latency (`bench/api_latency.py`)", ""]
    lines.append(f"Measured {report['date']} in {report['total_s']:.0f} s with "
                 f"`{report['command']}`" + (f" (commit {ver['commit']})" if ver.get("commit") else "") + ".")
    lines.append("")
    if met:
        lines.append(f"**Goal p95 < {GOAL_P95_MS:.0f} ms under {args['clients']} concurrent clients: met** "
                     f"(slowest p95: {ENDPOINTS[worst['endpoint']]['label']}, {worst['p95']:.1f} ms).")
    else:
        missed = [r for r in loaded if r["p95"] >= GOAL_P95_MS or r["errors"]]
        lines.append(f"**Goal p95 < {GOAL_P95_MS:.0f} ms under {args['clients']} concurrent clients: NOT met** for "
                     + ", ".join(f"`{ENDPOINTS[r['endpoint']]['label']}` (p95 {r['p95']:.1f} ms"
                                 + (f", {r['errors']} errors" if r["errors"] else "") + ")" for r in missed) + ".")
    lines += ["", "### Set-up", ""]
    lines.append(f"- **Machine**: {info['nproc']} CPUs ({info['cpu']}), {fmt(info['mem_gib'])} GiB RAM, Linux {info['kernel']}; "
                 "PostgreSQL, gunicorn and the load generator all share it.")
    lines.append(f"- **Software**: Python {info['python']}, Django {ver.get('django', '?')}, DRF {ver.get('drf', '?')}, "
                 f"gunicorn {ver.get('gunicorn', '?')}, PostgreSQL {ver.get('postgresql', '?')} (default configuration).")
    lines.append(f"- **Server**: `{report['gunicorn_command']}` with `DJANGO_DEBUG` off, "
                 "`DATABASE_URL` on the scratch database, `DB_CONN_MAX_AGE` "
                 + (f"= {os.environ['DB_CONN_MAX_AGE']}" if os.environ.get("DB_CONN_MAX_AGE") else "not set (the settings' default)") + ".")
    lines.append(f"- **Data**: {plan['images']:,} images of {len(plan['participants'])} participants (640x480), "
                 f"{plan['annotations']:,} annotations of {NAILS} nails each (8-20 vertex polygons, finger, base/tip), "
                 f"{plan['revisions']:,} revisions ({REVISIONS} per image); {len(plan['annotators'])} annotators own "
                 f"{100 * (1 - UNASSIGNED_SHARE):.0f} % of the images, the rest are unassigned model pre-labels; statuses "
                 + ", ".join(f"{s} {100 * w:.0f} %" for s, w in STATUS_MIX) + " of the assigned ones. Table sizes: "
                 + ", ".join(f"{t.split('_', 1)[1]} {s}" for t, s in plan["table_sizes"].items()) + ".")
    lines.append(f"- **Load**: {args['clients']} closed-loop clients (threads, one keep-alive `http.client` connection "
                 f"per token, `Authorization: Token`, no think time); each endpoint measured on its own: "
                 f"{args['warmup']} warm-up requests per client, then {report['per_client']} per client "
                 f"({report['per_client'] * args['clients']:,} recorded). Client *i* is annotator *i*: it lists its own "
                 "queue (`assignee=<itself>`, a random page), reads and saves its own images (PUT with the version it "
                 "last got back, status draft, 5 new nails); the filtered list uses the admin token (a random "
                 "participant's drafts). Latency is client-side: request sent to response body read.")
    if report.get("background_cores") is not None:
        lines.append(f"- **Background**: other processes used {report['background_cores']:.2f} cores when the measurements "
                     "began; what they used during each phase is in the *other load* column below.")
    lines += ["", f"### Under {args['clients']} concurrent clients", "",
              "| endpoint | as | requests | rows/page | req/s | mean ms | p50 ms | p95 ms | p99 ms | max ms | errors | 409 "
              "| p95 < 50 ms | CPU ms/request: gunicorn + PostgreSQL + load generator | other load (cores) | CPU floor of the mean, ms |",
              "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | :---: | ---: | ---: | ---: |"]
    for r in loaded:
        cpu = r.get("cpu") or {}
        per = cpu.get("ms_per_request")
        cost = f"{per['gunicorn']:.1f} + {per['postgres']:.1f} + {per['load generator']:.1f}" if per else "-"
        floor = args["clients"] * sum(per[k] for k in ("gunicorn", "postgres", "load generator")) / info["nproc"] if per else None
        r["cpu_floor_ms"] = floor
        lines.append(f"| `{ENDPOINTS[r['endpoint']]['label']}` | {ENDPOINTS[r['endpoint']]['who']} | {r['n']:,} | "
                     f"{fmt(r['rows_per_page'])} | {fmt(r['throughput'])} | {fmt(r['mean'])} | {fmt(r['p50'])} | "
                     f"{fmt(r['p95'])} | {fmt(r['p99'])} | {fmt(r['max'])} | {r['errors']} | {r['conflicts']} | "
                     f"{'yes' if r['p95'] < GOAL_P95_MS and not r['errors'] else '**no**'} | {cost} | "
                     f"{fmt(cpu['cores']['other'], 2) if cpu else '-'}"
                     + (f" (least disturbed of {r['attempts']} attempts; the other: {', '.join(f'{o:.2f}' for o in r['other_attempts'])})"
                        if r.get("attempts", 1) > 1 else "") + f" | {fmt(floor)} |")
    lines += ["", "*CPU ms/request* is the CPU time each group of processes spent during the phase divided by the requests "
              "served (from `/proc`); *other load* is the CPU the rest of the machine used meanwhile"
              + (" (before each phase the script waits for a quiet machine, and measures a phase again when other "
                 f"processes took more than {args['noise_threshold']} cores, keeping the least disturbed attempt)"
                 if args["wait_idle"] > 0 or args["attempts"] > 1 else "") + ". With "
              f"{args['clients']} clients that never pause, requests queue for the {info['nproc']} CPUs: the mean latency "
              f"cannot be lower than clients x CPU per request / CPUs (*CPU floor*; Little's law). p95 < {GOAL_P95_MS:.0f} ms "
              f"therefore needs well under {GOAL_P95_MS * info['nproc'] / args['clients']:.1f} ms of CPU per request on "
              f"this machine, or more CPUs."]
    lines += ["", "### One client (unloaded latency, same server)", "",
              "| endpoint | requests | req/s | mean ms | p50 ms | p95 ms | p99 ms |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in single:
        lines.append(f"| `{ENDPOINTS[r['endpoint']]['label']}` | {r['n']:,} | {fmt(r['throughput'])} | {fmt(r['mean'])} | "
                     f"{fmt(r['p50'])} | {fmt(r['p95'])} | {fmt(r['p99'])} |")
    lines += ["", "### SQL queries per request", "",
              "Counted in-process (DRF `APIClient` + `CaptureQueriesContext`) on the same database; the in-process time "
              "is the median of repeated calls without HTTP or concurrency (wall clock, and the CPU time of the Django process alone). Equal counts at page_size 10 and 50 mean no "
              "N+1 queries.", "",
              "| endpoint | as | queries (page_size 10) | queries (page_size 50) | N+1? | in-process p50 ms, wall (Python CPU) |",
              "| --- | --- | ---: | ---: | :---: | ---: |"]
    by_endpoint: dict[str, dict] = {}
    for case in queries["cases"]:
        by_endpoint.setdefault(case["endpoint"], {})[case["variant"]] = case
    labels = dict({k: (v["label"], v["who"]) for k, v in ENDPOINTS.items()},
                  list_annotator_filtered=("GET /api/images/?status=draft&participant=P", "annotator (own + open queue)"))
    for endpoint, variants in by_endpoint.items():
        label, who = labels[endpoint]
        if "" in variants:
            c = variants[""]
            lines.append(f"| `{label}` | {who} | {c['queries']} | {c['queries']} | no (one object) | {inproc(c)} |")
        else:
            a, b = variants["page_size=10"], variants["page_size=50"]
            lines.append(f"| `{label}` | {who} | {a['queries']} ({a['rows']} rows) | {b['queries']} ({b['rows']} rows) | "
                         f"{'no' if a['queries'] == b['queries'] else '**yes**'} | {inproc(a)} / {inproc(b)} |")
    lines += ["", "<details><summary>The SQL of each request</summary>", ""]
    for case in queries["cases"]:
        if case["variant"] in ("", "page_size=50"):
            lines.append(f"`{labels[case['endpoint']][0]}` ({labels[case['endpoint']][1]}, {case['queries']} queries):")
            lines.append("")
            lines += [f"{n}. `{short_sql(sql)}`" for n, sql in enumerate(case["sql"], 1)]
            lines.append("")
    lines += ["</details>", "", SECTION_END]
    return "\n".join(lines) + "\n"


def print_summary(report: dict) -> None:
    print()
    print(f"{'endpoint':60s} {'n':>6s} {'req/s':>7s} {'mean':>7s} {'p50':>7s} {'p95':>7s} {'p99':>7s} {'err':>4s} {'409':>4s}"
          f"  CPU ms/req gunicorn+pg  other cores")
    for title, rows in ((f"{report['args']['clients']} clients", report["loaded"]), ("1 client", report["single"])):
        print(f"-- {title}")
        for r in rows:
            print(f"{ENDPOINTS[r['endpoint']]['label']:60s} {r['n']:6d} {r['throughput']:7.1f} {r['mean']:7.1f} {r['p50']:7.1f} "
                  f"{r['p95']:7.1f} {r['p99']:7.1f} {r['errors']:4d} {r['conflicts']:4d}"
                  + (f"  {r['cpu']['ms_per_request']['gunicorn']:8.1f} + {r['cpu']['ms_per_request']['postgres']:4.1f}"
                     f"  {r['cpu']['cores']['other']:10.2f}" if r.get("cpu") and r["cpu"].get("ms_per_request") else ""))
    print("-- SQL queries per request")
    for case in report["queries"]["cases"]:
        print(f"{case['endpoint']:26s} {case['variant']:13s} {case['queries']:3d} queries"
              + (f" ({case['rows']} rows)" if case["rows"] is not None else ""))
    met = all(r["p95"] < GOAL_P95_MS and r["errors"] == 0 for r in report["loaded"])
    print(f"\ngoal p95 < {GOAL_P95_MS:.0f} ms: {'met' if met else 'NOT met'}\n")


def orchestrate(args) -> int:
    started = time.perf_counter()
    name = db_name(args)
    var_dir = Path(tempfile.mkdtemp(prefix="nailset-bench-"))
    env = child_env(args, var_dir)
    me = [str(Path(__file__).resolve())]
    gunicorn = None
    clients: list[Worker] = []
    try:
        log(f"database {name}: drop and create; var dir {var_dir}")
        maintenance(args, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        maintenance(args, f'CREATE DATABASE "{name}"')
        run_child(args, env, "manage.py", "migrate", "--noinput", "-v", "0", label="migrate")
        plan_path = var_dir / "plan.json"
        run_child(args, env, *me, "--phase", "seed", "--plan", str(plan_path), "--images", str(args.images),
                  "--seed", str(args.seed), label="seed")
        plan = json.loads(plan_path.read_text())
        queries_path = var_dir / "queries.json"
        run_child(args, env, *me, "--phase", "queries", "--plan", str(plan_path), "--out", str(queries_path),
                  "--seed", str(args.seed), "--inprocess-repeat", str(args.inprocess_repeat),
                  *(["--profile"] if args.profile else []), label="query counts")
        queries = json.loads(queries_path.read_text())

        port = free_port()
        gunicorn_log = var_dir / "gunicorn.log"
        gunicorn = start_gunicorn(args, env, port, gunicorn_log)
        up = wait_until_up(port, plan["tokens"][plan["admin"]], gunicorn, gunicorn_log)
        log(f"gunicorn answers on port {port} after {up:.1f} s: {' '.join(gunicorn.command)}")

        def slack(*phases_left: float) -> float:
            """Seconds to spare within --time-budget once the phases still to run (estimates) are done."""
            return args.time_budget - (time.perf_counter() - started) - sum(phases_left) - 20.0

        background = wait_for_quiet(min(args.wait_idle, max(0.0, slack(120.0)))) if args.wait_idle > 0 else None
        if background is not None:
            log(f"background load before the measurements: {background:.2f} cores")
        plan["n_clients"] = args.clients
        clients = [Worker(i, plan, port, args.seed) for i in range(args.clients)]
        per_client = math.ceil(args.requests / args.clients)
        single, loaded = [], []
        for endpoint in ENDPOINTS:
            result = run_phase(clients[:1], endpoint, args.single_requests, warmup=args.warmup, server_pid=gunicorn.pid)
            single.append(result)
            log(f"1 client   {endpoint:15s} n={result['n']:5d} p50 {result['p50']:6.1f} ms  p95 {result['p95']:6.1f} ms  "
                f"{result['throughput']:6.1f} req/s  statuses {result['statuses']}")
        # What each loaded phase should take: the server is CPU-bound, so about as long as one client
        # would need for the same number of requests (20 clients get more done, on 2 CPUs not much more).
        estimate = {r["endpoint"]: per_client * args.clients / max(r["throughput"], 1.0) for r in single}
        for index, endpoint in enumerate(ENDPOINTS):
            later = [estimate[e] for e in list(ENDPOINTS)[index + 1:]]
            attempts = []
            while True:
                if args.wait_idle > 0:
                    wait_for_quiet(min(args.wait_idle, max(0.0, slack(estimate[endpoint], *later))))
                result = run_phase(clients, endpoint, per_client, warmup=args.warmup, server_pid=gunicorn.pid)
                attempts.append(result)
                other = (result["cpu"] or {}).get("cores", {}).get("other", 0.0)
                log(f"{args.clients} clients {endpoint:15s} n={result['n']:5d} p50 {result['p50']:6.1f} ms  p95 {result['p95']:6.1f} ms  "
                    f"p99 {result['p99']:6.1f} ms  {result['throughput']:6.1f} req/s  statuses {result['statuses']}"
                    + (f"  failures {result['failures']}" if result["failures"] else "") + f"\n           CPU: {cpu_text(result['cpu'])}")
                if other <= args.noise_threshold or len(attempts) >= args.attempts or slack(result["wall_s"] + 10, *later) < 0:
                    break
                log(f"other processes took {other:.2f} cores during this phase: measuring it again")
            best = min(attempts, key=lambda r: (r["cpu"] or {}).get("cores", {}).get("other", 0.0))
            best["attempts"] = len(attempts)
            best["other_attempts"] = [round((r["cpu"] or {}).get("cores", {}).get("other", 0.0), 2) for r in attempts if r is not best]
            loaded.append(best)
        reconnects = sum(c.annotator.reconnects + c.admin.reconnects for c in clients)
        if reconnects:
            log(f"note: {reconnects} requests were retried on a new connection (server closed a keep-alive one)")

        command = " ".join([".venv/bin/python", "bench/api_latency.py", *map(shlex.quote, sys.argv[1:])])
        report = {
            "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "command": command,
            "args": vars(args), "machine": machine_info(), "versions": versions(args), "plan": plan,
            "queries": queries, "single": single, "loaded": loaded, "per_client": per_client, "background_cores": background,
            "gunicorn_command": "gunicorn " + " ".join(shlex.quote(c) for c in gunicorn.command[2:]).replace(f"127.0.0.1:{port}", "127.0.0.1:PORT"),
        }
        report["total_s"] = time.perf_counter() - started
        print_summary(report)
        if args.json:
            Path(args.json).write_text(json.dumps(report, indent=1, default=str))
        if not args.no_docs:
            write_section("api_latency", render(report))
            log(f"wrote the api_latency section of {DOC.relative_to(ROOT)}")
        return 0
    finally:
        for client in clients:
            client.close()
        stop_gunicorn(gunicorn)
        if args.keep_db:
            log(f"kept database {name} and var dir {var_dir} (DATABASE_URL={args.database_url} NAILSET_VAR_DIR={var_dir})")
        else:
            try:
                maintenance(args, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                import shutil

                shutil.rmtree(var_dir, ignore_errors=True)
            log(f"dropped database {name}; total {time.perf_counter() - started:.0f} s")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=10_000, help="images to seed (default 10000)")
    parser.add_argument("--clients", type=int, default=20, help="concurrent clients (default 20)")
    parser.add_argument("--requests", type=int, default=3000, help="recorded requests per endpoint under load (default 3000)")
    parser.add_argument("--warmup", type=int, default=10, help="unrecorded requests per client before each phase (default 10)")
    parser.add_argument("--single-requests", type=int, default=200, help="requests per endpoint with one client (default 200)")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers (default 4)")
    parser.add_argument("--threads", type=int, default=4, help="gunicorn threads per worker (default 4)")
    parser.add_argument("--worker-class", default="gthread", help="gunicorn worker class (default gthread)")
    parser.add_argument("--gunicorn-extra", default="", help="more gunicorn arguments, one string")
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/nailset_bench",
                        help="scratch database, dropped and re-created (its name must contain 'bench')")
    parser.add_argument("--wait-idle", type=float, default=60, metavar="SECONDS",
                        help="before measuring, wait up to this long for other processes to leave the CPUs idle (default 60; 0: don't)")
    parser.add_argument("--noise-threshold", type=float, default=0.5, metavar="CORES",
                        help="a loaded phase during which other processes used more CPU than this is measured again (default 0.5)")
    parser.add_argument("--attempts", type=int, default=2, help="at most this many attempts of each loaded phase (default 2)")
    parser.add_argument("--time-budget", type=float, default=570, metavar="SECONDS",
                        help="waits and repeated phases only happen while the whole run can still end within this (default 570)")
    parser.add_argument("--keep-db", action="store_true", help="keep the scratch database and media afterwards")
    parser.add_argument("--no-docs", action="store_true", help="print only; leave docs/benchmarks.md alone")
    parser.add_argument("--json", help="also write the full report as JSON to this file")
    parser.add_argument("--profile", action="store_true", help="cProfile 50 in-process calls of each endpoint (profile.txt in the var dir; use with --keep-db)")
    parser.add_argument("--inprocess-repeat", type=int, default=30, help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=20261126, help="random seed (default fixed: reproducible data)")
    parser.add_argument("--phase", choices=["seed", "queries"], help=argparse.SUPPRESS)
    parser.add_argument("--plan", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main() -> int:
    if sys.prefix == sys.base_prefix and VENV_PYTHON.exists():
        os.execv(str(VENV_PYTHON), [str(VENV_PYTHON), *sys.argv])  # run with the project's virtual environment
    args = parse_args()
    if args.phase == "seed":
        phase_seed(args)
        return 0
    if args.phase == "queries":
        phase_queries(args)
        return 0
    return orchestrate(args)


if __name__ == "__main__":
    sys.exit(main())
