"""``python -m annotation_site.run``: the web server and a Celery worker side by side; Ctrl-C stops both.

``make run`` calls it after migrating and creating the demo data. The web server is gunicorn (as in
production); the worker consumes the queues named in CELERY_WORKER_QUEUES.
"""
import os
import signal
import subprocess
import sys
import time

HOST = os.environ.get("NAILSET_HOST", "127.0.0.1")
PORT = os.environ.get("NAILSET_PORT", "8000")


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "annotation_site.settings")
    import django

    django.setup()
    from django.conf import settings

    from labeling.models import Participant

    bin_dir = os.path.dirname(sys.executable)
    worker = subprocess.Popen([
        os.path.join(bin_dir, "celery"), "-A", "annotation_site", "worker", "--loglevel", "INFO",
        "--queues", ",".join(settings.CELERY_WORKER_QUEUES), "--concurrency", os.environ.get("NAILSET_WORKER_CONCURRENCY", "2"),
        "--hostname", f"embedded@{os.uname().nodename}",
    ])
    web = subprocess.Popen([
        os.path.join(bin_dir, "gunicorn"), "annotation_site.wsgi:application", "--bind", f"{HOST}:{PORT}",
        "--workers", os.environ.get("NAILSET_WEB_WORKERS", "2"), "--threads", "4", "--access-logfile", "-",
    ])
    base = f"http://{HOST}:{PORT}"
    demo = Participant.objects.filter(code="DEMO01").first()
    print(f"\nNailSet is starting at {base}/  (log in with a demo account printed above)")
    print(f"  API: {base}/api/   API docs: {base}/api/docs/   admin: {base}/admin/   health: {base}/healthz")
    if demo:
        print(f"  demo participant upload link: {base}{demo.upload_path}")
    print(f"  database: {settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}, broker: {settings.CELERY_BROKER_URL.split('://')[0]}")
    print("Press Ctrl-C to stop the site and the worker.\n", flush=True)
    children = {"web server": web, "worker": worker}
    exit_code = 0
    try:
        while all(child.poll() is None for child in children.values()):
            time.sleep(0.5)
        died = [name for name, child in children.items() if child.poll() is not None]
        print(f"the {' and '.join(died)} stopped unexpectedly; stopping the rest", file=sys.stderr)
        exit_code = 1
    except KeyboardInterrupt:
        pass
    finally:
        for child in children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children.values():
            try:
                child.wait(timeout=20)
            except subprocess.TimeoutExpired:
                child.kill()
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
