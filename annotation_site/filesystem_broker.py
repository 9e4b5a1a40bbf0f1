"""kombu's filesystem transport (the embedded-mode broker) with messages written atomically.

kombu's own ``_put`` creates the message file under its final name and then writes it; a worker polling the
folder can move and read the file in between, get an empty payload and die with "Unrecoverable error:
JSONDecodeError" (its consumer does not survive it), leaving every later job queued. Here the message is
written under a name the consumer does not pick up (``.part`` after ``.msg``) and renamed into place, which is
atomic on one filesystem. Settings select it with ``CELERY_BROKER_TRANSPORT`` in embedded mode.
"""
import os
import uuid
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs):
        """Put ``payload`` onto ``queue``: write ``<name>.part``, then rename it to ``<name>``."""
        filename = os.path.join(self.data_folder_out, f"{int(round(monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg")
        partial = filename + ".part"  # the consumer only takes names ending in "<queue>.msg"
        try:
            with open(partial, "wb") as f:
                f.write(str_to_bytes(dumps(payload)))
            os.replace(partial, filename)
        except OSError as exc:
            try:
                os.remove(partial)
            except OSError:
                pass
            raise ChannelError(f"Cannot add file {filename!r} to directory") from exc


class Transport(filesystem.Transport):
    Channel = Channel
