"""The embedded broker writes each message atomically: a worker polling the queue folder never reads a half-written
message (kombu's own filesystem transport creates the file before writing it, and a consumer that reads it then dies
with "Unrecoverable error: JSONDecodeError", leaving every later job queued)."""
import json
import queue as queue_module

import pytest
from kombu import Connection
from kombu.transport import filesystem as kombu_filesystem

from annotation_site import filesystem_broker


def channel_for(tmp_path, transport):
    folder = tmp_path / "queue"
    folder.mkdir(exist_ok=True)
    options = {"data_folder_in": str(folder), "data_folder_out": str(folder), "store_processed": False}
    connection = Connection("filesystem://", transport=transport, transport_options=options)
    return connection, connection.default_channel


def poll_while_writing(monkeypatch, module, channel) -> list:
    """Make the payload's serialization poll the queue like a worker would, while the message is being put."""
    seen = []
    real_dumps = module.dumps

    def dumps_and_poll(payload):
        text = real_dumps(payload)
        try:
            seen.append(channel._get("jobs"))
        except queue_module.Empty:
            seen.append("empty")
        except json.JSONDecodeError as exc:
            seen.append(exc)
        return text

    monkeypatch.setattr(module, "dumps", dumps_and_poll)
    return seen


def test_kombus_own_transport_can_hand_a_worker_an_empty_message(tmp_path, monkeypatch):
    connection, channel = channel_for(tmp_path, "filesystem")
    seen = poll_while_writing(monkeypatch, kombu_filesystem, channel)
    channel._put("jobs", {"body": "job 1"})
    assert isinstance(seen[0], json.JSONDecodeError)  # the race this module exists for
    connection.release()


@pytest.mark.parametrize("messages", [1, 3])
def test_our_transport_never_shows_a_message_before_it_is_whole(tmp_path, monkeypatch, messages):
    connection, channel = channel_for(tmp_path, "annotation_site.filesystem_broker:Transport")
    assert isinstance(channel, filesystem_broker.Channel)
    seen = poll_while_writing(monkeypatch, filesystem_broker, channel)
    for number in range(messages):
        channel._put("jobs", {"body": f"job {number}"})
    assert seen[0] == "empty"  # the message being written is not there yet
    assert not any(isinstance(item, Exception) for item in seen)  # earlier ones may be taken, whole
    delivered = [item["body"] for item in seen if isinstance(item, dict)]
    while True:
        try:
            delivered.append(channel._get("jobs")["body"])
        except queue_module.Empty:
            break
    assert sorted(delivered) == [f"job {n}" for n in range(messages)]  # each exactly once
    assert list((tmp_path / "queue").iterdir()) == []  # no .part left behind
    connection.release()


def test_settings_select_it_for_the_embedded_broker_only():
    from django.conf import settings

    embedded = settings.CELERY_BROKER_URL.startswith("filesystem://")
    expected = "annotation_site.filesystem_broker:Transport" if embedded else None
    assert getattr(settings, "CELERY_BROKER_TRANSPORT", None) == expected  # Redis is named by its URL
